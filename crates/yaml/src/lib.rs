//! The workspace's one YAML reader.
//!
//! - [`decode`]: bytes → text as kubectl decodes manifests (UTF-16 by BOM, UTF-8 BOM dropped,
//!   invalid bytes replaced with a [`DecodeWarning`] instead of refusing the file).
//! - [`parse_tree`]: text → positioned nodes ([`Node`], line and column of each), for
//!   diagnostics (detection rules).
//! - [`from_str_multi`] / [`from_str`] / [`from_slice`]: text → `serde_json::Value`s (or any
//!   `Deserialize` type through them), scalars resolved as kubectl's decoder does (YAML 1.1
//!   booleans such as `yes`/`on`/`Y`, Go integer forms, merge keys): see [`value`].
//! - [`to_string`]: `serde_json::Value` → YAML that reads back to the same value.
//!
//! **Limits** ([`Limits`]): every alias replays its anchor, so the work and memory of a
//! document are bounded by a budget of nodes and scalar bytes counted *after* alias expansion
//! (proportional to the input, with an absolute cap), and by a nesting depth. Exceeding either
//! is an [`Error`] with a position — never an abort. Time is linear in the input plus the budget.

mod decode;
mod emit;
pub mod tree;
pub mod value;

pub use decode::{decode, DecodeWarning, Decoded};
pub use emit::to_string;
pub use tree::{Kind, Node, Style};
pub use value::Schema;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Deepest nesting of collections accepted (serde_json's own recursion limit is 128 too).
pub const MAX_DEPTH: usize = 128;
/// Expansion allowed per input byte (nodes and scalar bytes), before the absolute caps.
pub const EXPANSION_PER_BYTE: usize = 16;
/// Absolute cap on nodes of one parse, after alias expansion.
pub const MAX_NODES: usize = 50_000_000;
/// Absolute cap on scalar bytes of one parse, after alias expansion.
pub const MAX_BYTES: usize = 1 << 30;

/// Bounds on one parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Nodes (scalars and collections), counting every node an alias replays.
    pub max_nodes: usize,
    /// Bytes of scalar text, counting what aliases replay.
    pub max_bytes: usize,
    /// Nesting depth of collections.
    pub max_depth: usize,
}

impl Limits {
    /// The default for an input of `len` bytes: an alias-free document always fits (it has at
    /// most about one node and one scalar byte per input byte); aliases may expand it
    /// [`EXPANSION_PER_BYTE`]-fold (at least 100,000 nodes / 1 MiB), up to [`MAX_NODES`] /
    /// [`MAX_BYTES`].
    pub fn for_input(len: usize) -> Self {
        let room = len.saturating_mul(EXPANSION_PER_BYTE);
        Limits {
            max_nodes: room.saturating_add(100_000).min(MAX_NODES),
            max_bytes: room.saturating_add(1 << 20).min(MAX_BYTES),
            max_depth: MAX_DEPTH,
        }
    }
}

/// Why YAML could not be read. Lines and columns are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not YAML.
    #[error("invalid YAML at line {line}, column {col}: {message}")]
    Syntax {
        /// Line.
        line: usize,
        /// Column.
        col: usize,
        /// The parser's message.
        message: String,
    },
    /// The expansion budget in nodes was exceeded (an alias bomb, or a huge document).
    #[error("YAML at line {line}, column {col}: more than {limit} nodes after alias expansion; refused")]
    TooManyNodes {
        /// Line where the budget ran out.
        line: usize,
        /// Column.
        col: usize,
        /// The budget.
        limit: usize,
    },
    /// The expansion budget in scalar bytes was exceeded.
    #[error("YAML at line {line}, column {col}: more than {limit} bytes of text after alias expansion; refused")]
    TooManyBytes {
        /// Line where the budget ran out.
        line: usize,
        /// Column.
        col: usize,
        /// The budget.
        limit: usize,
    },
    /// Collections nested too deeply.
    #[error("YAML at line {line}, column {col}: nested deeper than {limit} levels; refused")]
    TooDeep {
        /// Line.
        line: usize,
        /// Column.
        col: usize,
        /// The limit.
        limit: usize,
    },
    /// An alias names no anchor defined before it in the document.
    #[error("YAML at line {line}, column {col}: unknown alias")]
    UnknownAlias {
        /// Line.
        line: usize,
        /// Column.
        col: usize,
    },
    /// Well-formed YAML that has no JSON value (a mapping as a key, a bad merge, `!!int x`).
    #[error("invalid YAML at line {line}, column {col}: {message}")]
    Value {
        /// Line.
        line: usize,
        /// Column.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// The value does not fit the requested type.
    #[error("{0}")]
    Deserialize(String),
    /// `from_str` found more than one document.
    #[error("expected one YAML document, found {0}")]
    MultipleDocuments(usize),
}

impl Error {
    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Syntax { line, .. }
            | Error::TooManyNodes { line, .. }
            | Error::TooManyBytes { line, .. }
            | Error::TooDeep { line, .. }
            | Error::UnknownAlias { line, .. }
            | Error::Value { line, .. } => Some(*line),
            Error::Deserialize(_) | Error::MultipleDocuments(_) => None,
        }
    }
    /// The 1-based column, when known.
    pub fn col(&self) -> Option<usize> {
        match self {
            Error::Syntax { col, .. }
            | Error::TooManyNodes { col, .. }
            | Error::TooManyBytes { col, .. }
            | Error::TooDeep { col, .. }
            | Error::UnknownAlias { col, .. }
            | Error::Value { col, .. } => Some(*col),
            Error::Deserialize(_) | Error::MultipleDocuments(_) => None,
        }
    }
    /// The same error with its line moved down by `lines` (for text cut out of a larger file).
    pub fn offset_lines(mut self, lines: usize) -> Self {
        match &mut self {
            Error::Syntax { line, .. }
            | Error::TooManyNodes { line, .. }
            | Error::TooManyBytes { line, .. }
            | Error::TooDeep { line, .. }
            | Error::UnknownAlias { line, .. }
            | Error::Value { line, .. } => *line += lines,
            Error::Deserialize(_) | Error::MultipleDocuments(_) => {}
        }
        self
    }
}

/// One document as JSON, with the position of its root node.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The value (`Null` for an empty document).
    pub value: Value,
    /// Line of the root node.
    pub line: usize,
    /// Column of the root node.
    pub col: usize,
}

/// Parse every document of `text` into positioned trees, within `limits`.
pub fn parse_tree(text: &str, limits: &Limits) -> Result<Vec<Node>, Error> {
    tree::parse(text, limits)
}

/// Parse every document of `text` to JSON under [`Limits::for_input`].
pub fn from_str_multi(text: &str) -> Result<Vec<Document>, Error> {
    from_str_multi_with(text, &Limits::for_input(text.len()))
}

/// Parse every document of `text` to JSON under `limits`.
pub fn from_str_multi_with(text: &str, limits: &Limits) -> Result<Vec<Document>, Error> {
    from_str_multi_in(text, limits, Schema::Kubectl)
}

/// Parse every document of `text` to JSON under `limits`, scalars resolved by `schema`.
pub fn from_str_multi_in(text: &str, limits: &Limits, schema: Schema) -> Result<Vec<Document>, Error> {
    tree::parse(text, limits)?
        .iter()
        .map(|n| Ok(Document { value: value::to_value_in(n, schema)?, line: n.line, col: n.col }))
        .collect()
}

/// Parse a single-document `text` (empty text is `null`) into `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    let mut docs = from_str_multi(text)?;
    if docs.len() > 1 {
        return Err(Error::MultipleDocuments(docs.len()));
    }
    let v = docs.pop().map(|d| d.value).unwrap_or(Value::Null);
    serde_json::from_value(v).map_err(|e| Error::Deserialize(e.to_string()))
}

/// [`decode`] then parse one document under `schema` into `T`; a decoding warning is
/// returned beside the value.
pub fn from_slice_in<T: DeserializeOwned>(data: &[u8], schema: Schema) -> Result<(T, Option<DecodeWarning>), Error> {
    let d = decode(data);
    let mut docs = from_str_multi_in(&d.text, &Limits::for_input(d.text.len()), schema)?;
    if docs.len() > 1 {
        return Err(Error::MultipleDocuments(docs.len()));
    }
    let v = docs.pop().map(|d| d.value).unwrap_or(Value::Null);
    Ok((serde_json::from_value(v).map_err(|e| Error::Deserialize(e.to_string()))?, d.warning))
}

/// [`decode`] then [`from_str`]; a decoding warning is returned beside the value.
pub fn from_slice<T: DeserializeOwned>(data: &[u8]) -> Result<(T, Option<DecodeWarning>), Error> {
    let d = decode(data);
    Ok((from_str(&d.text)?, d.warning))
}

#[cfg(test)]
mod tests;
