//! The records the store takes in and gives back.
//!
//! Inputs (`*Input`, `*Upload`, `*Snapshot`) are what senders provide; records are what queries
//! return. Records serialise to the JSON the API serves (timestamps are Unix seconds, UTC).

use crate::error::{Result, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Unix seconds, UTC.
pub type Timestamp = i64;

/// A severity rating, ordered (`Unknown` < `Negligible` < ... < `Critical`). Stored as its rank.
/// Serialized upper case; read in any case, with the usual aliases (`moderate`, `important`,
/// `info`), and an unknown word is an error (a typo must not file a finding as `UNKNOWN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Not rated.
    #[default]
    Unknown,
    /// Negligible / informational.
    Negligible,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 6] =
        [Severity::Unknown, Severity::Negligible, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    /// The stored rank (0 = unknown ... 5 = critical).
    pub fn rank(self) -> i64 {
        self as i64
    }

    /// From a stored rank (out-of-range ranks are `Unknown`).
    pub fn from_rank(r: i64) -> Severity {
        Severity::ALL.get(usize::try_from(r).unwrap_or(0)).copied().unwrap_or_default()
    }

    /// Parse the usual spellings (`critical`, `HIGH`, `moderate`, `important`, `info`, ...);
    /// `unknown` is [`Severity::Unknown`], any other word is `None` (never a silent `Unknown`).
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "negligible" | "unimportant" | "info" | "informational" | "none" => Severity::Negligible,
            "unknown" => Severity::Unknown,
            _ => return None,
        })
    }

    /// Upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Negligible => "NEGLIGIBLE",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Severity::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown severity {s:?}: expected critical, high, medium, low, negligible or unknown"
            ))
        })
    }
}

impl From<palisade_vulndb::record::Severity> for Severity {
    fn from(s: palisade_vulndb::record::Severity) -> Self {
        use palisade_vulndb::record::Severity as V;
        match s {
            V::Unknown => Severity::Unknown,
            V::Negligible => Severity::Negligible,
            V::Low => Severity::Low,
            V::Medium => Severity::Medium,
            V::High => Severity::High,
            V::Critical => Severity::Critical,
        }
    }
}

/// A page of a keyset-paged list.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The items, in the requested order.
    pub items: Vec<T>,
    /// Pass this as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Ascending.
    Asc,
    /// Descending (the default: newest / most severe first).
    #[default]
    Desc,
}

// ---------------------------------------------------------------------------------------------
// Images, SBOMs, findings

/// The package a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRef {
    /// Package name as its ecosystem spells it.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// PURL type (`deb`, `npm`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Package URL.
    pub purl: String,
}

/// One vulnerability finding as a matcher produced it, for [`Store::ingest_images`] and
/// [`Store::apply_reassessment`](crate::Store::apply_reassessment).
///
/// Identity within an image is (package type, name, version, `vuln_id`); a finding whose
/// preferred ID changes but shares an alias with an open one (a GHSA that later gets a CVE)
/// continues that finding rather than resolving it and opening another.
///
/// [`Store::ingest_images`]: crate::Store::ingest_images
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingInput {
    /// The preferred ID (a CVE when there is one).
    pub vuln_id: String,
    /// Every ID the vulnerability is known by (CVE, GHSA, distro IDs), including `vuln_id`.
    pub ids: Vec<String>,
    /// The package.
    pub package: PackageRef,
    /// Severity.
    pub severity: Severity,
    /// Lowest fixed version, when there is one.
    pub fixed_version: Option<String>,
    /// Listed in CISA KEV.
    pub kev: bool,
    /// EPSS probability (0..1).
    pub epss: Option<f64>,
    /// The whole finding document (the matcher's JSON), kept as is.
    pub doc: Value,
}

impl FindingInput {
    /// From a `palisade-vulndb` finding (the document is the finding's JSON).
    pub fn from_vulndb(f: &palisade_vulndb::matcher::Finding) -> FindingInput {
        let mut ids = f.ids.clone();
        if !ids.contains(&f.id) {
            ids.insert(0, f.id.clone());
        }
        FindingInput {
            vuln_id: f.id.clone(),
            ids,
            package: PackageRef {
                name: f.package.clone(),
                version: f.installed.clone(),
                kind: f.kind.as_str().to_string(),
                purl: f.purl.clone(),
            },
            severity: f.severity.into(),
            fixed_version: f.fixed_versions.first().cloned(),
            kev: f.kev.is_some(),
            epss: f.epss.as_ref().map(|e| f64::from(e.score)),
            doc: serde_json::to_value(f).unwrap_or(Value::Null),
        }
    }
}

/// One image in an upload. The image is identified by its manifest digest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageUpload {
    /// Manifest digest (`sha256:` + 64 hex, or `sha512:` + 128 hex).
    pub digest: String,
    /// Repository (`registry/path`), when known.
    #[serde(default)]
    pub repo: Option<String>,
    /// Tags seen for it in `repo`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// When it was pushed, if the sender knows.
    #[serde(default)]
    pub pushed_at: Option<Timestamp>,
    /// When it was last pulled, if the sender knows.
    #[serde(default)]
    pub pulled_at: Option<Timestamp>,
    /// The SBOM; stored content-addressed by `digest` (replaced only when its content changes).
    #[serde(default)]
    pub sbom: Option<palisade_model::Sbom>,
    /// The complete finding set for the image. `None` leaves stored findings as they are;
    /// `Some(vec![])` means "no findings" and resolves every open one.
    #[serde(default)]
    pub findings: Option<Vec<FindingInput>>,
    /// Extra metadata kept with the image (layers, platform, config digest, ...).
    #[serde(default)]
    pub doc: Option<Value>,
}

/// What one image of an upload changed.
#[derive(Debug, Clone, Serialize)]
pub struct ImageOutcome {
    /// The image.
    pub digest: String,
    /// Whether the image was new to the store.
    pub new_image: bool,
    /// Whether the SBOM was stored or replaced (false when the same content was already there).
    pub sbom_changed: bool,
    /// The change events the finding set produced (empty for an identical re-upload).
    pub events: Vec<ChangeEvent>,
}

/// A stored image.
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    /// Row ID (keyset paging tiebreaker).
    pub id: i64,
    /// Manifest digest.
    pub digest: String,
    /// Repository ('' when unknown).
    pub repo: String,
    /// Tags, as `repo:tag`.
    pub tags: Vec<String>,
    /// First time the store heard of it.
    pub first_seen: Timestamp,
    /// Last time an upload or inventory mentioned it.
    pub last_seen: Timestamp,
    /// Push time where known.
    pub pushed_at: Option<Timestamp>,
    /// Last pull time where known.
    pub pulled_at: Option<Timestamp>,
    /// Whether a live workload runs it.
    pub in_use: bool,
    /// Whether an SBOM is stored.
    pub has_sbom: bool,
    /// Open findings by severity.
    pub open_findings: SeverityCounts,
    /// Extra metadata as uploaded.
    pub doc: Option<Value>,
}

/// A stored SBOM.
#[derive(Debug, Clone)]
pub struct StoredSbom {
    /// The image digest.
    pub digest: String,
    /// sha256 of the SBOM JSON.
    pub content_hash: String,
    /// When it was last stored.
    pub updated_at: Timestamp,
    /// The document.
    pub sbom: palisade_model::Sbom,
}

/// Filters for [`Store::list_images`](crate::Store::list_images).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageQuery {
    /// Exact repository.
    pub repo: Option<String>,
    /// Digest prefix (`sha256:ab`).
    pub digest_prefix: Option<String>,
    /// Only images a live workload runs (true) or none runs (false).
    pub in_use: Option<bool>,
    /// Seen at or after.
    pub seen_since: Option<Timestamp>,
    /// Only images with an open finding of at least this severity.
    pub min_severity: Option<Severity>,
    /// Sort key.
    #[serde(default)]
    pub sort: ImageSort,
    /// Direction.
    #[serde(default)]
    pub order: Order,
    /// Page size (1..=1000; default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// Image sort keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSort {
    /// Last seen (default).
    #[default]
    LastSeen,
    /// First seen.
    FirstSeen,
    /// Repository.
    Repo,
    /// Digest.
    Digest,
}

/// The triage (VEX analysis) state of a finding, CycloneDX `analysis.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageState {
    /// Being investigated.
    InTriage,
    /// Exploitable in this deployment.
    Exploitable,
    /// Not affected (a justification is required).
    NotAffected,
    /// Not a real finding.
    FalsePositive,
    /// Remediated.
    Resolved,
}

impl TriageState {
    /// The CycloneDX spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TriageState::InTriage => "in_triage",
            TriageState::Exploitable => "exploitable",
            TriageState::NotAffected => "not_affected",
            TriageState::FalsePositive => "false_positive",
            TriageState::Resolved => "resolved",
        }
    }

    /// Parse the CycloneDX spelling.
    pub fn parse(s: &str) -> Option<TriageState> {
        Some(match s {
            "in_triage" => TriageState::InTriage,
            "exploitable" => TriageState::Exploitable,
            "not_affected" => TriageState::NotAffected,
            "false_positive" => TriageState::FalsePositive,
            "resolved" => TriageState::Resolved,
            _ => return None,
        })
    }
}

/// CycloneDX `analysis.justification` (why a finding does not affect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Justification {
    /// The vulnerable code is not present.
    CodeNotPresent,
    /// The vulnerable code is not reachable.
    CodeNotReachable,
    /// Exploitation requires a configuration that is not used.
    RequiresConfiguration,
    /// Exploitation requires a dependency that is not present.
    RequiresDependency,
    /// Exploitation requires an environment that is not present.
    RequiresEnvironment,
    /// Compiler protections prevent exploitation.
    ProtectedByCompiler,
    /// Runtime protections prevent exploitation.
    ProtectedAtRuntime,
    /// Perimeter protections prevent exploitation.
    ProtectedAtPerimeter,
    /// A mitigating control prevents exploitation.
    ProtectedByMitigatingControl,
}

impl Justification {
    /// The CycloneDX spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Justification::CodeNotPresent => "code_not_present",
            Justification::CodeNotReachable => "code_not_reachable",
            Justification::RequiresConfiguration => "requires_configuration",
            Justification::RequiresDependency => "requires_dependency",
            Justification::RequiresEnvironment => "requires_environment",
            Justification::ProtectedByCompiler => "protected_by_compiler",
            Justification::ProtectedAtRuntime => "protected_at_runtime",
            Justification::ProtectedAtPerimeter => "protected_at_perimeter",
            Justification::ProtectedByMitigatingControl => "protected_by_mitigating_control",
        }
    }

    /// Parse the CycloneDX spelling.
    pub fn parse(s: &str) -> Option<Justification> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
}

/// A finding's current triage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Triage {
    /// State.
    pub state: TriageState,
    /// Justification (with `not_affected`).
    pub justification: Option<Justification>,
    /// Free-text detail.
    pub detail: Option<String>,
    /// Who set it.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// A change of triage, for [`Store::set_triage`](crate::Store::set_triage).
#[derive(Debug, Clone, Deserialize)]
pub struct TriageUpdate {
    /// New state.
    pub state: TriageState,
    /// Required for `not_affected`, refused otherwise.
    pub justification: Option<Justification>,
    /// Free-text detail (at most 4096 bytes).
    pub detail: Option<String>,
}

/// One entry of a finding's triage audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct TriageChange {
    /// Row ID.
    pub id: i64,
    /// The finding.
    pub finding_id: i64,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: String,
    /// State before (none the first time).
    pub old_state: Option<TriageState>,
    /// State after.
    pub new_state: TriageState,
    /// Justification given.
    pub justification: Option<Justification>,
    /// Detail given.
    pub detail: Option<String>,
}

/// A stored vulnerability finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Row ID (stable for the life of the finding).
    pub id: i64,
    /// The image.
    pub image_digest: String,
    /// The preferred ID.
    pub vuln_id: String,
    /// Every ID it is known by.
    pub ids: Vec<String>,
    /// The package.
    pub package: PackageRef,
    /// Severity.
    pub severity: Severity,
    /// Lowest fixed version.
    pub fixed_version: Option<String>,
    /// Known exploited (CISA KEV).
    pub kev: bool,
    /// EPSS probability.
    pub epss: Option<f64>,
    /// First matched.
    pub first_seen: Timestamp,
    /// Last confirmed by an upload or re-assessment.
    pub last_seen: Timestamp,
    /// When it stopped matching (fixed, or its image retired); `None` while open.
    pub resolved_at: Option<Timestamp>,
    /// Why it was resolved (`fixed`, `image_removed`).
    pub resolution: Option<String>,
    /// Triage, when set.
    pub triage: Option<Triage>,
    /// The whole finding document.
    pub doc: Value,
}

/// Filters for [`Store::list_findings`](crate::Store::list_findings).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FindingQuery {
    /// Only this image.
    pub image_digest: Option<String>,
    /// Only findings known by this ID (any alias: CVE, GHSA, distro ID).
    pub vuln_id: Option<String>,
    /// Only this package name.
    pub package: Option<String>,
    /// At least this severity.
    pub min_severity: Option<Severity>,
    /// Only KEV-listed (true) or not (false).
    pub kev: Option<bool>,
    /// Only with (true) or without (false) a fixed version.
    pub fixable: Option<bool>,
    /// Only in images a live workload runs (true) or no live workload runs (false).
    pub in_use: Option<bool>,
    /// Only findings first seen at or after this time (Unix seconds).
    pub first_seen_since: Option<Timestamp>,
    /// Only this triage state.
    pub triage: Option<TriageState>,
    /// Include resolved findings (default: open only).
    #[serde(default)]
    pub include_resolved: bool,
    /// Sort key.
    #[serde(default)]
    pub sort: FindingSort,
    /// Direction.
    #[serde(default)]
    pub order: Order,
    /// Page size (1..=1000; default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// Finding sort keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingSort {
    /// Severity (default).
    #[default]
    Severity,
    /// EPSS (missing = 0).
    Epss,
    /// First seen.
    FirstSeen,
    /// Last seen.
    LastSeen,
    /// Row ID (insertion order).
    Id,
}

/// The kind of a re-assessment change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A finding matched for the first time.
    New,
    /// A resolved finding matches again.
    Reopened,
    /// A finding no longer matches (`resolved_at` set).
    Fixed,
    /// Severity changed (old/new are severity names).
    SeverityChanged,
    /// Newly listed in KEV.
    KevAdded,
    /// No longer listed in KEV.
    KevRemoved,
    /// EPSS moved by at least the configured threshold since the last event.
    EpssChanged,
}

impl ChangeKind {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::New => "new",
            ChangeKind::Reopened => "reopened",
            ChangeKind::Fixed => "fixed",
            ChangeKind::SeverityChanged => "severity_changed",
            ChangeKind::KevAdded => "kev_added",
            ChangeKind::KevRemoved => "kev_removed",
            ChangeKind::EpssChanged => "epss_changed",
        }
    }

    /// Parse the stored spelling.
    pub fn parse(s: &str) -> Option<ChangeKind> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
}

/// What caused a change event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeCause {
    /// An upload.
    Ingest,
    /// A re-assessment after a database update.
    Reassessment,
    /// Retention retired the image.
    Retention,
}

impl ChangeCause {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeCause::Ingest => "ingest",
            ChangeCause::Reassessment => "reassessment",
            ChangeCause::Retention => "retention",
        }
    }
}

/// One recorded change of a finding.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeEvent {
    /// Row ID.
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// The image.
    pub image_digest: String,
    /// The finding.
    pub finding_id: i64,
    /// The finding's preferred ID.
    pub vuln_id: String,
    /// What changed.
    pub kind: ChangeKind,
    /// Why.
    pub cause: ChangeCause,
    /// The re-assessment run, when one caused it.
    pub run_id: Option<String>,
    /// Value before (severity name, bool, EPSS score), when meaningful.
    pub old: Option<Value>,
    /// Value after.
    pub new: Option<Value>,
}

/// Filters for [`Store::list_events`](crate::Store::list_events) (newest first).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventQuery {
    /// Only this image.
    pub image_digest: Option<String>,
    /// Only this kind.
    pub kind: Option<ChangeKind>,
    /// Only this re-assessment run.
    pub run_id: Option<String>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Page size (1..=1000; default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// Which stored SBOMs a re-assessment covers (Defender's rule by default).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ScopePolicy {
    /// Images pushed within this many days.
    pub pushed_within_days: i64,
    /// Images pulled within this many days.
    pub pulled_within_days: i64,
    /// Every image a live workload runs.
    pub in_use: bool,
}

impl Default for ScopePolicy {
    fn default() -> Self {
        ScopePolicy { pushed_within_days: 90, pulled_within_days: 30, in_use: true }
    }
}

/// An image's place in a vulnerability's blast radius.
#[derive(Debug, Clone, Serialize)]
pub struct AffectedImage {
    /// The image.
    pub digest: String,
    /// Its repository.
    pub repo: String,
    /// The open findings of the vulnerability in it (one per package).
    pub findings: Vec<Finding>,
}

/// A workload reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadRef {
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
}

/// Which images, workloads and clusters a vulnerability reaches.
#[derive(Debug, Clone, Serialize)]
pub struct BlastRadius {
    /// The ID asked for.
    pub vuln_id: String,
    /// Every ID the matching findings are known by.
    pub ids: Vec<String>,
    /// Images with an open finding of it (at most the limit asked for).
    pub images: Vec<AffectedImage>,
    /// Live workloads running those images.
    pub workloads: Vec<WorkloadRef>,
    /// Clusters those workloads run in.
    pub clusters: Vec<String>,
    /// Whether the image list was cut at the limit.
    pub truncated: bool,
}

/// Counts per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeverityCounts {
    /// Critical.
    pub critical: i64,
    /// High.
    pub high: i64,
    /// Medium.
    pub medium: i64,
    /// Low.
    pub low: i64,
    /// Negligible.
    pub negligible: i64,
    /// Unknown.
    pub unknown: i64,
}

impl SeverityCounts {
    pub(crate) fn add(&mut self, s: Severity, n: i64) {
        match s {
            Severity::Critical => self.critical += n,
            Severity::High => self.high += n,
            Severity::Medium => self.medium += n,
            Severity::Low => self.low += n,
            Severity::Negligible => self.negligible += n,
            Severity::Unknown => self.unknown += n,
        }
    }

    /// Sum of all.
    pub fn total(&self) -> i64 {
        self.critical + self.high + self.medium + self.low + self.negligible + self.unknown
    }
}

/// Counts for dashboards.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DashboardCounts {
    /// Known clusters.
    pub clusters: i64,
    /// Live nodes.
    pub nodes: i64,
    /// Live workloads (inventory objects).
    pub workloads: i64,
    /// Stored images.
    pub images: i64,
    /// Images run by a live workload.
    pub images_in_use: i64,
    /// Stored SBOMs.
    pub sboms: i64,
    /// Open findings by severity.
    pub open_findings: SeverityCounts,
    /// Open KEV-listed findings.
    pub open_kev_findings: i64,
    /// Open posture findings by severity.
    pub open_posture_findings: SeverityCounts,
    /// Unresolved alerts.
    pub open_alerts: i64,
    /// Unresolved incidents.
    pub open_incidents: i64,
}

/// Open posture findings of one check in one cluster ([`crate::Store::posture_summary`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostureGroup {
    /// Cluster name.
    pub cluster: String,
    /// Check ID.
    pub check_id: String,
    /// Highest severity among them.
    pub severity: Severity,
    /// Resources failing the check (exempted ones included).
    pub resources: i64,
    /// Of those, resources under a live exemption.
    pub exempt: i64,
}

/// Posture of one cluster: how many of its resources fail at least one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterPosture {
    /// Cluster name.
    pub cluster: String,
    /// Live inventory objects.
    pub resources: i64,
    /// Distinct resources with an open posture finding.
    pub unhealthy: i64,
}

/// A new posture exemption ([`crate::Store::create_exemption`]): `check_id` accepted for one
/// resource (`namespace` + `name`), a namespace, or (neither) every resource, of one cluster or
/// (no `cluster`) of every cluster, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExemptionInput {
    /// Cluster name (`None`: every cluster).
    #[serde(default)]
    pub cluster: Option<String>,
    /// The check.
    pub check_id: String,
    /// Namespace (`None`: every namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Object name (`None`: every object).
    #[serde(default)]
    pub name: Option<String>,
    /// Why the failure is accepted.
    pub justification: String,
    /// When it stops applying (Unix seconds; at most 366 days ahead).
    pub expires_at: Timestamp,
}

/// A stored posture exemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exemption {
    /// ID.
    pub id: i64,
    /// Cluster name (`None`: every cluster).
    pub cluster: Option<String>,
    /// The check.
    pub check_id: String,
    /// Namespace (`None`: every namespace).
    pub namespace: Option<String>,
    /// Object name (`None`: every object).
    pub name: Option<String>,
    /// Why.
    pub justification: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// When it stops applying.
    pub expires_at: Timestamp,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

/// One day of the findings trend ([`crate::Store::finding_trend`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// Start of the day (UTC), Unix seconds.
    pub day: Timestamp,
    /// Findings open at the end of that day (the last point: open now).
    pub open: i64,
    /// Findings first seen that day.
    pub opened: i64,
    /// Findings resolved that day.
    pub fixed: i64,
}

// ---------------------------------------------------------------------------------------------
// Inventory

/// A Kubernetes object reference (cluster-scoped objects have namespace '').
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Kind.
    pub kind: String,
    /// Namespace ('' for cluster-scoped).
    #[serde(default)]
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// A container's image inside a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerImage {
    /// Container name.
    pub container: String,
    /// The image reference as written.
    pub image_ref: String,
    /// The resolved manifest digest, when known (pod status `imageID`).
    #[serde(default)]
    pub digest: Option<String>,
}

/// One inventory object (any kind; workloads carry their images).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectInput {
    /// The object.
    #[serde(flatten)]
    pub object: ObjectRef,
    /// Images it runs (workload kinds).
    #[serde(default)]
    pub images: Vec<ContainerImage>,
    /// The whole object (the Kubernetes JSON).
    #[serde(default)]
    pub doc: Option<Value>,
}

/// One node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInput {
    /// Node name.
    pub name: String,
    /// Kubelet version.
    #[serde(default)]
    pub kubelet_version: Option<String>,
    /// OS image.
    #[serde(default)]
    pub os_image: Option<String>,
    /// The whole node object.
    #[serde(default)]
    pub doc: Option<Value>,
}

/// An inventory update for one cluster: a full snapshot or a delta.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InventoryUpdate {
    /// Cluster name (created when new).
    pub cluster: String,
    /// Kubernetes version, when known.
    #[serde(default)]
    pub k8s_version: Option<String>,
    /// Cluster metadata document.
    #[serde(default)]
    pub cluster_doc: Option<Value>,
    /// Nodes added or changed.
    #[serde(default)]
    pub nodes: Vec<NodeInput>,
    /// Objects added or changed.
    #[serde(default)]
    pub objects: Vec<ObjectInput>,
    /// Nodes removed (delta).
    #[serde(default)]
    pub removed_nodes: Vec<String>,
    /// Objects removed (delta).
    #[serde(default)]
    pub removed_objects: Vec<ObjectRef>,
    /// A full snapshot: every live node and object of the cluster not listed is marked removed.
    #[serde(default)]
    pub full: bool,
}

/// What an inventory update changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InventoryOutcome {
    /// Objects inserted or refreshed.
    pub objects_upserted: usize,
    /// Objects marked removed.
    pub objects_removed: usize,
    /// Nodes inserted or refreshed.
    pub nodes_upserted: usize,
    /// Nodes marked removed.
    pub nodes_removed: usize,
}

/// A stored cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// Row ID.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Kubernetes version.
    pub k8s_version: Option<String>,
    /// First seen.
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
    /// Live nodes.
    pub nodes: i64,
    /// Live workloads.
    pub workloads: i64,
    /// Metadata document.
    pub doc: Option<Value>,
}

/// A stored node.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Row ID.
    pub id: i64,
    /// Cluster name.
    pub cluster: String,
    /// Name.
    pub name: String,
    /// Kubelet version.
    pub kubelet_version: Option<String>,
    /// OS image.
    pub os_image: Option<String>,
    /// First seen.
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
    /// When it left the inventory.
    pub removed_at: Option<Timestamp>,
    /// The node object.
    pub doc: Option<Value>,
}

/// A stored inventory object (workload or other kind).
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    /// Row ID.
    pub id: i64,
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Images it runs.
    pub images: Vec<ContainerImage>,
    /// First seen.
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
    /// When it left the inventory.
    pub removed_at: Option<Timestamp>,
    /// The object.
    pub doc: Option<Value>,
}

/// Filters for [`Store::list_workloads`](crate::Store::list_workloads) (sorted by namespace,
/// name).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkloadQuery {
    /// Cluster name.
    pub cluster: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Only objects running this image digest.
    pub image_digest: Option<String>,
    /// Only objects running an image with an open finding at least this severe.
    pub min_severity: Option<Severity>,
    /// Only objects with (true) or without (false) an open, unexempted posture finding.
    pub failing_posture: Option<bool>,
    /// Include removed objects.
    #[serde(default)]
    pub include_removed: bool,
    /// Page size (1..=1000; default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// Filters for [`Store::list_nodes`](crate::Store::list_nodes) and
/// [`Store::list_clusters`](crate::Store::list_clusters) (sorted by name).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NameQuery {
    /// Cluster name (nodes only).
    pub cluster: Option<String>,
    /// Include removed nodes.
    #[serde(default)]
    pub include_removed: bool,
    /// Page size (1..=1000; default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Posture

/// One posture finding of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostureFindingInput {
    /// Check ID (`PAL-K8S-NNN`).
    pub check_id: String,
    /// The object it is about.
    pub object: ObjectRef,
    /// Severity.
    pub severity: Severity,
    /// The whole finding document.
    pub doc: Value,
}

/// A posture run's result for one cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostureSnapshot {
    /// Cluster name.
    pub cluster: String,
    /// Findings.
    pub findings: Vec<PostureFindingInput>,
    /// A full run: open findings of the cluster not listed are resolved. (`false`: a partial
    /// run, e.g. one object re-evaluated, that only adds and refreshes.)
    #[serde(default = "yes")]
    pub full: bool,
}

fn yes() -> bool {
    true
}

/// What a posture snapshot changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PostureOutcome {
    /// Findings opened (or reopened).
    pub opened: usize,
    /// Findings resolved.
    pub resolved: usize,
    /// Findings still open.
    pub unchanged: usize,
}

/// A stored posture finding.
#[derive(Debug, Clone, Serialize)]
pub struct PostureFinding {
    /// Row ID.
    pub id: i64,
    /// Cluster name.
    pub cluster: String,
    /// Check ID.
    pub check_id: String,
    /// The object.
    pub object: ObjectRef,
    /// Severity.
    pub severity: Severity,
    /// First seen.
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
    /// When it stopped being reported.
    pub resolved_at: Option<Timestamp>,
    /// The live exemption covering it, if any (it stays listed; scores do not count it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exemption: Option<i64>,
    /// The document.
    pub doc: Value,
}

/// Filters for [`Store::list_posture_findings`](crate::Store::list_posture_findings) (most
/// severe first).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PostureQuery {
    /// Cluster name.
    pub cluster: Option<String>,
    /// Check ID.
    pub check_id: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// At least this severity.
    pub min_severity: Option<Severity>,
    /// Include resolved findings.
    #[serde(default)]
    pub include_resolved: bool,
    /// Page size (1..=1000; default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Alerts, incidents, health

/// One alert from a detector or sensor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertInput {
    /// The sender's stable ID for the alert; when absent, the sha256 of `doc` is the key, so a
    /// re-sent alert is one record.
    #[serde(default)]
    pub key: Option<String>,
    /// Cluster name, when known.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Rule that fired.
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// When it happened.
    pub at: Timestamp,
    /// Namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Pod.
    #[serde(default)]
    pub pod: Option<String>,
    /// Node.
    #[serde(default)]
    pub node: Option<String>,
    /// The whole alert.
    pub doc: Value,
}

/// A stored alert.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// Row ID.
    pub id: i64,
    /// Idempotency key.
    pub key: String,
    /// Cluster name.
    pub cluster: Option<String>,
    /// Incident it belongs to.
    pub incident_id: Option<i64>,
    /// Rule.
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// When it happened.
    pub at: Timestamp,
    /// When the store received it.
    pub received_at: Timestamp,
    /// Namespace.
    pub namespace: Option<String>,
    /// Pod.
    pub pod: Option<String>,
    /// Node.
    pub node: Option<String>,
    /// When resolved.
    pub resolved_at: Option<Timestamp>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// The document.
    pub doc: Value,
}

/// Filters for [`Store::list_alerts`](crate::Store::list_alerts) (newest first).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AlertQuery {
    /// Cluster name.
    pub cluster: Option<String>,
    /// Rule.
    pub rule: Option<String>,
    /// At least this severity.
    pub min_severity: Option<Severity>,
    /// Only this incident.
    pub incident_id: Option<i64>,
    /// Happened at or after.
    pub since: Option<Timestamp>,
    /// Only resolved (true) or unresolved (false).
    pub resolved: Option<bool>,
    /// Page size (1..=1000; default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A new incident grouping alerts.
#[derive(Debug, Clone, Deserialize)]
pub struct IncidentInput {
    /// Cluster name.
    pub cluster: Option<String>,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Alerts to attach.
    #[serde(default)]
    pub alert_ids: Vec<i64>,
}

/// A stored incident.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// Row ID.
    pub id: i64,
    /// Cluster name.
    pub cluster: Option<String>,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Opened.
    pub opened_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Resolved.
    pub resolved_at: Option<Timestamp>,
    /// Resolved by.
    pub resolved_by: Option<String>,
    /// Attached alerts.
    pub alerts: i64,
}

/// Filters for [`Store::list_incidents`](crate::Store::list_incidents) (newest first).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IncidentQuery {
    /// Cluster name.
    pub cluster: Option<String>,
    /// Only resolved (true) or unresolved (false).
    pub resolved: Option<bool>,
    /// Page size (1..=1000; default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A component that heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// The in-cluster agent.
    Agent,
    /// A node sensor.
    Sensor,
    /// The admission webhook.
    Admission,
    /// The audit-log webhook backend.
    Audit,
}

impl Component {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Agent => "agent",
            Component::Sensor => "sensor",
            Component::Admission => "admission",
            Component::Audit => "audit",
        }
    }

    /// Parse the stored spelling.
    pub fn parse(s: &str) -> Option<Component> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
}

/// One heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Cluster name.
    pub cluster: String,
    /// Component.
    pub component: Component,
    /// Instance (pod name, node name).
    pub instance: String,
    /// Node it runs on.
    #[serde(default)]
    pub node: Option<String>,
    /// Version.
    #[serde(default)]
    pub version: Option<String>,
    /// Status document (counters, ready replicas, ...).
    #[serde(default)]
    pub doc: Option<Value>,
}

/// Health derived from the last heartbeat's age (issue 15's thresholds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Last contact within 1 minute.
    Healthy,
    /// Within 3 minutes.
    Degraded,
    /// Later.
    Unhealthy,
    /// Never heard from.
    Uninitialized,
}

impl HealthState {
    /// From the age of the last contact in seconds (`None`: never).
    pub fn from_age(age: Option<i64>) -> HealthState {
        match age {
            None => HealthState::Uninitialized,
            Some(a) if a <= 60 => HealthState::Healthy,
            Some(a) if a <= 180 => HealthState::Degraded,
            Some(_) => HealthState::Unhealthy,
        }
    }
}

/// A component's stored health.
#[derive(Debug, Clone, Serialize)]
pub struct HealthRecord {
    /// Row ID.
    pub id: i64,
    /// Cluster name.
    pub cluster: String,
    /// Component.
    pub component: Component,
    /// Instance.
    pub instance: String,
    /// Node.
    pub node: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// First heartbeat.
    pub first_seen: Timestamp,
    /// Last heartbeat.
    pub last_seen: Timestamp,
    /// Health now.
    pub state: HealthState,
    /// Last status document.
    pub doc: Option<Value>,
}

/// Filters for [`Store::list_health`](crate::Store::list_health) (by cluster, component,
/// instance).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HealthQuery {
    /// Cluster name.
    pub cluster: Option<String>,
    /// Component.
    pub component: Option<Component>,
    /// Page size (1..=1000; default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Tokens, audit, jobs, retention

/// A token's role. Ordered: `Viewer` < `Operator` < `Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Also write (uploads, triage, resolve).
    Operator,
    /// Also manage tokens and jobs.
    Admin,
}

impl Role {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parse the stored spelling.
    pub fn parse(s: &str) -> Option<Role> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }

    /// Whether this role may do what `needed` allows.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

/// A token to create.
#[derive(Debug, Clone, Deserialize)]
pub struct NewToken {
    /// A name for people (`ci`, `cluster-prod agent`).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Expiry, if any.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// A one-time token (registration): the first successful authentication consumes it.
    #[serde(default)]
    pub single_use: bool,
    /// Bind the token to a cluster (agent credentials).
    #[serde(default)]
    pub cluster: Option<String>,
}

/// A stored token (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// Public token ID (the part of the token between `pal_` and the next `_`).
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Cluster binding.
    pub cluster: Option<String>,
    /// One-time token.
    pub single_use: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Created by.
    pub created_by: String,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Revoked.
    pub revoked_at: Option<Timestamp>,
    /// Consumed (one-time tokens).
    pub used_at: Option<Timestamp>,
    /// Last successful authentication.
    pub last_used_at: Option<Timestamp>,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRefusal {
    /// Not a Palisade token, unknown ID, or wrong secret.
    Unknown,
    /// Revoked.
    Revoked,
    /// Expired.
    Expired,
    /// A one-time token already used.
    Consumed,
}

/// The result of [`Store::authenticate`](crate::Store::authenticate).
#[derive(Debug, Clone)]
pub enum AuthOutcome {
    /// Valid: the token's record.
    Valid(TokenInfo),
    /// Refused, with the reason (for the log; clients get 401 either way).
    Refused(TokenRefusal),
}

/// One audit-log entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Row ID.
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// Who (token name/ID, `system`, `retention`, ...).
    pub actor: String,
    /// What (`images.ingest`, `triage.set`, `token.revoke`, ...).
    pub action: String,
    /// On what (a digest, an ID, a name).
    pub target: String,
    /// Details (JSON).
    pub detail: Option<Value>,
}

/// Filters for [`Store::list_audit`](crate::Store::list_audit) (newest first).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditQuery {
    /// Actor.
    pub actor: Option<String>,
    /// Action.
    pub action: Option<String>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Page size (1..=1000; default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// A job's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its next run.
    Idle,
    /// Leased by an owner (or its lease expired unfinished: resumable).
    Running,
    /// The last run finished successfully.
    Done,
    /// The last run failed (`last_error`).
    Failed,
}

impl JobState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JobState::Idle => "idle",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> JobState {
        match s {
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            _ => JobState::Idle,
        }
    }
}

/// A stored job.
#[derive(Debug, Clone, Serialize)]
pub struct JobInfo {
    /// Name (unique).
    pub name: String,
    /// State.
    pub state: JobState,
    /// Lower runs first among due jobs.
    pub priority: i64,
    /// When it is next due (`None`: only on request).
    pub next_run: Option<Timestamp>,
    /// Lease owner, while leased.
    pub owner: Option<String>,
    /// Lease expiry.
    pub lease_expires: Option<Timestamp>,
    /// Lease generation (incremented by every acquisition; a fencing token).
    pub generation: i64,
    /// The resumable position of an unfinished run.
    pub cursor: Option<String>,
    /// Progress document of the current or last run.
    pub progress: Option<Value>,
    /// When the current or last run started.
    pub started_at: Option<Timestamp>,
    /// When the last run finished.
    pub finished_at: Option<Timestamp>,
    /// The last run's error.
    pub last_error: Option<String>,
}

/// A held job lease. Pass it back to renew, save progress and finish; every one of those fails
/// with [`StoreError::LeaseLost`] once another owner has taken the job.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The job.
    pub job: String,
    /// The owner (replica ID).
    pub owner: String,
    /// The generation this lease holds.
    pub generation: i64,
    /// Expiry.
    pub expires_at: Timestamp,
    /// The cursor an unfinished earlier run saved: resume from here (`None`: start afresh).
    pub resume_cursor: Option<String>,
    /// Progress saved by the earlier run.
    pub progress: Option<Value>,
}

/// Retention settings ([`Store::apply_retention`](crate::Store::apply_retention)).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Delete alerts (and incidents) resolved more than this many days ago.
    pub resolved_alert_days: i64,
    /// Retire images not seen for this many days: the image row and its SBOM are deleted; its
    /// findings are kept (resolved with `image_removed`), as findings are never deleted.
    pub image_unseen_days: i64,
    /// Delete audit entries older than this many days (`None`: keep forever).
    pub audit_days: Option<i64>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy { resolved_alert_days: 30, image_unseen_days: 90, audit_days: None }
    }
}

/// What retention removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionOutcome {
    /// Alerts deleted.
    pub alerts_deleted: u64,
    /// Incidents deleted.
    pub incidents_deleted: u64,
    /// Images retired.
    pub images_retired: u64,
    /// Findings resolved because their image was retired.
    pub findings_resolved: u64,
    /// Audit entries deleted.
    pub audit_deleted: u64,
    /// Console sessions deleted (ended or expired more than a day ago).
    pub sessions_deleted: u64,
}

/// Validate a manifest digest (`sha256:` + 64 lower-case hex, or `sha512:` + 128).
pub fn validate_digest(d: &str) -> Result<()> {
    let ok = match d.split_once(':') {
        Some(("sha256", h)) => h.len() == 64,
        Some(("sha512", h)) => h.len() == 128,
        _ => false,
    } && d
        .split_once(':')
        .is_some_and(|(_, h)| h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("not a manifest digest: {:?}", truncate(d, 80))))
    }
}

pub(crate) fn truncate(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = n;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}
