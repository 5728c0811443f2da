//! The few direct system calls the sensor needs (the only unsafe code outside the generated
//! skeleton). Each wrapper is a single libc call with no pointers kept past the call.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;

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
    let rc = unsafe {
        libc::mount(src.as_ptr(), tgt.as_ptr(), fstype.as_ptr(), 0, std::ptr::null())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
