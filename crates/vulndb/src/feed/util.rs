//! Small helpers shared by the feed parsers: lenient field access on JSON values,
//! YAML → JSON conversion, summaries and dates.

use serde_json::{Map, Value};

use crate::record::{Event, Range, Status};

/// Longest summary kept (characters).
const MAX_SUMMARY_CHARS: usize = 1000;

/// `v[key]` as a non-empty trimmed string.
pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// `v[key]` as an owned non-empty string.
pub(crate) fn string_field(v: &Value, key: &str) -> Option<String> {
    str_field(v, key).map(str::to_string)
}

/// `v[key]` as an array (empty when absent or not an array).
pub(crate) fn array_field<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// `v[key]` as an object.
pub(crate) fn object_field<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// The non-empty strings of an array field.
pub(crate) fn string_list(v: &Value, key: &str) -> Vec<String> {
    array_field(v, key)
        .iter()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A scalar as text: strings as they are, numbers and booleans printed.
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A number field as `f32` (numbers or numeric strings).
pub(crate) fn f32_field(v: &Value, key: &str) -> Option<f32> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64().map(|f| f as f32),
        Value::String(s) => s.trim().parse::<f32>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// The first non-empty line of `text`, trimmed and bounded in length.
pub(crate) fn first_line(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    truncate_chars(line, MAX_SUMMARY_CHARS)
}

/// `s` cut to at most `max` characters.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// A `YYYY-MM-DD` date (optionally followed by a time) as RFC 3339; other text passes through.
pub(crate) fn date_to_rfc3339(s: &str) -> String {
    let s = s.trim();
    let b = s.as_bytes();
    let is_date = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    if is_date {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    }
}

/// Push `s` onto `list` unless it is empty, equal to `except` or already there.
pub(crate) fn push_unique(list: &mut Vec<String>, s: &str, except: &str) {
    let s = s.trim();
    if !s.is_empty() && s != except && !list.iter().any(|x| x == s) {
        list.push(s.to_string());
    }
}

/// Deepest bracket nesting accepted in YAML text (the YAML parser is slow on deep flow nesting).
const MAX_YAML_BRACKET_DEPTH: usize = 256;

/// Parse YAML text into a JSON value. Documents larger than [`super::MAX_ENTRY_BYTES`] or with
/// flow collections nested deeper than [`MAX_YAML_BRACKET_DEPTH`] (counted on raw brackets) are
/// refused up front.
pub(crate) fn parse_yaml(data: &[u8]) -> Result<Value, String> {
    if data.len() as u64 > super::MAX_ENTRY_BYTES {
        return Err("YAML document too large".into());
    }
    let mut depth = 0usize;
    for b in data {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_YAML_BRACKET_DEPTH {
                    return Err("YAML nested too deeply".into());
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // Feeds are written by other ecosystems' YAML 1.2 tools: `y` or `no` is text there.
    palisade_yaml::from_slice_in::<Value>(data, palisade_yaml::Schema::Core)
        .map(|(v, _lossy)| v)
        .map_err(|e| e.to_string())
}

/// Whether a range has an upper end (a fix, a last affected version or a limit).
pub(crate) fn range_has_upper(r: &Range) -> bool {
    r.events.iter().any(|e| !matches!(e, Event::Introduced(_)))
}

/// The status a language-ecosystem package gets from its ranges: `Affected` when every range is
/// open-ended (no fix published), `Fixed` otherwise (matching goes by the ranges and versions).
pub(crate) fn status_from_ranges(ranges: &[Range]) -> Status {
    if !ranges.is_empty() && !ranges.iter().any(range_has_upper) {
        Status::Affected
    } else {
        Status::Fixed
    }
}

/// Whether `s` looks like a vulnerability identifier (`CVE-2019-1547`, `XSA-248`, `GHSA-…`).
pub(crate) fn looks_like_id(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix("CVE-") {
        let mut parts = rest.split('-');
        let ok =
            |p: Option<&str>, min: usize| p.is_some_and(|p| p.len() >= min && p.bytes().all(|c| c.is_ascii_digit()));
        return ok(parts.next(), 4) && ok(parts.next(), 4) && parts.next().is_none();
    }
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.contains('-')
        && !s.ends_with('-')
        && s.len() <= 128
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_util_helpers() {
        assert_eq!(first_line("\n  hello world \nsecond"), "hello world");
        assert_eq!(truncate_chars("äöü", 2), "äö");
        assert_eq!(date_to_rfc3339("2018-04-09"), "2018-04-09T00:00:00Z");
        assert_eq!(date_to_rfc3339("2018-04-09T01:02:03Z"), "2018-04-09T01:02:03Z");
        assert!(looks_like_id("CVE-2019-1547"));
        assert!(looks_like_id("XSA-248"));
        assert!(!looks_like_id("(AoE)"));
        assert!(!looks_like_id("CVE-"));
        assert!(!looks_like_id("CVE-2019_1"));
        assert!(looks_like_id("CVE-2018-128911"));
        let y = parse_yaml(b"a:\n  0: [x]\n  1.10-r0: [y]\nb: 1.5\n").unwrap_or_default();
        assert_eq!(y["a"]["0"][0], "x");
        assert_eq!(y["a"]["1.10-r0"][0], "y");
    }
}
