//! Palisade node runtime sensor: the kernel side.
//!
//! BPF programs written in C (`src/bpf/sensor.bpf.c`) are compiled by clang at build time into
//! one CO-RE object (`build.rs`, libbpf-cargo) and embedded as a libbpf-rs skeleton. At run
//! time [`Sensor::start`] loads it (libbpf relocates field offsets against the running
//! kernel's BTF), fills the configuration maps, attaches each program on its own, and polls
//! the ring buffer on a dedicated thread, delivering [`event::RawEvent`]s on a bounded
//! channel.
//!
//! # Attach points, and why
//!
//! Only tracepoints (`tp_btf/`, `tp/`, `raw_tp/`) and one `iter/task` program: they are the
//! attach types that work where kprobes, fentry/fexit and BPF LSM are unavailable (hardened or
//! virtualised kernels, lockdown), and syscall tracepoints have a stable ABI.
//!
//! | program | attach point | event |
//! |---|---|---|
//! | `handle_exec` | `tp_btf/sched_process_exec` (needs `bprm`) | `Exec` |
//! | `handle_exit` | `tp/sched/sched_process_exit` | `Exit` (last thread of a process) |
//! | `handle_openat`, `handle_open`, `handle_openat2` | `tp/syscalls/sys_enter_open{at,,at2}` | `Open` |
//! | `handle_unlinkat`, `handle_unlink` | `tp/syscalls/sys_enter_unlink{at,}` | `Unlink` |
//! | `handle_renameat2`, `handle_renameat`, `handle_rename` | `tp/syscalls/sys_enter_rename*` | `Rename` |
//! | `handle_fchmodat`, `handle_fchmodat2`, `handle_chmod` | `tp/syscalls/sys_enter_*chmod*` | `Chmod` |
//! | `handle_connect` | `tp/syscalls/sys_enter_connect` (sees unix sockets too) | `Connect` |
//! | `handle_set{uid,gid,reuid,regid,resuid,resgid}` | `tp/syscalls/sys_enter_set*id` | `SetId` |
//! | `handle_capset` | `tp/syscalls/sys_enter_capset` | `Capset` |
//! | `handle_ptrace` | `tp/syscalls/sys_enter_ptrace` | `Ptrace` |
//! | `handle_sys_enter` | `raw_tp/sys_enter`, filtered on the init_module/finit_module numbers (those syscalls have no tracepoint on kernels without module support) | `ModuleLoad` |
//! | `handle_mount`, `handle_unshare`, `handle_setns`, `handle_memfd_create` | `tp/syscalls/sys_enter_*` | `Mount`, `Unshare`, `Setns`, `MemfdCreate` |
//! | `snapshot_tasks` | `iter/task`, run once at start | [`event::ProcSnapshot`] (falls back to `/proc`) |
//!
//! Syscall events are taken on entry, so they report attempts (including failed ones), and
//! user-memory arguments are read then (a path in a page not yet faulted in is missed, and a
//! racing thread can change it after the read).
//!
//! Tracepoints missing on a kernel only make their own program fail to attach, listed in
//! [`Health::attach_failures`]; expected cases: `sys_enter_fchmodat2` before 6.6,
//! `sys_enter_openat2` before 5.6, and the legacy `open`, `unlink`, `rename`, `chmod`
//! tracepoints on architectures without those syscalls (arm64). On x86-64 with 6.6 or later
//! everything attaches.
//!
//! Kernel requirements: BTF (`CONFIG_DEBUG_INFO_BTF`), BPF ring buffer (5.8), `tp_btf` (5.5)
//! and `bpf_loop` (5.17, used for the path walk and the rule scan so the verifier checks
//! each loop body once). Older kernels fail at load with [`Error::Load`].
//!
//! # What is filtered in the kernel
//!
//! - The sensor's own process (its tgid is a `.rodata` constant).
//! - Opens, unlinks and renames: only paths matching the rule table (the `path_rules` array
//!   map, up to 64 prefix/suffix patterns of up to 64 bytes, optionally write-only) produce an
//!   event; an open that matches nothing costs a string read and the table scan.
//! - chmod: only modes with setuid, setgid or an execute bit.
//! - ptrace: only `PTRACE_ATTACH`, `PTRACE_SEIZE` and `PTRACE_POKE{TEXT,DATA,USR}`.
//! - connect: only `AF_INET`, `AF_INET6` and `AF_UNIX`.
//! - exit: only when the last thread of a thread group exits.
//!
//! # Event layout
//!
//! One ring buffer (default 8 MiB, [`SensorConfig::ringbuf_bytes`]). Each record is a 200-byte
//! task header (kind, layout version, `bpf_ktime_get_boot_ns` time, cgroup v2 id, pid, tid,
//! ppid, uid, euid, gid, mount and pid namespace inodes, comm, cgroup leaf name) followed by a
//! fixed body per kind; the byte offsets are documented in [`event`]. Records are reserved
//! directly in the ring buffer (no per-CPU copy); reserve failures are counted per CPU
//! (`counters[1]`) next to emitted events (`counters[0]`), both surfaced by
//! [`Sensor::health`]. Path walking uses a per-CPU scratch map; stacks stay under 512 bytes.
//!
//! The executable and working-directory paths are rebuilt from dentries and mounts up to the
//! task's root (at most 32 components), so a containerised process's paths are as the
//! container sees them.
//!
//! # Example
//!
//! ```no_run
//! let sensor = palisade_sensor::Sensor::start(&palisade_sensor::SensorConfig::default())?;
//! let off = sensor.time_offset();
//! for ev in sensor.events().iter().take(10) {
//!     println!("{} {} {:?}", off.unix_micros(ev.time_ns_boot), ev.task.pid, ev.body);
//! }
//! # Ok::<(), palisade_sensor::Error>(())
//! ```

pub mod attribution;
pub mod config;
pub mod event;
pub mod manifests;
pub mod node;
pub mod prevent;
pub mod runtime;
mod sensor;
pub mod simulate;
mod sys;

pub use sys::kill_process;

#[allow(
    unsafe_code,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::panic,
    missing_docs,
    missing_debug_implementations,
    unused_imports,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/sensor.skel.rs"));
}

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub use config::{default_path_rules, MatchKind, PathRule, SensorConfig};
pub use event::{decode, Body, DecodeError, ExecInfo, ProcSnapshot, RawEvent, TaskHeader};
pub use prevent::{Denial, ExecGuard, GuardStats, PreventError};
pub use sensor::{check_support, Health, Sensor, SnapshotSource};

/// Everything that can stop the sensor from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// BPF needs root (or CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN; only root is checked).
    #[error("the sensor needs root (effective uid is {euid})")]
    NotRoot {
        /// The effective uid found.
        euid: u32,
    },
    /// CO-RE needs kernel BTF.
    #[error("kernel BTF not found at {} (the kernel needs CONFIG_DEBUG_INFO_BTF=y)", path.display())]
    NoBtf {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The configuration is invalid.
    #[error("invalid sensor configuration: {0}")]
    Config(String),
    /// A basic BPF operation failed (e.g. map creation in [`check_support`]).
    #[error("BPF is not usable: {0}")]
    Bpf(#[source] libbpf_rs::Error),
    /// Opening the embedded BPF object failed.
    #[error("opening the BPF object failed: {0}")]
    Open(#[source] libbpf_rs::Error),
    /// Loading failed (usually the verifier; `log` holds libbpf's last warnings).
    #[error("loading the BPF programs failed: {source}\n{log}")]
    Load {
        /// The libbpf error.
        #[source]
        source: libbpf_rs::Error,
        /// libbpf's last warning lines (the verifier log ends here).
        log: String,
    },
    /// Setting up a map failed.
    #[error("BPF map {map}: {source}")]
    Map {
        /// The map's name.
        map: &'static str,
        /// The libbpf error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// Creating the ring-buffer consumer failed.
    #[error("ring buffer: {0}")]
    RingBuffer(#[source] libbpf_rs::Error),
    /// The polling thread could not be started or died during start.
    #[error("{0}")]
    Thread(String),
}

/// Offset from `CLOCK_BOOTTIME` (what `bpf_ktime_get_boot_ns` reads) to the Unix epoch.
///
/// Boot time keeps counting through suspend, so the offset stays valid until the wall clock
/// is stepped; take a new one with [`time_offset`] after that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeOffset {
    /// Unix time in nanoseconds minus boot time in nanoseconds.
    pub boot_to_unix_ns: i128,
}

impl TimeOffset {
    /// Boot-time nanoseconds to Unix microseconds.
    pub fn unix_micros(&self, boot_ns: u64) -> i64 {
        let ns = i128::from(boot_ns) + self.boot_to_unix_ns;
        i64::try_from(ns.div_euclid(1000)).unwrap_or(i64::MAX)
    }

    /// Boot-time nanoseconds to a `SystemTime`.
    pub fn system_time(&self, boot_ns: u64) -> SystemTime {
        let ns = i128::from(boot_ns) + self.boot_to_unix_ns;
        if ns >= 0 {
            let ns = u64::try_from(ns).unwrap_or(u64::MAX);
            UNIX_EPOCH + Duration::from_nanos(ns)
        } else {
            UNIX_EPOCH
        }
    }
}

/// Measure the boot-time to Unix-time offset now (best of a few samples).
pub fn time_offset() -> TimeOffset {
    let mut best: Option<(i128, i128)> = None; // (window, offset)
    for _ in 0..5 {
        let r1 = sys::clock_ns(libc::CLOCK_REALTIME);
        let b = sys::clock_ns(libc::CLOCK_BOOTTIME);
        let r2 = sys::clock_ns(libc::CLOCK_REALTIME);
        let window = r2 - r1;
        let off = r1 + window / 2 - b;
        if best.is_none_or(|(w, _)| window < w) {
            best = Some((window, off));
        }
    }
    TimeOffset { boot_to_unix_ns: best.map_or(0, |(_, o)| o) }
}

/// Boot-time nanoseconds to Unix microseconds with a fresh offset (convenience; for many
/// conversions keep one [`TimeOffset`]).
pub fn boot_ns_to_unix_micros(boot_ns: u64) -> i64 {
    time_offset().unix_micros(boot_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_offset_is_sane() {
        let off = time_offset();
        let boot = u64::try_from(sys::clock_ns(libc::CLOCK_BOOTTIME)).unwrap_or(0);
        let now_us = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
        let got = off.unix_micros(boot);
        let diff = (i128::from(got) - now_us as i128).abs();
        assert!(diff < 1_000_000, "offset off by {diff} us");
        assert!(off.system_time(boot) > UNIX_EPOCH);
    }
}
