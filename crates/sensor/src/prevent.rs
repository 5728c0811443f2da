//! Optional binary-drift **prevention**: stop a container from executing a file that was not
//! in its image, before the file runs.
//!
//! Detection (the BPF exec event with `upper_layer`, and the `block` drift action that kills
//! the process) only acts after the new program started. [`ExecGuard`] uses fanotify
//! permission events instead: the kernel asks us before every exec on a protected mount and
//! waits for the answer.
//!
//! # Design
//!
//! - [`ExecGuard::start`] creates one fanotify group (`FAN_CLASS_CONTENT | FAN_CLOEXEC |
//!   FAN_NONBLOCK | FAN_UNLIMITED_QUEUE`; an unlimited queue because a permission event that
//!   does not fit in a full queue is silently *allowed* by the kernel) and one reader thread.
//! - [`ExecGuard::protect`] marks the root mount of a container — the mount of
//!   `/proc/<pid>/root`, as that process sees it (inside a container's mount namespace this is
//!   the namespace's own copy of the rootfs mount, which is the one its execs go through) —
//!   with `FAN_MARK_MOUNT` and `FAN_OPEN_EXEC_PERM`. The mount's `upperdir=` comes from
//!   `/proc/<pid>/mountinfo`; it is a path in the mount namespace of whoever mounted the
//!   overlay (the host's, for containerd, CRI-O and runc), so it is opened through
//!   `/proc/1/root` (the sensor in a pod with the host PID namespace) or else as is (the
//!   sensor in the host mount namespace), once, and kept as an `O_PATH` descriptor.
//! - For each exec event the reader looks up the protected mount by the event file's mount
//!   id (`statx` `STATX_MNT_ID_UNIQUE`, never reused, on 6.8+; the classic id before), takes
//!   the file's path from `/proc/self/fd/<n>` minus the path of the mount's root (both are
//!   computed by the kernel the same way, so this also works for mounts of another mount
//!   namespace, whose paths are relative to that namespace's root), and decides:
//!   - `<upperdir>/<path>` exists and is not a whiteout: the file was written in the
//!     container → consult the `allow` closure with the path as the container sees it →
//!     `FAN_DENY` (recorded as a [`Denial`]) unless allowed;
//!   - the file was unlinked after exec opened it (`" (deleted)"`), or `<upperdir>/<path>`
//!     is a whiteout (the path was removed after exec opened it): its origin cannot be
//!     proven, it is treated as upper (deny unless allowed);
//!   - otherwise (only in a lower, image layer) → `FAN_ALLOW`.
//!
//!   A denied exec fails with `EPERM` ("Operation not permitted"; shells exit with 126).
//! - **Every** permission event is answered, and its descriptor closed, whatever happens.
//!   Internal errors (an unknown mount, a failed `statx` or `readlink`, a panicking `allow`
//!   closure, a path outside the mount root) **allow** the exec and are counted in
//!   [`GuardStats::errors`]: prevention fails open, detection still sees the exec.
//! - The reader never holds a lock across I/O that [`ExecGuard::protect`] could hold for
//!   long: `protect` does all its I/O unlocked and only inserts under the lock, the reader
//!   clones the mount entry under the lock and then works unlocked.
//! - Dropping the guard stops the reader and closes the fanotify descriptor; the kernel then
//!   removes the marks and allows every pending event.
//!
//! # Deadlock risk, and why the host root is refused
//!
//! While an exec waits for our answer, the exec'ing task is blocked in the kernel. If the
//! answer depends on something that itself needs an exec on a marked mount (a helper the
//! sensor runs, the dynamic loader of a thread it starts, the kernel's usermode helpers such
//! as `modprobe` or core-dump pipes), or the sensor is stopped (SIGSTOP, a debugger, a frozen
//! cgroup, memory pressure), every exec on that mount hangs. On a container's rootfs that
//! hangs one container; on the host's root mount it hangs the node, including the tools
//! needed to recover it. So [`ExecGuard::protect`] refuses the mount when it is the root
//! mount of the sensor itself or of pid 1 (same mount id, or the same device and inode as
//! their root — a bind mount of the host root included), when it is not overlayfs, and when
//! the process root is not the root of its mount (a `chroot` into a subdirectory would mark
//! the whole enclosing mount).
//!
//! # Limits
//!
//! - Only execs through the container's root mount: volumes, bind mounts and tmpfs mounts
//!   inside the container are other mounts and are not marked.
//! - Only `execve`/`execveat` of a file (and the ELF interpreter and `#!` scripts it opens):
//!   `ld.so /tmp/x`, shared libraries loaded with `dlopen`/`LD_PRELOAD`, `sh /tmp/script`
//!   and `memfd` execs do not open the file for exec and are not stopped (the detection
//!   side still sees the latter).
//! - The upper-layer test is path based: a process in the container that renames the file
//!   away between the exec and our check to a path with no upper entry can win the race
//!   (the path is re-read after the check to narrow it).
//! - Marks are per mount: a container whose processes all exited takes its mount, and with
//!   it the mark, away; [`ExecGuard::release`] forgets it.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde::Serialize;

use crate::sys;

/// The `allow` closure of [`ExecGuard::protect`]: given the executable's path inside the
/// container, may it run although it is not from the image?
pub type AllowFn = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// At most this many [`Denial`]s are kept between two [`ExecGuard::take_denials`] calls (the
/// oldest are dropped).
pub const MAX_PENDING_DENIALS: usize = 4096;

const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
/// `sizeof(struct fanotify_event_metadata)`.
const METADATA_LEN: usize = 24;
const POLL_MS: i32 = 100;

/// Why the guard could not start or a mount could not be protected.
#[derive(Debug, thiserror::Error)]
pub enum PreventError {
    /// `fanotify_init` failed (needs root / CAP_SYS_ADMIN and `CONFIG_FANOTIFY_ACCESS_PERMISSIONS`).
    #[error("fanotify_init failed (needs CAP_SYS_ADMIN and a kernel with CONFIG_FANOTIFY_ACCESS_PERMISSIONS): {0}")]
    Init(#[source] io::Error),
    /// The reader thread could not be started.
    #[error("starting the fanotify reader thread: {0}")]
    Thread(#[source] io::Error),
    /// The process or its root could not be inspected (it may have exited).
    #[error("process {pid}: {what}: {source}")]
    Process {
        /// The process.
        pid: u32,
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The target is the host's root mount (or the same filesystem root): never marked.
    #[error("refusing to protect the root of process {pid}: it is the host root mount ({why}); a permission mark there could hang the node")]
    HostRoot {
        /// The process.
        pid: u32,
        /// Which comparison matched.
        why: String,
    },
    /// The target mount is not overlayfs (nothing to tell image files from written ones).
    #[error("refusing to protect the root of process {pid}: its root mount is {fstype}, not overlay")]
    NotOverlay {
        /// The process.
        pid: u32,
        /// The filesystem type found (or the magic number in hex).
        fstype: String,
    },
    /// The process root is a subdirectory of its mount (marking would cover the whole mount).
    #[error("refusing to protect the root of process {pid}: its root is not the root of a mount")]
    NotMountRoot {
        /// The process.
        pid: u32,
    },
    /// The overlay has no upper layer (read-only: no drift possible), or it is not visible.
    #[error("the root overlay of process {pid}: {why}")]
    NoUpperDir {
        /// The process.
        pid: u32,
        /// Details.
        why: String,
    },
    /// `fanotify_mark` failed.
    #[error("fanotify_mark on the root mount of process {pid}: {source}")]
    Mark {
        /// The process.
        pid: u32,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Counters of an [`ExecGuard`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GuardStats {
    /// Mounts currently protected.
    pub protected_mounts: usize,
    /// Execs allowed (image files, allow-listed drift, and internal errors).
    pub allowed: u64,
    /// Execs denied.
    pub denied: u64,
    /// Events that could not be decided (allowed) or answered, and malformed reads.
    pub errors: u64,
}

/// One denied exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The container id given to [`ExecGuard::protect`].
    pub container_id: String,
    /// The executable's path inside the container.
    pub path: String,
    /// The process that tried (as seen by the sensor; the exec'ing process keeps its pid).
    pub pid: i32,
}

/// One protected mount.
struct Protected {
    container_id: String,
    pid: u32,
    mnt_key: u64,
    /// The mount root's path as `/proc/self/fd` shows it (the prefix of event paths).
    root_path: String,
    /// The upper directory as resolved (for messages).
    upperdir: PathBuf,
    /// An `O_PATH` descriptor of it: lookups go through `/proc/self/fd/<n>/...`, immune to
    /// later changes of the path or of pid 1.
    upper_fd: File,
    allow: AllowFn,
}

#[derive(Default)]
struct Table {
    by_mount: HashMap<u64, Arc<Protected>>,
    by_container: HashMap<String, u64>,
}

struct Inner {
    fan: File,
    stop: AtomicBool,
    table: Mutex<Table>,
    denials: Mutex<VecDeque<Denial>>,
    allowed: AtomicU64,
    denied: AtomicU64,
    errors: AtomicU64,
}

impl Inner {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Exec prevention for container root filesystems (see the [module docs](self)).
///
/// `Send + Sync`; dropping it stops the reader thread and closes the fanotify group, which
/// removes every mark and allows every pending exec.
pub struct ExecGuard {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ExecGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecGuard")
            .field("fanotify_fd", &self.inner.fan.as_raw_fd())
            .field("stats", &self.stats())
            .finish()
    }
}

impl ExecGuard {
    /// Creates the fanotify group (`FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK |
    /// FAN_UNLIMITED_QUEUE`, events opened `O_RDONLY | O_LARGEFILE | O_CLOEXEC`) and starts
    /// the reader thread. Nothing is marked yet.
    pub fn start() -> Result<ExecGuard, PreventError> {
        let flags = libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK | libc::FAN_UNLIMITED_QUEUE;
        #[allow(clippy::cast_sign_loss)]
        let ev_flags = (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32;
        let fd = sys::fanotify_init(flags, ev_flags).map_err(PreventError::Init)?;
        let inner = Arc::new(Inner {
            fan: File::from(fd),
            stop: AtomicBool::new(false),
            table: Mutex::new(Table::default()),
            denials: Mutex::new(VecDeque::new()),
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        let reader = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("palisade-execguard".into())
            .spawn(move || reader_loop(&reader))
            .map_err(PreventError::Thread)?;
        Ok(ExecGuard { inner, thread: Some(thread) })
    }

    /// Protects the root mount of the container whose process is `pid` (the mount of
    /// `/proc/<pid>/root`): from now on an exec of a file on its overlay upper layer fails
    /// unless `allow(path inside the container)` returns true.
    ///
    /// Returns `Ok(false)` when the container id or its mount is already protected. Refuses
    /// (and marks nothing) when the mount is the host's root mount, is not overlayfs, has no
    /// upper layer, or the process root is not a mount root.
    pub fn protect(&self, container_id: &str, pid: u32, allow: AllowFn) -> Result<bool, PreventError> {
        if self.inner.table().by_container.contains_key(container_id) {
            return Ok(false);
        }
        let perr = |what: &'static str| move |source: io::Error| PreventError::Process { pid, what, source };
        let root = File::open(format!("/proc/{pid}/root")).map_err(perr("opening its root"))?;
        let st = sys::fd_stat(root.as_fd()).map_err(perr("statx of its root"))?;

        // Never the host root, whatever else is true.
        check_not_host_root(pid, &st)?;
        let magic = sys::fs_magic(root.as_fd()).map_err(perr("statfs of its root"))?;
        if magic != OVERLAYFS_SUPER_MAGIC {
            return Err(PreventError::NotOverlay { pid, fstype: format!("filesystem magic {magic:#x}") });
        }
        if st.mount_root == Some(false) {
            return Err(PreventError::NotMountRoot { pid });
        }
        let mnt_id = st.mnt_id.ok_or_else(|| PreventError::NoUpperDir {
            pid,
            why: "the kernel gives no classic mount id to look up in mountinfo".into(),
        })?;
        let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).map_err(perr("reading mountinfo"))?;
        let m = find_mount(&mountinfo, mnt_id).ok_or_else(|| PreventError::NoUpperDir {
            pid,
            why: format!("mount id {mnt_id} not found in /proc/{pid}/mountinfo"),
        })?;
        if m.fstype != "overlay" {
            return Err(PreventError::NotOverlay { pid, fstype: m.fstype });
        }
        if m.root != "/" {
            return Err(PreventError::NotMountRoot { pid });
        }
        let upperdir = m.upperdir.ok_or_else(|| PreventError::NoUpperDir {
            pid,
            why: "no upperdir= (a read-only overlay cannot drift)".into(),
        })?;
        let (upperdir, upper_fd) = open_upperdir(&upperdir).ok_or_else(|| PreventError::NoUpperDir {
            pid,
            why: format!(
                "upperdir {upperdir} is neither visible under /proc/1/root nor in the sensor's mount namespace"
            ),
        })?;
        let root_path = fd_path(&root).map_err(perr("reading the path of its root"))?;
        if root_path.ends_with(" (deleted)") {
            return Err(PreventError::Process {
                pid,
                what: "its root",
                source: io::Error::new(io::ErrorKind::NotFound, "the root is deleted"),
            });
        }

        let entry = Arc::new(Protected {
            container_id: container_id.to_string(),
            pid,
            mnt_key: st.mnt_key,
            root_path,
            upperdir,
            upper_fd,
            allow,
        });
        {
            let mut t = self.inner.table();
            if t.by_container.contains_key(container_id) || t.by_mount.contains_key(&st.mnt_key) {
                return Ok(false);
            }
            t.by_mount.insert(st.mnt_key, Arc::clone(&entry));
            t.by_container.insert(container_id.to_string(), st.mnt_key);
        }
        // Entry first, then the mark: an event can only arrive once marked, and then it finds
        // the entry.
        let marked = sys::fanotify_mark(
            self.inner.fan.as_fd(),
            libc::FAN_MARK_ADD | libc::FAN_MARK_MOUNT,
            libc::FAN_OPEN_EXEC_PERM,
            root.as_fd(),
        );
        if let Err(source) = marked {
            let mut t = self.inner.table();
            t.by_mount.remove(&st.mnt_key);
            t.by_container.remove(container_id);
            return Err(PreventError::Mark { pid, source });
        }
        tracing::info!(container_id, pid, upperdir = %entry.upperdir.display(), root = %entry.root_path, "exec prevention on");
        Ok(true)
    }

    /// Forgets a container and removes its mark (best effort: the mark is removed through
    /// `/proc/<pid>/root` of the pid given to [`protect`](Self::protect) if that still
    /// leads to the same mount; a mount that went away took its mark with it).
    pub fn release(&self, container_id: &str) {
        let entry = {
            let mut t = self.inner.table();
            let Some(key) = t.by_container.remove(container_id) else { return };
            t.by_mount.remove(&key)
        };
        let Some(entry) = entry else { return };
        let Ok(root) = File::open(format!("/proc/{}/root", entry.pid)) else { return };
        match sys::fd_stat(root.as_fd()) {
            Ok(st) if st.mnt_key == entry.mnt_key => {
                if let Err(e) = sys::fanotify_mark(
                    self.inner.fan.as_fd(),
                    libc::FAN_MARK_REMOVE | libc::FAN_MARK_MOUNT,
                    libc::FAN_OPEN_EXEC_PERM,
                    root.as_fd(),
                ) {
                    tracing::debug!(container_id, error = %e, "removing the exec mark");
                }
            }
            _ => {}
        }
    }

    /// Counters.
    pub fn stats(&self) -> GuardStats {
        GuardStats {
            protected_mounts: self.inner.table().by_mount.len(),
            allowed: self.inner.allowed.load(Ordering::Relaxed),
            denied: self.inner.denied.load(Ordering::Relaxed),
            errors: self.inner.errors.load(Ordering::Relaxed),
        }
    }

    /// The denials since the last call (at most [`MAX_PENDING_DENIALS`]), oldest first.
    pub fn take_denials(&self) -> Vec<Denial> {
        let mut d = self.inner.denials.lock().unwrap_or_else(|e| e.into_inner());
        d.drain(..).collect()
    }
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The reader's Arc is gone with the thread: dropping ours closes the group.
    }
}

/// Refuses the root of `pid` when it is the root mount of the sensor or of pid 1.
fn check_not_host_root(pid: u32, st: &sys::FdStat) -> Result<(), PreventError> {
    let mut compared = 0;
    for host in ["/proc/1/root", "/proc/self/root", "/"] {
        let Ok(f) = File::open(host) else { continue };
        let Ok(h) = sys::fd_stat(f.as_fd()) else { continue };
        compared += 1;
        if h.mnt_key == st.mnt_key {
            return Err(PreventError::HostRoot { pid, why: format!("same mount as {host}") });
        }
        if h.dev == st.dev && h.ino == st.ino {
            return Err(PreventError::HostRoot { pid, why: format!("same device and inode as {host}") });
        }
    }
    if compared == 0 {
        return Err(PreventError::HostRoot { pid, why: "the host root could not be inspected".into() });
    }
    Ok(())
}

/// Opens the overlay's `upperdir` (a path in the mounter's mount namespace: the host's for
/// containerd, CRI-O and runc): first through `/proc/1/root` (the host's namespace when the
/// sensor runs in a container with the host PID namespace), then as is (the sensor in the
/// host mount namespace).
fn open_upperdir(upperdir: &str) -> Option<(PathBuf, File)> {
    use std::os::unix::fs::OpenOptionsExt;
    if !upperdir.starts_with('/') {
        return None;
    }
    [format!("/proc/1/root{upperdir}"), upperdir.to_string()].into_iter().find_map(|p| {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&p)
            .ok()?;
        Some((PathBuf::from(p), f))
    })
}

/// The path `/proc/self/fd/<n>` shows for `fd`.
fn fd_path(fd: &impl AsRawFd) -> io::Result<String> {
    let p = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    p.into_os_string().into_string().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "path is not UTF-8"))
}

/// What mountinfo says about one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountLine {
    root: String,
    mount_point: String,
    fstype: String,
    upperdir: Option<String>,
}

/// Finds mount `id` in a mountinfo text.
fn find_mount(mountinfo: &str, id: u64) -> Option<MountLine> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut f = left.split(' ');
        if f.next()?.parse::<u64>().ok()? != id {
            return None;
        }
        let _parent = f.next()?;
        let _devno = f.next()?;
        let root = unescape(f.next()?);
        let mount_point = unescape(f.next()?);
        let mut r = right.split(' ');
        let fstype = unescape(r.next()?);
        let _source = r.next()?;
        let opts = r.next().unwrap_or("");
        let upperdir = opts.split(',').find_map(|o| o.strip_prefix("upperdir=")).map(unescape);
        Some(MountLine { root, mount_point, fstype, upperdir })
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\054` for a comma, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let (b'\\', Some(&[d1, d2, d3])) = (b[i], b.get(i + 1..i + 4)) {
            if [d1, d2, d3].iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(d1 - b'0') * 64 + u32::from(d2 - b'0') * 8 + u32::from(d3 - b'0');
                if let Ok(c) = u8::try_from(v) {
                    out.push(c);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One decoded `struct fanotify_event_metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EventMeta {
    mask: u64,
    fd: i32,
    pid: i32,
}

/// Why a read buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ParseError {
    Short { at: usize },
    Version { at: usize, vers: u8 },
    Length { at: usize, event_len: usize, metadata_len: usize },
}

/// Decodes a fanotify read buffer: every record is bounds-checked (`event_len` within the
/// buffer and at least `metadata_len`, `metadata_len` at least the v3 metadata size) and
/// must carry `FANOTIFY_METADATA_VERSION`. Records before a malformed one are returned with
/// the error.
/// Parses a fanotify read buffer and returns how many events it held (for fuzzing the parser
/// outside the kernel).
#[doc(hidden)]
pub fn fuzz_parse_events(buf: &[u8]) -> usize {
    parse_events(buf).0.len()
}

fn parse_events(buf: &[u8]) -> (Vec<EventMeta>, Option<ParseError>) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let Some(rec) = buf.get(at..at + METADATA_LEN) else {
            return (out, Some(ParseError::Short { at }));
        };
        let u32_at = |o: usize| u32::from_ne_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]]);
        let event_len = u32_at(0) as usize;
        let vers = rec[4];
        let metadata_len = usize::from(u16::from_ne_bytes([rec[6], rec[7]]));
        if vers != libc::FANOTIFY_METADATA_VERSION {
            return (out, Some(ParseError::Version { at, vers }));
        }
        if metadata_len < METADATA_LEN || event_len < metadata_len || event_len > buf.len() - at {
            return (out, Some(ParseError::Length { at, event_len, metadata_len }));
        }
        let mask = u64::from(u32_at(8)) | (u64::from(u32_at(12)) << 32);
        let mask = if cfg!(target_endian = "little") { mask } else { mask.rotate_left(32) };
        #[allow(clippy::cast_possible_wrap)]
        let (fd, pid) = (u32_at(16) as i32, u32_at(20) as i32);
        out.push(EventMeta { mask, fd, pid });
        at += event_len;
    }
    (out, None)
}

/// The `struct fanotify_response` bytes.
fn response(fd: i32, allow: bool) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&fd.to_ne_bytes());
    b[4..].copy_from_slice(&(if allow { libc::FAN_ALLOW } else { libc::FAN_DENY }).to_ne_bytes());
    b
}

fn reader_loop(inner: &Inner) {
    let mut buf = vec![0u8; 64 * 1024];
    while !inner.stop.load(Ordering::Relaxed) {
        match sys::poll_readable(inner.fan.as_fd(), POLL_MS) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "exec guard: poll");
                inner.error();
                std::thread::sleep(std::time::Duration::from_millis(u64::from(POLL_MS.unsigned_abs())));
                continue;
            }
        }
        let n = match (&inner.fan).read(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "exec guard: read");
                inner.error();
                continue;
            }
        };
        let (events, err) = parse_events(buf.get(..n).unwrap_or(&[]));
        if let Some(e) = err {
            // Cannot happen with a kernel that speaks metadata version 3; the records after
            // the bad one cannot be located, so their descriptors (and answers) are lost
            // until the guard is dropped.
            tracing::error!(?e, "exec guard: malformed fanotify read");
            inner.error();
        }
        for ev in events {
            handle_event(inner, ev);
        }
    }
}

/// Answers one event (always, when it has a descriptor) and closes its descriptor.
fn handle_event(inner: &Inner, ev: EventMeta) {
    let Some(fd) = sys::take_event_fd(ev.fd) else {
        // FAN_NOFD: a queue overflow notice (not expected with an unlimited queue).
        inner.error();
        return;
    };
    let allow = if ev.mask & libc::FAN_OPEN_EXEC_PERM != 0 {
        match catch_unwind(AssertUnwindSafe(|| decide(inner, &fd, ev.pid))) {
            Ok(Ok(allow)) => allow,
            Ok(Err(why)) => {
                tracing::debug!(pid = ev.pid, why, "exec guard: undecidable exec allowed");
                inner.error();
                true
            }
            Err(_) => {
                tracing::error!(pid = ev.pid, "exec guard: panic while deciding; allowed");
                inner.error();
                true
            }
        }
    } else {
        // Some other permission event would also wait for an answer.
        true
    };
    if allow {
        inner.allowed.fetch_add(1, Ordering::Relaxed);
    } else {
        inner.denied.fetch_add(1, Ordering::Relaxed);
    }
    if let Err(e) = (&inner.fan).write_all(&response(fd.as_raw_fd(), allow)) {
        tracing::warn!(error = %e, pid = ev.pid, "exec guard: writing the response");
        inner.error();
    }
    drop(fd);
}

/// Where an executed file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Written in the container (or unprovable: deleted, whiteout).
    Upper,
    /// From an image layer.
    Lower,
}

/// Allow (`true`) or deny one exec; `Err` = undecidable (the caller allows and counts it).
fn decide(inner: &Inner, fd: &OwnedFd, pid: i32) -> Result<bool, String> {
    let key = sys::fd_mount_key(fd.as_fd()).map_err(|e| format!("statx: {e}"))?;
    let Some(entry) = inner.table().by_mount.get(&key).cloned() else {
        return Err(format!("exec on unprotected mount {key}"));
    };
    let mut path = fd_path(fd).map_err(|e| format!("readlink: {e}"))?;
    let mut tries = 0;
    let (inside, origin) = loop {
        let (inside, origin) = classify(&entry, &path)?;
        if origin == Origin::Upper {
            break (inside, origin);
        }
        // Lower: make sure the file did not move while we looked.
        let again = fd_path(fd).map_err(|e| format!("readlink: {e}"))?;
        if again == path {
            break (inside, origin);
        }
        tries += 1;
        if tries >= 3 {
            break (inside, Origin::Upper);
        }
        path = again;
    };
    if origin == Origin::Lower {
        return Ok(true);
    }
    let allow = Arc::clone(&entry.allow);
    if allow(&inside) {
        tracing::debug!(container_id = %entry.container_id, path = %inside, "exec guard: allow-listed drift");
        return Ok(true);
    }
    tracing::warn!(container_id = %entry.container_id, path = %inside, pid, "exec guard: denied exec of a file not in the image");
    let mut d = inner.denials.lock().unwrap_or_else(|e| e.into_inner());
    if d.len() >= MAX_PENDING_DENIALS {
        d.pop_front();
    }
    d.push_back(Denial { container_id: entry.container_id.clone(), path: inside, pid });
    Ok(false)
}

/// The path inside the container and the origin of the file at `path` (as
/// `/proc/self/fd` shows it).
fn classify(entry: &Protected, path: &str) -> Result<(String, Origin), String> {
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    let inside = inside_path(&entry.root_path, path)
        .ok_or_else(|| format!("{path} is not under the mount root {}", entry.root_path))?;
    if deleted {
        return Ok((inside, Origin::Upper));
    }
    let upper =
        PathBuf::from(format!("/proc/self/fd/{}", entry.upper_fd.as_raw_fd())).join(inside.trim_start_matches('/'));
    match std::fs::symlink_metadata(&upper) {
        // A whiteout (char device 0/0) means the path was removed after exec opened it:
        // unprovable, treated as upper.
        Ok(_) => Ok((inside, Origin::Upper)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((inside, Origin::Lower)),
        // A non-directory in the upper layer where the path needs a directory: the path
        // changed after exec opened the file; unprovable.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok((inside, Origin::Upper)),
        Err(e) => Err(format!("lstat {}: {e}", upper.display())),
    }
}

/// `path` relative to `root` with a leading `/`, if it is under it.
fn inside_path(root: &str, path: &str) -> Option<String> {
    if root == "/" {
        return path.starts_with('/').then(|| path.to_string());
    }
    let rest = path.strip_prefix(root)?;
    if rest.is_empty() {
        Some("/".into())
    } else if rest.starts_with('/') {
        Some(rest.to_string())
    } else {
        None
    }
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<ExecGuard>();
};

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(event_len: u32, vers: u8, metadata_len: u16, mask: u64, fd: i32, pid: i32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&event_len.to_ne_bytes());
        b.push(vers);
        b.push(0);
        b.extend_from_slice(&metadata_len.to_ne_bytes());
        b.extend_from_slice(&mask.to_ne_bytes());
        b.extend_from_slice(&fd.to_ne_bytes());
        b.extend_from_slice(&pid.to_ne_bytes());
        b
    }

    #[test]
    fn parses_and_bounds_checks_events() {
        let v = libc::FANOTIFY_METADATA_VERSION;
        let mut buf = rec(24, v, 24, libc::FAN_OPEN_EXEC_PERM, 7, 42);
        buf.extend(rec(24, v, 24, libc::FAN_OPEN_EXEC_PERM | (1 << 40), 8, 43));
        let (ev, err) = parse_events(&buf);
        assert_eq!(err, None);
        assert_eq!(
            ev,
            vec![
                EventMeta { mask: libc::FAN_OPEN_EXEC_PERM, fd: 7, pid: 42 },
                EventMeta { mask: libc::FAN_OPEN_EXEC_PERM | (1 << 40), fd: 8, pid: 43 },
            ]
        );
        // info records after the metadata are skipped by event_len
        let mut buf = rec(32, v, 24, 1, 3, 4);
        buf.extend([0u8; 8]);
        buf.extend(rec(24, v, 24, 2, 5, 6));
        let (ev, err) = parse_events(&buf);
        assert_eq!((ev.len(), err), (2, None));
        // truncated, bad version, bad lengths, zero length (no endless loop)
        let mut short = rec(24, v, 24, 1, 3, 4);
        short.extend(&rec(24, v, 24, 1, 3, 4)[..6]);
        assert!(matches!(parse_events(&short), (ref e, Some(ParseError::Short { at: 24 })) if e.len() == 1));
        assert!(matches!(parse_events(&buf[..30]).1, Some(ParseError::Length { at: 0, .. })));
        assert!(matches!(parse_events(&rec(24, 2, 24, 1, 3, 4)).1, Some(ParseError::Version { .. })));
        assert!(matches!(parse_events(&rec(0, v, 24, 1, 3, 4)).1, Some(ParseError::Length { .. })));
        assert!(matches!(parse_events(&rec(24, v, 0, 1, 3, 4)).1, Some(ParseError::Length { .. })));
        assert!(matches!(parse_events(&rec(48, v, 24, 1, 3, 4)).1, Some(ParseError::Length { .. })));
        assert!(matches!(parse_events(&rec(24, v, 32, 1, 3, 4)).1, Some(ParseError::Length { .. })));
        assert_eq!(parse_events(&[]), (vec![], None));
    }

    #[test]
    fn response_layout() {
        let r = response(9, false);
        assert_eq!(i32::from_ne_bytes([r[0], r[1], r[2], r[3]]), 9);
        assert_eq!(u32::from_ne_bytes([r[4], r[5], r[6], r[7]]), libc::FAN_DENY);
        let r = response(9, true);
        assert_eq!(u32::from_ne_bytes([r[4], r[5], r[6], r[7]]), libc::FAN_ALLOW);
    }

    #[test]
    fn paths_inside_the_mount() {
        assert_eq!(inside_path("/", "/tmp/x").as_deref(), Some("/tmp/x"));
        assert_eq!(inside_path("/run/c/merged", "/run/c/merged/tmp/x").as_deref(), Some("/tmp/x"));
        assert_eq!(inside_path("/run/c/merged", "/run/c/merged").as_deref(), Some("/"));
        assert_eq!(inside_path("/run/c/merged", "/run/c/merged2/x"), None);
        assert_eq!(inside_path("/run/c/merged", "/etc/x"), None);
    }

    #[test]
    fn mountinfo_lookup_and_unescape() {
        let mi = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                  612 22 0:77 / /run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw,relatime shared:300 - overlay overlay rw,lowerdir=/var/lib/l/1/fs:/var/lib/l/2/fs,upperdir=/var/lib/with\\040space\\054comma/fs,workdir=/var/lib/w/work,uuid=on\n\
                  700 612 0:80 /sub /x rw - tmpfs tmpfs rw\n";
        let m = find_mount(mi, 612).expect("found");
        assert_eq!(m.fstype, "overlay");
        assert_eq!(m.root, "/");
        assert!(m.mount_point.ends_with("/abc/rootfs"));
        assert_eq!(m.upperdir.as_deref(), Some("/var/lib/with space,comma/fs"));
        assert_eq!(find_mount(mi, 22).map(|m| (m.fstype, m.upperdir)), Some(("ext4".into(), None)));
        assert_eq!(find_mount(mi, 700).map(|m| m.root), Some("/sub".into()));
        assert!(find_mount(mi, 61).is_none());
        assert_eq!(unescape("a\\134b\\"), "a\\b\\");
        assert_eq!(unescape("\\04"), "\\04");
    }
}
