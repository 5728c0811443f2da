//! The `db-update` job: update the server's vulnerability database (from the offline feed
//! directories of `--db-from`, or by downloading as `palisade db update` does), then re-match
//! every stored SBOM in scope (Defender's rule: pushed in the last 90 days, pulled in the last
//! 30, or run by a live workload) and record what changed.
//!
//! Invariants:
//! - One replica at a time runs the job: it holds the store's lease (a fencing generation), and
//!   renews it between batches; a replica that lost its lease stops.
//! - Re-assessment goes a page of SBOMs at a time, each page one transaction, and saves its
//!   cursor after each: a restarted server resumes an unfinished run where it stopped.
//! - A newly KEV-listed finding in an image a live workload runs raises an alert.

use crate::{secs, Server, ServerError, DB_UPDATE_JOB};
use palisade_store::{AlertInput, ChangeKind, FindingInput, Lease, ScopePolicy, Severity};
use palisade_vulndb::db::VulnDb;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Lease time of a job run (renewed between batches).
pub const LEASE: Duration = Duration::from_secs(300);

/// What one run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    /// Re-assessment run ID (events carry it).
    pub run_id: String,
    /// Vulnerabilities in the database after the update.
    pub vulnerabilities: usize,
    /// SBOMs re-matched.
    pub images: usize,
    /// Change events recorded.
    pub events: usize,
    /// Alerts raised (new KEV findings in images in use).
    pub alerts: usize,
    /// Warnings of the update.
    pub warnings: Vec<String>,
}

/// Poll for due jobs until `stop` turns true; also woken by `POST /api/v1/admin/db/update`.
pub async fn run_loop(server: Arc<Server>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        match server.store.claim_due(&server.replica, LEASE).await {
            // a re-assessment rewrote findings wholesale: fresh planner statistics right away
            Ok(Some(lease)) => {
                run_claimed(&server, lease).await;
                refresh_statistics(&server, true).await;
            }
            Ok(None) => refresh_statistics(&server, false).await,
            Err(e) => tracing::warn!(error = %e, "job claim failed"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = server.wake.notified() => {}
            _ = tokio::time::sleep(server.config.job_poll) => {}
        }
    }
}

/// Keep the query planner's statistics current after bulk writes (PostgreSQL `ANALYZE`; see
/// [`palisade_store::Store::refresh_statistics`]); a failure is logged and retried next poll.
async fn refresh_statistics(server: &Server, force: bool) {
    if let Err(e) = server.store.refresh_statistics(force).await {
        tracing::warn!(error = %e, "refreshing planner statistics failed");
    }
}

/// Run a claimed job and record its outcome; the next run is due one interval later.
pub async fn run_claimed(server: &Arc<Server>, lease: Lease) {
    if lease.job == crate::RETENTION_JOB {
        let policy = server.config.retention;
        let outcome = match server.store.apply_retention(&policy, &format!("job:{}", crate::RETENTION_JOB)).await {
            Ok(r) => {
                tracing::info!(?r, "retention applied");
                Ok(())
            }
            Err(e) => {
                server.metrics.job_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "retention failed");
                Err(e.to_string())
            }
        };
        let next = Some(server.store.now() + secs(crate::RETENTION_INTERVAL));
        if let Err(e) = server.store.finish(&lease, outcome.as_ref().map(|_| ()).map_err(String::as_str), next).await {
            tracing::warn!(error = %e, "recording the retention run failed");
        }
        return;
    }
    if lease.job != DB_UPDATE_JOB {
        tracing::warn!(job = %lease.job, "unknown job released");
        let _ = server.store.release(&lease).await;
        return;
    }
    let result = run_db_update(server, &lease).await;
    if matches!(result, Err(ServerError::Stopping)) {
        tracing::info!(job = %lease.job, "stopping: re-assessment paused; it resumes from its saved cursor");
        let _ = server.store.release(&lease).await;
        return;
    }
    // jittered (up to a tenth of the interval) so replicas and restarts do not line up
    let interval = secs(server.config.db_update_interval);
    let jitter = (uuid::Uuid::new_v4().as_u128() % (interval as u128 / 10).max(1)) as i64;
    let next = Some(server.store.now() + interval + jitter);
    let outcome = match &result {
        Ok(r) => {
            tracing::info!(run = %r.run_id, images = r.images, events = r.events, alerts = r.alerts, "db update and re-assessment finished");
            Ok(())
        }
        Err(e) => {
            server.metrics.job_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "db update failed");
            Err(e.to_string())
        }
    };
    if let Err(e) = server.store.finish(&lease, outcome.as_ref().map(|_| ()).map_err(String::as_str), next).await {
        tracing::warn!(error = %e, "could not record the job outcome");
    }
}

/// Update the database, then re-assess (resuming from the lease's cursor when an earlier run
/// stopped half-way: the database is not rebuilt again then).
pub async fn run_db_update(server: &Arc<Server>, lease: &Lease) -> Result<RunReport, ServerError> {
    let resuming = lease.resume_cursor.is_some();
    let mut report = RunReport {
        run_id: lease
            .progress
            .as_ref()
            .and_then(|p| p.get("run_id"))
            .and_then(|v| v.as_str())
            .filter(|_| resuming)
            .map(str::to_string)
            .unwrap_or_else(|| format!("run-{}", uuid::Uuid::new_v4())),
        ..RunReport::default()
    };
    let db = match (resuming, server.vulndb()) {
        (true, Some(db)) => db,
        _ => {
            let s = server.clone();
            let t = std::time::Instant::now();
            let (db, warnings) = tokio::task::spawn_blocking(move || update_db(&s))
                .await
                .map_err(|e| ServerError::Task(e.to_string()))??;
            server.metrics.last_db_build_ms.store(t.elapsed().as_millis() as u64, Ordering::Relaxed);
            report.warnings = warnings;
            server.set_vulndb(db);
            server.vulndb().ok_or_else(|| ServerError::Task("database vanished".into()))?
        }
    };
    report.vulnerabilities = db.meta().vulnerabilities;
    let t = std::time::Instant::now();
    reassess(server, lease, &db, &mut report).await?;
    server.metrics.last_reassess_ms.store(t.elapsed().as_millis() as u64, Ordering::Relaxed);
    server.metrics.reassessments.fetch_add(1, Ordering::Relaxed);
    Ok(report)
}

/// Build (offline) or download-and-build the database into the data directory.
fn update_db(server: &Server) -> Result<(VulnDb, Vec<String>), ServerError> {
    let target = server.db_path();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if !server.config.db_from.is_empty() {
        let built =
            palisade_vulndb::build::build_from_dirs(&server.config.db_from, &target, server.config.db_build, now)?;
        return Ok((built.db, built.warnings));
    }
    let opts = palisade_vulndb::update::UpdateOptions::new(server.config.data_dir.join("feeds"));
    let outcome = palisade_vulndb::update::update(&opts)?;
    let bytes = palisade_vulndb::db::build(palisade_vulndb::build::merge(outcome.sets), now);
    let new = VulnDb::from_bytes(&target, bytes.clone())?;
    let prev = VulnDb::open(&target).ok();
    let refusals = palisade_vulndb::db::replace_refusals(prev.as_ref().map(|d| d.meta()), new.meta(), &[], false);
    if !refusals.is_empty() {
        return Err(palisade_vulndb::build::BuildError::Refused { target, replacing: prev.is_some(), refusals }.into());
    }
    palisade_vulndb::db::write_atomic(&target, &bytes)?;
    Ok((VulnDb::open(&target)?, outcome.warnings))
}

async fn reassess(
    server: &Arc<Server>,
    lease: &Lease,
    db: &Arc<VulnDb>,
    report: &mut RunReport,
) -> Result<(), ServerError> {
    let policy = ScopePolicy::default();
    let mut cursor = lease.resume_cursor.clone();
    let mut lease = lease.clone();
    let actor = format!("system:reassessment:{}", server.replica);
    loop {
        if server.stopping.load(Ordering::Relaxed) {
            return Err(ServerError::Stopping);
        }
        // interactive uploads go first: a page waits (up to 5 s) while uploads are matched
        let t = std::time::Instant::now();
        while server.interactive.load(Ordering::Relaxed) > 0 && t.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let page =
            server.store.reassessment_scope(&policy, cursor.as_deref(), Some(server.config.reassess_batch)).await?;
        if page.items.is_empty() {
            break;
        }
        let db2 = db.clone();
        let sboms = page.items;
        let batch: Vec<(String, Vec<FindingInput>)> = tokio::task::spawn_blocking(move || {
            sboms
                .iter()
                .map(|s| {
                    let found = match palisade_vulndb::matcher::match_sbom(&db2, &s.sbom) {
                        Ok(m) => m.findings.iter().map(FindingInput::from_vulndb).collect(),
                        Err(e) => {
                            tracing::warn!(image = %s.digest, error = %e, "re-match failed; findings kept as they were");
                            return None;
                        }
                    };
                    Some((s.digest.clone(), found))
                })
                .collect::<Option<Vec<_>>>()
        })
        .await
        .map_err(|e| ServerError::Task(e.to_string()))?
        .ok_or_else(|| ServerError::Task("re-matching a stored SBOM failed".into()))?;
        report.images += batch.len();
        server.metrics.images_reassessed.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let events = server.store.apply_reassessment(&report.run_id, &batch, &actor).await?;
        report.events += events.len();
        let kev: Vec<String> =
            events.iter().filter(|e| e.kind == ChangeKind::KevAdded).map(|e| e.image_digest.clone()).collect();
        if !kev.is_empty() {
            let in_use = server.store.images_in_use(&kev).await?;
            let now = server.store.now();
            let alerts: Vec<AlertInput> = events
                .iter()
                .filter(|e| e.kind == ChangeKind::KevAdded && in_use.contains(&e.image_digest))
                .map(|e| AlertInput {
                    key: Some(format!("kev:{}:{}", e.image_digest, e.vuln_id)),
                    cluster: None,
                    rule: "PAL-VULN-KEV-IN-USE".into(),
                    severity: Severity::Critical,
                    at: now,
                    namespace: None,
                    pod: None,
                    node: None,
                    doc: json!({
                        "title": format!("{} in an image in use is now known exploited (CISA KEV)", e.vuln_id),
                        "image": e.image_digest, "vuln_id": e.vuln_id, "run_id": report.run_id,
                        "mitre": {"technique": "T1190", "name": "Exploit Public-Facing Application"},
                    }),
                })
                .collect();
            if !alerts.is_empty() {
                report.alerts += server.store.ingest_alerts(&alerts, &actor).await?.len();
            }
        }
        cursor = page.next_cursor;
        server
            .store
            .save_progress(
                &lease,
                cursor.as_deref(),
                Some(&json!({"run_id": report.run_id, "images": report.images, "events": report.events})),
            )
            .await?;
        server.store.renew(&mut lease, LEASE).await?;
        if cursor.is_none() {
            break;
        }
    }
    Ok(())
}
