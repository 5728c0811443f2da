//! Semantic versioning 2.0 order (crates.io, OSV `SEMVER` ranges) and the flavours built
//! on it (npm, Go, NuGet).
//!
//! `MAJOR.MINOR.PATCH[-PRE][+BUILD]`: numbers compare numerically, a version with a
//! pre-release sorts before the same version without one, pre-release identifiers compare
//! one by one (numeric ones numerically and below alphanumeric ones, alphanumeric ones in
//! ASCII order, a longer list wins when all shared identifiers are equal), build metadata
//! is ignored. Parsing is lenient where it cannot hurt: missing minor/patch numbers are 0
//! and leading zeros are allowed.

use std::cmp::Ordering;

use super::{cmp_digits, cmp_ignore_case, digits_end};

/// Which dialect to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// crates.io and OSV `SEMVER`: optional `=` and `v` prefix.
    Strict,
    /// npm (node-semver loose): any run of `v`, `=` and blanks in front, and a
    /// pre-release may follow the numbers without a `-` (`1.2.3beta`).
    Npm,
    /// Go modules: optional `v` prefix; `+incompatible` is build metadata.
    Go,
    /// NuGet: up to four numbers (`1.2.3.4`), case-insensitive pre-release labels.
    NuGet,
}

/// A parsed version, borrowing from its string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SemVer<'a> {
    /// Major, minor, patch (and NuGet's revision); an empty slice is 0.
    nums: [&'a [u8]; 4],
    /// Pre-release identifiers joined by `.`; empty for a release.
    pre: &'a [u8],
}

fn valid_identifiers(s: &[u8]) -> bool {
    !s.is_empty()
        && s.split(|&c| c == b'.')
            .all(|id| !id.is_empty() && id.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-'))
}

/// Parse `s` in `flavor`.
pub(crate) fn parse(flavor: Flavor, s: &str) -> Option<SemVer<'_>> {
    let mut b = s.trim().as_bytes();
    match flavor {
        Flavor::Npm => {
            while let Some((&c, rest)) = b.split_first() {
                if c == b'v' || c == b'V' || c == b'=' || c.is_ascii_whitespace() {
                    b = rest;
                } else {
                    break;
                }
            }
        }
        _ => {
            if let Some(rest) = b.strip_prefix(b"=") {
                b = rest;
            }
            if let Some(rest) = b.strip_prefix(b"v").or_else(|| b.strip_prefix(b"V")) {
                b = rest;
            }
        }
    }
    let max_nums = if flavor == Flavor::NuGet { 4 } else { 3 };
    let mut nums: [&[u8]; 4] = [b""; 4];
    let mut p = 0;
    for (k, slot) in nums.iter_mut().enumerate().take(max_nums) {
        if k > 0 {
            if b.get(p) == Some(&b'.') && b.get(p + 1).is_some_and(u8::is_ascii_digit) {
                p += 1;
            } else {
                break;
            }
        }
        let end = digits_end(b, p);
        if end == p {
            return None;
        }
        *slot = &b[p..end];
        p = end;
    }
    let rest = &b[p..];
    let (main, build) = match rest.iter().position(|&c| c == b'+') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let pre = match main.split_first() {
        None => &main[..0],
        Some((b'-', pre)) => pre,
        Some((c, _)) if flavor == Flavor::Npm && c.is_ascii_alphabetic() => main,
        Some(_) => return None,
    };
    if !main.is_empty() && !valid_identifiers(pre) {
        return None;
    }
    if let Some(build) = build {
        if !valid_identifiers(build) {
            return None;
        }
    }
    Some(SemVer { nums, pre })
}

/// Compare pre-release identifier lists (both non-empty).
fn cmp_pre(a: &[u8], b: &[u8], ignore_case: bool) -> Ordering {
    let mut ia = a.split(|&c| c == b'.');
    let mut ib = b.split(|&c| c == b'.');
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
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) if ignore_case => cmp_ignore_case(x, y),
            (false, false) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
}

/// Compare two parsed versions.
pub(crate) fn cmp(a: &SemVer<'_>, b: &SemVer<'_>, ignore_case: bool) -> Ordering {
    for k in 0..4 {
        let o = cmp_digits(a.nums[k], b.nums[k]);
        if o != Ordering::Equal {
            return o;
        }
    }
    match (a.pre.is_empty(), b.pre.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => cmp_pre(a.pre, b.pre, ignore_case),
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use crate::record::EcoKind;
    use crate::version::compare_semver;
    use crate::version::testutil::{check, check_invalid};

    const SEMVER_TABLE: &[(&str, &str, &str)] = &[
        ("1.0.0", "=", "1.0.0"),
        ("1.0.0", "<", "2.0.0"),
        ("2.0.0", "<", "2.1.0"),
        ("2.1.0", "<", "2.1.1"),
        ("1.9.0", "<", "1.10.0"),
        ("1.0.0-alpha", "<", "1.0.0"),
        ("1.0.0-alpha", "<", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "<", "1.0.0-alpha.beta"),
        ("1.0.0-alpha.beta", "<", "1.0.0-beta"),
        ("1.0.0-beta", "<", "1.0.0-beta.2"),
        ("1.0.0-beta.2", "<", "1.0.0-beta.11"),
        ("1.0.0-beta.11", "<", "1.0.0-rc.1"),
        ("1.0.0-rc.1", "<", "1.0.0"),
        ("1.0.0-1", "<", "1.0.0-a"),
        ("1.0.0-a-b", "<", "1.0.0-a-c"),
        ("1.0.0-RC.1", "<", "1.0.0-rc.1"),
        ("1.0.0-rc.01", "=", "1.0.0-rc.1"),
        ("1.0.0+build.1", "=", "1.0.0+build.2"),
        ("1.0.0-rc.1+build.1", "<", "1.0.0"),
        ("1.0.0+20130313144700", "=", "1.0.0"),
        ("v1.2.3", "=", "1.2.3"),
        ("=1.2.3", "=", "1.2.3"),
        ("1.2", "=", "1.2.0"),
        ("1", "=", "1.0.0"),
        ("01.2.3", "=", "1.2.3"),
        ("0.0.1", "<", "0.1.0"),
        ("1.2.3-pre.1.2.3", ">", "1.2.3-pre.1.2"),
        ("18446744073709551616.0.0", ">", "18446744073709551615.0.0"),
        ("1.2.3-18446744073709551616", ">", "1.2.3-18446744073709551615"),
    ];

    #[test]
    fn version_semver_crates_order() {
        check(EcoKind::CratesIo, SEMVER_TABLE);
    }

    #[test]
    fn version_semver_osv_ranges() {
        for (a, op, b) in SEMVER_TABLE {
            let want = match *op {
                "<" => Ordering::Less,
                "=" => Ordering::Equal,
                _ => Ordering::Greater,
            };
            assert_eq!(compare_semver(a, b), Some(want), "{a} {op} {b}");
        }
        assert_eq!(compare_semver("v0.0.0-20210101000000-abcdef123456", "0.1.0"), Some(Ordering::Less));
        assert_eq!(compare_semver("1.0.0.0", "1.0.0"), None);
    }

    #[test]
    fn version_semver_invalid() {
        check_invalid(
            EcoKind::CratesIo,
            &[
                "",
                "v",
                "1.",
                "1.2.",
                "1.2.3.4",
                "1.2.3-",
                "1.2.3-a..b",
                "1.2.3+",
                "1.2.3-a_b",
                "1.2.3 beta",
                "x.y.z",
                "1.2.3beta",
                "a1.2.3",
                "1.2.3-é",
            ],
        );
    }
}
