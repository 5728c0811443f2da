//! The whole pipeline on audit logs: bad input, folding, incidents, follow mode.

#![allow(clippy::unwrap_used, clippy::panic)]

use palisade_detect::alert::Finding;
use palisade_detect::pipeline::{Detector, DetectorConfig};
use palisade_detect::rules::RuleSet;
use palisade_detect::simulate::{attack_story, attacker, EventBuilder, Generator, Rng, SimConfig};
use std::collections::BTreeSet;
use std::io::Write;

const T0: i64 = 1_717_236_000_000_000;

fn detector() -> Detector {
    let rules = RuleSet::builtin().unwrap_or_else(|e| panic!("{e}"));
    Detector::new(&rules, DetectorConfig::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn run(det: &mut Detector, log: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    det.process_reader(std::io::BufReader::new(log), "audit.log", |f| {
        out.push(f.clone());
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn audit_log_with_bad_lines_end_to_end() {
    let mut log = Vec::new();
    let gen = Generator::new(SimConfig { seed: 3, background_events: 20_000, stories: 1, start_us: T0, rate: 100 });
    for (i, line) in gen.enumerate() {
        log.extend_from_slice(line.as_bytes());
        log.push(b'\n');
        match i {
            10 => log.extend_from_slice(b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"verb\":\n"),
            20 => log.extend_from_slice(b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1beta1\",\"stage\":\"ResponseComplete\",\"verb\":\"get\",\"user\":{}}\n"),
            30 => log.extend_from_slice(b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"stage\":\"ResponseComplete\",\"user\":{}}\n"),
            40 => {
                log.extend_from_slice(b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"requestObject\":\"");
                log.extend(std::iter::repeat_n(b'A', palisade_detect::audit::DEFAULT_MAX_EVENT_BYTES + 1));
                log.extend_from_slice(b"\"}\n");
            }
            50 => log.extend_from_slice(b"\xff\xfe\x00garbage\n\n   \n"),
            _ => {}
        }
    }
    log.extend_from_slice(b"{\"kind\":\"Event\""); // truncated last line, no newline
    let mut det = detector();
    let out = run(&mut det, &log);
    let st = det.stats();
    assert_eq!(st.ingest.malformed, 2, "{:?}", st.ingest);
    assert_eq!(st.ingest.unknown_version, 1);
    assert_eq!(st.ingest.missing_field, 1);
    assert_eq!(st.ingest.too_large, 1);
    assert_eq!(st.ingest.not_utf8, 1);
    assert!(st.ingest.samples.iter().any(|s| s.starts_with("audit.log:")), "{:?}", st.ingest.samples);
    let alerts: BTreeSet<String> = out
        .iter()
        .filter_map(|f| match f {
            Finding::Alert(a) => Some(a.rule.id.clone()),
            _ => None,
        })
        .collect();
    for step in attack_story(3, T0, 0) {
        for r in step.expect {
            assert!(alerts.contains(*r), "{r} ({}) missing from {alerts:?}", step.name);
        }
    }
    // the attacker's actions form one incident spanning the kill chain
    let (ns, sa, _) = attacker(0);
    let who = format!("system:serviceaccount:{ns}:{sa}");
    let inc = out
        .iter()
        .rev()
        .find_map(|f| match f {
            Finding::Incident(i) if i.entity == who => Some(i),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no incident for {who}"));
    assert!(inc.tactics.len() >= 6, "{inc:?}");
    assert_eq!(inc.severity.as_str(), "critical");
    // every alert is about the attack, not the background
    for f in &out {
        if let Finding::Alert(a) = f {
            let e = &a.entities;
            assert!(
                e.user == who
                    || e.user.starts_with("system:node:")
                    || e.user == "system:anonymous"
                    || e.user.ends_with("replicaset-controller"),
                "unexpected alert {} for {}",
                a.rule.id,
                e.user
            );
        }
    }
}

#[test]
fn duplicates_fold_into_one_alert_with_a_count() {
    let mut log = String::new();
    for i in 0..5 {
        let e = EventBuilder::new("create", "pods")
            .user("mallory@corp.example", &["dev"])
            .ip("203.0.113.9")
            .ns("prod")
            .name("api-0")
            .sub("exec")
            .code(101)
            .id(&format!("id-{i}"))
            .at(T0 + i * 60_000_000)
            .build();
        log.push_str(&e);
        log.push('\n');
    }
    // a different pod is a different alert
    log.push_str(
        &EventBuilder::new("create", "pods")
            .user("mallory@corp.example", &["dev"])
            .ns("prod")
            .name("api-1")
            .sub("exec")
            .code(101)
            .at(T0)
            .build(),
    );
    log.push('\n');
    let mut det = detector();
    let out = run(&mut det, log.as_bytes());
    let exec: Vec<_> = out
        .iter()
        .filter_map(|f| match f {
            Finding::Alert(a) if a.rule.id == "PAL-KA-001" => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(exec.len(), 3, "{exec:#?}");
    assert!(!exec[0].update && exec[0].count == 1);
    let upd = exec.iter().find(|a| a.update).unwrap();
    assert_eq!(upd.id, exec[0].id);
    assert_eq!(upd.count, 5);
    assert_eq!(upd.first_seen, "2024-06-01T10:00:00.004321Z");
    assert_eq!(upd.last_seen, "2024-06-01T10:04:00.004321Z");
    assert_eq!(det.stats().folded, 4);
    // after the window, a new alert
    let late = EventBuilder::new("create", "pods")
        .user("mallory@corp.example", &["dev"])
        .ns("prod")
        .name("api-0")
        .sub("exec")
        .code(101)
        .at(T0 + 3_600_000_000)
        .build();
    let out = run(&mut det, format!("{late}\n").as_bytes());
    assert!(out.iter().any(|f| matches!(f, Finding::Alert(a) if a.rule.id == "PAL-KA-001" && !a.update)));
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = Rng::new(77);
    let good: Vec<String> =
        Generator::new(SimConfig { seed: 77, background_events: 300, stories: 1, start_us: T0, rate: 10 }).collect();
    let mut det = detector();
    let mut out = Vec::new();
    for i in 0..20_000u64 {
        let base = good[(i as usize) % good.len()].as_bytes();
        let mut line = base.to_vec();
        match rng.below(4) {
            0 => line.truncate(rng.below(line.len() as u64) as usize),
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let p = rng.below(line.len() as u64) as usize;
                    line[p] = rng.below(256) as u8;
                }
            }
            2 => {
                let a = rng.below(line.len() as u64) as usize;
                let b = rng.below(line.len() as u64) as usize;
                let (a, b) = (a.min(b), a.max(b));
                line.drain(a..b);
            }
            _ => line = (0..rng.below(200)).map(|_| rng.below(256) as u8).collect(),
        }
        det.process_line(&line, &"fuzz", &mut out);
        out.clear();
    }
    let st = det.stats();
    // every non-blank line is either an event or a counted skip
    assert_eq!(st.ingest.events + st.ingest.skipped(), st.ingest.records);
    assert!(st.ingest.records > 19_000 && st.ingest.records <= 20_000, "{:?}", st.ingest);
    assert!(st.ingest.skipped() > 10_000);
}

#[test]
fn follow_mode_resumes_where_it_stopped() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("audit.log");
    let pos = d.path().join("audit.log.pos");
    let exec = |name: &str, t: i64| {
        EventBuilder::new("create", "pods")
            .user("mallory@corp.example", &["dev"])
            .ns("prod")
            .name(name)
            .sub("exec")
            .code(101)
            .at(t)
            .build()
    };
    {
        let mut f = std::fs::File::create(&log).unwrap();
        writeln!(f, "{}", exec("a", T0)).unwrap();
        writeln!(f, "{}", exec("b", T0 + 1)).unwrap();
    }
    let pods = |out: &[Finding]| -> Vec<String> {
        out.iter()
            .filter_map(|f| match f {
                Finding::Alert(a) if !a.update => Some(a.entities.pod.clone()),
                _ => None,
            })
            .collect()
    };
    let mut out = Vec::new();
    let polls = std::cell::Cell::new(0);
    let stop = || {
        polls.set(polls.get() + 1);
        polls.get() >= 2
    };
    let mut det = detector();
    det.follow(&log, Some(&pos), false, std::time::Duration::from_millis(10), &stop, |f| {
        out.push(f.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(pods(&out), vec!["a", "b"]);
    // while stopped: one more line, then rotation, then a line in the new file
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        writeln!(f, "{}", exec("c", T0 + 2)).unwrap();
    }
    std::fs::rename(&log, d.path().join("audit-2024-06-01T10-00-00.000.log")).unwrap();
    std::fs::write(&log, format!("{}\n", exec("d", T0 + 3))).unwrap();
    let mut out = Vec::new();
    polls.set(0);
    let mut det = detector();
    let r = det
        .follow(&log, Some(&pos), false, std::time::Duration::from_millis(10), &stop, |f| {
            out.push(f.clone());
            Ok(())
        })
        .unwrap();
    assert!(matches!(r, palisade_detect::follow::Resume::FromRotated(_)), "{r:?}");
    assert_eq!(pods(&out), vec!["c", "d"], "nothing lost, nothing repeated");
}

/// Issue 21 item 16: a 6 MiB event (a big object with `<` logged as `\u003c`, as kube-apiserver
/// writes it) is evaluated, from a file and when following.
#[test]
fn six_mib_event_with_escapes_is_evaluated() {
    let filler = "\\u003cscript\\u003e".repeat((7 << 20) / 20);
    let line = format!(
        concat!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"big-1","stage":"ResponseComplete","#,
            r#""requestURI":"/api/v1/namespaces/prod/pods/web-0/exec?command=sh","verb":"create","#,
            r#""user":{{"username":"mallory","groups":["system:authenticated"]}},"sourceIPs":["10.0.0.9"],"#,
            r#""objectRef":{{"resource":"pods","namespace":"prod","name":"web-0","apiVersion":"v1","subresource":"exec"}},"#,
            r#""responseStatus":{{"metadata":{{}},"code":101}},"requestObject":{{"note":"{}"}},"#,
            r#""requestReceivedTimestamp":"2026-01-01T00:00:00.000000Z","stageTimestamp":"2026-01-01T00:00:00.100000Z"}}"#
        ),
        filler
    );
    assert!(line.len() > 6 << 20 && line.len() < 7 << 20, "{}", line.len());
    let mut log = line.clone().into_bytes();
    log.push(b'\n');
    let mut det = detector();
    let out = run(&mut det, &log);
    assert_eq!(det.stats().ingest.too_large, 0);
    assert_eq!(det.stats().ingest.events, 1);
    assert!(out.iter().any(|f| matches!(f, Finding::Alert(a) if a.rule.id == "PAL-KA-001")), "exec alert");
    // following
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("audit.log");
    std::fs::write(&p, &log).unwrap();
    let mut det = detector();
    let mut got = Vec::new();
    let polls = std::cell::Cell::new(0);
    let stop = || {
        polls.set(polls.get() + 1);
        polls.get() > 1
    };
    det.follow(&p, None, false, std::time::Duration::from_millis(1), &stop, |f| {
        got.push(f.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(det.stats().ingest.too_large, 0);
    assert!(got.iter().any(|f| matches!(f, Finding::Alert(a) if a.rule.id == "PAL-KA-001")));
}

/// Issue 21 item 15: rotated files compressed while stopped are read (`.gz`), and one that is
/// damaged is counted as a gap in the stats.
#[test]
fn follow_reads_compressed_rotations_and_counts_gaps() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("audit.log");
    let pos = d.path().join("audit.log.pos");
    let exec = |name: &str, t: i64| {
        EventBuilder::new("create", "pods")
            .user("mallory@corp.example", &["dev"])
            .ns("prod")
            .name(name)
            .sub("exec")
            .code(101)
            .at(t)
            .build()
    };
    let add = |name: &str, t: i64| {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        writeln!(f, "{}", exec(name, t)).unwrap();
    };
    // logrotate `compress`: the rotated file is replaced by its gzip (mtime kept)
    let gzip = |from: &std::path::Path, to: &std::path::Path| {
        let data = std::fs::read(from).unwrap();
        let mtime = std::fs::metadata(from).unwrap().modified().unwrap();
        let mut e = flate2::write::GzEncoder::new(std::fs::File::create(to).unwrap(), flate2::Compression::fast());
        e.write_all(&data).unwrap();
        e.finish().unwrap();
        std::fs::File::options().write(true).open(to).unwrap().set_modified(mtime).unwrap();
        std::fs::remove_file(from).unwrap();
    };
    let pods = |out: &[Finding]| -> Vec<String> {
        out.iter()
            .filter_map(|f| match f {
                Finding::Alert(a) if !a.update => Some(a.entities.pod.clone()),
                _ => None,
            })
            .collect()
    };
    let run = |det: &mut Detector, out: &mut Vec<Finding>| {
        let polls = std::cell::Cell::new(0);
        let stop = || {
            polls.set(polls.get() + 1);
            polls.get() >= 2
        };
        det.follow(&log, Some(&pos), false, std::time::Duration::from_millis(10), &stop, |f| {
            out.push(f.clone());
            Ok(())
        })
        .unwrap()
    };
    add("a", T0);
    add("b", T0 + 1);
    let mut out = Vec::new();
    run(&mut detector(), &mut out);
    assert_eq!(pods(&out), vec!["a", "b"]);
    // while stopped: "c", rotated and compressed; "d", rotated, compressed and damaged; "e"
    add("c", T0 + 2);
    let (r1, r1gz, r2gz) =
        (d.path().join("audit.log.1"), d.path().join("audit.log.1.gz"), d.path().join("audit.log.2.gz"));
    std::fs::rename(&log, &r1).unwrap();
    gzip(&r1, &r1gz);
    std::thread::sleep(std::time::Duration::from_millis(20));
    add("d", T0 + 3);
    std::fs::rename(&r1gz, &r2gz).unwrap();
    std::fs::rename(&log, &r1).unwrap();
    gzip(&r1, &r1gz);
    let bytes = std::fs::read(&r1gz).unwrap();
    std::fs::write(&r1gz, &bytes[..12]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    add("e", T0 + 4);
    let mut out = Vec::new();
    let mut det = detector();
    let r = run(&mut det, &mut out);
    assert_eq!(r, palisade_detect::follow::Resume::FromRotated(r2gz));
    assert_eq!(pods(&out), vec!["c", "e"], "c read from the .gz; d lost in the damaged one");
    let st = det.stats();
    assert_eq!((st.ingest.follow_gaps, st.ingest.follow_possible_duplicates), (1, 0));
    assert!(
        st.ingest.samples.iter().any(|s| s.contains("audit.log.1.gz") && s.contains("damaged")),
        "{:?}",
        st.ingest.samples
    );
}
