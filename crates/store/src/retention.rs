//! Retention: resolved alerts and incidents, images not seen for long, old audit entries.
//! Findings are never deleted: a retired image's open findings are resolved (`image_removed`).

use crate::error::Result;
use crate::sql::Sql;
use crate::types::*;
use crate::{retrying, Store};
use serde_json::json;
use sqlx::Row;

impl Store {
    /// Apply `policy` now. Images a live workload runs are never retired. One transaction.
    pub async fn apply_retention(&self, policy: &RetentionPolicy, actor: &str) -> Result<RetentionOutcome> {
        retrying!(self, "apply_retention", async {
            let now = self.now();
            let mut out = RetentionOutcome::default();
            let mut tx = self.begin_write().await?;
            let alert_cut = now - policy.resolved_alert_days.max(0) * 86_400;
            out.alerts_deleted = sqlx::query("DELETE FROM alerts WHERE resolved_at IS NOT NULL AND resolved_at < $1")
                .bind(alert_cut)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            out.incidents_deleted = sqlx::query(
                "DELETE FROM incidents WHERE resolved_at IS NOT NULL AND resolved_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.incident_id = incidents.id)",
            )
            .bind(alert_cut)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let image_cut = now - policy.image_unseen_days.max(0) * 86_400;
            let rows = sqlx::query(&format!(
                "SELECT i.id, i.digest FROM images i WHERE i.last_seen < $1 AND NOT {}",
                crate::findings::in_use_sql("i.digest")
            ))
            .bind(image_cut)
            .fetch_all(&mut *tx)
            .await?;
            let mut retired: Vec<(i64, String)> = Vec::with_capacity(rows.len());
            for r in rows {
                retired.push((r.try_get(0)?, r.try_get(1)?));
            }
            for chunk in retired.chunks(200) {
                let digests = || chunk.iter().map(|(_, d)| d.as_str());
                let ids = || chunk.iter().map(|(i, _)| *i);
                let mut q =
                    Sql::new("INSERT INTO finding_events (at, image_digest, finding_id, vuln_id, kind, cause) SELECT ");
                q.arg(now).push(", image_digest, id, vuln_id, 'fixed', 'retention' FROM findings WHERE resolved_at IS NULL AND image_digest IN ");
                q.list(digests());
                q.query().execute(&mut *tx).await?;
                let mut q = Sql::new("UPDATE findings SET resolved_at = ");
                q.arg(now)
                    .push(", resolution = 'image_removed' WHERE resolved_at IS NULL AND image_digest IN ")
                    .list(digests());
                out.findings_resolved += q.query().execute(&mut *tx).await?.rows_affected();
                let mut q = Sql::new("DELETE FROM image_tags WHERE image_id IN ");
                q.list(ids());
                q.query().execute(&mut *tx).await?;
                let mut q = Sql::new("DELETE FROM sboms WHERE digest IN ");
                q.list(digests());
                q.query().execute(&mut *tx).await?;
                let mut q = Sql::new("DELETE FROM images WHERE id IN ");
                q.list(ids());
                out.images_retired += q.query().execute(&mut *tx).await?.rows_affected();
            }
            if let Some(days) = policy.audit_days {
                out.audit_deleted = sqlx::query("DELETE FROM audit_log WHERE at < $1")
                    .bind(now - days.max(0) * 86_400)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            out.sessions_deleted = sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR ended_at < $1")
                .bind(now - 86_400)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            crate::auth::audit_tx(&mut tx, now, actor, "retention.apply", "store", Some(json!(out))).await?;
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Retire one image now (a registry reported it deleted): the image and its SBOM leave the
    /// store, its open findings are resolved (`image_removed`) and kept.
    pub async fn remove_image(&self, digest: &str, actor: &str) -> Result<bool> {
        validate_digest(digest)?;
        retrying!(self, "remove_image", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar("SELECT id FROM images WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(id) = id else { return Ok(false) };
            sqlx::query(
                "INSERT INTO finding_events (at, image_digest, finding_id, vuln_id, kind, cause) \
                 SELECT $1, image_digest, id, vuln_id, 'fixed', 'retention' FROM findings \
                 WHERE resolved_at IS NULL AND image_digest = $2",
            )
            .bind(now)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE findings SET resolved_at = $1, resolution = 'image_removed' WHERE resolved_at IS NULL AND image_digest = $2")
                .bind(now)
                .bind(digest)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM image_tags WHERE image_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM sboms WHERE digest = $1").bind(digest).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM images WHERE id = $1").bind(id).execute(&mut *tx).await?;
            crate::auth::audit_tx(&mut tx, now, actor, "image.remove", digest, None).await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}
