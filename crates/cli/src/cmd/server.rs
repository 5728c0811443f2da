//! `palisade server`: parse flags, host [`palisade_server`], stop on SIGINT/SIGTERM.

use crate::args::ServerArgs;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

pub(crate) fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(|p| PathBuf::from(p).join("palisade"))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/palisade")))
        .unwrap_or_else(|| PathBuf::from(".palisade-data"))
}

pub fn run(a: ServerArgs) -> anyhow::Result<ExitCode> {
    let mut c = palisade_server::Config::new(a.data_dir.unwrap_or_else(default_data_dir));
    c.listen = a.listen;
    c.database_url = a.database_url;
    c.db_from = a.db_from;
    c.db_update_interval = a.db_update_interval;
    c.db_build.allow_shrink = a.db_allow_shrink;
    c.db_build.allow_feed_errors = a.db_allow_feed_errors;
    let tls_files = match (a.tls_cert, a.tls_key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    let scheme = if tls_files.is_some() { "https" } else { "http" };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    rt.block_on(async move {
        let listen = c.listen;
        let (server, boot) = palisade_server::Server::open(c).await?;
        if let Some(p) = &boot.admin_token_path {
            eprintln!("bootstrap admin token written to {}", p.display());
        }
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
        eprintln!("palisade server listening on {scheme}://{}", listener.local_addr().unwrap_or(listen));
        let shutdown = async {
            stop_signal().await;
            eprintln!("palisade server: stopping (draining requests)");
        };
        let tls = match &tls_files {
            Some((c, k)) => Some(load_tls(c, k)?),
            None => None,
        };
        let (handle, run) = palisade_server::serve_tls_handle(server, listener, tls, shutdown);
        if let Some((c, k)) = tls_files {
            // certificate rotation (cert-manager, a mounted Secret): new connections get the new chain
            tokio::spawn(async move {
                let mut seen = fingerprint(&[&c, &k]);
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                    let now = fingerprint(&[&c, &k]);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    match load_tls(&c, &k) {
                        Ok(cfg) => {
                            handle.set_tls(cfg);
                            tracing::info!("TLS certificate reloaded");
                        }
                        Err(e) => tracing::error!(error = %format!("{e:#}"), "TLS certificate not reloaded; keeping the running one"),
                    }
                }
            });
        }
        run.await;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (never, when SIGTERM cannot be watched).
pub(crate) async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending::<()>().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn load_tls(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<std::sync::Arc<rustls::ServerConfig>> {
    let t = palisade_https::TlsConfig {
        cert_pem: std::fs::read(cert).with_context(|| cert.display().to_string())?,
        key_pem: std::fs::read(key).with_context(|| key.display().to_string())?,
        client_ca_pem: None,
    };
    Ok(palisade_https::server_config(&t, false)?)
}

fn fingerprint(paths: &[&std::path::Path]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    for p in paths {
        std::fs::read(p).unwrap_or_default().hash(&mut h);
    }
    h.finish()
}
