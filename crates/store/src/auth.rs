//! API tokens (stored hashed) and the audit log.

use crate::error::{Result, StoreError};
use crate::sql::{self, Sql};
use crate::types::*;
use crate::{retrying, Store};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use subtle::ConstantTimeEq;

/// Token format: `pal_<16 hex ID>_<64 hex secret>`. The ID is the lookup key (public, like a
/// username); only sha256 of the whole token is stored, and it is compared in constant time.
const PREFIX: &str = "pal_";

pub(crate) fn hash_token(t: &str) -> String {
    hex::encode(Sha256::digest(t.as_bytes()))
}

pub(crate) fn random_hex(bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).map_err(|e| StoreError::Invalid(format!("no randomness available: {e}")))?;
    Ok(hex::encode(b))
}

/// Split a presented token into its ID; `None` when it is not shaped like a Palisade token.
fn token_id(t: &str) -> Option<&str> {
    let rest = t.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hexok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexok(id, 16) && hexok(secret, 64)).then_some(id)
}

const TOKEN_COLS: &str =
    "token_id, name, role, cluster, single_use, created_at, created_by, expires_at, revoked_at, used_at, last_used_at, hash";

fn token_from_row(r: &sqlx::any::AnyRow) -> Result<(TokenInfo, String)> {
    let role: String = r.try_get(2)?;
    Ok((
        TokenInfo {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            cluster: r.try_get(3)?,
            single_use: r.try_get::<i64, _>(4)? != 0,
            created_at: r.try_get(5)?,
            created_by: r.try_get(6)?,
            expires_at: r.try_get(7)?,
            revoked_at: r.try_get(8)?,
            used_at: r.try_get(9)?,
            last_used_at: r.try_get(10)?,
        },
        r.try_get(11)?,
    ))
}

/// Append an audit entry inside a write transaction.
pub(crate) async fn audit_tx(
    tx: &mut AnyConnection,
    now: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: Option<Value>,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(now)
        .bind(truncate(actor, 256))
        .bind(truncate(action, 128))
        .bind(truncate(target, 1024))
        .bind(detail.map(|d| d.to_string()))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

impl Store {
    /// Create a token. Returns its record and the token itself, which is shown once and never
    /// stored (only its sha256 is).
    pub async fn create_token(&self, new: &NewToken, actor: &str) -> Result<(TokenInfo, String)> {
        if new.name.trim().is_empty() || new.name.len() > 256 {
            return Err(StoreError::Invalid("token name must be 1..=256 bytes".into()));
        }
        let id = random_hex(8)?;
        let token = format!("{PREFIX}{id}_{}", random_hex(32)?);
        let hash = hash_token(&token);
        retrying!(self, "create_token", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO tokens (token_id, name, role, hash, cluster, single_use, created_at, created_by, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (token_id) DO NOTHING",
            )
            .bind(id.as_str())
            .bind(new.name.as_str())
            .bind(new.role.as_str())
            .bind(hash.as_str())
            .bind(new.cluster.as_deref())
            .bind(i64::from(new.single_use))
            .bind(now)
            .bind(actor)
            .bind(new.expires_at)
            .execute(&mut *tx)
            .await?;
            audit_tx(
                &mut tx,
                now,
                actor,
                "token.create",
                &id,
                Some(json!({"name": new.name, "role": new.role.as_str(), "single_use": new.single_use, "cluster": new.cluster})),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })?;
        let info = self.get_token(&id).await?.ok_or(StoreError::NotFound { what: "token", key: id.clone() })?;
        Ok((info, token))
    }

    /// One token's record.
    pub async fn get_token(&self, id: &str) -> Result<Option<TokenInfo>> {
        retrying!(self, "get_token", async {
            let r = sqlx::query(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE token_id = $1"))
                .bind(id)
                .fetch_optional(&self.inner.read)
                .await?;
            Ok(match r {
                Some(r) => Some(token_from_row(&r)?.0),
                None => None,
            })
        })
    }

    /// Check a presented token: known ID, matching hash (constant-time), not revoked, not
    /// expired, and (one-time tokens) not yet used — a valid one-time token is consumed
    /// atomically, so it works exactly once even with concurrent attempts. Records
    /// `last_used_at` (not audited).
    pub async fn authenticate(&self, token: &str) -> Result<AuthOutcome> {
        let Some(id) = token_id(token) else { return Ok(AuthOutcome::Refused(TokenRefusal::Unknown)) };
        let presented = hash_token(token);
        retrying!(self, "authenticate", async {
            let now = self.now();
            let r = sqlx::query(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE token_id = $1"))
                .bind(id)
                .fetch_optional(&self.inner.read)
                .await?;
            let Some(r) = r else { return Ok(AuthOutcome::Refused(TokenRefusal::Unknown)) };
            let (info, stored) = token_from_row(&r)?;
            if !bool::from(stored.as_bytes().ct_eq(presented.as_bytes())) {
                return Ok(AuthOutcome::Refused(TokenRefusal::Unknown));
            }
            if info.revoked_at.is_some() {
                return Ok(AuthOutcome::Refused(TokenRefusal::Revoked));
            }
            if info.expires_at.is_some_and(|e| e <= now) {
                return Ok(AuthOutcome::Refused(TokenRefusal::Expired));
            }
            let mut tx = self.begin_write().await?;
            let n = if info.single_use {
                sqlx::query("UPDATE tokens SET used_at = $1, last_used_at = $1 WHERE token_id = $2 AND used_at IS NULL")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            } else {
                sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE token_id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            };
            if info.single_use && n == 0 {
                tx.rollback().await?;
                return Ok(AuthOutcome::Refused(TokenRefusal::Consumed));
            }
            if info.single_use {
                audit_tx(&mut tx, now, &format!("token:{id}"), "token.consume", id, None).await?;
            }
            tx.commit().await?;
            Ok(AuthOutcome::Valid(TokenInfo {
                last_used_at: Some(now),
                used_at: if info.single_use { Some(now) } else { info.used_at },
                ..info
            }))
        })
    }

    /// Revoke a token (idempotent).
    pub async fn revoke_token(&self, id: &str, actor: &str) -> Result<TokenInfo> {
        retrying!(self, "revoke_token", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let n = sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE token_id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound { what: "token", key: id.to_string() });
            }
            audit_tx(&mut tx, now, actor, "token.revoke", id, None).await?;
            tx.commit().await?;
            Ok(())
        })?;
        self.get_token(id).await?.ok_or(StoreError::NotFound { what: "token", key: id.to_string() })
    }

    /// Every token (newest first).
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        retrying!(self, "list_tokens", async {
            let rows = sqlx::query(&format!("SELECT {TOKEN_COLS} FROM tokens ORDER BY id DESC"))
                .fetch_all(&self.inner.read)
                .await?;
            rows.iter().map(|r| token_from_row(r).map(|t| t.0)).collect()
        })
    }

    /// Whether an unrevoked admin token exists (the server bootstraps one when not).
    pub async fn has_admin_token(&self) -> Result<bool> {
        retrying!(self, "has_admin_token", async {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM tokens WHERE role = 'admin' AND revoked_at IS NULL AND single_use = 0",
            )
            .fetch_one(&self.inner.read)
            .await?;
            Ok(n > 0)
        })
    }

    /// Record an audit entry for a write the store does not perform itself (a database update
    /// requested, a refused request worth keeping). Store writes record their own.
    pub async fn audit(&self, actor: &str, action: &str, target: &str, detail: Option<Value>) -> Result<()> {
        retrying!(self, "audit", async {
            let mut tx = self.begin_write().await?;
            audit_tx(&mut tx, self.now(), actor, action, target, detail.clone()).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The audit log, newest first.
    pub async fn list_audit(&self, q: &AuditQuery) -> Result<Page<AuditEntry>> {
        let limit = sql::page_size(q.limit);
        retrying!(self, "list_audit", async {
            let mut s = Sql::new("SELECT id, at, actor, action, target, detail FROM audit_log");
            let mut w = false;
            if let Some(a) = &q.actor {
                sql::and(&mut s, &mut w);
                s.push("actor = ").arg(a);
            }
            if let Some(a) = &q.action {
                sql::and(&mut s, &mut w);
                s.push("action = ").arg(a);
            }
            if let Some(t) = q.since {
                sql::and(&mut s, &mut w);
                s.push("at >= ").arg(t);
            }
            sql::keyset(&mut s, &mut w, "id", sql::Kind::I, "id", true, q.cursor.as_deref(), limit)?;
            let rows = s.query().fetch_all(&self.inner.read).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                let detail: Option<String> = r.try_get(5)?;
                items.push(AuditEntry {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    action: r.try_get(3)?,
                    target: r.try_get(4)?,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                });
            }
            Ok(sql::finish_page(items, limit, |e| (sql::SortVal::I(e.id), e.id)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        let good = format!("pal_{}_{}", "a".repeat(16), "b".repeat(64));
        assert_eq!(token_id(&good), Some("aaaaaaaaaaaaaaaa"));
        for bad in ["", "pal_", "pal_x_y", &format!("pal_{}_{}", "a".repeat(15), "b".repeat(64)), &good[1..]] {
            assert_eq!(token_id(bad), None, "{bad}");
        }
    }
}
