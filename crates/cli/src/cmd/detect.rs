//! `palisade detect audit|serve|rules` and `palisade simulate audit`.

use crate::args::{DetectArgs, DetectCommand, SimulateCommand};
use anyhow::Context as _;
use palisade_detect::alert::Finding;
use palisade_detect::pipeline::{Detector, DetectorConfig};
use palisade_detect::rules::{self, RuleSet};
use palisade_detect::sinks::{self, Format, RenderOptions, Sink};
use std::io::{BufReader, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(crate) fn ruleset(a: &DetectArgs) -> anyhow::Result<RuleSet> {
    let mut rs = RuleSet::builtin().map_err(|e| anyhow::anyhow!("built-in rules: {e:?}"))?;
    for p in &a.rules {
        let diags = rs.add_path(p).map_err(|e| {
            let lines: Vec<String> = e.0.iter().map(|d| d.to_string()).collect();
            anyhow::anyhow!("{}", lines.join("; "))
        })?;
        for d in diags {
            tracing::warn!("{d}");
        }
    }
    for l in &a.lists {
        let (name, items) = l.split_once('=').with_context(|| format!("--list {l:?}: expected NAME=a,b"))?;
        rs.set_list(name.trim(), items.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
    }
    for id in &a.disable {
        if !rs.set_enabled(id, false) {
            anyhow::bail!("--disable: no rule {id:?}");
        }
    }
    Ok(rs)
}

/// Every configured destination.
pub(crate) struct Sinks {
    primary: Box<dyn Sink>,
    extra: Vec<Box<dyn Sink>>,
}

impl Sinks {
    pub(crate) fn new(a: &DetectArgs) -> anyhow::Result<Sinks> {
        let format: Format = a.alert_format.into();
        let opts = RenderOptions {
            hostname: std::fs::read_to_string("/etc/hostname")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "-".into()),
            ..RenderOptions::default()
        };
        let primary: Box<dyn Sink> = match &a.output {
            Some(p) => {
                Box::new(sinks::FileSink::append(p, format, opts.clone()).with_context(|| p.display().to_string())?)
            }
            None => Box::new(sinks::WriterSink::new(std::io::stdout(), format, opts.clone())),
        };
        let mut extra: Vec<Box<dyn Sink>> = Vec::new();
        if let Some(url) = &a.webhook {
            extra.push(Box::new(sinks::WebhookSink::new(sinks::WebhookConfig::new(url, &a.spool), opts.clone())?));
        }
        if let Some(server) = &a.server {
            let mut cfg = sinks::WebhookConfig::new(
                &format!("{}/api/v1/alerts", server.trim_end_matches('/')),
                &a.spool.join("server"),
            );
            cfg.bearer_token = a.token.clone();
            extra.push(Box::new(
                sinks::WebhookSink::new(cfg, opts.clone())
                    .with_context(|| format!("opening the server spool {}", a.spool.join("server").display()))?,
            ));
        }
        if let Some(addr) = &a.syslog {
            let (tcp, addr) = match addr.strip_prefix("tcp://") {
                Some(x) => (true, x),
                None => (false, addr.strip_prefix("udp://").unwrap_or(addr)),
            };
            extra.push(Box::new(sinks::SyslogSink::connect(addr, tcp, opts)?));
        }
        Ok(Sinks { primary, extra })
    }

    pub(crate) fn send(&mut self, f: &Finding) -> std::io::Result<()> {
        let batch = std::slice::from_ref(f);
        self.primary.send(batch).map_err(|e| std::io::Error::other(e.to_string()))?;
        for s in &mut self.extra {
            // Extra sinks spool on failure; a delivery error is logged, not fatal.
            if let Err(e) = s.send(batch) {
                tracing::warn!("alert sink: {e}");
            }
        }
        Ok(())
    }

    /// Makes every finding sent so far durable: the primary output flushed and `fsync`ed
    /// (an error is returned, so no position is saved past alerts that are not on disk); the
    /// extra sinks' records delivered or in their synced spools (errors logged).
    pub(crate) fn sync(&mut self) -> std::io::Result<()> {
        self.primary.sync().map_err(|e| std::io::Error::other(e.to_string()))?;
        for s in &mut self.extra {
            if let Err(e) = s.sync() {
                tracing::warn!("alert sink: {e}");
            }
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) {
        for s in std::iter::once(&mut self.primary).chain(self.extra.iter_mut()) {
            if let Err(e) = s.flush() {
                tracing::warn!("alert sink: {e}");
            }
        }
    }
}

pub(crate) fn detector(a: &DetectArgs) -> anyhow::Result<Detector> {
    let rs = ruleset(a)?;
    let mut cfg = DetectorConfig::default();
    cfg.engine.cluster = a.cluster.clone();
    Detector::new(&rs, cfg).map_err(|e| anyhow::anyhow!("rules: {e:?}"))
}

/// Follow and serve run until the process is stopped; the position is saved after every
/// delivered batch, so a kill loses and repeats nothing beyond at-least-once delivery.
fn stop_flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

pub fn run(c: DetectCommand) -> anyhow::Result<ExitCode> {
    match c {
        DetectCommand::Rules { validate } => {
            if validate.is_empty() {
                let rs = RuleSet::builtin().map_err(|e| anyhow::anyhow!("built-in rules: {e:?}"))?;
                let mut out = String::new();
                for r in rs.rules() {
                    out.push_str(&format!(
                        "{:<16} {:<9} {:<22} {}\n",
                        r.id,
                        r.severity.as_str(),
                        r.techniques.join(","),
                        r.name
                    ));
                }
                crate::cmd::sbom::emit(&None, &out)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut failed = false;
            for p in &validate {
                let text = std::fs::read_to_string(p).with_context(|| p.display().to_string())?;
                let diags = rules::validate(&text, &p.display().to_string());
                for d in &diags {
                    eprintln!("{d}");
                }
                if rules::has_errors(&diags) {
                    failed = true;
                } else {
                    eprintln!("{}: ok", p.display());
                }
            }
            Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        DetectCommand::Audit { file, follow, position, from_end, detect } => {
            let mut det = detector(&detect)?;
            let mut sinks = Sinks::new(&detect)?;
            let name = file.display().to_string();
            if follow {
                // SIGTERM/SIGINT end the current poll's batch, flush and sync the sinks, save
                // the position and exit 0: nothing is lost or repeated.
                let stop = stop_flag();
                signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
                signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
                let sinks = std::cell::RefCell::new(sinks);
                let resume = det.follow_durable(
                    &file,
                    position.as_deref(),
                    from_end,
                    std::time::Duration::from_millis(250),
                    &|| stop.load(Ordering::Relaxed),
                    |f| sinks.borrow_mut().send(f),
                    || sinks.borrow_mut().sync(),
                )?;
                tracing::info!(?resume, "follow ended");
                let mut sinks = sinks.into_inner();
                sinks.flush();
                let st = det.stats();
                tracing::info!(stats = %serde_json::to_string(&st).unwrap_or_default(), "done");
                eprintln!("{}", serde_json::to_string(&st).unwrap_or_default());
                return Ok(ExitCode::SUCCESS);
            } else if file.as_os_str() == "-" {
                det.process_reader(std::io::stdin().lock(), "-", |f| sinks.send(f))?;
            } else {
                let f = std::fs::File::open(&file).with_context(|| name.clone())?;
                det.process_reader(BufReader::with_capacity(1 << 20, f), &name, |f| sinks.send(f))?;
            }
            sinks.flush();
            let st = det.stats();
            tracing::info!(stats = %serde_json::to_string(&st).unwrap_or_default(), "done");
            eprintln!("{}", serde_json::to_string(&st).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        DetectCommand::Serve { listen, tls_cert, tls_key, client_ca, token_file, insecure, detect } => {
            let mut det = detector(&detect)?;
            let mut sinks = Sinks::new(&detect)?;
            let mut cfg = palisade_detect::serve::ServeConfig::new(&listen);
            cfg.allow_plain_http = insecure;
            cfg.tls = match (tls_cert, tls_key) {
                (Some(c), Some(k)) => Some(palisade_detect::serve::TlsConfig {
                    cert_pem: std::fs::read(&c).with_context(|| c.display().to_string())?,
                    key_pem: std::fs::read(&k).with_context(|| k.display().to_string())?,
                    client_ca_pem: client_ca
                        .map(|p| std::fs::read(&p).with_context(|| p.display().to_string()))
                        .transpose()?,
                }),
                (None, None) => None,
                _ => anyhow::bail!("--tls-cert and --tls-key go together"),
            };
            if let Some(tf) = token_file {
                let text = std::fs::read_to_string(&tf).with_context(|| tf.display().to_string())?;
                cfg.bearer_tokens = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
            }
            let server = palisade_detect::serve::WebhookServer::bind(cfg)?;
            eprintln!("listening on {}", server.local_addr());
            let stop = AtomicBool::new(false);
            palisade_detect::serve::run(&server, &mut det, &|| stop.load(Ordering::Relaxed), |f| sinks.send(f))?;
            sinks.flush();
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn simulate(c: SimulateCommand) -> anyhow::Result<ExitCode> {
    match c {
        SimulateCommand::Fleet(a) => {
            let a = *a;
            let o = palisade_server::simulate::FleetOptions {
                server: a.server,
                token: a.token,
                clusters: a.clusters,
                workloads: a.workloads,
                nodes: a.nodes,
                images: a.images,
                packages: a.packages,
                alerts: a.alerts,
                batch: a.batch,
                concurrency: a.concurrency,
                queries: a.queries,
                vulnerable_percent: a.vulnerable_percent,
                seed: a.seed,
            };
            let r = palisade_server::simulate::run(&o)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(std::process::ExitCode::SUCCESS)
        }
        SimulateCommand::Audit { seed, events, stories, output } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0);
            let cfg = palisade_detect::simulate::SimConfig {
                seed,
                background_events: events,
                stories,
                start_us: now - 3_600_000_000,
                ..Default::default()
            };
            let mut w: Box<dyn Write> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p).with_context(|| p.display().to_string())?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            for line in palisade_detect::simulate::Generator::new(cfg) {
                if let Err(e) = writeln!(w, "{line}") {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        break;
                    }
                    return Err(e.into());
                }
            }
            let _ = w.flush();
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "sensor")]
        SimulateCommand::Node { keep, wait, alerts, block_drift, prevent_drift, kubeconfig } => {
            crate::cmd::simnode::run(palisade_sensor::simulate::SimConfig {
                keep,
                wait,
                alerts,
                block_drift,
                prevent_drift,
                kubeconfig,
                event_log: None,
            })
        }
        #[cfg(not(feature = "sensor"))]
        SimulateCommand::Node { .. } => crate::cmd::no_sensor(),
    }
}
