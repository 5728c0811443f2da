//! Posture exemptions: a failing check accepted for a resource, a namespace or a whole cluster
//! until a date, with a justification (Defender's "exempt", Kubescape's exceptions). An
//! exempted finding stays stored and listed (marked with the exemption), is not counted as
//! unhealthy in secure scores, and counts again the moment the exemption expires or is
//! revoked. Exemptions are never deleted (revocation sets `revoked_at`); each write is audited.

use crate::auth::audit_tx;
use crate::error::{Result, StoreError};
use crate::types::*;
use crate::{retrying, Store};
use serde_json::json;
use sqlx::Row;

/// Longest exemption.
pub const MAX_EXEMPTION_SECS: i64 = 366 * 86_400;

const COLS: &str =
    "id, cluster, check_id, namespace, name, justification, created_by, created_at, expires_at, revoked_at, revoked_by";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Exemption> {
    Ok(Exemption {
        id: r.try_get(0)?,
        cluster: r.try_get(1)?,
        check_id: r.try_get(2)?,
        namespace: r.try_get(3)?,
        name: r.try_get(4)?,
        justification: r.try_get(5)?,
        created_by: r.try_get(6)?,
        created_at: r.try_get(7)?,
        expires_at: r.try_get(8)?,
        revoked_at: r.try_get(9)?,
        revoked_by: r.try_get(10)?,
    })
}

/// The condition (over `posture_exemptions x`) that an exemption live at `now` (an integer,
/// inlined) covers the posture finding `p` of the cluster named `c.name`.
fn covers_sql(now: Timestamp) -> String {
    format!(
        "x.check_id = p.check_id AND (x.cluster IS NULL OR x.cluster = c.name) \
         AND (x.namespace IS NULL OR x.namespace = p.object_namespace) \
         AND (x.name IS NULL OR x.name = p.object_name) AND x.revoked_at IS NULL AND x.expires_at > {now}"
    )
}

/// SQL true when the posture finding `p` (of the cluster named `c.name`) is covered by an
/// exemption live at `now`.
pub(crate) fn exempt_sql(now: Timestamp) -> String {
    format!("EXISTS (SELECT 1 FROM posture_exemptions x WHERE {})", covers_sql(now))
}

/// SQL: the ID of the first live exemption covering the posture finding `p`, or NULL.
pub(crate) fn exemption_id_sql(now: Timestamp) -> String {
    format!("(SELECT MIN(x.id) FROM posture_exemptions x WHERE {})", covers_sql(now))
}

fn check_input(e: &ExemptionInput, now: Timestamp) -> Result<()> {
    let bad = |m: &str| Err(StoreError::Invalid(m.to_string()));
    if e.check_id.trim().is_empty() || e.check_id.len() > 128 {
        return bad("an exemption names one check (1..=128 bytes)");
    }
    if e.justification.trim().is_empty() || e.justification.len() > 2048 {
        return bad("an exemption needs a justification (1..=2048 bytes)");
    }
    if e.name.is_some() && e.namespace.is_none() && e.cluster.is_none() {
        return bad("an exemption of one resource names its cluster or namespace too");
    }
    for v in [&e.cluster, &e.name].into_iter().flatten() {
        if v.is_empty() || v.len() > 253 {
            return bad("cluster and name are 1..=253 bytes when given");
        }
    }
    // "" is the namespace of cluster-scoped objects: allowed for one named object only
    match &e.namespace {
        Some(ns) if ns.len() > 253 => return bad("a namespace is at most 253 bytes"),
        Some(ns) if ns.is_empty() && e.name.is_none() => {
            return bad("the empty namespace (cluster-scoped objects) is for one named object")
        }
        _ => {}
    }
    if e.expires_at <= now {
        return bad("an exemption expires in the future");
    }
    if e.expires_at > now + MAX_EXEMPTION_SECS {
        return bad("an exemption lasts at most 366 days");
    }
    Ok(())
}

impl Store {
    /// Record an exemption (audited as `exemption.create`).
    pub async fn create_exemption(&self, e: &ExemptionInput, actor: &str) -> Result<Exemption> {
        check_input(e, self.now())?;
        let id: i64 = retrying!(self, "create_exemption", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO posture_exemptions (cluster, check_id, namespace, name, justification, created_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(e.cluster.as_deref())
            .bind(e.check_id.as_str())
            .bind(e.namespace.as_deref())
            .bind(e.name.as_deref())
            .bind(e.justification.as_str())
            .bind(actor)
            .bind(now)
            .bind(e.expires_at)
            .fetch_one(&mut *tx)
            .await?;
            audit_tx(&mut tx, now, actor, "exemption.create", &id.to_string(), Some(json!(e))).await?;
            tx.commit().await?;
            Ok(id)
        })?;
        self.get_exemption(id).await?.ok_or(StoreError::NotFound { what: "exemption", key: id.to_string() })
    }

    /// One exemption.
    pub async fn get_exemption(&self, id: i64) -> Result<Option<Exemption>> {
        retrying!(self, "get_exemption", async {
            let r = sqlx::query(&format!("SELECT {COLS} FROM posture_exemptions WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.inner.read)
                .await?;
            r.as_ref().map(from_row).transpose()
        })
    }

    /// Exemptions, newest first: live ones only, or (`include_inactive`) expired and revoked
    /// ones too. At most 10,000.
    pub async fn list_exemptions(&self, include_inactive: bool) -> Result<Vec<Exemption>> {
        retrying!(self, "list_exemptions", async {
            let now = self.now();
            let filter = if include_inactive {
                String::new()
            } else {
                format!(" WHERE revoked_at IS NULL AND expires_at > {now}")
            };
            let rows =
                sqlx::query(&format!("SELECT {COLS} FROM posture_exemptions{filter} ORDER BY id DESC LIMIT 10000"))
                    .fetch_all(&self.inner.read)
                    .await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// Revoke an exemption (idempotent; audited as `exemption.revoke`).
    pub async fn revoke_exemption(&self, id: i64, actor: &str) -> Result<Exemption> {
        retrying!(self, "revoke_exemption", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let n = sqlx::query(
                "UPDATE posture_exemptions SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(actor)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                audit_tx(&mut tx, now, actor, "exemption.revoke", &id.to_string(), None).await?;
            }
            tx.commit().await?;
            Ok(())
        })?;
        self.get_exemption(id).await?.ok_or(StoreError::NotFound { what: "exemption", key: id.to_string() })
    }
}
