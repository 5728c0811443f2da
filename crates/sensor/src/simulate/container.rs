//! The simulated pod: a runc container on an overlay of a busybox root, and the listeners its
//! reverse shell and download reach.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::simulate::steps::Step;
use crate::simulate::{SimError, IMAGE, NAMESPACE, POD};

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

/// The container and its overlay root; removed on drop.
pub(crate) struct Container {
    runc: PathBuf,
    pub(crate) id: String,
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

/// Builds the root filesystem, mounts the overlay and starts the container (detached).
pub(crate) fn build_container(keep: bool) -> Result<Container, SimError> {
    let runc = which("runc").ok_or_else(|| SimError::Setup("runc is not installed (apt-get install runc)".into()))?;
    let busybox = Path::new("/bin/busybox");
    ensure(busybox.exists(), || "/bin/busybox is missing (apt-get install busybox-static)".into())?;
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
    ensure(st.success(), || "mount -t overlay failed".into())?;
    let c = Container { runc: runc.clone(), id: id.clone(), base: base.clone(), merged, keep };
    let st = Command::new(&runc).arg("spec").current_dir(&base).status()?;
    ensure(st.success(), || "runc spec failed".into())?;
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
    ensure(status.success(), || {
        format!("runc run: {}", std::fs::read_to_string(&err_path).unwrap_or_default().trim())
    })?;
    Ok(c)
}

/// Serves one reverse-shell connection (sends commands, reads the answers) and the download.
pub(crate) fn listeners(stop: Arc<AtomicBool>) -> Result<(u16, u16), SimError> {
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
pub(crate) type StepResult = (Option<i32>, Duration);

/// Runs a step; returns its exit code (None when it could not run or timed out) and duration.
pub(crate) fn run_step(c: &Container, step: &Step) -> StepResult {
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

/// `Ok` when `ok`, else a setup error with the message `why` gives.
fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<(), SimError> {
    if ok {
        Ok(())
    } else {
        Err(SimError::Setup(why()))
    }
}
