//! The running sensor: loading, attaching, polling, health.

use std::collections::VecDeque;
use std::io::Read;
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Iter, Link, MapCore, MapFlags, MapHandle, OpenObject, PrintLevel, RingBufferBuilder};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::config::{SensorConfig, MAX_RULES, RULE_ENTRY_LEN};
use crate::event::{decode, decode_snapshot, ProcSnapshot, RawEvent};
use crate::skel::SensorSkelBuilder;
use crate::{sys, time_offset, Error, TimeOffset};

const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
const TRACEFS: &str = "/sys/kernel/tracing";
const SNAPSHOT_PROG: &str = "snapshot_tasks";
/// Cap on the bytes read from the snapshot iterator (about 98k processes).
const SNAPSHOT_MAX_BYTES: u64 = 64 << 20;

/// Where [`Sensor::snapshot`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotSource {
    /// The `iter/task` BPF program.
    BpfIter,
    /// `/proc`, because the iterator failed.
    Proc,
    /// No snapshot was asked for.
    None,
}

/// The sensor's state, for monitoring.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Every program in the loaded object (loading is all or nothing).
    pub programs_loaded: Vec<String>,
    /// Programs attached and running.
    pub programs_attached: Vec<String>,
    /// Programs that failed to attach: (program name, error).
    pub attach_failures: Vec<(String, String)>,
    /// Events the kernel side wrote to the ring buffer (sum of the per-CPU counter).
    pub events: u64,
    /// Events the kernel side dropped because the ring buffer was full.
    pub dropped_kernel: u64,
    /// Events dropped in userspace because the channel to the consumer was full.
    pub dropped_user: u64,
    /// Records that did not decode (layout mismatch; should stay 0).
    pub decode_errors: u64,
    /// Events handed to the channel.
    pub delivered: u64,
    /// Ring-buffer size in bytes.
    pub ringbuf_bytes: usize,
    /// Bytes written but not yet consumed, sampled by the kernel side at its latest submit
    /// (`bpf_ringbuf_query(BPF_RB_AVAIL_DATA)`; libbpf-rs exposes no consumer/producer
    /// positions).
    pub ringbuf_used_bytes: u64,
    /// When the sensor started.
    pub started_at: SystemTime,
    /// Where the start-up snapshot came from.
    pub snapshot_source: SnapshotSource,
}

#[derive(Debug, Default)]
struct Stats {
    dropped_user: AtomicU64,
    decode_errors: AtomicU64,
    delivered: AtomicU64,
}

#[derive(Debug)]
struct Startup {
    programs_loaded: Vec<String>,
    programs_attached: Vec<String>,
    attach_failures: Vec<(String, String)>,
    snapshot: Vec<ProcSnapshot>,
    snapshot_source: SnapshotSource,
    /// Duplicated fds of the counter maps, read directly by `health()`.
    counters: Option<MapHandle>,
    bss: Option<MapHandle>,
}

/// A running sensor. Events arrive on [`Sensor::events`]; dropping the sensor (or
/// [`Sensor::stop`]) detaches every program and joins the polling thread.
#[derive(Debug)]
pub struct Sensor {
    rx: Receiver<RawEvent>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    startup: Startup,
    ringbuf_bytes: usize,
    started_at: SystemTime,
    time_offset: TimeOffset,
}

/// Check that this process can run the sensor: effective uid 0, kernel BTF present, and a
/// trivial BPF map can be created. Returns the reason when it cannot.
pub fn check_support() -> Result<(), Error> {
    let euid = sys::geteuid();
    if euid != 0 {
        return Err(Error::NotRoot { euid });
    }
    if !Path::new(BTF_PATH).exists() {
        return Err(Error::NoBtf { path: BTF_PATH.into() });
    }
    libbpf_rs::MapHandle::create(
        libbpf_rs::MapType::Array,
        Some("palisade_probe"),
        4,
        8,
        1,
        &libbpf_rs::libbpf_sys::bpf_map_create_opts {
            sz: size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        },
    )
    .map(drop)
    .map_err(Error::Bpf)
}

/// Mount tracefs at /sys/kernel/tracing when it is not mounted (its `events` directory is
/// missing or empty): `tp/` programs find their tracepoint ids there.
fn ensure_tracefs() {
    let events = Path::new(TRACEFS).join("events");
    let mounted = std::fs::read_dir(&events).map(|mut d| d.next().is_some()).unwrap_or(false);
    if mounted {
        return;
    }
    match sys::mount_tracefs(TRACEFS) {
        Ok(()) => info!("mounted tracefs at {TRACEFS}"),
        Err(e) => {
            warn!("tracefs is not mounted at {TRACEFS} and mounting it failed: {e}; tp/ programs will fail to attach")
        }
    }
}

/// The last libbpf warnings, to explain a load failure (the verifier log arrives this way).
static LIBBPF_LOG: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
const LIBBPF_LOG_LINES: usize = 60;

fn libbpf_print(level: PrintLevel, msg: String) {
    let msg = msg.trim_end();
    match level {
        PrintLevel::Warn => {
            warn!(target: "libbpf", "{msg}");
            if let Ok(mut log) = LIBBPF_LOG.lock() {
                for line in msg.lines() {
                    if log.len() >= LIBBPF_LOG_LINES {
                        log.pop_front();
                    }
                    log.push_back(line.to_owned());
                }
            }
        }
        PrintLevel::Info => debug!(target: "libbpf", "{msg}"),
        PrintLevel::Debug => tracing::trace!(target: "libbpf", "{msg}"),
    }
}

fn take_libbpf_log() -> String {
    LIBBPF_LOG.lock().map(|mut l| l.drain(..).collect::<Vec<_>>().join("\n")).unwrap_or_default()
}

impl Sensor {
    /// Load and attach the BPF programs and start the polling thread.
    ///
    /// Fails when the process is not root, the kernel has no BTF, the configuration is
    /// invalid, or the object does not load. A program that loads but does not attach does
    /// not fail the start: it is listed in [`Health::attach_failures`] and logged.
    pub fn start(cfg: &SensorConfig) -> Result<Sensor, Error> {
        cfg.validate()?;
        let euid = sys::geteuid();
        if euid != 0 {
            return Err(Error::NotRoot { euid });
        }
        if !Path::new(BTF_PATH).exists() {
            return Err(Error::NoBtf { path: BTF_PATH.into() });
        }
        static PRINT: Once = Once::new();
        PRINT.call_once(|| {
            libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_print)));
        });
        ensure_tracefs();

        let cfg = cfg.clone();
        let ringbuf_bytes = cfg.effective_ringbuf_bytes();
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel(cfg.channel_capacity);
        let (ready_tx, ready_rx) = mpsc::channel();
        let time_offset = time_offset();
        let started_at = SystemTime::now();
        let thread = {
            let stats = Arc::clone(&stats);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("palisade-sensor".into())
                .spawn(move || run(&cfg, &stats, &stop, tx, ready_tx))
                .map_err(|e| Error::Thread(format!("spawn: {e}")))?
        };
        let startup = match ready_rx.recv() {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let why = match thread.join() {
                    Err(p) => p
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".into()),
                    Ok(()) => "exited".into(),
                };
                return Err(Error::Thread(format!("sensor thread failed during start: {why}")));
            }
        };
        info!(
            attached = startup.programs_attached.len(),
            failed = startup.attach_failures.len(),
            snapshot = startup.snapshot.len(),
            ringbuf_bytes,
            "sensor started"
        );
        Ok(Sensor { rx, stats, stop, thread: Some(thread), startup, ringbuf_bytes, started_at, time_offset })
    }

    /// The event stream. Bounded: when the consumer falls behind, events are dropped and
    /// counted in [`Health::dropped_user`].
    pub fn events(&self) -> &Receiver<RawEvent> {
        &self.rx
    }

    /// Processes that existed at start (empty when the snapshot was disabled).
    pub fn snapshot(&self) -> &[ProcSnapshot] {
        &self.startup.snapshot
    }

    /// The boot-time to wall-clock offset computed at start.
    pub fn time_offset(&self) -> TimeOffset {
        self.time_offset
    }

    /// Counters and attach state. The kernel counters are read from the maps at each call.
    pub fn health(&self) -> Health {
        let s = &self.stats;
        let percpu = |key: u32| {
            self.startup
                .counters
                .as_ref()
                .and_then(|m| m.lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY).ok().flatten())
                .map_or(0, |v| sum_percpu(&v))
        };
        let rb_avail = self
            .startup
            .bss
            .as_ref()
            .and_then(|m| m.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).ok().flatten())
            .and_then(|v| v.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()))
            .map_or(0, u64::from_ne_bytes);
        Health {
            programs_loaded: self.startup.programs_loaded.clone(),
            programs_attached: self.startup.programs_attached.clone(),
            attach_failures: self.startup.attach_failures.clone(),
            events: percpu(0),
            dropped_kernel: percpu(1),
            dropped_user: s.dropped_user.load(Ordering::Relaxed),
            decode_errors: s.decode_errors.load(Ordering::Relaxed),
            delivered: s.delivered.load(Ordering::Relaxed),
            ringbuf_bytes: self.ringbuf_bytes,
            ringbuf_used_bytes: rb_avail,
            started_at: self.started_at,
            snapshot_source: self.startup.snapshot_source,
        }
    }

    /// Detach everything and join the polling thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                warn!("sensor thread panicked");
            }
            info!("sensor stopped");
        }
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn sum_percpu(vals: &[Vec<u8>]) -> u64 {
    vals.iter()
        .filter_map(|v| v.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()))
        .map(u64::from_ne_bytes)
        .fold(0u64, u64::wrapping_add)
}

/// The polling thread: owns every libbpf object from open to detach.
fn run(
    cfg: &SensorConfig,
    stats: &Arc<Stats>,
    stop: &AtomicBool,
    tx: SyncSender<RawEvent>,
    ready: mpsc::Sender<Result<Startup, Error>>,
) {
    let mut storage = MaybeUninit::<OpenObject>::uninit();
    let mut open = match SensorSkelBuilder::default().open(&mut storage) {
        Ok(o) => o,
        Err(e) => {
            let _ = ready.send(Err(Error::Open(e)));
            return;
        }
    };
    let prefilter = crate::config::prefilter_keys(&cfg.path_rules);
    if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
        ro.self_tgid = std::process::id();
        ro.prefilter = u32::from(prefilter.is_some());
    }
    if let Err(e) = open.maps.events.set_max_entries(cfg.effective_ringbuf_bytes() as u32) {
        let _ = ready.send(Err(Error::Map { map: "events", source: e }));
        return;
    }
    let _ = take_libbpf_log();
    let skel = match open.load() {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(Error::Load { source: e, log: take_libbpf_log() }));
            return;
        }
    };

    // Rule table: every slot written, unused ones zero (kind 0 ends the table).
    for i in 0..MAX_RULES {
        let entry = match cfg.path_rules.get(i) {
            Some(r) => match r.encode() {
                Ok(e) => e,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            },
            None => [0u8; RULE_ENTRY_LEN],
        };
        if let Err(e) = skel.maps.path_rules.update(&(i as u32).to_ne_bytes(), &entry, MapFlags::ANY) {
            let _ = ready.send(Err(Error::Map { map: "path_rules", source: e }));
            return;
        }
    }

    if let Some((heads, tails)) = &prefilter {
        for h in heads {
            if let Err(e) = skel.maps.prefix8.update(h, &[1u8], MapFlags::ANY) {
                let _ = ready.send(Err(Error::Map { map: "prefix8", source: e }));
                return;
            }
        }
        for t in tails {
            if let Err(e) = skel.maps.suffix4.update(t, &[1u8], MapFlags::ANY) {
                let _ = ready.send(Err(Error::Map { map: "suffix4", source: e }));
                return;
            }
        }
    }

    let mut links: Vec<Link> = Vec::new();
    let mut programs_loaded = Vec::new();
    let mut programs_attached = Vec::new();
    let mut attach_failures = Vec::new();
    let mut snapshot = Vec::new();
    let mut snapshot_source = SnapshotSource::None;
    for prog in skel.object().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        programs_loaded.push(name.clone());
        if name == SNAPSHOT_PROG {
            if cfg.snapshot {
                match read_iter(&prog) {
                    Ok(s) => {
                        snapshot = s;
                        snapshot_source = SnapshotSource::BpfIter;
                    }
                    Err(e) => {
                        warn!("iter/task snapshot failed ({e}); reading /proc instead");
                        attach_failures.push((name, e));
                        snapshot = proc_snapshot();
                        snapshot_source = SnapshotSource::Proc;
                    }
                }
            }
            continue;
        }
        if cfg.disabled_programs.contains(&name) {
            debug!(program = %name, "disabled by configuration");
            continue;
        }
        match prog.attach() {
            Ok(link) => {
                debug!(program = %name, "attached");
                links.push(link);
                programs_attached.push(name);
            }
            Err(e) => {
                warn!(program = %name, "attach failed: {e}");
                attach_failures.push((name, e.to_string()));
            }
        }
    }

    let mut rbb = RingBufferBuilder::new();
    let cb_stats = Arc::clone(stats);
    let cb = move |data: &[u8]| -> i32 {
        match decode(data) {
            Ok(ev) => match tx.try_send(ev) {
                Ok(()) => {
                    cb_stats.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    cb_stats.dropped_user.fetch_add(1, Ordering::Relaxed);
                }
            },
            Err(e) => {
                if cb_stats.decode_errors.fetch_add(1, Ordering::Relaxed) < 10 {
                    warn!("undecodable ring-buffer record ({} bytes): {e}", data.len());
                }
            }
        }
        0
    };
    if let Err(e) = rbb.add(&skel.maps.events, cb) {
        let _ = ready.send(Err(Error::RingBuffer(e)));
        return;
    }
    let rb = match rbb.build() {
        Ok(rb) => rb,
        Err(e) => {
            let _ = ready.send(Err(Error::RingBuffer(e)));
            return;
        }
    };
    if ready
        .send(Ok(Startup {
            programs_loaded,
            programs_attached,
            attach_failures,
            snapshot,
            snapshot_source,
            counters: MapHandle::try_from(&skel.maps.counters).ok(),
            bss: MapHandle::try_from(&skel.maps.bss).ok(),
        }))
        .is_err()
    {
        return;
    }

    let mut errors = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = rb.poll(cfg.poll_interval) {
            if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                errors += 1;
                if errors <= 5 {
                    warn!("ring buffer poll: {e}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // records submitted without a wakeup (below the batch threshold) are drained here
        let _ = rb.consume();
    }
    let _ = rb.consume();
    drop(rb);
    drop(links);
}

fn read_iter(prog: &libbpf_rs::ProgramMut<'_>) -> Result<Vec<ProcSnapshot>, String> {
    let link = prog.attach().map_err(|e| format!("attach: {e}"))?;
    let iter = Iter::new(&link).map_err(|e| format!("iter create: {e}"))?;
    let mut buf = Vec::new();
    iter.take(SNAPSHOT_MAX_BYTES).read_to_end(&mut buf).map_err(|e| format!("iter read: {e}"))?;
    let snap = decode_snapshot(&buf);
    if snap.is_empty() {
        return Err("iter/task returned no processes".into());
    }
    Ok(snap)
}

/// The start-up snapshot from /proc (fallback when iter/task fails).
pub(crate) fn proc_snapshot() -> Vec<ProcSnapshot> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for ent in dir.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(p) = proc_one(pid) {
            out.push(p);
        }
    }
    out.sort_by_key(|p| p.pid);
    out
}

fn proc_one(pid: u32) -> Option<ProcSnapshot> {
    let base = Path::new("/proc").join(pid.to_string());
    let stat = std::fs::read_to_string(base.join("stat")).ok()?;
    // pid (comm) state ppid ...; comm may hold spaces and parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let ppid = stat.get(close + 1..)?.split_whitespace().nth(1)?.parse().ok()?;
    let status = std::fs::read_to_string(base.join("status")).unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let exe = std::fs::read_link(base.join("exe")).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let mntns = std::fs::read_link(base.join("ns/mnt"))
        .ok()
        .and_then(|p| {
            let s = p.to_string_lossy().into_owned();
            s.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok()
        })
        .unwrap_or(0);
    let cgroup = std::fs::read_to_string(base.join("cgroup")).unwrap_or_default();
    Some(ProcSnapshot { pid, ppid, uid, comm, exe, cgroup_id: 0, cgroup_name: cgroup_leaf_from_proc(&cgroup), mntns })
}

/// The leaf cgroup name from /proc/PID/cgroup, chosen like the kernel side: v1 `pids`, then
/// v1 `memory`, then v2 (`0::`); empty for root cgroups.
pub(crate) fn cgroup_leaf_from_proc(text: &str) -> String {
    let mut by: [Option<&str>; 3] = [None; 3];
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let slot = if ctrls.split(',').any(|c| c == "pids") {
            0
        } else if ctrls.split(',').any(|c| c == "memory") {
            1
        } else if id == "0" && ctrls.is_empty() {
            2
        } else {
            continue;
        };
        if path != "/" && !path.is_empty() {
            by[slot] = Some(path);
        }
    }
    by.iter().flatten().next().and_then(|p| p.rsplit('/').find(|s| !s.is_empty())).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_is_send() {
        fn send<T: Send>() {}
        send::<Sensor>();
        send::<Health>();
    }

    #[test]
    fn cgroup_leaf_choice() {
        let t = "4:memory:/process_api/d5f3\n8:pids:/\n0::/\n";
        assert_eq!(cgroup_leaf_from_proc(t), "d5f3");
        let t = "8:pids:/kubepods/pod1/cri-containerd-abc.scope\n4:memory:/x\n0::/y\n";
        assert_eq!(cgroup_leaf_from_proc(t), "cri-containerd-abc.scope");
        assert_eq!(cgroup_leaf_from_proc("0::/system.slice/crio-1.scope\n"), "crio-1.scope");
        assert_eq!(cgroup_leaf_from_proc("0::/\n"), "");
        assert_eq!(cgroup_leaf_from_proc("garbage"), "");
    }

    #[test]
    fn proc_snapshot_sees_ourselves() {
        let me = std::process::id();
        let snap = proc_snapshot();
        let p = snap.iter().find(|p| p.pid == me).expect("own pid in /proc snapshot");
        assert!(!p.comm.is_empty());
        assert!(p.mntns != 0);
    }
}
