//! The few direct system calls the sensor needs (the only unsafe code outside the generated
//! skeleton). Each wrapper is a single libc call with no pointers kept past the call.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The effective user id.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Nanoseconds on `clock`.
pub(crate) fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// `mount -t tracefs nodev <target>`.
pub(crate) fn mount_tracefs(target: &str) -> io::Result<()> {
    let src = CString::new("nodev")?;
    let tgt = CString::new(target)?;
    let fstype = CString::new("tracefs")?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; data is
    // NULL, which mount(2) accepts.
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends SIGKILL to process `pid` (the response to a blocked exec or a `kill` response rule).
pub fn kill_process(pid: u32) -> io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    if pid <= 1 {
        // never pid 0 (our process group) or init
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill(2) takes plain integers.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `fanotify_init(2)`: a new fanotify group, owned by the returned descriptor.
pub(crate) fn fanotify_init(flags: u32, event_f_flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: fanotify_init takes plain integers.
    let fd = unsafe { libc::fanotify_init(flags, event_f_flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel for this call and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fanotify_mark(2)` on the object `target` refers to (pathname NULL, so `target` itself is
/// the object; with `FAN_MARK_MOUNT` its mount).
pub(crate) fn fanotify_mark(group: BorrowedFd<'_>, flags: u32, mask: u64, target: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: both descriptors are valid for the call (borrowed); a NULL pathname is
    // documented to mean "the object `dirfd` refers to".
    let rc = unsafe { libc::fanotify_mark(group.as_raw_fd(), flags, mask, target.as_raw_fd(), std::ptr::null()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Takes ownership of a descriptor the kernel installed in this process for a fanotify event
/// (`fanotify_event_metadata.fd`). `None` for negative values (`FAN_NOFD`).
///
/// Only call it with a descriptor number read from a validated event of our own fanotify
/// group, exactly once per event.
pub(crate) fn take_event_fd(raw: i32) -> Option<OwnedFd> {
    if raw < 0 {
        return None;
    }
    // SAFETY: the kernel opened this descriptor for the event being read by our own group
    // and handed it to us in the read buffer; no other code in the process knows its number,
    // so taking ownership (closing it on drop) cannot close anything else.
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Waits up to `timeout_ms` for `fd` to become readable. `Ok(false)` on timeout or EINTR.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: `p` is one valid, writable pollfd for the duration of the call (nfds = 1).
    let rc = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) };
    }
    Ok(rc > 0 && p.revents & libc::POLLIN != 0)
}

/// What `statx(2)` says about an open file (only the fields the sensor uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdStat {
    /// Mount id: the 64-bit never-reused id when the kernel gave `STATX_MNT_ID_UNIQUE` (6.8),
    /// else the classic (reusable) one.
    pub mnt_key: u64,
    /// Whether `mnt_key` is the unique id.
    pub mnt_unique: bool,
    /// The classic mount id (the first field of `/proc/<pid>/mountinfo`), if given.
    pub mnt_id: Option<u64>,
    /// Device (major, minor) and inode.
    pub dev: (u32, u32),
    /// Inode number.
    pub ino: u64,
    /// `STATX_ATTR_MOUNT_ROOT`, when the kernel reports it (5.8).
    pub mount_root: Option<bool>,
}

fn statx_raw(fd: BorrowedFd<'_>, mask: u32) -> io::Result<libc::statx> {
    // SAFETY: `struct statx` is plain old data (integers only); all-zero is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: `empty` is a valid NUL-terminated string and `st` a valid, writable statx, both
    // outliving the call; AT_EMPTY_PATH makes `fd` itself the object.
    let rc = unsafe { libc::statx(fd.as_raw_fd(), empty.as_ptr(), libc::AT_EMPTY_PATH, mask, &mut st) };
    if rc == 0 {
        Ok(st)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `statx(fd, "", AT_EMPTY_PATH)` for the mount ids, device, inode and mount-root attribute.
pub(crate) fn fd_stat(fd: BorrowedFd<'_>) -> io::Result<FdStat> {
    let st = statx_raw(fd, libc::STATX_INO | libc::STATX_MNT_ID_UNIQUE)?;
    let mut out = FdStat {
        mnt_key: 0,
        mnt_unique: false,
        mnt_id: None,
        dev: (st.stx_dev_major, st.stx_dev_minor),
        ino: st.stx_ino,
        mount_root: None,
    };
    let attr_root = libc::STATX_ATTR_MOUNT_ROOT as u64;
    if st.stx_attributes_mask & attr_root != 0 {
        out.mount_root = Some(st.stx_attributes & attr_root != 0);
    }
    if st.stx_mask & libc::STATX_MNT_ID_UNIQUE != 0 {
        out.mnt_key = st.stx_mnt_id;
        out.mnt_unique = true;
        let classic = statx_raw(fd, libc::STATX_MNT_ID)?;
        if classic.stx_mask & libc::STATX_MNT_ID != 0 {
            out.mnt_id = Some(classic.stx_mnt_id);
        }
    } else if st.stx_mask & libc::STATX_MNT_ID != 0 {
        out.mnt_key = st.stx_mnt_id;
        out.mnt_id = Some(st.stx_mnt_id);
    } else {
        return Err(io::Error::new(io::ErrorKind::Unsupported, "statx gives no mount id (kernel < 5.8)"));
    }
    Ok(out)
}

/// Just the mount key of [`fd_stat`] (one statx call; used per exec event).
pub(crate) fn fd_mount_key(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let st = statx_raw(fd, libc::STATX_MNT_ID_UNIQUE)?;
    if st.stx_mask & (libc::STATX_MNT_ID_UNIQUE | libc::STATX_MNT_ID) != 0 {
        Ok(st.stx_mnt_id)
    } else {
        Err(io::Error::new(io::ErrorKind::Unsupported, "statx gives no mount id (kernel < 5.8)"))
    }
}

/// The filesystem magic (`f_type`) of the filesystem `fd` is on.
pub(crate) fn fs_magic(fd: BorrowedFd<'_>) -> io::Result<i64> {
    // SAFETY: `struct statfs` is plain old data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable statfs for the duration of the call.
    let rc = unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) };
    if rc == 0 {
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        Ok(i64::from(st.f_type as i64))
    } else {
        Err(io::Error::last_os_error())
    }
}
