//! Tree → `serde_json::Value`, resolving plain scalars as kubectl's decoder does
//! (sigs.k8s.io/yaml over go-yaml v2, decoding into `interface{}` and then to JSON).
//!
//! - null: empty, `~`, `null`, `Null`, `NULL`;
//! - booleans (YAML 1.1): `y Y yes Yes YES on On ON true True TRUE` and
//!   `n N no No NO off Off OFF false False FALSE`;
//! - integers: decimal, `0x…`, `0o…`, `0…` (octal), `0b…`, with a sign and `_` separators;
//!   out of `i64` range: `u64`, else a float if it has the shape of one;
//! - floats: `1.5`, `.5`, `1e3`, `-1.5E-3`; `.inf` / `.nan` forms (no JSON form) stay strings;
//! - everything else, quoted and block scalars, and `!!str`/custom-tagged scalars: strings
//!   (timestamps too, as go-yaml v2 keeps them for `interface{}`).
//!
//! Mapping keys become strings the way sigs.k8s.io/yaml prints them (`yes:` → `"true"`,
//! `0x10:` → `"16"`). Merge keys (`<<: *base`, or a list of them) are applied in document
//! order, as go-yaml v2 does; a later key overrides an earlier one.

use crate::tree::{Kind, Node, Style};
use crate::Error;
use serde_json::{Map, Number, Value};

/// Whether a plain scalar is null.
pub(crate) fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

/// How plain scalars resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schema {
    /// As kubectl's decoder (go-yaml v2): YAML 1.1 booleans (`y`, `yes`, `on`, …) and Go
    /// integer forms. For Kubernetes manifests.
    #[default]
    Kubectl,
    /// YAML 1.2 core schema booleans only (`true`/`false` in three casings); `y`, `yes`, `on`
    /// and friends stay strings. For data files written by other ecosystems (vulnerability
    /// feeds), where a value `y` or `no` is text.
    Core,
}

/// A plain scalar's YAML 1.2 core-schema boolean value.
pub(crate) fn core_bool_of(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// A plain scalar's YAML 1.1 boolean value.
pub(crate) fn bool_of(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` / `ParseUint`, on text without `_`.
fn int_of(s: &str) -> Option<Value> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &body[2..]),
        Some("0o") => (8, &body[2..]),
        Some("0b") => (2, &body[2..]),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
        _ => (10, body),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let mag = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if mag <= i64::MAX as u64 + 1 {
            return Some(Value::Number(Number::from((mag as i128).wrapping_neg() as i64)));
        }
        return None;
    }
    if let Ok(i) = i64::try_from(mag) {
        return Some(Value::Number(Number::from(i)));
    }
    Some(Value::Number(Number::from(mag)))
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

fn float(f: f64) -> Option<Value> {
    Number::from_f64(f).map(Value::Number)
}

/// Resolve an untagged plain scalar as kubectl does.
pub fn resolve_plain(s: &str) -> Value {
    resolve_plain_in(s, Schema::Kubectl)
}

/// Resolve an untagged plain scalar under `schema`.
pub fn resolve_plain_in(s: &str, schema: Schema) -> Value {
    if is_null(s) {
        return Value::Null;
    }
    let b = match schema {
        Schema::Kubectl => bool_of(s),
        Schema::Core => core_bool_of(s),
    };
    if let Some(b) = b {
        return Value::Bool(b);
    }
    match s.as_bytes()[0] {
        b'.' if s[1..].bytes().next().is_some_and(|c| c.is_ascii_digit()) => {
            if let Some(v) = s.parse::<f64>().ok().and_then(float) {
                return v;
            }
        }
        b'+' | b'-' | b'0'..=b'9' => {
            let plain = s.replace('_', "");
            if let Some(v) = int_of(&plain) {
                return v;
            }
            if yaml_style_float(&plain) {
                if let Some(v) = plain.parse::<f64>().ok().and_then(float) {
                    return v;
                }
            }
        }
        _ => {}
    }
    Value::String(s.to_string())
}

/// A scalar with its style and tag.
fn scalar(s: &str, style: Style, tag: Option<&str>, line: usize, col: usize, schema: Schema) -> Result<Value, Error> {
    let plain = style == Style::Plain;
    match tag {
        None if plain => Ok(resolve_plain_in(s, schema)),
        None => Ok(Value::String(s.to_string())),
        Some("!!str" | "!!binary" | "!!timestamp") => Ok(Value::String(s.to_string())),
        Some(t @ ("!!bool" | "!!int" | "!!float" | "!!null")) => {
            let v = resolve_plain_in(s, schema);
            let ok = match t {
                "!!bool" => v.is_boolean(),
                "!!int" => v.is_i64() || v.is_u64(),
                "!!float" => v.is_number(),
                _ => v.is_null(),
            };
            if !ok {
                return Err(Error::Value { line, col, message: format!("cannot decode {s:?} as {t}") });
            }
            Ok(match (t, v) {
                ("!!float", Value::Number(n)) => n.as_f64().and_then(float).unwrap_or(Value::Number(n)),
                (_, v) => v,
            })
        }
        // Other tags (`!`, `!foo`, unknown `!!x`) are not resolved: the text is a string.
        Some(_) => Ok(Value::String(s.to_string())),
    }
}

/// A mapping key as sigs.k8s.io/yaml prints it.
fn key(n: &Node, schema: Schema) -> Result<String, Error> {
    match &n.kind {
        Kind::Scalar(s, style) => Ok(match scalar(s, *style, n.tag.as_deref(), n.line, n.col, schema)? {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".to_string(),
            other => other.to_string(),
        }),
        _ => Err(Error::Value {
            line: n.line,
            col: n.col,
            message: format!("a mapping key must be a scalar, found {}", n.type_name()),
        }),
    }
}

fn is_merge(n: &Node) -> bool {
    matches!(&n.kind, Kind::Scalar(s, Style::Plain) if s == "<<" && matches!(n.tag.as_deref(), None | Some("!!merge")))
}

fn merge(into: &mut Map<String, Value>, v: &Node, schema: Schema) -> Result<(), Error> {
    let bad = || Error::Value {
        line: v.line,
        col: v.col,
        message: "a merge key (<<) takes a mapping or a list of mappings".into(),
    };
    match &v.kind {
        Kind::Map(_) => match to_value_in(v, schema)? {
            Value::Object(m) => into.extend(m),
            _ => return Err(bad()),
        },
        Kind::Seq(items) => {
            // go-yaml v2 merges a list last to first, so earlier mappings win.
            for item in items.iter().rev() {
                if !matches!(item.kind, Kind::Map(_)) {
                    return Err(bad());
                }
                merge(into, item, schema)?;
            }
        }
        _ => return Err(bad()),
    }
    Ok(())
}

/// Convert a tree node to JSON as kubectl does.
pub fn to_value(n: &Node) -> Result<Value, Error> {
    to_value_in(n, Schema::Kubectl)
}

/// Convert a tree node to JSON under `schema`.
pub fn to_value_in(n: &Node, schema: Schema) -> Result<Value, Error> {
    match &n.kind {
        Kind::Scalar(s, style) => scalar(s, *style, n.tag.as_deref(), n.line, n.col, schema),
        Kind::Seq(items) => {
            items.iter().map(|i| to_value_in(i, schema)).collect::<Result<Vec<_>, _>>().map(Value::Array)
        }
        Kind::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                if is_merge(k) {
                    merge(&mut m, v, schema)?;
                    continue;
                }
                m.insert(key(k, schema)?, to_value_in(v, schema)?);
            }
            Ok(Value::Object(m))
        }
    }
}
