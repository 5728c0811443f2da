//! `palisade up`: the whole product on one machine. Starts the server (embedded SQLite in the
//! user data directory), assesses this machine's root filesystem (SBOM, and findings from the
//! server's vulnerability database when it has one), assesses manifests or a cluster for
//! posture, prints the console's address and the admin token's path, and serves until Ctrl-C.

use crate::args::{PostureArgs, PostureFormat, UpArgs};
use anyhow::Context;
use palisade_store::{NewToken, Role};
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Longest wait for a `--db-from` database build before assessing without it.
const DB_WAIT: Duration = Duration::from_secs(20 * 60);

pub fn run(a: UpArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let data_dir = a.data_dir.clone().unwrap_or_else(crate::cmd::server::default_data_dir);
    let mut c = palisade_server::Config::new(data_dir.clone());
    c.listen = a.listen;
    c.db_from = a.db_from.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    rt.block_on(async move {
        let (server, boot) = palisade_server::Server::open(c).await?;
        let listener = tokio::net::TcpListener::bind(a.listen).await.with_context(|| {
            format!("listening on {} (another server there? choose one with --listen 127.0.0.1:PORT)", a.listen)
        })?;
        let addr = listener.local_addr().unwrap_or(a.listen);
        let url = format!("http://{addr}");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            tokio::select! {
                _ = crate::cmd::server::stop_signal() => {}
                _ = stop_rx => {}
            }
        };
        let (_, serving) = palisade_server::serve_tls_handle(server.clone(), listener, None, shutdown);
        let serving = tokio::spawn(serving);
        let say = |m: &str| {
            if !quiet {
                eprintln!("{m}");
            }
        };
        say(&format!("palisade server on {url} (data: {})", data_dir.display()));

        // The assessment uploads with its own short-lived operator token (audited as such).
        let (up_token, token) = server
            .store
            .create_token(
                &NewToken {
                    name: "palisade up".into(),
                    role: Role::Operator,
                    expires_at: Some(server.store.now() + DB_WAIT.as_secs() as i64 + 3600),
                    single_use: false,
                    cluster: None,
                },
                "system:up",
            )
            .await?;

        if server.vulndb().is_none() && !a.db_from.is_empty() {
            say("building the vulnerability database from --db-from (the db-update job)…");
            wait_for_db(&server).await;
        }
        let has_db = server.vulndb().is_some();
        let mut exit = ExitCode::SUCCESS;

        if !a.no_host {
            let root = a.root.clone();
            let (u, t) = (url.clone(), token.clone());
            let show_bar = !quiet && std::io::stderr().is_terminal();
            say(&format!("assessing this machine ({})…", root.display()));
            let r = std::thread::spawn(move || assess_host(&root, &u, &t, show_bar))
                .join()
                .map_err(|_| anyhow::anyhow!("the host assessment panicked"))?;
            match r {
                Ok((packages, findings, warnings)) => {
                    for w in warnings.iter().filter(|w| has_db || !w.contains("no vulnerability database yet")) {
                        say(&format!("  warning: {w}"));
                    }
                    if has_db {
                        say(&format!("  {packages} packages, {findings} vulnerability findings"));
                    } else {
                        say(&format!("  {packages} packages; no vulnerability database yet, so no findings:"));
                        say("  the server is fetching one (its db-update job; it needs the internet) and will assess");
                        say("  this SBOM when it arrives. Offline, build one from feed files: palisade up --db-from DIR");
                    }
                }
                Err(e) => {
                    say(&format!("  the host assessment failed: {e:#}"));
                    exit = ExitCode::FAILURE;
                }
            }
        }

        if !a.source.files.is_empty() || a.source.kubeconfig.is_some() {
            let report = data_dir.join("posture-report.json");
            let args = PostureArgs {
                source: a.source.clone(),
                format: Some(PostureFormat::Json),
                output: Some(report.clone()),
                severity: Vec::new(),
                framework: Vec::new(),
                config: None,
                policies: Vec::new(),
                trusted_registries: Vec::new(),
                exit_code: 0,
                list_checks: false,
                server: Some(url.clone()),
                token: Some(token.clone()),
            };
            say("assessing the cluster's posture…");
            let r = std::thread::spawn(move || crate::cmd::posture::run(args))
                .join()
                .map_err(|_| anyhow::anyhow!("the posture assessment panicked"))?;
            match r {
                Ok(_) => say(&format!("  posture findings sent; the report is in {}", report.display())),
                Err(e) => {
                    say(&format!("  the posture assessment failed: {e:#}"));
                    exit = ExitCode::FAILURE;
                }
            }
        }

        // the assessment's token is done: revoke it (audited) rather than leave it valid
        if let Err(e) = server.store.revoke_token(&up_token.id, "system:up").await {
            say(&format!("  could not revoke the assessment's token {}: {e}", up_token.id));
        }
        let token_path = data_dir.join(palisade_server::ADMIN_TOKEN_FILE);
        println!("Console: {url}/");
        match &boot.admin_token_path {
            Some(p) => println!("Admin token (new): {}", p.display()),
            None if token_path.exists() => println!("Admin token: {}", token_path.display()),
            None => println!(
                "Admin token: {} is gone; the admin token made on first start still works (create more in Settings)",
                token_path.display()
            ),
        }
        if a.once {
            let _ = stop_tx.send(());
        } else {
            say("serving until Ctrl-C");
        }
        serving.await.context("the server task failed")?;
        anyhow::Ok(exit)
    })
}

/// Wait until the server has a database, or its build failed, or [`DB_WAIT`] passed.
async fn wait_for_db(server: &palisade_server::Server) {
    let started = server.store.now();
    let deadline = Instant::now() + DB_WAIT;
    while server.vulndb().is_none() && Instant::now() < deadline {
        if let Ok(Some(j)) = server.store.get_job(palisade_server::DB_UPDATE_JOB).await {
            if j.finished_at.is_some_and(|f| f >= started) {
                if let Some(e) = j.last_error {
                    eprintln!("  the database build failed: {e}");
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// SBOM of `root`, uploaded to the server, which matches it: (packages, findings, warnings).
fn assess_host(
    root: &std::path::Path,
    url: &str,
    token: &str,
    bar: bool,
) -> anyhow::Result<(usize, usize, Vec<String>)> {
    let opened =
        palisade_image::open(&palisade_image::Transport::Dir { root: root.to_path_buf() }, &Default::default())?;
    let name = format!("dir:{}", root.display());
    let progress = crate::progress::Bar::new(bar);
    let sbom = palisade_sbom::scan(&name, &opened, &progress);
    progress.finish();
    let sbom = sbom?;
    let packages = sbom.packages.len();
    let (findings, warnings) = crate::cmd::scan::send_to_server(url, Some(token), &sbom)?;
    Ok((packages, findings.len(), warnings))
}
