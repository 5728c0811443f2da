//! Images, SBOMs, vulnerability findings, change events, re-assessment and triage.

use crate::codec::{self, key_of, pack, pack_value, sha256_hex};
use crate::error::{Result, StoreError};
use crate::sql::{self, Sql};
use crate::types::*;
use crate::{retrying, Backend, Store};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Rows per multi-row INSERT on PostgreSQL; remainders are split into powers of two, so each
/// table has at most eight distinct INSERT texts (each prepared once per connection and cached).
const CHUNK: usize = 128;

/// Bound parameters per multi-row INSERT on SQLite. sqlx looks up each parameter's name, and
/// SQLite finds a name by scanning the statement's parameter list, so binding is quadratic in
/// the parameters of one statement: at 128 findings (2,048 parameters) binding took 11 % of
/// ingest. 256 parameters keep it negligible.
const SQLITE_PARAMS: usize = 256;

/// Rows per INSERT for a table of `params` columns on `backend` (a power of two).
pub(crate) fn rows_per_insert(backend: Backend, params: usize) -> usize {
    match backend {
        Backend::Postgres => CHUNK,
        Backend::Sqlite => {
            let rows = (SQLITE_PARAMS / params.max(1)).clamp(1, CHUNK);
            1 << (usize::BITS - 1 - rows.leading_zeros())
        }
    }
}

/// Chunk sizes covering `n` with at most `max` rows each (`max` a power of two): full chunks,
/// then powers of two.
pub(crate) fn chunk_sizes(n: usize, max: usize) -> Vec<usize> {
    let mut out = vec![max; n / max];
    let mut rest = n % max;
    let mut p = max / 2;
    while rest > 0 {
        if rest >= p {
            out.push(p);
            rest -= p;
        }
        p /= 2;
    }
    out
}

/// Limits on one finding (bounded rows; the server bounds the body size).
const MAX_IDS: usize = 64;
const MAX_FIELD: usize = 4096;

/// A finding ready to write: validated, keyed, document packed.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    key: String,
    vuln_id: String,
    ids: Vec<String>,
    package: PackageRef,
    severity: Severity,
    fixed_version: Option<String>,
    kev: bool,
    epss: Option<f64>,
    doc: Vec<u8>,
    doc_hash: String,
}

fn check_field(what: &str, s: &str, required: bool) -> Result<()> {
    if required && s.trim().is_empty() {
        return Err(StoreError::Invalid(format!("{what} is empty")));
    }
    if s.len() > MAX_FIELD {
        return Err(StoreError::Invalid(format!("{what} longer than {MAX_FIELD} bytes")));
    }
    Ok(())
}

/// Validate, key and pack a finding set; duplicates (same key) merge their IDs.
pub(crate) fn prepare(findings: &[FindingInput], compress_above: usize) -> Result<Vec<Prepared>> {
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Prepared> = Vec::with_capacity(findings.len());
    for f in findings {
        check_field("vulnerability ID", &f.vuln_id, true)?;
        check_field("package name", &f.package.name, true)?;
        check_field("package version", &f.package.version, false)?;
        check_field("package type", &f.package.kind, true)?;
        check_field("purl", &f.package.purl, false)?;
        if let Some(v) = &f.fixed_version {
            check_field("fixed version", v, false)?;
        }
        if let Some(e) = f.epss {
            if !(0.0..=1.0).contains(&e) {
                return Err(StoreError::Invalid(format!("EPSS {e} of {} is not a probability", f.vuln_id)));
            }
        }
        let mut ids: Vec<String> = Vec::with_capacity(f.ids.len() + 1);
        for id in std::iter::once(&f.vuln_id).chain(f.ids.iter()) {
            check_field("vulnerability ID", id, true)?;
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        if ids.len() > MAX_IDS {
            return Err(StoreError::Invalid(format!("{} has more than {MAX_IDS} IDs", f.vuln_id)));
        }
        let key = key_of(&[&f.package.kind, &f.package.name, &f.package.version, &f.vuln_id]);
        if let Some(&i) = by_key.get(&key) {
            for id in ids {
                if !out[i].ids.contains(&id) {
                    out[i].ids.push(id);
                }
            }
            continue;
        }
        let json = serde_json::to_vec(&f.doc).unwrap_or_else(|_| b"null".to_vec());
        let doc_hash = {
            // The hash covers every stored column, so any change is seen as one.
            let meta = json!([f.severity.rank(), f.fixed_version, f.kev, f.epss, f.package.purl, ids]);
            let mut b = json.clone();
            b.extend_from_slice(meta.to_string().as_bytes());
            sha256_hex(&b)
        };
        by_key.insert(key.clone(), out.len());
        out.push(Prepared {
            key,
            vuln_id: f.vuln_id.clone(),
            ids,
            package: f.package.clone(),
            severity: f.severity,
            fixed_version: f.fixed_version.clone(),
            kev: f.kev,
            epss: f.epss,
            doc: pack(&json, compress_above),
            doc_hash,
        });
    }
    Ok(out)
}

/// An upload, prepared outside the transaction (validation, hashing, compression).
struct PreparedImage<'a> {
    up: &'a ImageUpload,
    sbom: Option<(String, i64, Vec<u8>)>,
    findings: Option<Vec<Prepared>>,
    doc: Option<Vec<u8>>,
}

/// A stored finding's state, for diffing.
struct Existing {
    id: i64,
    key: String,
    vuln_id: String,
    package: (String, String, String),
    severity: i64,
    kev: bool,
    epss: Option<f64>,
    epss_evented: Option<f64>,
    doc_hash: String,
    resolved: bool,
}

/// An event about to be inserted.
struct PendingEvent {
    finding_id: i64,
    vuln_id: String,
    kind: ChangeKind,
    old: Option<Value>,
    new: Option<Value>,
}

pub(crate) const FINDING_COLS: &str = "f.id, f.image_digest, f.vuln_id, f.package_name, f.package_version, \
     f.package_type, f.purl, f.severity, f.fixed_version, f.kev, f.epss, f.first_seen, f.last_seen, f.resolved_at, \
     f.resolution, f.triage_state, f.triage_justification, f.triage_detail, f.triage_by, f.triage_at, f.doc";

/// Decode a row selected with [`FINDING_COLS`] (IDs are filled in by [`fill_ids`]).
pub(crate) fn finding_from_row(r: &AnyRow) -> Result<Finding> {
    let id: i64 = r.try_get(0)?;
    let triage_state: Option<String> = r.try_get(15)?;
    let triage = match triage_state.as_deref().and_then(TriageState::parse) {
        Some(state) => Some(Triage {
            state,
            justification: r.try_get::<Option<String>, _>(16)?.as_deref().and_then(Justification::parse),
            detail: r.try_get(17)?,
            by: r.try_get::<Option<String>, _>(18)?.unwrap_or_default(),
            at: r.try_get::<Option<i64>, _>(19)?.unwrap_or(0),
        }),
        None => None,
    };
    let doc: Vec<u8> = r.try_get(20)?;
    Ok(Finding {
        id,
        image_digest: r.try_get(1)?,
        vuln_id: r.try_get(2)?,
        ids: Vec::new(),
        package: PackageRef { name: r.try_get(3)?, version: r.try_get(4)?, kind: r.try_get(5)?, purl: r.try_get(6)? },
        severity: Severity::from_rank(r.try_get(7)?),
        fixed_version: r.try_get(8)?,
        kev: r.try_get::<i64, _>(9)? != 0,
        epss: r.try_get(10)?,
        first_seen: r.try_get(11)?,
        last_seen: r.try_get(12)?,
        resolved_at: r.try_get(13)?,
        resolution: r.try_get(14)?,
        triage,
        doc: codec::unpack_as("finding", &id.to_string(), &doc)?,
    })
}

/// Fill in every finding's IDs (preferred first).
pub(crate) async fn fill_ids(conn: &mut AnyConnection, findings: &mut [Finding]) -> Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let mut map: HashMap<i64, Vec<String>> = HashMap::new();
    for chunk in findings.chunks(500) {
        let mut q = Sql::new("SELECT finding_id, vuln_id FROM finding_ids WHERE finding_id IN ");
        q.list(chunk.iter().map(|f| f.id));
        q.push(" ORDER BY finding_id, vuln_id");
        for r in q.query().fetch_all(&mut *conn).await? {
            map.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
    }
    for f in findings.iter_mut() {
        let mut ids = vec![f.vuln_id.clone()];
        for id in map.remove(&f.id).unwrap_or_default() {
            if id != f.vuln_id {
                ids.push(id);
            }
        }
        f.ids = ids;
    }
    Ok(())
}

impl Store {
    /// Store one upload of images: image metadata and tags, SBOMs (content-addressed: replaced
    /// only when the content changed) and, where given, the complete finding set of each image,
    /// diffed against the stored findings ([`ChangeEvent`]s with cause `ingest`).
    ///
    /// The whole upload is one transaction, committed before this returns; the same upload
    /// twice is one record (the second only refreshes `last_seen`). An image uploaded with an
    /// SBOM but without push/pull times counts as pulled now (a scan pulled it), which puts it
    /// in the re-assessment scope. Invalid input (a bad digest, an empty package name, an EPSS
    /// outside 0..1) fails the whole upload with [`StoreError::Invalid`] and writes nothing.
    pub async fn ingest_images(&self, uploads: &[ImageUpload], actor: &str) -> Result<Vec<ImageOutcome>> {
        let ca = self.inner.compress_above;
        let mut prepared = Vec::with_capacity(uploads.len());
        let mut seen = HashSet::new();
        for up in uploads {
            validate_digest(&up.digest)?;
            if !seen.insert(up.digest.as_str()) {
                return Err(StoreError::Invalid(format!("image {} appears twice in one upload", up.digest)));
            }
            if let Some(r) = &up.repo {
                check_field("repository", r, false)?;
            }
            for t in &up.tags {
                check_field("tag", t, true)?;
            }
            let sbom = match &up.sbom {
                Some(s) => {
                    let json = serde_json::to_vec(s).map_err(|e| StoreError::Invalid(format!("SBOM: {e}")))?;
                    let hash = sha256_hex(&json);
                    let n = i64::try_from(s.packages.len()).unwrap_or(i64::MAX);
                    Some((hash, n, pack(&json, ca)))
                }
                None => None,
            };
            let findings = up.findings.as_deref().map(|f| prepare(f, ca)).transpose()?;
            let doc = up.doc.as_ref().map(|d| pack_value(d, ca));
            prepared.push(PreparedImage { up, sbom, findings, doc });
        }
        let outcomes = retrying!(self, "ingest_images", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let mut outcomes = Vec::with_capacity(prepared.len());
            let mut n_findings = 0usize;
            let mut n_events = 0usize;
            // Digest order: concurrent uploads lock image rows in one order (no deadlocks).
            let mut order: Vec<usize> = (0..prepared.len()).collect();
            order.sort_by(|&a, &b| prepared[a].up.digest.cmp(&prepared[b].up.digest));
            let mut slots: Vec<Option<ImageOutcome>> = vec![None; prepared.len()];
            for i in order {
                let p = &prepared[i];
                let o = self.ingest_one(&mut tx, p, now).await?;
                n_findings += p.findings.as_ref().map_or(0, Vec::len);
                n_events += o.events.len();
                slots[i] = Some(o);
            }
            outcomes.extend(slots.into_iter().flatten());
            let target = match prepared.as_slice() {
                [one] => one.up.digest.clone(),
                many => format!("{} images", many.len()),
            };
            crate::auth::audit_tx(
                &mut tx,
                now,
                actor,
                "images.ingest",
                &target,
                Some(json!({"images": prepared.len(), "findings": n_findings, "events": n_events})),
            )
            .await?;
            tx.commit().await?;
            Ok(outcomes)
        })?;
        let findings: usize = prepared.iter().map(|p| p.findings.as_ref().map_or(0, Vec::len)).sum();
        let events: usize = outcomes.iter().map(|o| o.events.len()).sum();
        self.wrote(prepared.len() + findings + events);
        Ok(outcomes)
    }

    async fn ingest_one(&self, tx: &mut AnyConnection, p: &PreparedImage<'_>, now: i64) -> Result<ImageOutcome> {
        let up = p.up;
        let existed: Option<i64> = sqlx::query_scalar("SELECT id FROM images WHERE digest = $1")
            .bind(up.digest.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let pulled = up.pulled_at.or(if p.sbom.is_some() && up.pushed_at.is_none() { Some(now) } else { None });
        // The upsert also locks the image row (PostgreSQL) until commit, so concurrent writers
        // of one image's findings take turns and each diffs against committed state.
        let (image_id, stored_hash): (i64, Option<String>) = sqlx::query_as(
            "INSERT INTO images (digest, repo, first_seen, last_seen, pushed_at, pulled_at, doc) \
             VALUES ($1, $2, $3, $3, $4, $5, $6) \
             ON CONFLICT (digest) DO UPDATE SET last_seen = excluded.last_seen, \
               repo = CASE WHEN excluded.repo <> '' THEN excluded.repo ELSE images.repo END, \
               pushed_at = COALESCE(excluded.pushed_at, images.pushed_at), \
               pulled_at = CASE WHEN excluded.pulled_at IS NULL THEN images.pulled_at \
                                WHEN images.pulled_at IS NULL OR excluded.pulled_at > images.pulled_at \
                                THEN excluded.pulled_at ELSE images.pulled_at END, \
               doc = COALESCE(excluded.doc, images.doc) \
             RETURNING id, sbom_hash",
        )
        .bind(up.digest.as_str())
        .bind(up.repo.as_deref().unwrap_or(""))
        .bind(now)
        .bind(up.pushed_at)
        .bind(pulled)
        .bind(p.doc.as_deref())
        .fetch_one(&mut *tx)
        .await?;
        if !up.tags.is_empty() {
            let repo = up.repo.as_deref().unwrap_or("");
            let tags: BTreeSet<&str> = up.tags.iter().map(String::as_str).collect();
            let mut q = Sql::new("INSERT INTO image_tags (image_id, repo, tag) VALUES ");
            for (i, t) in tags.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.push("(").arg(image_id).push(", ").arg(repo).push(", ").arg(*t).push(")");
            }
            q.push(" ON CONFLICT DO NOTHING");
            q.query().execute(&mut *tx).await?;
        }
        let mut sbom_changed = false;
        if let Some((hash, packages, doc)) = &p.sbom {
            if stored_hash.as_deref() != Some(hash.as_str()) {
                sqlx::query(
                    "INSERT INTO sboms (digest, content_hash, packages, stored_at, updated_at, doc) \
                     VALUES ($1, $2, $3, $4, $4, $5) \
                     ON CONFLICT (digest) DO UPDATE SET content_hash = excluded.content_hash, \
                       packages = excluded.packages, updated_at = excluded.updated_at, doc = excluded.doc",
                )
                .bind(up.digest.as_str())
                .bind(hash.as_str())
                .bind(*packages)
                .bind(now)
                .bind(doc.as_slice())
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE images SET sbom_hash = $1 WHERE id = $2")
                    .bind(hash.as_str())
                    .bind(image_id)
                    .execute(&mut *tx)
                    .await?;
                sbom_changed = true;
            }
        }
        let events = match &p.findings {
            Some(f) => self.apply_tx(tx, &up.digest, f, ChangeCause::Ingest, None, now).await?,
            None => Vec::new(),
        };
        Ok(ImageOutcome { digest: up.digest.clone(), new_image: existed.is_none(), sbom_changed, events })
    }

    /// Diff `findings` (the complete current set for the image) against the stored ones and
    /// write the difference: new → insert, gone → `resolved_at`, changed → update and event.
    pub(crate) async fn apply_tx(
        &self,
        tx: &mut AnyConnection,
        digest: &str,
        findings: &[Prepared],
        cause: ChangeCause,
        run_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<ChangeEvent>> {
        let thr = self.inner.epss_threshold;
        let rows = sqlx::query(
            "SELECT id, finding_key, vuln_id, package_type, package_name, package_version, severity, kev, epss, \
             epss_evented, doc_hash, resolved_at FROM findings WHERE image_digest = $1",
        )
        .bind(digest)
        .fetch_all(&mut *tx)
        .await?;
        let mut existing: Vec<Existing> = Vec::with_capacity(rows.len());
        for r in &rows {
            existing.push(Existing {
                id: r.try_get(0)?,
                key: r.try_get(1)?,
                vuln_id: r.try_get(2)?,
                package: (r.try_get(3)?, r.try_get(4)?, r.try_get(5)?),
                severity: r.try_get(6)?,
                kev: r.try_get::<i64, _>(7)? != 0,
                epss: r.try_get(8)?,
                epss_evented: r.try_get(9)?,
                doc_hash: r.try_get(10)?,
                resolved: r.try_get::<Option<i64>, _>(11)?.is_some(),
            });
        }
        let by_key: HashMap<&str, usize> = existing.iter().enumerate().map(|(i, e)| (e.key.as_str(), i)).collect();
        let mut matched = vec![false; existing.len()];
        // (input index, existing index) pairs, and inputs without a stored row.
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        let mut fresh: Vec<usize> = Vec::new();
        for (i, f) in findings.iter().enumerate() {
            match by_key.get(f.key.as_str()) {
                Some(&e) => {
                    matched[e] = true;
                    pairs.push((i, e));
                }
                None => fresh.push(i),
            }
        }
        // A finding whose preferred ID changed (GHSA → CVE) continues the open finding of the
        // same package that shares an ID with it.
        if !fresh.is_empty() && existing.iter().zip(&matched).any(|(e, m)| !m && !e.resolved) {
            let mut ids_of: HashMap<i64, HashSet<String>> = HashMap::new();
            let r = sqlx::query(
                "SELECT fi.finding_id, fi.vuln_id FROM finding_ids fi JOIN findings f ON f.id = fi.finding_id \
                 WHERE f.image_digest = $1 AND f.resolved_at IS NULL",
            )
            .bind(digest)
            .fetch_all(&mut *tx)
            .await?;
            for row in r {
                ids_of.entry(row.try_get(0)?).or_default().insert(row.try_get(1)?);
            }
            fresh.retain(|&i| {
                let f = &findings[i];
                let hit = existing.iter().enumerate().find(|(e, x)| {
                    !matched[*e]
                        && !x.resolved
                        && x.package == (f.package.kind.clone(), f.package.name.clone(), f.package.version.clone())
                        && ids_of.get(&x.id).is_some_and(|ids| f.ids.iter().any(|id| ids.contains(id)))
                });
                match hit {
                    Some((e, _)) => {
                        matched[e] = true;
                        pairs.push((i, e));
                        false
                    }
                    None => true,
                }
            });
        }
        let mut events: Vec<PendingEvent> = Vec::new();
        // Gone: resolve.
        let gone: Vec<usize> = (0..existing.len()).filter(|&e| !matched[e] && !existing[e].resolved).collect();
        for chunk in gone.chunks(500) {
            let mut q = Sql::new("UPDATE findings SET resolved_at = ");
            q.arg(now).push(", resolution = 'fixed' WHERE id IN ").list(chunk.iter().map(|&e| existing[e].id));
            q.query().execute(&mut *tx).await?;
            for &e in chunk {
                events.push(PendingEvent {
                    finding_id: existing[e].id,
                    vuln_id: existing[e].vuln_id.clone(),
                    kind: ChangeKind::Fixed,
                    old: None,
                    new: None,
                });
            }
        }
        // Matched: reopen or update what changed.
        for &(i, e) in &pairs {
            let f = &findings[i];
            let x = &existing[e];
            let mut evented = x.epss_evented;
            if x.resolved {
                events.push(PendingEvent {
                    finding_id: x.id,
                    vuln_id: f.vuln_id.clone(),
                    kind: ChangeKind::Reopened,
                    old: None,
                    new: None,
                });
                evented = f.epss;
            } else {
                if x.severity != f.severity.rank() {
                    events.push(PendingEvent {
                        finding_id: x.id,
                        vuln_id: f.vuln_id.clone(),
                        kind: ChangeKind::SeverityChanged,
                        old: Some(json!(Severity::from_rank(x.severity).as_str())),
                        new: Some(json!(f.severity.as_str())),
                    });
                }
                if x.kev != f.kev {
                    events.push(PendingEvent {
                        finding_id: x.id,
                        vuln_id: f.vuln_id.clone(),
                        kind: if f.kev { ChangeKind::KevAdded } else { ChangeKind::KevRemoved },
                        old: Some(json!(x.kev)),
                        new: Some(json!(f.kev)),
                    });
                }
                let before = x.epss_evented.unwrap_or(0.0);
                let after = f.epss.unwrap_or(0.0);
                if (after - before).abs() >= thr && x.epss != f.epss {
                    events.push(PendingEvent {
                        finding_id: x.id,
                        vuln_id: f.vuln_id.clone(),
                        kind: ChangeKind::EpssChanged,
                        old: Some(json!(x.epss_evented)),
                        new: Some(json!(f.epss)),
                    });
                    evented = f.epss;
                }
            }
            let key_changed = x.key != f.key;
            if x.resolved || key_changed || x.doc_hash != f.doc_hash {
                sqlx::query(
                    "UPDATE findings SET finding_key = $1, vuln_id = $2, purl = $3, severity = $4, fixed_version = $5, \
                     kev = $6, epss = $7, epss_evented = $8, last_seen = $9, resolved_at = NULL, resolution = NULL, \
                     doc = $10, doc_hash = $11 WHERE id = $12",
                )
                .bind(f.key.as_str())
                .bind(f.vuln_id.as_str())
                .bind(f.package.purl.as_str())
                .bind(f.severity.rank())
                .bind(f.fixed_version.as_deref())
                .bind(i64::from(f.kev))
                .bind(f.epss)
                .bind(evented)
                .bind(now)
                .bind(f.doc.as_slice())
                .bind(f.doc_hash.as_str())
                .bind(x.id)
                .execute(&mut *tx)
                .await?;
                let mut q = Sql::new("INSERT INTO finding_ids (vuln_id, finding_id) VALUES ");
                for (k, id) in f.ids.iter().enumerate() {
                    if k > 0 {
                        q.push(", ");
                    }
                    q.push("(").arg(id).push(", ").arg(x.id).push(")");
                }
                q.push(" ON CONFLICT DO NOTHING");
                q.query().execute(&mut *tx).await?;
            }
        }
        // New: insert in multi-row chunks.
        let mut new_ids: Vec<(usize, i64)> = Vec::with_capacity(fresh.len());
        let mut at = 0usize;
        for size in chunk_sizes(fresh.len(), rows_per_insert(self.inner.backend, 16)) {
            let part = &fresh[at..at + size];
            at += size;
            let mut q = Sql::new(
                "INSERT INTO findings (image_digest, finding_key, vuln_id, package_name, package_version, package_type, \
                 purl, severity, fixed_version, kev, epss, epss_evented, first_seen, last_seen, doc, doc_hash) VALUES ",
            );
            for (k, &i) in part.iter().enumerate() {
                let f = &findings[i];
                if k > 0 {
                    q.push(", ");
                }
                q.push("(").arg(digest).push(", ").arg(&f.key).push(", ").arg(&f.vuln_id).push(", ");
                q.arg(&f.package.name).push(", ").arg(&f.package.version).push(", ").arg(&f.package.kind);
                q.push(", ").arg(&f.package.purl).push(", ").arg(f.severity.rank()).push(", ");
                q.arg(f.fixed_version.clone()).push(", ").arg(f.kev).push(", ").arg(f.epss).push(", ");
                q.arg(f.epss).push(", ").arg(now).push(", ").arg(now).push(", ").arg(f.doc.clone());
                q.push(", ").arg(&f.doc_hash).push(")");
            }
            q.push(" RETURNING id, finding_key");
            let rows = q.query().fetch_all(&mut *tx).await?;
            let pos: HashMap<&str, usize> = part.iter().map(|&i| (findings[i].key.as_str(), i)).collect();
            for r in rows {
                let id: i64 = r.try_get(0)?;
                let key: String = r.try_get(1)?;
                if let Some(&i) = pos.get(key.as_str()) {
                    new_ids.push((i, id));
                }
            }
        }
        let pairs_ids: Vec<(&str, i64)> =
            new_ids.iter().flat_map(|&(i, id)| findings[i].ids.iter().map(move |v| (v.as_str(), id))).collect();
        let mut at = 0usize;
        for size in chunk_sizes(pairs_ids.len(), rows_per_insert(self.inner.backend, 2)) {
            let mut q = Sql::new("INSERT INTO finding_ids (vuln_id, finding_id) VALUES ");
            for (k, (v, id)) in pairs_ids[at..at + size].iter().enumerate() {
                if k > 0 {
                    q.push(", ");
                }
                q.push("(").arg(*v).push(", ").arg(*id).push(")");
            }
            at += size;
            q.push(" ON CONFLICT DO NOTHING");
            q.query().execute(&mut *tx).await?;
        }
        for &(i, id) in &new_ids {
            events.push(PendingEvent {
                finding_id: id,
                vuln_id: findings[i].vuln_id.clone(),
                kind: ChangeKind::New,
                old: None,
                new: None,
            });
        }
        // Everything still open was confirmed now.
        sqlx::query(
            "UPDATE findings SET last_seen = $1 WHERE image_digest = $2 AND resolved_at IS NULL AND last_seen < $1",
        )
        .bind(now)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
        insert_events(tx, self.inner.backend, digest, events, cause, run_id, now).await
    }

    /// Apply re-assessment results: for each `(image digest, complete finding set)`, the same
    /// diff as an upload, with events of cause `reassessment` tagged with `run_id`. One
    /// transaction for the batch (pass a page of images at a time). Images that are no longer
    /// stored are skipped (retention may have retired them mid-run).
    pub async fn apply_reassessment(
        &self,
        run_id: &str,
        batch: &[(String, Vec<FindingInput>)],
        actor: &str,
    ) -> Result<Vec<ChangeEvent>> {
        let ca = self.inner.compress_above;
        let mut prepared = Vec::with_capacity(batch.len());
        for (digest, findings) in batch {
            validate_digest(digest)?;
            prepared.push((digest.as_str(), prepare(findings, ca)?));
        }
        prepared.sort_by(|a, b| a.0.cmp(b.0));
        if let Some(w) = prepared.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(StoreError::Invalid(format!("image {} appears twice in one batch", w[0].0)));
        }
        let all = retrying!(self, "apply_reassessment", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let mut all = Vec::new();
            for (digest, f) in &prepared {
                // A no-op update: locks the image row on PostgreSQL (see `ingest_one`).
                let known: Option<i64> =
                    sqlx::query_scalar("UPDATE images SET last_seen = last_seen WHERE digest = $1 RETURNING id")
                        .bind(*digest)
                        .fetch_optional(&mut *tx)
                        .await?;
                if known.is_none() {
                    continue;
                }
                all.extend(self.apply_tx(&mut tx, digest, f, ChangeCause::Reassessment, Some(run_id), now).await?);
            }
            crate::auth::audit_tx(
                &mut tx,
                now,
                actor,
                "reassessment.apply",
                run_id,
                Some(json!({"images": prepared.len(), "events": all.len()})),
            )
            .await?;
            tx.commit().await?;
            Ok(all)
        })?;
        self.wrote(all.len());
        Ok(all)
    }

    /// One page of the stored SBOMs in re-assessment scope (pushed within / pulled within the
    /// policy's days, or run by a live workload), ordered by digest. Persist `next_cursor` with
    /// [`Store::save_progress`] so an interrupted run resumes where it stopped.
    pub async fn reassessment_scope(
        &self,
        policy: &ScopePolicy,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<StoredSbom>> {
        let limit = sql::page_size(limit);
        let after = match cursor {
            Some(c) => match sql::decode_cursor(c)? {
                (sql::SortVal::T(d), _) => Some(d),
                _ => return Err(StoreError::Invalid("malformed cursor".into())),
            },
            None => None,
        };
        retrying!(self, "reassessment_scope", async {
            let now = self.now();
            let mut q = Sql::new(
                "SELECT s.digest, s.content_hash, s.updated_at, s.doc FROM sboms s JOIN images i ON i.digest = s.digest \
                 WHERE (i.pushed_at >= ",
            );
            q.arg(now - policy.pushed_within_days * 86_400).push(" OR i.pulled_at >= ");
            q.arg(now - policy.pulled_within_days * 86_400);
            if policy.in_use {
                q.push(&format!(" OR {}", in_use_sql("s.digest")));
            }
            q.push(")");
            if let Some(a) = &after {
                q.push(" AND s.digest > ").arg(a.as_str());
            }
            q.push(" ORDER BY s.digest LIMIT ").arg(limit + 1);
            let rows = q.query().fetch_all(&self.inner.read).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                let digest: String = r.try_get(0)?;
                let doc: Vec<u8> = r.try_get(3)?;
                let sbom = codec::unpack_as("sbom", &digest, &doc)?;
                items.push(StoredSbom { content_hash: r.try_get(1)?, updated_at: r.try_get(2)?, sbom, digest });
            }
            Ok(sql::finish_page(items, limit, |s| (sql::SortVal::T(s.digest.clone()), 0)))
        })
    }

    /// The stored SBOM of an image.
    pub async fn get_sbom(&self, digest: &str) -> Result<Option<StoredSbom>> {
        validate_digest(digest)?;
        retrying!(self, "get_sbom", async {
            let row: Option<(String, i64, Vec<u8>)> =
                sqlx::query_as("SELECT content_hash, updated_at, doc FROM sboms WHERE digest = $1")
                    .bind(digest)
                    .fetch_optional(&self.inner.read)
                    .await?;
            match row {
                Some((content_hash, updated_at, doc)) => Ok(Some(StoredSbom {
                    digest: digest.to_string(),
                    content_hash,
                    updated_at,
                    sbom: codec::unpack_as("sbom", digest, &doc)?,
                })),
                None => Ok(None),
            }
        })
    }

    /// Which of `digests` a live workload runs.
    pub async fn images_in_use(&self, digests: &[String]) -> Result<HashSet<String>> {
        retrying!(self, "images_in_use", async {
            let mut out = HashSet::new();
            for chunk in digests.chunks(500) {
                let mut q = Sql::new(
                    "SELECT DISTINCT wi.image_digest FROM workload_images wi JOIN workloads w ON w.id = wi.workload_id \
                     WHERE w.removed_at IS NULL AND wi.image_digest IN ",
                );
                q.list(chunk.iter());
                for r in q.query().fetch_all(&self.inner.read).await? {
                    out.insert(r.try_get::<String, _>(0)?);
                }
            }
            Ok(out)
        })
    }

    /// One finding by ID (open or resolved).
    pub async fn get_finding(&self, id: i64) -> Result<Option<Finding>> {
        retrying!(self, "get_finding", async {
            let mut conn = self.inner.read.acquire().await?;
            let row = sqlx::query(&format!("SELECT {FINDING_COLS} FROM findings f WHERE f.id = $1"))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            match row {
                Some(r) => {
                    let mut v = vec![finding_from_row(&r)?];
                    fill_ids(&mut conn, &mut v).await?;
                    Ok(v.pop())
                }
                None => Ok(None),
            }
        })
    }

    /// Set a finding's triage (VEX analysis) state; the change is appended to its triage
    /// history and the audit log. `not_affected` requires a justification; a justification with
    /// another state is refused.
    pub async fn set_triage(&self, finding_id: i64, update: &TriageUpdate, actor: &str) -> Result<Finding> {
        match (update.state, update.justification) {
            (TriageState::NotAffected, None) => {
                return Err(StoreError::Invalid("not_affected needs a justification".into()));
            }
            (s, Some(_)) if s != TriageState::NotAffected => {
                return Err(StoreError::Invalid(format!(
                    "a justification goes only with not_affected, not {}",
                    s.as_str()
                )));
            }
            _ => {}
        }
        if let Some(d) = &update.detail {
            check_field("triage detail", d, false)?;
        }
        check_field("actor", actor, true)?;
        retrying!(self, "set_triage", async {
            let now = self.now();
            let mut tx = self.begin_write().await?;
            let old: Option<(Option<String>,)> = sqlx::query_as("SELECT triage_state FROM findings WHERE id = $1")
                .bind(finding_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((old,)) = old else {
                return Err(StoreError::NotFound { what: "finding", key: finding_id.to_string() });
            };
            let just = update.justification.map(|j| j.as_str());
            sqlx::query(
                "UPDATE findings SET triage_state = $1, triage_justification = $2, triage_detail = $3, triage_by = $4, \
                 triage_at = $5 WHERE id = $6",
            )
            .bind(update.state.as_str())
            .bind(just)
            .bind(update.detail.as_deref())
            .bind(actor)
            .bind(now)
            .bind(finding_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO triage_history (finding_id, at, actor, old_state, new_state, justification, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(finding_id)
            .bind(now)
            .bind(actor)
            .bind(old.as_deref())
            .bind(update.state.as_str())
            .bind(just)
            .bind(update.detail.as_deref())
            .execute(&mut *tx)
            .await?;
            crate::auth::audit_tx(
                &mut tx,
                now,
                actor,
                "triage.set",
                &finding_id.to_string(),
                Some(json!({"from": old, "to": update.state.as_str(), "justification": just, "detail": update.detail})),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })?;
        self.get_finding(finding_id).await?.ok_or(StoreError::NotFound { what: "finding", key: finding_id.to_string() })
    }

    /// A finding's triage history, oldest first.
    pub async fn triage_history(&self, finding_id: i64) -> Result<Vec<TriageChange>> {
        retrying!(self, "triage_history", async {
            let rows = sqlx::query(
                "SELECT id, finding_id, at, actor, old_state, new_state, justification, detail FROM triage_history \
                 WHERE finding_id = $1 ORDER BY id",
            )
            .bind(finding_id)
            .fetch_all(&self.inner.read)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(TriageChange {
                    id: r.try_get(0)?,
                    finding_id: r.try_get(1)?,
                    at: r.try_get(2)?,
                    actor: r.try_get(3)?,
                    old_state: r.try_get::<Option<String>, _>(4)?.as_deref().and_then(TriageState::parse),
                    new_state: TriageState::parse(&r.try_get::<String, _>(5)?).unwrap_or(TriageState::InTriage),
                    justification: r.try_get::<Option<String>, _>(6)?.as_deref().and_then(Justification::parse),
                    detail: r.try_get(7)?,
                });
            }
            Ok(out)
        })
    }
}

/// `EXISTS` a live workload running the image whose digest is `col`.
pub(crate) fn in_use_sql(col: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM workload_images wi JOIN workloads w ON w.id = wi.workload_id \
         WHERE wi.image_digest = {col} AND w.removed_at IS NULL)"
    )
}

async fn insert_events(
    tx: &mut AnyConnection,
    backend: Backend,
    digest: &str,
    events: Vec<PendingEvent>,
    cause: ChangeCause,
    run_id: Option<&str>,
    now: i64,
) -> Result<Vec<ChangeEvent>> {
    let mut out = Vec::with_capacity(events.len());
    let mut at = 0usize;
    for size in chunk_sizes(events.len(), rows_per_insert(backend, 9)) {
        let part = &events[at..at + size];
        at += size;
        let mut q = Sql::new(
            "INSERT INTO finding_events (at, image_digest, finding_id, vuln_id, kind, cause, run_id, old, new) VALUES ",
        );
        for (k, e) in part.iter().enumerate() {
            if k > 0 {
                q.push(", ");
            }
            q.push("(").arg(now).push(", ").arg(digest).push(", ").arg(e.finding_id).push(", ").arg(&e.vuln_id);
            q.push(", ").arg(e.kind.as_str()).push(", ").arg(cause.as_str()).push(", ").arg(run_id);
            q.push(", ").arg(e.old.as_ref().map(Value::to_string)).push(", ").arg(e.new.as_ref().map(Value::to_string));
            q.push(")");
        }
        q.push(" RETURNING id, finding_id, kind");
        let rows = q.query().fetch_all(&mut *tx).await?;
        let mut ids: HashMap<(i64, String), i64> = HashMap::new();
        for r in rows {
            ids.insert((r.try_get(1)?, r.try_get(2)?), r.try_get(0)?);
        }
        for e in part {
            out.push(ChangeEvent {
                id: ids.get(&(e.finding_id, e.kind.as_str().to_string())).copied().unwrap_or(0),
                at: now,
                image_digest: digest.to_string(),
                finding_id: e.finding_id,
                vuln_id: e.vuln_id.clone(),
                kind: e.kind,
                cause,
                run_id: run_id.map(str::to_string),
                old: e.old.clone(),
                new: e.new.clone(),
            });
        }
    }
    out.sort_by_key(|e| e.id);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_inserts_stay_under_the_parameter_budget() {
        for params in [1usize, 2, 9, 16, 17, 300] {
            let rows = rows_per_insert(Backend::Sqlite, params);
            assert!(rows.is_power_of_two());
            assert!(rows * params <= SQLITE_PARAMS.max(params), "{params} params x {rows} rows");
            assert!(
                rows * params * 2 > SQLITE_PARAMS || rows == CHUNK,
                "{params} params: {rows} rows is needlessly small"
            );
        }
        assert_eq!(rows_per_insert(Backend::Postgres, 16), CHUNK);
    }

    #[test]
    fn chunks_cover_exactly_with_few_shapes() {
        for max in [CHUNK, 16, 1] {
            for n in [0usize, 1, 5, 127, 128, 129, 300, 1000] {
                let c = chunk_sizes(n, max);
                assert_eq!(c.iter().sum::<usize>(), n);
                assert!(c.iter().all(|s| s.is_power_of_two() && *s <= max));
            }
        }
    }
}
