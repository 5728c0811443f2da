//! The runtime's health report: what the kernel side says, what the pipeline counted, and the
//! process's own resource use, judged into one [`HealthStatus`].
//!
//! One typed value, [`RuntimeHealth`], feeds every reader: the `/health` endpoint, the health
//! file, the log line, the server heartbeat ([`RuntimeHealth::to_json`]) and the Prometheus
//! text ([`RuntimeHealth::metrics_text`]), so a metric can never read a key that is not there.

use std::collections::VecDeque;

use serde::Serialize;

use crate::prevent::GuardStats;
use crate::runtime::respond::ResponseCounts;
use crate::Health;

/// The program without which the sensor sees no processes at all.
const EXEC_PROGRAM: &str = "handle_exec";
/// Event-to-detection latencies kept for the quantiles.
const LATENCY_SAMPLES: usize = 10_000;

/// How well the sensor is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Everything attached, nothing lost.
    Healthy,
    /// Some optional programs did not attach; the rest works.
    Degraded,
    /// Events are being lost or not collected (see [`RuntimeHealth::problems`]).
    Unhealthy,
}

impl HealthStatus {
    /// The status as written in reports (`healthy`, `degraded`, `unhealthy`).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// The value of the `palisade_sensor_up` gauge: 1, 0.5 or 0.
    pub fn gauge(self) -> f64 {
        match self {
            HealthStatus::Healthy => 1.0,
            HealthStatus::Degraded => 0.5,
            HealthStatus::Unhealthy => 0.0,
        }
    }
}

/// A BPF program that did not attach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachFailure {
    /// The program's name.
    pub program: String,
    /// Why it did not attach.
    pub error: String,
}

/// Quantiles of the kernel-event-to-rule-match latency, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median; `None` before the first match.
    pub p50: Option<f64>,
    /// 99th percentile; `None` before the first match.
    pub p99: Option<f64>,
    /// Matches the quantiles are computed over.
    pub samples: usize,
}

/// The last [`LATENCY_SAMPLES`] event-to-detection latencies, in microseconds.
#[derive(Debug, Default, Clone)]
pub(crate) struct LatencyWindow {
    samples: VecDeque<u32>,
}

impl LatencyWindow {
    /// Records one latency (negative ones, from clock steps, count as 0).
    pub(crate) fn record(&mut self, micros: i64) {
        if self.samples.len() >= LATENCY_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(micros.clamp(0, i64::from(u32::MAX)) as u32);
    }

    /// p50 and p99 in milliseconds.
    pub(crate) fn summary(&self) -> LatencySummary {
        let mut l: Vec<u32> = self.samples.iter().copied().collect();
        l.sort_unstable();
        let q = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).map(|v| f64::from(*v) / 1000.0)
        };
        LatencySummary { p50: q(0.5), p99: q(0.99), samples: l.len() }
    }
}

/// Judges the kernel side's state: the status and the problems that make it unhealthy.
/// `last_dropped` is the drop count of the previous report; it is updated, so each report
/// speaks of the drops since the one before.
pub(crate) fn assess(kernel: &Health, last_dropped: &mut u64) -> (HealthStatus, Vec<String>) {
    let dropped = kernel.dropped_kernel + kernel.dropped_user;
    let mut problems = Vec::new();
    if !kernel.programs_attached.iter().any(|p| p == EXEC_PROGRAM) {
        problems.push(format!("process exec events are not collected ({EXEC_PROGRAM} not attached)"));
    }
    if dropped > *last_dropped {
        problems.push(format!("{} events dropped since the last report", dropped - *last_dropped));
    }
    if kernel.decode_errors > 0 {
        problems.push(format!("{} records did not decode", kernel.decode_errors));
    }
    *last_dropped = dropped;
    let status = if !problems.is_empty() {
        HealthStatus::Unhealthy
    } else if kernel.attach_failures.is_empty() {
        HealthStatus::Healthy
    } else {
        HealthStatus::Degraded
    };
    (status, problems)
}

/// The process's resident memory (bytes) and CPU time used (seconds), from `/proc/self`.
pub(crate) fn process_usage() -> (u64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    parse_process_usage(&status, &stat)
}

fn parse_process_usage(status: &str, stat: &str) -> (u64, f64) {
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0u64);
    // the fields after the command name, which may itself hold spaces and parentheses
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12); // utime + stime
    (rss_kb * 1024, ticks as f64 / 100.0)
}

/// The sensor runtime's health report (what `/health`, the health file and heartbeats carry).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeHealth {
    /// The overall judgement.
    pub status: HealthStatus,
    /// Why the status is `unhealthy`; empty otherwise.
    pub problems: Vec<String>,
    /// Node name.
    pub node: String,
    /// Cluster name.
    pub cluster: String,
    /// Palisade's version.
    pub version: String,
    /// Seconds since the runtime started.
    pub uptime_seconds: u64,
    /// BPF programs loaded.
    pub programs_loaded: usize,
    /// BPF programs attached.
    pub programs_attached: usize,
    /// BPF programs that did not attach.
    pub attach_failures: Vec<AttachFailure>,
    /// Events the kernel side wrote.
    pub events: u64,
    /// Events handed to the pipeline.
    pub delivered: u64,
    /// Events lost because the ring buffer was full.
    pub dropped_kernel: u64,
    /// Events lost because the pipeline was behind.
    pub dropped_user: u64,
    /// Records that did not decode.
    pub decode_errors: u64,
    /// Ring-buffer size.
    pub ringbuf_bytes: usize,
    /// Ring-buffer bytes not yet consumed.
    pub ringbuf_used_bytes: u64,
    /// Where the start-up process snapshot came from (`BpfIter`, `Proc`, `None`).
    pub snapshot_source: String,
    /// Enabled sensor rules.
    pub rules: usize,
    /// Hash of the rule set (16 hex digits).
    pub ruleset_version: String,
    /// Processes in the process table.
    pub processes_tracked: usize,
    /// Alerts raised (updates of an alert not counted).
    pub alerts: u64,
    /// Processes killed by a blocking drift rule.
    pub drift_blocked: u64,
    /// Execs denied by drift prevention.
    pub drift_prevented: u64,
    /// Drift prevention's counters, when it is on.
    pub drift_prevention: Option<GuardStats>,
    /// Processes killed (drift and `kill` responses).
    pub kills: u64,
    /// Pod responses through the API server.
    pub cluster_responses: ResponseCounts,
    /// Kills that failed.
    pub kill_failures: u64,
    /// Event-to-detection latency.
    pub event_to_detection_ms: LatencySummary,
    /// Resident memory.
    pub rss_bytes: u64,
    /// CPU time used since the runtime started.
    pub cpu_seconds: f64,
}

impl RuntimeHealth {
    /// The attach failures of a kernel report, typed.
    pub(crate) fn attach_failures(kernel: &Health) -> Vec<AttachFailure> {
        kernel
            .attach_failures
            .iter()
            .map(|(program, error)| AttachFailure { program: program.clone(), error: error.clone() })
            .collect()
    }

    /// The report as a JSON value: object keys sorted at every level, the form `sensor run`
    /// writes to the health file, serves at `/health` and sends in heartbeats.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// `/healthz`: the HTTP status (503 when unhealthy) and the body (the status as a JSON
    /// string and a newline).
    pub fn healthz(&self) -> (u16, String) {
        let code = if self.status == HealthStatus::Unhealthy { 503 } else { 200 };
        (code, format!("\"{}\"\n", self.status.as_str()))
    }

    /// The report as Prometheus text (`palisade_sensor_*`).
    pub fn metrics_text(&self) -> String {
        let mut s = String::new();
        let mut m = |name: &str, kind: &str, help: &str, v: f64| {
            s.push_str(&format!(
                "# HELP palisade_sensor_{name} {help}\n# TYPE palisade_sensor_{name} {kind}\npalisade_sensor_{name} {v}\n"
            ));
        };
        m("up", "gauge", "1 when healthy, 0.5 degraded, 0 unhealthy.", self.status.gauge());
        m("programs_attached", "gauge", "BPF programs attached.", self.programs_attached as f64);
        m("attach_failures", "gauge", "BPF programs that failed to attach.", self.attach_failures.len() as f64);
        m("events_total", "counter", "Events written by the kernel side.", self.events as f64);
        m(
            "dropped_kernel_total",
            "counter",
            "Events lost because the ring buffer was full.",
            self.dropped_kernel as f64,
        );
        m("dropped_user_total", "counter", "Events lost because the consumer was behind.", self.dropped_user as f64);
        m("ringbuf_used_bytes", "gauge", "Ring-buffer bytes not yet consumed.", self.ringbuf_used_bytes as f64);
        m("alerts_total", "counter", "Alerts raised.", self.alerts as f64);
        m("kills_total", "counter", "Processes killed by responses.", self.kills as f64);
        m(
            "event_to_detection_p99_seconds",
            "gauge",
            "p99 of kernel-event-to-rule-match latency (last 10,000 matches).",
            self.event_to_detection_ms.p99.unwrap_or(0.0) / 1000.0,
        );
        m("resident_memory_bytes", "gauge", "Resident memory.", self.rss_bytes as f64);
        m("cpu_seconds_total", "counter", "CPU time used.", self.cpu_seconds);
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::SnapshotSource;

    fn kernel(attached: &[&str], failures: usize, dropped: u64, decode_errors: u64) -> Health {
        Health {
            programs_loaded: attached.iter().map(|s| s.to_string()).collect(),
            programs_attached: attached.iter().map(|s| s.to_string()).collect(),
            attach_failures: (0..failures).map(|i| (format!("p{i}"), "no such tracepoint".to_string())).collect(),
            events: 10,
            dropped_kernel: dropped,
            dropped_user: 0,
            decode_errors,
            delivered: 10,
            ringbuf_bytes: 8 << 20,
            ringbuf_used_bytes: 0,
            started_at: std::time::UNIX_EPOCH,
            snapshot_source: SnapshotSource::BpfIter,
        }
    }

    #[test]
    fn status_follows_attach_failures_drops_and_decode_errors() {
        let mut last = 0;
        assert_eq!(assess(&kernel(&["handle_exec"], 0, 0, 0), &mut last), (HealthStatus::Healthy, vec![]));
        assert_eq!(assess(&kernel(&["handle_exec"], 2, 0, 0), &mut last), (HealthStatus::Degraded, vec![]));
        let (s, p) = assess(&kernel(&["handle_open"], 0, 0, 0), &mut last);
        assert_eq!(s, HealthStatus::Unhealthy);
        assert_eq!(p, vec!["process exec events are not collected (handle_exec not attached)".to_string()]);
        // drops are reported once, as the increase since the previous report
        let (s, p) = assess(&kernel(&["handle_exec"], 0, 7, 0), &mut last);
        assert_eq!((s, p), (HealthStatus::Unhealthy, vec!["7 events dropped since the last report".to_string()]));
        assert_eq!(last, 7);
        assert_eq!(assess(&kernel(&["handle_exec"], 0, 7, 0), &mut last).0, HealthStatus::Healthy);
        let (s, p) = assess(&kernel(&["handle_exec"], 1, 9, 3), &mut last);
        assert_eq!(s, HealthStatus::Unhealthy);
        assert_eq!(
            p,
            vec!["2 events dropped since the last report".to_string(), "3 records did not decode".to_string()]
        );
    }

    #[test]
    fn latency_quantiles_over_a_bounded_window() {
        let mut w = LatencyWindow::default();
        assert_eq!(w.summary(), LatencySummary { p50: None, p99: None, samples: 0 });
        for us in 1..=100 {
            w.record(us * 1000);
        }
        w.record(-5); // a clock step: 0, not a wrap-around
        let s = w.summary();
        assert_eq!((s.p50, s.p99, s.samples), (Some(50.0), Some(99.0), 101));
        for _ in 0..LATENCY_SAMPLES {
            w.record(2000);
        }
        assert_eq!(w.summary(), LatencySummary { p50: Some(2.0), p99: Some(2.0), samples: LATENCY_SAMPLES });
    }

    #[test]
    fn process_usage_parses_proc_files() {
        let status = "Name:\tpalisade\nVmRSS:\t   2048 kB\n";
        // a command name with spaces and a parenthesis; utime 150 and stime 50 ticks
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 4";
        assert_eq!(parse_process_usage(status, stat), (2 << 20, 2.0));
        assert_eq!(parse_process_usage("", ""), (0, 0.0));
        let (rss, _) = process_usage();
        assert!(rss > 0);
    }

    pub(crate) fn sample() -> RuntimeHealth {
        RuntimeHealth {
            status: HealthStatus::Degraded,
            problems: vec![],
            node: "n1".into(),
            cluster: "prod".into(),
            version: "0.1.0".into(),
            uptime_seconds: 5,
            programs_loaded: 3,
            programs_attached: 2,
            attach_failures: vec![AttachFailure { program: "handle_open".into(), error: "gone".into() }],
            events: 1234,
            delivered: 1230,
            dropped_kernel: 4,
            dropped_user: 0,
            decode_errors: 0,
            ringbuf_bytes: 8 << 20,
            ringbuf_used_bytes: 64,
            snapshot_source: "BpfIter".into(),
            rules: 50,
            ruleset_version: "00112233445566ff".into(),
            processes_tracked: 300,
            alerts: 2,
            drift_blocked: 0,
            drift_prevented: 0,
            drift_prevention: None,
            kills: 1,
            cluster_responses: ResponseCounts { done: 1, failed: 0, skipped: 2 },
            kill_failures: 0,
            event_to_detection_ms: LatencySummary { p50: Some(0.5), p99: Some(2.5), samples: 3 },
            rss_bytes: 1 << 20,
            cpu_seconds: 0.25,
        }
    }

    #[test]
    fn json_has_the_documented_keys_in_sorted_order() {
        let text = serde_json::to_string(&sample().to_json()).unwrap_or_default();
        assert_eq!(
            text,
            concat!(
                r#"{"alerts":2,"attach_failures":[{"error":"gone","program":"handle_open"}],"cluster":"prod","#,
                r#""cluster_responses":{"done":1,"failed":0,"skipped":2},"cpu_seconds":0.25,"decode_errors":0,"#,
                r#""delivered":1230,"drift_blocked":0,"drift_prevented":0,"drift_prevention":null,"#,
                r#""dropped_kernel":4,"dropped_user":0,"event_to_detection_ms":{"p50":0.5,"p99":2.5,"samples":3},"#,
                r#""events":1234,"kill_failures":0,"kills":1,"node":"n1","problems":[],"processes_tracked":300,"#,
                r#""programs_attached":2,"programs_loaded":3,"ringbuf_bytes":8388608,"ringbuf_used_bytes":64,"#,
                r#""rss_bytes":1048576,"rules":50,"ruleset_version":"00112233445566ff","snapshot_source":"BpfIter","#,
                r#""status":"degraded","uptime_seconds":5,"version":"0.1.0"}"#
            )
        );
        let mut h = sample();
        h.drift_prevention = Some(GuardStats { protected_mounts: 1, allowed: 2, denied: 3, errors: 0 });
        assert_eq!(
            h.to_json()["drift_prevention"].to_string(),
            r#"{"allowed":2,"denied":3,"errors":0,"protected_mounts":1}"#
        );
    }

    #[test]
    fn metrics_and_healthz_read_the_typed_report() {
        let h = sample();
        let m = h.metrics_text();
        for line in [
            "palisade_sensor_up 0.5\n",
            "palisade_sensor_programs_attached 2\n",
            "palisade_sensor_attach_failures 1\n",
            "palisade_sensor_events_total 1234\n",
            "palisade_sensor_dropped_kernel_total 4\n",
            "palisade_sensor_ringbuf_used_bytes 64\n",
            "palisade_sensor_kills_total 1\n",
            "palisade_sensor_event_to_detection_p99_seconds 0.0025\n",
            "palisade_sensor_resident_memory_bytes 1048576\n",
            "palisade_sensor_cpu_seconds_total 0.25\n",
            "# TYPE palisade_sensor_alerts_total counter\npalisade_sensor_alerts_total 2\n",
        ] {
            assert!(m.contains(line), "{line:?} not in\n{m}");
        }
        assert_eq!(m.matches("# HELP ").count(), 12);
        assert_eq!(h.healthz(), (200, "\"degraded\"\n".to_string()));
        let sick = RuntimeHealth { status: HealthStatus::Unhealthy, ..sample() };
        assert_eq!(sick.healthz(), (503, "\"unhealthy\"\n".to_string()));
        assert!(sick.metrics_text().starts_with(
            "# HELP palisade_sensor_up 1 when healthy, 0.5 degraded, 0 unhealthy.\n# TYPE palisade_sensor_up gauge\npalisade_sensor_up 0\n"
        ));
    }
}
