//! `palisade db build|update|status`.

use crate::args::{DbCommand, DbPath};
use anyhow::Context;
use palisade_vulndb::db::{self, BuildInput, SourceInfo, VulnDb};
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
    let mut input = BuildInput::default();
    for s in sets {
        input.advisories.extend(s.advisories);
        input.kev.extend(s.kev);
        input.epss.extend(s.epss);
        input.sources.extend(s.sources.into_iter().map(|x| SourceInfo {
            name: x.name,
            path: x.path,
            records: x.records,
            skipped: x.skipped,
        }));
    }
    input
}

pub fn run(c: DbCommand, quiet: bool) -> anyhow::Result<ExitCode> {
    match c {
        DbCommand::Build { db, from, allow_shrink, allow_feed_errors } => {
            let target = path(&db);
            let mut sets = Vec::new();
            let mut errors = Vec::new();
            for dir in &from {
                let mut s = feed::load_dir(dir).with_context(|| format!("reading feeds under {}", dir.display()))?;
                errors.extend(s.errors.drain(..).map(|e| e.to_string()));
                if s.sources.is_empty() && errors.is_empty() {
                    anyhow::bail!("no recognised feeds under {}", dir.display());
                }
                sets.push(s);
            }
            let input = merge(sets);
            for s in &input.sources {
                if s.skipped > 0 {
                    tracing::warn!(source = %s.name, skipped = s.skipped, "malformed records skipped");
                }
            }
            let bytes = db::build(input, now_unix());
            let new = VulnDb::from_bytes(&target, bytes.clone())?;
            let prev = match VulnDb::open(&target) {
                Ok(d) => Some(d),
                Err(db::DbError::Missing { .. }) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "the current database is unreadable; it will be replaced");
                    None
                }
            };
            if allow_feed_errors {
                for e in errors.drain(..) {
                    tracing::warn!(error = %e, "feed file failed (--allow-feed-errors)");
                }
            }
            let refusals = db::replace_refusals(prev.as_ref().map(|d| d.meta()), new.meta(), &errors, allow_shrink);
            if !refusals.is_empty() {
                for r in &refusals {
                    eprintln!("error: {r}");
                }
                eprintln!(
                    "error: {} not {} ({} problem(s) above)",
                    target.display(),
                    if prev.is_some() { "replaced" } else { "written" },
                    refusals.len()
                );
                return Ok(ExitCode::FAILURE);
            }
            db::write_atomic(&target, &bytes)?;
            let opened = VulnDb::open(&target)?;
            if !quiet {
                eprintln!(
                    "built {} ({} bytes): {} vulnerabilities, {} sources",
                    target.display(),
                    bytes.len(),
                    opened.meta().vulnerabilities,
                    opened.meta().sources.len()
                );
            }
            Ok(ExitCode::SUCCESS)
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
