//! Building dynamic SQL with `$N` placeholders, and keyset cursors.

use crate::error::{Result, StoreError};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

/// A bound value.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I(i64),
    F(f64),
    T(String),
    B(Vec<u8>),
    NullI,
    NullT,
    NullF,
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::T(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::T(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::T(v.clone())
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::B(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::F(v)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Arg::NullI, Arg::I)
    }
}
impl From<Option<f64>> for Arg {
    fn from(v: Option<f64>) -> Self {
        v.map_or(Arg::NullF, Arg::F)
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        v.map_or(Arg::NullT, Arg::T)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Arg::NullT, |s| Arg::T(s.to_string()))
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::I(i64::from(v))
    }
}

/// SQL text with its arguments.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) args: Vec<Arg>,
}

impl Sql {
    pub(crate) fn new(s: &str) -> Sql {
        Sql { text: s.to_string(), args: Vec::new() }
    }

    /// Append text.
    pub(crate) fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Append a placeholder bound to `a`.
    pub(crate) fn arg(&mut self, a: impl Into<Arg>) -> &mut Self {
        self.args.push(a.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Append `(p1, p2, …)` for a list.
    pub(crate) fn list<A: Into<Arg>>(&mut self, items: impl IntoIterator<Item = A>) -> &mut Self {
        self.text.push('(');
        for (i, a) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.arg(a);
        }
        self.text.push(')');
        self
    }

    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::I(v) => q.bind(*v),
                Arg::F(v) => q.bind(*v),
                Arg::T(v) => q.bind(v.as_str()),
                Arg::B(v) => q.bind(v.as_slice()),
                Arg::NullI => q.bind(None::<i64>),
                Arg::NullT => q.bind(None::<&str>),
                Arg::NullF => q.bind(None::<f64>),
            };
        }
        q
    }
}

/// A keyset position: the sort value of the last row and its ID.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SortVal {
    I(i64),
    F(f64),
    T(String),
}

/// The type of a sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    I,
    F,
    T,
}

/// Encode a cursor: hex of a small JSON array (opaque to clients).
pub(crate) fn encode_cursor(v: &SortVal, id: i64) -> String {
    let j = match v {
        SortVal::I(i) => serde_json::json!(["i", i, id]),
        SortVal::F(f) => serde_json::json!(["f", f, id]),
        SortVal::T(t) => serde_json::json!(["t", t, id]),
    };
    hex::encode(j.to_string())
}

/// Decode a cursor; a malformed one is an `Invalid` error.
pub(crate) fn decode_cursor(c: &str) -> Result<(SortVal, i64)> {
    let bad = || StoreError::Invalid("malformed cursor".into());
    if c.len() > 4096 {
        return Err(bad());
    }
    let bytes = hex::decode(c).map_err(|_| bad())?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let a = v.as_array().filter(|a| a.len() == 3).ok_or_else(bad)?;
    let id = a[2].as_i64().ok_or_else(bad)?;
    let sv = match a[0].as_str() {
        Some("i") => SortVal::I(a[1].as_i64().ok_or_else(bad)?),
        Some("f") => SortVal::F(a[1].as_f64().ok_or_else(bad)?),
        Some("t") => SortVal::T(a[1].as_str().ok_or_else(bad)?.to_string()),
        _ => return Err(bad()),
    };
    Ok((sv, id))
}

impl From<SortVal> for Arg {
    fn from(v: SortVal) -> Self {
        match v {
            SortVal::I(i) => Arg::I(i),
            SortVal::F(f) => Arg::F(f),
            SortVal::T(t) => Arg::T(t),
        }
    }
}

/// Page size: default 100, clamped to 1..=1000.
pub(crate) fn page_size(limit: Option<u32>) -> i64 {
    i64::from(limit.unwrap_or(100).clamp(1, 1000))
}

/// Append the keyset condition and ORDER BY / LIMIT for sorting on `expr` then `id_col`.
/// `expr` must be non-null (coalesce it). Fetches one extra row to know whether a next page
/// exists.
#[allow(clippy::too_many_arguments)]
pub(crate) fn keyset(
    sql: &mut Sql,
    has_where: &mut bool,
    expr: &str,
    kind: Kind,
    id_col: &str,
    desc: bool,
    cursor: Option<&str>,
    limit: i64,
) -> Result<()> {
    if let Some(c) = cursor {
        let (v, id) = decode_cursor(c)?;
        let ok = matches!((kind, &v), (Kind::I, SortVal::I(_)) | (Kind::F, SortVal::F(_)) | (Kind::T, SortVal::T(_)));
        // A cursor from another sort order (or a float that serialised as an integer).
        let v = match (kind, v) {
            (Kind::F, SortVal::I(i)) => SortVal::F(i as f64),
            (_, v) if ok => v,
            _ => return Err(StoreError::Invalid("cursor does not belong to this sort order".into())),
        };
        sql.push(if *has_where { " AND " } else { " WHERE " });
        *has_where = true;
        let op = if desc { "<" } else { ">" };
        sql.push(&format!("({expr} {op} ")).arg(v.clone()).push(&format!(" OR ({expr} = ")).arg(v);
        sql.push(&format!(" AND {id_col} {op} ")).arg(id).push("))");
    }
    let dir = if desc { "DESC" } else { "ASC" };
    sql.push(&format!(" ORDER BY {expr} {dir}, {id_col} {dir} LIMIT ")).arg(limit + 1);
    Ok(())
}

/// Append ` WHERE ` or ` AND `.
pub(crate) fn and(sql: &mut Sql, has_where: &mut bool) {
    sql.push(if *has_where { " AND " } else { " WHERE " });
    *has_where = true;
}

/// Cut the extra row and build the page.
pub(crate) fn finish_page<T>(
    mut items: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> (SortVal, i64),
) -> crate::types::Page<T> {
    let limit = usize::try_from(limit).unwrap_or(100);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| {
            let (v, id) = key(last);
            encode_cursor(&v, id)
        })
    } else {
        None
    };
    crate::types::Page { items, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for v in [SortVal::I(-5), SortVal::F(0.25), SortVal::T("a\"b".into())] {
            let c = encode_cursor(&v, 42);
            assert_eq!(decode_cursor(&c).ok(), Some((v, 42)));
        }
        for bad in ["", "zz", &hex::encode("[1,2]"), &hex::encode("[\"x\",1,2]"), &"a".repeat(5000)] {
            assert!(matches!(decode_cursor(bad), Err(StoreError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn placeholders_number_in_order() {
        let mut s = Sql::new("SELECT 1 WHERE a = ");
        s.arg(1i64).push(" AND b IN ").list(["x", "y"]);
        assert_eq!(s.text, "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
        assert_eq!(s.args.len(), 3);
    }
}
