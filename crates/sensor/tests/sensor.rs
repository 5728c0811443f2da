//! Integration tests against the real kernel. They need root and BPF; without them each test
//! prints `SKIPPED: needs root and BPF: <reason>` to stderr and returns.
//!
//! Tests run one at a time (a process-wide lock): each starts its own sensor, and two
//! sensors at once would each filter only their own process... which is the same process.
//! Events are filtered by pid/ppid so other activity on the machine does not matter.
#![allow(clippy::panic, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use palisade_sensor::{Body, PathRule, RawEvent, Sensor, SensorConfig};

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Some(sensor) when BPF is usable, None (after a loud message) when not.
fn start(cfg: &SensorConfig) -> Option<Sensor> {
    if let Err(e) = palisade_sensor::check_support() {
        eprintln!("\n**************************************************");
        eprintln!("SKIPPED: needs root and BPF: {e}");
        eprintln!("**************************************************\n");
        return None;
    }
    match Sensor::start(cfg) {
        Ok(s) => Some(s),
        Err(e) => panic!("BPF is usable but the sensor did not start: {e}"),
    }
}

/// Wait until an event satisfies `pred`; return it. Other events are discarded.
fn wait_for(s: &Sensor, what: &str, mut pred: impl FnMut(&RawEvent) -> bool) -> RawEvent {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!("no {what} event within 5 s; health: {:#?}", s.health());
        }
        if let Ok(ev) = s.events().recv_timeout(left) {
            if pred(&ev) {
                return ev;
            }
        }
    }
}

fn me() -> u32 {
    std::process::id()
}

/// Which exec is the expected one: we are its parent (the test thread runs in our tgid).
fn our_child_exec<'a>(ev: &'a RawEvent, exe_tail: &str) -> Option<&'a palisade_sensor::ExecInfo> {
    match &ev.body {
        Body::Exec(x) if ev.task.ppid == me() && x.exe.ends_with(exe_tail) => Some(x),
        _ => None,
    }
}

fn resolved(p: &str) -> String {
    std::fs::canonicalize(p).map(|p| p.to_string_lossy().into_owned()).unwrap_or(p.into())
}

#[test]
fn exec_open_connect_unshare() {
    let _g = lock();
    let Some(s) = start(&SensorConfig::default()) else { return };

    let h = s.health();
    assert!(h.attach_failures.is_empty(), "attach failures: {:?}", h.attach_failures);
    assert!(!s.snapshot().is_empty(), "empty start-up snapshot");
    let own = s.snapshot().iter().find(|p| p.pid == me()).expect("snapshot has our process");
    assert_eq!(own.exe, resolved("/proc/self/exe"));
    assert_eq!(own.mntns, ns_inode("mnt"));
    assert_eq!(own.cgroup_name, cgroup_leaf());
    assert_eq!(own.comm, own_comm());
    assert_eq!(s.health().snapshot_source, palisade_sensor::SnapshotSource::BpfIter);

    // Exec with arguments.
    let status = Command::new("/bin/true").args(["alpha", "beta gamma"]).status().expect("run true");
    assert!(status.success());
    let true_exe = resolved("/bin/true");
    let ev = wait_for(&s, "exec of /bin/true", |ev| our_child_exec(ev, &true_exe).is_some());
    let Body::Exec(x) = &ev.body else { unreachable!() };
    assert_eq!(x.exe, true_exe);
    assert_eq!(x.filename, "/bin/true");
    assert_eq!(x.args, vec!["/bin/true", "alpha", "beta gamma"]);
    assert_eq!(ev.task.comm, "true");
    assert_eq!(ev.task.uid, 0);
    assert!(!x.upper_layer && !x.fileless);
    assert_eq!(x.cwd, resolved(&std::env::current_dir().expect("cwd").to_string_lossy()));
    assert_eq!(ev.task.mntns, ns_inode("mnt"), "mount namespace");
    assert_eq!(ev.task.pidns, ns_inode("pid"), "pid namespace");
    assert!(ev.task.cgroup_id != 0);
    assert_eq!(ev.task.cgroup_name, cgroup_leaf(), "cgroup leaf name");
    // The real parent is the forking thread: its comm is this test thread's name.
    assert_eq!(x.parent_comm, thread_comm());
    // Exit of that child.
    let child = ev.task.pid;
    let ev = wait_for(&s, "exit of /bin/true", |ev| ev.task.pid == child && matches!(ev.body, Body::Exit { .. }));
    assert_eq!(ev.body, Body::Exit { code: 0, signal: 0 });

    // Sensitive open (a prefix rule): a child reads /etc/shadow (our own opens are ignored).
    let out = Command::new("/bin/cat").arg("/etc/shadow").output().expect("cat");
    assert!(out.status.success());
    let ev = wait_for(&s, "open of /etc/shadow", |ev| {
        ev.task.ppid == me() && matches!(&ev.body, Body::Open { path, .. } if path == "/etc/shadow")
    });
    let Body::Open { flags, .. } = ev.body else { unreachable!() };
    assert_eq!(flags & 3, 0, "read-only open");

    // Outbound TCP connection, from a child (curl-free: bash's /dev/tcp).
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let out =
        Command::new("/bin/bash").arg("-c").arg(format!("exec 3<>/dev/tcp/127.0.0.1/{port}")).status().expect("bash");
    assert!(out.success());
    let _ = l.accept();
    let ev = wait_for(&s, "connect to the listener", |ev| {
        ev.task.ppid == me() && matches!(&ev.body, Body::Connect { port: p, .. } if *p == port)
    });
    let Body::Connect { family, addr, sock_type, .. } = ev.body else { unreachable!() };
    assert_eq!(family, 2);
    assert_eq!(addr, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(sock_type, Some(1), "SOCK_STREAM");
    // Our own connects are not reported (self filter).
    let _c = TcpStream::connect(("127.0.0.1", port)).expect("connect");

    // Unix socket connect with a path.
    let dir = tempdir("unix");
    let sock = dir.join("s.sock");
    let _ul = std::os::unix::net::UnixListener::bind(&sock).expect("unix bind");
    let st = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(format!("import socket; s=socket.socket(socket.AF_UNIX); s.connect({:?})", sock.to_string_lossy()))
        .status();
    if let Ok(st) = st {
        assert!(st.success());
        let sp = sock.to_string_lossy().into_owned();
        wait_for(&s, "unix connect", |ev| {
            ev.task.ppid == me() && matches!(&ev.body, Body::Connect { family: 1, unix_path, .. } if *unix_path == sp)
        });
    } else {
        eprintln!("python3 missing: unix connect not checked");
    }
    let _ = std::fs::remove_dir_all(&dir);

    // unshare.
    let st = Command::new("unshare").args(["-U", "true"]).status().expect("unshare");
    assert!(st.success());
    let ev = wait_for(&s, "unshare", |ev| ev.task.ppid == me() && matches!(ev.body, Body::Unshare { .. }));
    let Body::Unshare { flags } = ev.body else { unreachable!() };
    assert_ne!(flags & 0x1000_0000, 0, "CLONE_NEWUSER");

    // setuid from a child (python or perl is not guaranteed; `setpriv` is util-linux).
    let st = Command::new("setpriv").args(["--reuid=65534", "--clear-groups", "true"]).status();
    if let Ok(st) = st {
        assert!(st.success());
        wait_for(&s, "setreuid/setresuid", |ev| {
            ev.task.ppid == me() && matches!(&ev.body, Body::SetId { ids, .. } if ids.contains(&65534))
        });
    }

    let h = s.health();
    assert!(h.events > 0, "kernel event counter: {h:?}");
    assert!(h.delivered > 0);
    assert_eq!(h.decode_errors, 0);
    assert_eq!(h.ringbuf_bytes, 8 << 20);
    s.stop();
}

#[test]
fn suffix_rule_and_write_only() {
    let _g = lock();
    let cfg = SensorConfig {
        path_rules: vec![PathRule::suffix(".palisade-secret", false), PathRule::suffix(".palisade-wo", true)],
        snapshot: false,
        ..SensorConfig::default()
    };
    let Some(s) = start(&cfg) else { return };
    let dir = tempdir("rules");
    let secret = dir.join("x.palisade-secret");
    let wo = dir.join("y.palisade-wo");
    std::fs::write(&secret, b"1").expect("write");
    std::fs::write(&wo, b"1").expect("write");
    // Read both from a child: only the first should be reported.
    let st = Command::new("/bin/cat").arg(&secret).arg(&wo).output().expect("cat");
    assert!(st.status.success());
    // Then write the write-only one from a child.
    let st = Command::new("/bin/sh").arg("-c").arg(format!("echo 2 > '{}'", wo.display())).status().expect("sh");
    assert!(st.success());
    let secret_s = secret.to_string_lossy().into_owned();
    let wo_s = wo.to_string_lossy().into_owned();
    let mut seen_secret = false;
    let mut wo_opens = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(ev) = s.events().recv_timeout(Duration::from_millis(200)) {
            if ev.task.ppid != me() {
                continue;
            }
            if let Body::Open { path, flags } = ev.body {
                if path == secret_s {
                    seen_secret = true;
                }
                if path == wo_s {
                    wo_opens.push(flags);
                }
            }
        }
    }
    assert!(seen_secret, "suffix rule did not report the read");
    assert_eq!(wo_opens.len(), 1, "write-only rule: expected exactly the write open, got {wo_opens:?}");
    assert_ne!(wo_opens[0] & 0o1001, 0, "O_WRONLY|O_TRUNC");

    // chmod +x is reported even without a rule; chmod 644 is not.
    let f = dir.join("tool");
    std::fs::write(&f, b"#!/bin/sh\n").expect("write");
    Command::new("chmod").arg("644").arg(&f).status().expect("chmod");
    Command::new("chmod").arg("4755").arg(&f).status().expect("chmod");
    let ev = wait_for(&s, "chmod", |ev| ev.task.ppid == me() && matches!(ev.body, Body::Chmod { .. }));
    let Body::Chmod { mode, path } = ev.body else { unreachable!() };
    assert_eq!(mode, 0o4755, "the 644 chmod must be filtered out in the kernel");
    assert!(path.ends_with("/tool"));

    // rename (new name matches) and unlink, from children.
    let renamed = dir.join("z.palisade-secret");
    let st = Command::new("mv").arg(&f).arg(&renamed).status().expect("mv");
    assert!(st.success());
    let st = Command::new("rm").arg(&renamed).status().expect("rm");
    assert!(st.success());
    let (from_s, to_s) = (f.to_string_lossy().into_owned(), renamed.to_string_lossy().into_owned());
    wait_for(&s, "rename", |ev| {
        ev.task.ppid == me() && matches!(&ev.body, Body::Rename { from, to } if *from == from_s && *to == to_s)
    });
    wait_for(&s, "unlink", |ev| ev.task.ppid == me() && matches!(&ev.body, Body::Unlink { path } if *path == to_s));
    let _ = std::fs::remove_dir_all(&dir);
    s.stop();
}

#[test]
fn overlay_upper_layer_exec_is_drift() {
    let _g = lock();
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        eprintln!("SKIPPED: /bin/busybox (busybox-static) is not installed");
        return;
    }
    let cfg = SensorConfig { snapshot: false, ..SensorConfig::default() };
    let Some(s) = start(&cfg) else { return };

    let base = tempdir("ovl");
    let (lower, upper, work, merged) = (base.join("lower"), base.join("upper"), base.join("work"), base.join("merged"));
    for d in [&lower.join("bin"), &upper, &work, &merged] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::copy(busybox, lower.join("bin/busybox")).expect("copy busybox");
    let opts = format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
    let st =
        Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&merged).status().expect("mount");
    assert!(st.success(), "mount -t overlay failed");
    let cleanup = Unmount(merged.clone(), base.clone());

    // Lower-layer binary, then a copy written through the merged dir (lands in upper).
    std::fs::copy(merged.join("bin/busybox"), merged.join("bin/busybox-dropped")).expect("copy");
    assert!(upper.join("bin/busybox-dropped").exists());
    let lower_exe = merged.join("bin/busybox");
    let upper_exe = merged.join("bin/busybox-dropped");
    let st = Command::new(&lower_exe).arg("true").status().expect("exec lower");
    assert!(st.success());
    let st = Command::new(&upper_exe).arg("true").status().expect("exec upper");
    assert!(st.success());
    // Inside a chroot: the path must be as the chrooted process sees it.
    let st = Command::new("chroot").arg(&merged).args(["/bin/busybox-dropped", "true"]).status();
    let chroot_ok = matches!(st, Ok(st) if st.success());

    let lower_s = lower_exe.to_string_lossy().into_owned();
    let upper_s = upper_exe.to_string_lossy().into_owned();
    let ev = wait_for(&s, "exec of the lower-layer busybox", |ev| our_child_exec(ev, "/merged/bin/busybox").is_some());
    let Body::Exec(x) = &ev.body else { unreachable!() };
    assert_eq!(x.exe, lower_s);
    assert!(!x.upper_layer, "lower-layer exec flagged as upper: {x:?}");
    let ev =
        wait_for(&s, "exec of the upper-layer copy", |ev| our_child_exec(ev, "/merged/bin/busybox-dropped").is_some());
    let Body::Exec(x) = &ev.body else { unreachable!() };
    assert_eq!(x.exe, upper_s);
    assert!(x.upper_layer, "upper-layer exec not flagged: {x:?}");
    if chroot_ok {
        // chroot execs /bin/busybox-dropped itself (the child of our chroot process).
        let ev = wait_for(
            &s,
            "exec inside the chroot",
            |ev| matches!(&ev.body, Body::Exec(x) if x.exe == "/bin/busybox-dropped" && x.filename == "/bin/busybox-dropped"),
        );
        let Body::Exec(x) = &ev.body else { unreachable!() };
        assert!(x.upper_layer);
        assert_eq!(x.cwd, "/");
    } else {
        eprintln!("chroot unavailable: the chroot case was not checked");
    }
    drop(cleanup);
    s.stop();
}

/// End to end with a real OCI runtime: a runc container on an overlay rootfs writes a binary
/// and runs it. The exec is reported with the container's view of the path, the drift flag,
/// the container id as cgroup name and the container's namespaces.
#[test]
fn runc_container_drift() {
    let _g = lock();
    let (busybox, runc) = (Path::new("/bin/busybox"), which("runc"));
    let Some(runc) = runc.filter(|_| busybox.exists()) else {
        eprintln!("SKIPPED: runc or /bin/busybox (busybox-static) is not installed");
        return;
    };
    let cfg = SensorConfig { snapshot: false, ..SensorConfig::default() };
    let Some(s) = start(&cfg) else { return };

    let base = tempdir("runc");
    let (lower, upper, work, merged) = (base.join("lower"), base.join("upper"), base.join("work"), base.join("rootfs"));
    for d in [&lower.join("bin"), &lower.join("tmp"), &upper, &work, &merged] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::copy(busybox, lower.join("bin/busybox")).expect("copy busybox");
    let opts = format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
    let st =
        Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&merged).status().expect("mount");
    assert!(st.success(), "mount -t overlay failed");
    let _cleanup = Unmount(merged.clone(), base.clone());

    let id = format!("palisade-sensor-test-{}", me());
    let st = Command::new(&runc).arg("spec").current_dir(&base).status().expect("runc spec");
    assert!(st.success());
    let cfg_path = base.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).expect("config.json")).expect("json");
    spec["process"]["terminal"] = false.into();
    spec["process"]["cwd"] = "/tmp".into();
    spec["process"]["args"] = serde_json::json!([
        "/bin/busybox",
        "sh",
        "-c",
        "/bin/busybox cp /bin/busybox /bin/busybox-drift && /bin/busybox-drift true"
    ]);
    spec["root"]["readonly"] = false.into();
    spec["linux"]["cgroupsPath"] = format!("/palisade-sensor-test/{id}").into();
    std::fs::write(&cfg_path, serde_json::to_vec(&spec).expect("json")).expect("write");
    let out = Command::new(&runc)
        .args(["run", "--bundle"])
        .arg(&base)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runc run");
    let _ = Command::new(&runc).args(["delete", "-f", &id]).status();
    remove_parent_cgroups("palisade-sensor-test");
    assert!(out.status.success(), "runc run: {}", String::from_utf8_lossy(&out.stderr));

    let ev = wait_for(&s, "exec of the lower-layer busybox in the container", |ev| {
        ev.task.cgroup_name == id
            && matches!(&ev.body, Body::Exec(x) if x.exe == "/bin/busybox" && x.args.get(1).is_some_and(|a| a == "sh"))
    });
    let Body::Exec(x) = &ev.body else { unreachable!() };
    assert!(!x.upper_layer);
    assert_eq!(x.cwd, "/tmp");
    assert_ne!(ev.task.mntns, ns_inode("mnt"), "container mount namespace");
    assert_ne!(ev.task.pidns, ns_inode("pid"), "container pid namespace");
    let ev = wait_for(&s, "exec of the dropped binary in the container", |ev| {
        ev.task.cgroup_name == id && matches!(&ev.body, Body::Exec(x) if x.exe == "/bin/busybox-drift")
    });
    let Body::Exec(x) = &ev.body else { unreachable!() };
    assert!(x.upper_layer, "drift not flagged: {x:?}");
    assert_eq!(x.filename, "/bin/busybox-drift");
    assert_eq!(x.args, vec!["/bin/busybox-drift", "true"]);
    s.stop();
}

/// rmdir `/sys/fs/cgroup/*/<name>` (and the v2 one) left behind by runc.
fn remove_parent_cgroups(name: &str) {
    let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") else { return };
    for d in dirs.flatten() {
        let _ = std::fs::remove_dir(d.path().join(name));
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(name));
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

#[test]
fn fileless_memfd_exec() {
    let _g = lock();
    let cfg = SensorConfig { snapshot: false, ..SensorConfig::default() };
    if !Path::new("/usr/bin/python3").exists() {
        eprintln!("SKIPPED: python3 is not installed (needed to exec a memfd)");
        return;
    }
    let Some(s) = start(&cfg) else { return };
    let script = "import os\n\
        fd = os.memfd_create('palisade-test', 0)\n\
        os.write(fd, open('/bin/true','rb').read())\n\
        os.execv('/proc/self/fd/%d' % fd, ['memfd-true', 'x'])\n";
    let st = Command::new("/usr/bin/python3").arg("-c").arg(script).status().expect("python3");
    assert!(st.success());
    let ev = wait_for(&s, "memfd_create", |ev| {
        ev.task.ppid == me() && matches!(&ev.body, Body::MemfdCreate { name, .. } if name == "palisade-test")
    });
    let py = ev.task.pid;
    let ev = wait_for(&s, "exec of the memfd", |ev| ev.task.pid == py && matches!(ev.body, Body::Exec(_)));
    let Body::Exec(x) = &ev.body else { unreachable!() };
    assert!(x.fileless, "memfd exec not flagged fileless: {x:?}");
    assert_eq!(x.args, vec!["memfd-true", "x"]);
    s.stop();
}

#[test]
fn privilege_and_escape_syscalls() {
    let _g = lock();
    if !Path::new("/usr/bin/python3").exists() {
        eprintln!("SKIPPED: python3 is not installed (needed to make raw syscalls)");
        return;
    }
    let cfg = SensorConfig { snapshot: false, ..SensorConfig::default() };
    let Some(s) = start(&cfg) else { return };
    let dir = tempdir("priv");
    let script = format!(
        r#"
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
child = subprocess.Popen(['sleep', '5'])
if libc.ptrace(16, child.pid, None, None) == 0:
    os.waitpid(child.pid, 0)
    libc.ptrace(17, child.pid, None, None)
child.kill(); child.wait()
fd = os.open('/bin/true', os.O_RDONLY)
libc.syscall(313, fd, b"", 0)
libc.syscall(175, None, 0, b"palisade_param=1")
nfd = os.open('/proc/self/ns/net', os.O_RDONLY)
libc.setns(nfd, 0x40000000)
class H(ctypes.Structure): _fields_ = [('version', ctypes.c_uint32), ('pid', ctypes.c_int)]
class D(ctypes.Structure): _fields_ = [('e', ctypes.c_uint32), ('p', ctypes.c_uint32), ('i', ctypes.c_uint32)]
h = H(0x20080522, 0); d = (D * 2)()
libc.capget(ctypes.byref(h), d); libc.capset(ctypes.byref(h), d)
assert libc.unshare(0x00020000) == 0
libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None)
assert libc.mount(b"palisade-tmp", b"{dir}", b"tmpfs", 0, None) == 0, ctypes.get_errno()
"#,
        dir = dir.display()
    );
    let out = Command::new("/usr/bin/python3").arg("-c").arg(&script).output().expect("python3");
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    let ours = |ev: &RawEvent| ev.task.ppid == me() && ev.task.comm.starts_with("python");

    let ev = wait_for(&s, "ptrace attach", |ev| ours(ev) && matches!(ev.body, Body::Ptrace { .. }));
    let Body::Ptrace { request, target } = ev.body else { unreachable!() };
    assert_eq!(request, 16);
    assert!(target > 0);
    let ev = wait_for(&s, "finit_module", |ev| {
        ours(ev) && matches!(&ev.body, Body::ModuleLoad { syscall: "finit_module", .. })
    });
    let Body::ModuleLoad { name, .. } = &ev.body else { unreachable!() };
    assert_eq!(*name, resolved("/bin/true"));
    let ev = wait_for(&s, "init_module", |ev| {
        ours(ev) && matches!(&ev.body, Body::ModuleLoad { syscall: "init_module", .. })
    });
    let Body::ModuleLoad { name, .. } = &ev.body else { unreachable!() };
    assert_eq!(name, "palisade_param=1");
    let ev = wait_for(&s, "setns", |ev| ours(ev) && matches!(ev.body, Body::Setns { .. }));
    let Body::Setns { nstype, fd } = ev.body else { unreachable!() };
    assert_eq!(nstype, 0x4000_0000);
    assert!(fd >= 0);
    let ev = wait_for(&s, "capset", |ev| ours(ev) && matches!(ev.body, Body::Capset { .. }));
    let Body::Capset { effective, permitted, .. } = ev.body else { unreachable!() };
    assert_ne!(effective, 0, "root has capabilities");
    assert_eq!(effective & permitted, effective);
    let ev = wait_for(&s, "mount of tmpfs", |ev| {
        ours(ev) && matches!(&ev.body, Body::Mount { fstype, .. } if fstype == "tmpfs")
    });
    let Body::Mount { source, target, .. } = &ev.body else { unreachable!() };
    assert_eq!(source, "palisade-tmp");
    assert_eq!(*target, dir.to_string_lossy());
    let _ = std::fs::remove_dir_all(&dir);
    s.stop();
}

#[test]
fn not_root_is_a_clear_error() {
    // Runs this test binary again as nobody: the BPF tests must skip loudly, not fail.
    let _g = lock();
    if palisade_sensor::check_support().is_err() {
        eprintln!("SKIPPED: needs root and BPF: not root already");
        return;
    }
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args(["--exact", "suffix_rule_and_write_only", "--nocapture", "--test-threads=1"])
        .output();
    let Ok(out) = out else {
        eprintln!("setpriv missing: non-root path not checked");
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && (err.contains("Permission denied") || err.contains("execute")) {
        // The checkout is not reachable by nobody (e.g. under /root): nothing to test.
        eprintln!("SKIPPED: this test binary cannot be run as nobody here: {err}");
        return;
    }
    assert!(out.status.success(), "as nobody: {err}");
    assert!(err.contains("SKIPPED: needs root and BPF: the sensor needs root"), "{err}");
    match Sensor::start(&SensorConfig::default()) {
        Ok(s) => s.stop(),
        Err(e) => panic!("root start failed: {e}"),
    }
}

#[test]
fn small_buffers_count_drops() {
    let _g = lock();
    let cfg = SensorConfig { ringbuf_bytes: 5000, channel_capacity: 1, snapshot: false, ..SensorConfig::default() };
    let Some(s) = start(&cfg) else { return };
    let h = s.health();
    assert_eq!(h.ringbuf_bytes, 8192, "rounded up to a power of two");
    assert_eq!(h.snapshot_source, palisade_sensor::SnapshotSource::None);
    assert!(s.snapshot().is_empty());
    for _ in 0..10 {
        let st = Command::new("/bin/true").status().expect("true");
        assert!(st.success());
    }
    // Nobody reads the channel (capacity 1): the polling thread must drop, not block.
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.health().dropped_user == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let h = s.health();
    assert!(h.dropped_user > 0, "{h:?}");
    assert!(h.events >= 10, "{h:?}");
    assert!(h.delivered >= 1);
    // Everything userspace saw was counted by the kernel first (other processes on the
    // machine keep adding events, so only the inequality is stable).
    let later = s.health();
    assert!(h.delivered + h.dropped_user + h.decode_errors <= later.events, "{h:?} {later:?}");
    s.stop();
}

fn ns_inode(ns: &str) -> u32 {
    let l = std::fs::read_link(format!("/proc/self/ns/{ns}")).expect("ns link");
    let l = l.to_string_lossy().into_owned();
    l.split('[').nth(1).and_then(|s| s.trim_end_matches(']').parse().ok()).expect("ns inode")
}

fn thread_comm() -> String {
    std::fs::read_to_string("/proc/thread-self/comm").expect("comm").trim_end().to_owned()
}

fn own_comm() -> String {
    std::fs::read_to_string("/proc/self/comm").expect("comm").trim_end().to_owned()
}

/// The cgroup leaf the sensor should report for us: v1 pids, v1 memory, then v2.
fn cgroup_leaf() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").expect("cgroup");
    let pick = |want: &dyn Fn(&str, &str) -> bool| {
        text.lines().find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (id, c, path) = (p.next()?, p.next()?, p.next()?);
            (want(id, c) && path != "/").then(|| path.rsplit('/').next().unwrap_or("").to_owned())
        })
    };
    pick(&|_, c| c.split(',').any(|x| x == "pids"))
        .or_else(|| pick(&|_, c| c.split(',').any(|x| x == "memory")))
        .or_else(|| pick(&|id, c| id == "0" && c.is_empty()))
        .unwrap_or_default()
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("palisade-sensor-{tag}-{}", me()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir temp");
    d
}

struct Unmount(PathBuf, PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}
