//! Debian/Ubuntu version order, as dpkg's `verrevcmp`.
//!
//! A version is `[epoch:]upstream[-revision]`: the epoch is a number, the revision is
//! what follows the last `-`. Upstream and revision are compared as alternating runs of
//! non-digits and digits: in the non-digit runs `~` sorts before everything (even the end
//! of the string), then the end, then letters, then all other characters; digit runs are
//! compared numerically. A missing revision equals `0`.

use std::cmp::Ordering;

use super::cmp_digits;

/// A parsed Debian version, borrowing from its string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deb<'a> {
    epoch: &'a [u8],
    upstream: &'a [u8],
    revision: &'a [u8],
}

/// Parse `[epoch:]upstream[-revision]`; `None` when malformed.
pub(crate) fn parse(s: &str) -> Option<Deb<'_>> {
    let s = s.trim();
    let (epoch, rest) = match s.find(':') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => ("", s),
    };
    if s.contains(':') && (epoch.is_empty() || !epoch.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let (upstream, revision) = match rest.rfind('-') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    if rest.contains('-') && revision.is_empty() {
        return None;
    }
    let up = upstream.as_bytes();
    // dpkg insists on a leading digit; it also keeps "<unfixed>"-style markers out.
    if !up.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    if !up.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'~' | b'-' | b':')) {
        return None;
    }
    if !revision.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'~')) {
        return None;
    }
    Some(Deb { epoch: epoch.as_bytes(), upstream: up, revision: revision.as_bytes() })
}

/// dpkg's character weight inside a non-digit run (`None` is the end of the string).
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` on one part (upstream or revision).
pub(crate) fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefix, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ac, bc) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            // Equal weights here mean both sides hold a non-digit character.
            i += 1;
            j += 1;
        }
        // Digit run, numerically.
        let (ie, je) = (super::digits_end(a, i), super::digits_end(b, j));
        let o = cmp_digits(&a[i..ie], &b[j..je]);
        if o != Ordering::Equal {
            return o;
        }
        i = ie;
        j = je;
    }
    Ordering::Equal
}

/// Compare two parsed Debian versions.
pub(crate) fn cmp(a: &Deb<'_>, b: &Deb<'_>) -> Ordering {
    cmp_digits(a.epoch, b.epoch)
        .then_with(|| verrevcmp(a.upstream, b.upstream))
        .then_with(|| verrevcmp(a.revision, b.revision))
}

#[cfg(test)]
mod tests {
    use crate::record::EcoKind;
    use crate::version::testutil::{check, check_invalid};

    #[test]
    fn version_dpkg_order() {
        check(
            EcoKind::Debian,
            &[
                ("1.0", "=", "1.0"),
                ("1.0", "<", "1.1"),
                ("1.0", "<", "1.0.1"),
                ("1.2", "<", "1.10"),
                ("1.0~rc1", "<", "1.0"),
                ("1.0~rc1", "<", "1.0~rc2"),
                ("1.0~~", "<", "1.0~"),
                ("1.0~", "<", "1.0"),
                ("1.0~beta", "<", "1.0~rc"),
                ("1.0", "<", "1.0a"),
                ("1.0a", "<", "1.0+"),
                ("1.0+", "<", "1.0.1"),
                ("1.0a", "<", "1.0b"),
                ("1.0Z", "<", "1.0a"),
                ("1.0.", ">", "1.0+"),
                ("1:0.9", ">", "2.0"),
                ("0:1.0", "=", "1.0"),
                ("00:1.0", "=", "0:1.0"),
                ("2:1.0", ">", "1:9.9"),
                ("1.0-1", "<", "1.0-1+deb12u1"),
                ("1.0-1", "<", "1.0-2"),
                ("1.0-2", "<", "1.0-10"),
                ("1.0-1", "=", "1.0-01"),
                ("1.0", "=", "1.0-0"),
                ("1.0", "<", "1.0-1"),
                ("1.0-1~bpo11+1", "<", "1.0-1"),
                ("2.36-9+deb12u3", "<", "2.36-9+deb12u4"),
                ("2.36-9+deb12u10", ">", "2.36-9+deb12u9"),
                ("1.2.3-1ubuntu0.1", "<", "1.2.3-1ubuntu0.2"),
                ("1.2.3-1ubuntu1", ">", "1.2.3-1build1"),
                ("3.0.11-1~deb12u2", "<", "3.0.11-1~deb12u3"),
                ("3.0.11-1~deb12u2", "<", "3.0.11-1"),
                ("1.1.1n-0+deb11u4", "<", "1.1.1n-0+deb11u5"),
                ("1.1.1n-0+deb11u5", "<", "1.1.1w-0+deb11u1"),
                ("7.88.1-10+deb12u5", ">", "7.74.0-1.3+deb11u11"),
                ("1.0-1-1", ">", "1.0-1"),
                ("1.0-a-1", "<", "1.0-b-1"),
                ("1.001", "=", "1.1"),
                ("1.0.0", ">", "1.0"),
                ("2.4.52-1ubuntu4.6", "<", "2.4.52-1ubuntu4.10"),
                ("123456789012345678901234567890", "<", "123456789012345678901234567891"),
                ("1:1.2.3+dfsg-1", ">", "1.2.3+dfsg-5"),
            ],
        );
        check(EcoKind::Ubuntu, &[("1.0~rc1", "<", "1.0"), ("1:0.9", ">", "2.0")]);
    }

    #[test]
    fn version_dpkg_invalid() {
        check_invalid(
            EcoKind::Debian,
            &[
                "",
                "   ",
                "<unfixed>",
                "a1.0",
                "1.0 beta",
                "x:1.0",
                ":1.0",
                "1.0-",
                "1.0-a_b",
                "1.0_1",
                "-1",
                "1.0/1",
                "unfixed",
            ],
        );
    }
}
