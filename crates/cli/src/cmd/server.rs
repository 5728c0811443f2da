//! `palisade server`: parse flags, host [`palisade_server`], stop on SIGINT/SIGTERM.

use crate::args::ServerArgs;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

fn default_data_dir() -> PathBuf {
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
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    rt.block_on(async move {
        let listen = c.listen;
        let (server, boot) = palisade_server::Server::open(c).await?;
        if let Some(p) = &boot.admin_token_path {
            eprintln!("bootstrap admin token written to {}", p.display());
        }
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
        eprintln!("palisade server listening on http://{}", listener.local_addr().unwrap_or(listen));
        let shutdown = async {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending::<()>().await,
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("palisade server: stopping (draining requests)");
        };
        palisade_server::serve(server, listener, shutdown).await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
