//! Packagist version order: Composer's normalisation, then PHP's `version_compare`.
//!
//! Composer strips a `v` prefix and `+build` metadata, pads the numbers to four
//! (`1.2` → `1.2.0.0`; a wildcard `x`/`*` component, as in `1.x-dev`, and everything after
//! it becomes 9999999) and drops a `stable` suffix. PHP then splits the string into runs
//! of digits and of letters (every other character separates) and compares them pairwise:
//! numbers numerically, and words by their stability, prefix-matched and ignoring case:
//! `dev` < `alpha` = `a` < `beta` = `b` < `RC` < (a number) < `pl` = `p` = `patch`; any
//! other word sorts below `dev`. When one side runs out, a remaining number makes it
//! greater, a remaining word is ranked against a number.
//! Branch names (`dev-master`) are not versions and give `None`.

use std::cmp::Ordering;

use super::{cmp_digits, digits_end};

/// The rank of a number among the special forms.
const NUMBER: i8 = 4;
/// What Composer substitutes for a wildcard component.
const WILDCARD: &[u8] = b"9999999";

#[derive(Debug, Clone, Copy)]
enum Tok<'a> {
    Num(&'a [u8]),
    Word(i8),
}

fn word_rank(w: &[u8]) -> i8 {
    const FORMS: [(&[u8], i8); 8] =
        [(b"dev", 0), (b"alpha", 1), (b"a", 1), (b"beta", 2), (b"b", 2), (b"rc", 3), (b"pl", 5), (b"p", 5)];
    FORMS.iter().find(|(f, _)| w.len() >= f.len() && w[..f.len()].eq_ignore_ascii_case(f)).map_or(-1, |(_, r)| *r)
}

fn is_wildcard(c: u8) -> bool {
    matches!(c, b'x' | b'X' | b'*')
}

/// The version split into its numeric head (`1.2.3`) and the rest (`-beta1`); `None` when
/// it is not a version.
pub(crate) fn parse(s: &str) -> Option<(&[u8], &[u8])> {
    let mut b = s.trim().as_bytes();
    if let Some(rest) = b.strip_prefix(b"v").or_else(|| b.strip_prefix(b"V")) {
        b = rest;
    }
    if let Some(i) = b.iter().position(|&c| c == b'+') {
        b = &b[..i];
    }
    if !b.first().is_some_and(u8::is_ascii_digit) || b.iter().any(|c| c.is_ascii_whitespace() || c.is_ascii_control()) {
        return None;
    }
    let mut p = digits_end(b, 0);
    while b.get(p) == Some(&b'.') {
        match b.get(p + 1) {
            Some(c) if c.is_ascii_digit() => p = digits_end(b, p + 1),
            Some(&c) if is_wildcard(c) && !b.get(p + 2).is_some_and(u8::is_ascii_alphanumeric) => p += 2,
            _ => break,
        }
    }
    Some((&b[..p], &b[p..]))
}

/// The token stream PHP compares, with Composer's padding applied.
struct Toks<'a> {
    head: &'a [u8],
    head_pos: usize,
    emitted: usize,
    wildcard: bool,
    rest: &'a [u8],
    rest_pos: usize,
}

impl<'a> Toks<'a> {
    fn new((head, rest): (&'a [u8], &'a [u8])) -> Self {
        Toks { head, head_pos: 0, emitted: 0, wildcard: false, rest, rest_pos: 0 }
    }
}

impl<'a> Iterator for Toks<'a> {
    type Item = Tok<'a>;

    fn next(&mut self) -> Option<Tok<'a>> {
        if self.head_pos < self.head.len() {
            let start = self.head_pos;
            let end = self.head[start..].iter().position(|&c| c == b'.').map_or(self.head.len(), |i| start + i);
            self.head_pos = end + 1;
            self.emitted += 1;
            let comp = &self.head[start..end];
            if self.wildcard || comp.first().is_some_and(|&c| is_wildcard(c)) {
                self.wildcard = true;
                return Some(Tok::Num(WILDCARD));
            }
            return Some(Tok::Num(comp));
        }
        if self.emitted < 4 {
            self.emitted += 1;
            return Some(Tok::Num(if self.wildcard { WILDCARD } else { b"" }));
        }
        loop {
            let b = self.rest;
            let &c = b.get(self.rest_pos)?;
            let start = self.rest_pos;
            if c.is_ascii_digit() {
                self.rest_pos = digits_end(b, start);
                return Some(Tok::Num(&b[start..self.rest_pos]));
            }
            if c.is_ascii_alphabetic() {
                while b.get(self.rest_pos).is_some_and(u8::is_ascii_alphabetic) {
                    self.rest_pos += 1;
                }
                let word = &b[start..self.rest_pos];
                if word.eq_ignore_ascii_case(b"stable") {
                    continue;
                }
                return Some(Tok::Word(word_rank(word)));
            }
            self.rest_pos += 1;
        }
    }
}

fn rank(t: Tok<'_>) -> i8 {
    match t {
        Tok::Num(_) => NUMBER,
        Tok::Word(r) => r,
    }
}

/// Compare two parsed Packagist versions.
pub(crate) fn cmp(a: (&[u8], &[u8]), b: (&[u8], &[u8])) -> Ordering {
    let (mut ta, mut tb) = (Toks::new(a), Toks::new(b));
    loop {
        let o = match (ta.next(), tb.next()) {
            (None, None) => return Ordering::Equal,
            (Some(Tok::Num(x)), Some(Tok::Num(y))) => cmp_digits(x, y),
            (Some(x), Some(y)) => rank(x).cmp(&rank(y)),
            (Some(Tok::Num(_)), None) => Ordering::Greater,
            (None, Some(Tok::Num(_))) => Ordering::Less,
            (Some(x), None) => rank(x).cmp(&NUMBER),
            (None, Some(y)) => NUMBER.cmp(&rank(y)),
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
    fn version_composer_order() {
        check(
            EcoKind::Packagist,
            &[
                ("1.0.0", "=", "1.0.0"),
                ("v1.0.0", "=", "1.0.0"),
                ("1.0", "=", "1.0.0"),
                ("1", "=", "1.0.0.0"),
                ("1.0.0", "<", "1.0.1"),
                ("1.9.0", "<", "1.10.0"),
                ("1.0.0", "<", "1.0.0.1"),
                ("1.0.0.1", "<", "1.0.1"),
                ("1.0.0-dev", "<", "1.0.0-alpha"),
                ("1.0.0-alpha", "<", "1.0.0-alpha2"),
                ("1.0.0-alpha2", "<", "1.0.0-beta"),
                ("1.0.0-beta", "<", "1.0.0-beta.2"),
                ("1.0.0-beta2", "=", "1.0.0-beta.2"),
                ("1.0.0-beta", "<", "1.0.0-RC"),
                ("1.0.0-RC1", "<", "1.0.0-rc2"),
                ("1.0.0-rc.1", "<", "1.0.0-rc.2"),
                ("1.0.0-RC1", "<", "1.0.0"),
                ("1.0.0", "<", "1.0.0-patch1"),
                ("1.0.0-patch1", "=", "1.0.0-p1"),
                ("1.0.0-pl1", "=", "1.0.0-p1"),
                ("1.0.0-a1", "=", "1.0.0-alpha1"),
                ("1.0.0-b1", "=", "1.0.0-beta1"),
                ("5.4.0-beta1", "<", "5.4.0-BETA2"),
                ("1.0.0-stable", "=", "1.0.0"),
                ("1.0RC1", "=", "1.0.0-RC1"),
                ("1.0.0-dev", "<", "1.0.0"),
                ("1.0.0-foo", "<", "1.0.0-dev"),
                ("1.0.0+build.1", "=", "1.0.0"),
                ("1.x-dev", ">", "1.99.0"),
                ("1.x-dev", "<", "2.0.0"),
                ("1.2.x-dev", "=", "1.2.*-dev"),
                ("2.0.0-alpha", ">", "1.9.9-patch3"),
                ("10.0.0", ">", "9.9.9"),
                ("2.4.10", ">", "2.4.9"),
                ("4.4.0-BETA1", "<", "4.4.0"),
                ("8.5.0-RC2", ">", "8.5.0-RC1"),
                ("1.0.0.0.1", ">", "1.0.0"),
                ("12345678901234567890", ">", "12345678901234567889"),
            ],
        );
    }

    #[test]
    fn version_composer_invalid() {
        check_invalid(EcoKind::Packagist, &["", "v", "dev-master", "dev-main", "abc", "x.y", "1.0 beta", "*"]);
    }
}
