//! Replay benchmark: one million generated audit events (about 1% malicious) through all
//! built-in rules on one core. Prints events/s and peak RSS.
//!
//! `cargo bench -p palisade-detect --bench replay` (env: `REPLAY_EVENTS`, default 1000000).

#![allow(clippy::unwrap_used, clippy::panic)]

use palisade_detect::pipeline::{Detector, DetectorConfig};
use palisade_detect::rules::RuleSet;
use palisade_detect::simulate::{Generator, SimConfig};
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: u64 = std::env::var("REPLAY_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    // ~95 events per story: 1% malicious
    let stories = ((total as f64 * 0.01) / 95.0).round().max(1.0) as usize;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.log");
    let t = Instant::now();
    let mut gen = Generator::new(SimConfig {
        seed: 42,
        background_events: total.saturating_sub(stories as u64 * 95),
        stories,
        start_us: 1_717_236_000_000_000,
        rate: 2_000,
    });
    let mut w = BufWriter::new(std::fs::File::create(&path)?);
    let mut n = 0u64;
    let mut bytes = 0u64;
    for line in gen.by_ref() {
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")?;
        bytes += line.len() as u64 + 1;
        n += 1;
    }
    w.flush()?;
    drop(w);
    let malicious = gen.malicious;
    eprintln!(
        "generated {n} events ({malicious} malicious, {:.2}%), {:.0} MB, in {:.1}s",
        malicious as f64 * 100.0 / n as f64,
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let rules = RuleSet::builtin()?;
    let mut det = Detector::new(&rules, DetectorConfig::default())?;
    let rss_before = peak_rss_kib();
    let file = std::fs::File::open(&path)?;
    let mut alerts = 0u64;
    let mut incidents = 0u64;
    let t = Instant::now();
    det.process_reader(BufReader::with_capacity(1 << 20, file), "audit.log", |f| {
        match f {
            palisade_detect::alert::Finding::Alert(_) => alerts += 1,
            palisade_detect::alert::Finding::Incident(_) => incidents += 1,
        }
        Ok(())
    })?;
    let secs = t.elapsed().as_secs_f64();
    let st = det.stats();
    println!(
        "replay: {} events in {:.3}s = {:.0} events/s ({:.1} MB/s) on one core",
        st.ingest.events,
        secs,
        st.ingest.events as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    println!(
        "rules: {} compiled; index candidates {}, CEL evaluations {} ({:.3}/event), matches {}, alerts raised {}, emitted {} (+{} updates), incidents {}, folded {}, skipped {}",
        det.engine().rule_count(),
        st.engine.candidates,
        st.engine.evaluations,
        st.engine.evaluations as f64 / st.ingest.events.max(1) as f64,
        st.engine.matches,
        st.engine.alerts,
        st.alerts,
        st.alert_updates,
        st.incidents,
        st.folded,
        st.ingest.skipped()
    );
    println!("peak RSS: {:.1} MB (before replay {:.1} MB)", peak_rss_kib() as f64 / 1024.0, rss_before as f64 / 1024.0);
    let _ = (alerts, incidents);
    if std::env::var_os("REPLAY_RULE_STATS").is_some() {
        let mut rs = det.engine().rule_stats();
        rs.sort_by_key(|(_, c)| std::cmp::Reverse(c.evaluations));
        for (id, c) in rs.iter().take(15) {
            println!(
                "  {id}: candidates {} evaluations {} matches {} alerts {}",
                c.candidates, c.evaluations, c.matches, c.alerts
            );
        }
    }
    Ok(())
}
