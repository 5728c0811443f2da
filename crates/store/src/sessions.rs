//! Console sign-in sessions. A session is opened with a valid API token and stands for it: the
//! token's role applies, and revoking or expiring the token ends its sessions at once. Only
//! sha256 of the session secret is stored; the CSRF token of a session is derived from the
//! secret ([`csrf_token`]), so it needs no column and only the cookie's holder can compute it.

use crate::auth::{audit_tx, hash_token, random_hex};
use crate::error::{Result, StoreError};
use crate::types::*;
use crate::{retrying, Store};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Longest session: a session never outlives its token, nor this.
pub const MAX_SESSION_SECS: i64 = 7 * 86_400;

/// The CSRF token of the session whose secret is `secret`: what every console form of that
/// session carries (sha256 of a domain-separated secret, hex).
pub fn csrf_token(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"palisade-console-csrf\0");
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

/// Whether `secret` is shaped like a session secret (64 hex digits): anything else is refused
/// before a lookup.
fn well_formed(secret: &str) -> bool {
    secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Store {
    /// Open a session for `token` (already authenticated) lasting `ttl_secs` (at most
    /// [`MAX_SESSION_SECS`], never past the token's expiry). Returns the session secret, which
    /// is stored only as its hash. Audited as `session.create`.
    pub async fn create_session(&self, token: &TokenInfo, ttl_secs: i64, actor: &str) -> Result<String> {
        if ttl_secs <= 0 {
            return Err(StoreError::Invalid("a session lasts at least one second".into()));
        }
        let secret = random_hex(32)?;
        let hash = hash_token(&secret);
        retrying!(self, "create_session", async {
            let now = self.now();
            let mut expires = now.saturating_add(ttl_secs.min(MAX_SESSION_SECS));
            if let Some(e) = token.expires_at {
                expires = expires.min(e);
            }
            let mut tx = self.begin_write().await?;
            sqlx::query("INSERT INTO sessions (hash, token_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(hash.as_str())
                .bind(token.id.as_str())
                .bind(now)
                .bind(expires)
                .execute(&mut *tx)
                .await?;
            audit_tx(&mut tx, now, actor, "session.create", &token.id, Some(json!({"expires_at": expires}))).await?;
            tx.commit().await?;
            Ok(())
        })?;
        Ok(secret)
    }

    /// The token a live session stands for: `None` when the secret is unknown, the session
    /// ended or expired, or its token was revoked or expired since.
    pub async fn session(&self, secret: &str) -> Result<Option<TokenInfo>> {
        if !well_formed(secret) {
            return Ok(None);
        }
        let hash = hash_token(secret);
        let token_id: Option<String> = retrying!(self, "session", async {
            let now = self.now();
            let id: Option<String> = sqlx::query_scalar(
                "SELECT token_id FROM sessions WHERE hash = $1 AND ended_at IS NULL AND expires_at > $2",
            )
            .bind(hash.as_str())
            .bind(now)
            .fetch_optional(&self.inner.read)
            .await?;
            Ok(id)
        })?;
        let Some(id) = token_id else { return Ok(None) };
        let Some(t) = self.get_token(&id).await? else { return Ok(None) };
        let now = self.now();
        if t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        Ok(Some(t))
    }

    /// End a session (sign-out; idempotent, an unknown secret is not an error). Audited as
    /// `session.end` when a live session ended.
    pub async fn end_session(&self, secret: &str, actor: &str) -> Result<bool> {
        if !well_formed(secret) {
            return Ok(false);
        }
        let hash = hash_token(secret);
        retrying!(self, "end_session", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let id: Option<String> = sqlx::query_scalar(
                "UPDATE sessions SET ended_at = $1 WHERE hash = $2 AND ended_at IS NULL RETURNING token_id",
            )
            .bind(now)
            .bind(hash.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = &id {
                audit_tx(&mut tx, now, actor, "session.end", id, None).await?;
            }
            tx.commit().await?;
            Ok(id.is_some())
        })
    }
}
