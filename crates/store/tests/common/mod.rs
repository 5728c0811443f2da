//! Test harness: every store test runs on SQLite (a tempdir) and on PostgreSQL when
//! `PALISADE_TEST_DATABASE_URL` is set, each test in its own fresh schema. A set but unreachable
//! URL fails the PostgreSQL tests.
#![allow(clippy::unwrap_used, clippy::panic, dead_code)]

use palisade_store::*;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A store with a settable clock.
pub struct Harness {
    pub store: Store,
    pub clock: Arc<AtomicI64>,
    pub config: StoreConfig,
    /// A raw connection URL to the same database (for inspecting rows).
    pub raw_url: String,
    pub dir: Option<tempfile::TempDir>,
}

/// 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600;
pub const DAY: i64 = 86_400;

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Harness {
    pub fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    pub fn set_now(&self, t: i64) {
        self.clock.store(t, Ordering::SeqCst);
    }

    pub fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn config_for(location: Location, clock: &Arc<AtomicI64>) -> StoreConfig {
        let mut c = StoreConfig::new(location);
        let k = clock.clone();
        c.clock = Arc::new(move || k.load(Ordering::SeqCst));
        c.retry = RetryPolicy {
            initial: Duration::from_millis(20),
            max_delay: Duration::from_millis(500),
            max_elapsed: Duration::from_secs(30),
        };
        c
    }

    pub async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicI64::new(T0));
        let data = dir.path().join("data");
        let config = Self::config_for(Location::DataDir(data.clone()), &clock);
        let store = Store::open(config.clone()).await.unwrap();
        Harness {
            store,
            clock,
            config,
            raw_url: format!("sqlite://{}?mode=rw", data.join("palisade.db").display()),
            dir: Some(dir),
        }
    }

    /// `None` when `PALISADE_TEST_DATABASE_URL` is unset; panics when it is set but unusable.
    pub async fn postgres() -> Option<Harness> {
        let url = match std::env::var("PALISADE_TEST_DATABASE_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                eprintln!("PALISADE_TEST_DATABASE_URL unset: PostgreSQL arm skipped");
                return None;
            }
        };
        let url = fresh_schema(&url).await;
        let clock = Arc::new(AtomicI64::new(T0));
        let config = Self::config_for(Location::Postgres(url.clone()), &clock);
        let store = Store::open(config.clone()).await.unwrap_or_else(|e| panic!("open PostgreSQL store: {e}"));
        Some(Harness { store, clock, config, raw_url: url, dir: None })
    }

    /// Reopen the same database (a restart).
    pub async fn reopen(&self) -> Store {
        Store::open(self.config.clone()).await.unwrap()
    }

    /// A raw pool on the same database.
    pub async fn raw(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new().max_connections(2).connect(&self.raw_url).await.unwrap()
    }
}

/// Create a schema of its own for one test; returns a URL whose search_path selects it.
pub async fn fresh_schema(url: &str) -> String {
    sqlx::any::install_default_drivers();
    use sqlx::Connection;
    // One direct connection: a refused connection fails at once (a pool would keep retrying).
    let mut admin = tokio::time::timeout(Duration::from_secs(20), sqlx::AnyConnection::connect(url))
        .await
        .unwrap_or_else(|_| panic!("PALISADE_TEST_DATABASE_URL is set but PostgreSQL did not answer in 20 s"))
        .unwrap_or_else(|e| panic!("PALISADE_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}"));
    let schema = format!(
        "t{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.unwrap();
    admin.close().await.unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options[search_path]={schema}")
}

/// Run a test body on both backends.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::common::Harness::sqlite().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(h) = super::common::Harness::postgres().await {
                    super::$name(h).await
                }
            }
        }
    };
}

pub fn digest(n: u64) -> String {
    format!("sha256:{:064x}", n)
}

pub fn pkg(name: &str, version: &str) -> PackageRef {
    PackageRef {
        name: name.into(),
        version: version.into(),
        kind: "deb".into(),
        purl: format!("pkg:deb/debian/{name}@{version}"),
    }
}

pub fn finding(id: &str, package: &str, sev: Severity) -> FindingInput {
    FindingInput {
        vuln_id: id.into(),
        ids: vec![id.into(), format!("DEBIAN-{id}")],
        package: pkg(package, "1.0"),
        severity: sev,
        fixed_version: Some("1.1".into()),
        kev: false,
        epss: Some(0.01),
        doc: serde_json::json!({"id": id, "package": package, "summary": "x".repeat(100)}),
    }
}

pub fn sbom(digest: &str, packages: usize) -> palisade_model::Sbom {
    let mut s = palisade_model::Sbom::default();
    s.target.name = format!("registry.test/app@{digest}");
    s.target.digest = digest.to_string();
    s.os = Some(palisade_model::OsInfo { family: "debian".into(), version: "12".into(), ..Default::default() });
    for i in 0..packages {
        s.packages.push(
            palisade_model::PackageBuilder::new(palisade_model::PackageType::Deb, format!("pkg{i}"), "1.0-1")
                .namespace("debian")
                .found_in("/var/lib/dpkg/status")
                .build(),
        );
    }
    s
}

pub fn upload(d: &str, findings: Vec<FindingInput>) -> ImageUpload {
    ImageUpload {
        digest: d.to_string(),
        repo: Some("registry.test/app".into()),
        tags: vec!["v1".into()],
        sbom: Some(sbom(d, 5)),
        findings: Some(findings),
        ..Default::default()
    }
}

pub async fn open_findings(s: &Store, d: &str) -> Vec<Finding> {
    s.list_findings(&FindingQuery { image_digest: Some(d.into()), limit: Some(1000), ..Default::default() })
        .await
        .unwrap()
        .items
}
