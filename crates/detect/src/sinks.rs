//! Where findings go: JSON lines, OCSF (Detection Finding, class 2004; incidents as Incident
//! Finding, class 2005), syslog (RFC 5424 with a CEF payload) and an HTTP webhook with
//! at-least-once delivery through a bounded on-disk [`Spool`].
//!
//! Rendering is pure ([`render`]); a [`Sink`] moves rendered records somewhere.

use crate::alert::{Alert, Finding, Incident};
use crate::event::format_rfc3339_us;
use crate::rules::Severity;
use crate::spool::Spool;
use serde_json::{json, Value};
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Palisade's native JSON (one object per line).
    Json,
    /// OCSF 1.3 Detection Finding / Incident Finding.
    Ocsf,
    /// RFC 5424 syslog line with a CEF message.
    SyslogCef,
}

impl Format {
    /// Parses `json`, `ocsf` or `syslog` / `cef`.
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "json" | "jsonl" | "ndjson" => Some(Format::Json),
            "ocsf" => Some(Format::Ocsf),
            "syslog" | "cef" | "syslog-cef" => Some(Format::SyslogCef),
            _ => None,
        }
    }
}

/// Rendering options.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Product version for OCSF metadata and CEF headers.
    pub version: String,
    /// Syslog HOSTNAME field.
    pub hostname: String,
    /// Syslog facility (default 10, authpriv).
    pub facility: u8,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { version: env!("CARGO_PKG_VERSION").to_string(), hostname: "-".into(), facility: 10 }
    }
}

/// Renders a finding as one line (no trailing newline).
pub fn render(f: &Finding, format: Format, opts: &RenderOptions) -> String {
    match format {
        Format::Json => serde_json::to_string(f).unwrap_or_default(),
        Format::Ocsf => serde_json::to_string(&to_ocsf(f, opts)).unwrap_or_default(),
        Format::SyslogCef => to_syslog_cef(f, opts),
    }
}

fn ocsf_severity(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Informational => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

fn ms(rfc3339: &str) -> i64 {
    crate::event::parse_rfc3339_us(rfc3339).map(|us| us / 1000).unwrap_or(0)
}

/// Maps a finding to OCSF: alerts to Detection Finding (class_uid 2004), incidents to Incident
/// Finding (class_uid 2005).
pub fn to_ocsf(f: &Finding, opts: &RenderOptions) -> Value {
    let metadata = |uid: &str| {
        json!({
            "version": "1.3.0",
            "product": {"name": "Palisade Detect", "vendor_name": "Palisade", "version": opts.version},
            "uid": uid,
            "log_name": "kubernetes-audit",
        })
    };
    match f {
        Finding::Alert(a) => alert_ocsf(a, metadata(&a.id)),
        Finding::Incident(i) => incident_ocsf(i, metadata(&i.id)),
    }
}

fn alert_ocsf(a: &Alert, metadata: Value) -> Value {
    let (sev_id, sev) = ocsf_severity(a.severity);
    let activity_id = if a.update { 2 } else { 1 };
    let attacks: Vec<Value> = a
        .techniques
        .iter()
        .map(|t| {
            let tech = crate::attack::technique(&t.id);
            let tactic = tech
                .and_then(|x| x.tactics.iter().find(|tac| a.tactics.iter().any(|at| at.id == **tac)))
                .and_then(|tac| crate::attack::tactic(tac))
                .or_else(|| a.tactics.first().and_then(|x| crate::attack::tactic(&x.id)));
            let (tid, sub) = match t.id.split_once('.') {
                Some((parent, _)) => (parent.to_string(), Some(t)),
                None => (t.id.clone(), None),
            };
            let mut v = json!({
                "technique": {"uid": tid, "name": crate::attack::technique(&tid).map(|x| x.name).unwrap_or(&t.name)},
                "version": "16.1",
            });
            if let Some(s) = sub {
                v["sub_technique"] = json!({"uid": s.id, "name": s.name});
            }
            if let Some(tac) = tactic {
                v["tactic"] = json!({"uid": tac.id, "name": tac.name});
                v["tactics"] = json!([{"uid": tac.id, "name": tac.name}]);
            }
            v
        })
        .collect();
    let e = &a.entities;
    let mut resources = Vec::new();
    if let Some(r) = &e.resource {
        resources.push(json!({
            "type": if r.subresource.is_empty() { r.resource.clone() } else { format!("{}/{}", r.resource, r.subresource) },
            "name": r.name,
            "group": {"name": r.api_group},
            "namespace": r.namespace,
            "data": {"namespace": r.namespace, "cluster": e.cluster},
        }));
    }
    if !e.pod.is_empty() {
        resources
            .push(json!({"type": "pods", "name": e.pod, "namespace": e.namespace, "data": {"namespace": e.namespace}}));
    }
    for img in &e.images {
        resources.push(json!({"type": "container_image", "name": img}));
    }
    json!({
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "activity_id": activity_id,
        "activity_name": if a.update { "Update" } else { "Create" },
        "type_uid": 200400 + activity_id,
        "type_name": format!("Detection Finding: {}", if a.update { "Update" } else { "Create" }),
        "time": ms(&a.last_seen),
        "severity_id": sev_id,
        "severity": sev,
        "status_id": 1,
        "status": "New",
        "confidence_id": 2,
        "count": a.count,
        "message": a.message,
        "metadata": metadata,
        "finding_info": {
            "uid": a.id,
            "title": a.rule.name,
            "desc": a.rule.description,
            "types": a.tags,
            "first_seen_time": ms(&a.first_seen),
            "last_seen_time": ms(&a.last_seen),
            "created_time": ms(&a.time),
            "attacks": attacks,
            "analytic": {"uid": a.rule.id, "name": a.rule.name, "type_id": 1, "type": "Rule", "category": a.source},
            "src_url": Value::Null,
        },
        "actor": {"user": {"name": e.user, "groups": e.groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>()}},
        "src_endpoint": {"ip": e.source_ip},
        "http_request": {"user_agent": e.user_agent},
        "resources": resources,
        "remediation": {"desc": a.remediation.join(" ")},
        "evidences": [{"data": a.evidence.to_value()}],
        "unmapped": {"cluster": e.cluster, "namespace": e.namespace, "impersonated_user": e.impersonated_user, "source": a.source},
    })
}

fn incident_ocsf(i: &Incident, metadata: Value) -> Value {
    let (sev_id, sev) = ocsf_severity(i.severity);
    let activity_id = if i.update { 2 } else { 1 };
    json!({
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2005,
        "class_name": "Incident Finding",
        "activity_id": activity_id,
        "activity_name": if i.update { "Update" } else { "Create" },
        "type_uid": 200500 + activity_id,
        "time": ms(&i.last_seen),
        "severity_id": sev_id,
        "severity": sev,
        "status_id": 1,
        "status": "New",
        "priority_id": sev_id.min(4),
        "desc": i.summary,
        "metadata": metadata,
        "start_time": ms(&i.first_seen),
        "end_time": ms(&i.last_seen),
        "finding_info_list": i.alert_ids.iter().map(|id| json!({"uid": id})).collect::<Vec<_>>(),
        "attacks": i.tactics.iter().map(|t| json!({"tactic": {"uid": t.id, "name": t.name}, "version": "16.1"})).collect::<Vec<_>>(),
        "impact_id": 0,
        "unmapped": {"entity_kind": i.entity_kind, "entity": i.entity, "rule_ids": i.rule_ids, "alert_count": i.alert_count, "techniques": i.techniques},
    })
}

fn cef_header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn cef_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('=', "\\=").replace('\n', "\\n").replace('\r', "\\r")
}

/// The CEF severity (0–10) and syslog severity (RFC 5424) of a finding severity.
fn severities(s: Severity) -> (u8, u8) {
    match s {
        Severity::Critical => (10, 2),
        Severity::High => (8, 3),
        Severity::Medium => (5, 4),
        Severity::Low => (3, 5),
        Severity::Informational => (1, 6),
    }
}

/// RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME palisade - MSGID - CEF:0|…`.
pub fn to_syslog_cef(f: &Finding, opts: &RenderOptions) -> String {
    let (sig, name, sev, time, msgid, ext) = match f {
        Finding::Alert(a) => {
            let e = &a.entities;
            let mut ext = vec![
                ("rt", ms(&a.last_seen).to_string()),
                ("externalId", a.id.clone()),
                ("cnt", a.count.to_string()),
                ("msg", a.message.clone()),
                ("suser", e.user.clone()),
                ("src", e.source_ip.clone()),
                ("requestClientApplication", e.user_agent.clone()),
                ("cs1Label", "ruleId".into()),
                ("cs1", a.rule.id.clone()),
                ("cs2Label", "tactics".into()),
                ("cs2", a.tactics.iter().map(|t| format!("{} {}", t.id, t.name)).collect::<Vec<_>>().join(", ")),
                ("cs3Label", "techniques".into()),
                ("cs3", a.techniques.iter().map(|t| format!("{} {}", t.id, t.name)).collect::<Vec<_>>().join(", ")),
                ("cs4Label", "namespace".into()),
                ("cs4", e.namespace.clone()),
                ("cs5Label", "cluster".into()),
                ("cs5", e.cluster.clone()),
                ("cs6Label", "images".into()),
                ("cs6", e.images.join(",")),
                ("cat", a.tactics.first().map(|t| t.name.clone()).unwrap_or_default()),
            ];
            if let Some(r) = &e.resource {
                ext.push((
                    "dproc",
                    format!(
                        "{}{}{} {}/{}",
                        r.resource,
                        if r.subresource.is_empty() { "" } else { "/" },
                        r.subresource,
                        r.namespace,
                        r.name
                    ),
                ));
            }
            if a.update {
                ext.push(("act", "update".into()));
            }
            (a.rule.id.clone(), a.rule.name.clone(), a.severity, a.last_seen.clone(), "alert", ext)
        }
        Finding::Incident(i) => {
            let ext = vec![
                ("rt", ms(&i.last_seen).to_string()),
                ("externalId", i.id.clone()),
                ("cnt", i.alert_count.to_string()),
                ("msg", i.summary.clone()),
                ("suser", if i.entity_kind == "user" { i.entity.clone() } else { String::new() }),
                ("cs1Label", "ruleIds".into()),
                ("cs1", i.rule_ids.join(",")),
                ("cs2Label", "tactics".into()),
                ("cs2", i.tactics.iter().map(|t| format!("{} {}", t.id, t.name)).collect::<Vec<_>>().join(", ")),
                ("cs3Label", "entity".into()),
                ("cs3", format!("{}:{}", i.entity_kind, i.entity)),
            ];
            (
                "PAL-INCIDENT".to_string(),
                "Multi-stage attack".to_string(),
                i.severity,
                i.last_seen.clone(),
                "incident",
                ext,
            )
        }
    };
    let (cef_sev, sys_sev) = severities(sev);
    let pri = u32::from(opts.facility) * 8 + u32::from(sys_sev);
    let ext: Vec<String> =
        ext.into_iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", cef_value(&v))).collect();
    let ts = if time.is_empty() { format_rfc3339_us(0) } else { time };
    format!(
        "<{pri}>1 {ts} {} palisade - {msgid} - CEF:0|Palisade|Palisade Detect|{}|{}|{}|{cef_sev}|{}",
        if opts.hostname.is_empty() { "-" } else { &opts.hostname },
        cef_header(&opts.version),
        cef_header(&sig),
        cef_header(&name),
        ext.join(" ")
    )
}

/// Sink errors.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// I/O.
    #[error("sink I/O: {0}")]
    Io(#[from] io::Error),
    /// HTTP delivery failed (and the records were spooled).
    #[error("webhook delivery failed: {0}")]
    Http(String),
}

/// A destination for findings.
pub trait Sink {
    /// Delivers (or durably queues) a batch. After `Ok` the sink owns the records.
    fn send(&mut self, batch: &[Finding]) -> Result<(), SinkError>;
    /// Delivers what it can of anything queued (e.g. periodically, and before exit).
    fn flush(&mut self) -> Result<(), SinkError>;
    /// Makes everything `send` accepted durable: written through to the storage device
    /// (`fsync`) or acknowledged by the receiver / in a synced spool. A follower saves its read
    /// position only after this returned `Ok`. The default is [`Sink::flush`].
    fn sync(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
}

/// Writes rendered lines to any writer (stdout, a file).
#[derive(Debug)]
pub struct WriterSink<W: Write> {
    w: W,
    format: Format,
    opts: RenderOptions,
}

impl<W: Write> WriterSink<W> {
    /// A sink writing `format` lines to `w`.
    pub fn new(w: W, format: Format, opts: RenderOptions) -> Self {
        WriterSink { w, format, opts }
    }
    /// The writer back.
    pub fn into_inner(self) -> W {
        self.w
    }
}

impl<W: Write> Sink for WriterSink<W> {
    fn send(&mut self, batch: &[Finding]) -> Result<(), SinkError> {
        for f in batch {
            let line = render(f, self.format, &self.opts);
            self.w.write_all(line.as_bytes())?;
            self.w.write_all(b"\n")?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.w.flush()?;
        Ok(())
    }
}

/// Appends rendered lines to a file through a buffer; [`Sink::sync`] flushes the buffer and
/// `fsync`s the file, so lines reported durable survive a crash or power loss.
#[derive(Debug)]
pub struct FileSink {
    inner: WriterSink<io::BufWriter<std::fs::File>>,
}

impl FileSink {
    /// Opens (creates) `path` for appending.
    pub fn append(path: &Path, format: Format, opts: RenderOptions) -> io::Result<Self> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FileSink { inner: WriterSink::new(io::BufWriter::with_capacity(64 * 1024, f), format, opts) })
    }
}

impl Sink for FileSink {
    fn send(&mut self, batch: &[Finding]) -> Result<(), SinkError> {
        self.inner.send(batch)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }
    fn sync(&mut self) -> Result<(), SinkError> {
        self.inner.w.flush()?;
        self.inner.w.get_ref().sync_data()?;
        Ok(())
    }
}

/// Syslog transport.
#[derive(Debug)]
pub enum SyslogTransport {
    /// One datagram per message.
    Udp(UdpSocket, std::net::SocketAddr),
    /// RFC 6587 octet-counted framing over TCP.
    Tcp(TcpStream),
}

/// Sends RFC 5424 / CEF lines to a syslog receiver.
#[derive(Debug)]
pub struct SyslogSink {
    t: SyslogTransport,
    opts: RenderOptions,
}

impl SyslogSink {
    /// Connects to `addr` over `udp` or `tcp`.
    pub fn connect(addr: &str, tcp: bool, opts: RenderOptions) -> io::Result<Self> {
        let target =
            addr.to_socket_addrs()?.next().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let t = if tcp {
            let s = TcpStream::connect_timeout(&target, Duration::from_secs(5))?;
            s.set_write_timeout(Some(Duration::from_secs(5)))?;
            SyslogTransport::Tcp(s)
        } else {
            let bind = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            SyslogTransport::Udp(UdpSocket::bind(bind)?, target)
        };
        Ok(SyslogSink { t, opts })
    }
}

impl Sink for SyslogSink {
    fn send(&mut self, batch: &[Finding]) -> Result<(), SinkError> {
        for f in batch {
            let line = to_syslog_cef(f, &self.opts);
            match &mut self.t {
                SyslogTransport::Udp(s, to) => {
                    s.send_to(line.as_bytes(), *to)?;
                }
                SyslogTransport::Tcp(s) => {
                    write!(s, "{} {line}", line.len())?;
                }
            }
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        if let SyslogTransport::Tcp(s) = &mut self.t {
            s.flush()?;
        }
        Ok(())
    }
}

/// HTTP webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// URL to POST to.
    pub url: String,
    /// Body format: a JSON array of `Json` or `Ocsf` records.
    pub format: Format,
    /// `Authorization: Bearer …`.
    pub bearer_token: Option<String>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Records per POST.
    pub batch_size: usize,
    /// Overall deadline of one POST (connect, send, answer).
    pub timeout: Duration,
    /// Spool directory.
    pub spool_dir: std::path::PathBuf,
    /// Spool size cap in bytes.
    pub spool_max_bytes: u64,
    /// Wait at least this long after a failure before trying again (doubles up to 60 s).
    pub retry_after: Duration,
}

impl WebhookConfig {
    /// Defaults for `url` with a spool in `spool_dir`.
    pub fn new(url: &str, spool_dir: &Path) -> Self {
        WebhookConfig {
            url: url.to_string(),
            format: Format::Json,
            bearer_token: None,
            headers: Vec::new(),
            batch_size: 500,
            timeout: Duration::from_secs(10),
            spool_dir: spool_dir.to_path_buf(),
            spool_max_bytes: 256 << 20,
            retry_after: Duration::from_secs(1),
        }
    }
}

/// The file (in the spool directory) where records the receiver refused for good are kept,
/// one JSON object per line: `{"time", "status", "reason", "record"}`.
pub const REJECTED_FILE: &str = "webhook.rejected";

/// What one POST came to.
enum Outcome {
    /// 2xx: the receiver took the records.
    Delivered,
    /// The receiver refused this content (413 too large, 400/422 bad request): retrying the
    /// same body can never succeed, so the batch is split and a single refused record is
    /// quarantined.
    Refused(u16),
    /// Anything else (3xx, 401/403/404/429, 5xx, transport errors, deadlines): try again later.
    Failed(String),
}

/// POSTs findings as JSON arrays; records it cannot deliver go to the spool and are replayed,
/// oldest first, when the endpoint answers again (at-least-once).
///
/// Only a 2xx answer counts as delivery. Redirects are not followed (a 301/302 would turn the
/// POST into a body-less GET; a sink URL that redirects is misconfigured): they are failures,
/// retried and logged. A batch the receiver refuses as such (413, 400, 422) is halved until the
/// refused record is alone; that record is moved to [`REJECTED_FILE`], logged and counted in
/// [`WebhookSink::rejected`], so one poison record never blocks the alerts behind it. Spooled
/// lines that are not JSON (torn by a crash or a full disk) are quarantined the same way without
/// being sent.
#[derive(Debug)]
pub struct WebhookSink {
    cfg: WebhookConfig,
    client: palisade_net::Client,
    spool: Spool,
    opts: RenderOptions,
    next_try: Option<Instant>,
    backoff: Duration,
    /// Records delivered.
    pub delivered: u64,
    /// Failed POSTs.
    pub failures: u64,
    /// Records quarantined to [`REJECTED_FILE`] (refused by the receiver, or torn).
    pub rejected: u64,
}

impl WebhookSink {
    /// Opens the spool (repairing a torn last line, replaying what an earlier run left) and
    /// prepares the client.
    pub fn new(cfg: WebhookConfig, opts: RenderOptions) -> io::Result<Self> {
        let spool = Spool::open(&cfg.spool_dir, cfg.spool_max_bytes)?;
        let client = palisade_net::Client::new(palisade_net::ClientOptions {
            connect_timeout: Duration::from_secs(3).min(cfg.timeout),
            deadline: cfg.timeout,
            max_redirects: 0,
            ..palisade_net::ClientOptions::default()
        });
        let backoff = cfg.retry_after;
        let mut sink =
            WebhookSink { cfg, client, spool, opts, next_try: None, backoff, delivered: 0, failures: 0, rejected: 0 };
        let torn = std::mem::take(&mut sink.spool.torn);
        for t in torn {
            sink.quarantine(&t, 0, "torn spool line (cut off by a crash or a full disk)")?;
        }
        Ok(sink)
    }

    /// Records lost because the spool was full.
    pub fn dropped(&self) -> u64 {
        self.spool.dropped
    }

    /// Whether records are waiting in the spool.
    pub fn backlog(&self) -> bool {
        !self.spool.is_empty()
    }

    fn post(&mut self, records: &[Vec<u8>]) -> Outcome {
        let mut body = Vec::with_capacity(records.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(r);
        }
        body.push(b']');
        let mut req = palisade_net::Request::post(self.cfg.url.as_str(), &body)
            .header("Content-Type", "application/json")
            .credential(self.cfg.bearer_token.as_ref().map(|t| format!("Bearer {t}")));
        for (k, v) in &self.cfg.headers {
            req = req.header(k, v);
        }
        match self.client.send(req) {
            Ok(r) if r.is_success() => {
                // read (a little of) the answer so the connection can be reused
                let _ = r.read_to_vec(64 * 1024);
                Outcome::Delivered
            }
            Ok(r) if matches!(r.status(), 400 | 413 | 422) => Outcome::Refused(r.status()),
            Ok(r) => {
                let status = r.status();
                let loc = r.header("location").map(|l| palisade_net::printable(l, 200));
                let excerpt = r.error_excerpt();
                Outcome::Failed(match loc {
                    Some(l) => format!("HTTP {status} (redirect to {l} not followed: only 2xx is delivery)"),
                    None => format!("HTTP {status}: {excerpt}"),
                })
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    fn failed(&mut self, why: String) -> SinkError {
        self.failures += 1;
        self.next_try = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(60));
        SinkError::Http(why)
    }

    /// Appends a refused record to [`REJECTED_FILE`] (synced) and reports it.
    fn quarantine(&mut self, record: &[u8], status: u16, reason: &str) -> io::Result<()> {
        let rec = match serde_json::from_slice::<Value>(record) {
            Ok(v) => v,
            Err(_) => Value::String(String::from_utf8_lossy(record).into_owned()),
        };
        let now = crate::pipeline::now_us();
        let mut line = serde_json::to_vec(&json!({
            "time": format_rfc3339_us(now),
            "status": status,
            "reason": reason,
            "record": rec,
        }))
        .map_err(io::Error::other)?;
        line.push(b'\n');
        let path = self.cfg.spool_dir.join(REJECTED_FILE);
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        f.write_all(&line)?;
        f.sync_data()?;
        self.rejected += 1;
        tracing::error!(
            status,
            reason,
            file = %path.display(),
            rejected = self.rejected,
            bytes = record.len(),
            "webhook receiver refused a record; quarantined"
        );
        Ok(())
    }

    /// Delivers `records` in order, splitting refused batches. On `Err`, the first `usize`
    /// records were delivered (or quarantined) and the rest were not.
    fn deliver(&mut self, records: &[Vec<u8>]) -> Result<(), (usize, SinkError)> {
        if records.is_empty() {
            return Ok(());
        }
        match self.post(records) {
            Outcome::Delivered => {
                self.delivered += records.len() as u64;
                self.backoff = self.cfg.retry_after;
                self.next_try = None;
                Ok(())
            }
            Outcome::Refused(status) if records.len() > 1 => {
                tracing::warn!(status, records = records.len(), "webhook receiver refused a batch; splitting it");
                let mid = records.len() / 2;
                self.deliver(&records[..mid])?;
                self.deliver(&records[mid..]).map_err(|(n, e)| (mid + n, e))
            }
            Outcome::Refused(status) => {
                let reason = if status == 413 { "too large for the receiver" } else { "refused by the receiver" };
                self.quarantine(&records[0], status, reason).map_err(|e| (0, SinkError::Io(e)))?;
                Ok(())
            }
            Outcome::Failed(why) => Err((0, self.failed(why))),
        }
    }

    fn may_try(&self) -> bool {
        self.next_try.is_none_or(|t| Instant::now() >= t)
    }

    /// Replays the spool while the endpoint accepts; `Ok(true)` when it is empty.
    pub fn drain(&mut self) -> Result<bool, SinkError> {
        while !self.spool.is_empty() {
            if !self.may_try() {
                return Ok(false);
            }
            let (batch, cursor) = self.spool.read_batch(self.cfg.batch_size.max(1))?;
            if batch.is_empty() {
                self.spool.commit(cursor)?;
                break;
            }
            // a line that is not JSON cannot be a record we wrote whole: quarantine, never send
            let mut good = Vec::with_capacity(batch.len());
            for r in batch {
                if serde_json::from_slice::<serde::de::IgnoredAny>(&r).is_ok() {
                    good.push(r);
                } else {
                    self.quarantine(&r, 0, "torn spool line (not JSON)")?;
                }
            }
            // a partly delivered batch is replayed whole: at-least-once
            self.deliver(&good).map_err(|(_, e)| e)?;
            self.spool.commit(cursor)?;
        }
        Ok(true)
    }

    fn records(&self, batch: &[Finding]) -> Vec<Vec<u8>> {
        let format = if self.cfg.format == Format::SyslogCef { Format::Json } else { self.cfg.format };
        batch.iter().map(|f| render(f, format, &self.opts).into_bytes()).collect()
    }
}

impl Sink for WebhookSink {
    /// Never loses a batch: it is delivered, or spooled (the error is then only informative and
    /// `Ok` is returned; delivery resumes on a later `send` or `flush`).
    fn send(&mut self, batch: &[Finding]) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let records = self.records(batch);
        // keep order: with a backlog, new records queue behind it
        let backlog = match self.drain() {
            Ok(empty) => !empty,
            Err(e) => {
                tracing::debug!(error = %e, "webhook still failing");
                true
            }
        };
        if backlog || !self.may_try() {
            self.spool.append(&records)?;
            return Ok(());
        }
        let bs = self.cfg.batch_size.max(1);
        for (i, chunk) in records.chunks(bs).enumerate() {
            if let Err((done, e)) = self.deliver(chunk) {
                tracing::warn!(error = %e, "webhook delivery failed; spooling");
                // the undelivered part of this chunk and the rest
                self.spool.append(&records[i * bs + done..])?;
                return Ok(());
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.next_try = None;
        self.drain().map(|_| ())
    }

    /// Records are delivered or in the spool after `send`; this `fsync`s the spool.
    fn sync(&mut self) -> Result<(), SinkError> {
        self.spool.sync()?;
        Ok(())
    }
}
