//! Rule files: the format, the loader with line-numbered diagnostics, and [`RuleSet`], which
//! merges the built-in rules with users' files (add, override by id, disable, extend lists).
//!
//! # Format
//!
//! A rule file is a YAML mapping with up to five keys:
//!
//! ```yaml
//! lists:                      # named string lists, usable in conditions as CEL variables
//!   miner_images: [xmrig, minerd]
//!   trusted_registries:       # the long form can extend a list defined earlier
//!     items: [registry.example.com]
//!     append: true
//! macros:                     # named CEL sub-expressions, expanded textually (parenthesised)
//!   is_sa: ka.user.name.startsWith("system:serviceaccount:")
//! rules:
//!   - id: PAL-KA-001         # unique; a later file's rule with the same id replaces it
//!     name: Exec into pod
//!     description: Someone ran a command in a container through the API server.
//!     severity: medium        # critical | high | medium | low | informational
//!     attack: {tactics: [TA0002], techniques: [T1609]}
//!     source: k8s_audit       # k8s_audit (default) | sensor
//!     match:                  # the index: only events matching this block are evaluated
//!       verbs: [create]
//!       resources: [pods]
//!       subresources: [exec, attach]   # omitted: only requests without a subresource; ["*"]: any
//!       stages: [ResponseComplete]     # the default
//!       success: true                  # only 2xx responses (default: any outcome)
//!       exclude_users: ["system:node:*"]   # globs, checked natively before the condition
//!       user_agents: ["@recon_user_agents"] # substrings (case-insensitive); `@list` expands a list
//!       impersonation: true               # only impersonated requests
//!       source_ip_outside: ["@cluster_cidrs"] # only clients outside these CIDRs
//!     condition: ka.user.name != "" && !is_sa
//!     exceptions:
//!       - name: ci
//!         fields: [ka.user.name, ka.target.namespace]
//!         comps: ["=", "in"]            # =, !=, in, startswith, endswith, contains, glob
//!         values: [[ci-bot, [build, test]]]
//!     output: "%ka.user.name exec'd into %ka.target.namespace/%ka.target.name"
//!     remediation: [Review who can create pods/exec, …]
//!     tags: [k8s, exec]
//!     maturity: stable        # stable | incubating
//!     enabled: true
//!     stateful: {kind: threshold, count: 20, window: 60s, group_by: [ka.user.name], distinct: ka.target.name}
//!     dedup: {window: 10m, by: [ka.user.name, ka.target.name]}
//! disable: [PAL-KA-014]      # turn rules off by id
//! enable: [PAL-KA-099]
//! ```
//!
//! Conditions are CEL over the event: `ka` for audit events and `evt` for sensor events (see
//! [`crate::bind`] for the layout), the lists by name, and Palisade's functions (`inCidrs`,
//! `startsWithAny`, `imageRegistry`, …). A macro is expanded where its name appears as an
//! identifier; a macro may use lists and other macros.

use crate::attack;
use crate::bind;
use crate::event::Stage;
use crate::fields::{parse_template, Field};
use crate::yaml::{self, Kind, Node, Style};
use cel::Env;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiagLevel {
    /// Informational (e.g. a rule overrides a built-in).
    Note,
    /// Suspicious but loadable.
    Warning,
    /// The file cannot be loaded.
    Error,
}

/// A problem found in a rule file, with a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file name given to the loader.
    pub file: String,
    /// Line (1-based; 0 when not tied to a place).
    pub line: usize,
    /// Column (1-based).
    pub column: usize,
    /// Severity.
    pub level: DiagLevel,
    /// What is wrong, and how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            DiagLevel::Note => "note",
            DiagLevel::Warning => "warning",
            DiagLevel::Error => "error",
        };
        write!(f, "{}:{}:{}: {level}: {}", self.file, self.line, self.column, self.message)
    }
}

/// Whether any diagnostic is an error.
pub fn has_errors(d: &[Diagnostic]) -> bool {
    d.iter().any(|d| d.level == DiagLevel::Error)
}

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Informational,
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
    /// Parses a severity name.
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "informational" | "info" => Severity::Informational,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Rule maturity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Maturity {
    /// Tuned for production.
    Stable,
    /// New; may be noisy.
    Incubating,
}

/// The data source a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Kubernetes audit events.
    K8sAudit,
    /// Node sensor events.
    Sensor,
}

impl Source {
    /// The name used in rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::K8sAudit => "k8s_audit",
            Source::Sensor => "sensor",
        }
    }
}

/// Which subresources a rule's match block accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subresources {
    /// Only requests without a subresource (the default).
    None,
    /// Any.
    Any,
    /// These ("" stands for none).
    Set(Vec<String>),
}

/// The `match:` block: cheap native predicates that index the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchSpec {
    /// Verbs (empty: any).
    pub verbs: Vec<String>,
    /// Resources (empty: any). `pods/exec` is shorthand for resource `pods`, subresource `exec`.
    pub resources: Vec<String>,
    /// Subresources.
    pub subresources: Subresources,
    /// Stages (default: ResponseComplete).
    pub stages: Vec<Stage>,
    /// `Some(true)`: only 2xx responses; `Some(false)`: only failures.
    pub success: Option<bool>,
    /// User name globs the user must match (empty: any).
    pub users: Vec<String>,
    /// User name globs that exclude the event.
    pub exclude_users: Vec<String>,
    /// Namespace globs the target must be in (empty: any).
    pub namespaces: Vec<String>,
    /// Namespace globs that exclude the event.
    pub exclude_namespaces: Vec<String>,
    /// Sensor event types (`process`, `file`, `network`; empty: any).
    pub event_types: Vec<String>,
    /// Substrings (case-insensitive), one of which the user agent must contain (empty: any).
    pub user_agents: Vec<String>,
    /// `Some(true)`: only impersonated requests; `Some(false)`: only direct ones.
    pub impersonation: Option<bool>,
    /// CIDRs (or `@list`s of them): only requests whose client address is outside all of them.
    pub source_ip_outside: Vec<String>,
}

impl Default for MatchSpec {
    fn default() -> Self {
        MatchSpec {
            verbs: Vec::new(),
            resources: Vec::new(),
            subresources: Subresources::None,
            stages: vec![Stage::ResponseComplete],
            success: None,
            users: Vec::new(),
            exclude_users: Vec::new(),
            namespaces: Vec::new(),
            exclude_namespaces: Vec::new(),
            event_types: Vec::new(),
            user_agents: Vec::new(),
            impersonation: None,
            source_ip_outside: Vec::new(),
        }
    }
}

/// How an exception compares a field with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// One of a list of values.
    In,
    /// Starts with.
    StartsWith,
    /// Ends with.
    EndsWith,
    /// Contains.
    Contains,
    /// Glob (`*`, `?`).
    Glob,
}

impl Comp {
    fn parse(s: &str) -> Option<Comp> {
        Some(match s.to_ascii_lowercase().as_str() {
            "=" | "==" | "eq" => Comp::Eq,
            "!=" | "ne" => Comp::Ne,
            "in" => Comp::In,
            "startswith" | "starts_with" | "prefix" => Comp::StartsWith,
            "endswith" | "ends_with" | "suffix" => Comp::EndsWith,
            "contains" => Comp::Contains,
            "glob" => Comp::Glob,
            _ => return None,
        })
    }
    /// Whether `actual` satisfies this comparison with one value.
    pub fn test(self, actual: &str, value: &str) -> bool {
        match self {
            Comp::Eq | Comp::In => actual == value,
            Comp::Ne => actual != value,
            Comp::StartsWith => actual.starts_with(value),
            Comp::EndsWith => actual.ends_with(value),
            Comp::Contains => actual.contains(value),
            Comp::Glob => bind::glob(value, actual),
        }
    }
}

/// An exception: when every field compares true with one tuple of values, the event is excepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionDef {
    /// Name (for documentation and overrides).
    pub name: String,
    /// The fields.
    pub fields: Vec<Field>,
    /// One comparison per field.
    pub comps: Vec<Comp>,
    /// Value tuples: one list of alternatives per field (a plain value is a one-element list).
    pub values: Vec<Vec<Vec<String>>>,
}

/// Stateful detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatefulDef {
    /// Fires when `count` matching events (or distinct values of `distinct`) of one group happen
    /// within `window_us`.
    Threshold {
        /// Events needed.
        count: u32,
        /// Sliding window, microseconds.
        window_us: i64,
        /// Group key fields.
        group_by: Vec<Field>,
        /// Count distinct values of this field instead of events.
        distinct: Option<Field>,
    },
    /// Fires the first time a key is seen after a learning period.
    FirstSeen {
        /// Key fields.
        key: Vec<Field>,
        /// Learning period from the first event the engine sees, microseconds.
        learning_us: i64,
    },
}

/// Alert folding for a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupDef {
    /// Fold window, microseconds.
    pub window_us: i64,
    /// Fields whose values identify a duplicate.
    pub by: Vec<Field>,
}

/// Where something was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// File name.
    pub file: String,
    /// Line.
    pub line: usize,
    /// Column.
    pub col: usize,
}

/// A rule as written in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDef {
    /// Unique ID.
    pub id: String,
    /// Short name.
    pub name: String,
    /// What it detects and why it matters.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// ATT&CK tactic IDs.
    pub tactics: Vec<String>,
    /// ATT&CK technique IDs.
    pub techniques: Vec<String>,
    /// Data source.
    pub source: Source,
    /// The index block.
    pub matcher: MatchSpec,
    /// CEL condition (macros not yet expanded).
    pub condition: String,
    /// Exceptions.
    pub exceptions: Vec<ExceptionDef>,
    /// Output template.
    pub output: String,
    /// Remediation steps.
    pub remediation: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Maturity.
    pub maturity: Maturity,
    /// Enabled.
    pub enabled: bool,
    /// Stateful detection.
    pub stateful: Option<StatefulDef>,
    /// Alert folding.
    pub dedup: Option<DedupDef>,
    /// Where the rule was written.
    pub origin: Origin,
}

/// A named list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListDef {
    /// Name.
    pub name: String,
    /// Items.
    pub items: Vec<String>,
    /// Append to an earlier list of the same name rather than replace it.
    pub append: bool,
    /// Where.
    pub origin: Origin,
}

/// A named macro.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroDef {
    /// Name.
    pub name: String,
    /// CEL text.
    pub condition: String,
    /// Where.
    pub origin: Origin,
    pos: TextPos,
}

/// A parsed rule file.
#[derive(Debug, Clone, Default)]
pub struct RuleFile {
    /// Lists, in order.
    pub lists: Vec<ListDef>,
    /// Macros, in order.
    pub macros: Vec<MacroDef>,
    /// Rules, in order.
    pub rules: Vec<RuleDef>,
    /// Rule IDs to disable.
    pub disable: Vec<(String, Origin)>,
    /// Rule IDs to enable.
    pub enable: Vec<(String, Origin)>,
    cond_pos: Vec<TextPos>,
    output_pos: Vec<TextPos>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TextPos {
    line: usize,
    col: usize,
    style: Style,
}

impl Default for TextPos {
    fn default() -> Self {
        TextPos { line: 0, col: 0, style: Style::Plain }
    }
}

struct Diags<'t> {
    file: String,
    text: &'t str,
    out: Vec<Diagnostic>,
}

impl Diags<'_> {
    fn at(&mut self, line: usize, column: usize, level: DiagLevel, message: impl Into<String>) {
        self.out.push(Diagnostic { file: self.file.clone(), line, column, level, message: message.into() });
    }
    fn err(&mut self, n: &Node, message: impl Into<String>) {
        self.at(n.line, n.col, DiagLevel::Error, message);
    }
    fn warn(&mut self, n: &Node, message: impl Into<String>) {
        self.at(n.line, n.col, DiagLevel::Warning, message);
    }
    fn origin(&self, n: &Node) -> Origin {
        Origin { file: self.file.clone(), line: n.line, col: n.col }
    }
}

fn entries<'n>(n: &'n Node, what: &str, d: &mut Diags) -> Option<&'n [(Node, Node)]> {
    match &n.kind {
        Kind::Map(e) => Some(e),
        _ => {
            d.err(n, format!("{what} must be a mapping, found {}", n.type_name()));
            None
        }
    }
}

/// Checks keys against `allowed` (unknown and duplicate keys are errors) and returns a lookup.
fn keyed<'n>(e: &'n [(Node, Node)], allowed: &[&str], what: &str, d: &mut Diags) -> BTreeMap<&'n str, &'n Node> {
    let mut m = BTreeMap::new();
    for (k, v) in e {
        let Some(key) = k.as_str() else {
            d.err(k, format!("{what}: keys must be strings"));
            continue;
        };
        if !allowed.contains(&key) {
            let hint = closest(key, allowed).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
            d.err(k, format!("unknown field `{key}` in {what}{hint}; known fields: {}", allowed.join(", ")));
            continue;
        }
        if m.insert(key, v).is_some() {
            d.err(k, format!("duplicate field `{key}` in {what}"));
        }
    }
    m
}

fn closest<'a>(key: &str, options: &[&'a str]) -> Option<&'a str> {
    options
        .iter()
        .map(|o| (edit_distance(key, o), *o))
        .filter(|(dist, o)| *dist <= 2.max(o.len() / 4))
        .min()
        .map(|(_, o)| o)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn string(n: &Node, what: &str, d: &mut Diags) -> Option<String> {
    match &n.kind {
        Kind::Scalar(s, _) if !n.is_null() => Some(s.clone()),
        _ => {
            d.err(n, format!("`{what}` must be a string, found {}", n.type_name()));
            None
        }
    }
}

fn strings(n: &Node, what: &str, d: &mut Diags) -> Vec<String> {
    match &n.kind {
        Kind::Seq(items) => items.iter().filter_map(|i| string(i, what, d)).collect(),
        Kind::Scalar(..) if n.is_null() => Vec::new(),
        Kind::Scalar(s, _) => vec![s.clone()],
        Kind::Map(_) => {
            d.err(n, format!("`{what}` must be a list of strings, found a mapping"));
            Vec::new()
        }
    }
}

fn boolean(n: &Node, what: &str, d: &mut Diags) -> Option<bool> {
    let b = yaml::as_bool(n);
    if b.is_none() {
        d.err(n, format!("`{what}` must be true or false"));
    }
    b
}

/// Parses a duration: `500ms`, `30s`, `10m`, `2h`, `1d` (or a bare number of seconds).
pub fn parse_duration_us(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let mult: i64 = match unit.trim() {
        "ms" => 1_000,
        "" | "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn duration(n: &Node, what: &str, d: &mut Diags) -> Option<i64> {
    let s = string(n, what, d)?;
    match parse_duration_us(&s) {
        Some(v) if v > 0 => Some(v),
        _ => {
            d.err(n, format!("`{what}` must be a positive duration like 30s, 10m or 1h, found {s:?}"));
            None
        }
    }
}

fn field(n: &Node, what: &str, d: &mut Diags) -> Option<Field> {
    let s = string(n, what, d)?;
    match Field::parse(&s) {
        Ok(f) => Some(f),
        Err(e) => {
            d.err(n, format!("{what}: {e}"));
            None
        }
    }
}

fn fields(n: &Node, what: &str, d: &mut Diags) -> Vec<Field> {
    match &n.kind {
        Kind::Seq(items) => items.iter().filter_map(|i| field(i, what, d)).collect(),
        _ => field(n, what, d).into_iter().collect(),
    }
}

fn text_pos(n: &Node) -> TextPos {
    let style = match &n.kind {
        Kind::Scalar(_, s) => *s,
        _ => Style::Plain,
    };
    TextPos { line: n.line, col: n.col, style }
}

const TOP_KEYS: &[&str] = &["lists", "macros", "rules", "disable", "enable"];
const RULE_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "severity",
    "attack",
    "source",
    "match",
    "condition",
    "exceptions",
    "output",
    "remediation",
    "tags",
    "maturity",
    "enabled",
    "stateful",
    "dedup",
];
const MATCH_KEYS: &[&str] = &[
    "verbs",
    "resources",
    "subresources",
    "stages",
    "success",
    "users",
    "exclude_users",
    "namespaces",
    "exclude_namespaces",
    "event_types",
    "user_agents",
    "impersonation",
    "source_ip_outside",
];
const KNOWN_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
    "impersonate",
    "approve",
    "bind",
    "escalate",
    "use",
    "*",
];

/// Parses a rule file; structural problems are reported as diagnostics (never a panic). CEL
/// conditions are not compiled here: see [`RuleSet::validate_file`].
pub fn parse_rule_file(text: &str, file: &str) -> (RuleFile, Vec<Diagnostic>) {
    let mut d = Diags { file: file.to_string(), text, out: Vec::new() };
    let mut rf = RuleFile::default();
    let docs = match yaml::parse(text) {
        Ok(docs) => docs,
        Err(e) => {
            d.at(e.line, e.col, DiagLevel::Error, format!("YAML syntax error: {}", e.message));
            return (rf, d.out);
        }
    };
    if docs.len() > 1 {
        d.err(&docs[1], "a rule file holds one YAML document; put everything in the first");
    }
    let Some(root) = docs.first() else { return (rf, d.out) };
    if root.is_null() {
        return (rf, d.out);
    }
    let Some(top) = entries(root, "a rule file", &mut d) else { return (rf, d.out) };
    let top = keyed(top, TOP_KEYS, "the rule file", &mut d);
    if let Some(n) = top.get("lists") {
        parse_lists(n, &mut rf, &mut d);
    }
    if let Some(n) = top.get("macros") {
        parse_macros(n, &mut rf, &mut d);
    }
    if let Some(n) = top.get("rules") {
        match &n.kind {
            Kind::Seq(items) => {
                let mut seen: BTreeMap<String, usize> = BTreeMap::new();
                for item in items {
                    // rules with errors are kept too, so that their conditions are linted; a file
                    // with errors is never merged
                    if let Some((r, cp, op)) = parse_rule(item, &mut d) {
                        if let Some(prev) = seen.insert(r.id.clone(), r.origin.line) {
                            d.err(item, format!("duplicate rule id `{}` (first defined on line {prev})", r.id));
                        } else {
                            rf.rules.push(r);
                            rf.cond_pos.push(cp);
                            rf.output_pos.push(op);
                        }
                    }
                }
            }
            _ if n.is_null() => {}
            _ => d.err(n, "`rules` must be a list of rules"),
        }
    }
    for (key, dest) in [("disable", &mut rf.disable), ("enable", &mut rf.enable)] {
        if let Some(n) = top.get(key) {
            match &n.kind {
                Kind::Seq(items) => {
                    for i in items {
                        if let Some(s) = string(i, key, &mut d) {
                            dest.push((s, d.origin(i)));
                        }
                    }
                }
                _ => d.err(n, format!("`{key}` must be a list of rule ids")),
            }
        }
    }
    (rf, d.out)
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

const RESERVED: &[&str] = &[
    "ka",
    "evt",
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
    "has",
    "size",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "list",
    "map",
    "type",
    "dyn",
];

fn check_name(n: &Node, name: &str, what: &str, d: &mut Diags) -> bool {
    if !is_ident(name) {
        d.err(n, format!("{what} name `{name}` must be an identifier (letters, digits, _)"));
        return false;
    }
    if RESERVED.contains(&name) || bind::FUNCTIONS.contains(&name) {
        d.err(n, format!("{what} name `{name}` is reserved"));
        return false;
    }
    true
}

fn parse_lists(n: &Node, rf: &mut RuleFile, d: &mut Diags) {
    let Some(e) = entries(n, "`lists`", d) else { return };
    let mut seen = HashSet::new();
    for (k, v) in e {
        let Some(name) = string(k, "list name", d) else { continue };
        if !check_name(k, &name, "list", d) {
            continue;
        }
        if !seen.insert(name.clone()) {
            d.err(k, format!("duplicate list `{name}`"));
            continue;
        }
        let (items, append) = match &v.kind {
            Kind::Map(me) => {
                let m = keyed(me, &["items", "append"], &format!("list `{name}`"), d);
                let items = m.get("items").map(|i| strings(i, "items", d)).unwrap_or_default();
                let append = m.get("append").and_then(|a| boolean(a, "append", d)).unwrap_or(false);
                (items, append)
            }
            _ => (strings(v, &format!("list `{name}`"), d), false),
        };
        rf.lists.push(ListDef { name, items, append, origin: d.origin(k) });
    }
}

fn parse_macros(n: &Node, rf: &mut RuleFile, d: &mut Diags) {
    let Some(e) = entries(n, "`macros`", d) else { return };
    let mut seen = HashSet::new();
    for (k, v) in e {
        let Some(name) = string(k, "macro name", d) else { continue };
        if !check_name(k, &name, "macro", d) {
            continue;
        }
        if !seen.insert(name.clone()) {
            d.err(k, format!("duplicate macro `{name}`"));
            continue;
        }
        let Some(cond) = string(v, &format!("macro `{name}`"), d) else { continue };
        rf.macros.push(MacroDef { name, condition: cond, origin: d.origin(k), pos: text_pos(v) });
    }
}

fn parse_rule(n: &Node, d: &mut Diags) -> Option<(RuleDef, TextPos, TextPos)> {
    let e = entries(n, "a rule", d)?;
    let id_hint =
        e.iter().find(|(k, _)| k.as_str() == Some("id")).and_then(|(_, v)| v.as_str()).unwrap_or("?").to_string();
    let what = format!("rule `{id_hint}`");
    let m = keyed(e, RULE_KEYS, &what, d);
    let mut missing = Vec::new();
    for req in ["id", "name", "description", "severity", "attack", "condition", "output", "remediation"] {
        if !m.contains_key(req) {
            missing.push(req);
        }
    }
    if !missing.is_empty() {
        d.err(n, format!("{what} is missing required field(s): {}", missing.join(", ")));
    }
    let id = m.get("id").and_then(|v| string(v, "id", d)).unwrap_or_default();
    if let Some(v) = m.get("id") {
        if !id.is_empty() && !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
            d.err(v, format!("rule id `{id}` may only contain letters, digits and - _ . :"));
        }
    }
    let name = m.get("name").and_then(|v| string(v, "name", d)).unwrap_or_default();
    let description = m.get("description").and_then(|v| string(v, "description", d)).unwrap_or_default();
    let severity = match m.get("severity") {
        Some(v) => match string(v, "severity", d).map(|s| (Severity::parse(&s), s)) {
            Some((Some(s), _)) => s,
            Some((None, s)) => {
                d.err(v, format!("unknown severity `{s}`: use critical, high, medium, low or informational"));
                Severity::Medium
            }
            None => Severity::Medium,
        },
        None => Severity::Medium,
    };
    let (tactics, techniques) = m.get("attack").map(|v| parse_attack(v, d)).unwrap_or_default();
    let source = match m.get("source") {
        Some(v) => match string(v, "source", d).as_deref() {
            Some("k8s_audit") | Some("k8saudit") => Source::K8sAudit,
            Some("sensor") => Source::Sensor,
            Some(other) => {
                d.err(v, format!("unknown source `{other}`: use k8s_audit or sensor"));
                Source::K8sAudit
            }
            None => Source::K8sAudit,
        },
        None => Source::K8sAudit,
    };
    let matcher = match m.get("match") {
        Some(v) => parse_match(v, source, d),
        None => {
            if source == Source::K8sAudit {
                d.warn(
                    n,
                    format!(
                        "{what} has no `match` block: it is evaluated for every event; add verbs/resources to index it"
                    ),
                );
            }
            MatchSpec::default()
        }
    };
    let condition = m.get("condition").and_then(|v| string(v, "condition", d)).unwrap_or_default();
    let cond_pos = m.get("condition").map(|v| text_pos(v)).unwrap_or_default();
    let exceptions = m.get("exceptions").map(|v| parse_exceptions(v, d)).unwrap_or_default();
    let output = m.get("output").and_then(|v| string(v, "output", d)).unwrap_or_default();
    let output_pos = m.get("output").map(|v| text_pos(v)).unwrap_or_default();
    let remediation = m.get("remediation").map(|v| strings(v, "remediation", d)).unwrap_or_default();
    if let Some(v) = m.get("remediation") {
        if remediation.is_empty() {
            d.err(v, "`remediation` must list at least one step");
        }
    }
    let tags = m.get("tags").map(|v| strings(v, "tags", d)).unwrap_or_default();
    let maturity = match m.get("maturity") {
        Some(v) => match string(v, "maturity", d).as_deref() {
            Some("stable") => Maturity::Stable,
            Some("incubating") => Maturity::Incubating,
            Some(other) => {
                d.err(v, format!("unknown maturity `{other}`: use stable or incubating"));
                Maturity::Stable
            }
            None => Maturity::Stable,
        },
        None => Maturity::Stable,
    };
    let enabled = m.get("enabled").and_then(|v| boolean(v, "enabled", d)).unwrap_or(true);
    let stateful = m.get("stateful").and_then(|v| parse_stateful(v, d));
    let dedup = m.get("dedup").and_then(|v| parse_dedup(v, d));
    if let Some(p) = m.get("output") {
        if let Err((off, msg)) = parse_template(&output) {
            let (l, c) = map_pos(d.text, text_pos(p), &output, off);
            d.at(l, c, DiagLevel::Error, format!("output: {msg}"));
        }
    }
    let origin = d.origin(n);
    Some((
        RuleDef {
            id,
            name,
            description,
            severity,
            tactics,
            techniques,
            source,
            matcher,
            condition,
            exceptions,
            output,
            remediation,
            tags,
            maturity,
            enabled,
            stateful,
            dedup,
            origin,
        },
        cond_pos,
        output_pos,
    ))
}

fn parse_attack(n: &Node, d: &mut Diags) -> (Vec<String>, Vec<String>) {
    let Some(e) = entries(n, "`attack`", d) else { return Default::default() };
    let m = keyed(e, &["tactics", "techniques"], "`attack`", d);
    let mut tactics = Vec::new();
    let mut tactic_nodes = Vec::new();
    if let Some(v) = m.get("tactics") {
        let items: Vec<&Node> = match &v.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![*v],
        };
        for i in items {
            let Some(s) = string(i, "tactics", d) else { continue };
            match attack::tactic(&s) {
                Some(t) => {
                    tactics.push(t.id.to_string());
                    tactic_nodes.push(t.id);
                }
                None => d.err(i, format!("unknown ATT&CK tactic `{s}`: use an ID such as TA0002 (Execution)")),
            }
        }
    }
    if tactics.is_empty() {
        d.err(n, "`attack.tactics` must name at least one ATT&CK tactic (e.g. TA0002)");
    }
    let mut techniques = Vec::new();
    if let Some(v) = m.get("techniques") {
        let items: Vec<&Node> = match &v.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![*v],
        };
        for i in items {
            let Some(s) = string(i, "techniques", d) else { continue };
            match attack::technique(&s) {
                Some(t) => {
                    if !tactic_nodes.is_empty() && !t.tactics.iter().any(|tac| tactic_nodes.contains(tac)) {
                        let names: Vec<String> = t
                            .tactics
                            .iter()
                            .filter_map(|x| attack::tactic(x))
                            .map(|x| format!("{} ({})", x.id, x.name))
                            .collect();
                        d.err(i, format!("technique {} ({}) is not under the rule's tactics; it belongs to {}", t.id, t.name, names.join(", ")));
                    }
                    techniques.push(t.id.to_string());
                }
                None => d.err(
                    i,
                    format!("unknown ATT&CK technique `{s}`: not in the bundled Containers matrix table (e.g. T1609, T1610, T1611, T1613, T1552.007)"),
                ),
            }
        }
    }
    if techniques.is_empty() {
        d.err(n, "`attack.techniques` must name at least one ATT&CK technique (e.g. T1609)");
    }
    (tactics, techniques)
}

fn parse_match(n: &Node, source: Source, d: &mut Diags) -> MatchSpec {
    let mut ms = MatchSpec::default();
    let Some(e) = entries(n, "`match`", d) else { return ms };
    let m = keyed(e, MATCH_KEYS, "`match`", d);
    if let Some(v) = m.get("verbs") {
        ms.verbs = strings(v, "verbs", d);
        for verb in &ms.verbs {
            if !KNOWN_VERBS.contains(&verb.as_str()) {
                d.warn(v, format!("unusual verb `{verb}` (known: {})", KNOWN_VERBS.join(", ")));
            }
        }
        if ms.verbs.iter().any(|v| v == "*") {
            ms.verbs.clear();
        }
    }
    let mut implied_sub = Vec::new();
    if let Some(v) = m.get("resources") {
        for r in strings(v, "resources", d) {
            match r.split_once('/') {
                Some((res, sub)) => {
                    ms.resources.push(res.to_string());
                    implied_sub.push(sub.to_string());
                }
                None => ms.resources.push(r),
            }
        }
        if ms.resources.iter().any(|r| r == "*") {
            ms.resources.clear();
        }
        ms.resources.sort();
        ms.resources.dedup();
    }
    if let Some(v) = m.get("subresources") {
        let subs = strings(v, "subresources", d);
        ms.subresources = if subs.iter().any(|s| s == "*") { Subresources::Any } else { Subresources::Set(subs) };
    } else if !implied_sub.is_empty() {
        ms.subresources = Subresources::Set(implied_sub);
    }
    if let Some(v) = m.get("stages") {
        ms.stages.clear();
        for s in strings(v, "stages", d) {
            match Stage::parse(&s) {
                Some(st) => ms.stages.push(st),
                None => d.err(
                    v,
                    format!("unknown stage `{s}`: use RequestReceived, ResponseStarted, ResponseComplete or Panic"),
                ),
            }
        }
    }
    if let Some(v) = m.get("success") {
        ms.success = boolean(v, "success", d);
    }
    if let Some(v) = m.get("impersonation") {
        ms.impersonation = boolean(v, "impersonation", d);
    }
    for (key, dest) in [
        ("users", &mut ms.users),
        ("exclude_users", &mut ms.exclude_users),
        ("namespaces", &mut ms.namespaces),
        ("exclude_namespaces", &mut ms.exclude_namespaces),
        ("user_agents", &mut ms.user_agents),
        ("source_ip_outside", &mut ms.source_ip_outside),
    ] {
        if let Some(v) = m.get(key) {
            *dest = strings(v, key, d);
        }
    }
    if let Some(v) = m.get("event_types") {
        if source != Source::Sensor {
            d.err(v, "`event_types` applies to sensor rules only");
        }
        ms.event_types = strings(v, "event_types", d);
        for t in &ms.event_types {
            if !["process", "exit", "file", "network", "syscall"].contains(&t.as_str()) {
                d.err(v, format!("unknown event type `{t}`: use process, exit, file, network or syscall"));
            }
        }
    }
    if source == Source::Sensor {
        for key in ["verbs", "resources", "subresources"] {
            if let Some(v) = m.get(key) {
                d.err(v, format!("`{key}` applies to k8s_audit rules only"));
            }
        }
    }
    ms
}

fn parse_exceptions(n: &Node, d: &mut Diags) -> Vec<ExceptionDef> {
    let Kind::Seq(items) = &n.kind else {
        d.err(n, "`exceptions` must be a list");
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(e) = entries(item, "an exception", d) else { continue };
        let m = keyed(e, &["name", "fields", "comps", "values"], "an exception", d);
        let name = m.get("name").and_then(|v| string(v, "name", d)).unwrap_or_default();
        let Some(fnode) = m.get("fields") else {
            d.err(item, "an exception needs `fields`");
            continue;
        };
        let flds = fields(fnode, "exception field", d);
        let comps: Vec<Comp> = match m.get("comps") {
            Some(c) => strings(c, "comps", d)
                .iter()
                .filter_map(|s| {
                    let r = Comp::parse(s);
                    if r.is_none() {
                        d.err(
                            c,
                            format!("unknown comparison `{s}`: use =, !=, in, startswith, endswith, contains or glob"),
                        );
                    }
                    r
                })
                .collect(),
            None => vec![Comp::Eq; flds.len()],
        };
        if comps.len() != flds.len() {
            d.err(item, format!("exception `{name}` has {} fields but {} comps", flds.len(), comps.len()));
            continue;
        }
        let mut values = Vec::new();
        if let Some(v) = m.get("values") {
            let Kind::Seq(tuples) = &v.kind else {
                d.err(v, "`values` must be a list");
                continue;
            };
            for t in tuples {
                let tuple: Vec<Vec<String>> = if flds.len() == 1 {
                    // single field: values are plain items (or lists for `in`)
                    vec![strings(t, "values", d)]
                } else {
                    match &t.kind {
                        Kind::Seq(parts) => parts.iter().map(|p| strings(p, "values", d)).collect(),
                        _ => {
                            d.err(
                                t,
                                format!(
                                    "exception `{name}` has {} fields: each value must be a list of {}",
                                    flds.len(),
                                    flds.len()
                                ),
                            );
                            continue;
                        }
                    }
                };
                if tuple.len() != flds.len() {
                    d.err(
                        t,
                        format!("exception `{name}`: value tuple has {} items for {} fields", tuple.len(), flds.len()),
                    );
                    continue;
                }
                values.push(tuple);
            }
        }
        out.push(ExceptionDef { name, fields: flds, comps, values });
    }
    out
}

fn parse_stateful(n: &Node, d: &mut Diags) -> Option<StatefulDef> {
    let e = entries(n, "`stateful`", d)?;
    let m = keyed(e, &["kind", "count", "window", "group_by", "distinct", "key", "learning"], "`stateful`", d);
    let kind = m.get("kind").and_then(|v| string(v, "kind", d));
    match kind.as_deref() {
        Some("threshold") => {
            let count = match m.get("count") {
                Some(v) => match v.as_i64() {
                    Some(c) if (2..=100_000).contains(&c) => c as u32,
                    _ => {
                        d.err(v, "`count` must be an integer between 2 and 100000");
                        return None;
                    }
                },
                None => {
                    d.err(n, "a threshold needs `count`");
                    return None;
                }
            };
            let window_us = match m.get("window") {
                Some(v) => duration(v, "window", d)?,
                None => {
                    d.err(n, "a threshold needs `window`");
                    return None;
                }
            };
            let group_by = m.get("group_by").map(|v| fields(v, "group_by", d)).unwrap_or_else(|| vec![Field::UserName]);
            let distinct = m.get("distinct").and_then(|v| field(v, "distinct", d));
            for k in ["key", "learning"] {
                if let Some(v) = m.get(k) {
                    d.err(v, format!("`{k}` belongs to kind first_seen"));
                }
            }
            Some(StatefulDef::Threshold { count, window_us, group_by, distinct })
        }
        Some("first_seen") => {
            let key = match m.get("key") {
                Some(v) => fields(v, "key", d),
                None => {
                    d.err(n, "first_seen needs `key`");
                    return None;
                }
            };
            let learning_us = m.get("learning").and_then(|v| duration(v, "learning", d)).unwrap_or(0);
            for k in ["count", "window", "group_by", "distinct"] {
                if let Some(v) = m.get(k) {
                    d.err(v, format!("`{k}` belongs to kind threshold"));
                }
            }
            Some(StatefulDef::FirstSeen { key, learning_us })
        }
        Some(other) => {
            d.err(n, format!("unknown stateful kind `{other}`: use threshold or first_seen"));
            None
        }
        None => {
            d.err(n, "`stateful` needs `kind` (threshold or first_seen)");
            None
        }
    }
}

fn parse_dedup(n: &Node, d: &mut Diags) -> Option<DedupDef> {
    let e = entries(n, "`dedup`", d)?;
    let m = keyed(e, &["window", "by"], "`dedup`", d);
    let window_us = match m.get("window") {
        Some(v) => duration(v, "window", d)?,
        None => 10 * 60_000_000,
    };
    let by = m.get("by").map(|v| fields(v, "by", d)).unwrap_or_default();
    Some(DedupDef { window_us, by })
}

// ---------------------------------------------------------------------------------------------
// CEL text handling: tokens, macro expansion, position mapping

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'s> {
    Ident(&'s str),
    Punct(char),
}

/// Tokens of a CEL text with their byte offsets; string literals are skipped.
fn tokens(src: &str) -> Vec<(usize, Tok<'_>)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' {
            let triple = src[i..].starts_with(if c == b'"' { "\"\"\"" } else { "'''" });
            let raw = i > 0 && (b[i - 1] == b'r' || b[i - 1] == b'R');
            if triple {
                let close = if c == b'"' { "\"\"\"" } else { "'''" };
                i = src[i + 3..].find(close).map(|j| i + 3 + j + 3).unwrap_or(b.len());
            } else {
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\\' && !raw {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            // a string prefix such as r"..." or b'...'
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') && i - s <= 2 {
                continue;
            }
            out.push((s, Tok::Ident(&src[s..i])));
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else {
            if !c.is_ascii_whitespace() {
                out.push((i, Tok::Punct(c as char)));
            }
            i += 1;
        }
    }
    out
}

/// Identifier references in a CEL text: heads of `a.b.c` chains, with the chain's member path
/// and the byte offset. Comprehension variables are reported separately.
/// `(byte offset, identifier, member path)` of each reference.
type Refs = Vec<(usize, String, Vec<String>)>;

fn references(src: &str) -> (Refs, HashSet<String>) {
    let toks = tokens(src);
    let mut refs = Vec::new();
    let mut loop_vars = HashSet::new();
    let mut i = 0;
    while i < toks.len() {
        if let (off, Tok::Ident(name)) = toks[i] {
            let after_dot = i > 0 && toks[i - 1].1 == Tok::Punct('.');
            let is_call = toks.get(i + 1).map(|t| t.1) == Some(Tok::Punct('('));
            if after_dot
                && is_call
                && ["all", "exists", "exists_one", "existsOne", "map", "filter", "transformList", "transformMap"]
                    .contains(&name)
            {
                if let (Some((_, Tok::Ident(v))), Some((_, Tok::Punct(',')))) = (toks.get(i + 2), toks.get(i + 3)) {
                    loop_vars.insert(v.to_string());
                }
            }
            if !after_dot && !is_call && !["in", "true", "false", "null"].contains(&name) {
                let mut path = Vec::new();
                let mut j = i + 1;
                while j + 1 < toks.len() && toks[j].1 == Tok::Punct('.') {
                    if let Tok::Ident(m) = toks[j + 1].1 {
                        // `x.f(` is a method call, not a field
                        if toks.get(j + 2).map(|t| t.1) == Some(Tok::Punct('(')) {
                            break;
                        }
                        path.push(m.to_string());
                        j += 2;
                    } else {
                        break;
                    }
                }
                refs.push((off, name.to_string(), path));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    (refs, loop_vars)
}

/// Expands macros (by identifier) in `src`; `Err` names a cycle.
pub fn expand_macros(src: &str, macros: &BTreeMap<String, String>) -> Result<String, String> {
    fn go(src: &str, macros: &BTreeMap<String, String>, stack: &mut Vec<String>) -> Result<String, String> {
        if stack.len() > 32 {
            return Err(format!("macros nest too deeply: {}", stack.join(" -> ")));
        }
        let (refs, loop_vars) = references(src);
        let mut out = String::with_capacity(src.len());
        let mut last = 0;
        for (off, name, _) in refs {
            if loop_vars.contains(&name) {
                continue;
            }
            if let Some(body) = macros.get(&name) {
                if stack.contains(&name) {
                    return Err(format!("macro cycle: {} -> {name}", stack.join(" -> ")));
                }
                stack.push(name.clone());
                let expanded = go(body, macros, stack)?;
                stack.pop();
                out.push_str(&src[last..off]);
                out.push('(');
                out.push_str(&expanded);
                out.push(')');
                last = off + name.len();
            }
        }
        out.push_str(&src[last..]);
        Ok(out)
    }
    go(src, macros, &mut Vec::new())
}

/// Maps a byte offset inside a scalar's text to a file line and column.
fn map_pos(text: &str, p: TextPos, value: &str, offset: usize) -> (usize, usize) {
    if p.line == 0 {
        return (0, 0);
    }
    let quoted = matches!(p.style, Style::SingleQuoted | Style::DoubleQuoted);
    let block = matches!(p.style, Style::Literal | Style::Folded);
    let lines: Vec<&str> = text.lines().collect();
    let offset = offset.min(value.len());
    // value line and column of the offset
    let before = &value[..offset];
    let vline = before.matches('\n').count();
    let vcol = before.rsplit('\n').next().map(|s| s.chars().count()).unwrap_or(0);
    if block {
        if p.style == Style::Literal || vline > 0 {
            return (p.line + vline, p.col + vcol);
        }
        // folded: walk source lines
        let indent = p.col.saturating_sub(1);
        let mut rem = vcol;
        for (k, l) in lines.iter().enumerate().skip(p.line - 1) {
            let content = l.get(indent..).unwrap_or("").trim_end();
            let n = content.chars().count();
            if rem <= n {
                return (k + 1, indent + 1 + rem);
            }
            rem -= n + 1;
        }
        return (p.line, p.col);
    }
    // flow scalars: the first line starts at the node, continuation lines are trimmed
    let start_col = p.col + usize::from(quoted);
    if vline == 0 {
        let mut rem = vcol;
        let first = lines.get(p.line - 1).copied().unwrap_or("");
        let first_len = first.chars().count().saturating_sub(start_col - 1);
        if rem <= first_len {
            return (p.line, start_col + rem);
        }
        rem -= first_len + 1;
        for (k, l) in lines.iter().enumerate().skip(p.line) {
            let lead = l.len() - l.trim_start().len();
            let n = l.trim().chars().count();
            if rem <= n {
                return (k + 1, lead + 1 + rem);
            }
            rem -= n + 1;
        }
        return (p.line, start_col);
    }
    (p.line + vline, vcol + 1)
}

// ---------------------------------------------------------------------------------------------
// Rule sets

/// The built-in rule files, bundled into the binary.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    ("builtin/k8s_lists.yaml", include_str!("../rules/k8s_lists.yaml")),
    ("builtin/k8s_execution.yaml", include_str!("../rules/k8s_execution.yaml")),
    ("builtin/k8s_workloads.yaml", include_str!("../rules/k8s_workloads.yaml")),
    ("builtin/k8s_identity.yaml", include_str!("../rules/k8s_identity.yaml")),
    ("builtin/k8s_cluster.yaml", include_str!("../rules/k8s_cluster.yaml")),
    ("builtin/sensor.yaml", include_str!("../rules/sensor.yaml")),
];

/// The merged rules, lists and macros from the built-ins and users' files.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    lists: BTreeMap<String, (Vec<String>, Origin)>,
    macros: BTreeMap<String, MacroDef>,
    rules: Vec<RuleDef>,
}

/// A rule set could not be loaded; the diagnostics say why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.iter().filter(|d| d.level == DiagLevel::Error).map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct RulesError(pub Vec<Diagnostic>);

impl RuleSet {
    /// An empty set.
    pub fn empty() -> Self {
        RuleSet::default()
    }

    /// The built-in rules.
    pub fn builtin() -> Result<Self, RulesError> {
        let mut rs = RuleSet::empty();
        for (name, text) in BUILTIN_FILES {
            rs.add_file(text, name)?;
        }
        Ok(rs)
    }

    /// The rules, in load order (overridden rules keep their place).
    pub fn rules(&self) -> &[RuleDef] {
        &self.rules
    }

    /// A rule by id.
    pub fn get(&self, id: &str) -> Option<&RuleDef> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The named lists.
    pub fn lists(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.lists.iter().map(|(k, (v, _))| (k.as_str(), v.as_slice()))
    }

    /// A named list.
    pub fn list(&self, name: &str) -> Option<&[String]> {
        self.lists.get(name).map(|(v, _)| v.as_slice())
    }

    /// Macros by name (CEL text).
    pub fn macros(&self) -> BTreeMap<String, String> {
        self.macros.iter().map(|(k, m)| (k.clone(), m.condition.clone())).collect()
    }

    /// Replaces a list (e.g. from configuration: `trusted_registries`, `cluster_cidrs`).
    pub fn set_list(&mut self, name: &str, items: Vec<String>) {
        self.lists.insert(name.to_string(), (items, Origin { file: "<config>".into(), ..Origin::default() }));
    }

    /// Appends to a list, creating it if needed.
    pub fn append_list(&mut self, name: &str, items: Vec<String>) {
        let e = self.lists.entry(name.to_string()).or_insert_with(|| (Vec::new(), Origin::default()));
        e.0.extend(items);
    }

    /// Enables or disables a rule; false if there is no such rule.
    pub fn set_enabled(&mut self, id: &str, enabled: bool) -> bool {
        match self.rules.iter_mut().find(|r| r.id == id) {
            Some(r) => {
                r.enabled = enabled;
                true
            }
            None => false,
        }
    }

    /// Validates `text` against this set (its lists and macros are in scope) without changing it.
    /// Returns every diagnostic: errors, warnings and notes (e.g. overrides).
    pub fn validate_file(&self, text: &str, file: &str) -> Vec<Diagnostic> {
        let (rf, mut diags) = parse_rule_file(text, file);
        let mut d = Diags { file: file.to_string(), text, out: Vec::new() };
        // the lists and macros in scope after merging this file
        let mut list_names: HashSet<String> = self.lists.keys().cloned().collect();
        for l in &rf.lists {
            if l.append && !list_names.contains(&l.name) {
                d.at(
                    l.origin.line,
                    l.origin.col,
                    DiagLevel::Warning,
                    format!("list `{}` appends to a list that is not defined yet", l.name),
                );
            }
            list_names.insert(l.name.clone());
        }
        let mut macros: BTreeMap<String, String> = self.macros();
        for m in &rf.macros {
            if list_names.contains(&m.name) {
                d.at(m.origin.line, m.origin.col, DiagLevel::Error, format!("`{}` is both a list and a macro", m.name));
            }
            macros.insert(m.name.clone(), m.condition.clone());
        }
        let env = match bind::env() {
            Ok(e) => e,
            Err(e) => {
                d.at(0, 0, DiagLevel::Error, format!("internal: CEL environment: {e}"));
                diags.extend(d.out);
                return diags;
            }
        };
        for m in &rf.macros {
            check_cel(&env, &m.condition, m.pos, None, &list_names, &macros, &mut d, &format!("macro `{}`", m.name));
        }
        for (i, r) in rf.rules.iter().enumerate() {
            let m = &r.matcher;
            let subs: &[String] = match &m.subresources {
                Subresources::Set(v) => v,
                _ => &[],
            };
            for item in m
                .verbs
                .iter()
                .chain(&m.resources)
                .chain(subs)
                .chain(&m.users)
                .chain(&m.exclude_users)
                .chain(&m.namespaces)
                .chain(&m.exclude_namespaces)
                .chain(&m.user_agents)
                .chain(&m.source_ip_outside)
            {
                if let Some(name) = item.strip_prefix('@') {
                    if !list_names.contains(name) {
                        d.at(
                            r.origin.line,
                            r.origin.col,
                            DiagLevel::Error,
                            format!("rule `{}`: `match` refers to unknown list `@{name}`", r.id),
                        );
                    }
                }
            }
            let cp = rf.cond_pos.get(i).copied().unwrap_or_default();
            check_cel(
                &env,
                &r.condition,
                cp,
                Some(r.source),
                &list_names,
                &macros,
                &mut d,
                &format!("rule `{}`", r.id),
            );
            if let Some(existing) = self.get(&r.id) {
                d.at(
                    r.origin.line,
                    r.origin.col,
                    DiagLevel::Note,
                    format!("rule `{}` overrides the one from {}:{}", r.id, existing.origin.file, existing.origin.line),
                );
            }
        }
        for (id, o) in rf.disable.iter().chain(rf.enable.iter()) {
            if self.get(id).is_none() && !rf.rules.iter().any(|r| &r.id == id) {
                d.at(o.line, o.col, DiagLevel::Warning, format!("no rule with id `{id}`"));
            }
        }
        diags.extend(d.out);
        diags.sort_by_key(|d| (d.line, d.column));
        diags
    }

    /// Validates and merges a rule file. On error nothing is merged. Ok holds warnings and notes.
    pub fn add_file(&mut self, text: &str, file: &str) -> Result<Vec<Diagnostic>, RulesError> {
        let diags = self.validate_file(text, file);
        if has_errors(&diags) {
            return Err(RulesError(diags));
        }
        let (rf, _) = parse_rule_file(text, file);
        for l in rf.lists {
            if l.append {
                self.append_list(&l.name, l.items);
            } else {
                self.lists.insert(l.name, (l.items, l.origin));
            }
        }
        for m in rf.macros {
            self.macros.insert(m.name.clone(), m);
        }
        for r in rf.rules {
            match self.rules.iter_mut().find(|x| x.id == r.id) {
                Some(slot) => *slot = r,
                None => self.rules.push(r),
            }
        }
        for (id, _) in rf.disable {
            self.set_enabled(&id, false);
        }
        for (id, _) in rf.enable {
            self.set_enabled(&id, true);
        }
        Ok(diags)
    }

    /// Reads and merges a rule file, or every `*.yaml` / `*.yml` file of a directory (sorted).
    pub fn add_path(&mut self, path: &std::path::Path) -> Result<Vec<Diagnostic>, RulesError> {
        let io_err = |p: &std::path::Path, e: std::io::Error| {
            RulesError(vec![Diagnostic {
                file: p.display().to_string(),
                line: 0,
                column: 0,
                level: DiagLevel::Error,
                message: format!("cannot read: {e}"),
            }])
        };
        let mut files = Vec::new();
        if path.is_dir() {
            let rd = std::fs::read_dir(path).map_err(|e| io_err(path, e))?;
            for entry in rd.flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    files.push(p);
                }
            }
            files.sort();
        } else {
            files.push(path.to_path_buf());
        }
        let mut all = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| io_err(&f, e))?;
            all.extend(self.add_file(&text, &f.display().to_string())?);
        }
        Ok(all)
    }
}

/// Lints a rule file against the built-in rules (whose lists and macros it may use): YAML
/// syntax, unknown and missing fields, ATT&CK IDs, CEL syntax and references, output templates,
/// duplicate ids. Every diagnostic has a line and column.
pub fn validate(yaml_text: &str, file_name: &str) -> Vec<Diagnostic> {
    match RuleSet::builtin() {
        Ok(rs) => rs.validate_file(yaml_text, file_name),
        Err(e) => e.0,
    }
}

#[allow(clippy::too_many_arguments)]
fn check_cel(
    env: &Env,
    src: &str,
    pos: TextPos,
    source: Option<Source>,
    lists: &HashSet<String>,
    macros: &BTreeMap<String, String>,
    d: &mut Diags,
    what: &str,
) {
    if src.trim().is_empty() {
        if pos.line == 0 {
            return; // missing: reported as a missing field
        }
        d.at(pos.line, pos.col, DiagLevel::Error, format!("{what}: empty condition"));
        return;
    }
    // syntax, on the text as written (macros are plain identifiers to the parser)
    if let Err(errs) = env.compile(src) {
        for e in errs.errors.iter().take(3) {
            let (l, c) = (e.pos.0.max(1) as usize, e.pos.1.max(1) as usize);
            let offset = offset_of(src, l, c);
            let (fl, fc) = map_pos(d.text, pos, src, offset);
            let msg = e.msg.strip_prefix("Syntax error: ").unwrap_or(&e.msg);
            d.at(fl, fc, DiagLevel::Error, format!("{what}: CEL syntax error: {msg}"));
        }
        return;
    }
    let (refs, loop_vars) = references(src);
    for (off, name, path) in refs {
        if loop_vars.contains(&name) || macros.contains_key(&name) || lists.contains(&name) {
            continue;
        }
        let (fl, fc) = map_pos(d.text, pos, src, off);
        match name.as_str() {
            "ka" => {
                if source == Some(Source::Sensor) {
                    d.at(
                        fl,
                        fc,
                        DiagLevel::Error,
                        format!("{what}: `ka` is for k8s_audit rules; sensor rules use `evt`"),
                    );
                    continue;
                }
                if let Some(msg) = check_ka_path(&path) {
                    d.at(fl, fc, DiagLevel::Error, format!("{what}: {msg}"));
                }
            }
            "evt" => {
                if source == Some(Source::K8sAudit) {
                    d.at(
                        fl,
                        fc,
                        DiagLevel::Error,
                        format!("{what}: `evt` is for sensor rules; k8s_audit rules use `ka`"),
                    );
                    continue;
                }
                if let Some(first) = path.first() {
                    if !bind::EVT_FIELDS.contains(&first.as_str()) {
                        d.at(
                            fl,
                            fc,
                            DiagLevel::Error,
                            format!("{what}: unknown field `evt.{first}`; evt fields: {}", bind::EVT_FIELDS.join(", ")),
                        );
                    }
                }
            }
            "true" | "false" | "null" | "has" | "dyn" | "int" | "uint" | "double" | "string" | "bytes" | "bool"
            | "list" | "map" | "type" | "null_type" | "optional" => {}
            other => {
                let mut known: Vec<&str> =
                    lists.iter().map(String::as_str).chain(macros.keys().map(String::as_str)).collect();
                known.push("ka");
                known.push("evt");
                let hint = closest(other, &known).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
                d.at(
                    fl,
                    fc,
                    DiagLevel::Error,
                    format!("{what}: unknown identifier `{other}`{hint}: not `ka`, `evt`, a list or a macro"),
                );
            }
        }
    }
    // the expanded text must compile too (macro bodies are checked at their definitions)
    match expand_macros(src, macros) {
        Ok(x) => {
            if env.compile(&x).is_err() {
                d.at(
                    pos.line,
                    pos.col,
                    DiagLevel::Error,
                    format!("{what}: does not compile once macros are expanded (check the macros it uses)"),
                );
            }
        }
        Err(e) => d.at(pos.line, pos.col, DiagLevel::Error, format!("{what}: {e}")),
    }
}

fn check_ka_path(path: &[String]) -> Option<String> {
    let first = path.first()?;
    if !bind::KA_FIELDS.contains(&first.as_str()) {
        let hint = closest(first, bind::KA_FIELDS).map(|c| format!(" (did you mean `ka.{c}`?)")).unwrap_or_default();
        return Some(format!("unknown field `ka.{first}`{hint}; ka fields: {}", bind::KA_FIELDS.join(", ")));
    }
    let sub: Option<&[&str]> = match first.as_str() {
        "user" | "impersonated" => Some(bind::USER_FIELDS),
        "target" => Some(bind::TARGET_FIELDS),
        "response" => Some(bind::RESPONSE_FIELDS),
        "auth" => Some(bind::AUTH_FIELDS),
        "pod" => Some(bind::POD_FIELDS),
        _ => None,
    };
    if let (Some(known), Some(second)) = (sub, path.get(1)) {
        if !known.contains(&second.as_str()) {
            let hint = closest(second, known).map(|c| format!(" (did you mean `ka.{first}.{c}`?)")).unwrap_or_default();
            return Some(format!("unknown field `ka.{first}.{second}`{hint}; known: {}", known.join(", ")));
        }
    }
    None
}

/// Byte offset of a 1-based (line, column) in `src` (column in characters).
fn offset_of(src: &str, line: usize, col: usize) -> usize {
    let mut off = 0;
    for (i, l) in src.split('\n').enumerate() {
        if i + 1 == line {
            let c = l.char_indices().nth(col.saturating_sub(1)).map(|(b, _)| b).unwrap_or(l.len());
            return off + c;
        }
        off += l.len() + 1;
    }
    src.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_us("60s"), Some(60_000_000));
        assert_eq!(parse_duration_us("10m"), Some(600_000_000));
        assert_eq!(parse_duration_us("500ms"), Some(500_000));
        assert_eq!(parse_duration_us("5"), Some(5_000_000));
        assert_eq!(parse_duration_us("5 weeks"), None);
    }

    #[test]
    fn macro_expansion() {
        let mut m = BTreeMap::new();
        m.insert("is_sa".to_string(), "ka.user.name.startsWith('system:serviceaccount:')".to_string());
        m.insert("outside".to_string(), "is_sa && !inCidrs(ka.sourceIP, cidrs)".to_string());
        let x = expand_macros("outside && ka.verb == 'is_sa' && [1].exists(is_sa, is_sa > 0)", &m).unwrap();
        assert_eq!(
            x,
            "((ka.user.name.startsWith('system:serviceaccount:')) && !inCidrs(ka.sourceIP, cidrs)) && ka.verb == 'is_sa' && [1].exists(is_sa, is_sa > 0)"
        );
        m.insert("a".into(), "b".into());
        m.insert("b".into(), "a".into());
        assert!(expand_macros("a", &m).is_err());
    }

    #[test]
    fn references_and_loop_vars() {
        let (refs, lv) =
            references("ka.pod.containers.exists(c, c.image.startsWith('x')) && lst.size() > 0 && \"ka.nope\" != ''");
        let names: Vec<_> = refs.iter().map(|r| (r.1.as_str(), r.2.join("."))).collect();
        assert_eq!(
            names,
            vec![
                ("ka", "pod.containers".to_string()),
                ("c", "".to_string()),
                ("c", "image".to_string()),
                ("lst", "".to_string())
            ]
        );
        assert!(lv.contains("c"));
    }

    #[test]
    fn position_mapping() {
        let text = "rules:\n  - condition: ka.verb == \n";
        let p = TextPos { line: 2, col: 16, style: Style::Plain };
        assert_eq!(map_pos(text, p, "ka.verb ==", 3), (2, 19));
        let text = "c: |\n  a &&\n  b ==\n";
        let p = TextPos { line: 2, col: 3, style: Style::Literal };
        assert_eq!(map_pos(text, p, "a &&\nb ==\n", 7), (3, 5));
        let text = "c: >\n  a &&\n  b ==\n";
        let p = TextPos { line: 2, col: 3, style: Style::Folded };
        assert_eq!(map_pos(text, p, "a && b ==\n", 7), (3, 5));
        let text = "c: \"a &&\n  b ==\"\n";
        let p = TextPos { line: 1, col: 4, style: Style::DoubleQuoted };
        assert_eq!(map_pos(text, p, "a && b ==", 7), (2, 5));
    }
}
