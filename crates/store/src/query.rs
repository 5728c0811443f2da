//! Read queries for the API: images, findings, blast radius, events, dashboard counts.

use crate::codec;
use crate::error::{Result, StoreError};
use crate::findings::{fill_ids, finding_from_row, in_use_sql, FINDING_COLS};
use crate::sql::{self, SortVal, Sql};
use crate::types::*;
use crate::{retrying, Store};
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeSet, HashMap};

/// Cap on the workloads a blast radius lists.
const MAX_BLAST_WORKLOADS: i64 = 10_000;

const IMAGE_COLS: &str = "i.id, i.digest, i.repo, i.first_seen, i.last_seen, i.pushed_at, i.pulled_at, \
     CASE WHEN i.sbom_hash IS NULL THEN 0 ELSE 1 END, i.doc";

impl Store {
    /// Images, with tags, use and open-finding counts.
    pub async fn list_images(&self, q: &ImageQuery) -> Result<Page<Image>> {
        let limit = sql::page_size(q.limit);
        if let Some(p) = &q.digest_prefix {
            if p.len() > 140 || p.contains(['%', '_', '\\']) {
                return Err(StoreError::Invalid("bad digest prefix".into()));
            }
        }
        retrying!(self, "list_images", async {
            let mut conn = self.inner.read.acquire().await?;
            let mut s = Sql::new(&format!("SELECT {IMAGE_COLS} FROM images i"));
            let mut w = false;
            if let Some(r) = &q.repo {
                sql::and(&mut s, &mut w);
                s.push("i.repo = ").arg(r);
            }
            if let Some(p) = &q.digest_prefix {
                sql::and(&mut s, &mut w);
                s.push("i.digest LIKE ").arg(format!("{p}%"));
            }
            if let Some(u) = q.in_use {
                sql::and(&mut s, &mut w);
                s.push(if u { "" } else { "NOT " }).push(&in_use_sql("i.digest"));
            }
            if let Some(t) = q.seen_since {
                sql::and(&mut s, &mut w);
                s.push("i.last_seen >= ").arg(t);
            }
            if let Some(m) = q.min_severity {
                sql::and(&mut s, &mut w);
                s.push("EXISTS (SELECT 1 FROM findings f WHERE f.image_digest = i.digest AND f.resolved_at IS NULL AND f.severity >= ")
                    .arg(m.rank())
                    .push(")");
            }
            let (expr, kind) = match q.sort {
                ImageSort::LastSeen => ("i.last_seen", sql::Kind::I),
                ImageSort::FirstSeen => ("i.first_seen", sql::Kind::I),
                ImageSort::Repo => ("i.repo", sql::Kind::T),
                ImageSort::Digest => ("i.digest", sql::Kind::T),
            };
            sql::keyset(&mut s, &mut w, expr, kind, "i.id", q.order == Order::Desc, q.cursor.as_deref(), limit)?;
            let rows = s.query().fetch_all(&mut *conn).await?;
            let mut items = images_from_rows(&mut conn, &rows).await?;
            let sort = q.sort;
            Ok(sql::finish_page(std::mem::take(&mut items), limit, move |i: &Image| match sort {
                ImageSort::LastSeen => (SortVal::I(i.last_seen), i.id),
                ImageSort::FirstSeen => (SortVal::I(i.first_seen), i.id),
                ImageSort::Repo => (SortVal::T(i.repo.clone()), i.id),
                ImageSort::Digest => (SortVal::T(i.digest.clone()), i.id),
            }))
        })
    }

    /// One image by digest.
    pub async fn get_image(&self, digest: &str) -> Result<Option<Image>> {
        validate_digest(digest)?;
        retrying!(self, "get_image", async {
            let mut conn = self.inner.read.acquire().await?;
            let rows = sqlx::query(&format!("SELECT {IMAGE_COLS} FROM images i WHERE i.digest = $1"))
                .bind(digest)
                .fetch_all(&mut *conn)
                .await?;
            Ok(images_from_rows(&mut conn, &rows).await?.pop())
        })
    }

    /// Vulnerability findings (open ones unless `include_resolved`).
    pub async fn list_findings(&self, q: &FindingQuery) -> Result<Page<Finding>> {
        let limit = sql::page_size(q.limit);
        retrying!(self, "list_findings", async {
            let mut conn = self.inner.read.acquire().await?;
            let mut s = Sql::new(&format!("SELECT {FINDING_COLS} FROM findings f"));
            let mut w = false;
            if let Some(d) = &q.image_digest {
                sql::and(&mut s, &mut w);
                s.push("f.image_digest = ").arg(d);
            }
            if let Some(v) = &q.vuln_id {
                sql::and(&mut s, &mut w);
                s.push("f.id IN (SELECT finding_id FROM finding_ids WHERE vuln_id = ").arg(v).push(")");
            }
            if let Some(p) = &q.package {
                sql::and(&mut s, &mut w);
                s.push("f.package_name = ").arg(p);
            }
            if let Some(m) = q.min_severity {
                sql::and(&mut s, &mut w);
                s.push("f.severity >= ").arg(m.rank());
            }
            if let Some(k) = q.kev {
                sql::and(&mut s, &mut w);
                s.push("f.kev = ").arg(k);
            }
            if let Some(fx) = q.fixable {
                sql::and(&mut s, &mut w);
                s.push(if fx { "f.fixed_version IS NOT NULL" } else { "f.fixed_version IS NULL" });
            }
            if let Some(t) = q.first_seen_since {
                sql::and(&mut s, &mut w);
                s.push("f.first_seen >= ").arg(t);
            }
            if let Some(u) = q.in_use {
                sql::and(&mut s, &mut w);
                if !u {
                    s.push("NOT ");
                }
                s.push(&in_use_sql("f.image_digest"));
            }
            if let Some(t) = q.triage {
                sql::and(&mut s, &mut w);
                s.push("f.triage_state = ").arg(t.as_str());
            }
            if !q.include_resolved {
                sql::and(&mut s, &mut w);
                s.push("f.resolved_at IS NULL");
            }
            let (expr, kind) = match q.sort {
                FindingSort::Severity => ("f.severity", sql::Kind::I),
                FindingSort::Epss => ("COALESCE(f.epss, 0.0)", sql::Kind::F),
                FindingSort::FirstSeen => ("f.first_seen", sql::Kind::I),
                FindingSort::LastSeen => ("f.last_seen", sql::Kind::I),
                FindingSort::Id => ("f.id", sql::Kind::I),
            };
            sql::keyset(&mut s, &mut w, expr, kind, "f.id", q.order == Order::Desc, q.cursor.as_deref(), limit)?;
            let rows = s.query().fetch_all(&mut *conn).await?;
            let mut items = rows.iter().map(finding_from_row).collect::<Result<Vec<_>>>()?;
            fill_ids(&mut conn, &mut items).await?;
            let sort = q.sort;
            Ok(sql::finish_page(items, limit, move |f: &Finding| match sort {
                FindingSort::Severity => (SortVal::I(f.severity.rank()), f.id),
                FindingSort::Epss => (SortVal::F(f.epss.unwrap_or(0.0)), f.id),
                FindingSort::FirstSeen => (SortVal::I(f.first_seen), f.id),
                FindingSort::LastSeen => (SortVal::I(f.last_seen), f.id),
                FindingSort::Id => (SortVal::I(f.id), f.id),
            }))
        })
    }

    /// Which images (at most `max_images`, by digest), live workloads and clusters an open
    /// finding known by `vuln_id` (any of its IDs) reaches.
    pub async fn blast_radius(&self, vuln_id: &str, max_images: u32) -> Result<BlastRadius> {
        let max_images = i64::from(max_images.clamp(1, 10_000));
        retrying!(self, "blast_radius", async {
            let mut conn = self.inner.read.acquire().await?;
            let affected = "SELECT f.image_digest FROM findings f JOIN finding_ids fi ON fi.finding_id = f.id \
                            WHERE fi.vuln_id = $1 AND f.resolved_at IS NULL";
            let digests: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT DISTINCT image_digest FROM ({affected}) a ORDER BY image_digest LIMIT $2"
            ))
            .bind(vuln_id)
            .bind(max_images + 1)
            .fetch_all(&mut *conn)
            .await?;
            let truncated = digests.len() as i64 > max_images;
            let digests: Vec<String> = digests.into_iter().take(max_images as usize).collect();
            let mut images = Vec::with_capacity(digests.len());
            let mut ids = BTreeSet::new();
            if !digests.is_empty() {
                let mut s = Sql::new(&format!(
                    "SELECT {FINDING_COLS} FROM findings f WHERE f.resolved_at IS NULL AND \
                     f.id IN (SELECT finding_id FROM finding_ids WHERE vuln_id = "
                ));
                s.arg(vuln_id)
                    .push(") AND f.image_digest IN ")
                    .list(digests.iter())
                    .push(" ORDER BY f.image_digest, f.id");
                let rows = s.query().fetch_all(&mut *conn).await?;
                let mut found = rows.iter().map(finding_from_row).collect::<Result<Vec<_>>>()?;
                fill_ids(&mut conn, &mut found).await?;
                let mut s = Sql::new("SELECT digest, repo FROM images WHERE digest IN ");
                s.list(digests.iter());
                let repos: HashMap<String, String> = s
                    .query()
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<_>>()?;
                let mut by: HashMap<String, Vec<Finding>> = HashMap::new();
                for f in found {
                    ids.extend(f.ids.iter().cloned());
                    by.entry(f.image_digest.clone()).or_default().push(f);
                }
                for d in digests {
                    images.push(AffectedImage {
                        repo: repos.get(&d).cloned().unwrap_or_default(),
                        findings: by.remove(&d).unwrap_or_default(),
                        digest: d,
                    });
                }
            }
            let rows = sqlx::query(&format!(
                "SELECT DISTINCT c.name, w.namespace, w.kind, w.name FROM workload_images wi \
                 JOIN workloads w ON w.id = wi.workload_id JOIN clusters c ON c.id = w.cluster_id \
                 WHERE w.removed_at IS NULL AND wi.image_digest IN ({affected}) \
                 ORDER BY c.name, w.namespace, w.kind, w.name LIMIT $2"
            ))
            .bind(vuln_id)
            .bind(MAX_BLAST_WORKLOADS + 1)
            .fetch_all(&mut *conn)
            .await?;
            let mut workloads = Vec::with_capacity(rows.len());
            for r in &rows {
                workloads.push(WorkloadRef {
                    cluster: r.try_get(0)?,
                    namespace: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    name: r.try_get(3)?,
                });
            }
            let truncated = truncated || workloads.len() as i64 > MAX_BLAST_WORKLOADS;
            workloads.truncate(MAX_BLAST_WORKLOADS as usize);
            let clusters: BTreeSet<String> = workloads.iter().map(|w| w.cluster.clone()).collect();
            Ok(BlastRadius {
                vuln_id: vuln_id.to_string(),
                ids: ids.into_iter().collect(),
                images,
                workloads,
                clusters: clusters.into_iter().collect(),
                truncated,
            })
        })
    }

    /// Change events, newest first.
    pub async fn list_events(&self, q: &EventQuery) -> Result<Page<ChangeEvent>> {
        let limit = sql::page_size(q.limit);
        retrying!(self, "list_events", async {
            let mut s = Sql::new(
                "SELECT id, at, image_digest, finding_id, vuln_id, kind, cause, run_id, old, new FROM finding_events",
            );
            let mut w = false;
            if let Some(d) = &q.image_digest {
                sql::and(&mut s, &mut w);
                s.push("image_digest = ").arg(d);
            }
            if let Some(k) = q.kind {
                sql::and(&mut s, &mut w);
                s.push("kind = ").arg(k.as_str());
            }
            if let Some(r) = &q.run_id {
                sql::and(&mut s, &mut w);
                s.push("run_id = ").arg(r);
            }
            if let Some(t) = q.since {
                sql::and(&mut s, &mut w);
                s.push("at >= ").arg(t);
            }
            sql::keyset(&mut s, &mut w, "id", sql::Kind::I, "id", true, q.cursor.as_deref(), limit)?;
            let rows = s.query().fetch_all(&self.inner.read).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                let kind: String = r.try_get(5)?;
                let cause: String = r.try_get(6)?;
                let old: Option<String> = r.try_get(8)?;
                let new: Option<String> = r.try_get(9)?;
                items.push(ChangeEvent {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    image_digest: r.try_get(2)?,
                    finding_id: r.try_get(3)?,
                    vuln_id: r.try_get(4)?,
                    kind: ChangeKind::parse(&kind).unwrap_or(ChangeKind::New),
                    cause: match cause.as_str() {
                        "reassessment" => ChangeCause::Reassessment,
                        "retention" => ChangeCause::Retention,
                        _ => ChangeCause::Ingest,
                    },
                    run_id: r.try_get(7)?,
                    old: old.and_then(|o| serde_json::from_str(&o).ok()),
                    new: new.and_then(|o| serde_json::from_str(&o).ok()),
                });
            }
            Ok(sql::finish_page(items, limit, |e| (SortVal::I(e.id), e.id)))
        })
    }

    /// Open findings at the end of each of the last `days` days (today last), with the
    /// findings opened and resolved each day: from `first_seen` and `resolved_at`, so the
    /// trend is true history, not a sample taken while the server ran.
    pub async fn finding_trend(&self, days: u32) -> Result<Vec<TrendPoint>> {
        let days = i64::from(days.clamp(1, 366));
        retrying!(self, "finding_trend", async {
            let mut conn = self.inner.read.acquire().await?;
            let today = self.now().div_euclid(86_400);
            let first = today - days + 1;
            let open_now: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM findings WHERE resolved_at IS NULL")
                .fetch_one(&mut *conn)
                .await?;
            let mut opened = vec![0i64; days as usize];
            let mut fixed = vec![0i64; days as usize];
            for (col, target) in [("first_seen", &mut opened), ("resolved_at", &mut fixed)] {
                let rows = sqlx::query(&format!(
                    "SELECT {col} / 86400 AS d, COUNT(*) FROM findings WHERE {col} >= $1 GROUP BY {col} / 86400"
                ))
                .bind(first * 86_400)
                .fetch_all(&mut *conn)
                .await?;
                for r in rows {
                    let d: i64 = r.try_get(0)?;
                    if let Some(slot) = usize::try_from(d - first).ok().and_then(|i| target.get_mut(i)) {
                        *slot += r.try_get::<i64, _>(1)?;
                    }
                }
            }
            // walk back from now: before day d's changes, open = open after them - opened + fixed
            let mut out = vec![TrendPoint::default(); days as usize];
            let mut open = open_now;
            for i in (0..days as usize).rev() {
                out[i] = TrendPoint { day: (first + i as i64) * 86_400, open, opened: opened[i], fixed: fixed[i] };
                open = open - opened[i] + fixed[i];
            }
            Ok(out)
        })
    }

    /// Findings first seen at or after `since`.
    pub async fn count_new_findings(&self, since: Timestamp) -> Result<i64> {
        retrying!(self, "count_new_findings", async {
            Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM findings WHERE first_seen >= $1")
                .bind(since)
                .fetch_one(&self.inner.read)
                .await?)
        })
    }

    /// Open posture findings grouped by cluster and check, most severe and widest first.
    pub async fn posture_summary(&self) -> Result<Vec<PostureGroup>> {
        retrying!(self, "posture_summary", async {
            let exempt = crate::exemptions::exempt_sql(self.now());
            let rows = sqlx::query(&format!(
                "SELECT c.name, p.check_id, MAX(p.severity) AS sev, COUNT(*) AS n, \
                 SUM(CASE WHEN {exempt} THEN 1 ELSE 0 END) FROM posture_findings p \
                 JOIN clusters c ON c.id = p.cluster_id WHERE p.resolved_at IS NULL \
                 GROUP BY c.name, p.check_id ORDER BY sev DESC, n DESC, c.name, p.check_id"
            ))
            .fetch_all(&self.inner.read)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(PostureGroup {
                        cluster: r.try_get(0)?,
                        check_id: r.try_get(1)?,
                        severity: Severity::from_rank(r.try_get(2)?),
                        resources: r.try_get(3)?,
                        exempt: r.try_get::<Option<i64>, _>(4)?.unwrap_or(0),
                    })
                })
                .collect()
        })
    }

    /// Per cluster: live resources, and how many have at least one open posture finding not
    /// under a live exemption (the console's secure score is the healthy share).
    pub async fn cluster_posture(&self) -> Result<Vec<ClusterPosture>> {
        retrying!(self, "cluster_posture", async {
            let exempt = crate::exemptions::exempt_sql(self.now());
            let rows = sqlx::query(&format!(
                "SELECT c.name, \
                 (SELECT COUNT(*) FROM workloads w WHERE w.cluster_id = c.id AND w.removed_at IS NULL), \
                 (SELECT COUNT(*) FROM (SELECT DISTINCT p.object_kind, p.object_namespace, p.object_name \
                    FROM posture_findings p WHERE p.cluster_id = c.id AND p.resolved_at IS NULL AND NOT {exempt}) u) \
                 FROM clusters c ORDER BY c.name"
            ))
            .fetch_all(&self.inner.read)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ClusterPosture { cluster: r.try_get(0)?, resources: r.try_get(1)?, unhealthy: r.try_get(2)? })
                })
                .collect()
        })
    }

    /// Per cluster: distinct resources with an open, unexempted posture finding of one of `checks`.
    pub async fn unhealthy_by_cluster(&self, checks: &[&str]) -> Result<Vec<(String, i64)>> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        retrying!(self, "unhealthy_by_cluster", async {
            let exempt = crate::exemptions::exempt_sql(self.now());
            let mut s = Sql::new(
                "SELECT u.name, COUNT(*) FROM (SELECT DISTINCT c.name, p.object_kind, p.object_namespace, p.object_name \
                 FROM posture_findings p JOIN clusters c ON c.id = p.cluster_id WHERE p.resolved_at IS NULL AND NOT ",
            );
            s.push(&exempt).push(" AND p.check_id IN ");
            s.list(checks.iter().copied()).push(") u GROUP BY u.name ORDER BY u.name");
            let rows = s.query().fetch_all(&self.inner.read).await?;
            rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
        })
    }

    /// Counts for dashboards.
    pub async fn dashboard_counts(&self) -> Result<DashboardCounts> {
        retrying!(self, "dashboard_counts", async {
            let mut conn = self.inner.read.acquire().await?;
            let mut c = DashboardCounts::default();
            let one = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
            c.clusters = one("SELECT COUNT(*) FROM clusters").fetch_one(&mut *conn).await?;
            c.nodes = one("SELECT COUNT(*) FROM nodes WHERE removed_at IS NULL").fetch_one(&mut *conn).await?;
            c.workloads = one("SELECT COUNT(*) FROM workloads WHERE removed_at IS NULL").fetch_one(&mut *conn).await?;
            c.images = one("SELECT COUNT(*) FROM images").fetch_one(&mut *conn).await?;
            c.images_in_use = one(
                "SELECT COUNT(DISTINCT wi.image_digest) FROM workload_images wi JOIN workloads w ON w.id = wi.workload_id \
                 WHERE w.removed_at IS NULL AND wi.image_digest IN (SELECT digest FROM images)",
            )
            .fetch_one(&mut *conn)
            .await?;
            c.sboms = one("SELECT COUNT(*) FROM sboms").fetch_one(&mut *conn).await?;
            c.open_kev_findings = one("SELECT COUNT(*) FROM findings WHERE resolved_at IS NULL AND kev = 1")
                .fetch_one(&mut *conn)
                .await?;
            c.open_alerts = one("SELECT COUNT(*) FROM alerts WHERE resolved_at IS NULL").fetch_one(&mut *conn).await?;
            c.open_incidents =
                one("SELECT COUNT(*) FROM incidents WHERE resolved_at IS NULL").fetch_one(&mut *conn).await?;
            for (table, target) in
                [("findings", &mut c.open_findings), ("posture_findings", &mut c.open_posture_findings)]
            {
                let rows = sqlx::query(&format!(
                    "SELECT severity, COUNT(*) FROM {table} WHERE resolved_at IS NULL GROUP BY severity"
                ))
                .fetch_all(&mut *conn)
                .await?;
                for r in rows {
                    target.add(Severity::from_rank(r.try_get(0)?), r.try_get(1)?);
                }
            }
            Ok(c)
        })
    }
}

async fn images_from_rows(conn: &mut AnyConnection, rows: &[sqlx::any::AnyRow]) -> Result<Vec<Image>> {
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        let digest: String = r.try_get(1)?;
        items.push(Image {
            id: r.try_get(0)?,
            repo: r.try_get(2)?,
            tags: Vec::new(),
            first_seen: r.try_get(3)?,
            last_seen: r.try_get(4)?,
            pushed_at: r.try_get(5)?,
            pulled_at: r.try_get(6)?,
            in_use: false,
            has_sbom: r.try_get::<i64, _>(7)? != 0,
            open_findings: SeverityCounts::default(),
            doc: codec::unpack_opt("image", &digest, r.try_get(8)?)?,
            digest,
        });
    }
    if items.is_empty() {
        return Ok(items);
    }
    let mut s = Sql::new("SELECT image_id, repo, tag FROM image_tags WHERE image_id IN ");
    s.list(items.iter().map(|i| i.id)).push(" ORDER BY image_id, repo, tag");
    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    for r in s.query().fetch_all(&mut *conn).await? {
        let repo: String = r.try_get(1)?;
        let tag: String = r.try_get(2)?;
        tags.entry(r.try_get(0)?).or_default().push(if repo.is_empty() { tag } else { format!("{repo}:{tag}") });
    }
    let mut s = Sql::new(
        "SELECT image_digest, severity, COUNT(*) FROM findings WHERE resolved_at IS NULL AND image_digest IN ",
    );
    s.list(items.iter().map(|i| i.digest.as_str())).push(" GROUP BY image_digest, severity");
    let mut counts: HashMap<String, SeverityCounts> = HashMap::new();
    for r in s.query().fetch_all(&mut *conn).await? {
        counts.entry(r.try_get(0)?).or_default().add(Severity::from_rank(r.try_get(1)?), r.try_get(2)?);
    }
    let mut s = Sql::new(
        "SELECT DISTINCT wi.image_digest FROM workload_images wi JOIN workloads w ON w.id = wi.workload_id \
         WHERE w.removed_at IS NULL AND wi.image_digest IN ",
    );
    s.list(items.iter().map(|i| i.digest.as_str()));
    let mut used = std::collections::HashSet::new();
    for r in s.query().fetch_all(&mut *conn).await? {
        used.insert(r.try_get::<String, _>(0)?);
    }
    for i in &mut items {
        i.tags = tags.remove(&i.id).unwrap_or_default();
        i.open_findings = counts.remove(&i.digest).unwrap_or_default();
        i.in_use = used.contains(&i.digest);
    }
    Ok(items)
}
