//! Version-constraint expressions of the native feeds (npm ranges, RubyGems requirements,
//! Composer constraints) converted into OSV-style [`Range`]s.
//!
//! A constraint is first turned into [`Interval`]s (a conjunction of comparators is one interval,
//! `||` alternatives are several); intervals become ranges of kind [`RangeKind::Ecosystem`]:
//! `Introduced(lower or "0")` followed by `Fixed(upper)` for an exclusive upper end or
//! `LastAffected(upper)` for an inclusive one. One range per interval, so a matcher never needs to
//! order events across ranges; single-version intervals (`=1.2.3`) go to the versions list.
//!
//! Ordering versions is only needed to intersect several lower (or upper) bounds and to take the
//! complement of a set of patched/unaffected requirements (RubyGems). It is done by [`order`],
//! i.e. `crate::version::compare`; versions it cannot order make the constraint fail.

use std::cmp::Ordering;

use crate::record::{EcoKind, Event, Range, RangeKind};

/// One end of an [`Interval`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The version as written (normalised only where the syntax demands, e.g. npm partials).
    pub version: String,
    /// Whether the version itself belongs to the interval.
    pub inclusive: bool,
}

impl Bound {
    fn incl(v: impl Into<String>) -> Bound {
        Bound { version: v.into(), inclusive: true }
    }
    fn excl(v: impl Into<String>) -> Bound {
        Bound { version: v.into(), inclusive: false }
    }
}

/// A contiguous set of versions; a `None` end is unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interval {
    /// Lower end.
    pub lower: Option<Bound>,
    /// Upper end.
    pub upper: Option<Bound>,
}

impl Interval {
    /// Every version.
    pub fn all() -> Interval {
        Interval::default()
    }

    /// Exactly one version.
    pub fn point(v: &str) -> Interval {
        Interval { lower: Some(Bound::incl(v)), upper: Some(Bound::incl(v)) }
    }
}

/// Why a constraint could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// The expression uses syntax the converter does not handle.
    #[error("unsupported constraint {0:?}")]
    Unsupported(String),
    /// Two versions could not be ordered.
    #[error("cannot order versions {0:?} and {1:?}")]
    Incomparable(String, String),
    /// The expression is empty.
    #[error("empty constraint")]
    Empty,
}

/// Ranges and explicit versions converted from intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Converted {
    /// One range per non-degenerate interval.
    pub ranges: Vec<Range>,
    /// Versions of single-version intervals.
    pub versions: Vec<String>,
    /// Intervals with an exclusive lower end that ranges cannot express; they were widened to
    /// include the lower version itself.
    pub approximated: usize,
}

/// Order two versions of `eco` for range arithmetic: [`crate::version::compare`], `None` when
/// either version does not parse in the ecosystem's syntax.
pub fn order(eco: EcoKind, a: &str, b: &str) -> Option<Ordering> {
    crate::version::compare(eco, a, b)
}

/// A self-contained generic order, kept for comparison in tests: semantic-version precedence
/// when both sides are `MAJOR.MINOR.PATCH[-pre][+build]`, else a dotted order where numeric runs
/// compare numerically and letter runs below numbers and below a missing segment.
#[cfg(test)]
fn fallback_order(a: &str, b: &str) -> Ordering {
    if let (Some(x), Some(y)) = (SemVer::parse(a), SemVer::parse(b)) {
        return x.cmp_precedence(&y);
    }
    generic_order(a, b)
}

fn cmp(eco: EcoKind, a: &str, b: &str) -> Result<Ordering, ConstraintError> {
    order(eco, a, b).ok_or_else(|| ConstraintError::Incomparable(a.to_string(), b.to_string()))
}

/// A parsed semantic version (for the fallback order only).
#[cfg(test)]
struct SemVer<'a> {
    core: [u64; 3],
    pre: Option<&'a str>,
}

#[cfg(test)]
impl<'a> SemVer<'a> {
    fn parse(s: &'a str) -> Option<SemVer<'a>> {
        let s = s.trim().trim_start_matches(['v', 'V']);
        let s = s.split('+').next().unwrap_or(s);
        let (main, pre) = match s.split_once('-') {
            Some((m, p)) if !p.is_empty() => (m, Some(p)),
            Some(_) => return None,
            None => (s, None),
        };
        let mut core = [0u64; 3];
        let mut n = 0;
        for (i, part) in main.split('.').enumerate() {
            if i >= 3 || part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            core[i] = part.parse().ok()?;
            n += 1;
        }
        (n == 3).then_some(SemVer { core, pre })
    }

    fn cmp_precedence(&self, other: &SemVer<'_>) -> Ordering {
        self.core.cmp(&other.core).then_with(|| match (self.pre, other.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => {
                let mut x = a.split('.');
                let mut y = b.split('.');
                loop {
                    match (x.next(), y.next()) {
                        (None, None) => return Ordering::Equal,
                        (None, Some(_)) => return Ordering::Less,
                        (Some(_), None) => return Ordering::Greater,
                        (Some(p), Some(q)) => {
                            let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                                (Ok(i), Ok(j)) => i.cmp(&j),
                                (Ok(_), Err(_)) => Ordering::Less,
                                (Err(_), Ok(_)) => Ordering::Greater,
                                (Err(_), Err(_)) => p.cmp(q),
                            };
                            if o != Ordering::Equal {
                                return o;
                            }
                        }
                    }
                }
            }
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Seg<'a> {
    Num(&'a str),
    Alpha(String),
}

fn segments(s: &str) -> Vec<Seg<'_>> {
    let s = s.trim();
    let s = s.strip_prefix(['v', 'V']).filter(|r| r.starts_with(|c: char| c.is_ascii_digit())).unwrap_or(s);
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let n = s[start..i].trim_start_matches('0');
            out.push(Seg::Num(n));
        } else if b[i].is_ascii_alphabetic() {
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            out.push(Seg::Alpha(s[start..i].to_ascii_lowercase()));
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
fn generic_order(a: &str, b: &str) -> Ordering {
    let (x, y) = (segments(a), segments(b));
    let zero = Seg::Num("");
    for i in 0..x.len().max(y.len()) {
        let p = x.get(i).unwrap_or(&zero);
        let q = y.get(i).unwrap_or(&zero);
        let o = match (p, q) {
            (Seg::Num(m), Seg::Num(n)) => m.len().cmp(&n.len()).then_with(|| m.cmp(n)),
            (Seg::Alpha(m), Seg::Alpha(n)) => m.cmp(n),
            (Seg::Alpha(_), Seg::Num(_)) => Ordering::Less,
            (Seg::Num(_), Seg::Alpha(_)) => Ordering::Greater,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

// ---------------------------------------------------------------------------------------------
// Interval arithmetic
// ---------------------------------------------------------------------------------------------

/// Intersect a conjunction of intervals: the greatest lower end and the least upper end.
pub fn intersect(eco: EcoKind, parts: &[Interval]) -> Result<Interval, ConstraintError> {
    let mut out = Interval::all();
    for p in parts {
        if let Some(l) = &p.lower {
            out.lower = Some(match out.lower.take() {
                None => l.clone(),
                Some(cur) => match cmp(eco, &l.version, &cur.version)? {
                    Ordering::Greater => l.clone(),
                    Ordering::Less => cur,
                    Ordering::Equal => Bound { version: cur.version, inclusive: cur.inclusive && l.inclusive },
                },
            });
        }
        if let Some(u) = &p.upper {
            out.upper = Some(match out.upper.take() {
                None => u.clone(),
                Some(cur) => match cmp(eco, &u.version, &cur.version)? {
                    Ordering::Less => u.clone(),
                    Ordering::Greater => cur,
                    Ordering::Equal => Bound { version: cur.version, inclusive: cur.inclusive && u.inclusive },
                },
            });
        }
    }
    Ok(out)
}

/// Whether an interval contains no version (when its ends can be ordered).
pub fn is_empty(eco: EcoKind, i: &Interval) -> bool {
    match (&i.lower, &i.upper) {
        (Some(l), Some(u)) => match order(eco, &l.version, &u.version) {
            Some(Ordering::Greater) => true,
            Some(Ordering::Equal) => !(l.inclusive && u.inclusive),
            _ => false,
        },
        _ => false,
    }
}

/// Order lower ends: unbounded first, then by version, inclusive before exclusive.
fn cmp_lower(eco: EcoKind, a: &Option<Bound>, b: &Option<Bound>) -> Result<Ordering, ConstraintError> {
    Ok(match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp(eco, &x.version, &y.version)?.then(y.inclusive.cmp(&x.inclusive)),
    })
}

/// Order upper ends: unbounded last, then by version, exclusive before inclusive.
fn cmp_upper(eco: EcoKind, a: &Option<Bound>, b: &Option<Bound>) -> Result<Ordering, ConstraintError> {
    Ok(match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => cmp(eco, &x.version, &y.version)?.then(x.inclusive.cmp(&y.inclusive)),
    })
}

/// The versions not in any of `set`, as sorted disjoint intervals.
pub fn complement(eco: EcoKind, set: &[Interval]) -> Result<Vec<Interval>, ConstraintError> {
    let mut items: Vec<Interval> = set.iter().filter(|i| !is_empty(eco, i)).cloned().collect();
    // Insertion sort with a fallible comparator (lists are short).
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && cmp_lower(eco, &items[j - 1].lower, &items[j].lower)? == Ordering::Greater {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
    // Merge overlapping or touching intervals.
    let mut merged: Vec<Interval> = Vec::new();
    for it in items {
        if let Some(last) = merged.last_mut() {
            let touches = match (&last.upper, &it.lower) {
                (None, _) | (_, None) => true,
                (Some(u), Some(l)) => match cmp(eco, &l.version, &u.version)? {
                    Ordering::Less => true,
                    Ordering::Equal => u.inclusive || l.inclusive,
                    Ordering::Greater => false,
                },
            };
            if touches {
                if cmp_upper(eco, &it.upper, &last.upper)? == Ordering::Greater {
                    last.upper = it.upper;
                }
                continue;
            }
        }
        merged.push(it);
    }
    // The gaps.
    let mut out = Vec::new();
    let mut start: Option<Bound> = None;
    let mut open = true; // whether the gap before the next interval is still possible
    for m in &merged {
        if let Some(l) = &m.lower {
            let gap = Interval {
                lower: start.clone(),
                upper: Some(Bound { version: l.version.clone(), inclusive: !l.inclusive }),
            };
            if !is_empty(eco, &gap) {
                out.push(gap);
            }
        }
        match &m.upper {
            Some(u) => start = Some(Bound { version: u.version.clone(), inclusive: !u.inclusive }),
            None => {
                open = false;
                break;
            }
        }
    }
    if open {
        out.push(Interval { lower: start, upper: None });
    }
    Ok(out)
}

/// Turn intervals into ranges (one per interval) and single versions.
pub fn to_ranges(intervals: &[Interval]) -> Converted {
    let mut out = Converted::default();
    for i in intervals {
        if let (Some(l), Some(u)) = (&i.lower, &i.upper) {
            if l.inclusive && u.inclusive && l.version == u.version {
                if !out.versions.contains(&l.version) {
                    out.versions.push(l.version.clone());
                }
                continue;
            }
        }
        let mut events = Vec::with_capacity(2);
        match &i.lower {
            None => events.push(Event::Introduced("0".into())),
            Some(l) => {
                if !l.inclusive {
                    out.approximated += 1;
                }
                events.push(Event::Introduced(l.version.clone()));
            }
        }
        match &i.upper {
            None => {}
            Some(u) if u.inclusive => events.push(Event::LastAffected(u.version.clone())),
            Some(u) => events.push(Event::Fixed(u.version.clone())),
        }
        out.ranges.push(Range { kind: RangeKind::Ecosystem, events });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// npm
// ---------------------------------------------------------------------------------------------

/// A partial npm version: `1`, `1.2`, `1.2.3-beta.1`, `1.x`, `*`.
struct Partial {
    parts: [Option<u64>; 3],
    pre: Option<String>,
}

impl Partial {
    fn parse(s: &str) -> Option<Partial> {
        let s = s.trim().trim_start_matches('=').trim_start_matches(['v', 'V']).trim();
        if s.is_empty() {
            return None;
        }
        let s = s.split('+').next().unwrap_or(s);
        let (main, pre) = match s.split_once('-') {
            Some((m, p)) => (m, Some(p.to_string()).filter(|p| !p.is_empty())),
            None => (s, None),
        };
        let mut parts = [None; 3];
        let mut wildcard = false;
        for (i, p) in main.split('.').enumerate() {
            if i >= 3 {
                return None;
            }
            if matches!(p, "x" | "X" | "*") {
                wildcard = true;
                continue;
            }
            if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) || p.len() > 18 {
                return None;
            }
            if wildcard {
                return None;
            }
            parts[i] = Some(p.parse().ok()?);
        }
        if pre.is_some() && parts[2].is_none() {
            return None;
        }
        if let Some(p) = &pre {
            if !p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-') {
                return None;
            }
        }
        Some(Partial { parts, pre })
    }

    fn full(&self) -> Option<String> {
        let [Some(a), Some(b), Some(c)] = self.parts else { return None };
        Some(match &self.pre {
            Some(p) => format!("{a}.{b}.{c}-{p}"),
            None => format!("{a}.{b}.{c}"),
        })
    }

    /// The version with missing parts as zero (`1.2` → `1.2.0`).
    fn floor(&self) -> String {
        self.full().unwrap_or_else(|| {
            let [a, b, c] = self.parts.map(|p| p.unwrap_or(0));
            format!("{a}.{b}.{c}")
        })
    }

    /// The first version above every version the partial covers (`1` → `2.0.0`, `1.2` → `1.3.0`).
    fn ceil(&self) -> Option<String> {
        match self.parts {
            [Some(a), None, _] => Some(format!("{}.0.0", a.checked_add(1)?)),
            [Some(a), Some(b), None] => Some(format!("{a}.{}.0", b.checked_add(1)?)),
            _ => None,
        }
    }
}

fn unsupported(s: &str) -> ConstraintError {
    ConstraintError::Unsupported(s.to_string())
}

/// One npm comparator (after operator/version merging) as an interval.
fn npm_comparator(tok: &str) -> Result<Interval, ConstraintError> {
    let (op, ver) = split_op(tok, &[">=", "<=", "~>", ">", "<", "=", "~", "^"]);
    let p = Partial::parse(ver).ok_or_else(|| unsupported(tok))?;
    let [major, minor, patch] = p.parts;
    if major.is_none() {
        // `>=*`, `<=*` are everything; `>*`, `<*` nothing.
        return match op {
            "" | "=" | ">=" | "<=" | "~" | "~>" | "^" => Ok(Interval::all()),
            _ => Err(unsupported(tok)),
        };
    }
    let lower = |v: String| Some(Bound::incl(v));
    let upper = |v: Option<String>| v.map(Bound::excl).ok_or_else(|| unsupported(tok));
    Ok(match op {
        "" | "=" => match p.full() {
            Some(v) => Interval::point(&v),
            None => Interval { lower: lower(p.floor()), upper: Some(upper(p.ceil())?) },
        },
        ">=" => Interval { lower: lower(p.floor()), upper: None },
        ">" => match p.full() {
            // The least version above `v`: `1.2.4-0` above `1.2.3`, `1.2.3-beta.0` above `1.2.3-beta`.
            Some(_) => {
                let succ = match (&p.pre, major, minor, patch) {
                    (Some(pre), Some(a), Some(b), Some(c)) => format!("{a}.{b}.{c}-{pre}.0"),
                    (None, Some(a), Some(b), Some(c)) => {
                        format!("{a}.{b}.{}-0", c.checked_add(1).ok_or_else(|| unsupported(tok))?)
                    }
                    _ => return Err(unsupported(tok)),
                };
                Interval { lower: lower(succ), upper: None }
            }
            None => Interval { lower: lower(upper(p.ceil())?.version), upper: None },
        },
        "<" => Interval { lower: None, upper: Some(Bound::excl(p.floor())) },
        "<=" => match p.full() {
            Some(v) => Interval { lower: None, upper: Some(Bound::incl(v)) },
            None => Interval { lower: None, upper: Some(upper(p.ceil())?) },
        },
        "~" | "~>" => {
            let up = match (major, minor) {
                (Some(a), Some(b)) => format!("{a}.{}.0", b.checked_add(1).ok_or_else(|| unsupported(tok))?),
                (Some(a), None) => format!("{}.0.0", a.checked_add(1).ok_or_else(|| unsupported(tok))?),
                _ => return Err(unsupported(tok)),
            };
            Interval { lower: lower(p.floor()), upper: Some(Bound::excl(up)) }
        }
        "^" => {
            let bump = |x: u64| x.checked_add(1).ok_or_else(|| unsupported(tok));
            let up = match (major, minor, patch) {
                (Some(0), Some(0), Some(c)) => format!("0.0.{}", bump(c)?),
                (Some(0), Some(b), _) => format!("0.{}.0", bump(b)?),
                (Some(a), _, _) if a > 0 => format!("{}.0.0", bump(a)?),
                (Some(0), None, _) => "1.0.0".to_string(),
                _ => return Err(unsupported(tok)),
            };
            Interval { lower: lower(p.floor()), upper: Some(Bound::excl(up)) }
        }
        _ => return Err(unsupported(tok)),
    })
}

/// Split a leading operator (longest match first) from a comparator.
fn split_op<'a>(tok: &'a str, ops: &[&'static str]) -> (&'static str, &'a str) {
    let t = tok.trim();
    for op in ops {
        if let Some(rest) = t.strip_prefix(op) {
            return (op, rest.trim());
        }
    }
    ("", t)
}

/// Merge `>=` `1.2.3` into `>=1.2.3`, recognise hyphen ranges `a - b`.
fn npm_tokens(alt: &str) -> Result<Vec<Interval>, ConstraintError> {
    let words: Vec<&str> = alt.split_whitespace().collect();
    let mut toks: Vec<String> = Vec::new();
    let mut i = 0;
    let mut out = Vec::new();
    while i < words.len() {
        let w = words[i];
        if w.chars().all(|c| matches!(c, '<' | '>' | '=' | '~' | '^')) {
            let next = words.get(i + 1).ok_or_else(|| unsupported(alt))?;
            toks.push(format!("{w}{next}"));
            i += 2;
        } else if w == "-" {
            let a = toks.pop().ok_or_else(|| unsupported(alt))?;
            let b = words.get(i + 1).ok_or_else(|| unsupported(alt))?;
            let pa = Partial::parse(&a).ok_or_else(|| unsupported(alt))?;
            let pb = Partial::parse(b).ok_or_else(|| unsupported(alt))?;
            let upper = match pb.full() {
                Some(v) => Some(Bound::incl(v)),
                None if pb.parts[0].is_none() => None,
                None => Some(Bound::excl(pb.ceil().ok_or_else(|| unsupported(alt))?)),
            };
            let lower = if pa.parts[0].is_none() { None } else { Some(Bound::incl(pa.floor())) };
            out.push(Interval { lower, upper });
            i += 2;
        } else {
            toks.push(w.to_string());
            i += 1;
        }
    }
    for t in toks {
        out.push(npm_comparator(&t)?);
    }
    Ok(out)
}

/// Parse an npm semver range (`<1.6.5 || >=1.7.0 <1.7.2`, `^2.0.18`, `1.x`, `*`, `1.0.0 - 2.0.0`)
/// into intervals, one per `||` alternative (empty alternatives are dropped).
pub fn npm_intervals(expr: &str) -> Result<Vec<Interval>, ConstraintError> {
    let eco = EcoKind::Npm;
    if expr.trim().is_empty() {
        return Err(ConstraintError::Empty);
    }
    let mut out = Vec::new();
    for alt in expr.split("||") {
        let alt = alt.trim();
        if alt.is_empty() {
            return Err(unsupported(expr));
        }
        let parts = npm_tokens(alt)?;
        let i = intersect(eco, &parts)?;
        if !is_empty(eco, &i) {
            out.push(i);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// RubyGems and Composer
// ---------------------------------------------------------------------------------------------

fn plain_version(v: &str, tok: &str) -> Result<String, ConstraintError> {
    let v = v.trim();
    if v.is_empty()
        || v.len() > 128
        || !v.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
    {
        return Err(unsupported(tok));
    }
    Ok(v.to_string())
}

/// `Gem::Version#bump`: drop letter segments (and all after), drop the last segment if more
/// than one remains, increment the new last one (`2.1.4` → `2.2`, `2.1` → `3`, `1.0.0.rc1` → `1.1`).
fn gem_bump(v: &str) -> Option<String> {
    let mut nums: Vec<u64> = Vec::new();
    for seg in segments(v) {
        match seg {
            Seg::Num(n) => nums.push(if n.is_empty() { 0 } else { n.parse().ok()? }),
            Seg::Alpha(_) => break,
        }
    }
    if nums.len() > 1 {
        nums.pop();
    }
    let last = nums.last_mut()?;
    *last = last.checked_add(1)?;
    Some(nums.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

/// One comparator of RubyGems or Composer syntax as an interval.
fn simple_comparator(tok: &str, ruby: bool) -> Result<Interval, ConstraintError> {
    let (op, v) = split_op(tok, &["~>", ">=", "<=", "==", "!=", ">", "<", "="]);
    let v = if ruby {
        v.to_string()
    } else {
        v.strip_prefix(['v', 'V']).filter(|r| r.starts_with(|c: char| c.is_ascii_digit())).unwrap_or(v).to_string()
    };
    let v = plain_version(&v, tok)?;
    Ok(match op {
        "" | "=" | "==" => Interval::point(&v),
        ">=" => Interval { lower: Some(Bound::incl(v)), upper: None },
        ">" => Interval { lower: Some(Bound::excl(v)), upper: None },
        "<=" => Interval { lower: None, upper: Some(Bound::incl(v)) },
        "<" => Interval { lower: None, upper: Some(Bound::excl(v)) },
        "~>" if ruby => {
            let up = gem_bump(&v).ok_or_else(|| unsupported(tok))?;
            Interval { lower: Some(Bound::incl(v)), upper: Some(Bound::excl(up)) }
        }
        _ => return Err(unsupported(tok)),
    })
}

/// Parse a RubyGems requirement (`>= 2.2.3`, `~> 2.1.4`, `>= 1.0, < 1.2`) into one interval.
pub fn ruby_requirement(req: &str) -> Result<Interval, ConstraintError> {
    if req.trim().is_empty() {
        return Err(ConstraintError::Empty);
    }
    let parts = req.split(',').map(|p| simple_comparator(p, true)).collect::<Result<Vec<_>, _>>()?;
    intersect(EcoKind::RubyGems, &parts)
}

/// The versions affected per RubyGems advisory lists: everything not matched by any `patched`
/// or `unaffected` requirement.
pub fn ruby_affected(patched: &[String], unaffected: &[String]) -> Result<Vec<Interval>, ConstraintError> {
    let set = patched.iter().chain(unaffected).map(|r| ruby_requirement(r)).collect::<Result<Vec<_>, _>>()?;
    complement(EcoKind::RubyGems, &set)
}

/// Parse a Composer conjunction (the `versions` list of a FriendsOfPHP branch, e.g.
/// `[">=1.0.0", "<1.2.3"]`; items may themselves hold space- or comma-separated comparators).
pub fn composer_conjunction(items: &[String]) -> Result<Interval, ConstraintError> {
    let mut parts = Vec::new();
    for item in items {
        if item.contains('|') {
            return Err(unsupported(item));
        }
        // Merge an operator separated from its version by a space.
        let words: Vec<&str> = item.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            if w.chars().all(|c| matches!(c, '<' | '>' | '=' | '!' | '~' | '^')) {
                let next = words.get(i + 1).ok_or_else(|| unsupported(item))?;
                parts.push(simple_comparator(&format!("{w}{next}"), false)?);
                i += 2;
            } else {
                parts.push(simple_comparator(w, false)?);
                i += 1;
            }
        }
    }
    if parts.is_empty() {
        return Err(ConstraintError::Empty);
    }
    intersect(EcoKind::Packagist, &parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(lo: Option<(&str, bool)>, hi: Option<(&str, bool)>) -> Interval {
        Interval {
            lower: lo.map(|(v, i)| Bound { version: v.into(), inclusive: i }),
            upper: hi.map(|(v, i)| Bound { version: v.into(), inclusive: i }),
        }
    }

    #[test]
    fn feed_constraint_fallback_order() {
        let o = |a, b| Some(fallback_order(a, b));
        assert_eq!(o("1.0.0", "1.0"), Some(Ordering::Equal));
        assert_eq!(o("1.0.0.beta", "1.0.0"), Some(Ordering::Less));
        assert_eq!(o("1.10", "1.9"), Some(Ordering::Greater));
        assert_eq!(o("2.0.1-0", "2.0.1"), Some(Ordering::Less));
        assert_eq!(o("2.0.1-0", "2.0.0"), Some(Ordering::Greater));
        assert_eq!(o("1.0.0-alpha.1", "1.0.0-alpha.beta"), Some(Ordering::Less));
        assert_eq!(o("99999999999999999999999.1", "1"), Some(Ordering::Greater));
    }

    #[test]
    fn feed_constraint_npm() {
        let n = |s| npm_intervals(s).map_err(|e| e.to_string());
        assert_eq!(n("<=1.0.0"), Ok(vec![iv(None, Some(("1.0.0", true)))]));
        assert_eq!(n("<= 1.0.3"), Ok(vec![iv(None, Some(("1.0.3", true)))]));
        assert_eq!(n("<  2.0.5"), Ok(vec![iv(None, Some(("2.0.5", false)))]));
        assert_eq!(n("*"), Ok(vec![Interval::all()]));
        assert_eq!(
            n("<1.10.4 || >=1.11.0 <1.16.0"),
            Ok(vec![iv(None, Some(("1.10.4", false))), iv(Some(("1.11.0", true)), Some(("1.16.0", false)))])
        );
        assert_eq!(n("< 2.1.7 > 2.0.0"), Ok(vec![iv(Some(("2.0.1-0", true)), Some(("2.1.7", false)))]));
        assert_eq!(n("<= 1.0"), Ok(vec![iv(None, Some(("1.1.0", false)))]));
        assert_eq!(
            n("2.0.x || 2.1.x"),
            Ok(vec![
                iv(Some(("2.0.0", true)), Some(("2.1.0", false))),
                iv(Some(("2.1.0", true)), Some(("2.2.0", false)))
            ])
        );
        assert_eq!(n("=3.0.0-rc.1"), Ok(vec![Interval::point("3.0.0-rc.1")]));
        assert_eq!(n("<=v2.0.0-alpha7"), Ok(vec![iv(None, Some(("2.0.0-alpha7", true)))]));
        assert_eq!(n("~0.8.0-pre"), Ok(vec![iv(Some(("0.8.0-pre", true)), Some(("0.9.0", false)))]));
        assert_eq!(n("^0.2.3"), Ok(vec![iv(Some(("0.2.3", true)), Some(("0.3.0", false)))]));
        assert_eq!(n("^1.2"), Ok(vec![iv(Some(("1.2.0", true)), Some(("2.0.0", false)))]));
        assert_eq!(n("1.0.0 - 2.0"), Ok(vec![iv(Some(("1.0.0", true)), Some(("2.1.0", false)))]));
        assert_eq!(n(">5.0.0-beta"), Ok(vec![iv(Some(("5.0.0-beta.0", true)), None)]));
        // A conjunction keeps the tightest ends.
        assert_eq!(n(">=1.0.0 >=1.2.0 <3 <2.5.0"), Ok(vec![iv(Some(("1.2.0", true)), Some(("2.5.0", false)))]));
        // Empty alternatives, garbage and unterminated operators are errors.
        for bad in ["", "<1.0.0 ||", "foo", ">=", "1.2.3.4.5", ">*", "1.x.3", "^", "- 1.0"] {
            assert!(n(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn feed_constraint_ruby() {
        assert_eq!(gem_bump("2.1.4").as_deref(), Some("2.2"));
        assert_eq!(gem_bump("2.1").as_deref(), Some("3"));
        assert_eq!(gem_bump("2").as_deref(), Some("3"));
        assert_eq!(gem_bump("1.0.0.rc1").as_deref(), Some("1.1"));
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // patched ">= 2.2.3", "~> 2.1.4" → affected < 2.1.4 and [2.2, 2.2.3)
        let got = ruby_affected(&s(&[">= 2.2.3", "~> 2.1.4"]), &[]);
        assert_eq!(got, Ok(vec![iv(None, Some(("2.1.4", false))), iv(Some(("2.2", true)), Some(("2.2.3", false)))]));
        let c = to_ranges(&got.unwrap_or_default());
        assert_eq!(c.ranges[1].events, vec![Event::Introduced("2.2".into()), Event::Fixed("2.2.3".into())]);
        // unaffected "< 1.0" and patched ">= 1.2" → [1.0, 1.2)
        assert_eq!(
            ruby_affected(&s(&[">= 1.2"]), &s(&["< 1.0"])),
            Ok(vec![iv(Some(("1.0", true)), Some(("1.2", false)))])
        );
        // Overlapping patched sets merge; a comma conjunction is one interval.
        assert_eq!(
            ruby_affected(&s(&["~> 5.2.4, >= 5.2.4.3", ">= 6.0.3.1", "~> 6.0.2.2"]), &[]),
            Ok(vec![
                iv(None, Some(("5.2.4.3", false))),
                iv(Some(("5.3", true)), Some(("6.0.2.2", false))),
                iv(Some(("6.0.3", true)), Some(("6.0.3.1", false))),
            ])
        );
        // Nothing patched: every version.
        assert_eq!(ruby_affected(&[], &[]), Ok(vec![Interval::all()]));
        // Unaffected "<= 1.0": the gap starts after 1.0, which ranges can only approximate.
        let got = ruby_affected(&s(&[">= 2.0"]), &s(&["<= 1.0"])).unwrap_or_default();
        assert_eq!(got, vec![iv(Some(("1.0", false)), Some(("2.0", false)))]);
        assert_eq!(to_ranges(&got).approximated, 1);
        assert!(ruby_requirement("!= 1.0").is_err());
        assert!(ruby_requirement(">= 1.0; rm -rf").is_err());
    }

    #[test]
    fn feed_constraint_composer() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            composer_conjunction(&s(&[">=3.0.0", "<3.5.18"])),
            Ok(iv(Some(("3.0.0", true)), Some(("3.5.18", false))))
        );
        assert_eq!(composer_conjunction(&s(&["<=2.1.3"])), Ok(iv(None, Some(("2.1.3", true)))));
        assert_eq!(composer_conjunction(&s(&[">= 1.0, < v1.4"])), Ok(iv(Some(("1.0", true)), Some(("1.4", false)))));
        assert!(composer_conjunction(&s(&["^1.0 || ^2.0"])).is_err());
        assert!(composer_conjunction(&[]).is_err());
        let c = to_ranges(&[Interval::point("1.2.3"), iv(Some(("1.0", true)), Some(("1.1", true)))]);
        assert_eq!(c.versions, vec!["1.2.3".to_string()]);
        assert_eq!(c.ranges[0].events, vec![Event::Introduced("1.0".into()), Event::LastAffected("1.1".into())]);
    }
}
