//! Ingest rate: image SBOMs with findings per second.
//!
//! `cargo run -p palisade-store --example ingest_rate -- LOCATION [IMAGES] [PACKAGES] [FINDINGS] [PER_UPLOAD] [TASKS]`
//! LOCATION is a data directory or a `postgres://` URL (its database is used as is: point it at a
//! throwaway one). Each image is a fresh digest with an SBOM of PACKAGES packages and FINDINGS
//! findings; uploads of PER_UPLOAD images are sent by TASKS concurrent senders.
#![allow(clippy::unwrap_used)]

use palisade_store::*;
use std::time::Instant;

fn arg(i: usize, d: usize) -> usize {
    std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let loc = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: ingest_rate LOCATION ..."))?;
    let (images, packages, nfind, per, tasks) = (arg(2, 1000), arg(3, 300), arg(4, 300), arg(5, 1), arg(6, 4));
    let store = Store::open(StoreConfig::new(Location::parse(&loc)?)).await?;
    let salt = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
    let make = move |n: u64| {
        let d = format!("sha256:{:032x}{:032x}", salt, n);
        let mut sbom = palisade_model::Sbom::default();
        sbom.target.digest = d.clone();
        for i in 0..packages {
            sbom.packages.push(
                palisade_model::PackageBuilder::new(
                    palisade_model::PackageType::Deb,
                    format!("package-{i}"),
                    "1.2.3-4",
                )
                .namespace("debian")
                .arch("amd64")
                .qualifier("distro", "debian-12")
                .found_in("/var/lib/dpkg/status")
                .build(),
            );
        }
        let findings = (0..nfind)
            .map(|i| FindingInput {
                vuln_id: format!("CVE-2024-{:05}", i),
                ids: vec![format!("CVE-2024-{:05}", i), format!("DEBIAN-CVE-2024-{:05}", i)],
                package: PackageRef {
                    name: format!("package-{}", i % packages.max(1)),
                    version: "1.2.3-4".into(),
                    kind: "deb".into(),
                    purl: format!("pkg:deb/debian/package-{}@1.2.3-4?arch=amd64&distro=debian-12", i % packages.max(1)),
                },
                severity: Severity::ALL[i % 6],
                fixed_version: Some("1.2.3-5".into()),
                kev: i % 50 == 0,
                epss: Some((i % 100) as f64 / 100.0),
                doc: serde_json::json!({
                    "id": format!("CVE-2024-{:05}", i), "summary": "A buffer overflow in the parser allows remote attackers to execute code.",
                    "severity_source": "debian", "fixed_versions": ["1.2.3-5"], "remediation": "Upgrade package to 1.2.3-5",
                    "data_sources": ["debian", "nvd"], "found_in": "/var/lib/dpkg/status"
                }),
            })
            .collect();
        ImageUpload {
            digest: d,
            repo: Some("registry.local/bench".into()),
            tags: vec![format!("t{n}")],
            sbom: Some(sbom),
            findings: Some(findings),
            ..Default::default()
        }
    };
    // Build payloads first: the measurement is the store, not the generator.
    let uploads: Vec<Vec<ImageUpload>> = (0..images as u64)
        .collect::<Vec<_>>()
        .chunks(per.max(1))
        .map(|c| c.iter().map(|&n| make(n)).collect())
        .collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(uploads));
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks.max(1) {
        let (s, q) = (store.clone(), queue.clone());
        handles.push(tokio::spawn(async move {
            loop {
                let Some(u) = q.lock().unwrap().pop() else { return Ok::<_, StoreError>(()) };
                s.ingest_images(&u, &format!("bench-{t}")).await?;
            }
        }));
    }
    for h in handles {
        h.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:?}: {images} images × {packages} packages, {nfind} findings, {per}/upload, {tasks} senders: {secs:.2} s, {:.0} SBOMs/s",
        store.backend(),
        images as f64 / secs
    );
    store.close().await;
    Ok(())
}
