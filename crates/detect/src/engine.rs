//! The rule engine: rules compiled once, indexed by (verb, resource) from their `match:` blocks,
//! evaluated only against the events that can match them.
//!
//! For each event: the index gives the candidate rules (explicit verb+resource pairs, verb-only,
//! resource-only and catch-all lists, without allocation); each candidate's native predicates
//! (subresource, stage, outcome, user / namespace globs, user-agent substrings) run first, then
//! its CEL condition, its exceptions, and its stateful logic (thresholds, first-seen). Matching
//! is pure: no I/O.

use crate::alert::{make_id, Alert, AttackRef, Entities, ResourceRef, RuleRef};
use crate::attack;
use crate::bind::{self, Scope};
use crate::event::{format_rfc3339_us, Event, SensorKind};
use crate::fields::{render, Field, FieldValue, Piece};
use crate::rules::{
    expand_macros, DiagLevel, Diagnostic, ExceptionDef, MatchSpec, Maturity, RuleDef, RuleSet, RulesError, Source,
    StatefulDef, Subresources,
};
use crate::state::{BoundedMap, Window};
use cel::common::value::Val;
use cel::{Context, Env, Program, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Cluster name for alerts (`ka.cluster`).
    pub cluster: String,
    /// Load incubating rules too (default true).
    pub include_incubating: bool,
    /// Cap on groups / keys per stateful rule.
    pub state_capacity: usize,
    /// Default fold window, microseconds (rules may set `dedup.window`).
    pub dedup_window_us: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cluster: String::new(),
            include_incubating: true,
            state_capacity: 10_000,
            dedup_window_us: 10 * 60 * 1_000_000,
        }
    }
}

/// Per-rule counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuleCounters {
    /// Events that passed the rule's native predicates.
    pub candidates: u64,
    /// CEL evaluations.
    pub evaluations: u64,
    /// Conditions that held.
    pub matches: u64,
    /// Alerts raised.
    pub alerts: u64,
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Events processed.
    pub events: u64,
    /// Rule candidates from the index.
    pub candidates: u64,
    /// CEL evaluations.
    pub evaluations: u64,
    /// Conditions that matched.
    pub matches: u64,
    /// Matches dropped by exceptions.
    pub excepted: u64,
    /// CEL evaluation errors (counted as no match).
    pub cel_errors: u64,
    /// Alerts raised (before folding).
    pub alerts: u64,
}

/// A precompiled glob.
#[derive(Debug, Clone)]
enum Pat {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Glob(String),
}

impl Pat {
    fn new(p: &str) -> Pat {
        let inner = p.trim_matches('*');
        if !inner.contains(['*', '?']) {
            let (lead, trail) = (p.starts_with('*'), p.ends_with('*') && p.len() > 1);
            return match (lead, trail) {
                (false, false) => Pat::Exact(p.to_string()),
                (false, true) => Pat::Prefix(inner.to_string()),
                (true, false) => Pat::Suffix(inner.to_string()),
                (true, true) => Pat::Contains(inner.to_string()),
            };
        }
        Pat::Glob(p.to_string())
    }
    fn test(&self, s: &str) -> bool {
        match self {
            Pat::Exact(p) => s == p,
            Pat::Prefix(p) => s.starts_with(p.as_str()),
            Pat::Suffix(p) => s.ends_with(p.as_str()),
            Pat::Contains(p) => s.contains(p.as_str()),
            Pat::Glob(p) => bind::glob(p, s),
        }
    }
}

fn any(pats: &[Pat], s: &str) -> bool {
    pats.iter().any(|p| p.test(s))
}

struct Matcher {
    subresources: Subresources,
    stages: u8,
    success: Option<bool>,
    impersonation: Option<bool>,
    users: Vec<Pat>,
    exclude_users: Vec<Pat>,
    namespaces: Vec<Pat>,
    exclude_namespaces: Vec<Pat>,
    event_types: u8,
    user_agents: Option<aho_corasick::AhoCorasick>,
    outside: Vec<String>,
}

fn stage_bit(s: crate::event::Stage) -> u8 {
    1 << (s as u8)
}

fn kind_bit(k: SensorKind) -> u8 {
    1 << (k as u8)
}

/// Expands `@list` items.
fn expand(v: &[String], lists: &RuleSet) -> Vec<String> {
    v.iter()
        .flat_map(|s| match s.strip_prefix('@') {
            Some(name) => lists.list(name).map(|l| l.to_vec()).unwrap_or_default(),
            None => vec![s.clone()],
        })
        .collect()
}

impl Matcher {
    fn new(m: &MatchSpec, lists: &RuleSet) -> Self {
        let pats = |v: &[String]| -> Vec<Pat> { expand(v, lists).iter().map(|p| Pat::new(p)).collect() };
        let uas = expand(&m.user_agents, lists);
        Matcher {
            subresources: match &m.subresources {
                Subresources::Set(v) => Subresources::Set(expand(v, lists)),
                other => other.clone(),
            },
            stages: m.stages.iter().fold(0, |acc, s| acc | stage_bit(*s)),
            success: m.success,
            impersonation: m.impersonation,
            users: pats(&m.users),
            exclude_users: pats(&m.exclude_users),
            namespaces: pats(&m.namespaces),
            exclude_namespaces: pats(&m.exclude_namespaces),
            event_types: m
                .event_types
                .iter()
                .filter_map(|t| match t.as_str() {
                    "process" => Some(kind_bit(SensorKind::Process)),
                    "file" => Some(kind_bit(SensorKind::File)),
                    "network" => Some(kind_bit(SensorKind::Network)),
                    "exit" => Some(kind_bit(SensorKind::Exit)),
                    "syscall" => Some(kind_bit(SensorKind::Syscall)),
                    _ => None,
                })
                .fold(0, |a, b| a | b),
            outside: expand(&m.source_ip_outside, lists),
            user_agents: if uas.is_empty() {
                None
            } else {
                aho_corasick::AhoCorasick::builder().ascii_case_insensitive(true).build(&uas).ok()
            },
        }
    }

    fn test(&self, ev: &Event<'_>) -> bool {
        match ev {
            Event::Audit(a) => {
                if self.stages & stage_bit(a.stage) == 0 {
                    return false;
                }
                let sub = a.object_ref.subresource.as_str();
                match &self.subresources {
                    Subresources::None => {
                        if !sub.is_empty() {
                            return false;
                        }
                    }
                    Subresources::Any => {}
                    Subresources::Set(v) => {
                        if !v.iter().any(|s| s == sub) {
                            return false;
                        }
                    }
                }
                if let Some(want) = self.success {
                    let code = a.response_status.code;
                    let ok = code == 0 || (100..400).contains(&code);
                    if ok != want {
                        return false;
                    }
                }
                if let Some(want) = self.impersonation {
                    if a.impersonated_user.is_some() != want {
                        return false;
                    }
                }
                let user = a.user.username.as_str();
                if !self.users.is_empty() && !any(&self.users, user) {
                    return false;
                }
                if !self.exclude_users.is_empty() && any(&self.exclude_users, user) {
                    return false;
                }
                let ns = a.object_ref.namespace.as_str();
                if !self.namespaces.is_empty() && !any(&self.namespaces, ns) {
                    return false;
                }
                if !self.exclude_namespaces.is_empty() && any(&self.exclude_namespaces, ns) {
                    return false;
                }
                if !self.outside.is_empty() {
                    let Ok(ip) = a.source_ip().parse::<std::net::IpAddr>() else { return false };
                    if self.outside.iter().any(|c| bind::cidr_contains(c, ip)) {
                        return false;
                    }
                }
                if let Some(ac) = &self.user_agents {
                    if !ac.is_match(a.user_agent.as_str()) {
                        return false;
                    }
                }
                true
            }
            Event::Sensor(s) => self.event_types == 0 || self.event_types & kind_bit(s.kind) != 0,
        }
    }
}

enum RuleState {
    Threshold(BoundedMap<u64, Window>),
    FirstSeen(BoundedMap<u64, ()>),
}

struct CompiledRule {
    def: RuleDef,
    program: Option<Program>,
    matcher: Matcher,
    output: Vec<Piece>,
    tactics: Vec<AttackRef>,
    techniques: Vec<AttackRef>,
    dedup_by: Vec<Field>,
    dedup_window_us: i64,
}

#[derive(Default)]
struct Index {
    pairs: HashMap<String, HashMap<String, Vec<u32>>>,
    by_verb: HashMap<String, Vec<u32>>,
    by_resource: HashMap<String, Vec<u32>>,
    wild: Vec<u32>,
    sensor: Vec<u32>,
}

static EMPTY: Vec<u32> = Vec::new();

impl Index {
    fn add(&mut self, i: u32, r: &RuleDef, lists: &RuleSet) {
        if r.source == Source::Sensor {
            self.sensor.push(i);
            return;
        }
        let verbs = expand(&r.matcher.verbs, lists);
        let resources = expand(&r.matcher.resources, lists);
        // a `@list` that expands to nothing matches nothing (not everything)
        if (verbs.is_empty() && !r.matcher.verbs.is_empty())
            || (resources.is_empty() && !r.matcher.resources.is_empty())
        {
            return;
        }
        match (verbs.is_empty(), resources.is_empty()) {
            (false, false) => {
                for v in &verbs {
                    for res in &resources {
                        self.pairs.entry(v.clone()).or_default().entry(res.clone()).or_default().push(i);
                    }
                }
            }
            (false, true) => {
                for v in &verbs {
                    self.by_verb.entry(v.clone()).or_default().push(i);
                }
            }
            (true, false) => {
                for res in &resources {
                    self.by_resource.entry(res.clone()).or_default().push(i);
                }
            }
            (true, true) => self.wild.push(i),
        }
    }

    /// Candidate lists for an event (disjoint by construction).
    fn lookup(&self, ev: &Event<'_>) -> [&[u32]; 4] {
        match ev {
            Event::Audit(a) => {
                let v = a.verb.as_str();
                let r = a.object_ref.resource.as_str();
                [
                    self.pairs.get(v).and_then(|m| m.get(r)).unwrap_or(&EMPTY),
                    self.by_verb.get(v).unwrap_or(&EMPTY),
                    self.by_resource.get(r).unwrap_or(&EMPTY),
                    &self.wild,
                ]
            }
            Event::Sensor(_) => [&self.sensor, &EMPTY, &EMPTY, &EMPTY],
        }
    }
}

/// The compiled, indexed rules and their state.
pub struct Engine {
    per_rule: Vec<RuleCounters>,
    env: Arc<Env>,
    rules: Vec<CompiledRule>,
    state: Vec<Option<RuleState>>,
    index: Index,
    lists: HashMap<String, Box<dyn Val>>,
    cfg: EngineConfig,
    start_us: Option<i64>,
    stats: EngineStats,
    default_dedup: Vec<Field>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("rules", &self.rules.len()).field("stats", &self.stats).finish()
    }
}

fn diag(r: &RuleDef, msg: String) -> Diagnostic {
    Diagnostic {
        file: r.origin.file.clone(),
        line: r.origin.line,
        column: r.origin.col,
        level: DiagLevel::Error,
        message: msg,
    }
}

impl Engine {
    /// Compiles the enabled rules of `rules`.
    pub fn new(rules: &RuleSet, cfg: EngineConfig) -> Result<Engine, RulesError> {
        let env = Arc::new(bind::env().map_err(|e| {
            RulesError(vec![Diagnostic {
                file: String::new(),
                line: 0,
                column: 0,
                level: DiagLevel::Error,
                message: format!("CEL environment: {e}"),
            }])
        })?);
        let macros = rules.macros();
        let mut errs = Vec::new();
        let mut compiled = Vec::new();
        for r in rules.rules() {
            if !r.enabled || (r.maturity == Maturity::Incubating && !cfg.include_incubating) {
                continue;
            }
            let expanded = match expand_macros(&r.condition, &macros) {
                Ok(x) => x,
                Err(e) => {
                    errs.push(diag(r, format!("rule `{}`: {e}", r.id)));
                    continue;
                }
            };
            let program = if expanded.trim() == "true" {
                None
            } else {
                match env.compile(&expanded) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        errs.push(diag(r, format!("rule `{}`: condition does not compile: {e}", r.id)));
                        continue;
                    }
                }
            };
            let output = match crate::fields::parse_template(&r.output) {
                Ok(p) => p,
                Err((_, e)) => {
                    errs.push(diag(r, format!("rule `{}`: output: {e}", r.id)));
                    continue;
                }
            };
            let tactics = r
                .tactics
                .iter()
                .filter_map(|t| attack::tactic(t))
                .map(|t| AttackRef { id: t.id.to_string(), name: t.name.to_string() })
                .collect();
            let techniques = r
                .techniques
                .iter()
                .filter_map(|t| attack::technique(t))
                .map(|t| AttackRef { id: t.id.to_string(), name: t.name.to_string() })
                .collect();
            let (dedup_by, dedup_window_us) = match (&r.dedup, &r.stateful) {
                (Some(d), _) => (d.by.clone(), d.window_us),
                (None, Some(StatefulDef::Threshold { group_by, .. })) => (group_by.clone(), cfg.dedup_window_us),
                (None, Some(StatefulDef::FirstSeen { key, .. })) => (key.clone(), cfg.dedup_window_us),
                (None, None) => (Vec::new(), cfg.dedup_window_us),
            };
            compiled.push(CompiledRule {
                def: r.clone(),
                program,
                matcher: Matcher::new(&r.matcher, rules),
                output,
                tactics,
                techniques,
                dedup_by,
                dedup_window_us,
            });
        }
        if !errs.is_empty() {
            return Err(RulesError(errs));
        }
        let mut index = Index::default();
        let mut state = Vec::new();
        for (i, c) in compiled.iter().enumerate() {
            index.add(i as u32, &c.def, rules);
            state.push(match &c.def.stateful {
                Some(StatefulDef::Threshold { .. }) => Some(RuleState::Threshold(BoundedMap::new(cfg.state_capacity))),
                Some(StatefulDef::FirstSeen { .. }) => Some(RuleState::FirstSeen(BoundedMap::new(cfg.state_capacity))),
                None => None,
            });
        }
        let lists = rules.lists().map(|(k, v)| (k.to_string(), bind::string_list(v))).collect();
        Ok(Engine {
            per_rule: vec![RuleCounters::default(); compiled.len()],
            env,
            rules: compiled,
            state,
            index,
            lists,
            cfg,
            start_us: None,
            stats: EngineStats::default(),
            default_dedup: vec![
                Field::UserName,
                Field::Namespace,
                Field::Resource,
                Field::Subresource,
                Field::Name,
                Field::SourceIp,
                Field::Evt(vec!["pod".into()]),
                Field::Evt(vec!["proc".into(), "exe".into()]),
            ],
        })
    }

    /// Number of compiled (enabled) rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The compiled rules' definitions.
    pub fn rules(&self) -> impl Iterator<Item = &RuleDef> {
        self.rules.iter().map(|r| &r.def)
    }

    /// Counters so far.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Per-rule counters, by rule ID.
    pub fn rule_stats(&self) -> Vec<(&str, &RuleCounters)> {
        self.rules.iter().zip(&self.per_rule).map(|(r, c)| (r.def.id.as_str(), c)).collect()
    }

    /// The IDs of the rules the index offers for `ev` (before native predicates).
    pub fn candidates(&self, ev: &Event<'_>) -> Vec<&str> {
        self.index.lookup(ev).iter().flat_map(|l| l.iter()).map(|&i| self.rules[i as usize].def.id.as_str()).collect()
    }

    /// Evaluates `ev` against its candidate rules; raw alerts (count 1) go to `out`.
    pub fn process(&mut self, ev: &Event<'_>, out: &mut Vec<Alert>) {
        let Engine { per_rule, env, rules, state, index, lists, cfg, start_us, stats, default_dedup } = self;
        stats.events += 1;
        let t = ev.time_us();
        if start_us.is_none() && t != 0 {
            *start_us = Some(t);
        }
        let mut scope: Option<Scope<'_>> = None; // built on the first candidate that passes
        for list in index.lookup(ev) {
            for &ri in list {
                let ri = ri as usize;
                stats.candidates += 1;
                let rule = &rules[ri];
                if !rule.matcher.test(ev) {
                    continue;
                }
                let sc = scope.get_or_insert_with(|| Scope::new(ev, &cfg.cluster, lists));
                let counters = &mut per_rule[ri];
                counters.candidates += 1;
                if let Some(p) = &rule.program {
                    stats.evaluations += 1;
                    counters.evaluations += 1;
                    let mut ctx = Context::with_env(env.clone());
                    ctx.set_variable_resolver(sc);
                    match p.execute(&ctx) {
                        Ok(Value::Bool(true)) => {}
                        Ok(_) => continue,
                        Err(e) => {
                            stats.cel_errors += 1;
                            if stats.cel_errors <= 20 {
                                tracing::debug!(rule = %rule.def.id, error = %e, "condition error (no match)");
                            }
                            continue;
                        }
                    }
                }
                stats.matches += 1;
                counters.matches += 1;
                if rule.def.exceptions.iter().any(|x| excepted(x, sc)) {
                    stats.excepted += 1;
                    continue;
                }
                let fire = match (&rule.def.stateful, state[ri].as_mut()) {
                    (None, _) => true,
                    (
                        Some(StatefulDef::Threshold { count, window_us, group_by, distinct }),
                        Some(RuleState::Threshold(m)),
                    ) => {
                        let key = key_hash(group_by, sc);
                        let value = distinct.as_ref().map(|f| crate::alert::fnv64(f.get(sc).render().as_bytes()));
                        m.get_or_insert_with(key, Window::default).hit(t, value, *count, *window_us)
                    }
                    (Some(StatefulDef::FirstSeen { key, learning_us }), Some(RuleState::FirstSeen(m))) => {
                        let k = key_hash(key, sc);
                        let learning = t < start_us.unwrap_or(t).saturating_add(*learning_us);
                        let seen = m.contains(&k);
                        m.get_or_insert_with(k, || ());
                        !seen && !learning
                    }
                    _ => true,
                };
                if !fire {
                    continue;
                }
                stats.alerts += 1;
                counters.alerts += 1;
                out.push(build_alert(rule, sc, default_dedup));
            }
        }
    }
}

fn key_hash(fields: &[Field], sc: &Scope<'_>) -> u64 {
    let mut s = String::new();
    for f in fields {
        s.push_str(&f.get(sc).render());
        s.push('\u{0}');
    }
    crate::alert::fnv64(s.as_bytes())
}

fn excepted(x: &ExceptionDef, sc: &Scope<'_>) -> bool {
    let values: Vec<FieldValue<'_>> = x.fields.iter().map(|f| f.get(sc)).collect();
    x.values.iter().any(|tuple| {
        tuple.iter().enumerate().all(|(i, alts)| {
            let comp = x.comps[i];
            let actual = values[i].strings();
            if comp == crate::rules::Comp::Ne {
                // every actual value differs from every listed value
                return actual.iter().all(|a| alts.iter().all(|v| comp.test(a, v)));
            }
            actual.iter().any(|a| alts.iter().any(|v| comp.test(a, v)))
        })
    })
}

fn build_alert(rule: &CompiledRule, sc: &Scope<'_>, default_dedup: &[Field]) -> Alert {
    let ev = sc.event;
    let t = ev.time_us();
    let mut entities = Entities { cluster: sc.cluster.to_string(), ..Entities::default() };
    let evidence;
    let audit_id;
    match ev {
        Event::Audit(a) => {
            let o = &a.object_ref;
            entities.namespace = o.namespace.to_string();
            entities.user = a.user.username.to_string();
            entities.groups = a.user.groups.iter().map(|g| g.to_string()).collect();
            entities.impersonated_user =
                a.impersonated_user.as_ref().map(|u| u.username.to_string()).unwrap_or_default();
            entities.source_ip = a.source_ip().to_string();
            entities.user_agent = a.user_agent.to_string();
            if !o.resource.is_empty() {
                entities.resource = Some(ResourceRef {
                    api_group: o.api_group.to_string(),
                    resource: o.resource.to_string(),
                    subresource: o.subresource.to_string(),
                    namespace: o.namespace.to_string(),
                    name: o.name.to_string(),
                });
            }
            if o.resource.as_str() == "pods" {
                entities.pod = if o.name.is_empty() {
                    sc.pod().map(|p| p.name.clone()).unwrap_or_default()
                } else {
                    o.name.to_string()
                };
            }
            if let Some(p) = sc.pod() {
                entities.images = p.images().filter(|i| !i.is_empty()).map(str::to_string).collect();
                entities.images.dedup();
            }
            evidence = crate::alert::Evidence::from_json(a.raw);
            audit_id = a.audit_id.to_string();
        }
        Event::Sensor(s) => {
            entities.cluster =
                if s.entity.cluster.is_empty() { sc.cluster.to_string() } else { s.entity.cluster.clone() };
            entities.namespace = s.entity.namespace.clone();
            entities.pod = s.entity.pod.clone();
            entities.container = s.entity.container.clone();
            if !s.entity.image.is_empty() {
                entities.images = vec![s.entity.image.clone()];
            }
            entities.node = s.node.clone();
            evidence = crate::alert::Evidence::from_value(s);
            audit_id = format!("{}:{}", s.process.pid, s.time_us);
        }
    }
    let by: &[Field] = if rule.dedup_by.is_empty() { default_dedup } else { &rule.dedup_by };
    let mut dedup_key = rule.def.id.clone();
    for f in by {
        dedup_key.push('\u{0}');
        dedup_key.push_str(&f.get(sc).render());
    }
    let time = format_rfc3339_us(t);
    Alert {
        id: make_id(&format!("{}\u{0}{audit_id}\u{0}{t}\u{0}{dedup_key}", rule.def.id)),
        time: time.clone(),
        first_seen: time.clone(),
        last_seen: time,
        count: 1,
        update: false,
        rule: RuleRef {
            id: rule.def.id.clone(),
            name: rule.def.name.clone(),
            description: rule.def.description.clone(),
            maturity: match rule.def.maturity {
                Maturity::Stable => "stable".into(),
                Maturity::Incubating => "incubating".into(),
            },
        },
        severity: rule.def.severity,
        tactics: rule.tactics.clone(),
        techniques: rule.techniques.clone(),
        message: render(&rule.output, sc),
        entities,
        source: rule.def.source.as_str().to_string(),
        evidence,
        remediation: rule.def.remediation.clone(),
        tags: rule.def.tags.clone(),
        time_us: t,
        dedup_key,
        dedup_window_us: rule.dedup_window_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_load_and_compile() {
        let rs = match RuleSet::builtin() {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let audit = rs.rules().iter().filter(|r| r.source == Source::K8sAudit).count();
        assert!(audit >= 40, "{audit} audit rules");
        let e = match Engine::new(&rs, EngineConfig::default()) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(e.rule_count(), rs.rules().iter().filter(|r| r.enabled).count());
    }
}
