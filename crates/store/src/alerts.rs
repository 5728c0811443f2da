//! Alerts, incidents and component health.

use crate::codec::{self, pack_value, sha256_hex};
use crate::error::{Result, StoreError};
use crate::inventory::{cluster_id, existing_cluster_id};
use crate::sql::{self, Sql};
use crate::types::*;
use crate::{retrying, Store};
use serde_json::{json, Value};
use sqlx::Row;

const ALERT_COLS: &str = "a.id, a.alert_key, c.name, a.incident_id, a.rule, a.severity, a.at, a.received_at, \
     a.namespace, a.pod, a.node, a.resolved_at, a.resolved_by, a.doc";

fn alert_from_row(r: &sqlx::any::AnyRow) -> Result<Alert> {
    let id: i64 = r.try_get(0)?;
    let doc: Vec<u8> = r.try_get(13)?;
    Ok(Alert {
        id,
        key: r.try_get(1)?,
        cluster: r.try_get(2)?,
        incident_id: r.try_get(3)?,
        rule: r.try_get(4)?,
        severity: Severity::from_rank(r.try_get(5)?),
        at: r.try_get(6)?,
        received_at: r.try_get(7)?,
        namespace: r.try_get(8)?,
        pod: r.try_get(9)?,
        node: r.try_get(10)?,
        resolved_at: r.try_get(11)?,
        resolved_by: r.try_get(12)?,
        doc: codec::unpack_as("alert", &id.to_string(), &doc)?,
    })
}

impl Store {
    /// Store alerts; each is keyed by its `key` or, without one, the sha256 of its document,
    /// so a re-sent alert (an at-least-once sender draining its spool) is one record. Returns
    /// the row ID of each alert, in input order (existing IDs for repeats).
    pub async fn ingest_alerts(&self, alerts: &[AlertInput], actor: &str) -> Result<Vec<i64>> {
        let ca = self.inner.compress_above;
        let mut items = Vec::with_capacity(alerts.len());
        for a in alerts {
            if a.rule.trim().is_empty() || a.rule.len() > 1024 {
                return Err(StoreError::Invalid("alert rule must be 1..=1024 bytes".into()));
            }
            let json = serde_json::to_vec(&a.doc).unwrap_or_default();
            let key = match &a.key {
                Some(k) if !k.is_empty() && k.len() <= 256 => k.clone(),
                Some(_) => return Err(StoreError::Invalid("alert key must be 1..=256 bytes".into())),
                None => sha256_hex(&json),
            };
            items.push((a, key, codec::pack(&json, ca)));
        }
        retrying!(self, "ingest_alerts", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let mut ids = Vec::with_capacity(items.len());
            let mut new = 0usize;
            for (a, key, doc) in &items {
                let cid = match &a.cluster {
                    Some(c) => Some(cluster_id(&mut tx, c, now, None, None).await?),
                    None => None,
                };
                let inserted: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO alerts (alert_key, cluster_id, rule, severity, at, received_at, namespace, pod, node, doc) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (alert_key) DO NOTHING RETURNING id",
                )
                .bind(key.as_str())
                .bind(cid)
                .bind(a.rule.as_str())
                .bind(a.severity.rank())
                .bind(a.at)
                .bind(now)
                .bind(a.namespace.as_deref())
                .bind(a.pod.as_deref())
                .bind(a.node.as_deref())
                .bind(doc.as_slice())
                .fetch_optional(&mut *tx)
                .await?;
                let id = match inserted {
                    Some(id) => {
                        new += 1;
                        id
                    }
                    None if a.doc.get("update").and_then(Value::as_bool) == Some(true) => {
                        // a detector's update of an alert it folded (same id, later count and
                        // last_seen): the stored alert takes the newer document
                        sqlx::query_scalar(
                            "UPDATE alerts SET doc = $1, severity = CASE WHEN severity > $2 THEN severity ELSE $2 END \
                             WHERE alert_key = $3 RETURNING id",
                        )
                        .bind(doc.as_slice())
                        .bind(a.severity.rank())
                        .bind(key.as_str())
                        .fetch_one(&mut *tx)
                        .await?
                    }
                    None => {
                        sqlx::query_scalar("SELECT id FROM alerts WHERE alert_key = $1")
                            .bind(key.as_str())
                            .fetch_one(&mut *tx)
                            .await?
                    }
                };
                ids.push(id);
            }
            crate::auth::audit_tx(
                &mut tx,
                now,
                actor,
                "alerts.ingest",
                &format!("{} alerts", items.len()),
                Some(json!({"alerts": items.len(), "new": new})),
            )
            .await?;
            tx.commit().await?;
            Ok(ids)
        })
    }

    /// Resolve an alert (idempotent: the first resolution is kept).
    pub async fn resolve_alert(&self, id: i64, actor: &str) -> Result<Alert> {
        retrying!(self, "resolve_alert", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let n = sqlx::query(
                "UPDATE alerts SET resolved_at = COALESCE(resolved_at, $1), resolved_by = COALESCE(resolved_by, $2) WHERE id = $3",
            )
            .bind(now)
            .bind(actor)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound { what: "alert", key: id.to_string() });
            }
            crate::auth::audit_tx(&mut tx, now, actor, "alert.resolve", &id.to_string(), None).await?;
            tx.commit().await?;
            Ok(())
        })?;
        self.get_alert(id).await?.ok_or(StoreError::NotFound { what: "alert", key: id.to_string() })
    }

    /// One alert.
    pub async fn get_alert(&self, id: i64) -> Result<Option<Alert>> {
        retrying!(self, "get_alert", async {
            let r = sqlx::query(&format!(
                "SELECT {ALERT_COLS} FROM alerts a LEFT JOIN clusters c ON c.id = a.cluster_id WHERE a.id = $1"
            ))
            .bind(id)
            .fetch_optional(&self.inner.read)
            .await?;
            r.as_ref().map(alert_from_row).transpose()
        })
    }

    /// Alerts, newest first.
    pub async fn list_alerts(&self, q: &AlertQuery) -> Result<Page<Alert>> {
        let limit = sql::page_size(q.limit);
        retrying!(self, "list_alerts", async {
            let mut s =
                Sql::new(&format!("SELECT {ALERT_COLS} FROM alerts a LEFT JOIN clusters c ON c.id = a.cluster_id"));
            let mut w = false;
            if let Some(c) = &q.cluster {
                sql::and(&mut s, &mut w);
                s.push("c.name = ").arg(c);
            }
            if let Some(r) = &q.rule {
                sql::and(&mut s, &mut w);
                s.push("a.rule = ").arg(r);
            }
            if let Some(m) = q.min_severity {
                sql::and(&mut s, &mut w);
                s.push("a.severity >= ").arg(m.rank());
            }
            if let Some(i) = q.incident_id {
                sql::and(&mut s, &mut w);
                s.push("a.incident_id = ").arg(i);
            }
            if let Some(t) = q.since {
                sql::and(&mut s, &mut w);
                s.push("a.at >= ").arg(t);
            }
            match q.resolved {
                Some(true) => {
                    sql::and(&mut s, &mut w);
                    s.push("a.resolved_at IS NOT NULL");
                }
                Some(false) => {
                    sql::and(&mut s, &mut w);
                    s.push("a.resolved_at IS NULL");
                }
                None => {}
            }
            sql::keyset(&mut s, &mut w, "a.at", sql::Kind::I, "a.id", true, q.cursor.as_deref(), limit)?;
            let rows = s.query().fetch_all(&self.inner.read).await?;
            let items = rows.iter().map(alert_from_row).collect::<Result<Vec<_>>>()?;
            Ok(sql::finish_page(items, limit, |a| (sql::SortVal::I(a.at), a.id)))
        })
    }

    /// Open an incident and attach alerts to it.
    pub async fn open_incident(&self, input: &IncidentInput, actor: &str) -> Result<Incident> {
        if input.title.trim().is_empty() || input.title.len() > 1024 {
            return Err(StoreError::Invalid("incident title must be 1..=1024 bytes".into()));
        }
        let id = retrying!(self, "open_incident", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let cid = match &input.cluster {
                Some(c) => Some(cluster_id(&mut tx, c, now, None, None).await?),
                None => None,
            };
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO incidents (cluster_id, title, severity, opened_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
                 RETURNING id",
            )
            .bind(cid)
            .bind(input.title.as_str())
            .bind(input.severity.rank())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            for chunk in input.alert_ids.chunks(500) {
                let mut q = Sql::new("UPDATE alerts SET incident_id = ");
                q.arg(id).push(" WHERE id IN ").list(chunk.iter().copied());
                q.query().execute(&mut *tx).await?;
            }
            crate::auth::audit_tx(
                &mut tx,
                now,
                actor,
                "incident.open",
                &id.to_string(),
                Some(json!({"title": input.title, "alerts": input.alert_ids})),
            )
            .await?;
            tx.commit().await?;
            Ok(id)
        })?;
        self.get_incident(id).await?.ok_or(StoreError::NotFound { what: "incident", key: id.to_string() })
    }

    /// Resolve an incident and every alert attached to it (idempotent).
    pub async fn resolve_incident(&self, id: i64, actor: &str) -> Result<Incident> {
        retrying!(self, "resolve_incident", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let n = sqlx::query(
                "UPDATE incidents SET resolved_at = COALESCE(resolved_at, $1), resolved_by = COALESCE(resolved_by, $2), \
                 updated_at = $1 WHERE id = $3",
            )
            .bind(now)
            .bind(actor)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound { what: "incident", key: id.to_string() });
            }
            sqlx::query(
                "UPDATE alerts SET resolved_at = $1, resolved_by = $2 WHERE incident_id = $3 AND resolved_at IS NULL",
            )
            .bind(now)
            .bind(actor)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            crate::auth::audit_tx(&mut tx, now, actor, "incident.resolve", &id.to_string(), None).await?;
            tx.commit().await?;
            Ok(())
        })?;
        self.get_incident(id).await?.ok_or(StoreError::NotFound { what: "incident", key: id.to_string() })
    }

    /// One incident.
    pub async fn get_incident(&self, id: i64) -> Result<Option<Incident>> {
        let q = IncidentQuery { cluster: None, resolved: None, limit: Some(1), cursor: None };
        let page = self.incidents_where(&q, Some(id)).await?;
        Ok(page.items.into_iter().next())
    }

    /// Incidents, newest first.
    pub async fn list_incidents(&self, q: &IncidentQuery) -> Result<Page<Incident>> {
        self.incidents_where(q, None).await
    }

    async fn incidents_where(&self, q: &IncidentQuery, only: Option<i64>) -> Result<Page<Incident>> {
        let limit = sql::page_size(q.limit);
        retrying!(self, "list_incidents", async {
            let mut s = Sql::new(
                "SELECT i.id, c.name, i.title, i.severity, i.opened_at, i.updated_at, i.resolved_at, i.resolved_by, \
                 (SELECT COUNT(*) FROM alerts a WHERE a.incident_id = i.id) FROM incidents i \
                 LEFT JOIN clusters c ON c.id = i.cluster_id",
            );
            let mut w = false;
            if let Some(id) = only {
                sql::and(&mut s, &mut w);
                s.push("i.id = ").arg(id);
            }
            if let Some(c) = &q.cluster {
                sql::and(&mut s, &mut w);
                s.push("c.name = ").arg(c);
            }
            match q.resolved {
                Some(true) => {
                    sql::and(&mut s, &mut w);
                    s.push("i.resolved_at IS NOT NULL");
                }
                Some(false) => {
                    sql::and(&mut s, &mut w);
                    s.push("i.resolved_at IS NULL");
                }
                None => {}
            }
            sql::keyset(&mut s, &mut w, "i.opened_at", sql::Kind::I, "i.id", true, q.cursor.as_deref(), limit)?;
            let rows = s.query().fetch_all(&self.inner.read).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                items.push(Incident {
                    id: r.try_get(0)?,
                    cluster: r.try_get(1)?,
                    title: r.try_get(2)?,
                    severity: Severity::from_rank(r.try_get(3)?),
                    opened_at: r.try_get(4)?,
                    updated_at: r.try_get(5)?,
                    resolved_at: r.try_get(6)?,
                    resolved_by: r.try_get(7)?,
                    alerts: r.try_get(8)?,
                });
            }
            Ok(sql::finish_page(items, limit, |i| (sql::SortVal::I(i.opened_at), i.id)))
        })
    }

    /// Record heartbeats: the last state per (cluster, component, instance) is kept (no
    /// history, no audit entry: heartbeats are telemetry, every 30 s per component).
    pub async fn record_heartbeats(&self, beats: &[Heartbeat]) -> Result<()> {
        let ca = self.inner.compress_above;
        let mut items = Vec::with_capacity(beats.len());
        for b in beats {
            for (what, v) in [("cluster", &b.cluster), ("instance", &b.instance)] {
                if v.trim().is_empty() || v.len() > 1024 {
                    return Err(StoreError::Invalid(format!("heartbeat {what} must be 1..=1024 bytes")));
                }
            }
            items.push((b, b.doc.as_ref().map(|d| pack_value(d, ca))));
        }
        retrying!(self, "record_heartbeats", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            for (b, doc) in &items {
                let cid = cluster_id(&mut tx, &b.cluster, now, None, None).await?;
                sqlx::query(
                    "INSERT INTO heartbeats (cluster_id, component, instance, node, version, first_seen, last_seen, doc) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (cluster_id, component, instance) DO UPDATE SET \
                     last_seen = excluded.last_seen, node = COALESCE(excluded.node, heartbeats.node), \
                     version = COALESCE(excluded.version, heartbeats.version), doc = COALESCE(excluded.doc, heartbeats.doc)",
                )
                .bind(cid)
                .bind(b.component.as_str())
                .bind(b.instance.as_str())
                .bind(b.node.as_deref())
                .bind(b.version.as_deref())
                .bind(now)
                .bind(doc.as_deref())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Component health, by cluster, component, instance; `state` is derived from the age of
    /// the last heartbeat at the store's clock.
    pub async fn list_health(&self, q: &HealthQuery) -> Result<Page<HealthRecord>> {
        let limit = sql::page_size(q.limit);
        retrying!(self, "list_health", async {
            let now = self.now();
            let mut conn = self.inner.read.acquire().await?;
            let mut s = Sql::new(
                "SELECT h.id, c.name, h.component, h.instance, h.node, h.version, h.first_seen, h.last_seen, h.doc \
                 FROM heartbeats h JOIN clusters c ON c.id = h.cluster_id",
            );
            let mut w = false;
            if let Some(c) = &q.cluster {
                match existing_cluster_id(&mut conn, c).await? {
                    Some(cid) => {
                        sql::and(&mut s, &mut w);
                        s.push("h.cluster_id = ").arg(cid);
                    }
                    None => return Ok(Page { items: Vec::new(), next_cursor: None }),
                }
            }
            if let Some(k) = q.component {
                sql::and(&mut s, &mut w);
                s.push("h.component = ").arg(k.as_str());
            }
            let expr = "(c.name || '/' || h.component || '/' || h.instance)";
            sql::keyset(&mut s, &mut w, expr, sql::Kind::T, "h.id", false, q.cursor.as_deref(), limit)?;
            let rows = s.query().fetch_all(&mut *conn).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                let id: i64 = r.try_get(0)?;
                let last_seen: i64 = r.try_get(7)?;
                let component: String = r.try_get(2)?;
                items.push(HealthRecord {
                    id,
                    cluster: r.try_get(1)?,
                    component: Component::parse(&component).unwrap_or(Component::Agent),
                    instance: r.try_get(3)?,
                    node: r.try_get(4)?,
                    version: r.try_get(5)?,
                    first_seen: r.try_get(6)?,
                    last_seen,
                    state: HealthState::from_age(Some(now - last_seen)),
                    doc: codec::unpack_opt("heartbeat", &id.to_string(), r.try_get(8)?)?,
                });
            }
            Ok(sql::finish_page(items, limit, |h| {
                (sql::SortVal::T(format!("{}/{}/{}", h.cluster, h.component.as_str(), h.instance)), h.id)
            }))
        })
    }
}
