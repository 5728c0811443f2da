//! A small YAML tree that remembers where each node was written, built from yaml-rust2's event
//! parser, so rule diagnostics can point at a line and column.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `foo`
    Plain,
    /// `'foo'`
    SingleQuoted,
    /// `"foo"`
    DoubleQuoted,
    /// `|` block
    Literal,
    /// `>` block
    Folded,
}

/// A node's content.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A scalar, as text.
    Scalar(String, Style),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

/// A YAML node and its position (1-based line and column).
#[derive(Debug, Clone)]
pub struct Node {
    /// Content.
    pub kind: Kind,
    /// Line of the node's first character.
    pub line: usize,
    /// Column of the node's first character.
    pub col: usize,
}

impl Node {
    /// The scalar text, if a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }
    /// Whether this is a plain `null` / `~` / empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s, Style::Plain) if s.is_empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    }
    /// A YAML 1.2 core-schema boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            Kind::Scalar(s, Style::Plain) => match s.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
    /// A plain integer.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.kind {
            Kind::Scalar(s, Style::Plain) => s.parse().ok(),
            _ => None,
        }
    }
    /// A short description of the node's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar(..) if self.is_null() => "null",
            Kind::Scalar(..) => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// Line (1-based).
    pub line: usize,
    /// Column (1-based).
    pub col: usize,
    /// What went wrong.
    pub message: String,
}

enum Frame {
    Seq(Vec<Node>, Marker, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Marker, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
    error: Option<SyntaxError>,
    nodes: usize,
}

const MAX_NODES: usize = 1_000_000;

fn pos(m: &Marker) -> (usize, usize) {
    (m.line(), m.col() + 1)
}

impl Builder {
    fn push_node(&mut self, node: Node) {
        self.nodes += 1;
        if self.nodes > MAX_NODES && self.error.is_none() {
            self.error = Some(SyntaxError { line: node.line, col: node.col, message: "document too large".into() });
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(entries, key, _, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let (line, col) = pos(&mark);
        match ev {
            Event::Scalar(value, style, anchor, _tag) => {
                let style = match style {
                    TScalarStyle::Plain => Style::Plain,
                    TScalarStyle::SingleQuoted => Style::SingleQuoted,
                    TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    TScalarStyle::Literal => Style::Literal,
                    TScalarStyle::Folded => Style::Folded,
                };
                let node = Node { kind: Kind::Scalar(value, style), line, col };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_node(node);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), mark, anchor)),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(Vec::new(), None, mark, anchor)),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(items, m, a)) => {
                        let (line, col) = pos(&m);
                        (Node { kind: Kind::Seq(items), line, col }, a)
                    }
                    Some(Frame::Map(entries, _, m, a)) => {
                        let (line, col) = pos(&m);
                        (Node { kind: Kind::Map(entries), line, col }, a)
                    }
                    None => return,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_node(node);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(n) => {
                    let mut n = n.clone();
                    n.line = line;
                    n.col = col;
                    self.push_node(n)
                }
                None => {
                    if self.error.is_none() {
                        self.error = Some(SyntaxError { line, col, message: "unknown alias".into() });
                    }
                    self.push_node(Node { kind: Kind::Scalar(String::new(), Style::Plain), line, col });
                }
            },
            _ => {}
        }
    }
}

/// Parses `text` into its documents.
pub fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut b = Builder::default();
    let mut p = Parser::new_from_str(text);
    if let Err(e) = p.load(&mut b, true) {
        let (line, col) = pos(e.marker());
        return Err(SyntaxError { line, col, message: e.info().to_string() });
    }
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.docs)
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
}
