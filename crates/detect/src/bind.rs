//! How events look to CEL: the environment (standard library, the strings extension and
//! Palisade's functions) and the per-event [`Scope`], which binds `ka` (audit events), `evt`
//! (sensor events) and the named lists.
//!
//! `ka` is a lazy view over the typed event: a field is turned into a CEL value only when a
//! condition reads it, strings are borrowed rather than copied, and `ka.req` / `ka.resp` /
//! `ka.pod` are built at most once per event, and only for events whose candidate rules read
//! them.

use crate::event::{AuditEvent, Event, SensorEvent};
use crate::pod::{split_image, PodInfo};
use cel::common::traits::Indexer;
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt, Type, DYN_TYPE, LIST_TYPE,
    STRING_TYPE,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Env, ExecutionError};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

/// The top-level fields of `ka`.
pub const KA_FIELDS: &[&str] = &[
    "auditID",
    "level",
    "stage",
    "verb",
    "uri",
    "user",
    "impersonated",
    "sourceIP",
    "sourceIPs",
    "userAgent",
    "target",
    "response",
    "auth",
    "annotations",
    "req",
    "resp",
    "pod",
    "cluster",
    "time",
];
/// The fields of `ka.user` and `ka.impersonated`.
pub const USER_FIELDS: &[&str] = &["name", "uid", "groups"];
/// The fields of `ka.target`.
pub const TARGET_FIELDS: &[&str] = &["resource", "subresource", "namespace", "name", "apiGroup", "apiVersion"];
/// The fields of `ka.response`.
pub const RESPONSE_FIELDS: &[&str] = &["code", "status", "reason", "message"];
/// The fields of `ka.auth`.
pub const AUTH_FIELDS: &[&str] = &["decision", "reason"];
/// The fields of `ka.pod`.
pub const POD_FIELDS: &[&str] = &[
    "present",
    "containers",
    "images",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "hostPaths",
    "serviceAccountName",
    "nodeName",
    "name",
    "labels",
];
/// The fields of each element of `ka.pod.containers`.
pub const CONTAINER_FIELDS: &[&str] =
    &["name", "image", "kind", "privileged", "allowPrivilegeEscalation", "capabilities", "runAsUser", "command"];
/// The top-level fields of `evt` (sensor events).
pub const EVT_FIELDS: &[&str] = &[
    "type",
    "time",
    "node",
    "cluster",
    "namespace",
    "pod",
    "container",
    "containerId",
    "host",
    "image",
    "proc",
    "file",
    "net",
    "sys",
];

/// Builds the CEL environment rules are compiled and run with.
pub fn env() -> Result<Env, cel::DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)?;
    env.add_overload("inCidrs", "inCidrs(string,list)", vec![STRING_TYPE.to_owned(), LIST_TYPE.to_owned()], in_cidrs)?;
    env.add_member_overload(
        "startsWithAny",
        "string.startsWithAny(list)",
        STRING_TYPE.to_owned(),
        vec![LIST_TYPE.to_owned()],
        starts_with_any,
    )?;
    env.add_member_overload(
        "endsWithAny",
        "string.endsWithAny(list)",
        STRING_TYPE.to_owned(),
        vec![LIST_TYPE.to_owned()],
        ends_with_any,
    )?;
    env.add_member_overload(
        "containsAny",
        "string.containsAny(list)",
        STRING_TYPE.to_owned(),
        vec![LIST_TYPE.to_owned()],
        contains_any,
    )?;
    env.add_member_overload(
        "globAny",
        "string.globAny(list)",
        STRING_TYPE.to_owned(),
        vec![LIST_TYPE.to_owned()],
        glob_any,
    )?;
    env.add_member_overload(
        "glob",
        "string.glob(string)",
        STRING_TYPE.to_owned(),
        vec![STRING_TYPE.to_owned()],
        glob_one,
    )?;
    env.add_member_overload(
        "matches",
        "string.matches(string)",
        STRING_TYPE.to_owned(),
        vec![STRING_TYPE.to_owned()],
        regex_matches,
    )?;
    env.add_overload(
        "matches",
        "matches(string,string)",
        vec![STRING_TYPE.to_owned(), STRING_TYPE.to_owned()],
        regex_matches,
    )?;
    env.add_overload("imageRegistry", "imageRegistry(string)", vec![STRING_TYPE.to_owned()], image_registry)?;
    env.add_overload("imageRepo", "imageRepo(string)", vec![STRING_TYPE.to_owned()], image_repo)?;
    env.add_overload("imageName", "imageName(string)", vec![STRING_TYPE.to_owned()], image_name)?;
    env.add_overload("imageTag", "imageTag(string)", vec![STRING_TYPE.to_owned()], image_tag)?;
    Ok(env)
}

/// The names of Palisade's CEL functions (for documentation and the linter).
pub const FUNCTIONS: &[&str] = &[
    "inCidrs",
    "startsWithAny",
    "endsWithAny",
    "containsAny",
    "globAny",
    "glob",
    "imageRegistry",
    "imageRepo",
    "imageName",
    "imageTag",
];

fn str_arg<'a>(v: &'a CowVal<'_, '_>) -> Result<&'a str, ExecutionError> {
    v.downcast_ref::<CelString>()
        .map(|s| s.inner())
        .ok_or_else(|| ExecutionError::function_error("arg", "expected a string"))
}

fn for_each_str(list: &dyn Val, mut f: impl FnMut(&str) -> bool) -> Result<bool, ExecutionError> {
    let it = list.as_iterable().ok_or_else(|| ExecutionError::function_error("arg", "expected a list"))?;
    let mut items = it.iter();
    while let Some(item) = items.next() {
        if let Some(s) = item.downcast_ref::<CelString>() {
            if f(s.inner()) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn bool_val<'b, 'v>(b: bool) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(CowVal::owned(CelBool::from(b)))
}

fn args2<'x, 'b, 'v>(args: &'x [CowVal<'b, 'v>]) -> Result<(&'x CowVal<'b, 'v>, &'x CowVal<'b, 'v>), ExecutionError> {
    match args {
        [a, b] => Ok((a, b)),
        _ => Err(ExecutionError::invalid_argument_count(2, args.len())),
    }
}

fn in_cidrs<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (ip, list) = args2(&args)?;
    let Ok(ip) = str_arg(ip)?.parse::<IpAddr>() else { return bool_val(false) };
    bool_val(for_each_str(list.as_ref(), |c| cidr_contains(c, ip))?)
}

/// Whether `cidr` (`10.0.0.0/8`, `fd00::/8`, or a bare address) contains `ip`.
pub fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (addr, len) = match cidr.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = addr.trim().parse::<IpAddr>() else { return false };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let len = len.unwrap_or(32).min(32);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let len = len.unwrap_or(128).min(128);
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        (IpAddr::V4(n), IpAddr::V6(i)) => {
            i.to_ipv4_mapped().is_some_and(|i| cidr_contains(&format!("{n}/{}", len.unwrap_or(32)), IpAddr::V4(i)))
        }
        _ => false,
    }
}

fn starts_with_any<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, list) = args2(&args)?;
    let s = str_arg(s)?;
    bool_val(for_each_str(list.as_ref(), |p| s.starts_with(p))?)
}

fn ends_with_any<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, list) = args2(&args)?;
    let s = str_arg(s)?;
    bool_val(for_each_str(list.as_ref(), |p| s.ends_with(p))?)
}

fn contains_any<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, list) = args2(&args)?;
    let s = str_arg(s)?;
    bool_val(for_each_str(list.as_ref(), |p| s.contains(p))?)
}

fn glob_any<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, list) = args2(&args)?;
    let s = str_arg(s)?;
    bool_val(for_each_str(list.as_ref(), |p| glob(p, s))?)
}

thread_local! {
    /// Compiled regular expressions by pattern (rules use a fixed set; bounded anyway).
    static REGEXES: std::cell::RefCell<HashMap<String, Option<regex::Regex>>> =
        std::cell::RefCell::new(HashMap::new());
}

/// `s.matches(re)` (RE2 syntax), compiling each pattern once per thread.
fn regex_matches<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, re) = args2(&args)?;
    let (s, re) = (str_arg(s)?, str_arg(re)?);
    let hit = REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(re) {
            if cache.len() >= 1024 {
                cache.clear();
            }
            let compiled = regex::RegexBuilder::new(re).size_limit(1 << 20).build().ok();
            cache.insert(re.to_string(), compiled);
        }
        cache.get(re).map(|r| r.as_ref().map(|r| r.is_match(s)))
    });
    match hit.flatten() {
        Some(m) => bool_val(m),
        None => Err(ExecutionError::function_error("matches", format!("invalid regular expression {re:?}"))),
    }
}

fn glob_one<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (s, p) = args2(&args)?;
    bool_val(glob(str_arg(p)?, str_arg(s)?))
}

/// Glob match with `*` (any run of characters) and `?` (one byte); no allocation.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

fn one_str<'x, 'b, 'v>(args: &'x [CowVal<'b, 'v>]) -> Result<&'x str, ExecutionError> {
    match args {
        [a] => str_arg(a),
        _ => Err(ExecutionError::invalid_argument_count(1, args.len())),
    }
}

fn image_registry<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(CowVal::owned(CelString::from(split_image(one_str(&args)?).0)))
}

fn image_repo<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(CowVal::owned(CelString::from(split_image(one_str(&args)?).1)))
}

fn image_name<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let repo = split_image(one_str(&args)?).1;
    let name = repo.rsplit('/').next().unwrap_or("").to_string();
    Ok(CowVal::owned(CelString::from(name)))
}

fn image_tag<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    Ok(CowVal::owned(CelString::from(split_image(one_str(&args)?).2)))
}

/// Converts a list of strings into a CEL list value.
pub fn string_list(items: &[String]) -> Box<dyn Val> {
    let v: Vec<Box<dyn Val>> = items.iter().map(|s| Box::new(CelString::from(s.clone())) as Box<dyn Val>).collect();
    Box::new(CelList::from(v))
}

fn borrowed_list<'v, I: IntoIterator<Item = &'v str>>(items: I) -> CelList<'v> {
    let v: Vec<Box<dyn Val + 'v>> =
        items.into_iter().map(|s| Box::new(CelString::from(s)) as Box<dyn Val + 'v>).collect();
    CelList::from(v)
}

fn map_of<'v>(entries: Vec<(&'static str, Box<dyn Val + 'v>)>) -> CelMap<'v> {
    let m: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> =
        entries.into_iter().map(|(k, v)| (CelMapKey::from(k), v)).collect();
    CelMap::from(m)
}

fn s<'v>(v: &'v str) -> Box<dyn Val + 'v> {
    Box::new(CelString::from(v))
}

/// Parses raw JSON into a CEL value (maps, lists, strings, numbers, booleans, null).
pub fn json_to_val(raw: &str) -> Option<Box<dyn Val>> {
    let mut de = serde_json::Deserializer::from_str(raw);
    ValSeed.deserialize(&mut de).ok()
}

struct ValSeed;

impl<'de> DeserializeSeed<'de> for ValSeed {
    type Value = Box<dyn Val>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Box<dyn Val>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Box::new(CelBool::from(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Box::new(CelInt::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Box::new(CelInt::from(i)),
            Err(_) => Box::new(CelUInt::from(v)),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Box::new(CelDouble::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Box::new(CelString::from(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Box::new(CelString::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Box::new(CelNull))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Box::new(CelNull))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut v: Vec<Box<dyn Val>> = Vec::new();
        while let Some(item) = a.next_element_seed(ValSeed)? {
            v.push(item);
        }
        Ok(Box::new(CelList::from(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut m: HashMap<CelMapKey<'static>, Box<dyn Val>> = HashMap::new();
        while let Some(k) = a.next_key::<String>()? {
            let v = a.next_value_seed(ValSeed)?;
            m.insert(CelMapKey::from(k), v);
        }
        Ok(Box::new(CelMap::from(m)))
    }
}

fn empty_map() -> Box<dyn Val> {
    Box::new(CelMap::from(HashMap::<CelMapKey<'static>, Box<dyn Val>>::new()))
}

/// `ka.pod` for a pod spec (or `{present: false, …}` with empty fields when there is none).
pub fn pod_to_val(pod: Option<&PodInfo>) -> Box<dyn Val> {
    let empty = PodInfo::default();
    let p = pod.unwrap_or(&empty);
    let containers: Vec<Box<dyn Val>> = p
        .containers
        .iter()
        .map(|c| {
            let entries: Vec<(&'static str, Box<dyn Val>)> = vec![
                ("name", Box::new(CelString::from(c.name.clone()))),
                ("image", Box::new(CelString::from(c.image.clone()))),
                ("kind", Box::new(CelString::from(c.kind))),
                ("privileged", Box::new(CelBool::from(c.privileged))),
                ("allowPrivilegeEscalation", Box::new(CelBool::from(c.allow_privilege_escalation.unwrap_or(true)))),
                ("capabilities", string_list(&c.capabilities)),
                ("runAsUser", Box::new(CelInt::from(c.run_as_user.unwrap_or(-1)))),
                ("command", string_list(&c.command)),
            ];
            Box::new(map_of(entries)) as Box<dyn Val>
        })
        .collect();
    let images: Vec<String> = p.images().map(str::to_string).collect();
    let labels: HashMap<CelMapKey<'static>, Box<dyn Val>> = p
        .labels
        .iter()
        .map(|(k, v)| (CelMapKey::from(k.clone()), Box::new(CelString::from(v.clone())) as Box<dyn Val>))
        .collect();
    let entries: Vec<(&'static str, Box<dyn Val>)> = vec![
        ("present", Box::new(CelBool::from(pod.is_some()))),
        ("containers", Box::new(CelList::from(containers))),
        ("images", string_list(&images)),
        ("hostNetwork", Box::new(CelBool::from(p.host_network))),
        ("hostPID", Box::new(CelBool::from(p.host_pid))),
        ("hostIPC", Box::new(CelBool::from(p.host_ipc))),
        ("hostPaths", string_list(&p.host_paths)),
        ("serviceAccountName", Box::new(CelString::from(p.service_account_name.clone()))),
        ("nodeName", Box::new(CelString::from(p.node_name.clone()))),
        ("name", Box::new(CelString::from(p.name.clone()))),
        ("labels", Box::new(CelMap::from(labels))),
    ];
    Box::new(map_of(entries))
}

/// Everything a rule evaluation needs about one event, with per-event caches.
pub struct Scope<'e> {
    /// The event.
    pub event: &'e Event<'e>,
    /// The configured cluster name.
    pub cluster: &'e str,
    lists: &'e HashMap<String, Box<dyn Val>>,
    req: OnceLock<Box<dyn Val>>,
    resp: OnceLock<Box<dyn Val>>,
    pod: OnceLock<Option<PodInfo>>,
    pod_val: OnceLock<Box<dyn Val>>,
    req_json: OnceLock<Option<serde_json::Value>>,
    resp_json: OnceLock<Option<serde_json::Value>>,
    evt: OnceLock<Box<dyn Val + 'e>>,
}

impl fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").field("event", &self.event).finish_non_exhaustive()
    }
}

impl<'e> Scope<'e> {
    /// A scope for `event`, with the named lists bound as CEL variables.
    pub fn new(event: &'e Event<'e>, cluster: &'e str, lists: &'e HashMap<String, Box<dyn Val>>) -> Self {
        Scope {
            event,
            cluster,
            lists,
            req: OnceLock::new(),
            resp: OnceLock::new(),
            pod: OnceLock::new(),
            pod_val: OnceLock::new(),
            req_json: OnceLock::new(),
            resp_json: OnceLock::new(),
            evt: OnceLock::new(),
        }
    }

    /// The audit event, if this is one.
    pub fn audit(&self) -> Option<&'e AuditEvent<'e>> {
        match self.event {
            Event::Audit(a) => Some(a),
            Event::Sensor(_) => None,
        }
    }

    /// The pod spec in the request, if any (parsed once).
    pub fn pod(&self) -> Option<&PodInfo> {
        self.pod
            .get_or_init(|| {
                let a = self.audit()?;
                let raw = a.request_object?;
                PodInfo::from_request(&a.object_ref.resource, raw.get())
            })
            .as_ref()
    }

    /// `requestObject` as JSON (parsed once).
    pub fn req_json(&self) -> Option<&serde_json::Value> {
        self.req_json.get_or_init(|| self.audit().and_then(|a| a.request_json())).as_ref()
    }

    /// `responseObject` as JSON (parsed once).
    pub fn resp_json(&self) -> Option<&serde_json::Value> {
        self.resp_json.get_or_init(|| self.audit().and_then(|a| a.response_json())).as_ref()
    }

    fn req_val(&self) -> &dyn Val {
        self.req
            .get_or_init(|| {
                self.audit().and_then(|a| a.request_object).and_then(|r| json_to_val(r.get())).unwrap_or_else(empty_map)
            })
            .as_ref()
    }

    fn resp_val(&self) -> &dyn Val {
        self.resp
            .get_or_init(|| {
                self.audit()
                    .and_then(|a| a.response_object)
                    .and_then(|r| json_to_val(r.get()))
                    .unwrap_or_else(empty_map)
            })
            .as_ref()
    }

    fn pod_val(&self) -> &dyn Val {
        self.pod_val.get_or_init(|| pod_to_val(self.pod())).as_ref()
    }

    fn evt_val(&self) -> Option<&(dyn Val + 'e)> {
        let Event::Sensor(s) = self.event else { return None };
        Some(self.evt.get_or_init(|| sensor_to_val(s, self.cluster)).as_ref())
    }
}

fn sensor_to_val<'e>(e: &'e SensorEvent, cluster: &'e str) -> Box<dyn Val + 'e> {
    let p = &e.process;
    let int = |v: i64| -> Box<dyn Val + 'e> { Box::new(CelInt::from(v)) };
    let flag = |v: bool| -> Box<dyn Val + 'e> { Box::new(CelBool::from(v)) };
    let proc_: Vec<(&'static str, Box<dyn Val + 'e>)> = vec![
        ("pid", int(p.pid)),
        ("ppid", int(p.ppid)),
        ("tid", int(p.tid)),
        ("exe", s(&p.exe)),
        ("name", s(p.exe.rsplit('/').next().unwrap_or(""))),
        ("comm", s(&p.comm)),
        ("args", Box::new(borrowed_list(p.args.iter().map(String::as_str)))),
        ("cmdline", Box::new(CelString::from(p.args.join(" ")))),
        ("cwd", s(&p.cwd)),
        ("parentExe", s(&p.parent_exe)),
        ("parentName", s(p.parent_exe.rsplit('/').next().unwrap_or(""))),
        ("ancestors", Box::new(borrowed_list(p.ancestors.iter().map(String::as_str)))),
        ("ancestorNames", Box::new(borrowed_list(p.ancestors.iter().map(|a| a.rsplit('/').next().unwrap_or(""))))),
        ("uid", int(p.uid)),
        ("euid", int(p.euid)),
        ("gid", int(p.gid)),
        ("upperLayer", flag(p.upper_layer)),
        ("fileless", flag(p.fileless)),
        ("stdioSocket", flag(p.stdio_socket)),
        ("tty", flag(p.tty)),
        ("drift", flag(p.drift)),
    ];
    static EMPTY_FILE: crate::event::FileInfo =
        crate::event::FileInfo { path: String::new(), op: String::new(), flags: 0, mode: 0, new_path: String::new() };
    let f = e.file.as_ref().unwrap_or(&EMPTY_FILE);
    let file: Vec<(&'static str, Box<dyn Val + 'e>)> = vec![
        ("path", s(&f.path)),
        ("name", s(f.path.rsplit('/').next().unwrap_or(""))),
        ("op", s(&f.op)),
        ("flags", int(f.flags)),
        ("mode", int(f.mode)),
        ("newPath", s(&f.new_path)),
    ];
    static EMPTY_NET: crate::event::NetworkInfo = crate::event::NetworkInfo {
        family: String::new(),
        unix_path: String::new(),
        direction: String::new(),
        protocol: String::new(),
        src_ip: String::new(),
        src_port: 0,
        dst_ip: String::new(),
        dst_port: 0,
    };
    let n = e.network.as_ref().unwrap_or(&EMPTY_NET);
    let net: Vec<(&'static str, Box<dyn Val + 'e>)> = vec![
        ("direction", s(&n.direction)),
        ("family", s(&n.family)),
        ("protocol", s(&n.protocol)),
        ("srcIP", s(&n.src_ip)),
        ("srcPort", int(i64::from(n.src_port))),
        ("dstIP", s(&n.dst_ip)),
        ("dstPort", int(i64::from(n.dst_port))),
        ("unixPath", s(&n.unix_path)),
    ];
    static EMPTY_SYS: crate::event::SyscallInfo = crate::event::SyscallInfo {
        name: String::new(),
        flags: 0,
        request: 0,
        target_pid: 0,
        ids: Vec::new(),
        source: String::new(),
        target: String::new(),
        fstype: String::new(),
    };
    let y = e.syscall.as_ref().unwrap_or(&EMPTY_SYS);
    let sys: Vec<(&'static str, Box<dyn Val + 'e>)> = vec![
        ("name", s(&y.name)),
        ("flags", int(y.flags)),
        ("request", int(y.request)),
        ("targetPid", int(y.target_pid)),
        (
            "ids",
            Box::new(CelList::from(
                y.ids.iter().map(|i| Box::new(CelInt::from(*i)) as Box<dyn Val + 'e>).collect::<Vec<_>>(),
            )),
        ),
        ("source", s(&y.source)),
        ("target", s(&y.target)),
        ("fstype", s(&y.fstype)),
    ];
    let entries: Vec<(&'static str, Box<dyn Val + 'e>)> = vec![
        ("type", s(e.kind.as_str())),
        ("time", int(e.time_us)),
        ("node", s(&e.node)),
        ("cluster", s(if e.entity.cluster.is_empty() { cluster } else { &e.entity.cluster })),
        ("namespace", s(&e.entity.namespace)),
        ("pod", s(&e.entity.pod)),
        ("container", s(&e.entity.container)),
        ("containerId", s(&e.entity.container_id)),
        ("host", flag(e.entity.container_id.is_empty())),
        ("image", s(&e.entity.image)),
        ("proc", Box::new(map_of(proc_))),
        ("file", Box::new(map_of(file))),
        ("net", Box::new(map_of(net))),
        ("sys", Box::new(map_of(sys))),
    ];
    Box::new(map_of(entries))
}

impl VariableResolver for Scope<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "ka" => self.audit().map(|_| CowVal::owned(KaView { s: self })),
            "evt" => self.evt_val().map(CowVal::Borrowed),
            name => self.lists.get(name).map(|v| CowVal::Borrowed(v.as_ref())),
        }
    }
}

/// The lazy `ka` value.
struct KaView<'s, 'e> {
    s: &'s Scope<'e>,
}

impl fmt::Debug for KaView<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ka")
    }
}

impl Val for KaView<'_, '_> {
    fn get_type(&self) -> &Type {
        &DYN_TYPE
    }
    fn cel_type() -> &'static Type {
        &DYN_TYPE
    }
    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }
    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(KaView { s: self.s })
    }
}

fn user_map<'v>(u: Option<&'v crate::event::UserInfo<'v>>) -> Box<dyn Val + 'v> {
    let (name, uid, groups): (&str, &str, Vec<&str>) = match u {
        Some(u) => (&u.username, &u.uid, u.groups.iter().map(|g| g.as_str()).collect()),
        None => ("", "", Vec::new()),
    };
    Box::new(map_of(vec![("name", s(name)), ("uid", s(uid)), ("groups", Box::new(borrowed_list(groups)))]))
}

impl Indexer for KaView<'_, '_> {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        let key = idx.downcast_ref::<CelString>().map(|k| k.inner()).ok_or_else(|| ExecutionError::UnexpectedType {
            got: idx.get_type().name().to_owned(),
            want: "string".into(),
        })?;
        let Some(a) = self.s.audit() else { return Err(ExecutionError::no_such_key(key)) };
        let o = &a.object_ref;
        let v: Box<dyn Val + 'v> = match key {
            "verb" => s(&a.verb),
            "stage" => s(a.stage.as_str()),
            "level" => s(&a.level),
            "auditID" => s(&a.audit_id),
            "uri" => s(&a.request_uri),
            "userAgent" => s(&a.user_agent),
            "sourceIP" => s(a.source_ip()),
            "sourceIPs" => Box::new(borrowed_list(a.source_ips.iter().map(|x| x.as_str()))),
            "cluster" => s(self.s.cluster),
            "time" => Box::new(CelInt::from(a.time_us)),
            "user" => user_map(Some(&a.user)),
            "impersonated" => user_map(a.impersonated_user.as_ref()),
            "target" => Box::new(map_of(vec![
                ("resource", s(&o.resource)),
                ("subresource", s(&o.subresource)),
                ("namespace", s(&o.namespace)),
                ("name", s(&o.name)),
                ("apiGroup", s(&o.api_group)),
                ("apiVersion", s(&o.api_version)),
            ])),
            "response" => Box::new(map_of(vec![
                ("code", Box::new(CelInt::from(a.response_status.code))),
                ("status", s(&a.response_status.status)),
                ("reason", s(&a.response_status.reason)),
                ("message", s(&a.response_status.message)),
            ])),
            "auth" => Box::new(map_of(vec![("decision", s(a.authz_decision())), ("reason", s(a.authz_reason()))])),
            "annotations" => {
                let m: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> =
                    a.annotations.0.iter().map(|(k, v)| (CelMapKey::from(k.as_str()), s(v.as_str()))).collect();
                Box::new(CelMap::from(m))
            }
            "req" => return Ok(CowVal::Borrowed(self.s.req_val())),
            "resp" => return Ok(CowVal::Borrowed(self.s.resp_val())),
            "pod" => return Ok(CowVal::Borrowed(self.s.pod_val())),
            _ => return Err(ExecutionError::no_such_key(key)),
        };
        Ok(CowVal::Owned(v))
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(CowVal::into_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_cidrs() {
        assert!(glob("kube-*", "kube-system"));
        assert!(glob("*miner*", "xmrig-miner-1"));
        assert!(!glob("kube-?", "kube-system"));
        assert!(glob("", ""));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("10.0.0.0/8", ip("10.1.2.3")));
        assert!(!cidr_contains("10.0.0.0/8", ip("11.1.2.3")));
        assert!(cidr_contains("0.0.0.0/0", ip("8.8.8.8")));
        assert!(cidr_contains("fd00::/8", ip("fd12::1")));
        assert!(cidr_contains("192.168.1.5", ip("192.168.1.5")));
        assert!(!cidr_contains("bogus", ip("192.168.1.5")));
    }
}

#[cfg(test)]
mod cel_tests {
    use super::*;
    use std::sync::Arc;
    #[test]
    fn ka_bindings_evaluate() {
        let env = Arc::new(env().unwrap());
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"create","user":{"username":"alice","groups":["dev"]},"sourceIPs":["203.0.113.7"],"userAgent":"kubectl","objectRef":{"resource":"pods","namespace":"default","name":"p","apiVersion":"v1"},"responseStatus":{"code":201},"requestObject":{"kind":"Pod","spec":{"hostPID":true,"containers":[{"name":"c","image":"busybox","securityContext":{"privileged":true}}]}},"stageTimestamp":"2024-05-01T10:00:00Z"}"#;
        let ev = Event::Audit(crate::audit::parse_event(line).unwrap());
        let mut lists = HashMap::new();
        lists.insert("cidrs".to_string(), string_list(&["10.0.0.0/8".to_string()]));
        for (src, want) in [
            ("ka.verb == 'create' && ka.user.name == 'alice'", true),
            ("'dev' in ka.user.groups", true),
            ("ka.req.spec.containers.exists(c, c.securityContext.privileged == true)", true),
            ("ka.pod.containers.exists(c, c.privileged)", true),
            ("ka.pod.hostPID", true),
            ("has(ka.req.spec.hostNetwork)", false),
            ("!inCidrs(ka.sourceIP, cidrs)", true),
            ("imageRegistry(ka.pod.images[0]) == 'docker.io'", true),
            ("ka.target.subresource == ''", true),
            ("ka.response.code == 201", true),
            ("ka.userAgent.startsWithAny(['kube', 'kubectl'])", true),
            ("ka.userAgent.lowerAscii().contains('kubectl')", true),
        ] {
            let p = env.compile(src).unwrap();
            let scope = Scope::new(&ev, "c1", &lists);
            let mut ctx = cel::Context::with_env(env.clone());
            ctx.set_variable_resolver(&scope);
            let r = p.execute(&ctx);
            assert_eq!(r, Ok(cel::Value::Bool(want)), "{src}");
        }
    }
}
