//! Go module version order: semantic versioning with an optional `v` prefix.
//!
//! Pseudo-versions (`v0.0.0-20210101000000-abcdef123456`,
//! `v1.2.4-0.20210101000000-abcdef123456`) are ordinary semver pre-releases and so sort
//! below the release they precede; `+incompatible` is build metadata and is ignored.
//! Go's shorthand `v1` and `v1.2` mean `v1.0.0` and `v1.2.0`.

use super::semver::{self, Flavor, SemVer};

/// Parse a Go module version; `None` when it is not one.
pub(crate) fn parse(s: &str) -> Option<SemVer<'_>> {
    semver::parse(Flavor::Go, s)
}

#[cfg(test)]
mod tests {
    use crate::record::EcoKind;
    use crate::version::testutil::{check, check_invalid};

    #[test]
    fn version_go_order() {
        check(
            EcoKind::Go,
            &[
                ("v1.0.0", "=", "1.0.0"),
                ("v1.0.0", "<", "v1.0.1"),
                ("v1.2.3", "<", "v1.10.0"),
                ("v0.0.0-20210101000000-abcdef123456", "<", "v0.1.0"),
                ("v0.0.0-20210101000000-abcdef123456", "<", "v0.0.0-20210102000000-000000000000"),
                ("v0.0.0-20210101000000-abcdef123456", ">", "v0.0.0-20201231235959-ffffffffffff"),
                ("v1.2.4-0.20210101000000-abcdef123456", ">", "v1.2.3"),
                ("v1.2.4-0.20210101000000-abcdef123456", "<", "v1.2.4"),
                ("v1.2.4-0.20210101000000-abcdef123456", "<", "v1.2.4-rc.1"),
                ("v1.2.4-rc.1.0.20210101000000-abcdef123456", ">", "v1.2.4-rc.1"),
                ("v1.2.4-rc.1.0.20210101000000-abcdef123456", "<", "v1.2.4-rc.2"),
                ("v2.0.0+incompatible", "=", "v2.0.0"),
                ("v2.1.0+incompatible", ">", "v2.0.9"),
                ("v2.0.0-rc.1+incompatible", "<", "v2.0.0+incompatible"),
                ("v1", "=", "v1.0.0"),
                ("v1.2", "=", "v1.2.0"),
                ("v1.0.0-alpha", "<", "v1.0.0-alpha.1"),
                ("v1.0.0-alpha.1", "<", "v1.0.0-alpha.beta"),
                ("v1.0.0-beta.2", "<", "v1.0.0-beta.11"),
                ("v1.0.0-rc.1", "<", "v1.0.0"),
                ("v0.9.9", "<", "v1.0.0-alpha"),
                ("v1.21.0", ">", "v1.9.5"),
                ("1.20.13", "<", "1.21.6"),
            ],
        );
    }

    #[test]
    fn version_go_invalid() {
        check_invalid(EcoKind::Go, &["", "v", "latest", "master", "v1.2.3.4", "v1.2.3-", "1.2.3 rc", "vv1.2.3"]);
    }
}
