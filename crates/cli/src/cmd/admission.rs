//! `palisade admission test|serve|manifests`.

use crate::args::{AdmissionAction, AdmissionCommand, AdmissionManifestsArgs, AdmissionPreset, AdmissionServeArgs};
use anyhow::Context as _;
use palisade_admission::{load_rego, Action, Config, Engine, Operation, Verdict};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(c: AdmissionCommand) -> anyhow::Result<ExitCode> {
    match c {
        AdmissionCommand::Test { files, config, preset, action, user } => {
            let engine = match (&config, preset) {
                (Some(p), _) => load_engine(p)?.0,
                (None, Some(pr)) => Engine::new(preset_config(pr, action), Vec::new()),
                (None, None) => anyhow::bail!("give --config FILE or --preset baseline|restricted"),
            };
            let loaded = palisade_k8s::load::load_paths(&files)?;
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            let mut out = String::new();
            let mut denied = 0;
            for o in &loaded.objects {
                let d = engine.decide(&o.value, Operation::Create, &user, &[]);
                if !d.allowed {
                    denied += 1;
                }
                let reasons: Vec<String> = d
                    .violations
                    .iter()
                    .filter(|v| v.action != Action::Audit || d.verdict == Verdict::Allowed)
                    .map(|v| format!("{} {} ({})", v.check_id, v.message, v.path))
                    .collect();
                let tail = match (&d.exempt, reasons.is_empty()) {
                    (Some(why), _) => format!(": {why}"),
                    (None, true) => String::new(),
                    (None, false) => format!(": {}", reasons.join("; ")),
                };
                let _ = writeln!(out, "{} {}{tail}", o.id(), d.verdict);
            }
            crate::cmd::sbom::emit(&None, &out)?;
            Ok(if denied > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        AdmissionCommand::Serve(a) => serve(a),
        AdmissionCommand::Manifests(a) => manifests(a),
    }
}

/// The one-policy configuration of `--preset` and `--action` (both parsed by clap: an unknown
/// value is a usage error, never a stricter or laxer default).
fn preset_config(preset: AdmissionPreset, action: AdmissionAction) -> Config {
    Config::preset(preset.into(), action.into())
}

/// Reads and compiles a configuration; also returns every file it depends on (to watch).
fn load_engine(path: &Path) -> anyhow::Result<(Engine, Vec<PathBuf>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg = Config::from_yaml(&text).with_context(|| path.display().to_string())?;
    let base = path.parent().unwrap_or(Path::new("."));
    let rego = load_rego(&cfg, base).with_context(|| path.display().to_string())?;
    let mut watched = vec![path.to_path_buf()];
    for p in &cfg.policies {
        watched.extend(p.rego.iter().map(|r| if r.is_absolute() { r.clone() } else { base.join(r) }));
    }
    Ok((Engine::new(cfg, rego), watched))
}

/// A cheap content fingerprint of files (and directories, recursively) to notice changes,
/// including Kubernetes' ConfigMap symlink swaps, which keep mtimes.
fn fingerprint(paths: &[PathBuf]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        p.hash(&mut h);
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                entries.sort();
                stack.extend(entries);
            }
        } else {
            std::fs::read(&p).unwrap_or_default().hash(&mut h);
        }
    }
    h.finish()
}

fn tls_material(a: &AdmissionServeArgs) -> anyhow::Result<palisade_https::TlsConfig> {
    Ok(palisade_https::TlsConfig {
        cert_pem: std::fs::read(&a.tls_cert).with_context(|| a.tls_cert.display().to_string())?,
        key_pem: std::fs::read(&a.tls_key).with_context(|| a.tls_key.display().to_string())?,
        client_ca_pem: a
            .client_ca
            .as_ref()
            .map(|p| std::fs::read(p).with_context(|| p.display().to_string()))
            .transpose()?,
    })
}

fn serve(a: AdmissionServeArgs) -> anyhow::Result<ExitCode> {
    let (engine, mut watched) = match (&a.config, a.preset) {
        (Some(p), _) => load_engine(p)?,
        (None, Some(pr)) => (Engine::new(preset_config(pr, a.action), Vec::new()), Vec::new()),
        (None, None) => anyhow::bail!("give --config FILE or --preset baseline|restricted"),
    };
    let tls_cfg = palisade_https::server_config(&tls_material(&a)?, false)?;
    let log: Option<Box<dyn std::io::Write + Send>> = match a.decision_log.as_str() {
        "off" => None,
        "-" => Some(Box::new(std::io::stdout())),
        path => Some(Box::new(
            std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| path.to_string())?,
        )),
    };
    let service = palisade_admission::service::Service::new(engine, log);
    let limits = palisade_https::Limits {
        max_body_bytes: a.max_body_bytes,
        max_connections: a.max_connections,
        request_timeout: a.request_timeout,
        idle_timeout: Duration::from_secs(120),
        // 4 reviews parsed at once: the worst 3 MB review peaks near 80 MB (see manifests.rs)
        max_inflight_bodies: 4,
        ..palisade_https::Limits::default()
    };
    let svc = service.clone();
    let handler: palisade_https::Handler = Arc::new(move |req: &palisade_https::Request| svc.handle(req));
    let server = palisade_https::Server::bind(&a.listen, Some(tls_cfg), limits, "admission", handler)?;
    eprintln!("palisade admission webhook listening on https://{}/validate", server.local_addr());
    tracing::info!(addr = %server.local_addr(), "admission webhook started");

    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    let tls_files = vec![a.tls_cert.clone(), a.tls_key.clone()];
    let mut config_fp = fingerprint(&watched);
    let mut tls_fp = fingerprint(&tls_files);
    let mut next_check = Instant::now() + a.reload_interval;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        let forced = hup.swap(false, Ordering::SeqCst);
        if !forced && Instant::now() < next_check {
            continue;
        }
        next_check = Instant::now() + a.reload_interval;
        if let Some(path) = &a.config {
            let fp = fingerprint(&watched);
            if fp != config_fp || forced {
                config_fp = fp;
                match load_engine(path) {
                    Ok((engine, w)) => {
                        service.swap(engine);
                        watched = w;
                        config_fp = fingerprint(&watched);
                        tracing::info!(generation = service.generation(), "configuration reloaded");
                        eprintln!("configuration reloaded (generation {})", service.generation());
                    }
                    Err(e) => {
                        service.reload_failed();
                        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                        tracing::error!(error = %chain.join(": "), "configuration not reloaded; keeping the running one");
                        eprintln!("configuration not reloaded, keeping the running one: {}", chain.join(": "));
                    }
                }
            }
        }
        let fp = fingerprint(&tls_files);
        if fp != tls_fp || forced {
            tls_fp = fp;
            match tls_material(&a).and_then(|t| Ok(palisade_https::server_config(&t, false)?)) {
                Ok(cfg) => {
                    server.set_tls(cfg);
                    tracing::info!("TLS certificate reloaded");
                }
                Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; keeping the running one"),
            }
        }
    }
    // drain: fail readiness first so endpoints are removed, then finish requests in flight
    service.set_ready(false);
    eprintln!("shutting down: finishing requests in flight");
    server.shutdown(a.shutdown_grace);
    Ok(ExitCode::SUCCESS)
}

fn manifests(a: AdmissionManifestsArgs) -> anyhow::Result<ExitCode> {
    use palisade_admission::manifests::{generate_tls, render, to_yaml, ManifestOptions, DEFAULT_CONFIG};
    let config_yaml = match &a.config {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        None => DEFAULT_CONFIG.to_string(),
    };
    let config = Config::from_yaml(&config_yaml).context("the webhook configuration")?;
    if config.policies.iter().any(|p| !p.rego.is_empty()) {
        tracing::warn!("policies with `rego` files: mount those files into the pods as well (the ConfigMap carries only config.yaml)");
    }
    let o = ManifestOptions {
        namespace: a.namespace.clone(),
        name: a.name.clone(),
        image: a.image.clone(),
        config_yaml,
        config,
        strict: a.strict,
        cert_manager: a.cert_manager,
        timeout_seconds: a.timeout_seconds,
        replicas: a.replicas,
    };
    let tls = if a.cert_manager { None } else { Some(generate_tls(&a.name, &a.namespace)?) };
    let text = to_yaml(&render(&o, tls.as_ref()));
    match &a.output {
        Some(p) => std::fs::write(p, text).with_context(|| p.display().to_string())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
