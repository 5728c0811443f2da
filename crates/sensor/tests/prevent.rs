//! Exec prevention (`ExecGuard`) against the real kernel, on a hand-made overlay with a
//! process `chroot`ed into it. Needs root, `chroot`, `mount` and a static busybox at
//! `/bin/busybox`; without them each test prints `SKIPPED: ...` and returns.
//!
//! Tests run one at a time (a process-wide lock) so their mounts and guards do not overlap.
#![allow(clippy::panic, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use palisade_sensor::prevent::AllowFn;
use palisade_sensor::{ExecGuard, PreventError};

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn skip_reason() -> Option<String> {
    // the effective uid through /proc (no unsafe code in tests)
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_default();
    if euid != "0" {
        return Some(format!("needs root (euid {euid})"));
    }
    if !Path::new("/bin/busybox").is_file() {
        return Some("needs a static busybox at /bin/busybox".into());
    }
    for tool in ["chroot", "mount", "umount"] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!("needs {tool}"));
        }
    }
    None
}

macro_rules! require {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

/// An overlay (lower: busybox at /bin/busybox and an empty /tmp) mounted at `merged`, and a
/// `sleep` chrooted into it. Drop kills the sleeper and unmounts.
struct Overlay {
    _dir: tempfile::TempDir,
    merged: PathBuf,
    sleeper: Option<Child>,
}

impl Overlay {
    fn new() -> Overlay {
        let dir = tempfile::Builder::new().prefix("palisade-prevent-").tempdir().unwrap();
        let d = dir.path();
        for sub in ["lower/bin", "lower/tmp", "upper", "work", "merged"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::copy("/bin/busybox", d.join("lower/bin/busybox")).unwrap();
        std::fs::copy("/bin/busybox", d.join("lower/bin/true")).unwrap();
        let merged = d.join("merged");
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            d.join("lower").display(),
            d.join("upper").display(),
            d.join("work").display()
        );
        let st = Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&merged).status().unwrap();
        assert!(st.success(), "mount -t overlay failed");
        let mut o = Overlay { _dir: dir, merged, sleeper: None };
        let child = Command::new("chroot").arg(&o.merged).args(["/bin/busybox", "sleep", "60"]).spawn().unwrap();
        let pid = child.id();
        o.sleeper = Some(child);
        // wait until the chroot happened (and busybox runs)
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let root = std::fs::read_link(format!("/proc/{pid}/root")).ok();
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            if root.as_deref() == Some(o.merged.as_path()) && exe.is_some_and(|e| e.ends_with("bin/busybox")) {
                break;
            }
            assert!(Instant::now() < deadline, "the chrooted sleeper did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        o
    }

    fn pid(&self) -> u32 {
        self.sleeper.as_ref().map_or(0, Child::id)
    }

    /// Runs a busybox shell script chrooted in the overlay; returns stdout + stderr.
    fn sh(&self, script: &str) -> String {
        let mut c = Command::new("timeout");
        c.args(["20", "chroot"]).arg(&self.merged).args(["/bin/busybox", "sh", "-c", script]);
        let out = c.output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if let Some(mut c) = self.sleeper.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("umount").arg("-l").arg(&self.merged).status();
    }
}

fn deny_all() -> AllowFn {
    Arc::new(|_: &str| false)
}

/// Copies busybox to /tmp/dropped (the upper layer) and runs it. Busybox picks its applet
/// from argv[0], so the copy, when it runs, says "dropped: applet not found" and exits 127;
/// a denied exec makes the shell exit 126 ("Operation not permitted").
const DROP_AND_RUN: &str =
    "/bin/busybox cp /bin/busybox /tmp/dropped; /tmp/dropped; echo dropped=$?; /bin/busybox true; echo lower=$?";
const RAN: &str = "dropped=127";
const DENIED: &str = "dropped=126";

#[test]
fn upper_layer_exec_is_denied_lower_allowed_allow_list_honoured() {
    require!();
    let _l = lock();
    let ov = Overlay::new();
    // before protection the dropped binary runs
    let out = ov.sh(DROP_AND_RUN);
    assert!(out.contains(RAN) && out.contains("applet not found") && out.contains("lower=0"), "{out}");

    let guard = ExecGuard::start().unwrap();
    assert!(guard.protect("c1", ov.pid(), deny_all()).unwrap());
    assert!(!guard.protect("c1", ov.pid(), deny_all()).unwrap(), "already protected");
    assert!(!guard.protect("c1-alias", ov.pid(), deny_all()).unwrap(), "same mount");
    assert_eq!(guard.stats().protected_mounts, 1);

    let out = ov.sh(DROP_AND_RUN);
    eprintln!("protected: {out}");
    assert!(out.contains(DENIED) && !out.contains("applet not found"), "the dropped binary ran: {out}");
    assert!(out.contains("lower=0"), "the image binary did not run: {out}");
    let denials = guard.take_denials();
    assert!(denials.iter().any(|d| d.container_id == "c1" && d.path == "/tmp/dropped" && d.pid > 0), "{denials:?}");
    assert!(guard.take_denials().is_empty(), "drained");
    let s = guard.stats();
    assert!(s.denied >= 1 && s.allowed >= 2, "{s:?}");
    assert_eq!(s.errors, 0, "{s:?}");

    // an image binary modified in place (copied up) is upper too
    let out = ov.sh("/bin/true; echo before=$?; echo >> /bin/true; /bin/true; echo modified=$?");
    assert!(out.contains("before=0"), "{out}");
    assert!(out.contains("modified=126"), "{out}");
    assert_eq!(guard.take_denials().iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), ["/bin/true"]);

    // allow-listed drift runs, the rest is still denied
    guard.release("c1");
    assert_eq!(guard.stats().protected_mounts, 0);
    let allow: AllowFn = Arc::new(|p: &str| p == "/tmp/dropped");
    // the sleeper still runs the original image busybox (its executable was opened before
    // the copy-up), so its root is still the overlay
    assert!(guard.protect("c2", ov.pid(), allow).unwrap());
    let out =
        ov.sh("/tmp/dropped; echo dropped=$?; /bin/busybox cp /tmp/dropped /tmp/other; /tmp/other; echo other=$?");
    eprintln!("allow-listed: {out}");
    assert!(out.contains(RAN) && out.contains("other=126"), "{out}");
    let denials = guard.take_denials();
    assert_eq!(
        denials.iter().map(|d| (d.container_id.as_str(), d.path.as_str())).collect::<Vec<_>>(),
        [("c2", "/tmp/other")]
    );
}

#[test]
fn host_root_and_non_overlay_are_refused() {
    require!();
    let _l = lock();
    let guard = ExecGuard::start().unwrap();
    let me = std::process::id();
    match guard.protect("host", me, deny_all()) {
        Err(e @ PreventError::HostRoot { .. }) => eprintln!("refused as expected: {e}"),
        other => panic!("protecting our own root (the host root) was not refused: {other:?}"),
    }
    // pid 1: refused one way or another (host root, or its root is not inspectable)
    let r = guard.protect("init", 1, deny_all());
    assert!(r.is_err(), "{r:?}");
    eprintln!("pid 1: {:?}", r.err());
    // a chroot into a plain directory (a subdirectory of a host mount): refused
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("bin/busybox")).unwrap();
    let mut c = Command::new("chroot").arg(dir.path()).args(["/bin/busybox", "sleep", "30"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_link(format!("/proc/{}/root", c.id())).ok().as_deref() != Some(dir.path()) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = guard.protect("plain", c.id(), deny_all());
    let _ = c.kill();
    let _ = c.wait();
    eprintln!("plain dir: {:?}", r.as_ref().err().map(ToString::to_string));
    assert!(matches!(r, Err(PreventError::HostRoot { .. } | PreventError::NotOverlay { .. })), "{r:?}");
    // nothing was marked
    assert_eq!(guard.stats().protected_mounts, 0);
    let out = Command::new("/bin/busybox").arg("true").status().unwrap();
    assert!(out.success());
    assert_eq!(guard.stats().allowed + guard.stats().denied, 0, "no event was seen: {:?}", guard.stats());
}

#[test]
fn dropping_the_guard_unmarks() {
    require!();
    let _l = lock();
    let ov = Overlay::new();
    let guard = ExecGuard::start().unwrap();
    assert!(guard.protect("c3", ov.pid(), deny_all()).unwrap());
    let out = ov.sh(DROP_AND_RUN);
    assert!(out.contains(DENIED), "{out}");
    drop(guard);
    let out = ov.sh("/tmp/dropped; echo dropped=$?");
    assert!(out.contains(RAN), "still denied after drop: {out}");
}

/// A runc container (own mount, PID, ... namespaces, rootfs = a hand-made overlay). Drop
/// deletes the container and unmounts.
struct RuncContainer {
    _dir: tempfile::TempDir,
    id: String,
    rootfs: PathBuf,
    pid: u32,
}

impl RuncContainer {
    /// None (after a SKIPPED message) when runc is missing or cannot run a container here.
    fn new(id: &str) -> Option<RuncContainer> {
        let has_runc = Command::new("runc").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
        if !has_runc {
            eprintln!("SKIPPED: needs runc");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("palisade-prevent-runc-").tempdir().unwrap();
        let d = dir.path();
        for sub in ["lower/bin", "lower/tmp", "upper", "work", "bundle/rootfs"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::copy("/bin/busybox", d.join("lower/bin/busybox")).unwrap();
        let rootfs = d.join("bundle/rootfs");
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            d.join("lower").display(),
            d.join("upper").display(),
            d.join("work").display()
        );
        let st = Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&rootfs).status().unwrap();
        assert!(st.success(), "mount -t overlay failed");
        let mut c = RuncContainer { _dir: dir, id: id.to_string(), rootfs, pid: 0 };
        let bundle = c.rootfs.parent().unwrap().to_path_buf();
        let st = Command::new("runc").arg("spec").current_dir(&bundle).status().unwrap();
        assert!(st.success(), "runc spec");
        let cfg_path = bundle.join("config.json");
        let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = serde_json::json!(["/bin/busybox", "sleep", "60"]);
        cfg["root"] = serde_json::json!({"path": "rootfs", "readonly": false});
        std::fs::write(&cfg_path, cfg.to_string()).unwrap();
        let pid_file = bundle.join("pid");
        // a detached container inherits runc's stdio: files, not pipes we would wait on
        let log = bundle.join("runc.log");
        let st = Command::new("timeout")
            .args(["30", "runc", "run", "-d", "--pid-file"])
            .arg(&pid_file)
            .arg(id)
            .current_dir(&bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .status()
            .unwrap();
        if !st.success() {
            eprintln!(
                "SKIPPED: runc cannot run a container here: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            return None;
        }
        c.pid = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        Some(c)
    }

    fn sh(&self, script: &str) -> String {
        let out = Command::new("timeout")
            .args(["20", "runc", "exec", &self.id, "/bin/busybox", "sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        let _ = Command::new("runc").args(["delete", "-f", &self.id]).stderr(Stdio::null()).status();
        let _ = Command::new("umount").arg("-l").arg(&self.rootfs).status();
    }
}

/// The real case: the container has its own mount namespace, so the marked mount is the
/// namespace's copy of the rootfs and its paths are relative to the container's root.
#[test]
fn runc_container_in_its_own_mount_namespace() {
    require!();
    let _l = lock();
    let id = format!("palisade-prevent-{}", std::process::id());
    let Some(c) = RuncContainer::new(&id) else { return };
    let guard = ExecGuard::start().unwrap();
    assert!(guard.protect(&id, c.pid, deny_all()).unwrap());
    let out = c.sh(DROP_AND_RUN);
    eprintln!("runc: {out}");
    assert!(out.contains(DENIED) && out.contains("lower=0"), "{out}");
    let denials = guard.take_denials();
    assert!(denials.iter().any(|d| d.container_id == id && d.path == "/tmp/dropped"), "{denials:?}");
    assert_eq!(guard.stats().errors, 0, "{:?}", guard.stats());
    guard.release(&id);
    let out = c.sh("/tmp/dropped; echo dropped=$?");
    assert!(out.contains(RAN), "still denied after release: {out}");
}
