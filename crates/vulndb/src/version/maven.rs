//! Maven version order, as Maven's `ComparableVersion` (3.6–3.8 semantics).
//!
//! A version is split into items at `.`, at `-` and at every digit/letter transition;
//! a `-` or a transition opens a nested sub-list, so `1.0-beta-2` is `[1, 0, [beta, [2]]]`.
//! Numbers compare numerically. Known qualifiers (case-insensitive) order as
//! `alpha` < `beta` < `milestone` < `rc` = `cr` < `snapshot` < (release: `""` = `ga` =
//! `final` = `release`) < `sp` < any other qualifier (those in lexical order); `a`, `b`,
//! `m` directly followed by a digit mean alpha, beta, milestone. A number beats a
//! qualifier and a sub-list; a sub-list beats a qualifier. Trailing "null" items (0 and
//! the release qualifiers) are dropped, so `1.0.0` == `1` and `1-ga` == `1`; a missing
//! item compares as null. Where Java's nesting and the documented version-order spec
//! disagree (`1-ga-1`: Java keeps an empty level, the spec trims it), the spec wins:
//! `1-ga-1` == `1-1`, and `1-sp-1` < `1-ga-1`.
//!
//! The nesting is always a chain (a sub-list is the last item of its parent), so a parsed
//! version is stored flat: the items of every level in one vector, one span per level.

use std::cmp::Ordering;

use super::{cmp_digits, cmp_ignore_case, strip_zeros};

/// Index of the release qualifier (`""`, `ga`, `final`, `release`) among the known ones.
const RELEASE: u8 = 5;

#[derive(Debug, Clone, Copy)]
enum Qual<'a> {
    /// alpha 0, beta 1, milestone 2, rc 3, snapshot 4, release 5, sp 6.
    Known(u8),
    /// Anything else, as written (compared ignoring ASCII case).
    Other(&'a [u8]),
}

#[derive(Debug, Clone, Copy)]
enum Atom<'a> {
    /// Digits without leading zeros (empty = 0).
    Int(&'a [u8]),
    Str(Qual<'a>),
}

#[derive(Debug, Clone, Copy)]
enum Elem<'a> {
    Atom(Atom<'a>),
    /// The nested list at this level index.
    List(usize),
}

/// A parsed Maven version, borrowing from its string.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    atoms: Vec<Atom<'a>>,
    /// For each nesting level, its span in `atoms`; level k+1 is the last item of level k.
    levels: Vec<(usize, usize)>,
}

fn qualifier(s: &[u8], followed_by_digit: bool) -> Qual<'_> {
    if followed_by_digit && s.len() == 1 {
        match s[0].to_ascii_lowercase() {
            b'a' => return Qual::Known(0),
            b'b' => return Qual::Known(1),
            b'm' => return Qual::Known(2),
            _ => {}
        }
    }
    const KNOWN: [(&[u8], u8); 10] = [
        (b"alpha", 0),
        (b"beta", 1),
        (b"milestone", 2),
        (b"rc", 3),
        (b"cr", 3),
        (b"snapshot", 4),
        (b"ga", RELEASE),
        (b"final", RELEASE),
        (b"release", RELEASE),
        (b"sp", 6),
    ];
    match KNOWN.iter().find(|(k, _)| s.eq_ignore_ascii_case(k)) {
        Some((_, i)) => Qual::Known(*i),
        None => Qual::Other(s),
    }
}

fn item(is_digit: bool, s: &[u8]) -> Atom<'_> {
    if is_digit {
        Atom::Int(strip_zeros(s))
    } else {
        Atom::Str(qualifier(s, false))
    }
}

fn is_null(a: &Atom<'_>) -> bool {
    match a {
        Atom::Int(d) => d.is_empty(),
        Atom::Str(Qual::Known(i)) => *i == RELEASE,
        Atom::Str(Qual::Other(_)) => false,
    }
}

/// Parse a Maven version; `None` only for empty strings or strings with blanks.
pub(crate) fn parse(s: &str) -> Option<Parsed<'_>> {
    let b = s.trim().as_bytes();
    if b.is_empty() || b.iter().any(|c| c.is_ascii_whitespace() || c.is_ascii_control()) {
        return None;
    }
    let mut atoms: Vec<Atom<'_>> = Vec::with_capacity(8);
    let mut starts: Vec<usize> = Vec::with_capacity(4);
    starts.push(0);
    let mut is_digit = false;
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' || c == b'-' {
            atoms.push(if i == start { Atom::Int(b"") } else { item(is_digit, &b[start..i]) });
            start = i + 1;
            if c == b'-' {
                starts.push(atoms.len());
            }
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                atoms.push(Atom::Str(qualifier(&b[start..i], true)));
                start = i;
                starts.push(atoms.len());
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                atoms.push(Atom::Int(strip_zeros(&b[start..i])));
                start = i;
                starts.push(atoms.len());
            }
            is_digit = false;
        }
    }
    if b.len() > start {
        atoms.push(item(is_digit, &b[start..]));
    }
    // Spans, then normalise from the innermost level out: drop trailing nulls, and drop a
    // level that ends up empty (an empty list is null in its parent).
    let n = starts.len();
    let mut levels: Vec<(usize, usize)> =
        (0..n).map(|k| (starts[k], starts.get(k + 1).copied().unwrap_or(atoms.len()))).collect();
    let mut keep = n;
    for k in (0..n).rev() {
        let (s, mut e) = levels[k];
        while e > s && is_null(&atoms[e - 1]) {
            e -= 1;
        }
        levels[k].1 = e;
        if k > 0 && e == s && k + 1 >= keep {
            keep = k;
        }
    }
    levels.truncate(keep);
    // A nested level left with nothing but its own nested level is spliced out, as the
    // Maven version-order spec trims nulls "at each remaining hyphen": `1-ga-1` == `1-1`.
    let mut k = 0;
    levels.retain(|&(s, e)| {
        k += 1;
        k == 1 || s != e
    });
    Some(Parsed { atoms, levels })
}

impl<'a> Parsed<'a> {
    /// Item `i` of level `k`.
    fn elem(&self, k: usize, i: usize) -> Option<Elem<'a>> {
        let (s, e) = *self.levels.get(k)?;
        if s + i < e {
            self.atoms.get(s + i).map(|a| Elem::Atom(*a))
        } else if s + i == e && k + 1 < self.levels.len() {
            Some(Elem::List(k + 1))
        } else {
            None
        }
    }

    /// A list compared with a missing item: its items one by one, nested lists included.
    fn list_vs_null(&self, mut k: usize) -> Ordering {
        while let Some(&(s, e)) = self.levels.get(k) {
            for a in self.atoms.get(s..e).unwrap_or_default() {
                let o = atom_vs_null(a);
                if o != Ordering::Equal {
                    return o;
                }
            }
            k += 1;
        }
        Ordering::Equal
    }

    fn elem_vs_null(&self, e: Elem<'_>) -> Ordering {
        match e {
            Elem::Atom(a) => atom_vs_null(&a),
            Elem::List(k) => self.list_vs_null(k),
        }
    }
}

fn cmp_qual(a: &Qual<'_>, b: &Qual<'_>) -> Ordering {
    match (a, b) {
        (Qual::Known(x), Qual::Known(y)) => x.cmp(y),
        (Qual::Known(_), Qual::Other(_)) => Ordering::Less,
        (Qual::Other(_), Qual::Known(_)) => Ordering::Greater,
        (Qual::Other(x), Qual::Other(y)) => cmp_ignore_case(x, y),
    }
}

fn atom_vs_null(a: &Atom<'_>) -> Ordering {
    match a {
        Atom::Int([]) => Ordering::Equal,
        Atom::Int(_) => Ordering::Greater,
        Atom::Str(q) => cmp_qual(q, &Qual::Known(RELEASE)),
    }
}

fn cmp_atoms(a: &Atom<'_>, b: &Atom<'_>) -> Ordering {
    match (a, b) {
        (Atom::Int(x), Atom::Int(y)) => cmp_digits(x, y),
        (Atom::Int(_), Atom::Str(_)) => Ordering::Greater,
        (Atom::Str(_), Atom::Int(_)) => Ordering::Less,
        (Atom::Str(x), Atom::Str(y)) => cmp_qual(x, y),
    }
}

/// Compare two parsed Maven versions.
pub(crate) fn cmp(a: &Parsed<'_>, b: &Parsed<'_>) -> Ordering {
    let (mut ka, mut kb) = (0, 0);
    'levels: loop {
        let mut i = 0;
        loop {
            let o = match (a.elem(ka, i), b.elem(kb, i)) {
                (None, None) => return Ordering::Equal,
                (Some(Elem::List(x)), Some(Elem::List(y))) => {
                    // A nested list is the last item of both: compare the lists instead.
                    ka = x;
                    kb = y;
                    continue 'levels;
                }
                (Some(x), None) => a.elem_vs_null(x),
                (None, Some(y)) => b.elem_vs_null(y).reverse(),
                (Some(Elem::Atom(x)), Some(Elem::Atom(y))) => cmp_atoms(&x, &y),
                (Some(Elem::Atom(Atom::Int(_))), Some(Elem::List(_))) => Ordering::Greater,
                (Some(Elem::Atom(Atom::Str(_))), Some(Elem::List(_))) => Ordering::Less,
                (Some(Elem::List(_)), Some(Elem::Atom(Atom::Int(_)))) => Ordering::Less,
                (Some(Elem::List(_)), Some(Elem::Atom(Atom::Str(_)))) => Ordering::Greater,
            };
            if o != Ordering::Equal {
                return o;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::record::EcoKind;
    use crate::version::testutil::{check, check_invalid};

    #[test]
    fn version_maven_order() {
        check(
            EcoKind::Maven,
            &[
                ("1", "<", "2"),
                ("1.5", "<", "2"),
                ("1", "<", "2.5"),
                ("1.0", "<", "1.1"),
                ("1.0.0", "<", "1.1"),
                ("1.1", "<", "1.2.0"),
                ("1.9", "<", "1.10"),
                ("1.0-alpha", "<", "1.0-beta"),
                ("1.0-beta", "<", "1.0-milestone"),
                ("1.0-milestone", "<", "1.0-rc"),
                ("1.0-rc", "<", "1.0-SNAPSHOT"),
                ("1.0-SNAPSHOT", "<", "1.0"),
                ("1.0", "<", "1.0-sp"),
                ("1.0-sp", "<", "1.0-xyz"),
                ("1.0-rc", "=", "1.0-cr"),
                ("1.0-alpha-1", "<", "1.0-alpha-2"),
                ("1.0-alpha-1", "<", "1.0-beta-1"),
                ("1.0-alpha-1-SNAPSHOT", "<", "1.0-alpha-1"),
                ("1.0", "<", "1.0-1"),
                ("1.0-1", "<", "1.0-2"),
                ("1.0.0", "<", "1.0-1"),
                ("2.0-1", "<", "2.0.1"),
                ("2.0.1-klm", "<", "2.0.1-lmn"),
                ("2.0.1", "<", "2.0.1-xyz"),
                ("2.0.1", "<", "2.0.1-123"),
                ("2.0.1-xyz", "<", "2.0.1-123"),
                ("1", "=", "1.0"),
                ("1.0.0", "=", "1"),
                ("1", "=", "1-0"),
                ("1.0", "=", "1.0-0"),
                ("1.1", "=", "1.01"),
                ("1a", "=", "1-a"),
                ("1.0.0a", "=", "1-a"),
                ("1x", "=", "1.0.0-x"),
                ("1ga", "=", "1"),
                ("1release", "=", "1"),
                ("1final", "=", "1"),
                ("1.0.0.RELEASE", "=", "1.0.0"),
                ("1.0.Final", "=", "1.0"),
                ("1.0.GA", "=", "1.0"),
                ("1cr", "=", "1rc"),
                ("1a1", "=", "1-alpha-1"),
                ("1b2", "=", "1-beta-2"),
                ("1m3", "=", "1-milestone-3"),
                ("1X", "=", "1x"),
                ("1m3", "=", "1MILESTONE3"),
                ("1", "=", "001"),
                ("1", "=", "1."),
                ("1", "=", "1-"),
                ("1-foo", "=", "1.0.0-foo.0.0"),
                ("1", "=", "1.0.0-0.0.0"),
                ("1-1.foo-bar-1-baz-0.1", "=", "1-1.foo-bar1baz-.1"),
                ("1-rc", "=", "1cr"),
                ("1-1", "=", "1-ga-1"),
                ("1-sp-1", "<", "1-ga-1"),
                ("1-1", "=", "1--1"),
                ("1-sp", ">", "1-ga"),
                ("1-sp.1", ">", "1-ga.1"),
                ("1-a1", "<", "1"),
                ("1-foo", "<", "1-1"),
                ("1-1", "<", "1.1"),
                ("1.3-RC1-groovy-2.5", "<", "1.3-groovy-2.5"),
                ("Hoxton.RELEASE", "<", "Hoxton.SR1"),
                ("6.1.0rc3", "<", "6.1.0"),
                ("6.1.0rc3", "<", "6.1H.5-beta"),
                ("6.1.0", "<", "6.1H.5-beta"),
                ("20190126.230843", "<", "1234567890.12345"),
                ("1234567890.12345", "<", "123456789012345.1H.5-beta"),
                ("123456789012345.1H.5-beta", "<", "12345678901234567890.1H.5-beta"),
                ("0.0.0", "=", "0"),
                ("0.0.0-0.0.0", "=", "0-final-ga"),
                ("0", "<", "1"),
                ("0.0.0-2021-05-17T01-01-51-5ec03a8b", "<", "20.0.0"),
                ("2.13.4", "<", "2.13.4.2"),
                ("2.9.10.8", "<", "2.10.0"),
                ("5.3.18", "<", "5.3.19"),
                ("1.2.17", "<", "1.2.17-redhat-1"),
                ("9.4.43.v20210629", "<", "9.4.44.v20210927"),
                ("2.0.0-M1", "<", "2.0.0-RC1"),
                ("3.0.0-beta1", "<", "3.0.0-RC1"),
                ("31.1-jre", ">", "31.0.1-jre"),
            ],
        );
    }

    #[test]
    fn version_maven_invalid() {
        check_invalid(EcoKind::Maven, &["", "  ", "1.0 beta", "1.0\t2"]);
    }
}
