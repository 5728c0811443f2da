//! Framework scores.

use crate::catalogue::catalogue;
use crate::{Assessment, Framework, FrameworkScore};
use std::collections::BTreeMap;

fn percent(passed: usize, failed: usize) -> f64 {
    if passed + failed == 0 {
        100.0
    } else {
        // Two decimals are plenty for a score.
        ((passed as f64) * 10000.0 / ((passed + failed) as f64)).round() / 100.0
    }
}

/// Framework scores of an assessment.
///
/// For a framework F, the controls are the built-in checks F includes (PSS baseline: checks with
/// PSS level baseline; PSS restricted: baseline and restricted checks; NSA: checks with an NSA/CISA
/// section; CIS: checks with a CIS section that are assessable through the API). Each (control,
/// resource) pair the control applied to is one unit:
///
/// `score_percent = 100 × passed / (passed + failed)`
///
/// where `passed` counts pairs with no finding and `failed` pairs with at least one finding that
/// no exception covers; pairs whose findings were all excepted are left out of both. A resource
/// with three privileged containers fails the privileged control once. With nothing applicable
/// the score is 100. `per_namespace` applies the same formula to the pairs of each namespace
/// (`""` for cluster-scoped objects; a Namespace object counts in its own namespace).
pub fn scores(assessment: &Assessment) -> Vec<FrameworkScore> {
    Framework::ALL
        .iter()
        .map(|&fw| {
            let (mut passed, mut failed, mut excepted, mut controls) = (0, 0, 0, 0);
            let mut ns: BTreeMap<String, (usize, usize)> = BTreeMap::new();
            for c in catalogue().iter().filter(|c| !c.node_access_required && fw.includes(c)) {
                let Some(t) = assessment.tallies.get(c.id) else { continue };
                controls += 1;
                passed += t.passed;
                failed += t.failed;
                excepted += t.excepted;
                for (n, (p, f)) in &t.per_namespace {
                    let e = ns.entry(n.clone()).or_default();
                    e.0 += p;
                    e.1 += f;
                }
            }
            FrameworkScore {
                framework: fw,
                score_percent: percent(passed, failed),
                passed,
                failed,
                excepted,
                controls,
                per_namespace: ns.into_iter().map(|(n, (p, f))| (n, percent(p, f))).collect(),
            }
        })
        .collect()
}
