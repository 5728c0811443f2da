//! NuGet version order: semantic versioning 2.0 extended to four numbers.
//!
//! `1.2.3.4` has a fourth "revision" number (missing numbers are 0, so `1.0` ==
//! `1.0.0.0`), pre-release labels compare case-insensitively (numeric labels numerically
//! and below alphanumeric ones), and build metadata is ignored.

use super::semver::{self, Flavor, SemVer};

/// Parse a NuGet version; `None` when it is not one.
pub(crate) fn parse(s: &str) -> Option<SemVer<'_>> {
    semver::parse(Flavor::NuGet, s)
}

#[cfg(test)]
mod tests {
    use crate::record::EcoKind;
    use crate::version::testutil::{check, check_invalid};

    #[test]
    fn version_nuget_order() {
        check(
            EcoKind::NuGet,
            &[
                ("1.0.0", "=", "1.0.0"),
                ("1.0.0-BETA", "=", "1.0.0-beta"),
                ("1.0.0-BETA+AA", "=", "1.0.0-beta+aa"),
                ("1.0.0-BETA.X.y.5.77.0+AA", "=", "1.0.0-beta.x.y.5.77.0+aa"),
                ("1.0.0", "=", "1.0.0+beta"),
                ("1.0", "=", "1.0.0.0"),
                ("1.0+test", "=", "1.0.0.0"),
                ("1.0.0.1-1.2.A", "=", "1.0.0.1-1.2.a+A"),
                ("1.0.01", "=", "1.0.1.0"),
                ("1.0", "<", "1.0.0.1"),
                ("1.0+test", "<", "1.0.0.1"),
                ("1.0.0.1-1.2.A", "<", "1.0.0.1-1.2.a.A+A"),
                ("1.0.01", "<", "1.0.1.2"),
                ("1.0.0", ">", "0.0.0"),
                ("1.1.0", ">", "1.0.0"),
                ("1.999.9999", "<", "2.1.1"),
                ("1.0.0-BETA", "<", "1.0.0-beta2"),
                ("1.0.0-beta+AA", "<", "1.0.0+aa"),
                ("1.0.0-BETA", "<", "1.0.0-beta.1+AA"),
                ("1.0.0-BETA.X.y.5.77.0+AA", "<", "1.0.0-beta.x.y.5.79.0+aa"),
                ("1.0.0-BETA.X.y.5.79.0+AA", "<", "1.0.0-beta.x.y.5.790.0+abc"),
                ("1.0.0", "<", "1.0.0.1"),
                ("1.0.0.1-alpha", "<", "1.0.0.1-pre"),
                ("1.0.0-pre", "<", "1.0.0.1-alpha"),
                ("1.0.0", "<", "1.0.0.1-alpha"),
                ("0.9.9.1", "<", "1.0.0"),
                ("6.0.0-preview.7.21377.19", "<", "6.0.0-rc.1.21451.13"),
                ("6.0.0-rc.1.21451.13", "<", "6.0.0"),
                ("13.0.1", ">", "12.0.3"),
                ("999999999999999999999999999991", "<", "999999999999999999999999999999"),
            ],
        );
    }

    #[test]
    fn version_nuget_invalid() {
        check_invalid(EcoKind::NuGet, &["", "1.2.3.4.5", "1.0.0-", "[1.0,2.0)", "1.0.0 beta", "one"]);
    }
}
