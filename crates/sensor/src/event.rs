//! Ring-buffer records and their decoding.
//!
//! Every record written by the BPF programs is a fixed 200-byte header followed by a body whose
//! layout depends on the header's `kind`. All integers are native-endian (the sensor runs on the
//! machine that produced them) and naturally aligned. Strings are fixed-size, NUL-padded byte
//! arrays; they are cut at the first NUL and decoded lossily as UTF-8.
//!
//! ```text
//! header (200 bytes)
//!   0 u16 kind        2 u16 version    4 u32 padding
//!   8 u64 time (CLOCK_BOOTTIME ns)     16 u64 cgroup v2 id
//!  24 u32 pid (tgid) 28 u32 tid        32 u32 ppid        36 u32 uid
//!  40 u32 euid       44 u32 gid        48 u32 mnt ns inum 52 u32 pid ns inum
//!  56 char comm[16]  72 char cgroup leaf name[128]
//! bodies (offsets from 200)
//!   1 exec     0 u32 flags (1 upper layer, 2 fileless, 4 stdio socket, 8 tty) 4 u32 args_len
//!              8 parent comm[16] 24 filename[256] 280 exe[512] 792 cwd[512] 1304 args[1024]
//!   2 exit     0 i32 wait status
//!   3..6 file  0 u32 open flags 4 u32 mode 8 path[256] 264 path2[256] (rename only)
//!   7 connect  0 u16 family 2 u16 port 4 i32 sock type 8 i32 fd 16 u8 addr[16] 32 sun_path[108]
//!   8 setid    0 u32 which 8 i64 ids[3]
//!   9 capset   0 u32 version 4 i32 target 8 u64 effective 16 u64 permitted 24 u64 inheritable
//!  10 ptrace   0 i64 request 8 i32 target
//!  11 module   0 u32 syscall (0 init_module, 1 finit_module) 4 i32 fd 8 name[256]
//!  12 mount    0 u64 flags 8 source[256] 264 target[256] 520 fstype[64]
//!  13 unshare / 14 setns   0 u64 flags or nstype 8 i32 fd
//!  15 memfd    0 u32 flags 8 name[256]
//! ```
//!
//! [`decode`] is pure and total: any byte slice yields either an event or a [`DecodeError`],
//! never a panic, and allocation is bounded by the input length.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// Size of the common header.
pub const HDR_LEN: usize = 200;
/// The layout version the BPF programs write (`EVENT_VERSION` in `sensor.bpf.c`).
pub const EVENT_VERSION: u16 = 1;

const K_EXEC: u16 = 1;
const K_EXIT: u16 = 2;
const K_OPEN: u16 = 3;
const K_UNLINK: u16 = 4;
const K_RENAME: u16 = 5;
const K_CHMOD: u16 = 6;
const K_CONNECT: u16 = 7;
const K_SETID: u16 = 8;
const K_CAPSET: u16 = 9;
const K_PTRACE: u16 = 10;
const K_MODULE: u16 = 11;
const K_MOUNT: u16 = 12;
const K_UNSHARE: u16 = 13;
const K_SETNS: u16 = 14;
const K_MEMFD: u16 = 15;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The record is shorter than its kind requires.
    #[error("truncated record: {kind} needs {need} bytes, got {got}")]
    Truncated {
        /// What was being decoded.
        kind: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// The header names an unknown event kind.
    #[error("unknown event kind {0}")]
    UnknownKind(u16),
    /// The header carries a layout version this decoder does not know.
    #[error("unsupported event layout version {0} (expected {EVENT_VERSION})")]
    Version(u16),
}

/// One decoded ring-buffer record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawEvent {
    /// `bpf_ktime_get_boot_ns()` at the event; see [`crate::TimeOffset`] for wall-clock time.
    pub time_ns_boot: u64,
    /// The task that caused the event.
    pub task: TaskHeader,
    /// What happened.
    pub body: Body,
}

/// The task fields common to every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskHeader {
    /// Process id (tgid), in the initial pid namespace.
    pub pid: u32,
    /// Thread id, in the initial pid namespace.
    pub tid: u32,
    /// The real parent's tgid.
    pub ppid: u32,
    /// Real user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Real group id.
    pub gid: u32,
    /// Task name (`comm`, at most 15 bytes). For an exec event, the new program's.
    pub comm: String,
    /// cgroup v2 id (`bpf_get_current_cgroup_id`; the kernfs node id).
    pub cgroup_id: u64,
    /// Leaf directory name of the task's cgroup: the v1 `pids` hierarchy if the task is in a
    /// non-root cgroup there, else v1 `memory`, else v2; empty for a root cgroup. Container
    /// runtimes put the container id here (`cri-containerd-<id>.scope`, `crio-<id>.scope`,
    /// `libpod-<id>.scope`, `docker-<id>.scope` or plain `<id>`).
    pub cgroup_name: String,
    /// Mount namespace inode number.
    pub mntns: u32,
    /// Pid namespace inode number (the namespace the task's pid lives in).
    pub pidns: u32,
}

/// Details of a program execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecInfo {
    /// The file name as passed to execve (`bprm->filename`); may be relative.
    pub filename: String,
    /// The executable's path resolved from its dentry up to the task's root (as the container
    /// sees it), at most 32 components; deeper paths lose their top components.
    pub exe: String,
    /// Arguments, from the new program's `argv` memory (at most 1 KiB in all; the last one
    /// may be cut).
    pub args: Vec<String>,
    /// Current working directory, resolved like `exe`.
    pub cwd: String,
    /// The parent's `comm`.
    pub parent_comm: String,
    /// The executable is on an overlayfs upper layer: it was written or modified after the
    /// container started (binary drift).
    pub upper_layer: bool,
    /// The executable is a memfd or an unlinked file (fileless execution).
    pub fileless: bool,
    /// One of fds 0, 1, 2 is a socket (reverse-shell signal).
    pub stdio_socket: bool,
    /// The task has a controlling terminal.
    pub tty: bool,
}

/// What happened, by event kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// A successful execve/execveat (`sched_process_exec`).
    Exec(ExecInfo),
    /// The last thread of a process exited.
    Exit {
        /// Exit status (`WEXITSTATUS`), valid when `signal` is 0.
        code: i32,
        /// Terminating signal (`WTERMSIG`), 0 for a normal exit.
        signal: i32,
    },
    /// open/openat/openat2 of a path that matched a rule (reported on syscall entry: the
    /// open may still fail).
    Open {
        /// The path as passed (may be relative).
        path: String,
        /// Open flags (`O_*`).
        flags: u32,
    },
    /// unlink/unlinkat of a path that matched a rule.
    Unlink {
        /// The path as passed.
        path: String,
    },
    /// rename/renameat/renameat2 where either name matched a rule.
    Rename {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// chmod/fchmodat/fchmodat2 setting setuid, setgid or an execute bit.
    Chmod {
        /// The path as passed.
        path: String,
        /// The new mode.
        mode: u32,
    },
    /// connect(2) to an IPv4, IPv6 or unix address (on entry: may still fail).
    Connect {
        /// `AF_INET` (2), `AF_INET6` (10) or `AF_UNIX` (1).
        family: u16,
        /// Socket type (`SOCK_STREAM` 1, `SOCK_DGRAM` 2, `SOCK_SEQPACKET` 5, ...), if known.
        sock_type: Option<i32>,
        /// Destination address, for inet families.
        addr: Option<IpAddr>,
        /// Destination port, for inet families.
        port: u16,
        /// Unix socket path; abstract names start with `@`.
        unix_path: String,
    },
    /// One of the set*id syscalls.
    SetId {
        /// `setuid`, `setgid`, `setreuid`, `setregid`, `setresuid` or `setresgid`.
        syscall: &'static str,
        /// The ids as passed, in argument order; -1 means "unchanged" or "not an argument".
        ids: [i64; 3],
    },
    /// capset(2).
    Capset {
        /// Target pid (0: the caller).
        target: i32,
        /// Requested effective set.
        effective: u64,
        /// Requested permitted set.
        permitted: u64,
        /// Requested inheritable set.
        inheritable: u64,
    },
    /// ptrace(2) with an attach, seize or poke request.
    Ptrace {
        /// The request (`PTRACE_ATTACH` 16, `PTRACE_SEIZE` 0x4206, `PTRACE_POKE*` 4..6).
        request: i64,
        /// Target pid.
        target: i32,
    },
    /// init_module/finit_module attempt (seen on entry, so also when it fails).
    ModuleLoad {
        /// finit_module: the module file's path; init_module: the parameter string.
        name: String,
        /// `init_module` or `finit_module`.
        syscall: &'static str,
    },
    /// mount(2).
    Mount {
        /// Source (device, directory, or fs-specific).
        source: String,
        /// Mount point.
        target: String,
        /// Filesystem type.
        fstype: String,
        /// `MS_*` flags.
        flags: u64,
    },
    /// unshare(2).
    Unshare {
        /// `CLONE_*` flags.
        flags: u64,
    },
    /// setns(2).
    Setns {
        /// Namespace type (`CLONE_NEW*`), 0 for any.
        nstype: u64,
        /// The namespace fd.
        fd: i32,
    },
    /// memfd_create(2).
    MemfdCreate {
        /// The name given.
        name: String,
        /// `MFD_*` flags.
        flags: u32,
    },
}

/// Bounds-checked little reader over one record.
struct Rd<'a> {
    b: &'a [u8],
    kind: &'static str,
}

impl<'a> Rd<'a> {
    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.b.len() < n {
            return Err(DecodeError::Truncated { kind: self.kind, need: n, got: self.b.len() });
        }
        Ok(())
    }
    fn bytes(&self, off: usize, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = off.saturating_add(len);
        self.need(end)?;
        Ok(self.b.get(off..end).unwrap_or_default())
    }
    fn arr<const N: usize>(&self, off: usize) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(off, N)?);
        Ok(a)
    }
    fn u16(&self, off: usize) -> Result<u16, DecodeError> {
        Ok(u16::from_ne_bytes(self.arr(off)?))
    }
    fn u32(&self, off: usize) -> Result<u32, DecodeError> {
        Ok(u32::from_ne_bytes(self.arr(off)?))
    }
    fn i32(&self, off: usize) -> Result<i32, DecodeError> {
        Ok(i32::from_ne_bytes(self.arr(off)?))
    }
    fn u64(&self, off: usize) -> Result<u64, DecodeError> {
        Ok(u64::from_ne_bytes(self.arr(off)?))
    }
    fn i64(&self, off: usize) -> Result<i64, DecodeError> {
        Ok(i64::from_ne_bytes(self.arr(off)?))
    }
    fn str(&self, off: usize, len: usize) -> Result<String, DecodeError> {
        Ok(cstr(self.bytes(off, len)?))
    }
}

/// A NUL-padded C string field as a `String` (lossy UTF-8).
pub(crate) fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned()
}

fn decode_header(r: &Rd<'_>) -> Result<(u16, u64, TaskHeader), DecodeError> {
    r.need(HDR_LEN)?;
    let kind = r.u16(0)?;
    let version = r.u16(2)?;
    if version != EVENT_VERSION {
        return Err(DecodeError::Version(version));
    }
    let task = TaskHeader {
        pid: r.u32(24)?,
        tid: r.u32(28)?,
        ppid: r.u32(32)?,
        uid: r.u32(36)?,
        euid: r.u32(40)?,
        gid: r.u32(44)?,
        comm: r.str(56, 16)?,
        cgroup_id: r.u64(16)?,
        cgroup_name: r.str(72, 128)?,
        mntns: r.u32(48)?,
        pidns: r.u32(52)?,
    };
    Ok((kind, r.u64(8)?, task))
}

fn split_args(b: &[u8]) -> Vec<String> {
    let b = match b.iter().rposition(|&c| c != 0) {
        Some(last) => b.get(..=last).unwrap_or_default(),
        None => return Vec::new(),
    };
    b.split(|&c| c == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

fn unix_path(b: &[u8]) -> String {
    match b.split_first() {
        // Abstract socket: leading NUL, then a name that may itself hold NULs.
        Some((0, rest)) => {
            let end = rest.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
            if end == 0 {
                return String::new(); // autobind / unnamed
            }
            let name: String = String::from_utf8_lossy(rest.get(..end).unwrap_or_default())
                .chars()
                .map(|c| if c == '\0' { '@' } else { c })
                .collect();
            format!("@{name}")
        }
        _ => cstr(b),
    }
}

/// Decode one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<RawEvent, DecodeError> {
    let h = Rd { b: bytes, kind: "header" };
    let (kind, time_ns_boot, task) = decode_header(&h)?;
    let body = bytes.get(HDR_LEN..).unwrap_or_default();
    let body = match kind {
        K_EXEC => {
            let r = Rd { b: body, kind: "exec" };
            let flags = r.u32(0)?;
            let args_len = r.u32(4)? as usize;
            let avail = body.len().saturating_sub(1304).min(1024);
            let args = split_args(r.bytes(1304, args_len.min(avail))?);
            Body::Exec(ExecInfo {
                parent_comm: r.str(8, 16)?,
                filename: r.str(24, 256)?,
                exe: r.str(280, 512)?,
                cwd: r.str(792, 512)?,
                args,
                upper_layer: flags & 1 != 0,
                fileless: flags & 2 != 0,
                stdio_socket: flags & 4 != 0,
                tty: flags & 8 != 0,
            })
        }
        K_EXIT => {
            let r = Rd { b: body, kind: "exit" };
            let status = r.i32(0)?;
            Body::Exit { code: (status >> 8) & 0xff, signal: status & 0x7f }
        }
        K_OPEN => {
            let r = Rd { b: body, kind: "open" };
            Body::Open { flags: r.u32(0)?, path: r.str(8, 256)? }
        }
        K_UNLINK => {
            let r = Rd { b: body, kind: "unlink" };
            Body::Unlink { path: r.str(8, 256)? }
        }
        K_RENAME => {
            let r = Rd { b: body, kind: "rename" };
            Body::Rename { from: r.str(8, 256)?, to: r.str(264, 256)? }
        }
        K_CHMOD => {
            let r = Rd { b: body, kind: "chmod" };
            Body::Chmod { mode: r.u32(4)?, path: r.str(8, 256)? }
        }
        K_CONNECT => {
            let r = Rd { b: body, kind: "connect" };
            let family = r.u16(0)?;
            let port = r.u16(2)?;
            let sock_type = r.i32(4)?;
            let raw: [u8; 16] = r.arr(16)?;
            let sun = r.bytes(32, 108)?;
            let (addr, port, unix) = match family {
                2 => {
                    let v4 = [raw[0], raw[1], raw[2], raw[3]];
                    (Some(IpAddr::V4(Ipv4Addr::from(v4))), port, String::new())
                }
                10 => (Some(IpAddr::V6(Ipv6Addr::from(raw))), port, String::new()),
                _ => (None, 0, unix_path(sun)),
            };
            Body::Connect { family, sock_type: (sock_type >= 0).then_some(sock_type), addr, port, unix_path: unix }
        }
        K_SETID => {
            let r = Rd { b: body, kind: "setid" };
            let syscall = match r.u32(0)? {
                0 => "setuid",
                1 => "setgid",
                2 => "setreuid",
                3 => "setregid",
                4 => "setresuid",
                5 => "setresgid",
                _ => "set?id",
            };
            Body::SetId { syscall, ids: [r.i64(8)?, r.i64(16)?, r.i64(24)?] }
        }
        K_CAPSET => {
            let r = Rd { b: body, kind: "capset" };
            Body::Capset { target: r.i32(4)?, effective: r.u64(8)?, permitted: r.u64(16)?, inheritable: r.u64(24)? }
        }
        K_PTRACE => {
            let r = Rd { b: body, kind: "ptrace" };
            Body::Ptrace { request: r.i64(0)?, target: r.i32(8)? }
        }
        K_MODULE => {
            let r = Rd { b: body, kind: "module" };
            let syscall = if r.u32(0)? == 1 { "finit_module" } else { "init_module" };
            Body::ModuleLoad { name: r.str(8, 256)?, syscall }
        }
        K_MOUNT => {
            let r = Rd { b: body, kind: "mount" };
            Body::Mount { flags: r.u64(0)?, source: r.str(8, 256)?, target: r.str(264, 256)?, fstype: r.str(520, 64)? }
        }
        K_UNSHARE => {
            let r = Rd { b: body, kind: "unshare" };
            Body::Unshare { flags: r.u64(0)? }
        }
        K_SETNS => {
            let r = Rd { b: body, kind: "setns" };
            Body::Setns { nstype: r.u64(0)?, fd: r.i32(8)? }
        }
        K_MEMFD => {
            let r = Rd { b: body, kind: "memfd_create" };
            Body::MemfdCreate { flags: r.u32(0)?, name: r.str(8, 256)? }
        }
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok(RawEvent { time_ns_boot, task, body })
}

/// Size of one snapshot record written by the `iter/task` program.
pub(crate) const SNAP_LEN: usize = 680;

/// A process that existed when the sensor started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcSnapshot {
    /// Process id (tgid).
    pub pid: u32,
    /// Parent's tgid.
    pub ppid: u32,
    /// Real user id.
    pub uid: u32,
    /// Task name.
    pub comm: String,
    /// Executable path as the process sees it (empty for kernel threads).
    pub exe: String,
    /// cgroup v2 id (0 when read from /proc).
    pub cgroup_id: u64,
    /// Leaf cgroup directory name, chosen as in [`TaskHeader::cgroup_name`].
    pub cgroup_name: String,
    /// Mount namespace inode number.
    pub mntns: u32,
}

/// Decode the byte stream of the snapshot iterator (a sequence of fixed-size records; a
/// trailing partial record is ignored).
pub fn decode_snapshot(bytes: &[u8]) -> Vec<ProcSnapshot> {
    bytes
        .chunks_exact(SNAP_LEN)
        .filter_map(|c| {
            let r = Rd { b: c, kind: "snapshot" };
            Some(ProcSnapshot {
                pid: r.u32(0).ok()?,
                ppid: r.u32(4).ok()?,
                uid: r.u32(8).ok()?,
                mntns: r.u32(12).ok()?,
                cgroup_id: r.u64(16).ok()?,
                comm: r.str(24, 16).ok()?,
                cgroup_name: r.str(40, 128).ok()?,
                exe: r.str(168, 512).ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u16) -> Vec<u8> {
        let mut b = vec![0u8; HDR_LEN];
        b[0..2].copy_from_slice(&kind.to_ne_bytes());
        b[2..4].copy_from_slice(&EVENT_VERSION.to_ne_bytes());
        b[8..16].copy_from_slice(&123u64.to_ne_bytes());
        b[16..24].copy_from_slice(&77u64.to_ne_bytes());
        b[24..28].copy_from_slice(&10u32.to_ne_bytes());
        b[28..32].copy_from_slice(&11u32.to_ne_bytes());
        b[32..36].copy_from_slice(&1u32.to_ne_bytes());
        b[56..60].copy_from_slice(b"bash");
        b[72..80].copy_from_slice(b"crio-abc");
        b
    }

    fn put(b: &mut [u8], off: usize, v: &[u8]) {
        b[off..off + v.len()].copy_from_slice(v);
    }

    fn exec_record() -> Vec<u8> {
        let mut b = header(K_EXEC);
        let mut body = vec![0u8; 2328];
        put(&mut body, 0, &(1u32 | 4).to_ne_bytes());
        let args = b"ls\0-l\0/tmp\0";
        put(&mut body, 4, &(args.len() as u32).to_ne_bytes());
        put(&mut body, 8, b"sh");
        put(&mut body, 24, b"/bin/ls");
        put(&mut body, 280, b"/usr/bin/ls");
        put(&mut body, 792, b"/root");
        put(&mut body, 1304, args);
        b.extend_from_slice(&body);
        b
    }

    #[test]
    fn decodes_exec() {
        let ev = decode(&exec_record()).expect("decode");
        assert_eq!(ev.time_ns_boot, 123);
        assert_eq!(ev.task.pid, 10);
        assert_eq!(ev.task.tid, 11);
        assert_eq!(ev.task.comm, "bash");
        assert_eq!(ev.task.cgroup_name, "crio-abc");
        assert_eq!(ev.task.cgroup_id, 77);
        let Body::Exec(x) = ev.body else { unreachable!("not exec") };
        assert_eq!(x.exe, "/usr/bin/ls");
        assert_eq!(x.filename, "/bin/ls");
        assert_eq!(x.cwd, "/root");
        assert_eq!(x.parent_comm, "sh");
        assert_eq!(x.args, vec!["ls", "-l", "/tmp"]);
        assert!(x.upper_layer && x.stdio_socket && !x.fileless && !x.tty);
    }

    #[test]
    fn serializes_to_tagged_json() {
        let ev = decode(&exec_record()).expect("decode");
        let j = serde_json::to_value(&ev).expect("json");
        assert_eq!(j["body"]["type"], "exec");
        assert_eq!(j["body"]["exe"], "/usr/bin/ls");
        assert_eq!(j["task"]["pid"], 10);
    }

    #[test]
    fn decodes_connect_v4_and_unix() {
        let mut b = header(K_CONNECT);
        let mut body = vec![0u8; 144];
        put(&mut body, 0, &2u16.to_ne_bytes());
        put(&mut body, 2, &8080u16.to_ne_bytes());
        put(&mut body, 4, &1i32.to_ne_bytes());
        put(&mut body, 16, &[127, 0, 0, 1]);
        b.extend_from_slice(&body);
        let ev = decode(&b).expect("decode");
        assert_eq!(
            ev.body,
            Body::Connect {
                family: 2,
                sock_type: Some(1),
                addr: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port: 8080,
                unix_path: String::new()
            }
        );
        let mut b = header(K_CONNECT);
        let mut body = vec![0u8; 144];
        put(&mut body, 0, &1u16.to_ne_bytes());
        put(&mut body, 4, &(-1i32).to_ne_bytes());
        put(&mut body, 33, b"abstract");
        b.extend_from_slice(&body);
        let Body::Connect { unix_path, sock_type, addr, .. } = decode(&b).expect("decode").body else { unreachable!() };
        assert_eq!(unix_path, "@abstract");
        assert_eq!(sock_type, None);
        assert_eq!(addr, None);
    }

    #[test]
    fn decodes_exit_status() {
        let mut b = header(K_EXIT);
        b.extend_from_slice(&(3i32 << 8).to_ne_bytes());
        b.extend_from_slice(&[0; 4]);
        assert_eq!(decode(&b).expect("exit").body, Body::Exit { code: 3, signal: 0 });
        let mut b = header(K_EXIT);
        b.extend_from_slice(&9i32.to_ne_bytes());
        assert_eq!(decode(&b).expect("exit").body, Body::Exit { code: 0, signal: 9 });
    }

    #[test]
    fn rejects_unknown_kind_and_version() {
        assert_eq!(decode(&header(999)), Err(DecodeError::UnknownKind(999)));
        let mut b = header(K_EXIT);
        b[2] = 99;
        b.extend_from_slice(&[0; 8]);
        assert!(matches!(decode(&b), Err(DecodeError::Version(_))));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = exec_record();
        for n in 0..full.len() {
            let _ = decode(&full[..n]);
        }
        assert!(matches!(decode(&full[..100]), Err(DecodeError::Truncated { .. })));
        // A record cut inside argv still decodes, with fewer arguments.
        let cut = &full[..HDR_LEN + 1304 + 5];
        let Body::Exec(x) = decode(cut).expect("cut exec").body else { unreachable!() };
        assert_eq!(x.args, vec!["ls", "-l"]);
        for kind in 0..20u16 {
            let mut b = header(kind);
            b.extend_from_slice(&[0xff; 1000]);
            for n in 0..b.len() {
                let _ = decode(&b[..n]);
            }
        }
    }

    #[test]
    fn random_input_never_panics() {
        // xorshift: deterministic, no dependency.
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..20_000 {
            let len = (next() % 3000) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if b.len() >= 4 && next() % 2 == 0 {
                // Make a plausible header so the body decoders are exercised too.
                let kind = (next() % 17) as u16;
                b[0..2].copy_from_slice(&kind.to_ne_bytes());
                b[2..4].copy_from_slice(&EVENT_VERSION.to_ne_bytes());
            }
            let _ = decode(&b);
            let _ = decode_snapshot(&b);
        }
    }

    #[test]
    fn snapshot_records() {
        let mut r = vec![0u8; SNAP_LEN * 2 + 7];
        put(&mut r, 0, &42u32.to_ne_bytes());
        put(&mut r, 24, b"init");
        put(&mut r, 168, b"/sbin/init");
        let s = decode_snapshot(&r);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].pid, 42);
        assert_eq!(s[0].comm, "init");
        assert_eq!(s[0].exe, "/sbin/init");
    }
}
