//! Matching alone: 10,000 packages against the database built from ../shared/vulndata,
//! on one core. Run with `cargo bench -p palisade-vulndb --bench matching`.
//!
//! The packages are real names from the database's indexes (so every lookup hits) with
//! versions spread below and above the fixes, across every ecosystem present.
#![allow(clippy::panic, clippy::unwrap_used)] // a failed expectation is the point of a test or bench

use palisade_model::{OsInfo, PackageBuilder, PackageType, Sbom};
use palisade_vulndb::db::{self, BuildInput, SourceInfo, VulnDb};
use palisade_vulndb::record::EcoKind;
use std::time::Instant;

// The same allocator as the `palisade` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let shared = std::env::var("PALISADE_SHARED")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").into());
    let t = Instant::now();
    let set = palisade_vulndb::feed::load_dir(&std::path::Path::new(&shared).join("vulndata"))
        .unwrap_or_else(|e| panic!("{e}"));
    let parse = t.elapsed();
    let input = BuildInput {
        advisories: set.advisories,
        kev: set.kev,
        epss: set.epss,
        sources: set
            .sources
            .into_iter()
            .map(|s| SourceInfo { name: s.name, path: s.path, records: s.records, skipped: s.skipped })
            .collect(),
    };
    let t = Instant::now();
    let bytes = db::build(input, 0);
    let build = t.elapsed();
    println!("database from shared feeds: parse {parse:?}, build {build:?}, {} bytes", bytes.len());
    let t = Instant::now();
    let dbh = VulnDb::from_bytes(std::path::Path::new("bench.db"), bytes).unwrap_or_else(|e| panic!("{e}"));
    println!("open: {:?}", t.elapsed());

    // 10,000 packages drawn from the indexes.
    let mut sbom = Sbom {
        os: Some(OsInfo { family: "alpine".into(), version: "3.11.5".into(), ..Default::default() }),
        ..Default::default()
    };
    let ecos = [
        (EcoKind::Alpine, "3.11", PackageType::Apk),
        (EcoKind::PyPI, "", PackageType::Pypi),
        (EcoKind::Go, "", PackageType::Golang),
        (EcoKind::CratesIo, "", PackageType::Cargo),
        (EcoKind::Npm, "", PackageType::Npm),
        (EcoKind::RubyGems, "", PackageType::Gem),
        (EcoKind::Packagist, "", PackageType::Composer),
    ];
    let versions = ["0.1.0", "1.0.0", "1.2.3", "2.0.0", "2.19.1", "3.3.2", "5.3", "1.1.24-r2", "1.1.1d-r2", "10.0.0"];
    let mut names: Vec<(PackageType, String)> = Vec::new();
    for (eco, rel, kind) in ecos {
        let ix = dbh.eco(eco, rel).unwrap_or_else(|e| panic!("{e}"));
        let mut keys: Vec<&String> = ix.keys().collect();
        keys.sort();
        names.extend(keys.into_iter().map(|k| (kind, k.clone())));
    }
    let mut i = 0usize;
    while sbom.packages.len() < 10_000 {
        let (kind, name) = &names[i % names.len()];
        let v = versions[(i / names.len() + i) % versions.len()];
        sbom.packages.push(PackageBuilder::new(*kind, name.clone(), v).found_in("/bench").build());
        i += 1;
    }
    report("worst case: every package has advisories", &dbh, &sbom, names.len());
    // A realistic mix: one package in ten has advisories (real images have most packages clean).
    let mut mixed = sbom.clone();
    for (i, p) in mixed.packages.iter_mut().enumerate() {
        if i % 10 != 0 {
            *p =
                PackageBuilder::new(p.kind, format!("clean-package-{i}"), p.version.clone()).found_in("/bench").build();
        }
    }
    report("realistic: one package in ten has advisories", &dbh, &mixed, names.len());
}

fn report(what: &str, dbh: &VulnDb, sbom: &Sbom, distinct: usize) {
    let mut times = Vec::new();
    let mut findings = 0;
    for _ in 0..15 {
        let t = Instant::now();
        let r = palisade_vulndb::matcher::match_sbom(dbh, sbom).unwrap_or_else(|e| panic!("{e}"));
        times.push(t.elapsed());
        findings = r.findings.len();
    }
    times.sort();
    println!(
        "match 10,000 packages, {what} ({distinct} distinct names drawn): median {:?}, min {:?}, max {:?}; {findings} findings",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}
