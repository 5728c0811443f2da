//! CVSS vectors: version detection and base scores for v3.x (CVSS 3.1 specification §7) and v2.
//! CVSS v4 vectors are kept with no computed score.

use crate::record::Cvss;

/// Build a [`Cvss`] from a vector string, detecting the version and computing the base score for
/// v2 and v3.x vectors. `None` when the text is not a CVSS vector at all.
pub fn from_vector(vector: &str, source: &str) -> Option<Cvss> {
    let vector = vector.trim();
    let version = vector_version(vector)?;
    let score = match version {
        "3.0" | "3.1" => v3_base_score(vector),
        "2.0" => v2_base_score(vector),
        _ => None,
    };
    Some(Cvss { version: version.to_string(), vector: vector.to_string(), score, source: source.to_string() })
}

/// The CVSS version of a vector: `CVSS:3.1/…` → `3.1`, `CVSS:4.0/…` → `4.0`, a bare v2 vector
/// (`AV:N/AC:L/Au:N/…`, optionally in parentheses) → `2.0`.
pub fn vector_version(vector: &str) -> Option<&'static str> {
    let v = vector.trim();
    if let Some(rest) = v.strip_prefix("CVSS:") {
        let ver = rest.split('/').next().unwrap_or("");
        return match ver {
            "3.0" => Some("3.0"),
            "3.1" => Some("3.1"),
            "4.0" => Some("4.0"),
            "2.0" => Some("2.0"),
            _ => None,
        };
    }
    let v = v.trim_start_matches('(');
    if v.starts_with("AV:") && v.contains("Au:") {
        Some("2.0")
    } else {
        None
    }
}

/// Parse `K:V/K:V/…` into pairs, skipping a `CVSS:x.y` prefix. `None` on malformed parts.
fn metrics(vector: &str) -> Option<Vec<(&str, &str)>> {
    let v = vector.trim().trim_start_matches('(').trim_end_matches(')');
    let mut out = Vec::new();
    for (i, part) in v.split('/').enumerate() {
        let (k, val) = part.split_once(':')?;
        if i == 0 && k == "CVSS" {
            continue;
        }
        if k.is_empty() || val.is_empty() {
            return None;
        }
        out.push((k, val));
    }
    Some(out)
}

/// Look up base metric `key` exactly once among `m`.
fn metric<'a>(m: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    let mut found = None;
    for (k, v) in m {
        if *k == key {
            if found.is_some() {
                return None;
            }
            found = Some(*v);
        }
    }
    found
}

/// CVSS 3.1 "Roundup": the smallest number, to one decimal place, that is ≥ the input.
fn roundup(x: f64) -> f64 {
    let int_input = (x * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 {
        int_input as f64 / 100_000.0
    } else {
        ((int_input / 10_000) + 1) as f64 / 10.0
    }
}

/// The CVSS v3.0/v3.1 base score of a vector (`CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`).
/// Temporal and environmental metrics are ignored. `None` when a base metric is missing, repeated
/// or has an unknown value.
pub fn v3_base_score(vector: &str) -> Option<f32> {
    let m = metrics(vector)?;
    let scope_changed = match metric(&m, "S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av = match metric(&m, "AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match metric(&m, "AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (metric(&m, "PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match metric(&m, "UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        match metric(&m, k)? {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if scope_changed { 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15) } else { 6.42 * iss };
    let exploitability = 8.22 * av * ac * pr * ui;
    let score = if impact <= 0.0 {
        0.0
    } else if scope_changed {
        roundup((1.08 * (impact + exploitability)).min(10.0))
    } else {
        roundup((impact + exploitability).min(10.0))
    };
    Some(score as f32)
}

/// The CVSS v2 base score of a vector (`AV:N/AC:L/Au:N/C:P/I:P/A:P`).
pub fn v2_base_score(vector: &str) -> Option<f32> {
    let m = metrics(vector)?;
    let av = match metric(&m, "AV")? {
        "L" => 0.395,
        "A" => 0.646,
        "N" => 1.0,
        _ => return None,
    };
    let ac = match metric(&m, "AC")? {
        "H" => 0.35,
        "M" => 0.61,
        "L" => 0.71,
        _ => return None,
    };
    let au = match metric(&m, "Au")? {
        "M" => 0.45,
        "S" => 0.56,
        "N" => 0.704,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        match metric(&m, k)? {
            "N" => Some(0.0),
            "P" => Some(0.275),
            "C" => Some(0.660),
            _ => None,
        }
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let impact = 10.41 * (1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a));
    let exploitability = 20.0 * av * ac * au;
    let f = if impact == 0.0 { 0.0 } else { 1.176 };
    let score = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f;
    Some(((score * 10.0).round() / 10.0).max(0.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_cvss_v3_scores() {
        let cases = [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
            ("CVSS:3.1/AV:N/AC:L/PR:H/UI:R/S:C/C:L/I:L/A:N", 4.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:L", 7.1),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:H", 6.6),
            ("CVSS:3.0/AV:N/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:L", 2.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O", 9.8),
        ];
        for (v, want) in cases {
            assert_eq!(v3_base_score(v), Some(want), "{v}");
        }
        assert_eq!(v3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H"), None);
        assert_eq!(v3_base_score("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), None);
        assert_eq!(v3_base_score("CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), None);
        assert_eq!(v3_base_score(""), None);
    }

    #[test]
    fn feed_cvss_v2_scores_and_versions() {
        assert_eq!(v2_base_score("AV:N/AC:M/Au:N/C:N/I:P/A:N"), Some(4.3));
        assert_eq!(v2_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P"), Some(7.5));
        assert_eq!(v2_base_score("AV:N/AC:L/Au:N/C:C/I:C/A:C"), Some(10.0));
        assert_eq!(v2_base_score("AV:L/AC:M/Au:N/C:P/I:N"), None);
        assert_eq!(vector_version("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"), Some("4.0"));
        assert_eq!(vector_version("AV:N/AC:L/Au:N/C:P/I:P/A:P"), Some("2.0"));
        assert_eq!(vector_version("high"), None);
        let c = from_vector("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "x");
        assert_eq!(c.map(|c| (c.version, c.score)), Some(("4.0".to_string(), None)));
    }
}
