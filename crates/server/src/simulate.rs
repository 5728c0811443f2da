//! `palisade simulate fleet`: realistic traffic for a server, for tests and benchmarks.
//!
//! For each of `clusters` clusters it sends an inventory (nodes, `workloads` Deployments whose
//! containers run images of a shared pool), then uploads `images` image SBOMs of `packages`
//! packages each with their findings (a few percent of packages vulnerable, as in real images),
//! `alerts` alerts per cluster and one heartbeat per node; then, optionally, times `queries`
//! list and filter requests. Everything derives from `seed` (the same seed, the same traffic).
//! Figures come back in a [`FleetReport`].

use serde::Serialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What to send.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Server base URL.
    pub server: String,
    /// Operator token.
    pub token: String,
    /// Clusters.
    pub clusters: usize,
    /// Workloads per cluster.
    pub workloads: usize,
    /// Nodes per cluster.
    pub nodes: usize,
    /// Distinct images (shared by the clusters).
    pub images: usize,
    /// Packages per image SBOM.
    pub packages: usize,
    /// Alerts per cluster.
    pub alerts: usize,
    /// Images per upload request.
    pub batch: usize,
    /// Parallel senders.
    pub concurrency: usize,
    /// Timed list/filter requests after the ingest (0: none).
    pub queries: usize,
    /// Percent of packages with a finding (real images: a few percent; 33 gives the issue's
    /// 1 M findings at 10,000 images of 300 packages).
    pub vulnerable_percent: usize,
    /// Seed.
    pub seed: u64,
}

/// Latency figures of one kind of request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Requests.
    pub requests: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// What was sent and how fast.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetReport {
    /// Inventory objects sent.
    pub objects: usize,
    /// Images uploaded.
    pub images: usize,
    /// Findings uploaded with them.
    pub findings: usize,
    /// Seconds spent uploading images.
    pub image_seconds: f64,
    /// Images per second.
    pub images_per_second: f64,
    /// Alerts sent.
    pub alerts: usize,
    /// Heartbeats sent.
    pub heartbeats: usize,
    /// Posture findings sent (each workload fails about two of twelve workload checks of the catalogue).
    pub posture_findings: usize,
    /// Seconds for everything.
    pub total_seconds: f64,
    /// Image upload latency.
    pub upload: Latency,
    /// List and filter latency (when `queries` > 0).
    pub queries: Latency,
}

/// Why the simulation stopped.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct FleetError {
    what: String,
    reason: String,
}

/// splitmix64: a small, good, seedable generator (no dependency for test traffic).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ECOSYSTEMS: [(&str, &str); 5] = [
    ("deb", "pkg:deb/debian"),
    ("npm", "pkg:npm"),
    ("pypi", "pkg:pypi"),
    ("golang", "pkg:golang"),
    ("maven", "pkg:maven"),
];
const SEVERITIES: [&str; 4] = ["LOW", "MEDIUM", "HIGH", "CRITICAL"];

fn digest_of(i: usize, seed: u64) -> String {
    use sha2::Digest as _;
    format!("sha256:{:x}", sha2::Sha256::digest(format!("palisade-fleet-{seed}-{i}").as_bytes()))
}

/// One image upload: SBOM and findings.
fn image(i: usize, o: &FleetOptions) -> (Value, usize) {
    // each image from its own stream: the same seed gives the same images whichever sender
    // builds them
    let mut rng = Rng(o.seed ^ (i as u64).wrapping_add(1).wrapping_mul(0xd6e8_feb8_6659_fd93));
    let rng = &mut rng;
    let digest = digest_of(i, o.seed);
    let mut packages = Vec::with_capacity(o.packages);
    let mut findings = Vec::new();
    for p in 0..o.packages {
        // packages repeat across images (a shared base), as real fleets do
        let shared = rng.below(4) != 0;
        let n = if shared { rng.below(2000) } else { 2000 + rng.below(1_000_000) };
        let (kind, purl) = ECOSYSTEMS[n % ECOSYSTEMS.len()];
        let name = format!("lib{n}");
        let version = format!("{}.{}.{}", n % 7, n % 13, p % 5);
        packages
            .push(json!({"name": name, "version": version, "type": kind, "purl": format!("{purl}/{name}@{version}"),
                             "found_in": format!("/usr/lib/{kind}/{name}")}));
        if rng.below(100) < o.vulnerable_percent {
            let cve = format!("CVE-20{}-{}", 18 + rng.below(8), 10_000 + n % 50_000);
            findings.push(json!({
                "vuln_id": cve, "ids": [cve.clone(), format!("GHSA-{:04x}-{:04x}", n % 65_536, p)],
                "package": {"name": name, "version": version, "type": kind, "purl": format!("{purl}/{name}@{version}")},
                "severity": SEVERITIES[rng.below(4)], "fixed_version": format!("{}.{}.{}", n % 7, n % 13 + 1, 0),
                "kev": rng.below(50) == 0, "epss": (rng.below(1000) as f64) / 1000.0,
                "doc": {"description": format!("{cve} in {name}")}
            }));
        }
    }
    let n = findings.len();
    let up = json!({
        "digest": digest, "repo": format!("registry.example/team{}/app{}", i % 40, i), "tags": [format!("1.{}", i % 30)],
        "sbom": {"target": {"name": format!("registry.example/team{}/app{i}:1.{}", i % 40, i % 30), "digest": digest},
                 "packages": packages},
        "findings": findings,
    });
    (up, n)
}

fn percentiles(mut v: Vec<f64>) -> Latency {
    if v.is_empty() {
        return Latency::default();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    Latency { requests: v.len(), p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1.0) }
}

struct Sender {
    client: palisade_net::Client,
    base: String,
    token: String,
}

impl Sender {
    fn post(&self, path: &str, body: &Value) -> Result<f64, FleetError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let url = format!("{}{path}", self.base);
        let t = Instant::now();
        let req = palisade_net::Request::post(url.as_str(), &bytes)
            .header("content-type", "application/json")
            .credential(Some(format!("Bearer {}", self.token)));
        let resp = self
            .client
            .send_with_retry(&req, &palisade_net::RetryPolicy::default())
            .map_err(|e| FleetError { what: url.clone(), reason: e.to_string() })?;
        let status = resp.status();
        let ok = resp.is_success();
        let answer = resp.read_to_vec(64 << 20).unwrap_or_default();
        if !ok {
            return Err(FleetError {
                what: url,
                reason: format!("HTTP {status}: {}", String::from_utf8_lossy(&answer[..answer.len().min(300)])),
            });
        }
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    }

    fn get(&self, path: &str) -> Result<f64, FleetError> {
        let url = format!("{}{path}", self.base);
        let t = Instant::now();
        let req = palisade_net::Request::get(url.as_str()).credential(Some(format!("Bearer {}", self.token)));
        let resp = self.client.send(req).map_err(|e| FleetError { what: url.clone(), reason: e.to_string() })?;
        let status = resp.status();
        let _ = resp.read_to_vec(64 << 20);
        if !(200..300).contains(&status) {
            return Err(FleetError { what: url, reason: format!("HTTP {status}") });
        }
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    }
}

/// Send the fleet's traffic.
pub fn run(o: &FleetOptions) -> Result<FleetReport, FleetError> {
    let started = Instant::now();
    let sender = Sender {
        client: palisade_net::Client::new(palisade_net::ClientOptions {
            deadline: Duration::from_secs(300),
            ..palisade_net::ClientOptions::default()
        }),
        base: o.server.trim_end_matches('/').to_string(),
        token: o.token.clone(),
    };
    let mut report = FleetReport::default();
    let mut rng = Rng(o.seed);
    // inventories
    for c in 0..o.clusters {
        let cluster = format!("cluster-{c:03}");
        let nodes: Vec<Value> = (0..o.nodes)
            .map(|n| json!({"name": format!("{cluster}-node-{n}"), "kubelet_version": "v1.30.4"}))
            .collect();
        let objects: Vec<Value> = (0..o.workloads)
            .map(|w| {
                let img = rng.below(o.images.max(1));
                json!({"kind": "Deployment", "namespace": format!("team{}", w % 40), "name": format!("app{w}"),
                       "images": [{"container": "app", "image_ref": format!("registry.example/team{}/app{img}:1.{}", img % 40, img % 30),
                                   "digest": digest_of(img, o.seed)}]})
            })
            .collect();
        report.objects += objects.len();
        sender.post(
            "/api/v1/inventory",
            &json!({"cluster": cluster, "k8s_version": "v1.30.4", "full": true, "nodes": nodes, "objects": objects}),
        )?;
        // real workload checks of the catalogue, with their severity and remediation
        let checks: Vec<&palisade_posture::Check> =
            palisade_posture::catalogue().iter().filter(|c| c.category == "workload").take(12).collect();
        let mut findings = Vec::with_capacity(o.workloads * 2);
        for w in 0..o.workloads {
            for _ in 0..2 {
                let Some(c) = checks.get(rng.below(checks.len().max(1))) else { break };
                findings.push(json!({"check_id": c.id, "severity": c.severity.as_str(),
                    "object": {"kind": "Deployment", "namespace": format!("team{}", w % 40), "name": format!("app{w}")},
                    "doc": {"message": format!("container app: {}", c.title), "remediation": c.remediation}}));
            }
        }
        // a workload drawing the same check twice is one finding
        findings.sort_by_key(|f| (f["object"]["name"].to_string(), f["check_id"].to_string()));
        findings.dedup_by(|a, b| a["object"] == b["object"] && a["check_id"] == b["check_id"]);
        report.posture_findings += findings.len();
        sender.post("/api/v1/posture", &json!({"cluster": cluster, "full": true, "findings": findings}))?;
    }
    // images, in parallel batches
    let t = Instant::now();
    let batches: Vec<(usize, usize)> =
        (0..o.images).step_by(o.batch.max(1)).map(|s| (s, (s + o.batch.max(1)).min(o.images))).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<(Vec<f64>, usize), FleetError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..o.concurrency.max(1))
            .map(|_| {
                let (batches, next, sender) = (&batches, &next, &sender);
                scope.spawn(move || {
                    let mut lat = Vec::new();
                    let mut findings = 0;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&(s, e)) = batches.get(i) else { break };
                        let mut imgs = Vec::with_capacity(e - s);
                        for k in s..e {
                            let (up, n) = image(k, o);
                            findings += n;
                            imgs.push(up);
                        }
                        lat.push(sender.post("/api/v1/images", &json!({"images": imgs}))?);
                    }
                    Ok((lat, findings))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(FleetError { what: "sender".into(), reason: "panicked".into() })))
            .collect()
    });
    let mut lat = Vec::new();
    for r in results {
        let (l, f) = r?;
        lat.extend(l);
        report.findings += f;
    }
    report.images = o.images;
    report.image_seconds = t.elapsed().as_secs_f64();
    report.images_per_second = o.images as f64 / report.image_seconds.max(1e-9);
    report.upload = percentiles(lat);
    // alerts and heartbeats
    for c in 0..o.clusters {
        let cluster = format!("cluster-{c:03}");
        for chunk in (0..o.alerts).collect::<Vec<_>>().chunks(1000) {
            let alerts: Vec<Value> = chunk
                .iter()
                .map(|a| {
                    json!({"key": format!("{cluster}-alert-{a}-{}", o.seed), "cluster": cluster,
                           "rule": format!("PAL-RT-{:03}", 1 + a % 40), "severity": SEVERITIES[a % 4],
                           "at": 1_765_000_000 + *a as i64, "namespace": format!("team{}", a % 40),
                           "pod": format!("app{}-7d4b9", a % o.workloads.max(1)), "node": format!("{cluster}-node-{}", a % o.nodes.max(1)),
                           "doc": {"message": "shell spawned in container"}})
                })
                .collect();
            report.alerts += alerts.len();
            sender.post("/api/v1/alerts", &json!({"alerts": alerts}))?;
        }
        let beats: Vec<Value> = (0..o.nodes)
            .map(|n| {
                json!({"cluster": cluster, "component": "sensor", "instance": format!("{cluster}-node-{n}"),
                            "node": format!("{cluster}-node-{n}"), "version": env!("CARGO_PKG_VERSION")})
            })
            .collect();
        if !beats.is_empty() {
            report.heartbeats += beats.len();
            sender.post("/api/v1/heartbeats", &json!({"heartbeats": beats}))?;
        }
    }
    // list and filter latency
    let mut q = Vec::with_capacity(o.queries);
    for i in 0..o.queries {
        let path = match i % 6 {
            0 => "/api/v1/images?limit=100".to_string(),
            1 => "/api/v1/findings?min_severity=high&limit=100".to_string(),
            2 => format!("/api/v1/workloads?cluster=cluster-{:03}&limit=100", i % o.clusters.max(1)),
            3 => "/api/v1/findings?kev=true&limit=100".to_string(),
            4 => format!("/api/v1/images/{}/findings", digest_of(i % o.images.max(1), o.seed)),
            _ => format!("/api/v1/alerts?cluster=cluster-{:03}&limit=100", i % o.clusters.max(1)),
        };
        q.push(sender.get(&path)?);
    }
    report.queries = percentiles(q);
    report.total_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
