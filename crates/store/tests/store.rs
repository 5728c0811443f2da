//! Store behaviour, on both backends (see `common`).
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use palisade_store::*;
use serde_json::json;
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

fn kinds(events: &[ChangeEvent]) -> Vec<(String, ChangeKind)> {
    let mut v: Vec<_> = events.iter().map(|e| (e.vuln_id.clone(), e.kind)).collect();
    v.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
    v
}

// ---------------------------------------------------------------------------------------------

async fn migrations_apply_once_and_data_survives_reopen(h: Harness) {
    assert_eq!(h.store.schema_version().await.unwrap(), 5, "every migration applied");
    h.store.ingest_images(&[upload(&digest(1), vec![finding("CVE-2024-1", "a", Severity::High)])], "t").await.unwrap();
    h.store.close().await;
    let again = h.reopen().await;
    assert_eq!(again.schema_version().await.unwrap(), 5, "applied once");
    let img = again.get_image(&digest(1)).await.unwrap().expect("image survives a restart");
    assert_eq!(img.open_findings.high, 1);
    assert!(img.has_sbom);
    assert_eq!(img.tags, vec!["registry.test/app:v1".to_string()]);
}
both!(migrations_apply_once_and_data_survives_reopen);

async fn same_upload_twice_is_one_record(h: Harness) {
    let up =
        upload(&digest(7), vec![finding("CVE-2024-1", "a", Severity::High), finding("CVE-2024-2", "b", Severity::Low)]);
    let first = h.store.ingest_images(std::slice::from_ref(&up), "alice").await.unwrap();
    assert!(first[0].new_image && first[0].sbom_changed);
    assert_eq!(kinds(&first[0].events).len(), 2);
    h.advance(60);
    let second = h.store.ingest_images(std::slice::from_ref(&up), "alice").await.unwrap();
    assert!(!second[0].new_image && !second[0].sbom_changed);
    assert!(second[0].events.is_empty(), "{:?}", second[0].events);
    let f = open_findings(&h.store, &digest(7)).await;
    assert_eq!(f.len(), 2);
    assert!(f.iter().all(|f| f.first_seen == T0 && f.last_seen == T0 + 60));
    let raw = h.raw().await;
    for (table, n) in [("images", 1i64), ("sboms", 1), ("findings", 2), ("finding_events", 2), ("image_tags", 1)] {
        let c: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&raw).await.unwrap();
        assert_eq!(c, n, "{table}");
    }
    let audit =
        h.store.list_audit(&AuditQuery { action: Some("images.ingest".into()), ..Default::default() }).await.unwrap();
    assert_eq!(audit.items.len(), 2, "every write is audited");
    assert_eq!(audit.items[0].actor, "alice");
    // The SBOM round-trips exactly.
    let s = h.store.get_sbom(&digest(7)).await.unwrap().unwrap();
    assert_eq!(&s.sbom, up.sbom.as_ref().unwrap());
    // A changed SBOM replaces the stored one.
    let mut up2 = up.clone();
    up2.sbom = Some(sbom(&digest(7), 9));
    let third = h.store.ingest_images(&[up2], "alice").await.unwrap();
    assert!(third[0].sbom_changed);
    assert_eq!(h.store.get_sbom(&digest(7)).await.unwrap().unwrap().sbom.packages.len(), 9);
}
both!(same_upload_twice_is_one_record);

async fn finding_changes_become_events_and_nothing_is_deleted(h: Harness) {
    let d = digest(2);
    let a = finding("CVE-A", "pa", Severity::Medium);
    let b = finding("CVE-B", "pb", Severity::High);
    let c = finding("CVE-C", "pc", Severity::Low);
    h.store.ingest_images(&[upload(&d, vec![a.clone(), b.clone(), c.clone()])], "t").await.unwrap();
    h.advance(DAY);
    let mut a2 = a.clone();
    a2.severity = Severity::Critical;
    a2.kev = true;
    let mut c2 = c.clone();
    c2.epss = Some(0.35);
    let mut c_small = c.clone();
    c_small.epss = Some(0.30);
    let dnew = finding("CVE-D", "pd", Severity::High);
    let ev = h
        .store
        .apply_reassessment("run-1", &[(d.clone(), vec![a2.clone(), c2.clone(), dnew.clone()])], "system")
        .await
        .unwrap();
    assert_eq!(
        kinds(&ev),
        vec![
            ("CVE-A".to_string(), ChangeKind::KevAdded),
            ("CVE-A".to_string(), ChangeKind::SeverityChanged),
            ("CVE-B".to_string(), ChangeKind::Fixed),
            ("CVE-C".to_string(), ChangeKind::EpssChanged),
            ("CVE-D".to_string(), ChangeKind::New),
        ]
    );
    assert!(ev
        .iter()
        .all(|e| e.cause == ChangeCause::Reassessment && e.run_id.as_deref() == Some("run-1") && e.id > 0));
    let sev = ev.iter().find(|e| e.kind == ChangeKind::SeverityChanged).unwrap();
    assert_eq!((sev.old.clone(), sev.new.clone()), (Some(json!("MEDIUM")), Some(json!("CRITICAL"))));
    // B is resolved, not deleted.
    let all = h
        .store
        .list_findings(&FindingQuery { image_digest: Some(d.clone()), include_resolved: true, ..Default::default() })
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 4);
    let fb = all.iter().find(|f| f.vuln_id == "CVE-B").unwrap();
    assert_eq!((fb.resolved_at, fb.resolution.as_deref()), (Some(T0 + DAY), Some("fixed")));
    assert_eq!(open_findings(&h.store, &d).await.len(), 3);
    // A small EPSS drift is no event; stored score still follows.
    h.advance(DAY);
    let ev = h
        .store
        .apply_reassessment("run-2", &[(d.clone(), vec![a2.clone(), c_small, dnew.clone()])], "system")
        .await
        .unwrap();
    assert!(ev.is_empty(), "0.35 → 0.30 is below the 0.1 threshold: {ev:?}");
    let fc = open_findings(&h.store, &d).await.into_iter().find(|f| f.vuln_id == "CVE-C").unwrap();
    assert_eq!(fc.epss, Some(0.30));
    // B comes back: reopened with the same ID, first_seen kept.
    let ev = h.store.apply_reassessment("run-3", &[(d.clone(), vec![a2, b, dnew])], "system").await.unwrap();
    let reopened: Vec<_> = ev.iter().filter(|e| e.kind == ChangeKind::Reopened).collect();
    assert_eq!(reopened.len(), 1);
    assert_eq!(reopened[0].finding_id, fb.id);
    let f = h.store.get_finding(fb.id).await.unwrap().unwrap();
    assert_eq!((f.resolved_at, f.first_seen), (None, T0));
    // Events are listed newest first and filterable.
    let page = h.store.list_events(&EventQuery { image_digest: Some(d.clone()), ..Default::default() }).await.unwrap();
    assert!(page.items.windows(2).all(|w| w[0].id > w[1].id));
    let fixed = h.store.list_events(&EventQuery { kind: Some(ChangeKind::Fixed), ..Default::default() }).await.unwrap();
    assert_eq!(fixed.items.len(), 2, "B fixed on run-1, C fixed on run-3");
}
both!(finding_changes_become_events_and_nothing_is_deleted);

async fn an_alias_that_becomes_preferred_continues_the_finding(h: Harness) {
    let d = digest(3);
    let mut ghsa = finding("GHSA-xxxx-yyyy-zzzz", "lib", Severity::High);
    ghsa.ids = vec!["GHSA-xxxx-yyyy-zzzz".into()];
    h.store.ingest_images(&[upload(&d, vec![ghsa])], "t").await.unwrap();
    let before = open_findings(&h.store, &d).await;
    let mut cve = finding("CVE-2025-9", "lib", Severity::High);
    cve.ids = vec!["CVE-2025-9".into(), "GHSA-xxxx-yyyy-zzzz".into()];
    let ev = h.store.apply_reassessment("r", &[(d.clone(), vec![cve])], "system").await.unwrap();
    assert!(ev.is_empty(), "no fixed/new pair for an ID change: {ev:?}");
    let after = open_findings(&h.store, &d).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id);
    assert_eq!(after[0].vuln_id, "CVE-2025-9");
    assert_eq!(after[0].ids, vec!["CVE-2025-9".to_string(), "GHSA-xxxx-yyyy-zzzz".to_string()]);
    for id in ["CVE-2025-9", "GHSA-xxxx-yyyy-zzzz"] {
        let q = FindingQuery { vuln_id: Some(id.into()), ..Default::default() };
        assert_eq!(h.store.list_findings(&q).await.unwrap().items.len(), 1, "{id}");
    }
}
both!(an_alias_that_becomes_preferred_continues_the_finding);

async fn invalid_uploads_change_nothing(h: Harness) {
    let good = upload(&digest(4), vec![finding("CVE-1", "a", Severity::Low)]);
    let mut bad_digest = upload("sha256:XYZ", vec![]);
    bad_digest.digest = "sha256:../../etc/passwd".into();
    let mut bad_epss = upload(&digest(5), vec![finding("CVE-2", "b", Severity::Low)]);
    bad_epss.findings.as_mut().unwrap()[0].epss = Some(1.5);
    let mut empty_pkg = upload(&digest(6), vec![finding("CVE-3", "", Severity::Low)]);
    empty_pkg.findings.as_mut().unwrap()[0].package.name = " ".into();
    let mut too_many_ids = upload(&digest(8), vec![finding("CVE-4", "c", Severity::Low)]);
    too_many_ids.findings.as_mut().unwrap()[0].ids = (0..100).map(|i| format!("ID-{i}")).collect();
    for bad in [bad_digest, bad_epss, empty_pkg, too_many_ids] {
        let r = h.store.ingest_images(&[good.clone(), bad.clone()], "t").await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    }
    let dup = h.store.ingest_images(&[good.clone(), good.clone()], "t").await;
    assert!(matches!(dup, Err(StoreError::Invalid(_))));
    let page = h.store.list_images(&ImageQuery::default()).await.unwrap();
    assert!(page.items.is_empty(), "nothing of a refused upload is stored");
    let audit = h.store.list_audit(&AuditQuery::default()).await.unwrap();
    assert!(audit.items.is_empty());
    assert!(matches!(h.store.get_image("sha256:1").await, Err(StoreError::Invalid(_))));
}
both!(invalid_uploads_change_nothing);

async fn reassessment_scope_pages_and_resumes_after_a_crash(h: Harness) {
    let now = T0 + 200 * DAY;
    h.set_now(now);
    let mk = |n: u64, pushed: Option<i64>, pulled: Option<i64>| ImageUpload {
        digest: digest(n),
        pushed_at: pushed,
        pulled_at: pulled,
        sbom: Some(sbom(&digest(n), 3)),
        findings: Some(vec![]),
        ..Default::default()
    };
    let ups = vec![
        mk(10, Some(now - 5 * DAY), None),                   // pushed recently: in
        mk(11, Some(now - 100 * DAY), None),                 // pushed long ago: out
        mk(12, Some(now - 100 * DAY), Some(now - 10 * DAY)), // pulled recently: in
        mk(13, Some(now - 100 * DAY), Some(now - 40 * DAY)), // pulled long ago, but in use: in
        mk(14, Some(now - 200 * DAY), Some(now - 31 * DAY)), // out
        mk(15, None, None),                                  // uploaded scan, no times: counts as pulled now: in
    ];
    h.store.ingest_images(&ups, "t").await.unwrap();
    h.store
        .apply_inventory(
            &InventoryUpdate {
                cluster: "prod".into(),
                k8s_version: None,
                cluster_doc: None,
                nodes: vec![],
                objects: vec![ObjectInput {
                    object: ObjectRef { kind: "Deployment".into(), namespace: "web".into(), name: "shop".into() },
                    images: vec![ContainerImage {
                        container: "app".into(),
                        image_ref: "r/app:1".into(),
                        digest: Some(digest(13)),
                    }],
                    doc: None,
                }],
                removed_nodes: vec![],
                removed_objects: vec![],
                full: true,
            },
            "agent",
        )
        .await
        .unwrap();
    let want: BTreeSet<String> = [10, 12, 13, 15].iter().map(|&n| digest(n)).collect();
    // A run that crashes after two pages.
    h.store.ensure_job("reassess", 10, Some(now)).await.unwrap();
    let policy = ScopePolicy::default();
    let lease = h.store.claim_due("replica-a", Duration::from_secs(60)).await.unwrap().expect("due");
    assert!(lease.resume_cursor.is_none());
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..2 {
        let page = h.store.reassessment_scope(&policy, cursor.as_deref(), Some(1)).await.unwrap();
        seen.extend(page.items.iter().map(|s| s.digest.clone()));
        cursor = page.next_cursor.clone();
        h.store.save_progress(&lease, cursor.as_deref(), Some(&json!({"done": seen.len()}))).await.unwrap();
    }
    // replica-a dies (no finish). Its lease expires; replica-b claims and resumes.
    assert!(h.store.claim_due("replica-b", Duration::from_secs(60)).await.unwrap().is_none(), "lease still held");
    h.advance(61);
    let lease_b =
        h.store.claim_due("replica-b", Duration::from_secs(60)).await.unwrap().expect("expired lease reclaimed");
    assert_eq!(lease_b.resume_cursor, cursor);
    assert_eq!(lease_b.progress, Some(json!({"done": 2})));
    assert!(lease_b.generation > lease.generation);
    // The old owner can no longer write.
    assert!(matches!(h.store.save_progress(&lease, None, None).await, Err(StoreError::LeaseLost { .. })));
    let mut cursor = lease_b.resume_cursor.clone();
    loop {
        let page = h.store.reassessment_scope(&policy, cursor.as_deref(), Some(1)).await.unwrap();
        seen.extend(page.items.iter().map(|s| s.digest.clone()));
        h.store.save_progress(&lease_b, page.next_cursor.as_deref(), None).await.unwrap();
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    h.store.finish(&lease_b, Ok(()), Some(now + DAY)).await.unwrap();
    assert_eq!(seen.len(), want.len(), "each in-scope SBOM exactly once: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), want);
    let job = h.store.get_job("reassess").await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.cursor.clone(), job.owner.clone(), job.next_run),
        (JobState::Done, None, None, Some(now + DAY))
    );
    let sb = h.store.reassessment_scope(&policy, None, Some(10)).await.unwrap();
    assert_eq!(sb.items[0].sbom.packages.len(), 3);
    assert!(matches!(h.store.reassessment_scope(&policy, Some("nonsense"), None).await, Err(StoreError::Invalid(_))));
}
both!(reassessment_scope_pages_and_resumes_after_a_crash);

async fn a_job_lease_is_held_by_one_replica_at_a_time(h: Harness) {
    for (j, prio) in [("a", 0), ("b", 5), ("c", 5)] {
        h.store.ensure_job(j, prio, Some(T0)).await.unwrap();
    }
    h.store.ensure_job("a", 99, None).await.unwrap(); // existing jobs keep their state
                                                      // Eight replicas race for due jobs: each job goes to exactly one.
    let mut tasks = Vec::new();
    for r in 0..8 {
        let s = h.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(l) = s.claim_due(&format!("r{r}"), Duration::from_secs(300)).await.unwrap() {
                got.push(l.job.clone());
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all, vec!["a", "b", "c"]);
    assert!(h.store.try_acquire("a", "intruder", Duration::from_secs(5)).await.unwrap().is_none());
    let jobs = h.store.list_jobs().await.unwrap();
    assert!(jobs.iter().all(|j| j.state == JobState::Running && j.owner.is_some()));
    assert_eq!(jobs.iter().find(|j| j.name == "a").unwrap().priority, 0);
    // A failed run keeps its cursor; a request makes it due again.
    h.advance(301);
    let mut l = h.store.try_acquire("a", "r9", Duration::from_secs(30)).await.unwrap().unwrap();
    h.store.renew(&mut l, Duration::from_secs(600)).await.unwrap();
    assert_eq!(l.expires_at, h.now() + 600);
    h.store.save_progress(&l, Some("cur-1"), None).await.unwrap();
    h.store.finish(&l, Err("feed unreachable"), None).await.unwrap();
    let j = h.store.get_job("a").await.unwrap().unwrap();
    assert_eq!(
        (j.state, j.cursor.as_deref(), j.last_error.as_deref()),
        (JobState::Failed, Some("cur-1"), Some("feed unreachable"))
    );
    assert!(matches!(h.store.finish(&l, Ok(()), None).await, Err(StoreError::LeaseLost { .. })));
    h.store.request_run("a", "admin").await.unwrap();
    let again = h.store.claim_due("r1", Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!((again.job.as_str(), again.resume_cursor.as_deref()), ("a", Some("cur-1")));
    h.store.release(&again).await.unwrap();
    assert!(h.store.claim_due("r2", Duration::from_secs(30)).await.unwrap().is_some(), "released: resumable at once");
    assert!(matches!(h.store.request_run("nope", "admin").await, Err(StoreError::NotFound { .. })));
}
both!(a_job_lease_is_held_by_one_replica_at_a_time);

async fn tokens_are_hashed_checked_and_revocable(h: Harness) {
    let (info, token) = h
        .store
        .create_token(
            &NewToken { name: "ci".into(), role: Role::Operator, expires_at: None, single_use: false, cluster: None },
            "admin",
        )
        .await
        .unwrap();
    assert!(token.starts_with("pal_") && token.contains(&info.id));
    match h.store.authenticate(&token).await.unwrap() {
        AuthOutcome::Valid(t) => {
            assert_eq!((t.role, t.name.as_str(), t.last_used_at), (Role::Operator, "ci", Some(T0)))
        }
        other => panic!("{other:?}"),
    }
    // Only the hash is stored.
    let raw = h.raw().await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT hash FROM tokens").fetch_all(&raw).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token);
    assert!(!stored[0].contains(&token[20..]));
    // Wrong secret with the right ID, garbage, a flipped last character.
    let mut wrong = token.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    for bad in [wrong.as_str(), "", "Bearer x", "pal_zz_zz", &format!("pal_{}_{}", "0".repeat(16), "0".repeat(64))] {
        assert!(
            matches!(h.store.authenticate(bad).await.unwrap(), AuthOutcome::Refused(TokenRefusal::Unknown)),
            "{bad}"
        );
    }
    h.store.revoke_token(&info.id, "admin").await.unwrap();
    assert!(matches!(h.store.authenticate(&token).await.unwrap(), AuthOutcome::Refused(TokenRefusal::Revoked)));
    // Expiry.
    let (_, exp) = h
        .store
        .create_token(
            &NewToken {
                name: "tmp".into(),
                role: Role::Viewer,
                expires_at: Some(T0 + 10),
                single_use: false,
                cluster: None,
            },
            "admin",
        )
        .await
        .unwrap();
    assert!(matches!(h.store.authenticate(&exp).await.unwrap(), AuthOutcome::Valid(_)));
    h.advance(10);
    assert!(matches!(h.store.authenticate(&exp).await.unwrap(), AuthOutcome::Refused(TokenRefusal::Expired)));
    // A one-time registration token works exactly once, even under concurrent use.
    let (_, once) = h
        .store
        .create_token(
            &NewToken {
                name: "register prod".into(),
                role: Role::Operator,
                expires_at: None,
                single_use: true,
                cluster: Some("prod".into()),
            },
            "admin",
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = h.store.clone();
        let t = once.clone();
        tasks.push(tokio::spawn(async move { matches!(s.authenticate(&t).await.unwrap(), AuthOutcome::Valid(_)) }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 1);
    assert!(matches!(h.store.authenticate(&once).await.unwrap(), AuthOutcome::Refused(TokenRefusal::Consumed)));
    assert!(!h.store.has_admin_token().await.unwrap());
    h.store
        .create_token(
            &NewToken {
                name: "bootstrap".into(),
                role: Role::Admin,
                expires_at: None,
                single_use: false,
                cluster: None,
            },
            "system",
        )
        .await
        .unwrap();
    assert!(h.store.has_admin_token().await.unwrap());
    assert_eq!(h.store.list_tokens().await.unwrap().len(), 4);
    let audit =
        h.store.list_audit(&AuditQuery { action: Some("token.revoke".into()), ..Default::default() }).await.unwrap();
    assert_eq!(audit.items.len(), 1);
    assert!(Role::Admin.allows(Role::Operator) && !Role::Viewer.allows(Role::Operator));
}
both!(tokens_are_hashed_checked_and_revocable);

async fn triage_has_an_audit_trail_and_survives_reingest(h: Harness) {
    let d = digest(20);
    let up = upload(&d, vec![finding("CVE-T", "openssl", Severity::Critical)]);
    h.store.ingest_images(std::slice::from_ref(&up), "t").await.unwrap();
    let id = open_findings(&h.store, &d).await[0].id;
    let bad = TriageUpdate { state: TriageState::NotAffected, justification: None, detail: None };
    assert!(matches!(h.store.set_triage(id, &bad, "bob").await, Err(StoreError::Invalid(_))));
    let bad = TriageUpdate {
        state: TriageState::Exploitable,
        justification: Some(Justification::CodeNotPresent),
        detail: None,
    };
    assert!(matches!(h.store.set_triage(id, &bad, "bob").await, Err(StoreError::Invalid(_))));
    let u1 = TriageUpdate { state: TriageState::InTriage, justification: None, detail: Some("looking".into()) };
    h.store.set_triage(id, &u1, "bob").await.unwrap();
    h.advance(100);
    let u2 = TriageUpdate {
        state: TriageState::NotAffected,
        justification: Some(Justification::CodeNotReachable),
        detail: Some("TLS unused".into()),
    };
    let f = h.store.set_triage(id, &u2, "carol").await.unwrap();
    let t = f.triage.unwrap();
    assert_eq!(
        (t.state, t.justification, t.by.as_str(), t.at),
        (TriageState::NotAffected, Some(Justification::CodeNotReachable), "carol", T0 + 100)
    );
    let hist = h.store.triage_history(id).await.unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!((hist[0].old_state, hist[0].new_state, hist[0].actor.as_str()), (None, TriageState::InTriage, "bob"));
    assert_eq!((hist[1].old_state, hist[1].new_state), (Some(TriageState::InTriage), TriageState::NotAffected));
    h.store.ingest_images(&[up], "t").await.unwrap();
    let again = h.store.get_finding(id).await.unwrap().unwrap();
    assert_eq!(again.triage.map(|t| t.state), Some(TriageState::NotAffected));
    let q = FindingQuery { triage: Some(TriageState::NotAffected), ..Default::default() };
    assert_eq!(h.store.list_findings(&q).await.unwrap().items.len(), 1);
    let audit =
        h.store.list_audit(&AuditQuery { action: Some("triage.set".into()), ..Default::default() }).await.unwrap();
    assert_eq!(audit.items.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(), vec!["carol", "bob"]);
    assert!(matches!(h.store.set_triage(999_999, &u1, "bob").await, Err(StoreError::NotFound { .. })));
}
both!(triage_has_an_audit_trail_and_survives_reingest);

async fn lists_filter_sort_and_page(h: Harness) {
    let mut ups = Vec::new();
    for n in 0..25u64 {
        let sev = if n % 5 == 0 { Severity::Critical } else { Severity::Low };
        let mut f = finding(&format!("CVE-2025-{n}"), &format!("p{n}"), sev);
        f.kev = n % 10 == 0;
        f.epss = Some(n as f64 / 100.0);
        if n % 2 == 0 {
            f.fixed_version = None;
        }
        let mut u = upload(&digest(100 + n), vec![f, finding("CVE-SHARED", "zlib", Severity::Medium)]);
        u.repo = Some(format!("registry.test/r{}", n % 3));
        ups.push(u);
        h.advance(1);
    }
    // One upload per image, so last_seen differs.
    for u in &ups {
        h.advance(1);
        h.store.ingest_images(std::slice::from_ref(u), "t").await.unwrap();
    }
    // Images: pages of 10 cover all 25 exactly once, newest first.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = h
            .store
            .list_images(&ImageQuery { limit: Some(10), cursor: cursor.clone(), ..Default::default() })
            .await
            .unwrap();
        seen.extend(p.items.iter().map(|i| (i.last_seen, i.digest.clone())));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0].0 > w[1].0));
    let by_repo = h
        .store
        .list_images(&ImageQuery {
            repo: Some("registry.test/r1".into()),
            sort: ImageSort::Digest,
            order: Order::Asc,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_repo.items.len(), 8);
    assert!(by_repo.items.windows(2).all(|w| w[0].digest < w[1].digest));
    let crit = h
        .store
        .list_images(&ImageQuery { min_severity: Some(Severity::Critical), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(crit.items.len(), 5);
    assert!(crit.items.iter().all(|i| i.open_findings.critical == 1 && i.open_findings.medium == 1));
    // Findings.
    let q = |f: FindingQuery| {
        let s = h.store.clone();
        async move { s.list_findings(&f).await.unwrap().items }
    };
    assert_eq!(q(FindingQuery { min_severity: Some(Severity::Critical), ..Default::default() }).await.len(), 5);
    assert_eq!(q(FindingQuery { kev: Some(true), ..Default::default() }).await.len(), 3);
    assert_eq!(
        q(FindingQuery { vuln_id: Some("CVE-SHARED".into()), limit: Some(1000), ..Default::default() }).await.len(),
        25
    );
    assert_eq!(
        q(FindingQuery { vuln_id: Some("DEBIAN-CVE-SHARED".into()), limit: Some(1000), ..Default::default() })
            .await
            .len(),
        25
    );
    assert_eq!(q(FindingQuery { package: Some("p3".into()), ..Default::default() }).await.len(), 1);
    let fixable = q(FindingQuery { fixable: Some(false), limit: Some(1000), ..Default::default() }).await;
    assert_eq!(fixable.len(), 13);
    let by_epss = q(FindingQuery { sort: FindingSort::Epss, limit: Some(3), ..Default::default() }).await;
    assert_eq!(
        by_epss.iter().map(|f| f.vuln_id.as_str()).collect::<Vec<_>>(),
        ["CVE-2025-24", "CVE-2025-23", "CVE-2025-22"]
    );
    // Paging findings by severity: 50 rows in pages of 7, no duplicates, non-increasing severity.
    let mut ids = Vec::new();
    let mut sevs = Vec::new();
    let mut cursor = None;
    loop {
        let p = h
            .store
            .list_findings(&FindingQuery { limit: Some(7), cursor: cursor.clone(), ..Default::default() })
            .await
            .unwrap();
        ids.extend(p.items.iter().map(|f| f.id));
        sevs.extend(p.items.iter().map(|f| f.severity));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(ids.len(), 50);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 50);
    assert!(sevs.windows(2).all(|w| w[0] >= w[1]));
    // A cursor of another sort order, or garbage, is refused.
    let p =
        h.store.list_images(&ImageQuery { limit: Some(2), sort: ImageSort::Repo, ..Default::default() }).await.unwrap();
    let wrong = ImageQuery { cursor: p.next_cursor.clone(), sort: ImageSort::LastSeen, ..Default::default() };
    assert!(matches!(h.store.list_images(&wrong).await, Err(StoreError::Invalid(_))));
    let garbage = FindingQuery { cursor: Some("'; DROP TABLE findings; --".into()), ..Default::default() };
    assert!(matches!(h.store.list_findings(&garbage).await, Err(StoreError::Invalid(_))));
    let c = h.store.dashboard_counts().await.unwrap();
    assert_eq!(
        (c.images, c.sboms, c.open_findings.total(), c.open_findings.critical, c.open_kev_findings),
        (25, 25, 50, 5, 3)
    );
}
both!(lists_filter_sort_and_page);

fn inv(cluster: &str, objects: Vec<(&str, &str, Option<String>)>, full: bool) -> InventoryUpdate {
    InventoryUpdate {
        cluster: cluster.into(),
        k8s_version: Some("1.31".into()),
        cluster_doc: None,
        nodes: vec![NodeInput {
            name: format!("{cluster}-node-1"),
            kubelet_version: Some("v1.31.0".into()),
            os_image: None,
            doc: None,
        }],
        objects: objects
            .into_iter()
            .map(|(ns, name, d)| ObjectInput {
                object: ObjectRef { kind: "Deployment".into(), namespace: ns.into(), name: name.into() },
                images: vec![ContainerImage {
                    container: "main".into(),
                    image_ref: format!("registry.test/{name}:1"),
                    digest: d,
                }],
                doc: Some(json!({"kind": "Deployment", "metadata": {"name": name, "namespace": ns}})),
            })
            .collect(),
        removed_nodes: vec![],
        removed_objects: vec![],
        full,
    }
}

async fn inventory_and_blast_radius(h: Harness) {
    let (x, y, z) = (digest(200), digest(201), digest(202));
    h.store
        .ingest_images(
            &[
                upload(&x, vec![finding("CVE-2024-3094", "xz-utils", Severity::Critical)]),
                upload(&y, vec![finding("CVE-2024-3094", "xz-utils", Severity::Critical)]),
                upload(&z, vec![finding("CVE-OTHER", "bash", Severity::Low)]),
            ],
            "t",
        )
        .await
        .unwrap();
    h.store
        .apply_inventory(
            &inv("prod", vec![("web", "shop", Some(x.clone())), ("web", "cart", Some(z.clone()))], true),
            "agent",
        )
        .await
        .unwrap();
    h.store
        .apply_inventory(
            &inv("stage", vec![("web", "shop", Some(x.clone())), ("batch", "etl", Some(y.clone()))], true),
            "agent",
        )
        .await
        .unwrap();
    let b = h.store.blast_radius("DEBIAN-CVE-2024-3094", 100).await.unwrap();
    assert_eq!(b.images.iter().map(|i| i.digest.clone()).collect::<Vec<_>>(), vec![x.clone(), y.clone()]);
    assert!(b.images.iter().all(|i| i.findings.len() == 1 && i.repo == "registry.test/app"));
    assert_eq!(b.ids, vec!["CVE-2024-3094".to_string(), "DEBIAN-CVE-2024-3094".to_string()]);
    assert_eq!(
        b.workloads.iter().map(|w| format!("{}/{}/{}", w.cluster, w.namespace, w.name)).collect::<Vec<_>>(),
        vec!["prod/web/shop", "stage/batch/etl", "stage/web/shop"]
    );
    assert_eq!(b.clusters, vec!["prod", "stage"]);
    assert!(!b.truncated);
    let cut = h.store.blast_radius("CVE-2024-3094", 1).await.unwrap();
    assert!(cut.truncated && cut.images.len() == 1);
    // In use.
    let used = h.store.list_images(&ImageQuery { in_use: Some(true), ..Default::default() }).await.unwrap();
    assert_eq!(used.items.len(), 3);
    // A full snapshot without etl marks it removed; y is no longer in use.
    h.advance(10);
    let out =
        h.store.apply_inventory(&inv("stage", vec![("web", "shop", Some(x.clone()))], true), "agent").await.unwrap();
    assert_eq!(out.objects_removed, 1);
    let y_img = h.store.get_image(&y).await.unwrap().unwrap();
    assert!(!y_img.in_use);
    let b = h.store.blast_radius("CVE-2024-3094", 100).await.unwrap();
    assert_eq!(b.workloads.len(), 2);
    let all = h.store.list_workloads(&WorkloadQuery { include_removed: true, ..Default::default() }).await.unwrap();
    assert_eq!(all.items.len(), 4, "removed objects are kept, marked");
    let etl = all.items.iter().find(|w| w.name == "etl").unwrap();
    assert_eq!(etl.removed_at, Some(T0 + 10));
    let live =
        h.store.list_workloads(&WorkloadQuery { cluster: Some("prod".into()), ..Default::default() }).await.unwrap();
    assert_eq!(live.items.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["cart", "shop"]);
    assert_eq!(live.items[1].images[0].digest.as_deref(), Some(x.as_str()));
    assert_eq!(live.items[1].doc.as_ref().unwrap()["metadata"]["name"], "shop");
    let by_img =
        h.store.list_workloads(&WorkloadQuery { image_digest: Some(x.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(by_img.items.len(), 2);
    // Delta removal and node listing.
    let mut delta = inv("prod", vec![], false);
    delta.nodes.clear();
    delta.removed_objects.push(ObjectRef { kind: "Deployment".into(), namespace: "web".into(), name: "cart".into() });
    delta.removed_nodes.push("prod-node-1".into());
    let out = h.store.apply_inventory(&delta, "agent").await.unwrap();
    assert_eq!((out.objects_removed, out.nodes_removed), (1, 1));
    let nodes = h.store.list_nodes(&NameQuery::default()).await.unwrap();
    assert_eq!(nodes.items.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["stage-node-1"]);
    let clusters = h.store.list_clusters(&NameQuery::default()).await.unwrap();
    assert_eq!(
        clusters.items.iter().map(|c| (c.name.as_str(), c.workloads)).collect::<Vec<_>>(),
        [("prod", 1), ("stage", 1)]
    );
    assert_eq!(clusters.items[0].k8s_version.as_deref(), Some("1.31"));
    // Inventory images that were never scanned are recorded (seen, in use).
    h.store.apply_inventory(&inv("prod", vec![("ops", "new", Some(digest(299)))], false), "agent").await.unwrap();
    let unseen = h.store.get_image(&digest(299)).await.unwrap().unwrap();
    assert!(unseen.in_use && !unseen.has_sbom && unseen.repo == "registry.test/new");
    let bad = inv("prod", vec![("ops", "bad", Some("sha256:nope".into()))], false);
    assert!(matches!(h.store.apply_inventory(&bad, "agent").await, Err(StoreError::Invalid(_))));
    let c = h.store.dashboard_counts().await.unwrap();
    assert_eq!((c.clusters, c.nodes, c.workloads, c.images_in_use), (2, 2, 3, 2));
}
both!(inventory_and_blast_radius);

async fn posture_snapshots_open_and_resolve(h: Harness) {
    let pf = |check: &str, name: &str, sev: Severity| PostureFindingInput {
        check_id: check.into(),
        object: ObjectRef { kind: "Pod".into(), namespace: "default".into(), name: name.into() },
        severity: sev,
        doc: json!({"check": check, "object": name}),
    };
    let snap = PostureSnapshot {
        cluster: "prod".into(),
        findings: vec![
            pf("PAL-K8S-001", "a", Severity::High),
            pf("PAL-K8S-002", "a", Severity::Low),
            pf("PAL-K8S-001", "b", Severity::High),
        ],
        full: true,
    };
    let o = h.store.ingest_posture(&snap, "agent").await.unwrap();
    assert_eq!((o.opened, o.resolved, o.unchanged), (3, 0, 0));
    let o = h.store.ingest_posture(&snap, "agent").await.unwrap();
    assert_eq!((o.opened, o.resolved, o.unchanged), (0, 0, 3), "idempotent");
    let mut fewer = snap.clone();
    fewer.findings.remove(2);
    let o = h.store.ingest_posture(&fewer, "agent").await.unwrap();
    assert_eq!((o.opened, o.resolved, o.unchanged), (0, 1, 2));
    let open = h.store.list_posture_findings(&PostureQuery::default()).await.unwrap();
    assert_eq!(open.items.len(), 2);
    assert_eq!(open.items[0].severity, Severity::High);
    let all =
        h.store.list_posture_findings(&PostureQuery { include_resolved: true, ..Default::default() }).await.unwrap();
    assert_eq!(all.items.len(), 3);
    let o = h.store.ingest_posture(&snap, "agent").await.unwrap();
    assert_eq!(o.opened, 1, "reopened");
    let q =
        PostureQuery { check_id: Some("PAL-K8S-001".into()), min_severity: Some(Severity::High), ..Default::default() };
    assert_eq!(h.store.list_posture_findings(&q).await.unwrap().items.len(), 2);
    assert_eq!(h.store.dashboard_counts().await.unwrap().open_posture_findings.high, 2);
}
both!(posture_snapshots_open_and_resolve);

async fn alerts_incidents_health_and_retention(h: Harness) {
    let alert = |rule: &str, at: i64| AlertInput {
        key: None,
        cluster: Some("prod".into()),
        rule: rule.into(),
        severity: Severity::High,
        at,
        namespace: Some("web".into()),
        pod: Some("shop-1".into()),
        node: None,
        doc: json!({"rule": rule, "at": at}),
    };
    let ids = h.store.ingest_alerts(&[alert("shell", T0), alert("drift", T0 + 1)], "sensor").await.unwrap();
    let again = h.store.ingest_alerts(&[alert("shell", T0)], "sensor").await.unwrap();
    assert_eq!(again[0], ids[0], "a re-sent alert is one record");
    let page = h.store.list_alerts(&AlertQuery::default()).await.unwrap();
    assert_eq!(page.items.iter().map(|a| a.rule.as_str()).collect::<Vec<_>>(), ["drift", "shell"]);
    let inc = h
        .store
        .open_incident(
            &IncidentInput {
                cluster: Some("prod".into()),
                title: "shop compromised".into(),
                severity: Severity::Critical,
                alert_ids: ids.clone(),
            },
            "op",
        )
        .await
        .unwrap();
    assert_eq!(inc.alerts, 2);
    let inc = h.store.resolve_incident(inc.id, "op").await.unwrap();
    assert_eq!(inc.resolved_by.as_deref(), Some("op"));
    let resolved = h.store.list_alerts(&AlertQuery { resolved: Some(true), ..Default::default() }).await.unwrap();
    assert_eq!(resolved.items.len(), 2);
    let other = h.store.ingest_alerts(&[alert("crypto", T0 + 2)], "sensor").await.unwrap();
    let a = h.store.resolve_alert(other[0], "op").await.unwrap();
    assert_eq!(a.resolved_at, Some(T0));
    assert!(matches!(h.store.resolve_alert(424_242, "op").await, Err(StoreError::NotFound { .. })));
    // Health.
    let hb = |c: Component, inst: &str| Heartbeat {
        cluster: "prod".into(),
        component: c,
        instance: inst.into(),
        node: None,
        version: Some("0.1".into()),
        doc: None,
    };
    h.store.record_heartbeats(&[hb(Component::Agent, "agent-0"), hb(Component::Sensor, "node-1")]).await.unwrap();
    h.advance(90);
    h.store.record_heartbeats(&[hb(Component::Agent, "agent-0")]).await.unwrap();
    let health =
        h.store.list_health(&HealthQuery { cluster: Some("prod".into()), ..Default::default() }).await.unwrap();
    let states: Vec<_> = health.items.iter().map(|r| (r.component, r.state)).collect();
    assert_eq!(states, vec![(Component::Agent, HealthState::Healthy), (Component::Sensor, HealthState::Degraded)]);
    h.advance(200);
    let sensors =
        h.store.list_health(&HealthQuery { component: Some(Component::Sensor), ..Default::default() }).await.unwrap();
    assert_eq!(sensors.items[0].state, HealthState::Unhealthy);
    assert!(h
        .store
        .list_health(&HealthQuery { cluster: Some("nope".into()), ..Default::default() })
        .await
        .unwrap()
        .items
        .is_empty());
    // Retention: images.
    let (old, used, fresh) = (digest(300), digest(301), digest(302));
    h.store
        .ingest_images(
            &[
                upload(&old, vec![finding("CVE-R", "r", Severity::High)]),
                upload(&used, vec![finding("CVE-R", "r", Severity::High)]),
            ],
            "t",
        )
        .await
        .unwrap();
    h.store.apply_inventory(&inv("prod", vec![("web", "svc", Some(used.clone()))], false), "agent").await.unwrap();
    h.advance(29 * DAY);
    h.store.ingest_images(&[upload(&fresh, vec![])], "t").await.unwrap();
    let out = h.store.apply_retention(&RetentionPolicy::default(), "retention").await.unwrap();
    assert_eq!((out.alerts_deleted, out.images_retired), (0, 0), "29 days: nothing due");
    h.advance(2 * DAY);
    let out = h.store.apply_retention(&RetentionPolicy::default(), "retention").await.unwrap();
    assert_eq!((out.alerts_deleted, out.incidents_deleted), (3, 1), "resolved 31 days ago");
    assert_eq!(out.images_retired, 0);
    h.advance(60 * DAY);
    let out = h.store.apply_retention(&RetentionPolicy::default(), "retention").await.unwrap();
    assert_eq!((out.images_retired, out.findings_resolved), (1, 1), "only the unused image unseen for 90 days");
    assert!(h.store.get_image(&old).await.unwrap().is_none());
    assert!(h.store.get_sbom(&old).await.unwrap().is_none());
    assert!(h.store.get_image(&used).await.unwrap().is_some(), "in use: kept");
    let kept = h
        .store
        .list_findings(&FindingQuery { image_digest: Some(old.clone()), include_resolved: true, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(kept.items.len(), 1, "findings are never deleted");
    assert_eq!(kept.items[0].resolution.as_deref(), Some("image_removed"));
    assert!(h.store.remove_image(&fresh, "registry").await.unwrap());
    assert!(!h.store.remove_image(&fresh, "registry").await.unwrap());
    let ev = h.store.list_events(&EventQuery { image_digest: Some(old), ..Default::default() }).await.unwrap();
    assert_eq!(ev.items[0].cause, ChangeCause::Retention);
}
both!(alerts_incidents_health_and_retention);

async fn concurrent_uploads_of_the_same_images(h: Harness) {
    let mut tasks = Vec::new();
    for t in 0..6u64 {
        let s = h.store.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..5u64 {
                let ups: Vec<ImageUpload> = (0..4u64)
                    .map(|i| {
                        let n = (i + t + round) % 6;
                        upload(
                            &digest(400 + n),
                            vec![
                                finding("CVE-C1", "a", Severity::High),
                                finding(&format!("CVE-N{n}"), "b", Severity::Low),
                            ],
                        )
                    })
                    .collect();
                s.ingest_images(&ups, &format!("sender-{t}")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = h.store.dashboard_counts().await.unwrap();
    assert_eq!((c.images, c.open_findings.total()), (6, 12));
    let ev = h.store.list_events(&EventQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    assert_eq!(ev.items.len(), 12, "each finding opened once despite racing uploads");
}
both!(concurrent_uploads_of_the_same_images);

async fn planner_statistics_follow_bulk_writes(h: Harness) {
    let mut config = h.config.clone();
    config.analyze_after_rows = 50;
    let store = Store::open(config).await.unwrap();
    assert!(!store.refresh_statistics(false).await.unwrap(), "nothing written: not due");
    let few: Vec<FindingInput> =
        (0..10).map(|i| finding(&format!("CVE-2024-{i}"), &format!("p{i}"), Severity::Low)).collect();
    store.ingest_images(&[upload(&digest(1), few)], "t").await.unwrap();
    assert!(!store.refresh_statistics(false).await.unwrap(), "21 rows (image, findings, events) are under 50");
    let many: Vec<FindingInput> =
        (0..40).map(|i| finding(&format!("CVE-2024-{i}"), &format!("q{i}"), Severity::Low)).collect();
    store.ingest_images(&[upload(&digest(2), many)], "t").await.unwrap();
    assert!(store.refresh_statistics(false).await.unwrap(), "102 rows written: due");
    assert!(!store.refresh_statistics(false).await.unwrap(), "refreshed: the count starts again");
    if store.backend() == Backend::Postgres {
        // ANALYZE ran on the store's own tables (the test's schema)
        let raw = h.raw().await;
        let mut analyzed = false;
        for _ in 0..50 {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_user_tables WHERE schemaname = current_schema() \
                 AND relname = 'findings' AND last_analyze IS NOT NULL",
            )
            .fetch_one(&raw)
            .await
            .unwrap();
            if n == 1 {
                analyzed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(analyzed, "findings analyzed");
    }
    assert!(store.refresh_statistics(true).await.unwrap(), "forced");
}
both!(planner_statistics_follow_bulk_writes);

async fn trend_is_history_and_sessions_end_with_their_token(h: Harness) {
    // day 0: 3 findings; day 1: one fixed, one new; day 3 (today): query
    let d = digest(40);
    let (a, b, c) = (
        finding("CVE-T1", "p1", Severity::High),
        finding("CVE-T2", "p2", Severity::Low),
        finding("CVE-T3", "p3", Severity::Low),
    );
    h.store.ingest_images(&[upload(&d, vec![a.clone(), b.clone(), c.clone()])], "t").await.unwrap();
    h.advance(DAY);
    let n = finding("CVE-T4", "p4", Severity::Medium);
    h.store.apply_reassessment("run-t", &[(d.clone(), vec![a, b, n])], "system").await.unwrap();
    h.advance(2 * DAY);
    let t = h.store.finding_trend(5).await.unwrap();
    let open: Vec<i64> = t.iter().map(|p| p.open).collect();
    let opened: Vec<i64> = t.iter().map(|p| p.opened).collect();
    let fixed: Vec<i64> = t.iter().map(|p| p.fixed).collect();
    assert_eq!(open, vec![0, 3, 3, 3, 3], "{t:?}");
    assert_eq!(opened, vec![0, 3, 1, 0, 0]);
    assert_eq!(fixed, vec![0, 0, 1, 0, 0]);
    assert_eq!(t[4].day, (h.now() / DAY) * DAY);
    assert_eq!(h.store.count_new_findings(h.now() - 2 * DAY).await.unwrap(), 1);

    // A session stands for its token and ends with it.
    let (tok, _) = h
        .store
        .create_token(
            &NewToken {
                name: "console".into(),
                role: Role::Operator,
                expires_at: Some(h.now() + 3600),
                single_use: false,
                cluster: None,
            },
            "t",
        )
        .await
        .unwrap();
    let s1 = h.store.create_session(&tok, 12 * 3600, "t").await.unwrap();
    assert_eq!(h.store.session(&s1).await.unwrap().map(|t| t.role), Some(Role::Operator));
    assert!(h.store.session("not-a-session").await.unwrap().is_none());
    assert!(h.store.session(&"a".repeat(64)).await.unwrap().is_none());
    // the token expires in an hour: so does the session, though 12 h were asked for
    h.advance(3601);
    assert!(h.store.session(&s1).await.unwrap().is_none(), "a session outlived its token");
    let (tok2, _) = h
        .store
        .create_token(
            &NewToken { name: "c2".into(), role: Role::Viewer, expires_at: None, single_use: false, cluster: None },
            "t",
        )
        .await
        .unwrap();
    let s2 = h.store.create_session(&tok2, 600, "t").await.unwrap();
    let s3 = h.store.create_session(&tok2, 600, "t").await.unwrap();
    assert!(h.store.end_session(&s2, "t").await.unwrap());
    assert!(!h.store.end_session(&s2, "t").await.unwrap(), "ending twice");
    assert!(h.store.session(&s2).await.unwrap().is_none());
    assert!(h.store.session(&s3).await.unwrap().is_some(), "ending one session ended another");
    h.store.revoke_token(&tok2.id, "t").await.unwrap();
    assert!(h.store.session(&s3).await.unwrap().is_none(), "a revoked token's session lives on");
    h.advance(700);
    let out = h.store.apply_retention(&RetentionPolicy::default(), "t").await.unwrap();
    assert_eq!(out.sessions_deleted, 0, "sessions ended less than a day ago are kept");
    h.advance(2 * DAY);
    let out = h.store.apply_retention(&RetentionPolicy::default(), "t").await.unwrap();
    assert_eq!(out.sessions_deleted, 3);
}
both!(trend_is_history_and_sessions_end_with_their_token);

async fn exemptions_keep_findings_listed_but_out_of_scores(h: Harness) {
    let obj = |name: &str, ns: &str| ObjectRef { kind: "Deployment".into(), namespace: ns.into(), name: name.into() };
    let inv = InventoryUpdate {
        cluster: "prod".into(),
        cluster_doc: None,
        k8s_version: None,
        nodes: vec![],
        objects: ["a", "b", "c"]
            .iter()
            .map(|n| ObjectInput { object: obj(n, if *n == "c" { "ops" } else { "shop" }), images: vec![], doc: None })
            .collect(),
        removed_nodes: vec![],
        removed_objects: vec![],
        full: true,
    };
    h.store.apply_inventory(&inv, "agent").await.unwrap();
    let pf = |name: &str, ns: &str| PostureFindingInput {
        check_id: "PAL-K8S-001".into(),
        object: obj(name, ns),
        severity: Severity::Critical,
        doc: json!({}),
    };
    let snap = PostureSnapshot {
        cluster: "prod".into(),
        findings: vec![pf("a", "shop"), pf("b", "shop"), pf("c", "ops")],
        full: true,
    };
    h.store.ingest_posture(&snap, "agent").await.unwrap();
    let unhealthy = |v: Vec<ClusterPosture>| v.iter().find(|c| c.cluster == "prod").map(|c| (c.resources, c.unhealthy));
    assert_eq!(unhealthy(h.store.cluster_posture().await.unwrap()), Some((3, 3)));

    // refused: no justification, in the past, too long, a name without its namespace or cluster
    let base = ExemptionInput {
        cluster: Some("prod".into()),
        check_id: "PAL-K8S-001".into(),
        namespace: Some("shop".into()),
        name: Some("a".into()),
        justification: "legacy agent needs it; replaced in Q1".into(),
        expires_at: h.now() + 30 * DAY,
    };
    for bad in [
        ExemptionInput { justification: " ".into(), ..base.clone() },
        ExemptionInput { expires_at: h.now() - 1, ..base.clone() },
        ExemptionInput { expires_at: h.now() + 400 * DAY, ..base.clone() },
        ExemptionInput { cluster: None, namespace: None, ..base.clone() },
        ExemptionInput { namespace: Some(String::new()), name: None, ..base.clone() },
    ] {
        assert!(matches!(h.store.create_exemption(&bad, "alice").await, Err(StoreError::Invalid(_))), "{bad:?}");
    }
    assert!(h.store.list_exemptions(true).await.unwrap().is_empty(), "a refused exemption was stored");

    // a cluster-scoped object (namespace "") is exempted alone, not its name in every namespace
    let cs = h
        .store
        .create_exemption(
            &ExemptionInput { namespace: Some(String::new()), name: Some("a".into()), ..base.clone() },
            "alice",
        )
        .await
        .unwrap();
    assert_eq!(unhealthy(h.store.cluster_posture().await.unwrap()), Some((3, 3)), "shop/a is not cluster-scoped");
    h.store.revoke_exemption(cs.id, "alice").await.unwrap();
    let one = h.store.create_exemption(&base, "alice").await.unwrap();
    assert_eq!(unhealthy(h.store.cluster_posture().await.unwrap()), Some((3, 2)));
    let listed = h.store.list_posture_findings(&PostureQuery::default()).await.unwrap();
    assert_eq!(listed.items.len(), 3, "exempted findings stay listed");
    let marked: Vec<(&str, Option<i64>)> = listed.items.iter().map(|p| (p.object.name.as_str(), p.exemption)).collect();
    assert!(marked.contains(&("a", Some(one.id))) && marked.contains(&("b", None)), "{marked:?}");
    let g = h.store.posture_summary().await.unwrap();
    assert_eq!((g[0].resources, g[0].exempt), (3, 1));
    let ids = ["PAL-K8S-001"];
    assert_eq!(h.store.unhealthy_by_cluster(&ids).await.unwrap(), vec![("prod".to_string(), 2)]);

    // a namespace-wide exemption covers b too, not c in another namespace
    let ns = h.store.create_exemption(&ExemptionInput { name: None, ..base.clone() }, "alice").await.unwrap();
    assert_eq!(unhealthy(h.store.cluster_posture().await.unwrap()), Some((3, 1)));
    // revoked: counts again; kept with who revoked it
    let r = h.store.revoke_exemption(ns.id, "bob").await.unwrap();
    assert!(r.revoked_at.is_some() && r.revoked_by.as_deref() == Some("bob"));
    assert_eq!(unhealthy(h.store.cluster_posture().await.unwrap()), Some((3, 2)));
    assert_eq!(h.store.list_exemptions(false).await.unwrap().len(), 1);
    assert_eq!(h.store.list_exemptions(true).await.unwrap().len(), 3);
    // expired: counts again
    h.advance(31 * DAY);
    assert_eq!(unhealthy(h.store.cluster_posture().await.unwrap()), Some((3, 3)));
    assert!(h.store.list_exemptions(false).await.unwrap().is_empty());
    let audit = h.store.list_audit(&AuditQuery::default()).await.unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "exemption.create").count(), 3);
    assert!(actions.contains(&"exemption.revoke"));
}
both!(exemptions_keep_findings_listed_but_out_of_scores);
