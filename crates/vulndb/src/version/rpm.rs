//! Red Hat version order, as rpm's `rpmvercmp` on `[epoch:]version[-release]`.
//!
//! The epoch (missing = 0) is compared numerically, then the version, then the release
//! (missing = empty, which sorts below any release). Each part is split into runs of
//! digits and of ASCII letters, everything else separating them; digit runs compare
//! numerically and beat letter runs; `~` sorts before anything (even the end), `^` after
//! the end but before anything else.

use std::cmp::Ordering;

use super::cmp_digits;

/// A parsed `[epoch:]version[-release]`, borrowing from its string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Evr<'a> {
    epoch: &'a [u8],
    version: &'a [u8],
    release: &'a [u8],
}

/// Parse `[epoch:]version[-release]`; `None` when malformed.
pub(crate) fn parse(s: &str) -> Option<Evr<'_>> {
    let s = s.trim();
    if s.bytes().any(|c| c.is_ascii_whitespace() || c.is_ascii_control()) {
        return None;
    }
    let (epoch, rest) = match s.find(':') {
        Some(i) => {
            let e = &s[..i];
            if e.is_empty() || !e.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            (e, &s[i + 1..])
        }
        None => ("", s),
    };
    let (version, release) = match rest.rfind('-') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    if !version.bytes().any(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(Evr { epoch: epoch.as_bytes(), version: version.as_bytes(), release: release.as_bytes() })
}

/// rpm's `rpmvercmp`.
pub(crate) fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    let (mut i, mut j) = (0, 0);
    loop {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        // Tilde sorts before everything else, the end included.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // Caret: like tilde, except that the end of the other string sorts lower.
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first), Some(_)) = (ca, cb) else { break };
        let numeric = first.is_ascii_digit();
        let class = |c: &u8| if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() };
        let (si, sj) = (i, j);
        while i < a.len() && class(&a[i]) {
            i += 1;
        }
        while j < b.len() && class(&b[j]) {
            j += 1;
        }
        // Different segment types: numbers are newer than letters.
        if j == sj {
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let o = if numeric { cmp_digits(&a[si..i], &b[sj..j]) } else { a[si..i].cmp(&b[sj..j]) };
        if o != Ordering::Equal {
            return o;
        }
    }
    // Whichever still has characters left wins.
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// Compare two parsed RPM versions.
pub(crate) fn cmp(a: &Evr<'_>, b: &Evr<'_>) -> Ordering {
    cmp_digits(a.epoch, b.epoch)
        .then_with(|| rpmvercmp(a.version, b.version))
        .then_with(|| rpmvercmp(a.release, b.release))
}

#[cfg(test)]
mod tests {
    use crate::record::EcoKind;
    use crate::version::testutil::{check, check_invalid};

    #[test]
    fn version_rpm_order() {
        check(
            EcoKind::RedHat,
            &[
                ("1.0", "=", "1.0"),
                ("1.0", "<", "2.0"),
                ("2.0", "<", "2.0.1"),
                ("2.0.1", "<", "2.0.1a"),
                ("5.5p1", "<", "5.5p2"),
                ("5.5p1", "<", "5.5p10"),
                ("10xyz", "<", "10.1xyz"),
                ("xyz10", "<", "xyz10.1"),
                ("xyz.4", "<", "8"),
                ("6.0.rc1", ">", "6.0"),
                ("10b2", ">", "10a1"),
                ("1.0a", "<", "1.0aa"),
                ("10.0001", "=", "10.1"),
                ("4.999.9", "<", "5.0"),
                ("2_0", "=", "2.0"),
                ("1.0~rc1", "<", "1.0"),
                ("1.0~rc1", "<", "1.0~rc2"),
                ("1.0~rc1~git123", "<", "1.0~rc1"),
                ("1.0~rc1", "<", "1.0arc1"),
                ("1.0^", ">", "1.0"),
                ("1.0^git1", ">", "1.0"),
                ("1.0^git1", "<", "1.0^git2"),
                ("1.0^git1", "<", "1.01"),
                ("1.0^20160101", "<", "1.0.1"),
                ("1.0^20160102", ">", "1.0^20160101^git1"),
                ("1.0~rc1^git1", ">", "1.0~rc1"),
                ("1.0^git1~pre", "<", "1.0^git1"),
                ("1.1.α", "=", "1.1.β"),
                ("1.1.α", "<", "1.1.a"),
                ("0:1", "<", "1:1"),
                ("1:1", "=", "01:1"),
                ("3:1~1", ">", "1:2"),
                ("13:5", ">", "004:2"),
                ("1-123", ">", "1-2"),
                ("1", "<", "1-1"),
                ("1", "<", "1-0"),
                ("1-1.", "=", "1-1"),
                ("1-1.ael7b", "<", "1-1.el7"),
                ("0:3.10.0-229.el7", "<", "0:3.10.0-229.1.2.ael7b"),
                ("0:2.4.21-9.EL", "<", "0:2.4.21-9.0.1.EL"),
                ("3.10.0-1160.el7", "<", "3.10.0-1160.2.1.el7"),
                ("1.1.1k-7.el8_6", "<", "1.1.1k-9.el8_7"),
                ("1:1.1.1k-7.el8_6", ">", "1.1.1w-1.el8"),
                ("2.28-225.el8_8.6", ">", "2.28-225.el8"),
                ("7.61.1-34.el8_10.2", "<", "7.61.1-34.el8_10.3"),
            ],
        );
    }

    #[test]
    fn version_rpm_invalid() {
        check_invalid(EcoKind::RedHat, &["", " ", "a:1.0", ":1.0", "1.0 2", "...", "-1", "1:"]);
    }
}
