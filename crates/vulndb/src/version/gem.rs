//! RubyGems version order, as `Gem::Version#<=>`.
//!
//! A version (`1.2.3`, `1.0.0.beta2`, `2.0.0-rc1`) is split into segments: runs of digits
//! (numbers) and runs of letters (strings); each `-` counts as a `.pre.` segment, as
//! RubyGems rewrites it. Zeros before the first string segment and at the end are
//! insignificant (`1.0.0` == `1`, `1.0.a` == `1.a`). Segments compare pairwise, a missing
//! one as 0: numbers numerically, strings by bytes, and a string (pre-release) sorts
//! below any number. (RubyGems reads an empty version as `0`; here it is unparseable, so
//! that a package of unknown version is not matched.)

use std::cmp::Ordering;

use super::{cmp_digits, digits_end, strip_zeros};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg<'a> {
    /// Digits without leading zeros (empty = 0).
    Num(&'a [u8]),
    Str(&'a [u8]),
}

/// Segments in string order.
#[derive(Clone)]
struct Segs<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Segs<'a> {
    type Item = Seg<'a>;

    fn next(&mut self) -> Option<Seg<'a>> {
        loop {
            let c = *self.b.get(self.pos)?;
            let start = self.pos;
            if c.is_ascii_digit() {
                self.pos = digits_end(self.b, start);
                return Some(Seg::Num(strip_zeros(&self.b[start..self.pos])));
            }
            if c.is_ascii_alphabetic() {
                while self.b.get(self.pos).is_some_and(u8::is_ascii_alphabetic) {
                    self.pos += 1;
                }
                return Some(Seg::Str(&self.b[start..self.pos]));
            }
            self.pos += 1;
            if c == b'-' {
                return Some(Seg::Str(b"pre"));
            }
        }
    }
}

/// Canonical segments: the zeros at the end of the leading numeric part are skipped.
struct Canon<'a> {
    segs: Segs<'a>,
    idx: usize,
    /// Leading numbers kept (up to the last non-zero one).
    keep: usize,
    /// Leading numbers in all (before the first string).
    numeric: usize,
}

impl<'a> Canon<'a> {
    fn new(b: &'a [u8]) -> Self {
        let segs = Segs { b, pos: 0 };
        let (mut keep, mut numeric) = (0, 0);
        for s in segs.clone() {
            match s {
                Seg::Num(d) => {
                    numeric += 1;
                    if !d.is_empty() {
                        keep = numeric;
                    }
                }
                Seg::Str(_) => break,
            }
        }
        Canon { segs, idx: 0, keep, numeric }
    }
}

impl<'a> Iterator for Canon<'a> {
    type Item = Seg<'a>;

    fn next(&mut self) -> Option<Seg<'a>> {
        loop {
            let s = self.segs.next()?;
            let i = self.idx;
            self.idx += 1;
            if i < self.keep || i >= self.numeric {
                return Some(s);
            }
        }
    }
}

/// End of the run of ASCII letters and digits (and `-` when `dash`) starting at `i`.
fn word_end(b: &[u8], mut i: usize, dash: bool) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || (dash && *c == b'-')) {
        i += 1;
    }
    i
}

/// `\d+(\.[0-9A-Za-z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?`, after trimming blanks.
pub(crate) fn parse(s: &str) -> Option<&[u8]> {
    let b = s.trim().as_bytes();
    let mut p = digits_end(b, 0);
    if p == 0 {
        return None;
    }
    while b.get(p) == Some(&b'.') {
        let end = word_end(b, p + 1, false);
        if end == p + 1 {
            return None;
        }
        p = end;
    }
    if b.get(p) == Some(&b'-') {
        p += 1;
        loop {
            let end = word_end(b, p, true);
            if end == p {
                return None;
            }
            p = end;
            if b.get(p) == Some(&b'.') {
                p += 1;
            } else {
                break;
            }
        }
    }
    (p == b.len()).then_some(b)
}

/// Compare two valid gem versions.
pub(crate) fn cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut ia, mut ib) = (Canon::new(a), Canon::new(b));
    loop {
        let (x, y) = match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => (x.unwrap_or(Seg::Num(b"")), y.unwrap_or(Seg::Num(b""))),
        };
        let o = match (x, y) {
            (Seg::Num(x), Seg::Num(y)) => cmp_digits(x, y),
            (Seg::Str(_), Seg::Num(_)) => Ordering::Less,
            (Seg::Num(_), Seg::Str(_)) => Ordering::Greater,
            (Seg::Str(x), Seg::Str(y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::record::EcoKind;
    use crate::version::testutil::{check, check_invalid};

    #[test]
    fn version_gem_order() {
        check(
            EcoKind::RubyGems,
            &[
                ("1.0", "=", "1.0"),
                ("1.0", "=", "1"),
                ("1.0.0", "=", "1"),
                ("0.0.0", "=", "0"),
                (" 1.0 ", "=", "1.0"),
                ("1.0", "<", "1.0.1"),
                ("1.9", "<", "1.10"),
                ("1.0.a", "<", "1.0"),
                ("1.0.a", "=", "1.a"),
                ("1.0.0.a", "=", "1.a"),
                ("1.0.a", "<", "1.0.b"),
                ("1.0.a10", ">", "1.0.a9"),
                ("1.0.a.2", ">", "1.0.a.1"),
                ("1.0.a.2", "<", "1.1"),
                ("1.0.a1", "=", "1.0.a.1"),
                ("2.3.8.pre1", "<", "2.3.8"),
                ("3.0.0.beta", "<", "3.0.0.beta2"),
                ("3.0.0.beta4", "<", "3.0.pre"),
                ("3.0.pre", "<", "3.0.0.rc"),
                ("3.0.0.rc2", "<", "3.0.0"),
                ("5.0.0.beta1", "<", "5.0.0.beta1.1"),
                ("5.0.0.beta1.1", "<", "5.0.0.beta2"),
                ("5.0.0.beta4", "<", "5.0.0.racecar1"),
                ("5.0.0", "<", "5.0.0.1"),
                ("1.2.0.dev", "<", "1.2.0.dev2"),
                ("1.2.0.dev4", "<", "1.2.0.pre1"),
                ("1.5.0.beta.1", "<", "1.5.0.beta.2"),
                ("1.0.0.rc1", "<", "1.0.0.1"),
                ("1.4.0.a", "<", "1.4.0"),
                ("1.0-beta", "=", "1.0.pre.beta"),
                ("1.0-1", "<", "1.0"),
                ("1.0-1", "=", "1.0.pre.1"),
                ("2.0.0-rc1", "<", "2.0.0"),
                ("1.0.B", "<", "1.0.a"),
                ("7.0.2.3", ">", "7.0.2.2"),
                ("6.1.4.7", "<", "6.1.5"),
                ("1.13.10", ">", "1.13.9"),
                ("12345678901234567890.0", ">", "12345678901234567889.9"),
            ],
        );
    }

    #[test]
    fn version_gem_invalid() {
        check_invalid(
            EcoKind::RubyGems,
            &[
                "",
                "  ",
                "junk",
                "a.1",
                "1..1",
                "1.0.",
                ".1",
                "-1",
                "1.0-",
                "1.0-beta..1",
                "1.0+build",
                "1.0 2.0",
                "1_0",
            ],
        );
    }
}
