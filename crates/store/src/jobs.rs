//! Scheduled jobs with leases, so several replicas never run the same job at once, and a run
//! interrupted by a crash resumes from its saved cursor.
//!
//! A lease is a row in `jobs`: `owner`, `lease_expires` and a `generation` that every
//! acquisition increments (a fencing token: a previous owner whose lease expired can no longer
//! save progress or finish). Acquisition is one conditional `UPDATE … WHERE` the lease is free or
//! expired, atomic on both backends; claiming "any due job" selects the row with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent replicas pick different jobs instead of
//! queueing on one row (SQLite has a single writer, so the same statement without the clause is
//! already exclusive).

use crate::error::{Result, StoreError};
use crate::types::*;
use crate::{retrying, Backend, Store};
use serde_json::{json, Value};
use sqlx::Row;
use std::time::Duration;

const JOB_COLS: &str = "name, state, priority, next_run, owner, lease_expires, generation, cursor, progress, \
     started_at, finished_at, last_error";

fn job_from_row(r: &sqlx::any::AnyRow) -> Result<JobInfo> {
    let progress: Option<String> = r.try_get(8)?;
    Ok(JobInfo {
        name: r.try_get(0)?,
        state: JobState::parse(&r.try_get::<String, _>(1)?),
        priority: r.try_get(2)?,
        next_run: r.try_get(3)?,
        owner: r.try_get(4)?,
        lease_expires: r.try_get(5)?,
        generation: r.try_get(6)?,
        cursor: r.try_get(7)?,
        progress: progress.and_then(|p| serde_json::from_str(&p).ok()),
        started_at: r.try_get(9)?,
        finished_at: r.try_get(10)?,
        last_error: r.try_get(11)?,
    })
}

fn ttl_secs(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 4).max(1)
}

/// The assignments of an acquisition ($1 owner, $2 expiry, $3 now).
const TAKE: &str = "owner = $1, lease_expires = $2, generation = generation + 1, state = 'running', \
     started_at = CASE WHEN cursor IS NULL THEN $3 ELSE COALESCE(started_at, $3) END, updated_at = $3";
/// The lease is free or expired ($3 now).
const FREE: &str = "(owner IS NULL OR lease_expires < $3)";

impl Store {
    /// Create the job when missing (existing jobs keep their state). `next_run`: when it is
    /// first due (`None`: only on request).
    pub async fn ensure_job(&self, name: &str, priority: i64, next_run: Option<Timestamp>) -> Result<()> {
        if name.is_empty() || name.len() > 256 {
            return Err(StoreError::Invalid("job name must be 1..=256 bytes".into()));
        }
        retrying!(self, "ensure_job", async {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO jobs (name, state, priority, next_run, generation, updated_at) VALUES ($1, 'idle', $2, $3, 0, $4) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(priority)
            .bind(next_run)
            .bind(self.now())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Make a job due now (an API request, an interactive upload that should go first).
    pub async fn request_run(&self, name: &str, actor: &str) -> Result<()> {
        retrying!(self, "request_run", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let n = sqlx::query("UPDATE jobs SET next_run = $1, updated_at = $1 WHERE name = $2")
                .bind(now)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound { what: "job", key: name.to_string() });
            }
            crate::auth::audit_tx(&mut tx, now, actor, "job.request", name, None).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Take the lease on `name` if it is free or expired, whether or not the job is due.
    /// `None`: another owner holds it.
    pub async fn try_acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<Option<Lease>> {
        let ttl = ttl_secs(ttl);
        retrying!(self, "try_acquire", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let r = sqlx::query(&format!(
                "UPDATE jobs SET {TAKE} WHERE name = $4 AND {FREE} RETURNING name, generation, cursor, progress"
            ))
            .bind(owner)
            .bind(now + ttl)
            .bind(now)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            lease_from(r.as_ref(), owner, now + ttl)
        })
    }

    /// Take the lease on one due job: the lowest `priority`, then the earliest `next_run`, among
    /// jobs due now or left unfinished by an owner whose lease expired. `None`: nothing to do.
    pub async fn claim_due(&self, owner: &str, ttl: Duration) -> Result<Option<Lease>> {
        let ttl = ttl_secs(ttl);
        let lock = match self.inner.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        retrying!(self, "claim_due", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let r = sqlx::query(&format!(
                "UPDATE jobs SET {TAKE} WHERE name = (SELECT name FROM jobs WHERE {FREE} AND \
                 ((next_run IS NOT NULL AND next_run <= $3) OR state = 'running') \
                 ORDER BY priority, next_run LIMIT 1{lock}) AND {FREE} RETURNING name, generation, cursor, progress"
            ))
            .bind(owner)
            .bind(now + ttl)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            lease_from(r.as_ref(), owner, now + ttl)
        })
    }

    /// Extend a held lease by `ttl` from now.
    pub async fn renew(&self, lease: &mut Lease, ttl: Duration) -> Result<()> {
        let ttl = ttl_secs(ttl);
        let expires = retrying!(self, "renew", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let n = sqlx::query(
                "UPDATE jobs SET lease_expires = $1, updated_at = $2 WHERE name = $3 AND owner = $4 AND generation = $5",
            )
            .bind(now + ttl)
            .bind(now)
            .bind(lease.job.as_str())
            .bind(lease.owner.as_str())
            .bind(lease.generation)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::LeaseLost { job: lease.job.clone(), generation: lease.generation });
            }
            tx.commit().await?;
            Ok(now + ttl)
        })?;
        lease.expires_at = expires;
        Ok(())
    }

    /// Save the run's resumable position and progress (commit this after each applied page:
    /// a crash resumes after the last saved cursor).
    pub async fn save_progress(&self, lease: &Lease, cursor: Option<&str>, progress: Option<&Value>) -> Result<()> {
        let progress = progress.map(Value::to_string);
        retrying!(self, "save_progress", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let n = sqlx::query(
                "UPDATE jobs SET cursor = $1, progress = $2, updated_at = $3 WHERE name = $4 AND owner = $5 AND generation = $6",
            )
            .bind(cursor)
            .bind(progress.as_deref())
            .bind(now)
            .bind(lease.job.as_str())
            .bind(lease.owner.as_str())
            .bind(lease.generation)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::LeaseLost { job: lease.job.clone(), generation: lease.generation });
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Finish a run: success clears the cursor (`done`), failure keeps it so the next run
    /// resumes (`failed`, `last_error`). The lease is released and the job is next due at
    /// `next_run`.
    pub async fn finish(
        &self,
        lease: &Lease,
        outcome: std::result::Result<(), &str>,
        next_run: Option<Timestamp>,
    ) -> Result<()> {
        let (state, err) = match outcome {
            Ok(()) => (JobState::Done, None),
            Err(e) => (JobState::Failed, Some(truncate(e, 4096).to_string())),
        };
        retrying!(self, "finish", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let n = sqlx::query(
                "UPDATE jobs SET state = $1, last_error = $2, finished_at = $3, updated_at = $3, owner = NULL, \
                 lease_expires = NULL, next_run = $4, cursor = CASE WHEN $1 = 'done' THEN NULL ELSE cursor END \
                 WHERE name = $5 AND owner = $6 AND generation = $7",
            )
            .bind(state.as_str())
            .bind(err.as_deref())
            .bind(now)
            .bind(next_run)
            .bind(lease.job.as_str())
            .bind(lease.owner.as_str())
            .bind(lease.generation)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::LeaseLost { job: lease.job.clone(), generation: lease.generation });
            }
            crate::auth::audit_tx(
                &mut tx,
                now,
                &lease.owner,
                "job.finish",
                &lease.job,
                Some(json!({"state": state.as_str(), "error": err, "generation": lease.generation})),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Give the lease up without finishing (graceful shutdown): the cursor stays, and the job
    /// stays `running`, so any replica resumes it at once.
    pub async fn release(&self, lease: &Lease) -> Result<()> {
        retrying!(self, "release", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "UPDATE jobs SET owner = NULL, lease_expires = NULL, updated_at = $1 WHERE name = $2 AND owner = $3 \
                 AND generation = $4",
            )
            .bind(now)
            .bind(lease.job.as_str())
            .bind(lease.owner.as_str())
            .bind(lease.generation)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// One job.
    pub async fn get_job(&self, name: &str) -> Result<Option<JobInfo>> {
        retrying!(self, "get_job", async {
            let r = sqlx::query(&format!("SELECT {JOB_COLS} FROM jobs WHERE name = $1"))
                .bind(name)
                .fetch_optional(&self.inner.read)
                .await?;
            r.as_ref().map(job_from_row).transpose()
        })
    }

    /// Every job, by name.
    pub async fn list_jobs(&self) -> Result<Vec<JobInfo>> {
        retrying!(self, "list_jobs", async {
            let rows =
                sqlx::query(&format!("SELECT {JOB_COLS} FROM jobs ORDER BY name")).fetch_all(&self.inner.read).await?;
            rows.iter().map(job_from_row).collect()
        })
    }
}

fn lease_from(r: Option<&sqlx::any::AnyRow>, owner: &str, expires_at: i64) -> Result<Option<Lease>> {
    let Some(r) = r else { return Ok(None) };
    let progress: Option<String> = r.try_get(3)?;
    Ok(Some(Lease {
        job: r.try_get(0)?,
        owner: owner.to_string(),
        generation: r.try_get(1)?,
        expires_at,
        resume_cursor: r.try_get(2)?,
        progress: progress.and_then(|p| serde_json::from_str(&p).ok()),
    }))
}
