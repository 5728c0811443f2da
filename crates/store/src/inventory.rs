//! Clusters, nodes, inventory objects (workloads and their images) and posture findings.

use crate::codec::{self, pack_value, sha256_hex};
use crate::error::{Result, StoreError};
use crate::sql::{self, Sql};
use crate::types::*;
use crate::{retrying, Store};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use std::collections::{HashMap, HashSet};

fn check_name(what: &str, s: &str) -> Result<()> {
    if s.trim().is_empty() || s.len() > 1024 {
        return Err(StoreError::Invalid(format!("{what} must be 1..=1024 bytes")));
    }
    Ok(())
}

/// `registry/path` of an image reference (tag and digest removed).
pub(crate) fn repo_of(image_ref: &str) -> &str {
    let r = image_ref.split('@').next().unwrap_or(image_ref);
    match (r.rfind(':'), r.rfind('/')) {
        (Some(c), Some(s)) if c > s => &r[..c],
        (Some(c), None) => &r[..c],
        _ => r,
    }
}

/// Upsert a cluster by name; returns its ID.
pub(crate) async fn cluster_id(
    tx: &mut AnyConnection,
    name: &str,
    now: i64,
    k8s_version: Option<&str>,
    doc: Option<&[u8]>,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO clusters (name, k8s_version, first_seen, last_seen, doc) VALUES ($1, $2, $3, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen, \
           k8s_version = COALESCE(excluded.k8s_version, clusters.k8s_version), doc = COALESCE(excluded.doc, clusters.doc) \
         RETURNING id",
    )
    .bind(name)
    .bind(k8s_version)
    .bind(now)
    .bind(doc)
    .fetch_one(&mut *tx)
    .await?;
    Ok(id)
}

/// The ID of an existing cluster, without creating it.
pub(crate) async fn existing_cluster_id(conn: &mut AnyConnection, name: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT id FROM clusters WHERE name = $1").bind(name).fetch_optional(&mut *conn).await?)
}

impl Store {
    /// Apply an inventory update for one cluster (created when new): nodes and objects are
    /// upserted (removed ones revived), removals marked (`removed_at`, rows are kept), and with
    /// `full` every live node and object not listed is marked removed. Image digests of
    /// containers are recorded as images (`last_seen` now), which keeps images in use from
    /// retention and puts them in the re-assessment scope. One transaction.
    pub async fn apply_inventory(&self, u: &InventoryUpdate, actor: &str) -> Result<InventoryOutcome> {
        check_name("cluster name", &u.cluster)?;
        let ca = self.inner.compress_above;
        let mut objects = Vec::with_capacity(u.objects.len());
        let mut seen = HashSet::new();
        for o in &u.objects {
            check_name("object kind", &o.object.kind)?;
            check_name("object name", &o.object.name)?;
            if o.object.namespace.len() > 1024 {
                return Err(StoreError::Invalid("namespace longer than 1024 bytes".into()));
            }
            if !seen.insert(&o.object) {
                return Err(StoreError::Invalid(format!(
                    "{} {}/{} listed twice",
                    o.object.kind, o.object.namespace, o.object.name
                )));
            }
            for c in &o.images {
                check_name("container name", &c.container)?;
                check_name("image reference", &c.image_ref)?;
                if let Some(d) = &c.digest {
                    validate_digest(d)?;
                }
            }
            let doc = o.doc.as_ref().map(|d| pack_value(d, ca));
            let hash = doc.as_deref().map(sha256_hex);
            objects.push((o, doc, hash));
        }
        let mut nodes = Vec::with_capacity(u.nodes.len());
        for n in &u.nodes {
            check_name("node name", &n.name)?;
            let doc = n.doc.as_ref().map(|d| pack_value(d, ca));
            let hash = doc.as_deref().map(sha256_hex);
            nodes.push((n, doc, hash));
        }
        let cluster_doc = u.cluster_doc.as_ref().map(|d| pack_value(d, ca));
        retrying!(self, "apply_inventory", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let cid = cluster_id(&mut tx, &u.cluster, now, u.k8s_version.as_deref(), cluster_doc.as_deref()).await?;
            let mut out = InventoryOutcome::default();
            let mut live_nodes = HashSet::new();
            for (n, doc, hash) in &nodes {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO nodes (cluster_id, name, kubelet_version, os_image, first_seen, last_seen, doc, doc_hash) \
                     VALUES ($1, $2, $3, $4, $5, $5, $6, $7) ON CONFLICT (cluster_id, name) DO UPDATE SET \
                     last_seen = excluded.last_seen, removed_at = NULL, \
                     kubelet_version = COALESCE(excluded.kubelet_version, nodes.kubelet_version), \
                     os_image = COALESCE(excluded.os_image, nodes.os_image), doc = COALESCE(excluded.doc, nodes.doc), \
                     doc_hash = COALESCE(excluded.doc_hash, nodes.doc_hash) RETURNING id",
                )
                .bind(cid)
                .bind(n.name.as_str())
                .bind(n.kubelet_version.as_deref())
                .bind(n.os_image.as_deref())
                .bind(now)
                .bind(doc.as_deref())
                .bind(hash.as_deref())
                .fetch_one(&mut *tx)
                .await?;
                live_nodes.insert(id);
                out.nodes_upserted += 1;
            }
            let mut live_objects = HashSet::new();
            let mut digests: HashMap<&str, &str> = HashMap::new();
            for (o, doc, hash) in &objects {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO workloads (cluster_id, namespace, kind, name, first_seen, last_seen, doc, doc_hash) \
                     VALUES ($1, $2, $3, $4, $5, $5, $6, $7) ON CONFLICT (cluster_id, namespace, kind, name) DO UPDATE SET \
                     last_seen = excluded.last_seen, removed_at = NULL, doc = COALESCE(excluded.doc, workloads.doc), \
                     doc_hash = COALESCE(excluded.doc_hash, workloads.doc_hash) RETURNING id",
                )
                .bind(cid)
                .bind(o.object.namespace.as_str())
                .bind(o.object.kind.as_str())
                .bind(o.object.name.as_str())
                .bind(now)
                .bind(doc.as_deref())
                .bind(hash.as_deref())
                .fetch_one(&mut *tx)
                .await?;
                live_objects.insert(id);
                out.objects_upserted += 1;
                sqlx::query("DELETE FROM workload_images WHERE workload_id = $1").bind(id).execute(&mut *tx).await?;
                if !o.images.is_empty() {
                    let mut q = Sql::new(
                        "INSERT INTO workload_images (workload_id, container, image_ref, image_digest) VALUES ",
                    );
                    let mut containers = HashSet::new();
                    let mut first = true;
                    for c in &o.images {
                        if !containers.insert(c.container.as_str()) {
                            continue;
                        }
                        if !first {
                            q.push(", ");
                        }
                        first = false;
                        q.push("(").arg(id).push(", ").arg(&c.container).push(", ").arg(&c.image_ref).push(", ");
                        q.arg(c.digest.clone()).push(")");
                        if let Some(d) = &c.digest {
                            digests.insert(d.as_str(), repo_of(&c.image_ref));
                        }
                    }
                    q.query().execute(&mut *tx).await?;
                }
            }
            let mut digests: Vec<(&str, &str)> = digests.into_iter().collect();
            digests.sort_unstable();
            for (d, repo) in digests {
                sqlx::query(
                    "INSERT INTO images (digest, repo, first_seen, last_seen) VALUES ($1, $2, $3, $3) \
                     ON CONFLICT (digest) DO UPDATE SET last_seen = excluded.last_seen, \
                     repo = CASE WHEN images.repo = '' THEN excluded.repo ELSE images.repo END",
                )
                .bind(d)
                .bind(repo)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            for r in &u.removed_objects {
                out.objects_removed += sqlx::query(
                    "UPDATE workloads SET removed_at = $1 WHERE cluster_id = $2 AND namespace = $3 AND kind = $4 \
                     AND name = $5 AND removed_at IS NULL",
                )
                .bind(now)
                .bind(cid)
                .bind(r.namespace.as_str())
                .bind(r.kind.as_str())
                .bind(r.name.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected() as usize;
            }
            for n in &u.removed_nodes {
                out.nodes_removed += sqlx::query(
                    "UPDATE nodes SET removed_at = $1 WHERE cluster_id = $2 AND name = $3 AND removed_at IS NULL",
                )
                .bind(now)
                .bind(cid)
                .bind(n.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected() as usize;
            }
            if u.full {
                for (table, live) in [("workloads", &live_objects), ("nodes", &live_nodes)] {
                    let ids: Vec<i64> = sqlx::query_scalar(&format!(
                        "SELECT id FROM {table} WHERE cluster_id = $1 AND removed_at IS NULL"
                    ))
                    .bind(cid)
                    .fetch_all(&mut *tx)
                    .await?;
                    let gone: Vec<i64> = ids.into_iter().filter(|i| !live.contains(i)).collect();
                    for chunk in gone.chunks(500) {
                        let mut q = Sql::new(&format!("UPDATE {table} SET removed_at = "));
                        q.arg(now).push(" WHERE id IN ").list(chunk.iter().copied());
                        q.query().execute(&mut *tx).await?;
                    }
                    if table == "workloads" {
                        out.objects_removed += gone.len();
                    } else {
                        out.nodes_removed += gone.len();
                    }
                }
            }
            crate::auth::audit_tx(
                &mut tx,
                now,
                actor,
                "inventory.apply",
                &u.cluster,
                Some(json!({"full": u.full, "objects": out.objects_upserted, "objects_removed": out.objects_removed,
                            "nodes": out.nodes_upserted, "nodes_removed": out.nodes_removed})),
            )
            .await?;
            tx.commit().await?;
            Ok(out)
        })
        .inspect(|out| self.wrote(out.objects_upserted + out.nodes_upserted))
    }

    /// Store a posture run for a cluster: new findings opened (resolved ones reopened),
    /// changed documents refreshed, and (with `full`) findings no longer reported resolved.
    /// Posture findings, like vulnerability findings, are never deleted. One transaction.
    pub async fn ingest_posture(&self, snap: &PostureSnapshot, actor: &str) -> Result<PostureOutcome> {
        check_name("cluster name", &snap.cluster)?;
        let ca = self.inner.compress_above;
        let mut items = Vec::with_capacity(snap.findings.len());
        let mut keys = HashSet::new();
        for f in &snap.findings {
            check_name("check ID", &f.check_id)?;
            check_name("object kind", &f.object.kind)?;
            check_name("object name", &f.object.name)?;
            let key = (f.check_id.clone(), f.object.kind.clone(), f.object.namespace.clone(), f.object.name.clone());
            if !keys.insert(key.clone()) {
                continue;
            }
            let doc = pack_value(&f.doc, ca);
            let hash = sha256_hex(&[doc.as_slice(), &f.severity.rank().to_le_bytes()].concat());
            items.push((key, f, doc, hash));
        }
        retrying!(self, "ingest_posture", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let cid = cluster_id(&mut tx, &snap.cluster, now, None, None).await?;
            let rows = sqlx::query(
                "SELECT id, check_id, object_kind, object_namespace, object_name, resolved_at, doc_hash \
                 FROM posture_findings WHERE cluster_id = $1",
            )
            .bind(cid)
            .fetch_all(&mut *tx)
            .await?;
            // (check, kind, namespace, name) → (id, resolved, doc hash)
            type Key = (String, String, String, String);
            let mut existing: HashMap<Key, (i64, bool, String)> = HashMap::new();
            for r in rows {
                existing.insert(
                    (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?),
                    (r.try_get(0)?, r.try_get::<Option<i64>, _>(5)?.is_some(), r.try_get(6)?),
                );
            }
            let mut out = PostureOutcome::default();
            let mut touched = HashSet::new();
            for (key, f, doc, hash) in &items {
                match existing.get(key) {
                    Some((id, resolved, old_hash)) => {
                        touched.insert(*id);
                        if *resolved {
                            out.opened += 1;
                        } else {
                            out.unchanged += 1;
                        }
                        if *resolved || old_hash != hash {
                            sqlx::query(
                                "UPDATE posture_findings SET severity = $1, last_seen = $2, resolved_at = NULL, doc = $3, \
                                 doc_hash = $4 WHERE id = $5",
                            )
                            .bind(f.severity.rank())
                            .bind(now)
                            .bind(doc.as_slice())
                            .bind(hash.as_str())
                            .bind(*id)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO posture_findings (cluster_id, check_id, object_kind, object_namespace, object_name, \
                             severity, first_seen, last_seen, doc, doc_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)",
                        )
                        .bind(cid)
                        .bind(key.0.as_str())
                        .bind(key.1.as_str())
                        .bind(key.2.as_str())
                        .bind(key.3.as_str())
                        .bind(f.severity.rank())
                        .bind(now)
                        .bind(doc.as_slice())
                        .bind(hash.as_str())
                        .execute(&mut *tx)
                        .await?;
                        out.opened += 1;
                    }
                }
            }
            if snap.full {
                let gone: Vec<i64> = existing
                    .values()
                    .filter(|(id, resolved, _)| !resolved && !touched.contains(id))
                    .map(|v| v.0)
                    .collect();
                for chunk in gone.chunks(500) {
                    let mut q = Sql::new("UPDATE posture_findings SET resolved_at = ");
                    q.arg(now).push(" WHERE id IN ").list(chunk.iter().copied());
                    q.query().execute(&mut *tx).await?;
                }
                out.resolved = gone.len();
            }
            sqlx::query("UPDATE posture_findings SET last_seen = $1 WHERE cluster_id = $2 AND resolved_at IS NULL AND last_seen < $1")
                .bind(now)
                .bind(cid)
                .execute(&mut *tx)
                .await?;
            crate::auth::audit_tx(
                &mut tx,
                now,
                actor,
                "posture.ingest",
                &snap.cluster,
                Some(json!({"opened": out.opened, "resolved": out.resolved, "unchanged": out.unchanged})),
            )
            .await?;
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Clusters, by name, with live node and workload counts.
    pub async fn list_clusters(&self, q: &NameQuery) -> Result<Page<Cluster>> {
        let limit = sql::page_size(q.limit);
        retrying!(self, "list_clusters", async {
            let mut s = Sql::new(
                "SELECT c.id, c.name, c.k8s_version, c.first_seen, c.last_seen, \
                 (SELECT COUNT(*) FROM nodes n WHERE n.cluster_id = c.id AND n.removed_at IS NULL), \
                 (SELECT COUNT(*) FROM workloads w WHERE w.cluster_id = c.id AND w.removed_at IS NULL), c.doc FROM clusters c",
            );
            let mut w = false;
            if let Some(c) = &q.cluster {
                sql::and(&mut s, &mut w);
                s.push("c.name = ").arg(c);
            }
            sql::keyset(&mut s, &mut w, "c.name", sql::Kind::T, "c.id", false, q.cursor.as_deref(), limit)?;
            let rows = s.query().fetch_all(&self.inner.read).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                let name: String = r.try_get(1)?;
                items.push(Cluster {
                    id: r.try_get(0)?,
                    k8s_version: r.try_get(2)?,
                    first_seen: r.try_get(3)?,
                    last_seen: r.try_get(4)?,
                    nodes: r.try_get(5)?,
                    workloads: r.try_get(6)?,
                    doc: codec::unpack_opt("cluster", &name, r.try_get(7)?)?,
                    name,
                });
            }
            Ok(sql::finish_page(items, limit, |c| (sql::SortVal::T(c.name.clone()), c.id)))
        })
    }

    /// Nodes, by name.
    pub async fn list_nodes(&self, q: &NameQuery) -> Result<Page<Node>> {
        let limit = sql::page_size(q.limit);
        retrying!(self, "list_nodes", async {
            let mut s = Sql::new(
                "SELECT n.id, c.name, n.name, n.kubelet_version, n.os_image, n.first_seen, n.last_seen, n.removed_at, n.doc \
                 FROM nodes n JOIN clusters c ON c.id = n.cluster_id",
            );
            let mut w = false;
            if let Some(c) = &q.cluster {
                sql::and(&mut s, &mut w);
                s.push("c.name = ").arg(c);
            }
            if !q.include_removed {
                sql::and(&mut s, &mut w);
                s.push("n.removed_at IS NULL");
            }
            sql::keyset(&mut s, &mut w, "n.name", sql::Kind::T, "n.id", false, q.cursor.as_deref(), limit)?;
            let rows = s.query().fetch_all(&self.inner.read).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                let name: String = r.try_get(2)?;
                items.push(Node {
                    id: r.try_get(0)?,
                    cluster: r.try_get(1)?,
                    kubelet_version: r.try_get(3)?,
                    os_image: r.try_get(4)?,
                    first_seen: r.try_get(5)?,
                    last_seen: r.try_get(6)?,
                    removed_at: r.try_get(7)?,
                    doc: codec::unpack_opt("node", &name, r.try_get(8)?)?,
                    name,
                });
            }
            Ok(sql::finish_page(items, limit, |n| (sql::SortVal::T(n.name.clone()), n.id)))
        })
    }

    /// Inventory objects, by `namespace/kind/name`.
    pub async fn list_workloads(&self, q: &WorkloadQuery) -> Result<Page<Workload>> {
        let limit = sql::page_size(q.limit);
        retrying!(self, "list_workloads", async {
            let mut conn = self.inner.read.acquire().await?;
            let mut s = Sql::new(
                "SELECT w.id, c.name, w.namespace, w.kind, w.name, w.first_seen, w.last_seen, w.removed_at, w.doc \
                 FROM workloads w JOIN clusters c ON c.id = w.cluster_id",
            );
            let mut wh = false;
            if let Some(c) = &q.cluster {
                sql::and(&mut s, &mut wh);
                s.push("c.name = ").arg(c);
            }
            if let Some(n) = &q.namespace {
                sql::and(&mut s, &mut wh);
                s.push("w.namespace = ").arg(n);
            }
            if let Some(k) = &q.kind {
                sql::and(&mut s, &mut wh);
                s.push("w.kind = ").arg(k);
            }
            if let Some(d) = &q.image_digest {
                sql::and(&mut s, &mut wh);
                s.push("EXISTS (SELECT 1 FROM workload_images wi WHERE wi.workload_id = w.id AND wi.image_digest = ")
                    .arg(d)
                    .push(")");
            }
            if let Some(m) = q.min_severity {
                sql::and(&mut s, &mut wh);
                s.push(
                    "EXISTS (SELECT 1 FROM workload_images wi JOIN findings f ON f.image_digest = wi.image_digest \
                     WHERE wi.workload_id = w.id AND f.resolved_at IS NULL AND f.severity >= ",
                )
                .arg(m.rank())
                .push(")");
            }
            if let Some(fail) = q.failing_posture {
                sql::and(&mut s, &mut wh);
                if !fail {
                    s.push("NOT ");
                }
                s.push(&format!(
                    "EXISTS (SELECT 1 FROM posture_findings p WHERE p.cluster_id = w.cluster_id AND p.object_kind = w.kind \
                     AND p.object_namespace = w.namespace AND p.object_name = w.name AND p.resolved_at IS NULL AND NOT {})",
                    crate::exemptions::exempt_sql(self.now())
                ));
            }
            if !q.include_removed {
                sql::and(&mut s, &mut wh);
                s.push("w.removed_at IS NULL");
            }
            let expr = "(w.namespace || '/' || w.kind || '/' || w.name)";
            sql::keyset(&mut s, &mut wh, expr, sql::Kind::T, "w.id", false, q.cursor.as_deref(), limit)?;
            let rows = s.query().fetch_all(&mut *conn).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                let id: i64 = r.try_get(0)?;
                items.push(Workload {
                    id,
                    cluster: r.try_get(1)?,
                    namespace: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    name: r.try_get(4)?,
                    images: Vec::new(),
                    first_seen: r.try_get(5)?,
                    last_seen: r.try_get(6)?,
                    removed_at: r.try_get(7)?,
                    doc: codec::unpack_opt("workload", &id.to_string(), r.try_get(8)?)?,
                });
            }
            if !items.is_empty() {
                let mut s = Sql::new(
                    "SELECT workload_id, container, image_ref, image_digest FROM workload_images WHERE workload_id IN ",
                );
                s.list(items.iter().map(|w| w.id)).push(" ORDER BY workload_id, container");
                let mut by: HashMap<i64, Vec<ContainerImage>> = HashMap::new();
                for r in s.query().fetch_all(&mut *conn).await? {
                    by.entry(r.try_get(0)?).or_default().push(ContainerImage {
                        container: r.try_get(1)?,
                        image_ref: r.try_get(2)?,
                        digest: r.try_get(3)?,
                    });
                }
                for w in &mut items {
                    w.images = by.remove(&w.id).unwrap_or_default();
                }
            }
            Ok(sql::finish_page(items, limit, |w| {
                (sql::SortVal::T(format!("{}/{}/{}", w.namespace, w.kind, w.name)), w.id)
            }))
        })
    }

    /// Posture findings, most severe first.
    pub async fn list_posture_findings(&self, q: &PostureQuery) -> Result<Page<PostureFinding>> {
        let limit = sql::page_size(q.limit);
        retrying!(self, "list_posture_findings", async {
            let mut s = Sql::new(
                "SELECT p.id, c.name, p.check_id, p.object_kind, p.object_namespace, p.object_name, p.severity, \
                 p.first_seen, p.last_seen, p.resolved_at, p.doc, ",
            );
            s.push(&crate::exemptions::exemption_id_sql(self.now()))
                .push(" FROM posture_findings p JOIN clusters c ON c.id = p.cluster_id");
            let mut w = false;
            if let Some(c) = &q.cluster {
                sql::and(&mut s, &mut w);
                s.push("c.name = ").arg(c);
            }
            if let Some(c) = &q.check_id {
                sql::and(&mut s, &mut w);
                s.push("p.check_id = ").arg(c);
            }
            if let Some(n) = &q.namespace {
                sql::and(&mut s, &mut w);
                s.push("p.object_namespace = ").arg(n);
            }
            if let Some(m) = q.min_severity {
                sql::and(&mut s, &mut w);
                s.push("p.severity >= ").arg(m.rank());
            }
            if !q.include_resolved {
                sql::and(&mut s, &mut w);
                s.push("p.resolved_at IS NULL");
            }
            sql::keyset(&mut s, &mut w, "p.severity", sql::Kind::I, "p.id", true, q.cursor.as_deref(), limit)?;
            let rows = s.query().fetch_all(&self.inner.read).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                let id: i64 = r.try_get(0)?;
                let doc: Vec<u8> = r.try_get(10)?;
                items.push(PostureFinding {
                    id,
                    cluster: r.try_get(1)?,
                    check_id: r.try_get(2)?,
                    object: ObjectRef { kind: r.try_get(3)?, namespace: r.try_get(4)?, name: r.try_get(5)? },
                    severity: Severity::from_rank(r.try_get(6)?),
                    first_seen: r.try_get(7)?,
                    last_seen: r.try_get(8)?,
                    resolved_at: r.try_get(9)?,
                    exemption: r.try_get(11)?,
                    doc: codec::unpack_as("posture finding", &id.to_string(), &doc)?,
                });
            }
            Ok(sql::finish_page(items, limit, |p| (sql::SortVal::I(p.severity.rank()), p.id)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::repo_of;

    #[test]
    fn repos_of_references() {
        assert_eq!(repo_of("nginx:1.25"), "nginx");
        assert_eq!(repo_of("registry:5000/team/app:v1"), "registry:5000/team/app");
        assert_eq!(repo_of("registry:5000/team/app"), "registry:5000/team/app");
        assert_eq!(repo_of("ghcr.io/x/y@sha256:abc"), "ghcr.io/x/y");
        assert_eq!(repo_of("ghcr.io/x/y:t@sha256:abc"), "ghcr.io/x/y");
    }
}
