//! Named event fields read natively (without CEL): for exceptions, output templates, stateful
//! group keys and alert entities. The names are the CEL paths (`ka.user.name`, `evt.proc.exe`),
//! so a rule uses one vocabulary throughout.

use crate::bind::Scope;
use crate::event::Event;
use std::borrow::Cow;

/// A field a rule can name outside its CEL condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `ka.verb`
    Verb,
    /// `ka.stage`
    Stage,
    /// `ka.uri`
    Uri,
    /// `ka.auditID`
    AuditId,
    /// `ka.user.name`
    UserName,
    /// `ka.user.uid`
    UserUid,
    /// `ka.user.groups`
    UserGroups,
    /// `ka.impersonated.name`
    ImpersonatedName,
    /// `ka.sourceIP`
    SourceIp,
    /// `ka.sourceIPs`
    SourceIps,
    /// `ka.userAgent`
    UserAgent,
    /// `ka.target.resource`
    Resource,
    /// `ka.target.subresource`
    Subresource,
    /// `ka.target.namespace`
    Namespace,
    /// `ka.target.name`
    Name,
    /// `ka.target.apiGroup`
    ApiGroup,
    /// `ka.response.code`
    ResponseCode,
    /// `ka.response.reason`
    ResponseReason,
    /// `ka.auth.decision`
    Decision,
    /// `ka.auth.reason`
    AuthReason,
    /// `ka.cluster` / `evt.cluster`
    Cluster,
    /// `ka.pod.images`
    PodImages,
    /// `ka.pod.hostPaths`
    PodHostPaths,
    /// `ka.pod.serviceAccountName`
    PodServiceAccount,
    /// `ka.pod.name`
    PodName,
    /// `ka.annotations.<key>`
    Annotation(String),
    /// `ka.req.<path>`: a dotted path into `requestObject` (numbers index lists).
    Req(Vec<String>),
    /// `ka.resp.<path>`
    Resp(Vec<String>),
    /// `evt.<path>` of a sensor event (`evt.proc.exe`, `evt.pod`, …).
    Evt(Vec<String>),
}

/// A field's value on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue<'x> {
    /// Absent.
    None,
    /// A string (numbers and booleans render as text).
    Str(Cow<'x, str>),
    /// A list of strings.
    List(Vec<Cow<'x, str>>),
}

impl FieldValue<'_> {
    /// The value as display text (lists joined with `,`; absent is "").
    pub fn render(&self) -> String {
        match self {
            FieldValue::None => String::new(),
            FieldValue::Str(s) => s.to_string(),
            FieldValue::List(l) => l.join(","),
        }
    }
    /// Every string in the value.
    pub fn strings(&self) -> Vec<&str> {
        match self {
            FieldValue::None => Vec::new(),
            FieldValue::Str(s) => vec![s.as_ref()],
            FieldValue::List(l) => l.iter().map(|s| s.as_ref()).collect(),
        }
    }
}

impl Field {
    /// Parses a field name; the error says what is known.
    pub fn parse(name: &str) -> Result<Field, String> {
        let name = name.trim();
        let f = match name {
            "ka.verb" => Field::Verb,
            "ka.stage" => Field::Stage,
            "ka.uri" => Field::Uri,
            "ka.auditID" => Field::AuditId,
            "ka.user.name" => Field::UserName,
            "ka.user.uid" => Field::UserUid,
            "ka.user.groups" => Field::UserGroups,
            "ka.impersonated.name" => Field::ImpersonatedName,
            "ka.sourceIP" => Field::SourceIp,
            "ka.sourceIPs" => Field::SourceIps,
            "ka.userAgent" => Field::UserAgent,
            "ka.target.resource" => Field::Resource,
            "ka.target.subresource" => Field::Subresource,
            "ka.target.namespace" => Field::Namespace,
            "ka.target.name" => Field::Name,
            "ka.target.apiGroup" => Field::ApiGroup,
            "ka.response.code" => Field::ResponseCode,
            "ka.response.reason" => Field::ResponseReason,
            "ka.auth.decision" => Field::Decision,
            "ka.auth.reason" => Field::AuthReason,
            "ka.cluster" | "evt.cluster" => Field::Cluster,
            "ka.pod.images" => Field::PodImages,
            "ka.pod.hostPaths" => Field::PodHostPaths,
            "ka.pod.serviceAccountName" => Field::PodServiceAccount,
            "ka.pod.name" => Field::PodName,
            _ => {
                if let Some(k) = name.strip_prefix("ka.annotations.") {
                    Field::Annotation(k.to_string())
                } else if let Some(p) = name.strip_prefix("ka.req.") {
                    Field::Req(split_path(p)?)
                } else if let Some(p) = name.strip_prefix("ka.resp.") {
                    Field::Resp(split_path(p)?)
                } else if let Some(p) = name.strip_prefix("evt.") {
                    let path = split_path(p)?;
                    let known = crate::bind::EVT_FIELDS;
                    if !path.first().is_some_and(|f| known.contains(&f.as_str())) {
                        return Err(format!("unknown field {name:?}: evt fields are {}", known.join(", ")));
                    }
                    Field::Evt(path)
                } else {
                    return Err(format!(
                        "unknown field {name:?}: use ka.verb, ka.user.name, ka.user.groups, ka.impersonated.name, \
                         ka.sourceIP, ka.userAgent, ka.target.{{resource,subresource,namespace,name,apiGroup}}, \
                         ka.response.code, ka.auth.decision, ka.pod.{{images,hostPaths,serviceAccountName,name}}, \
                         ka.annotations.KEY, ka.req.PATH, ka.resp.PATH or evt.PATH"
                    ));
                }
            }
        };
        Ok(f)
    }

    /// Reads the field on the event in `scope`.
    pub fn get<'x>(&self, scope: &'x Scope<'_>) -> FieldValue<'x> {
        let b = |s: &'x str| FieldValue::Str(Cow::Borrowed(s));
        if let Field::Cluster = self {
            return b(scope.cluster);
        }
        if let Field::Evt(path) = self {
            let Event::Sensor(e) = scope.event else { return FieldValue::None };
            return match serde_json::to_value(e) {
                Ok(mut v) => {
                    add_computed_sensor_fields(&mut v, scope.cluster);
                    // the CEL view's names (evt.proc.parentExe, evt.net.dstIP, ...) and the
                    // serialised ones (evt.process.parent_exe, ...) both resolve
                    let mut path: Vec<String> = path.iter().map(|p| snake_case(p)).collect();
                    if let Some(first) = path.first_mut() {
                        let mapped = match first.as_str() {
                            "proc" => Some("process"),
                            "net" => Some("network"),
                            "sys" => Some("syscall"),
                            "type" => Some("kind"),
                            "host" => Some("host"),
                            "namespace" | "pod" | "container" | "image" | "container_id" | "cluster" => None,
                            _ => Some(first.as_str()),
                        };
                        match mapped {
                            Some(m) => *first = m.to_string(),
                            None => path.insert(0, "entity".to_string()),
                        }
                    }
                    json_path(&v, &path).map(owned_json).unwrap_or(FieldValue::None)
                }
                Err(_) => FieldValue::None,
            };
        }
        let Some(a) = scope.audit() else { return FieldValue::None };
        match self {
            Field::Verb => b(&a.verb),
            Field::Stage => b(a.stage.as_str()),
            Field::Uri => b(&a.request_uri),
            Field::AuditId => b(&a.audit_id),
            Field::UserName => b(&a.user.username),
            Field::UserUid => b(&a.user.uid),
            Field::UserGroups => FieldValue::List(a.user.groups.iter().map(|g| Cow::Borrowed(g.as_str())).collect()),
            Field::ImpersonatedName => a.impersonated_user.as_ref().map(|u| b(&u.username)).unwrap_or(FieldValue::None),
            Field::SourceIp => b(a.source_ip()),
            Field::SourceIps => FieldValue::List(a.source_ips.iter().map(|g| Cow::Borrowed(g.as_str())).collect()),
            Field::UserAgent => b(&a.user_agent),
            Field::Resource => b(&a.object_ref.resource),
            Field::Subresource => b(&a.object_ref.subresource),
            Field::Namespace => b(&a.object_ref.namespace),
            Field::Name => b(&a.object_ref.name),
            Field::ApiGroup => b(&a.object_ref.api_group),
            Field::ResponseCode => FieldValue::Str(Cow::Owned(a.response_status.code.to_string())),
            Field::ResponseReason => b(&a.response_status.reason),
            Field::Decision => b(a.authz_decision()),
            Field::AuthReason => b(a.authz_reason()),
            Field::PodImages => match scope.pod() {
                Some(p) => FieldValue::List(p.images().map(Cow::Borrowed).collect()),
                None => FieldValue::None,
            },
            Field::PodHostPaths => match scope.pod() {
                Some(p) => FieldValue::List(p.host_paths.iter().map(|s| Cow::Borrowed(s.as_str())).collect()),
                None => FieldValue::None,
            },
            Field::PodServiceAccount => scope.pod().map(|p| b(&p.service_account_name)).unwrap_or(FieldValue::None),
            Field::PodName => scope.pod().map(|p| b(&p.name)).unwrap_or(FieldValue::None),
            Field::Annotation(k) => a.annotations.get(k).map(b).unwrap_or(FieldValue::None),
            Field::Req(path) => {
                scope.req_json().and_then(|v| json_path(v, path)).map(borrowed_json).unwrap_or(FieldValue::None)
            }
            Field::Resp(path) => {
                scope.resp_json().and_then(|v| json_path(v, path)).map(borrowed_json).unwrap_or(FieldValue::None)
            }
            Field::Cluster | Field::Evt(_) => FieldValue::None,
        }
    }
}

fn split_path(p: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = p.split('.').map(str::to_string).collect();
    if parts.iter().any(|s| s.is_empty()) {
        return Err(format!("empty segment in field path {p:?}"));
    }
    Ok(parts)
}

fn json_path<'v>(mut v: &'v serde_json::Value, path: &[String]) -> Option<&'v serde_json::Value> {
    for seg in path {
        v = match v {
            serde_json::Value::Object(m) => m.get(seg)?,
            serde_json::Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn borrowed_json(v: &serde_json::Value) -> FieldValue<'_> {
    match v {
        serde_json::Value::Null => FieldValue::None,
        serde_json::Value::String(s) => FieldValue::Str(Cow::Borrowed(s)),
        serde_json::Value::Array(a) => FieldValue::List(
            a.iter()
                .map(|x| match x {
                    serde_json::Value::String(s) => Cow::Borrowed(s.as_str()),
                    other => Cow::Owned(other.to_string()),
                })
                .collect(),
        ),
        other => FieldValue::Str(Cow::Owned(other.to_string())),
    }
}

fn owned_json(v: &serde_json::Value) -> FieldValue<'static> {
    match borrowed_json(v) {
        FieldValue::None => FieldValue::None,
        FieldValue::Str(s) => FieldValue::Str(Cow::Owned(s.into_owned())),
        FieldValue::List(l) => FieldValue::List(l.into_iter().map(|s| Cow::Owned(s.into_owned())).collect()),
    }
}

/// One piece of an output template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// A field's rendered value.
    Field(Field),
}

/// Parses an output template: `%ka.user.name` (Falco style) or `{{ka.user.name}}` placeholders;
/// `%%` is a literal `%`. Errors give the byte offset of the bad placeholder.
pub fn parse_template(t: &str) -> Result<Vec<Piece>, (usize, String)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let bytes = t.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if t[i..].starts_with("%%") {
            text.push('%');
            i += 2;
        } else if bytes[i] == b'%' && bytes.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic()) {
            let start = i + 1;
            let mut j = start;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || b"._".contains(&bytes[j])) {
                j += 1;
            }
            // a trailing '.' is punctuation, not part of the path
            while j > start && bytes[j - 1] == b'.' {
                j -= 1;
            }
            let name = &t[start..j];
            let f = Field::parse(name).map_err(|e| (i, e))?;
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            out.push(Piece::Field(f));
            i = j;
        } else if t[i..].starts_with("{{") {
            let Some(end) = t[i + 2..].find("}}") else {
                return Err((i, "unclosed {{".to_string()));
            };
            let name = t[i + 2..i + 2 + end].trim();
            let f = Field::parse(name).map_err(|e| (i, e))?;
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            out.push(Piece::Field(f));
            i = i + 2 + end + 2;
        } else {
            let ch_len = t[i..].chars().next().map(char::len_utf8).unwrap_or(1);
            text.push_str(&t[i..i + ch_len]);
            i += ch_len;
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// Renders a parsed template on an event; absent fields render as `<NA>`.
pub fn render(pieces: &[Piece], scope: &Scope<'_>) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => s.push_str(t),
            Piece::Field(f) => {
                let v = f.get(scope).render();
                if v.is_empty() {
                    s.push_str("<NA>");
                } else {
                    s.push_str(&v);
                }
            }
        }
    }
    s
}

/// `dstIP` → `dst_ip`, `parentExe` → `parent_exe`; snake_case names pass through.
fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && !chars[i - 1].is_ascii_uppercase() && chars[i - 1] != '_';
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

/// Adds the fields the CEL view computes (`proc.name`, `proc.cmdline`, `proc.parentName`,
/// `file.name`, `host`, the cluster fallback) to a serialised sensor event.
fn add_computed_sensor_fields(v: &mut serde_json::Value, cluster: &str) {
    use serde_json::Value;
    let base = |s: &str| Value::String(s.rsplit('/').next().unwrap_or("").to_string());
    if let Some(p) = v.get_mut("process").and_then(Value::as_object_mut) {
        let exe = p.get("exe").and_then(Value::as_str).unwrap_or("").to_string();
        let parent = p.get("parent_exe").and_then(Value::as_str).unwrap_or("").to_string();
        let cmdline = p
            .get("args")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        p.insert("name".into(), base(&exe));
        p.insert("parent_name".into(), base(&parent));
        p.insert("cmdline".into(), Value::String(cmdline));
    }
    if let Some(f) = v.get_mut("file").and_then(Value::as_object_mut) {
        let path = f.get("path").and_then(Value::as_str).unwrap_or("").to_string();
        let new_path = f.get("new_path").and_then(Value::as_str).unwrap_or("").to_string();
        f.insert("name".into(), base(&path));
        // `path`, or `path -> new path` for a rename (for messages)
        let target = if new_path.is_empty() { path } else { format!("{path} -> {new_path}") };
        f.insert("target".into(), Value::String(target));
    }
    let host = v.pointer("/entity/container_id").and_then(Value::as_str).is_none_or(str::is_empty);
    if let Some(o) = v.as_object_mut() {
        o.insert("host".into(), Value::Bool(host));
    }
    if let Some(e) = v.get_mut("entity").and_then(Value::as_object_mut) {
        if e.get("cluster").and_then(Value::as_str).is_none_or(str::is_empty) {
            e.insert("cluster".into(), Value::String(cluster.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let p = parse_template("User %ka.user.name ran {{ ka.target.subresource }} (100%%).").unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!(p[1], Piece::Field(Field::UserName));
        assert_eq!(p[3], Piece::Field(Field::Subresource));
        assert_eq!(p[4], Piece::Text(" (100%).".into()));
        assert!(parse_template("%ka.bogus").is_err());
        assert!(parse_template("{{ka.verb").is_err());
        assert!(parse_template("50% off").is_ok(), "% followed by a space is text");
    }
}
