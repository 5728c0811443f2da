//! The posture engine: checks Kubernetes objects against hardening rules (workloads, RBAC,
//! exposure, network isolation, control plane and kubelet configuration), maps them to frameworks
//! (Pod Security Standards, NSA/CISA, CIS Kubernetes Benchmark), applies exceptions and runs
//! user-supplied Gatekeeper-style Rego.
//!
//! The engine is pure: it takes already loaded [`Object`]s and never does I/O.
//!
//! - [`catalogue`]: every built-in check with its references.
//! - [`assess`]: evaluate a whole set of objects (a manifest tree or a cluster dump).
//! - [`evaluate_object`]: evaluate one object against a precomputed [`Context`] (admission).
//! - [`scores`]: framework scores from an [`Assessment`].
//! - [`RegoPolicy`]: custom checks in Rego with the Gatekeeper input shape.
//!
//! Findings carry the JSON pointer of the failing field and, where a safe mechanical fix exists,
//! an RFC 6902 JSON Patch (`[{"op": ..., "path": ..., "value": ...}]`) against the object.

#![forbid(unsafe_code)]

mod catalogue;
mod checks;
mod engine;
mod exceptions;
mod frameworks;
mod patch;
pub mod rego;
mod util;

#[cfg(test)]
mod tests;

#[cfg(test)]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use palisade_k8s::Object;
use serde::Serialize;
use std::collections::BTreeMap;

pub use catalogue::{catalogue, check};
pub use engine::{assess, assess_streaming, evaluate_object, Context};
pub use exceptions::Exception;
pub use frameworks::scores;
pub use rego::{RegoError, RegoPolicy};

/// How bad a failed check is. Ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
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
    /// Lower-case name (`critical`, `high`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parse a severity name, case-insensitively.
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "info" | "informational" => Some(Severity::Info),
            "low" => Some(Severity::Low),
            "medium" | "moderate" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// Pod Security Standards level a control belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pss {
    /// Baseline: prevents known privilege escalations.
    Baseline,
    /// Restricted: current pod hardening best practice (includes baseline).
    Restricted,
}

/// External references of a check.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct References {
    /// CIS Kubernetes Benchmark section (numbering of v1.12 / kube-bench `cis-1.12`).
    pub cis: Option<&'static str>,
    /// NSA/CISA Kubernetes Hardening Guide (v1.2) section the control belongs to.
    pub nsa: Option<&'static str>,
    /// Pod Security Standards level.
    pub pss: Option<Pss>,
    /// MITRE ATT&CK technique ids (Containers matrix).
    pub mitre: &'static [&'static str],
    /// Equivalent Checkov check ids.
    pub checkov: &'static [&'static str],
    /// Equivalent Kubescape control ids.
    pub kubescape: &'static [&'static str],
    /// Equivalent Trivy (misconfiguration) check ids.
    pub trivy: &'static [&'static str],
}

/// One built-in check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `PAL-K8S-001`.
    pub id: &'static str,
    /// One-line title.
    pub title: &'static str,
    /// Severity of a failure.
    pub severity: Severity,
    /// `workload`, `rbac`, `network`, `exposure`, `control-plane`, `kubelet` or `supply-chain`.
    pub category: &'static str,
    /// Why it matters.
    pub rationale: &'static str,
    /// What to change.
    pub remediation: &'static str,
    /// Benchmarks, guides and peer tools.
    pub references: References,
    /// Kinds the check looks at.
    pub applies_to: &'static [&'static str],
    /// The check needs access to the node (file permissions, process flags); it is listed in
    /// [`Assessment::manual`] and never evaluated from API objects.
    pub node_access_required: bool,
}

/// Identifies the object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
pub struct ObjectRef {
    /// Kind.
    pub kind: String,
    /// Namespace (empty when cluster-scoped or unspecified).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// apiVersion.
    pub api_version: String,
    /// File the object came from.
    pub file: String,
    /// 1-based line of the document (0 when unknown).
    pub line: usize,
}

impl ObjectRef {
    /// The reference of an object.
    pub fn of(obj: &Object) -> ObjectRef {
        ObjectRef {
            kind: obj.kind.clone(),
            namespace: obj.namespace.clone(),
            name: obj.name.clone(),
            api_version: obj.api_version.clone(),
            file: obj.origin.file.clone(),
            line: obj.origin.line,
        }
    }
}

/// A failed check on one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The check (a catalogue id or a custom Rego policy id).
    pub check_id: String,
    /// Severity.
    pub severity: Severity,
    /// The object.
    pub object: ObjectRef,
    /// JSON pointer (RFC 6901) of the failing field, e.g.
    /// `/spec/template/spec/containers/0/securityContext/privileged`. For a missing field, the
    /// pointer where it should be set.
    pub path: String,
    /// What is wrong, naming the container where there is one.
    pub message: String,
    /// What to change.
    pub remediation: String,
    /// A JSON Patch (RFC 6902 array of operations) against the object that fixes the finding,
    /// when a safe mechanical fix exists.
    pub patch: Option<serde_json::Value>,
}

/// A finding suppressed by an exception.
#[derive(Debug, Clone, Serialize)]
pub struct Excepted {
    /// The finding.
    pub finding: Finding,
    /// The exception's reason.
    pub reason: String,
}

/// A catalogue entry that cannot be assessed through the API (needs node access).
#[derive(Debug, Clone, Serialize)]
pub struct ManualItem {
    /// Check id.
    pub check_id: &'static str,
    /// Title.
    pub title: &'static str,
    /// CIS section.
    pub cis: Option<&'static str>,
    /// Why it was not assessed.
    pub reason: &'static str,
}

/// Per-check resource counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CheckTally {
    /// Resources the check applied to with no finding.
    pub passed: usize,
    /// Resources with at least one (non-excepted) finding.
    pub failed: usize,
    /// Resources whose findings were all excepted.
    pub excepted: usize,
    /// Number of (non-excepted) findings.
    pub findings: usize,
    /// The same counts per namespace (`""` for cluster-scoped objects): (passed, failed).
    pub per_namespace: BTreeMap<String, (usize, usize)>,
}

/// A framework a check can belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framework {
    /// Pod Security Standards, baseline profile.
    PssBaseline,
    /// Pod Security Standards, restricted profile (includes baseline controls).
    PssRestricted,
    /// NSA/CISA Kubernetes Hardening Guide.
    Nsa,
    /// CIS Kubernetes Benchmark, the part visible through the API.
    Cis,
}

impl Framework {
    /// All frameworks.
    pub const ALL: [Framework; 4] = [Framework::PssBaseline, Framework::PssRestricted, Framework::Nsa, Framework::Cis];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Framework::PssBaseline => "pss-baseline",
            Framework::PssRestricted => "pss-restricted",
            Framework::Nsa => "nsa",
            Framework::Cis => "cis",
        }
    }

    /// Whether a check is a control of this framework.
    pub fn includes(self, check: &Check) -> bool {
        let r = &check.references;
        match self {
            Framework::PssBaseline => r.pss == Some(Pss::Baseline),
            Framework::PssRestricted => r.pss.is_some(),
            Framework::Nsa => r.nsa.is_some(),
            Framework::Cis => r.cis.is_some(),
        }
    }
}

/// The score of one framework. See [`scores`] for the formula.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FrameworkScore {
    /// The framework.
    pub framework: Framework,
    /// `100 × passed / (passed + failed)`; 100 when nothing applied.
    pub score_percent: f64,
    /// Passed (control, resource) pairs.
    pub passed: usize,
    /// Failed (control, resource) pairs.
    pub failed: usize,
    /// Excepted (control, resource) pairs (left out of the score).
    pub excepted: usize,
    /// Number of the framework's controls that applied to at least one resource.
    pub controls: usize,
    /// The score per namespace (`""` for cluster-scoped objects).
    pub per_namespace: BTreeMap<String, f64>,
}

/// Settings of an assessment.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Registries (`registry.example.com`) or repository prefixes (`ghcr.io/acme`) images may
    /// come from; the untrusted-registry check is skipped when empty. Docker Hub images are
    /// `docker.io/...`.
    pub trusted_registries: Vec<String>,
    /// Exceptions.
    pub exceptions: Vec<Exception>,
    /// Custom Rego checks.
    pub custom_rego: Vec<RegoPolicy>,
    /// Run only the checks of these frameworks (empty: all checks).
    pub frameworks: Vec<Framework>,
    /// Run only these check ids (empty: all). Trailing `*` is a prefix match.
    pub only_checks: Vec<String>,
    /// Skip these check ids. Trailing `*` is a prefix match.
    pub skip_checks: Vec<String>,
    /// Today's date as `YYYY-MM-DD`, for exception expiry; without it, expiries are not enforced.
    pub today: Option<String>,
    /// Also check Kubernetes' own bootstrap RBAC (`kubernetes.io/bootstrapping: rbac-defaults`
    /// and `system:*` cluster roles/bindings), which is skipped by default.
    pub include_system_rbac: bool,
    /// Treat objects without `metadata.namespace` as being in `default` (as `kubectl apply`
    /// would put them); by default only an explicit `default` counts.
    pub missing_namespace_is_default: bool,
}

/// The result of [`assess`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Assessment {
    /// Failed checks, in object order.
    pub findings: Vec<Finding>,
    /// Findings suppressed by exceptions, with the reason.
    pub excepted: Vec<Excepted>,
    /// Per-check counts (catalogue ids and custom Rego ids) of checks that applied to something.
    pub tallies: BTreeMap<String, CheckTally>,
    /// Catalogue entries that need node access and were not assessed.
    pub manual: Vec<ManualItem>,
    /// Problems that did not stop the assessment (bad exceptions, Rego errors, ...).
    pub warnings: Vec<String>,
    /// Framework scores (also available through [`scores`]).
    pub scores: Vec<FrameworkScore>,
    /// Number of objects assessed.
    pub objects: usize,
}
