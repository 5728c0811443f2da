//! Rule files as positioned YAML trees, read with the workspace's one YAML reader
//! ([`palisade_yaml`]), so rule diagnostics can point at a line and column.
//!
//! Aliases are expanded under [`palisade_yaml::Limits::for_input`]: every node an alias
//! replays counts against a budget proportional to the file (with an absolute cap), so an
//! alias bomb (nested "billion laughs", one anchor fanned out by many aliases) is a
//! positioned error, never an unbounded expansion.

use palisade_yaml::{Error, Limits, Schema};
pub use palisade_yaml::{Kind, Node, Style};

/// A YAML error in a rule file (syntax, an unknown alias, or a document over the expansion
/// budget or depth limit).
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// Line (1-based).
    pub line: usize,
    /// Column (1-based).
    pub col: usize,
    /// What went wrong.
    pub message: String,
}

/// Parses `text` into its documents.
pub fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    palisade_yaml::parse_tree(text, &Limits::for_input(text.len())).map_err(|e| {
        let (line, col) = (e.line().unwrap_or(1), e.col().unwrap_or(1));
        let message = match e {
            Error::Syntax { message, .. } | Error::Value { message, .. } => message,
            Error::UnknownAlias { .. } => "unknown alias".to_string(),
            Error::TooManyNodes { limit, .. } => {
                format!("more than {limit} nodes after alias expansion (an alias bomb?); refused")
            }
            Error::TooManyBytes { limit, .. } => {
                format!("more than {limit} bytes of text after alias expansion (an alias bomb?); refused")
            }
            Error::TooDeep { limit, .. } => format!("nested deeper than {limit} levels; refused"),
            e @ (Error::Deserialize(_) | Error::MultipleDocuments(_)) => e.to_string(),
        };
        SyntaxError { line, col, message }
    })
}

/// A plain YAML 1.2 core-schema boolean (`true`/`false`, `True`/`False`, `TRUE`/`FALSE`): rule
/// files are not Kubernetes manifests, so `yes`, `on` and `y` are not booleans here.
pub fn as_bool(n: &Node) -> Option<bool> {
    n.as_bool_in(Schema::Core)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let text = "a: 1\nb:\n  - x\n  - 'y'\nc: |\n  line1\n  line2\n";
        let docs = parse(text).unwrap();
        let Kind::Map(entries) = &docs[0].kind else { panic!() };
        assert_eq!(entries[0].0.as_str(), Some("a"));
        assert_eq!((entries[0].0.line, entries[0].0.col), (1, 1));
        assert_eq!((entries[0].1.line, entries[0].1.col), (1, 4));
        let Kind::Seq(items) = &entries[1].1.kind else { panic!() };
        assert_eq!((items[0].line, items[0].col), (3, 5));
        assert_eq!((items[1].line, items[1].col), (4, 5));
        let c = &entries[2].1;
        assert_eq!(c.as_str(), Some("line1\nline2\n"));
        assert!(matches!(c.kind, Kind::Scalar(_, Style::Literal)));
        assert_eq!((c.line, c.col), (6, 3), "a block scalar is marked at its content");
    }

    #[test]
    fn syntax_error_has_a_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.line >= 1, "{e:?}");
        assert!(parse("key: \"unterminated\n").is_err());
        assert!(parse("a: *nope\n").is_err());
    }

    #[test]
    fn booleans_are_core_schema() {
        let docs = parse("[true, False, yes, on, y, 'true']\n").unwrap();
        let Kind::Seq(items) = &docs[0].kind else { panic!() };
        let b: Vec<_> = items.iter().map(as_bool).collect();
        assert_eq!(b, [Some(true), Some(false), None, None, None, None]);
    }

    /// Nine strings, then `levels - 1` levels of nine aliases of the previous level.
    pub(crate) fn billion_laughs(levels: usize) -> String {
        let mut s = String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for i in 1..levels {
            let p = i - 1;
            s.push_str(&format!("a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"));
        }
        s
    }

    #[test]
    fn alias_bombs_are_refused_quickly() {
        use std::time::{Duration, Instant};
        let text = billion_laughs(9);
        assert!(text.len() < 700, "{}", text.len());
        let t = Instant::now();
        let e = parse(&text).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(e.message.contains("after alias expansion"), "{e:?}");
        assert!(e.line > 1, "{e:?}");
        // One anchor of 2,000 items, 2,000 aliases of it.
        let mut text = String::from("a: &a [");
        for i in 0..2_000 {
            text.push_str(&format!("{}v{i}", if i > 0 { "," } else { "" }));
        }
        text.push_str("]\nb:\n");
        for i in 0..2_000 {
            text.push_str(&format!("  k{i}: *a\n"));
        }
        let t = Instant::now();
        let e = parse(&text).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(e.message.contains("after alias expansion"), "{e:?}");
        // A few aliases are fine, and replay the anchor at the alias's position.
        let docs = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        let Kind::Map(entries) = &docs[0].kind else { panic!() };
        assert!(matches!(&entries[1].1.kind, Kind::Seq(v) if v.len() == 2));
        assert_eq!((entries[1].1.line, entries[1].1.col), (2, 4));
    }
}
