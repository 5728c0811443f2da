//! YAML events → a tree of positioned nodes, with aliases expanded under a budget.
//!
//! Every node an alias replays is counted (nodes and scalar bytes), and the budget is checked
//! *before* the anchor is copied, so an alias bomb costs at most the budget, never the
//! expansion. Depth is checked on every collection start and on every alias (an alias of a deep
//! anchor inside a deep collection is as deep as the two together).

use crate::{Error, Limits};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};
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
    /// Line of the node's first character (of the alias, for a replayed anchor).
    pub line: usize,
    /// Column of the node's first character.
    pub col: usize,
    /// The explicit tag, short form (`!!str`, `!foo`), if any.
    pub tag: Option<String>,
}

impl Node {
    /// The scalar text, if a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }
    /// Whether this is a plain null (`null`, `Null`, `NULL`, `~` or empty).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s, Style::Plain) if self.tag.is_none() && crate::value::is_null(s))
    }
    /// A plain boolean as kubectl reads it (YAML 1.1: `true`, `yes`, `on`, `y`, … in their
    /// three cases; `false`, `no`, `off`, `n`, …).
    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            Kind::Scalar(s, Style::Plain) if self.tag.is_none() => crate::value::bool_of(s),
            _ => None,
        }
    }
    /// A plain boolean as `schema` reads it: [`Schema::Kubectl`] as [`Node::as_bool`];
    /// [`Schema::Core`] only `true`/`false` in their three casings (`yes`, `on`, `y` are not
    /// booleans there).
    pub fn as_bool_in(&self, schema: crate::Schema) -> Option<bool> {
        match schema {
            crate::Schema::Kubectl => self.as_bool(),
            crate::Schema::Core => match &self.kind {
                Kind::Scalar(s, Style::Plain) if self.tag.is_none() => crate::value::core_bool_of(s),
                _ => None,
            },
        }
    }
    /// A plain decimal integer.
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

enum Frame {
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>, Option<Node>),
}

struct Open {
    frame: Frame,
    line: usize,
    col: usize,
    tag: Option<String>,
    anchor: usize,
    nodes_at_start: usize,
    bytes_at_start: usize,
}

/// What an anchor costs to replay.
struct Anchor {
    node: Node,
    nodes: usize,
    bytes: usize,
    depth: usize,
}

fn pos(m: &Marker) -> (usize, usize) {
    (m.line().max(1), m.col() + 1)
}

fn tag_name(t: Option<yaml_rust2::parser::Tag>) -> Option<String> {
    let t = t?;
    if t.handle == "!!" || t.handle == "tag:yaml.org,2002:" {
        return Some(format!("!!{}", t.suffix));
    }
    Some(format!("{}{}", t.handle, t.suffix))
}

struct Builder<'l> {
    limits: &'l Limits,
    stack: Vec<Open>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Anchor>,
    nodes: usize,
    bytes: usize,
    /// Deepest nesting of each open collection's subtree, relative to it (for anchors).
    depth_below: Vec<usize>,
}

impl Builder<'_> {
    fn charge(&mut self, nodes: usize, bytes: usize, line: usize, col: usize) -> Result<(), Error> {
        self.nodes = self.nodes.saturating_add(nodes);
        self.bytes = self.bytes.saturating_add(bytes);
        if self.nodes > self.limits.max_nodes {
            return Err(Error::TooManyNodes { line, col, limit: self.limits.max_nodes });
        }
        if self.bytes > self.limits.max_bytes {
            return Err(Error::TooManyBytes { line, col, limit: self.limits.max_bytes });
        }
        Ok(())
    }

    /// Record that a subtree `depth` levels deep (a scalar is 0) hangs under the innermost open
    /// collection; a collection passes its own depth to its parent when it closes.
    fn note_depth(&mut self, depth: usize) {
        if let Some(d) = self.depth_below.last_mut() {
            *d = (*d).max(depth + 1);
        }
    }

    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Open { frame: Frame::Seq(items), .. }) => items.push(node),
            Some(Open { frame: Frame::Map(entries, key), .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }

    fn event(&mut self, ev: Event, mark: Marker) -> Result<(), Error> {
        let (line, col) = pos(&mark);
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                self.charge(1, value.len(), line, col)?;
                let style = match style {
                    TScalarStyle::Plain => Style::Plain,
                    TScalarStyle::SingleQuoted => Style::SingleQuoted,
                    TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    TScalarStyle::Literal => Style::Literal,
                    TScalarStyle::Folded => Style::Folded,
                };
                let bytes = value.len();
                let node = Node { kind: Kind::Scalar(value, style), line, col, tag: tag_name(tag) };
                if anchor > 0 {
                    self.anchors.insert(anchor, Anchor { node: node.clone(), nodes: 1, bytes, depth: 0 });
                }
                self.note_depth(0);
                self.push_node(node);
            }
            Event::SequenceStart(anchor, tag) => self.open(Frame::Seq(Vec::new()), anchor, tag, line, col)?,
            Event::MappingStart(anchor, tag) => self.open(Frame::Map(Vec::new(), None), anchor, tag, line, col)?,
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(o) = self.stack.pop() else { return Ok(()) };
                let depth = self.depth_below.pop().unwrap_or(0);
                let kind = match o.frame {
                    Frame::Seq(items) => Kind::Seq(items),
                    Frame::Map(entries, _) => Kind::Map(entries),
                };
                let node = Node { kind, line: o.line, col: o.col, tag: o.tag };
                if o.anchor > 0 {
                    let a = Anchor {
                        node: node.clone(),
                        nodes: self.nodes - o.nodes_at_start,
                        bytes: self.bytes - o.bytes_at_start,
                        depth,
                    };
                    self.anchors.insert(o.anchor, a);
                }
                self.note_depth(depth);
                self.push_node(node);
            }
            Event::Alias(id) => {
                let Some(a) = self.anchors.get(&id) else { return Err(Error::UnknownAlias { line, col }) };
                let (nodes, bytes, depth) = (a.nodes, a.bytes, a.depth);
                if self.stack.len() + depth > self.limits.max_depth {
                    return Err(Error::TooDeep { line, col, limit: self.limits.max_depth });
                }
                // Checked before copying: the copy is what the budget bounds.
                self.charge(nodes, bytes, line, col)?;
                let mut n = self.anchors[&id].node.clone();
                n.line = line;
                n.col = col;
                self.note_depth(depth);
                self.push_node(n);
            }
            _ => {}
        }
        Ok(())
    }

    fn open(
        &mut self,
        frame: Frame,
        anchor: usize,
        tag: Option<yaml_rust2::parser::Tag>,
        line: usize,
        col: usize,
    ) -> Result<(), Error> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(Error::TooDeep { line, col, limit: self.limits.max_depth });
        }
        self.charge(1, 0, line, col)?;
        self.stack.push(Open {
            frame,
            line,
            col,
            tag: tag_name(tag),
            anchor,
            nodes_at_start: self.nodes - 1,
            bytes_at_start: self.bytes,
        });
        self.depth_below.push(0);
        Ok(())
    }
}

/// Parse every document of `text` into a positioned tree, within `limits`.
///
/// Parsing stops at the first error; the time spent is linear in the input plus the budget.
pub fn parse(text: &str, limits: &Limits) -> Result<Vec<Node>, Error> {
    let mut b = Builder {
        limits,
        stack: Vec::new(),
        docs: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        bytes: 0,
        depth_below: Vec::new(),
    };
    let mut p = Parser::new_from_str(text);
    loop {
        let (ev, mark) = match p.next_token() {
            Ok(x) => x,
            Err(e) => {
                let (line, col) = pos(e.marker());
                let message = e.info().to_string();
                if message.contains("recursion limit") {
                    return Err(Error::TooDeep { line, col, limit: limits.max_depth.min(PARSER_DEPTH) });
                }
                return Err(Error::Syntax { line, col, message });
            }
        };
        match ev {
            Event::StreamEnd => break,
            // Anchors are per document.
            Event::DocumentStart => b.anchors.clear(),
            ev => b.event(ev, mark)?,
        }
    }
    Ok(b.docs)
}

/// The nesting the event parser itself allows (yaml-rust2's recursion limit).
const PARSER_DEPTH: usize = 255;
