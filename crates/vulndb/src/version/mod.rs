//! Version comparison per ecosystem.
//!
//! Every ecosystem has its own file with its own order:
//!
//! | ecosystem | file | order |
//! | --- | --- | --- |
//! | Debian, Ubuntu | `dpkg.rs` | dpkg (`epoch:upstream-revision`, `~` first) |
//! | Alpine | `apk.rs` | apk-tools tokens (`_rc` < none < `_p`, `-rN`) |
//! | Red Hat | `rpm.rs` | rpm `rpmvercmp` on epoch, version, release (`~`, `^`) |
//! | Go | `go.rs` | semver with optional `v`, pseudo-versions are pre-releases |
//! | crates.io | `semver.rs` | semantic versioning 2.0 |
//! | npm | `npm.rs` | semver 2.0, loose prefix (`v`, `=`) |
//! | NuGet | `nuget.rs` | semver 2.0 with a fourth number, case-insensitive labels |
//! | PyPI | `pep440.rs` | PEP 440 |
//! | Maven | `maven.rs` | Maven `ComparableVersion` / the documented version-order spec |
//! | RubyGems | `gem.rs` | `Gem::Version` |
//! | Packagist | `composer.rs` | Composer normalisation + PHP `version_compare` |
//!
//! All parsers work on borrowed bytes, never panic, and refuse input longer than
//! [`MAX_VERSION_LEN`] bytes, so the work per comparison is bounded and linear.

use std::cmp::Ordering;

use crate::record::{Affected, EcoKind, Event, Range, RangeKind};

mod apk;
mod composer;
mod dpkg;
mod gem;
mod go;
mod maven;
mod npm;
mod nuget;
mod pep440;
mod rpm;
mod semver;

/// The longest version string, in bytes, that is compared; longer strings give `None`.
pub const MAX_VERSION_LEN: usize = 256;

/// A version parsed in one order, borrowing from its string. Each string is parsed once
/// per evaluation; comparing two parsed versions allocates nothing.
#[derive(Debug)]
enum Parsed<'a> {
    Dpkg(dpkg::Deb<'a>),
    Apk(&'a [u8]),
    Rpm(rpm::Evr<'a>),
    /// The flag: pre-release labels compare ignoring case (NuGet).
    Semver(semver::SemVer<'a>, bool),
    Pep440(pep440::Pep<'a>),
    Maven(maven::Parsed<'a>),
    Gem(&'a [u8]),
    Composer((&'a [u8], &'a [u8])),
}

impl Parsed<'_> {
    /// Compare with a version parsed in the same order (`None` for different orders).
    fn cmp(&self, other: &Parsed<'_>) -> Option<Ordering> {
        Some(match (self, other) {
            (Parsed::Dpkg(a), Parsed::Dpkg(b)) => dpkg::cmp(a, b),
            (Parsed::Apk(a), Parsed::Apk(b)) => apk::cmp(a, b),
            (Parsed::Rpm(a), Parsed::Rpm(b)) => rpm::cmp(a, b),
            (Parsed::Semver(a, ignore_case), Parsed::Semver(b, _)) => semver::cmp(a, b, *ignore_case),
            (Parsed::Pep440(a), Parsed::Pep440(b)) => pep440::cmp(a, b),
            (Parsed::Maven(a), Parsed::Maven(b)) => maven::cmp(a, b),
            (Parsed::Gem(a), Parsed::Gem(b)) => gem::cmp(a, b),
            (Parsed::Composer(a), Parsed::Composer(b)) => composer::cmp(*a, *b),
            _ => return None,
        })
    }
}

/// Which order versions are parsed in.
#[derive(Debug, Clone, Copy)]
enum Order {
    Eco(EcoKind),
    Semver,
}

impl Order {
    fn of(eco: EcoKind, kind: RangeKind) -> Order {
        match kind {
            RangeKind::Ecosystem => Order::Eco(eco),
            RangeKind::Semver => Order::Semver,
        }
    }
}

fn parse(order: Order, s: &str) -> Option<Parsed<'_>> {
    if s.len() > MAX_VERSION_LEN {
        return None;
    }
    let eco = match order {
        Order::Semver => return Some(Parsed::Semver(semver::parse(semver::Flavor::Strict, s)?, false)),
        Order::Eco(eco) => eco,
    };
    Some(match eco {
        EcoKind::Debian | EcoKind::Ubuntu => Parsed::Dpkg(dpkg::parse(s)?),
        EcoKind::Alpine => Parsed::Apk(apk::parse(s)?),
        EcoKind::RedHat => Parsed::Rpm(rpm::parse(s)?),
        EcoKind::Go => Parsed::Semver(go::parse(s)?, false),
        EcoKind::CratesIo => Parsed::Semver(semver::parse(semver::Flavor::Strict, s)?, false),
        EcoKind::Npm => Parsed::Semver(npm::parse(s)?, false),
        EcoKind::NuGet => Parsed::Semver(nuget::parse(s)?, true),
        EcoKind::PyPI => Parsed::Pep440(pep440::parse(s)?),
        EcoKind::Maven => Parsed::Maven(maven::parse(s)?),
        EcoKind::RubyGems => Parsed::Gem(gem::parse(s)?),
        EcoKind::Packagist => Parsed::Composer(composer::parse(s)?),
    })
}

/// Compare two versions in the ecosystem's own order. None when either cannot be parsed.
pub fn compare(eco: EcoKind, a: &str, b: &str) -> Option<Ordering> {
    parse(Order::Eco(eco), a)?.cmp(&parse(Order::Eco(eco), b)?)
}

/// Compare with semantic-versioning 2.0 rules (OSV SEMVER ranges; leading "v" allowed).
///
/// Build metadata is ignored; one to three numbers are accepted (missing ones are 0)
/// and leading zeros are tolerated.
pub fn compare_semver(a: &str, b: &str) -> Option<Ordering> {
    parse(Order::Semver, a)?.cmp(&parse(Order::Semver, b)?)
}

/// Whether `version` is affected by one OSV-style range (events evaluated per the OSV spec: sort events by version, '0' introduced = beginning, introduced..fixed / ..last_affected inclusive / ..limit exclusive; multiple introduced/fixed pairs).
///
/// The events are evaluated as if sorted by version (an `introduced` sorts before
/// another event of the same version): the last event that `version` has reached decides,
/// affected when it is an `introduced`. `limit` events additionally require
/// `version < limit` for at least one of them (`*` is no limit). A `SEMVER` range is
/// ordered with [`compare_semver`], an `ECOSYSTEM` range with [`compare`].
///
/// `None` when `version` or any event version cannot be parsed.
pub fn in_range(eco: EcoKind, version: &str, range: &Range) -> Option<bool> {
    let order = Order::of(eco, range.kind);
    eval_range(order, &parse(order, version)?, range)
}

/// [`in_range`] for a version already parsed in `order`.
fn eval_range(order: Order, v: &Parsed<'_>, range: &Range) -> Option<bool> {
    // The last reached event in sorted order: its version (`None` for `introduced: 0`)
    // and whether it is an `introduced`.
    let mut last: Option<(Option<Parsed<'_>>, bool)> = None;
    let mut has_limit = false;
    let mut below_limit = false;
    for ev in &range.events {
        let (x, introduced) = match ev {
            Event::Introduced(x) => (x, true),
            Event::Fixed(x) | Event::LastAffected(x) => (x, false),
            Event::Limit(x) => {
                has_limit = true;
                if x.trim() == "*" || v.cmp(&parse(order, x)?)? == Ordering::Less {
                    below_limit = true;
                }
                continue;
            }
        };
        let point = if introduced && is_zero(x) {
            None
        } else {
            let p = parse(order, x)?;
            let o = v.cmp(&p)?;
            let reached =
                if matches!(ev, Event::LastAffected(_)) { o == Ordering::Greater } else { o != Ordering::Less };
            if !reached {
                continue;
            }
            Some(p)
        };
        let later = match &last {
            None => true,
            Some((old, old_introduced)) => {
                let by_version = match (&point, old) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(p), Some(q)) => p.cmp(q)?,
                };
                // Same version: an introduced sorts first, so a fix of that version wins.
                by_version.then((!introduced).cmp(&!old_introduced)) != Ordering::Less
            }
        };
        if later {
            last = Some((point, introduced));
        }
    }
    let affected = last.is_some_and(|(_, introduced)| introduced);
    Some(affected && (!has_limit || below_limit))
}

/// Whether `version` is affected by `affected` (explicit `versions` list OR any range). None when nothing could be evaluated (unparseable).
///
/// Listed versions match by equality in the ecosystem's order (or byte equality when the
/// order cannot parse them). An entry with neither versions nor ranges gives
/// `Some(false)`; the distro [`crate::record::Status`] is not looked at here.
pub fn is_affected(eco: EcoKind, version: &str, affected: &Affected) -> Option<bool> {
    let eco_version = parse(Order::Eco(eco), version);
    let mut semver_version: Option<Option<Parsed<'_>>> = None;
    let mut evaluated = false;
    // Ranges first: they are few and usually decide; the explicit `versions` list (which OSV
    // enumerates in full for many PyPI records) is only walked when no range matched.
    for range in &affected.ranges {
        let order = Order::of(eco, range.kind);
        let v = match order {
            Order::Eco(_) => eco_version.as_ref(),
            Order::Semver => semver_version.get_or_insert_with(|| parse(Order::Semver, version)).as_ref(),
        };
        let Some(v) = v else { continue };
        match eval_range(order, v, range) {
            Some(true) => return Some(true),
            Some(false) => evaluated = true,
            None => {}
        }
    }
    for listed in &affected.versions {
        if listed.trim() == version.trim() {
            return Some(true);
        }
        let Some(v) = &eco_version else { continue };
        match parse(Order::Eco(eco), listed).and_then(|l| v.cmp(&l)) {
            Some(Ordering::Equal) => return Some(true),
            Some(_) => evaluated = true,
            None => {}
        }
    }
    if evaluated || (affected.versions.is_empty() && affected.ranges.is_empty()) {
        Some(false)
    } else {
        None
    }
}

/// `introduced: "0"`: from the beginning of time.
fn is_zero(v: &str) -> bool {
    v.trim() == "0"
}

/// Compare two runs of ASCII digits numerically, whatever their length.
pub(crate) fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_zeros(a);
    let b = strip_zeros(b);
    a.len().cmp(&b.len()).then_with(|| {
        // Equal lengths: compare byte by byte inline (runs are short; a libc memcmp call
        // per segment dominated matching time).
        for (x, y) in a.iter().zip(b) {
            if x != y {
                return x.cmp(y);
            }
        }
        Ordering::Equal
    })
}

/// Remove leading `0`s from a run of digits (`"007"` → `"7"`, `"0"` → `""`).
pub(crate) fn strip_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    &d[n..]
}

/// Index of the end of the run of ASCII digits starting at `i`.
pub(crate) fn digits_end(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    j
}

/// Compare byte strings ignoring ASCII case.
pub(crate) fn cmp_ignore_case(a: &[u8], b: &[u8]) -> Ordering {
    a.iter().map(u8::to_ascii_lowercase).cmp(b.iter().map(u8::to_ascii_lowercase))
}

#[cfg(test)]
#[allow(clippy::panic)]
pub(crate) mod testutil {
    use super::*;

    /// Check `a OP b` for each row, both ways round (`<`, `=`, `>`).
    pub(crate) fn check(eco: EcoKind, rows: &[(&str, &str, &str)]) {
        let mut failures = Vec::new();
        for (a, op, b) in rows {
            let want = match *op {
                "<" => Ordering::Less,
                "=" => Ordering::Equal,
                ">" => Ordering::Greater,
                other => panic!("bad op {other}"),
            };
            let got = compare(eco, a, b);
            let rev = compare(eco, b, a);
            if got != Some(want) || rev != Some(want.reverse()) {
                failures.push(format!("{eco:?}: {a} {op} {b}: got {got:?} / reversed {rev:?}"));
            }
        }
        assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    }

    /// Check that each string is rejected (`None`) in `eco`.
    pub(crate) fn check_invalid(eco: EcoKind, rows: &[&str]) {
        let good = match eco {
            EcoKind::Debian | EcoKind::Ubuntu | EcoKind::Alpine | EcoKind::RedHat | EcoKind::PyPI => "1.0",
            EcoKind::Maven | EcoKind::RubyGems | EcoKind::Packagist => "1.0",
            _ => "1.0.0",
        };
        for s in rows {
            assert_eq!(compare(eco, s, good), None, "{eco:?}: {s:?} should be unparseable");
            assert_eq!(compare(eco, good, s), None, "{eco:?}: {s:?} should be unparseable");
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::Status;

    const ALL: [EcoKind; 12] = [
        EcoKind::Debian,
        EcoKind::Ubuntu,
        EcoKind::Alpine,
        EcoKind::RedHat,
        EcoKind::Go,
        EcoKind::CratesIo,
        EcoKind::PyPI,
        EcoKind::Npm,
        EcoKind::Maven,
        EcoKind::RubyGems,
        EcoKind::Packagist,
        EcoKind::NuGet,
    ];

    fn range(kind: RangeKind, events: &[(&str, &str)]) -> Range {
        Range {
            kind,
            events: events
                .iter()
                .map(|(k, v)| match *k {
                    "introduced" => Event::Introduced(v.to_string()),
                    "fixed" => Event::Fixed(v.to_string()),
                    "last_affected" => Event::LastAffected(v.to_string()),
                    "limit" => Event::Limit(v.to_string()),
                    other => panic!("bad event {other}"),
                })
                .collect(),
        }
    }

    fn eco_range(events: &[(&str, &str)]) -> Range {
        range(RangeKind::Ecosystem, events)
    }

    fn affected(eco: EcoKind, ranges: Vec<Range>, versions: &[&str]) -> Affected {
        Affected {
            ecosystem: eco,
            release: String::new(),
            package: "pkg".into(),
            ranges,
            versions: versions.iter().map(|v| v.to_string()).collect(),
            status: Status::Fixed,
            severity: None,
        }
    }

    #[test]
    fn version_range_introduced_fixed() {
        let r = eco_range(&[("introduced", "1.0"), ("fixed", "1.5")]);
        let cases = [("0.9", false), ("1.0", true), ("1.2", true), ("1.4.9", true), ("1.5", false), ("2.0", false)];
        for (v, want) in cases {
            assert_eq!(in_range(EcoKind::PyPI, v, &r), Some(want), "{v}");
        }
    }

    #[test]
    fn version_range_zero_introduced() {
        let r = eco_range(&[("introduced", "0"), ("fixed", "2.3.4-1")]);
        for (v, want) in
            [("0.1-1", true), ("1:0.1-1", false), ("2.3.4-0.1", true), ("2.3.4-1", false), ("2.3.4-1+deb12u1", false)]
        {
            assert_eq!(in_range(EcoKind::Debian, v, &r), Some(want), "{v}");
        }
        // "0" is the beginning in every ecosystem, even where "0" is not a version.
        let r = eco_range(&[("introduced", "0")]);
        for eco in ALL {
            let v = if matches!(eco, EcoKind::Go | EcoKind::CratesIo | EcoKind::Npm | EcoKind::NuGet) {
                "0.0.1"
            } else {
                "0.1"
            };
            assert_eq!(in_range(eco, v, &r), Some(true), "{eco:?}");
        }
    }

    #[test]
    fn version_range_last_affected() {
        let r = eco_range(&[("introduced", "1.0.0"), ("last_affected", "1.2.0")]);
        let cases = [("0.9.0", false), ("1.0.0", true), ("1.2.0", true), ("1.2.1-rc.1", false), ("1.2.1", false)];
        for (v, want) in cases {
            assert_eq!(in_range(EcoKind::Npm, v, &r), Some(want), "{v}");
        }
        // last_affected == introduced: exactly one version.
        let r = eco_range(&[("introduced", "1.1.0"), ("last_affected", "1.1.0")]);
        for (v, want) in [("1.0.9", false), ("1.1.0", true), ("1.1.1", false)] {
            assert_eq!(in_range(EcoKind::CratesIo, v, &r), Some(want), "{v}");
        }
    }

    #[test]
    fn version_range_limit() {
        let r = eco_range(&[("introduced", "0"), ("limit", "2.0.0")]);
        for (v, want) in [("0.1.0", true), ("1.9.9", true), ("2.0.0", false), ("3.0.0", false)] {
            assert_eq!(in_range(EcoKind::Npm, v, &r), Some(want), "{v}");
        }
        let r = eco_range(&[("introduced", "1.0.0"), ("fixed", "1.5.0"), ("limit", "1.3.0")]);
        for (v, want) in [("1.0.0", true), ("1.2.0", true), ("1.3.0", false), ("1.4.0", false), ("1.6.0", false)] {
            assert_eq!(in_range(EcoKind::Npm, v, &r), Some(want), "{v}");
        }
        let r = eco_range(&[("introduced", "1.0.0"), ("limit", "*")]);
        assert_eq!(in_range(EcoKind::Npm, "9.0.0", &r), Some(true));
    }

    #[test]
    fn version_range_multiple_pairs_unsorted() {
        // Given out of order; two affected windows: [1.0, 1.2) and [2.0, 2.3).
        let r = eco_range(&[("fixed", "2.3"), ("introduced", "2.0"), ("fixed", "1.2"), ("introduced", "1.0")]);
        let cases = [
            ("0.5", false),
            ("1.0", true),
            ("1.1.9", true),
            ("1.2", false),
            ("1.9", false),
            ("2.0", true),
            ("2.2", true),
            ("2.3", false),
            ("3.0", false),
        ];
        for (v, want) in cases {
            assert_eq!(in_range(EcoKind::Maven, v, &r), Some(want), "{v}");
        }
        // Introduced and fixed at the same version: empty window.
        let r = eco_range(&[("fixed", "1.0"), ("introduced", "1.0")]);
        assert_eq!(in_range(EcoKind::PyPI, "1.0", &r), Some(false));
        assert_eq!(in_range(EcoKind::PyPI, "1.1", &r), Some(false));
    }

    #[test]
    fn version_range_ecosystem_orders_apply() {
        // PyPI: 1.0 == 1.0.0, pre-releases before the release.
        let r = eco_range(&[("introduced", "0"), ("fixed", "2.0")]);
        assert_eq!(in_range(EcoKind::PyPI, "2.0rc1", &r), Some(true));
        assert_eq!(in_range(EcoKind::PyPI, "2.0.0", &r), Some(false));
        // dpkg epoch.
        let r = eco_range(&[("introduced", "0"), ("fixed", "1:1.0-1")]);
        assert_eq!(in_range(EcoKind::Debian, "2.0-1", &r), Some(true));
        // Alpine revision.
        let r = eco_range(&[("introduced", "0"), ("fixed", "1.1.24-r10")]);
        assert_eq!(in_range(EcoKind::Alpine, "1.1.24-r2", &r), Some(true));
        assert_eq!(in_range(EcoKind::Alpine, "1.1.24-r10", &r), Some(false));
        // Go pseudo-versions.
        let r = eco_range(&[("introduced", "0"), ("fixed", "0.1.0")]);
        assert_eq!(in_range(EcoKind::Go, "v0.0.0-20210101000000-abcdef123456", &r), Some(true));
    }

    #[test]
    fn version_range_semver_kind() {
        let r = range(RangeKind::Semver, &[("introduced", "1.0.0"), ("fixed", "1.4.2")]);
        // SEMVER ranges use semver order whatever the ecosystem says.
        assert_eq!(in_range(EcoKind::Go, "v1.4.1", &r), Some(true));
        assert_eq!(in_range(EcoKind::Go, "v1.4.2+incompatible", &r), Some(false));
        assert_eq!(in_range(EcoKind::Go, "1.4.2-rc.1", &r), Some(true));
        assert_eq!(in_range(EcoKind::PyPI, "v1.2.0", &r), Some(true));
    }

    #[test]
    fn version_range_unparseable() {
        let r = eco_range(&[("introduced", "0"), ("fixed", "1.0")]);
        assert_eq!(in_range(EcoKind::Debian, "<unfixed>", &r), None);
        assert_eq!(in_range(EcoKind::Npm, "not a version", &r), None);
        let r = eco_range(&[("introduced", "1.0.0"), ("fixed", "garbage!")]);
        assert_eq!(in_range(EcoKind::Npm, "1.2.0", &r), None);
        // Long input is refused, not crunched.
        let long = "1.".repeat(10_000);
        assert_eq!(in_range(EcoKind::PyPI, &long, &r), None);
        // No events at all: nothing affected.
        assert_eq!(in_range(EcoKind::Npm, "1.0.0", &eco_range(&[])), Some(false));
    }

    #[test]
    fn version_is_affected_explicit_versions() {
        let a = affected(EcoKind::PyPI, vec![], &["1.0", "1.1.post1"]);
        assert_eq!(is_affected(EcoKind::PyPI, "1.0.0", &a), Some(true));
        assert_eq!(is_affected(EcoKind::PyPI, "1.1-1", &a), Some(true));
        assert_eq!(is_affected(EcoKind::PyPI, "1.1", &a), Some(false));
        // Byte-equal strings match even when the order cannot parse them.
        let a = affected(EcoKind::Npm, vec![], &["weird-build"]);
        assert_eq!(is_affected(EcoKind::Npm, "weird-build", &a), Some(true));
        assert_eq!(is_affected(EcoKind::Npm, "other", &a), None);
    }

    #[test]
    fn version_is_affected_versions_or_ranges() {
        let a = affected(
            EcoKind::Npm,
            vec![
                eco_range(&[("introduced", "2.0.0"), ("fixed", "2.1.0")]),
                eco_range(&[("introduced", "3.0.0"), ("fixed", "3.0.5")]),
            ],
            &["1.5.0"],
        );
        let cases = [
            ("1.5.0", Some(true)),
            ("1.6.0", Some(false)),
            ("2.0.3", Some(true)),
            ("3.0.4", Some(true)),
            ("3.0.5", Some(false)),
        ];
        for (v, want) in cases {
            assert_eq!(is_affected(EcoKind::Npm, v, &a), want, "{v}");
        }
        assert_eq!(is_affected(EcoKind::Npm, "x.y.z", &a), None);
        // One range unparseable, another evaluable: the evaluable one decides.
        let a = affected(
            EcoKind::Npm,
            vec![
                eco_range(&[("introduced", "0"), ("fixed", "bad version")]),
                eco_range(&[("introduced", "0"), ("fixed", "1.0.0")]),
            ],
            &[],
        );
        assert_eq!(is_affected(EcoKind::Npm, "0.9.0", &a), Some(true));
        assert_eq!(is_affected(EcoKind::Npm, "1.0.0", &a), Some(false));
        // Nothing listed at all.
        assert_eq!(is_affected(EcoKind::Npm, "1.0.0", &affected(EcoKind::Npm, vec![], &[])), Some(false));
    }

    #[test]
    fn version_too_long_is_refused() {
        let long = format!("1.{}", "1".repeat(MAX_VERSION_LEN));
        for eco in ALL {
            assert_eq!(compare(eco, &long, "1.0"), None, "{eco:?}");
        }
        assert_eq!(compare_semver(&long, "1.0.0"), None);
    }

    /// Tiny deterministic PRNG for the fuzz-like tests.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn random_version(rng: &mut XorShift) -> String {
        const SEEDS: [&str; 14] = [
            "1.0",
            "1:2.3-4",
            "1.0~rc1",
            "1.2.3_git2020-r1",
            "v1.2.3-beta.1+b",
            "1!2.0rc1.post2.dev3+loc.1",
            "1.0-SNAPSHOT",
            "1.0.a",
            "1.0^git1",
            "2.0.0.1-Beta",
            "0.0.0-20210101000000-abcdef123456",
            "1.x-dev",
            "1-1.foo-bar1baz-.1",
            "",
        ];
        const ALPHABET: &[char] = &[
            '0', '1', '9', '.', '.', '-', '-', '_', '+', '~', '^', ':', '!', 'a', 'b', 'r', 'c', 'p', 'v', 'A', 'Z',
            'x', ' ', '*', '=', 'é', 'α', '\u{0}', '#', '/',
        ];
        let mut s: String = SEEDS[rng.below(SEEDS.len())].to_string();
        let edits = rng.below(6);
        for _ in 0..edits {
            let c = ALPHABET[rng.below(ALPHABET.len())];
            let pos = rng.below(s.chars().count() + 1);
            let byte = s.char_indices().nth(pos).map(|(i, _)| i).unwrap_or(s.len());
            if rng.below(4) == 0 && byte < s.len() {
                s.remove(byte);
            } else {
                s.insert(byte, c);
            }
        }
        if rng.below(10) == 0 {
            let n = rng.below(30);
            s = (0..n).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect();
        }
        s
    }

    #[test]
    fn version_fuzz_no_panic_and_antisymmetric() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..4000 {
            let a = random_version(&mut rng);
            let b = random_version(&mut rng);
            for eco in ALL {
                let ab = compare(eco, &a, &b);
                let ba = compare(eco, &b, &a);
                assert_eq!(ab, ba.map(Ordering::reverse), "{eco:?}: {a:?} vs {b:?}");
                if let Some(o) = compare(eco, &a, &a) {
                    assert_eq!(o, Ordering::Equal, "{eco:?}: {a:?} vs itself");
                }
                // A parseable string compares with itself; an unparseable one with nothing.
                if ab.is_some() {
                    assert!(compare(eco, &a, &a).is_some(), "{eco:?}: {a:?}");
                }
            }
            let ab = compare_semver(&a, &b);
            assert_eq!(ab, compare_semver(&b, &a).map(Ordering::reverse), "semver: {a:?} vs {b:?}");
        }
    }

    #[test]
    fn version_fuzz_random_bytes() {
        let mut rng = XorShift(12345);
        for _ in 0..3000 {
            let n = rng.below(64);
            let bytes: Vec<u8> = (0..n).map(|_| (rng.next() & 0x7f) as u8).collect();
            let a = String::from_utf8_lossy(&bytes).into_owned();
            for eco in ALL {
                let _ = compare(eco, &a, "1.0");
                let _ = compare(eco, "1.0.0", &a);
                let _ = compare(eco, &a, &a);
            }
            let r = Range {
                kind: RangeKind::Ecosystem,
                events: vec![Event::Introduced(a.clone()), Event::Fixed("2.0".into())],
            };
            for eco in ALL {
                let _ = in_range(eco, "1.0", &r);
                let _ = in_range(eco, &a, &r);
            }
        }
    }

    #[test]
    fn version_long_inputs_are_linear() {
        // Worst-case-shaped inputs at the length cap finish quickly in every ecosystem.
        let shapes = [
            "1.".repeat(MAX_VERSION_LEN / 2 - 1) + "1",
            "0.".repeat(MAX_VERSION_LEN / 2 - 1) + "0",
            "1-".repeat(MAX_VERSION_LEN / 2 - 1) + "1",
            "1a".repeat(MAX_VERSION_LEN / 2),
            "9".repeat(MAX_VERSION_LEN),
            "1~".repeat(MAX_VERSION_LEN / 2),
            format!("1{}", "_p1".repeat((MAX_VERSION_LEN - 1) / 3)),
        ];
        let start = std::time::Instant::now();
        for _ in 0..20 {
            for a in &shapes {
                for b in &shapes {
                    for eco in ALL {
                        let _ = compare(eco, a, b);
                    }
                }
            }
        }
        // 20 × 49 × 12 comparisons of 256-byte strings; generous bound even for debug builds.
        assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
    }
}
