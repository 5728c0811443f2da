//! npm version order: semantic versioning 2.0 as node-semver parses it loosely.
//!
//! Any run of `v`, `=` and blanks may precede the version, and a pre-release may follow
//! the numbers without a `-` (`1.2.3beta.1`). Build metadata is ignored.

use super::semver::{self, Flavor, SemVer};

/// Parse a npm version; `None` when it is not one.
pub(crate) fn parse(s: &str) -> Option<SemVer<'_>> {
    semver::parse(Flavor::Npm, s)
}

#[cfg(test)]
mod tests {
    use crate::record::EcoKind;
    use crate::version::testutil::{check, check_invalid};

    #[test]
    fn version_npm_order() {
        check(
            EcoKind::Npm,
            &[
                ("1.2.3", "=", "1.2.3"),
                ("v1.2.3", "=", "1.2.3"),
                ("=1.2.3", "=", "1.2.3"),
                ("  =v1.2.3 ", "=", "1.2.3"),
                ("V1.2.3", "=", "1.2.3"),
                ("1.2.3", "<", "1.2.4"),
                ("1.2.3", "<", "1.3.0"),
                ("1.2.3", "<", "2.0.0"),
                ("0.0.9", "<", "0.0.10"),
                ("1.2.3-0", "<", "1.2.3"),
                ("1.2.3-0", "<", "1.2.3-1"),
                ("1.2.3-1", "<", "1.2.3-alpha"),
                ("1.2.3-alpha", "<", "1.2.3-alpha.0"),
                ("1.2.3-alpha.1", "<", "1.2.3-alpha.beta"),
                ("1.2.3-beta", "<", "1.2.3-beta.2"),
                ("1.2.3-beta.2", "<", "1.2.3-beta.11"),
                ("1.2.3-beta.11", "<", "1.2.3-rc.1"),
                ("1.2.3-rc.1", "<", "1.2.3"),
                ("1.2.3beta", "=", "1.2.3-beta"),
                ("1.2.3-Beta", "<", "1.2.3-beta"),
                ("1.2.3+build.5", "=", "1.2.3"),
                ("1.2.3-rc.1+build.5", "<", "1.2.3"),
                ("4.17.20", "<", "4.17.21"),
                ("10.0.0", ">", "9.99.99"),
                ("2.0.0-next.0", "<", "2.0.0"),
            ],
        );
    }

    #[test]
    fn version_npm_invalid() {
        check_invalid(
            EcoKind::Npm,
            &["", "latest", "^1.2.3", "~1.2.3", "1.2.x", ">=1.0.0", "1.2.3 - 2.0.0", "git+https://x/y"],
        );
    }
}
