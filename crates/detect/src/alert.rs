//! Alerts and incidents, duplicate folding and correlation.
//!
//! [`AlertProcessor`] takes the raw alerts the engine raises and:
//! - **folds duplicates**: an alert whose rule and dedup key (by default the user, target
//!   namespace / resource / name / subresource and source IP) match an alert raised less than
//!   the rule's dedup window ago (default 10 minutes) is not emitted again; it increments the
//!   first alert's `count`. When the window closes, the first alert is emitted once more with
//!   the final `count`, `last_seen` and `update: true` (same `id`), if duplicates were folded.
//! - **groups incidents**: alerts sharing an entity (the same user, or the same pod) within the
//!   incident window (default 30 minutes) are grouped; when the group spans two or more
//!   ATT&CK tactics — an attack progressing through stages — an [`Incident`] is emitted, and
//!   re-emitted (`update: true`) each time a further tactic joins.
//!
//! Both tables are bounded (entry caps with oldest-first eviction).

use crate::attack;
use crate::event::format_rfc3339_us;
use crate::rules::Severity;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// An ATT&CK reference in an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttackRef {
    /// ID (`TA0002`, `T1609`).
    pub id: String,
    /// Name.
    pub name: String,
}

/// The rule that raised an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// Rule ID.
    pub id: String,
    /// Rule name.
    pub name: String,
    /// Rule description.
    pub description: String,
    /// `stable` / `incubating`.
    pub maturity: String,
}

/// The Kubernetes object an alert is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResourceRef {
    /// API group ("" for core).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    /// Namespace.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Who and what an alert involves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Entities {
    /// Cluster name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Namespace.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// User name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// User groups.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Impersonated user, if any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub impersonated_user: String,
    /// Client address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source_ip: String,
    /// User agent.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    /// Target object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceRef>,
    /// Pod name (the target pod, or the pod the request creates).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// Container name (sensor events).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// Container images involved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Node (sensor events).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
}

/// The event behind an alert, as raw JSON; serialises as the JSON object itself.
#[derive(Debug, Clone)]
pub struct Evidence(pub Box<serde_json::value::RawValue>);

impl Evidence {
    /// From JSON text (`null` when it is not JSON).
    pub fn from_json(text: &str) -> Evidence {
        let raw = serde_json::value::RawValue::from_string(text.to_string())
            .or_else(|_| serde_json::value::RawValue::from_string("null".to_string()));
        match raw {
            Ok(r) => Evidence(r),
            Err(_) => Evidence::null(),
        }
    }
    /// From a serialisable value.
    pub fn from_value<T: Serialize>(v: &T) -> Evidence {
        serde_json::value::to_raw_value(v).map(Evidence).unwrap_or_else(|_| Evidence::null())
    }
    fn null() -> Evidence {
        // `null` always parses; fall back to an empty-object literal through to_raw_value
        Evidence(serde_json::value::to_raw_value(&()).unwrap_or_default())
    }
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
    /// Parsed into a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl PartialEq for Evidence {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A detection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Stable ID (hex); updates of a folded alert keep it.
    pub id: String,
    /// When the (first) event happened, RFC 3339.
    pub time: String,
    /// First and last occurrence folded into this alert.
    pub first_seen: String,
    /// Last occurrence.
    pub last_seen: String,
    /// Occurrences folded into this alert.
    pub count: u64,
    /// True when this re-emits an earlier alert with a higher count.
    pub update: bool,
    /// The rule.
    pub rule: RuleRef,
    /// Severity.
    pub severity: Severity,
    /// ATT&CK tactics.
    pub tactics: Vec<AttackRef>,
    /// ATT&CK techniques.
    pub techniques: Vec<AttackRef>,
    /// The rendered output template.
    pub message: String,
    /// Entities.
    pub entities: Entities,
    /// Data source (`k8s_audit` / `sensor`).
    pub source: String,
    /// The (first) event, as received (kept as JSON text: compact while alerts are folded).
    pub evidence: Evidence,
    /// What to do.
    pub remediation: Vec<String>,
    /// Rule tags.
    pub tags: Vec<String>,
    /// Event time, microseconds since the epoch.
    #[serde(skip)]
    pub time_us: i64,
    /// Dedup key (rule + entity values).
    #[serde(skip)]
    pub dedup_key: String,
    /// Fold window for this alert's rule, microseconds.
    #[serde(skip)]
    pub dedup_window_us: i64,
}

/// A group of related alerts on one entity spanning several ATT&CK tactics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// Stable ID; updates keep it.
    pub id: String,
    /// True when this re-emits an incident that grew.
    pub update: bool,
    /// `user` or `pod`.
    pub entity_kind: String,
    /// The user name, or `namespace/pod`.
    pub entity: String,
    /// Highest alert severity (raised one step from three tactics on).
    pub severity: Severity,
    /// Tactics, in kill-chain order.
    pub tactics: Vec<AttackRef>,
    /// Techniques seen.
    pub techniques: Vec<AttackRef>,
    /// Alert IDs, oldest first (capped).
    pub alert_ids: Vec<String>,
    /// Rule IDs involved.
    pub rule_ids: Vec<String>,
    /// Alerts grouped (including those beyond the ID cap).
    pub alert_count: u64,
    /// First alert time.
    pub first_seen: String,
    /// Last alert time.
    pub last_seen: String,
    /// Summary line.
    pub summary: String,
}

/// What the pipeline emits.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Finding {
    /// An alert (or an update of one).
    Alert(Box<Alert>),
    /// An incident (or an update of one).
    Incident(Box<Incident>),
}

impl Finding {
    /// The ID.
    pub fn id(&self) -> &str {
        match self {
            Finding::Alert(a) => &a.id,
            Finding::Incident(i) => &i.id,
        }
    }
}

/// Settings for folding and correlation.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Incident window: alerts on one entity this close in time are grouped.
    pub incident_window_us: i64,
    /// Tactics needed for an incident.
    pub incident_min_tactics: usize,
    /// Cap on open fold entries.
    pub max_folds: usize,
    /// Cap on open incidents.
    pub max_incidents: usize,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            incident_window_us: 30 * 60 * 1_000_000,
            incident_min_tactics: 2,
            max_folds: 4096,
            max_incidents: 4096,
        }
    }
}

struct Fold {
    alert: Alert,
    expires_us: i64,
    emitted_count: u64,
}

struct OpenIncident {
    id: String,
    entity_kind: &'static str,
    entity: String,
    first_us: i64,
    last_us: i64,
    severity: Severity,
    tactics: BTreeSet<(u8, &'static str)>,
    techniques: BTreeSet<String>,
    alert_ids: Vec<String>,
    rule_ids: BTreeSet<String>,
    alert_count: u64,
    emitted_tactics: usize,
}

/// Folds duplicate alerts and groups incidents; see the module docs.
pub struct AlertProcessor {
    cfg: AlertConfig,
    folds: HashMap<String, Fold>,
    fold_order: VecDeque<(i64, String)>,
    incidents: HashMap<String, OpenIncident>,
    incident_order: VecDeque<(i64, String)>,
    now_us: i64,
    /// Duplicates folded so far.
    pub folded: u64,
    /// Incidents opened so far.
    pub incidents_opened: u64,
}

impl std::fmt::Debug for AlertProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertProcessor")
            .field("folds", &self.folds.len())
            .field("incidents", &self.incidents.len())
            .finish()
    }
}

/// A 64-bit FNV-1a hash.
pub fn fnv64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A 128-bit hex ID from some text.
pub fn make_id(text: &str) -> String {
    let a = fnv64(text.as_bytes());
    let b = fnv64(format!("{text}\u{1}{a}").as_bytes());
    format!("{a:016x}{b:016x}")
}

impl AlertProcessor {
    /// A processor with `cfg`.
    pub fn new(cfg: AlertConfig) -> Self {
        AlertProcessor {
            cfg,
            folds: HashMap::new(),
            fold_order: VecDeque::new(),
            incidents: HashMap::new(),
            incident_order: VecDeque::new(),
            now_us: i64::MIN,
            folded: 0,
            incidents_opened: 0,
        }
    }

    /// Advances the clock to `now_us` (event time), emitting fold updates whose window closed.
    pub fn advance(&mut self, now_us: i64, out: &mut Vec<Finding>) {
        if now_us <= self.now_us {
            return;
        }
        self.now_us = now_us;
        while let Some((exp, _)) = self.fold_order.front() {
            if *exp > now_us {
                break;
            }
            if let Some((_, key)) = self.fold_order.pop_front() {
                self.close_fold(&key, out);
            }
        }
        while let Some((last, key)) = self.incident_order.front() {
            if now_us - *last <= self.cfg.incident_window_us {
                break;
            }
            let key = key.clone();
            self.incident_order.pop_front();
            // the queue entry may be stale (incident touched since): re-check
            if let Some(i) = self.incidents.get(&key) {
                if now_us - i.last_us > self.cfg.incident_window_us {
                    self.incidents.remove(&key);
                } else {
                    let last = i.last_us;
                    self.incident_order.push_back((last, key));
                }
            }
        }
    }

    fn close_fold(&mut self, key: &str, out: &mut Vec<Finding>) {
        if let Some(f) = self.folds.remove(key) {
            if f.alert.count > f.emitted_count {
                let mut a = f.alert;
                a.update = true;
                out.push(Finding::Alert(Box::new(a)));
            }
        }
    }

    /// Takes a raw alert from the engine; emits it unless it is a duplicate, and any incident
    /// it completes or grows.
    pub fn push(&mut self, alert: Alert, out: &mut Vec<Finding>) {
        self.advance(alert.time_us, out);
        if let Some(f) = self.folds.get_mut(&alert.dedup_key) {
            if alert.time_us < f.expires_us {
                f.alert.count += 1;
                f.alert.last_seen = alert.time.clone();
                self.folded += 1;
                return;
            }
        }
        if self.folds.len() >= self.cfg.max_folds {
            if let Some((_, key)) = self.fold_order.pop_front() {
                self.close_fold(&key, out);
            }
        }
        let expires = alert.time_us.saturating_add(alert.dedup_window_us.max(1));
        self.fold_order.push_back((expires, alert.dedup_key.clone()));
        self.folds
            .insert(alert.dedup_key.clone(), Fold { alert: alert.clone(), expires_us: expires, emitted_count: 1 });
        self.correlate(&alert, out);
        out.push(Finding::Alert(Box::new(alert)));
    }

    fn correlate(&mut self, a: &Alert, out: &mut Vec<Finding>) {
        let mut keys: Vec<(&'static str, String)> = Vec::new();
        if !a.entities.user.is_empty() {
            keys.push(("user", a.entities.user.clone()));
        }
        if !a.entities.pod.is_empty() {
            keys.push(("pod", format!("{}/{}", a.entities.namespace, a.entities.pod)));
        }
        for (kind, entity) in keys {
            let key = format!("{kind}:{entity}");
            if !self.incidents.contains_key(&key) {
                if self.incidents.len() >= self.cfg.max_incidents {
                    if let Some((_, old)) = self.incident_order.pop_front() {
                        self.incidents.remove(&old);
                    }
                }
                self.incidents_opened += 1;
                self.incidents.insert(
                    key.clone(),
                    OpenIncident {
                        id: make_id(&format!("incident\u{0}{key}\u{0}{}", a.time_us)),
                        entity_kind: kind,
                        entity: entity.clone(),
                        first_us: a.time_us,
                        last_us: a.time_us,
                        severity: a.severity,
                        tactics: BTreeSet::new(),
                        techniques: BTreeSet::new(),
                        alert_ids: Vec::new(),
                        rule_ids: BTreeSet::new(),
                        alert_count: 0,
                        emitted_tactics: 0,
                    },
                );
                self.incident_order.push_back((a.time_us, key.clone()));
            }
            let Some(inc) = self.incidents.get_mut(&key) else { continue };
            inc.last_us = inc.last_us.max(a.time_us);
            inc.severity = inc.severity.max(a.severity);
            for t in &a.tactics {
                if let Some(tac) = attack::tactic(&t.id) {
                    inc.tactics.insert((tac.order, tac.id));
                }
            }
            for t in &a.techniques {
                if inc.techniques.len() < 64 {
                    inc.techniques.insert(t.id.clone());
                }
            }
            if inc.alert_ids.len() < 100 {
                inc.alert_ids.push(a.id.clone());
            }
            if inc.rule_ids.len() < 100 {
                inc.rule_ids.insert(a.rule.id.clone());
            }
            inc.alert_count += 1;
            let n = inc.tactics.len();
            if n >= self.cfg.incident_min_tactics && n > inc.emitted_tactics {
                let update = inc.emitted_tactics >= self.cfg.incident_min_tactics;
                inc.emitted_tactics = n;
                out.push(Finding::Incident(Box::new(render_incident(inc, update))));
            }
        }
    }

    /// Emits every pending fold update (end of input).
    pub fn flush(&mut self, out: &mut Vec<Finding>) {
        while let Some((_, key)) = self.fold_order.pop_front() {
            self.close_fold(&key, out);
        }
    }

    /// Open fold entries and incidents (for memory accounting).
    pub fn open(&self) -> (usize, usize) {
        (self.folds.len(), self.incidents.len())
    }
}

fn render_incident(inc: &OpenIncident, update: bool) -> Incident {
    let tactics: Vec<AttackRef> = inc
        .tactics
        .iter()
        .filter_map(|(_, id)| attack::tactic(id))
        .map(|t| AttackRef { id: t.id.to_string(), name: t.name.to_string() })
        .collect();
    let techniques: Vec<AttackRef> = inc
        .techniques
        .iter()
        .filter_map(|id| attack::technique(id))
        .map(|t| AttackRef { id: t.id.to_string(), name: t.name.to_string() })
        .collect();
    let mut severity = inc.severity;
    if tactics.len() >= 3 {
        severity = match severity {
            Severity::Informational => Severity::Low,
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        };
    }
    let stages: Vec<&str> = tactics.iter().map(|t| t.name.as_str()).collect();
    Incident {
        id: inc.id.clone(),
        update,
        entity_kind: inc.entity_kind.to_string(),
        entity: inc.entity.clone(),
        severity,
        summary: format!(
            "{} alerts on {} {} across {} ATT&CK tactics: {}",
            inc.alert_count,
            inc.entity_kind,
            inc.entity,
            tactics.len(),
            stages.join(" → ")
        ),
        tactics,
        techniques,
        alert_ids: inc.alert_ids.clone(),
        rule_ids: inc.rule_ids.iter().cloned().collect(),
        alert_count: inc.alert_count,
        first_seen: format_rfc3339_us(inc.first_us),
        last_seen: format_rfc3339_us(inc.last_us),
    }
}
