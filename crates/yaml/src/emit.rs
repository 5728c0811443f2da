//! `serde_json::Value` → block-style YAML that kubectl (and this crate) read back to the same
//! value. A string is written plain only when it is plainly a string under YAML 1.1 *and*
//! 1.2 rules; otherwise it is double-quoted with JSON escapes (valid YAML escapes).

use serde_json::Value;
use std::fmt::Write as _;

/// Render one document (no leading `---`).
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if s.trim() != s || crate::value::resolve_plain(s) != Value::String(s.to_string()) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`.+~<=".contains(first) || first.is_ascii_digit() {
        return false;
    }
    // Conservative: letters, digits and a few inner punctuation marks only.
    s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./@ ".contains(c))
        && !s.contains(" #")
        && !s.contains(": ")
        && !s.ends_with(':')
}

fn string(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        // JSON string escapes are all valid in YAML double-quoted scalars.
        Value::String(s.to_string()).to_string()
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

fn map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    let mut first = true;
    for (k, v) in m {
        // The first entry of a mapping inside a sequence item follows its `- `.
        if !(first && out.ends_with("- ")) {
            let _ = write!(out, "{:indent$}", "");
        }
        first = false;
        out.push_str(&string(k));
        out.push(':');
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                map(out, inner, indent + 2);
            }
            // Sequences under a key at the key's own indentation, as kubectl prints them.
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                seq(out, items, indent);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn seq(out: &mut String, items: &[Value], indent: usize) {
    for v in items {
        if !out.ends_with("- ") {
            let _ = write!(out, "{:indent$}", "");
        }
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => map(out, m, indent + 2),
            Value::Array(a) if !a.is_empty() => seq(out, a, indent + 2),
            other => {
                debug_assert!(!is_block(other));
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_the_reader() {
        let v = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"a": "yes", "b": "on", "c": "0x10", "d": "", "e": "1.5", "f": "null"}},
            "data": {"k: v": "line1\nline2\n", "#c": " lead", "t": "\t\u{1}é", "list": "- a"},
            "items": [[], {}, [1, [2, {"x": [true, null]}]], {"a": 1, "b": {"c": [{"d": -1.5}]}}, "plain text", 7],
            "yes": true, "empty": {}, "none": [],
        });
        let text = to_string(&v);
        let back = crate::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, v, "{text}");
        assert!(text.contains("kind: ConfigMap\n"), "{text}");
        assert!(text.contains("  a: \"yes\"\n"), "{text}");
        assert_eq!(to_string(&json!("x")), "x\n");
        assert_eq!(to_string(&json!(null)), "null\n");
    }
}
