//! PyPI version order: PEP 440.
//!
//! `[v][N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, with the normalisations PEP 440
//! allows: case-insensitive, `alpha`/`beta`/`c`/`pre`/`preview` spellings, optional
//! `.`/`-`/`_` separators, implicit 0 numbers (`1.0.dev`), `-N` as a post-release,
//! `rev`/`r` for `post`. Trailing zeros of the release do not count (`1.0 == 1.0.0`).
//!
//! Order: epoch, release, then `X.devN` < `XaN` < `XbN` < `XrcN` < `X` < `X.postN`, with
//! `.devN` sorting below the same version without it, and a local label sorting above
//! the same version without one (numeric local segments above alphanumeric ones).
//! Legacy (non-PEP 440) versions are not supported and give `None`.

use std::cmp::Ordering;

use super::{cmp_digits, cmp_ignore_case, digits_end};

/// A parsed PEP 440 version, borrowing from its string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pep<'a> {
    epoch: &'a [u8],
    /// The release numbers with their dots (`1.2.3`).
    release: &'a [u8],
    /// Label rank (a = 0, b = 1, rc = 2) and number (empty = 0).
    pre: Option<(u8, &'a [u8])>,
    post: Option<&'a [u8]>,
    dev: Option<&'a [u8]>,
    local: Option<&'a [u8]>,
}

const PRE_LABELS: [(&[u8], u8); 8] =
    [(b"alpha", 0), (b"a", 0), (b"beta", 1), (b"b", 1), (b"preview", 2), (b"pre", 2), (b"c", 2), (b"rc", 2)];
const POST_LABELS: [(&[u8], u8); 3] = [(b"post", 0), (b"rev", 0), (b"r", 0)];
const DEV_LABELS: [(&[u8], u8); 1] = [(b"dev", 0)];

fn is_sep(c: Option<&u8>) -> bool {
    matches!(c, Some(b'.' | b'-' | b'_'))
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// `[-_.]? LABEL [-_.]? N?` at `p`: the label's value, its number and the new position.
fn labelled<'a>(b: &'a [u8], p: usize, labels: &[(&[u8], u8)]) -> Option<(u8, &'a [u8], usize)> {
    let q = if is_sep(b.get(p)) { p + 1 } else { p };
    let rest = b.get(q..)?;
    let (label, value) = labels.iter().find(|(l, _)| starts_with_ignore_case(rest, l))?;
    let mut q = q + label.len();
    // A separator after the label belongs to it whether or not a number follows: every
    // later part takes its own separator as optional, so this is what the PEP 440
    // grammar's greedy match does too.
    if is_sep(b.get(q)) {
        q += 1;
    }
    let end = digits_end(b, q);
    Some((*value, &b[q..end], end))
}

/// Parse a PEP 440 version; `None` when it is not one.
pub(crate) fn parse(s: &str) -> Option<Pep<'_>> {
    let b = s.trim().as_bytes();
    let mut p = 0;
    if matches!(b.first(), Some(b'v' | b'V')) {
        p = 1;
    }
    let mut epoch: &[u8] = b"";
    let end = digits_end(b, p);
    if end > p && b.get(end) == Some(&b'!') {
        epoch = &b[p..end];
        p = end + 1;
    }
    let start = p;
    p = digits_end(b, p);
    if p == start {
        return None;
    }
    while b.get(p) == Some(&b'.') && b.get(p + 1).is_some_and(u8::is_ascii_digit) {
        p = digits_end(b, p + 1);
    }
    let release = &b[start..p];

    let mut v = Pep { epoch, release, pre: None, post: None, dev: None, local: None };
    if let Some((label, n, q)) = labelled(b, p, &PRE_LABELS) {
        v.pre = Some((label, n));
        p = q;
    }
    if b.get(p) == Some(&b'-') && b.get(p + 1).is_some_and(u8::is_ascii_digit) {
        let end = digits_end(b, p + 1);
        v.post = Some(&b[p + 1..end]);
        p = end;
    } else if let Some((_, n, q)) = labelled(b, p, &POST_LABELS) {
        v.post = Some(n);
        p = q;
    }
    if let Some((_, n, q)) = labelled(b, p, &DEV_LABELS) {
        v.dev = Some(n);
        p = q;
    }
    if b.get(p) == Some(&b'+') {
        let local = &b[p + 1..];
        let ok = local
            .split(|&c| matches!(c, b'.' | b'-' | b'_'))
            .all(|seg| !seg.is_empty() && seg.iter().all(u8::is_ascii_alphanumeric));
        if !ok {
            return None;
        }
        v.local = Some(local);
        p = b.len();
    }
    (p == b.len()).then_some(v)
}

fn cmp_release(a: &[u8], b: &[u8]) -> Ordering {
    let mut ia = a.split(|&c| c == b'.');
    let mut ib = b.split(|&c| c == b'.');
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => {
                let o = cmp_digits(x.unwrap_or_default(), y.unwrap_or_default());
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// `X.devN` (no pre, no post) sorts before any pre-release; no pre-release after all.
fn pre_key(v: &Pep<'_>) -> (i8, u8) {
    match v.pre {
        None if v.post.is_none() && v.dev.is_some() => (-1, 0),
        None => (1, 0),
        Some((label, _)) => (0, label),
    }
}

fn cmp_local(a: &[u8], b: &[u8]) -> Ordering {
    let mut ia = a.split(|&c| matches!(c, b'.' | b'-' | b'_'));
    let mut ib = b.split(|&c| matches!(c, b'.' | b'-' | b'_'));
    loop {
        let (x, y) = match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => (x, y),
        };
        let xn = x.iter().all(u8::is_ascii_digit);
        let yn = y.iter().all(u8::is_ascii_digit);
        let o = match (xn, yn) {
            (true, true) => cmp_digits(x, y),
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => cmp_ignore_case(x, y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
}

/// Compare two parsed PEP 440 versions.
pub(crate) fn cmp(a: &Pep<'_>, b: &Pep<'_>) -> Ordering {
    cmp_digits(a.epoch, b.epoch)
        .then_with(|| cmp_release(a.release, b.release))
        .then_with(|| pre_key(a).cmp(&pre_key(b)))
        .then_with(|| match (a.pre, b.pre) {
            (Some((_, x)), Some((_, y))) => cmp_digits(x, y),
            _ => Ordering::Equal,
        })
        .then_with(|| match (a.post, b.post) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => cmp_digits(x, y),
        })
        .then_with(|| match (a.dev, b.dev) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => cmp_digits(x, y),
        })
        .then_with(|| match (a.local, b.local) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => cmp_local(x, y),
        })
}

#[cfg(test)]
mod tests {
    use crate::record::EcoKind;
    use crate::version::testutil::{check, check_invalid};

    #[test]
    fn version_pep440_order() {
        check(
            EcoKind::PyPI,
            &[
                ("1.0", "=", "1.0"),
                ("1.0", "=", "1.0.0"),
                ("1.0", "=", "1"),
                ("1.0", "=", "v1.0"),
                ("1.0", "<", "1.0.1"),
                ("1.2", "<", "1.10"),
                ("1.0.dev0", "<", "1.0a1"),
                ("1.0a1", "<", "1.0b1"),
                ("1.0b1", "<", "1.0rc1"),
                ("1.0rc1", "<", "1.0"),
                ("1.0", "<", "1.0.post1"),
                ("1.0+local", ">", "1.0"),
                ("1.0+local", "<", "1.0.post1"),
                ("1.0.post1", "<", "1.0.1"),
                ("1.0a1.dev1", "<", "1.0a1"),
                ("1.0a1", "<", "1.0a1.post1"),
                ("1.0a1.post1.dev1", "<", "1.0a1.post1"),
                ("1.0.post1.dev1", "<", "1.0.post1"),
                ("1.0.post1.dev1", ">", "1.0"),
                ("1.0.dev1", "<", "1.0.dev2"),
                ("1.0.dev1", "<", "1.0a0"),
                ("1.0RC1", "=", "1.0rc1"),
                ("1.0c1", "=", "1.0rc1"),
                ("1.0pre1", "=", "1.0rc1"),
                ("1.0preview1", "=", "1.0rc1"),
                ("1.0alpha1", "=", "1.0a1"),
                ("1.0-beta.2", "=", "1.0b2"),
                ("1.0a", "=", "1.0a0"),
                ("1.0-post1", "=", "1.0.post1"),
                ("1.0-1", "=", "1.0.post1"),
                ("1.0.rev1", "=", "1.0.post1"),
                ("1.0r", "=", "1.0.post0"),
                ("1.0.post", "=", "1.0.post0"),
                ("1.0.dev", "=", "1.0.dev0"),
                ("1.0-dev", "=", "1.0.dev0"),
                ("1.0_a_1", "=", "1.0a1"),
                ("1.0-1", "<", "1.0-2"),
                ("1!1.0", ">", "2.0"),
                ("1!1.0", "<", "2!1.0"),
                ("0!1.0", "=", "1.0"),
                ("1.2a3.dev4", "<", "1.2a3.dev5"),
                ("1.2b3.DEV4", "<", "1.2b3.dev5"),
                ("1.2a3.dev4", "<", "1.2b3.dev4"),
                ("1.2.post3.dev4", ">", "1.2b3.dev4"),
                ("1.36.0rc1", ">", "1.35.0"),
                ("0.9.rev", "<", "1.0"),
                ("1.0.0+local.0", "<", "1.0.0+local.0.1"),
                ("1.0.0+local.a", "<", "1.0.0+local.1"),
                ("1.0+ubuntu-1", "=", "1.0+ubuntu.1"),
                ("1.0+ABC", "=", "1.0+abc"),
                ("1.0+10", ">", "1.0+9"),
                ("2.0.0a1", "<", "2.0.0rc1"),
                ("2019.12.304", ">", "2019.12.30"),
                (" 1.0 ", "=", "1.0"),
                ("1.0.0.0.0.0.0.1", ">", "1.0"),
                ("12345678901234567890123.0", ">", "12345678901234567890122.9"),
            ],
        );
    }

    #[test]
    fn version_pep440_invalid() {
        check_invalid(
            EcoKind::PyPI,
            &[
                "",
                "1.0.",
                "1.0-",
                "1.0+",
                "1.0+a..b",
                "1.0+a b",
                "1.0ab",
                "1.0.x",
                "french toast",
                "0.1-bulbasaur",
                "1.0 beta",
                "!1.0",
                "1!",
                "1.0a1a1",
                "1.0.post1.post2",
                "1.0+local+local",
            ],
        );
    }
}
