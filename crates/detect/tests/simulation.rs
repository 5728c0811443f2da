//! The built-in rules against the simulated attack story and benign background traffic.

#![allow(clippy::unwrap_used, clippy::panic)]

use palisade_detect::audit::parse_event;
use palisade_detect::engine::{Engine, EngineConfig};
use palisade_detect::event::Event;
use palisade_detect::rules::{RuleSet, Source};
use palisade_detect::simulate::{attack_story, Background, Generator, SimConfig};
use std::collections::{BTreeMap, BTreeSet};

const T0: i64 = 1_717_236_000_000_000;

fn engine() -> Engine {
    let rs = RuleSet::builtin().unwrap_or_else(|e| panic!("{e}"));
    Engine::new(&rs, EngineConfig { cluster: "sim".into(), ..EngineConfig::default() })
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_attack_step_is_detected_and_every_audit_rule_is_exercised() {
    for k in [0usize, 3] {
        let mut eng = engine();
        let mut covered = BTreeSet::new();
        for step in attack_story(7, T0, k) {
            let mut alerts = Vec::new();
            for e in &step.events {
                let ev = parse_event(e).unwrap_or_else(|err| panic!("{}: {err}: {e}", step.name));
                eng.process(&Event::Audit(ev), &mut alerts);
            }
            let fired: BTreeSet<String> = alerts.iter().map(|a| a.rule.id.clone()).collect();
            for r in step.expect {
                assert!(fired.contains(*r), "story {k}, step {:?}: {r} did not fire; fired: {fired:?}", step.name);
            }
            covered.extend(fired);
        }
        let rs = RuleSet::builtin().unwrap_or_else(|e| panic!("{e}"));
        let missing: Vec<&str> = rs
            .rules()
            .iter()
            .filter(|r| r.source == Source::K8sAudit && r.enabled && !covered.contains(&r.id))
            .map(|r| r.id.as_str())
            .collect();
        assert!(missing.is_empty(), "rules no step exercises: {missing:?}");
    }
}

#[test]
fn benign_background_raises_nothing() {
    for (seed, rate, n) in [(1u64, 200u32, 60_000u32), (2, 3_000, 120_000)] {
        let mut eng = engine();
        let mut bg = Background::new(seed, T0, rate);
        let mut alerts = Vec::new();
        let mut by_rule: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for _ in 0..n {
            let (_, line) = bg.next_event();
            let ev = parse_event(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            alerts.clear();
            eng.process(&Event::Audit(ev), &mut alerts);
            for a in &alerts {
                let e = by_rule.entry(a.rule.id.clone()).or_insert((0, line.clone()));
                e.0 += 1;
            }
        }
        assert!(by_rule.is_empty(), "seed {seed} rate {rate}: false positives: {by_rule:#?}");
        let st = eng.stats();
        assert_eq!(st.cel_errors, 0, "{st:?}");
    }
}

#[test]
fn generator_mixes_stories_into_background() {
    let cfg = SimConfig { seed: 9, background_events: 30_000, stories: 2, start_us: T0, rate: 500 };
    let mut g = Generator::new(cfg);
    let mut last = i64::MIN;
    let mut n = 0;
    for line in g.by_ref() {
        let ev = parse_event(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(ev.time_us + 100_000 >= last, "time order");
        last = last.max(ev.time_us);
        n += 1;
    }
    assert!(g.malicious > 100, "{}", g.malicious);
    assert_eq!(n, 30_000 + g.malicious);
    // deterministic
    let a: Vec<String> =
        Generator::new(SimConfig { seed: 9, background_events: 500, stories: 1, start_us: T0, rate: 50 }).collect();
    let b: Vec<String> =
        Generator::new(SimConfig { seed: 9, background_events: 500, stories: 1, start_us: T0, rate: 50 }).collect();
    assert_eq!(a, b);
}
