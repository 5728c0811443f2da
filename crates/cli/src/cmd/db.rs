//! `palisade db build|update|status`.

use crate::args::{DbCommand, DbPath};
use anyhow::Context;
use palisade_vulndb::db::{self, BuildInput, VulnDb};
use palisade_vulndb::feed;
use std::path::PathBuf;
use std::process::ExitCode;

/// The database path from flags / environment / default.
pub fn path(p: &DbPath) -> PathBuf {
    p.path.clone().unwrap_or_else(db::default_path)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Merge feed sets into build input.
pub fn merge(sets: Vec<feed::FeedSet>) -> BuildInput {
    palisade_vulndb::build::merge(sets)
}

pub fn run(c: DbCommand, quiet: bool) -> anyhow::Result<ExitCode> {
    match c {
        DbCommand::Build { db, from, allow_shrink, allow_feed_errors } => {
            let target = path(&db);
            let opts = palisade_vulndb::build::BuildOptions { allow_shrink, allow_feed_errors };
            match palisade_vulndb::build::build_from_dirs(&from, &target, opts, now_unix()) {
                Ok(built) => {
                    for w in &built.warnings {
                        tracing::warn!("{w}");
                    }
                    if !quiet {
                        eprintln!(
                            "built {} ({} bytes): {} vulnerabilities, {} sources",
                            target.display(),
                            built.bytes,
                            built.db.meta().vulnerabilities,
                            built.db.meta().sources.len()
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(palisade_vulndb::build::BuildError::Refused { target, replacing, refusals }) => {
                    for r in &refusals {
                        eprintln!("error: {r}");
                    }
                    eprintln!(
                        "error: {} not {} ({} problem(s) above)",
                        target.display(),
                        if replacing { "replaced" } else { "written" },
                        refusals.len()
                    );
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        DbCommand::Update { db, mirror, only, feed_dir } => {
            let target = path(&db);
            let dir = feed_dir
                .unwrap_or_else(|| target.parent().map(|p| p.join("feeds")).unwrap_or_else(|| PathBuf::from("feeds")));
            let mut opts = palisade_vulndb::update::UpdateOptions::new(dir);
            for m in &mirror {
                let (k, v) = m.split_once('=').with_context(|| format!("--mirror {m:?}: expected GROUP=URL"))?;
                opts.mirrors.insert(k.to_string(), v.trim_end_matches('/').to_string());
            }
            opts.only = only;
            opts.progress = !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
            let outcome = palisade_vulndb::update::update(&opts)?;
            for w in &outcome.warnings {
                tracing::warn!("{w}");
            }
            let input = merge(outcome.sets);
            let bytes = db::build(input, now_unix());
            let new = VulnDb::from_bytes(&target, bytes.clone())?;
            let prev = VulnDb::open(&target).ok();
            let refusals = db::replace_refusals(prev.as_ref().map(|d| d.meta()), new.meta(), &[], false);
            if !refusals.is_empty() {
                for r in &refusals {
                    eprintln!("error: {r}");
                }
                eprintln!("error: {} not replaced ({} problem(s) above)", target.display(), refusals.len());
                return Ok(ExitCode::FAILURE);
            }
            db::write_atomic(&target, &bytes)?;
            let opened = VulnDb::open(&target)?;
            if !quiet {
                eprintln!(
                    "updated {}: {} vulnerabilities from {} sources ({} downloaded, {} reused)",
                    target.display(),
                    opened.meta().vulnerabilities,
                    opened.meta().sources.len(),
                    outcome.downloaded,
                    outcome.reused
                );
            }
            if !outcome.failed.is_empty() && !quiet {
                // Written from the previous copies of these sources (each also has a warning).
                eprintln!(
                    "warning: {} source(s) could not be refreshed, previous copies used: {}",
                    outcome.failed.len(),
                    outcome.failed.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Status { db, json } => {
            let target = path(&db);
            let opened = VulnDb::open(&target)?;
            let m = opened.meta();
            let age_h = now_unix().saturating_sub(m.built_at_unix) / 3600;
            use std::fmt::Write as _;
            let mut out = String::new();
            if json {
                let mut v = serde_json::to_value(m)?;
                v["path"] = serde_json::json!(target.display().to_string());
                v["age_hours"] = serde_json::json!(age_h);
                out = serde_json::to_string_pretty(&v)? + "\n";
            } else {
                let _ = writeln!(out, "database: {}", target.display());
                let _ = writeln!(out, "built:    {} ({} h ago)", m.built_at, age_h);
                let _ = writeln!(out, "vulnerabilities: {}  KEV: {}  EPSS: {}", m.vulnerabilities, m.kev, m.epss);
                let _ = writeln!(out, "\n{:<34} {:>9} {:>8}  PATH", "SOURCE", "RECORDS", "SKIPPED");
                for s in &m.sources {
                    let _ = writeln!(out, "{:<34} {:>9} {:>8}  {}", s.name, s.records, s.skipped, s.path);
                }
                let _ = writeln!(out, "\n{:<34} {:>9}", "INDEX", "ENTRIES");
                for (k, n) in &m.entries {
                    let _ = writeln!(out, "{:<34} {:>9}", k.trim_start_matches("eco:"), n);
                }
            }
            crate::cmd::sbom::emit(&None, &out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
