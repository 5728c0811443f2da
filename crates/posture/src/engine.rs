//! Running the checks: the per-object evaluator, the cluster-wide context and [`assess`].

use crate::catalogue::{catalogue, check, WORKLOADS};
use crate::exceptions::Matcher;
use crate::{checks, frameworks, Assessment, CheckTally, Excepted, Finding, Framework, ManualItem, ObjectRef, Options};
use palisade_k8s::Object;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// Cluster-wide facts the per-object checks need, computed once from all objects.
///
/// [`Context::default()`] is an empty context: checks that need cross-object facts (namespaces
/// without NetworkPolicy, service accounts that disable token automount, owner de-duplication)
/// then do not apply rather than guess.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Whether the facts below describe the whole cluster/input (false for an empty context).
    pub complete: bool,
    /// Namespaces that contain at least one NetworkPolicy.
    pub namespaces_with_network_policy: HashSet<String>,
    /// `(namespace, name)` of ServiceAccounts with `automountServiceAccountToken: false`.
    pub service_accounts_without_automount: HashSet<(String, String)>,
    /// `(kind, namespace, name)` of workload controllers present in the input, used to skip pods
    /// and ReplicaSets whose controller is assessed too (no duplicate findings in cluster dumps).
    pub controllers: HashSet<(String, String, String)>,
}

impl Context {
    /// Collect the facts from every object (one linear pass).
    pub fn from_objects(objects: &[Object], opts: &Options) -> Context {
        let mut ctx = Context { complete: true, ..Context::default() };
        for o in objects {
            ctx.observe(o, opts);
        }
        ctx
    }

    /// Add one object's facts. For streaming: observe every object of the input, then set
    /// `complete` (as [`Context::from_objects`] does).
    pub fn observe(&mut self, o: &Object, opts: &Options) {
        match o.kind.as_str() {
            "NetworkPolicy" => {
                self.namespaces_with_network_policy.insert(ns_key(o, opts).to_string());
            }
            "ServiceAccount" if o.value.get("automountServiceAccountToken").and_then(Value::as_bool) == Some(false) => {
                self.service_accounts_without_automount.insert((ns_key(o, opts).to_string(), o.name.clone()));
            }
            k if WORKLOADS.contains(&k) && k != "Pod" => {
                self.controllers.insert((o.kind.clone(), ns_key(o, opts).to_string(), o.name.clone()));
            }
            _ => {}
        }
    }

    /// Whether the object is managed by a workload controller that is itself in the input.
    pub(crate) fn owned_by_present_controller(&self, obj: &Object, opts: &Options) -> bool {
        let Some(owners) = obj.value.pointer("/metadata/ownerReferences").and_then(Value::as_array) else {
            return false;
        };
        owners.iter().any(|o| {
            let controller = o.get("controller").and_then(Value::as_bool).unwrap_or(false);
            let kind = o.get("kind").and_then(Value::as_str).unwrap_or("");
            let name = o.get("name").and_then(Value::as_str).unwrap_or("");
            controller
                && WORKLOADS.contains(&kind)
                && self.controllers.contains(&(kind.to_string(), ns_key(obj, opts).to_string(), name.to_string()))
        })
    }
}

/// The namespace an object is in, for cross-object facts (`default` for unspecified namespaces
/// when [`Options::missing_namespace_is_default`]).
pub(crate) fn ns_key<'a>(obj: &'a Object, opts: &Options) -> &'a str {
    if obj.namespace.is_empty() && opts.missing_namespace_is_default {
        "default"
    } else {
        obj.namespace.as_str()
    }
}

/// Which checks run, by catalogue index.
#[derive(Debug)]
pub(crate) struct Enabled {
    on: Vec<bool>,
}

fn id_matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => pattern.eq_ignore_ascii_case(id),
    }
}

impl Enabled {
    pub(crate) fn new(opts: &Options) -> Enabled {
        let on = catalogue()
            .iter()
            .map(|c| {
                !c.node_access_required
                    && (opts.frameworks.is_empty() || opts.frameworks.iter().any(|f| f.includes(c)))
                    && (opts.only_checks.is_empty() || opts.only_checks.iter().any(|p| id_matches(p, c.id)))
                    && !opts.skip_checks.iter().any(|p| id_matches(p, c.id))
            })
            .collect();
        Enabled { on }
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        index_of(id).is_some_and(|i| self.on.get(i).copied().unwrap_or(false))
    }

    pub(crate) fn custom_enabled(opts: &Options, id: &str) -> bool {
        opts.frameworks.is_empty()
            && (opts.only_checks.is_empty() || opts.only_checks.iter().any(|p| id_matches(p, id)))
            && !opts.skip_checks.iter().any(|p| id_matches(p, id))
    }
}

/// Collects the findings of one object and which checks applied to it.
#[derive(Debug)]
pub(crate) struct Emitter<'a> {
    pub obj: &'a Object,
    pub ctx: &'a Context,
    pub opts: &'a Options,
    enabled: &'a Enabled,
    objref: Option<ObjectRef>,
    pub findings: Vec<Finding>,
    /// Catalogue indices of the checks that applied, in order.
    pub applied: Vec<u16>,
    applied_bits: [u64; 4],
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(obj: &'a Object, ctx: &'a Context, opts: &'a Options, enabled: &'a Enabled) -> Self {
        Emitter {
            obj,
            ctx,
            opts,
            enabled,
            objref: None,
            findings: Vec::new(),
            applied: Vec::new(),
            applied_bits: [0; 4],
        }
    }

    /// The object's full JSON.
    pub fn root(&self) -> &'a Value {
        &self.obj.value
    }

    fn bit(i: usize) -> (usize, u64) {
        (i / 64, 1u64 << (i % 64))
    }

    /// Record that check `id` applies to this object; false when the check is disabled.
    pub fn applies(&mut self, id: &'static str) -> bool {
        let Some(i) = index_of(id) else {
            debug_assert!(false, "unknown check id {id}");
            return false;
        };
        if !self.enabled.on.get(i).copied().unwrap_or(false) {
            return false;
        }
        let (w, b) = Self::bit(i);
        if let Some(word) = self.applied_bits.get_mut(w) {
            if *word & b == 0 {
                *word |= b;
                self.applied.push(i as u16);
            }
        }
        true
    }

    /// Record a failure of check `id` (which must have been declared applicable).
    pub fn fail(&mut self, id: &'static str, path: String, message: String, patch: Option<Value>) {
        let Some(i) = index_of(id) else { return };
        let (w, b) = Self::bit(i);
        if self.applied_bits.get(w).is_none_or(|word| word & b == 0) {
            return;
        }
        let Some(c) = catalogue().get(i) else { return };
        let objref = self.objref.get_or_insert_with(|| ObjectRef::of(self.obj)).clone();
        self.findings.push(Finding {
            check_id: id.to_string(),
            severity: c.severity,
            object: objref,
            path,
            message,
            remediation: c.remediation.to_string(),
            patch,
        });
    }
}

/// Catalogue index of a check id (FNV-hashed lookup: this is on the hot path).
fn index_of(id: &str) -> Option<usize> {
    static INDEX: OnceLock<HashMap<&'static str, usize, BuildHasherDefault<Fnv>>> = OnceLock::new();
    INDEX.get_or_init(|| catalogue().iter().enumerate().map(|(i, c)| (c.id, i)).collect()).get(id).copied()
}

/// FNV-1a, for short static keys.
#[derive(Debug, Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Evaluate one object with every enabled built-in check and the custom Rego policies.
///
/// `ctx` holds cluster-wide facts ([`Context::from_objects`]); with [`Context::default()`] the
/// cross-object checks do not apply. Exceptions are *not* applied here: [`assess`] does that, and
/// an admission webhook may use [`crate::Exception::matches`] itself.
pub fn evaluate_object(obj: &Object, ctx: &Context, opts: &Options) -> Vec<Finding> {
    let enabled = Enabled::new(opts);
    let mut warnings = Vec::new();
    let (findings, _) = evaluate_inner(obj, ctx, opts, &enabled, &mut warnings);
    findings
}

/// Findings and applied check ids of one object.
fn evaluate_inner(
    obj: &Object,
    ctx: &Context,
    opts: &Options,
    enabled: &Enabled,
    warnings: &mut Vec<String>,
) -> (Vec<Finding>, Vec<Cow<'static, str>>) {
    let mut e = Emitter::new(obj, ctx, opts, enabled);
    checks::run(&mut e);
    let cat = catalogue();
    let mut applied: Vec<Cow<'static, str>> =
        e.applied.iter().filter_map(|&i| cat.get(usize::from(i))).map(|c| Cow::Borrowed(c.id)).collect();
    let mut findings = e.findings;
    for policy in &opts.custom_rego {
        if !policy.applies_to(obj) || !Enabled::custom_enabled(opts, &policy.id) {
            continue;
        }
        applied.push(Cow::Owned(policy.id.clone()));
        match policy.evaluate(obj) {
            Ok(mut f) => findings.append(&mut f),
            Err(err) => warnings.push(format!("rego policy {}: {}: {err}", policy.id, obj.id())),
        }
    }
    (findings, applied)
}

/// Namespaces used by workloads that have no Namespace object and no NetworkPolicy: their
/// findings are reported on a synthesised Namespace reference.
fn implicit_namespace_findings(
    objects: &[Object],
    ctx: &Context,
    opts: &Options,
    enabled: &Enabled,
) -> Vec<(String, Option<Finding>)> {
    const ID: &str = "PAL-K8S-300";
    if !enabled.contains(ID) {
        return Vec::new();
    }
    let declared: HashSet<&str> = objects.iter().filter(|o| o.kind == "Namespace").map(|o| o.name.as_str()).collect();
    let mut seen: HashMap<&str, &Object> = HashMap::new();
    let mut order = Vec::new();
    for o in objects {
        if !WORKLOADS.contains(&o.kind.as_str()) {
            continue;
        }
        let ns = ns_key(o, opts);
        if ns.is_empty() || declared.contains(ns) || crate::checks::network::exempt_namespace(ns) {
            continue;
        }
        if !seen.contains_key(ns) {
            seen.insert(ns, o);
            order.push(ns);
        }
    }
    let Some(c) = check(ID) else { return Vec::new() };
    order
        .into_iter()
        .filter_map(|ns| {
            let first = seen.get(ns)?;
            let has = ctx.namespaces_with_network_policy.contains(ns);
            let finding = (!has).then(|| Finding {
                check_id: ID.to_string(),
                severity: c.severity,
                object: ObjectRef {
                    kind: "Namespace".into(),
                    namespace: String::new(),
                    name: ns.to_string(),
                    api_version: "v1".into(),
                    file: first.origin.file.clone(),
                    line: 0,
                },
                path: "/metadata/name".into(),
                message: format!(
                    "namespace \"{ns}\" (used by {} {}; no Namespace object in the input) has no NetworkPolicy",
                    first.kind, first.name
                ),
                remediation: c.remediation.to_string(),
                patch: None,
            });
            Some((ns.to_string(), finding))
        })
        .collect()
}

/// Tally accumulator: lookups without allocating.
#[derive(Debug, Default)]
struct Acc {
    tally: CheckTally,
    ns: HashMap<String, (usize, usize)>,
}

#[derive(Debug, Default)]
struct Tallies {
    by_id: HashMap<Cow<'static, str>, Acc>,
}

impl Tallies {
    #[allow(clippy::ptr_arg)] // cloning the Cow keeps borrowed ids unallocated
    fn record(&mut self, id: &Cow<'static, str>, ns: &str, failed: usize, excepted: usize) {
        let acc = match self.by_id.get_mut(id.as_ref()) {
            Some(a) => a,
            None => self.by_id.entry(id.clone()).or_default(),
        };
        let t = &mut acc.tally;
        let pn = match acc.ns.get_mut(ns) {
            Some(p) => p,
            None => acc.ns.entry(ns.to_string()).or_default(),
        };
        if failed > 0 {
            t.failed += 1;
            t.findings += failed;
            pn.1 += 1;
        } else if excepted > 0 {
            t.excepted += 1;
        } else {
            t.passed += 1;
            pn.0 += 1;
        }
    }

    fn finish(self) -> BTreeMap<String, CheckTally> {
        self.by_id
            .into_iter()
            .map(|(id, acc)| {
                let mut t = acc.tally;
                t.per_namespace = acc.ns.into_iter().collect();
                (id.into_owned(), t)
            })
            .collect()
    }
}

/// Assess every object: run the enabled checks and custom policies, apply exceptions, count
/// passes per check, list the node-level items and compute the framework scores.
///
/// Cost is linear in the number of objects: cross-object facts are gathered once into a
/// [`Context`].
pub fn assess(objects: &[Object], opts: &Options) -> Assessment {
    let ctx = Context::from_objects(objects, opts);
    assess_streaming(ctx, opts, &mut |sink| sink(objects))
}

/// Assess an input too large to hold in memory at once: `ctx` holds the cross-object facts
/// (observe every object first, see [`Context::observe`]); `feed` then hands the objects over in
/// chunks, which are assessed and dropped. The result equals [`assess`] on the whole input.
#[allow(clippy::type_complexity)] // a callback that feeds a callback
pub fn assess_streaming(ctx: Context, opts: &Options, feed: &mut dyn FnMut(&mut dyn FnMut(&[Object]))) -> Assessment {
    let mut out = Assessment::default();
    let enabled = Enabled::new(opts);
    let matcher = Matcher::new(&opts.exceptions, opts.today.as_deref(), &mut out.warnings);
    let mut tallies = Tallies::default();
    let mut ns_buf = String::new();
    // What the implicit-namespace check needs from the whole input: the Namespace objects and
    // the first workload seen in each namespace.
    let mut keep: Vec<Object> = Vec::new();
    let mut first_in_ns: HashSet<String> = HashSet::new();
    feed(&mut |objects: &[Object]| {
        out.objects += objects.len();
        for o in objects {
            if o.kind == "Namespace"
                || (WORKLOADS.contains(&o.kind.as_str()) && first_in_ns.insert(ns_key(o, opts).to_string()))
            {
                keep.push(o.clone());
            }
        }
        let results = evaluate_all(objects, &ctx, opts, &enabled);
        for (obj, (findings, applied, mut warnings)) in objects.iter().zip(results) {
            out.warnings.append(&mut warnings);
            ns_buf.clear();
            ns_buf.push_str(if obj.kind == "Namespace" { &obj.name } else { ns_key(obj, opts) });
            // (kept, excepted) finding counts per applied check, parallel to `applied`.
            let mut counts = vec![(0usize, 0usize); applied.len()];
            out.findings.reserve(findings.len());
            for f in findings {
                let slot = applied.iter().position(|a| a.as_ref() == f.check_id);
                match matcher.matching(&f, obj) {
                    Some(reason) => {
                        if let Some(c) = slot.and_then(|i| counts.get_mut(i)) {
                            c.1 += 1;
                        }
                        out.excepted.push(Excepted { finding: f, reason: reason.to_string() });
                    }
                    None => {
                        if let Some(c) = slot.and_then(|i| counts.get_mut(i)) {
                            c.0 += 1;
                        }
                        out.findings.push(f);
                    }
                }
            }
            for (id, (f, x)) in applied.iter().zip(counts) {
                tallies.record(id, &ns_buf, f, x);
            }
        }
    });

    const NETPOL: Cow<'static, str> = Cow::Borrowed("PAL-K8S-300");
    for (ns, f) in implicit_namespace_findings(&keep, &ctx, opts, &enabled) {
        let Some(f) = f else {
            tallies.record(&NETPOL, &ns, 0, 0);
            continue;
        };
        match matcher.matching_ref(&f, &f.object, &[]) {
            Some(reason) => {
                tallies.record(&NETPOL, &ns, 0, 1);
                out.excepted.push(Excepted { reason: reason.to_string(), finding: f });
            }
            None => {
                tallies.record(&NETPOL, &ns, 1, 0);
                out.findings.push(f);
            }
        }
    }
    out.tallies = tallies.finish();

    let cis_wanted = opts.frameworks.is_empty() || opts.frameworks.contains(&Framework::Cis);
    if cis_wanted {
        out.manual = catalogue()
            .iter()
            .filter(|c| c.node_access_required)
            .filter(|c| opts.only_checks.is_empty() || opts.only_checks.iter().any(|p| id_matches(p, c.id)))
            .filter(|c| !opts.skip_checks.iter().any(|p| id_matches(p, c.id)))
            .map(|c| ManualItem {
                check_id: c.id,
                title: c.title,
                cis: c.references.cis,
                reason: "not assessable via the API: needs access to the node (file permissions, ownership or process flags)",
            })
            .collect();
    }
    out.scores = frameworks::scores(&out);
    out
}

type ObjResult = (Vec<Finding>, Vec<Cow<'static, str>>, Vec<String>);

/// Evaluate all objects, on two threads for large inputs (the engine is pure and `Sync`).
fn evaluate_all(objects: &[Object], ctx: &Context, opts: &Options, enabled: &Enabled) -> Vec<ObjResult> {
    let one = |o: &Object| {
        let mut w = Vec::new();
        let (f, a) = evaluate_inner(o, ctx, opts, enabled, &mut w);
        (f, a, w)
    };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    if objects.len() < 2000 || threads < 2 || !opts.custom_rego.is_empty() {
        return objects.iter().map(one).collect();
    }
    let chunk = objects.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> =
            objects.chunks(chunk).map(|part| s.spawn(move || part.iter().map(one).collect::<Vec<_>>())).collect();
        let mut out = Vec::with_capacity(objects.len());
        for (h, part) in handles.into_iter().zip(objects.chunks(chunk)) {
            match h.join() {
                Ok(mut v) => out.append(&mut v),
                // A panic in a check is a bug; fall back to evaluating that part here.
                Err(_) => out.extend(part.iter().map(one)),
            }
        }
        out
    })
}
