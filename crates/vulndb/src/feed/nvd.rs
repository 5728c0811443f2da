//! NVD CVE API 2.0 JSON (`https://services.nvd.nist.gov/rest/json/cves/2.0`, one page:
//! `{"format": "NVD_CVE", "vulnerabilities": [{"cve": {…}}]}`).
//!
//! One [`Advisory`] per CVE with no affected packages — it is used to enrich other advisories
//! with CVSS data and descriptions. CVSS metrics v4.0, v3.1, v3.0 and v2 are kept in that order,
//! primary (NVD) scores before secondary (CNA) ones; the given base score is used, computed
//! from the vector when absent. [`Cvss::source`] is `nvd` for `nvd@nist.gov`, else the
//! scorer's identifier. The overall severity is the NVD primary rating (v3.1, v3.0, v4.0, v2 in
//! that order), else the first secondary one. `Rejected` CVEs are marked withdrawn.

use serde_json::Value;

use super::util::{array_field, f32_field, first_line, str_field, string_field};
use super::{cvss, FeedError, FeedKind, Parsed};
use crate::record::{Advisory, Cvss, Severity};

/// [`Advisory::source`] of NVD records.
pub const SOURCE: &str = "nvd";

/// Parse one NVD CVE 2.0 page.
pub fn parse(file: &str, data: &[u8]) -> Result<Parsed<Advisory>, FeedError> {
    let bad = |r: &str| FeedError::format(file, FeedKind::Nvd, r);
    let doc: Value = serde_json::from_slice(data).map_err(|e| bad(&e.to_string()))?;
    let items =
        doc.get("vulnerabilities").and_then(Value::as_array).ok_or_else(|| bad("no \"vulnerabilities\" array"))?;
    let mut out = Parsed::default();
    for item in items {
        match item.get("cve").and_then(advisory) {
            Some(a) => out.push(file, a)?,
            None => out.skipped += 1,
        }
    }
    Ok(out)
}

fn advisory(c: &Value) -> Option<Advisory> {
    let id = str_field(c, "id")?;
    if !id.starts_with("CVE-") {
        return None;
    }
    let summary = array_field(c, "descriptions")
        .iter()
        .find(|d| str_field(d, "lang").is_some_and(|l| l.eq_ignore_ascii_case("en")))
        .or_else(|| array_field(c, "descriptions").first())
        .and_then(|d| str_field(d, "value"))
        .map(first_line)
        .unwrap_or_default();
    let metrics = c.get("metrics");
    let mut scored: Vec<(Cvss, bool, Option<Severity>)> = Vec::new();
    for key in ["cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2"] {
        let list = metrics.map(|m| array_field(m, key)).unwrap_or(&[]);
        let mut primary = Vec::new();
        let mut secondary = Vec::new();
        for m in list {
            let Some(data) = m.get("cvssData") else { continue };
            let Some(vector) = str_field(data, "vectorString") else { continue };
            let source = match str_field(m, "source") {
                Some("nvd@nist.gov") | None => SOURCE.to_string(),
                Some(s) => s.to_string(),
            };
            let Some(mut cv) = cvss::from_vector(vector, &source) else { continue };
            if let Some(v) = str_field(data, "version") {
                cv.version = v.to_string();
            }
            if let Some(score) = f32_field(data, "baseScore") {
                cv.score = Some(score);
            }
            let rating =
                str_field(data, "baseSeverity").or_else(|| str_field(m, "baseSeverity")).and_then(Severity::rating);
            let is_primary = str_field(m, "type").is_none_or(|t| t.eq_ignore_ascii_case("primary"));
            if is_primary {
                primary.push((cv, true, rating));
            } else {
                secondary.push((cv, false, rating));
            }
        }
        scored.extend(primary);
        scored.extend(secondary);
    }
    let pick = |v: &str, primary: bool| {
        scored.iter().find(|(c, p, r)| c.version == v && *p == primary && r.is_some()).and_then(|x| x.2)
    };
    let severity = pick("3.1", true)
        .or_else(|| pick("3.0", true))
        .or_else(|| pick("4.0", true))
        .or_else(|| pick("2.0", true))
        .or_else(|| scored.iter().find_map(|x| x.2));
    Some(Advisory {
        id: id.to_string(),
        aliases: Vec::new(),
        summary,
        severity,
        cvss: scored.into_iter().map(|x| x.0).collect(),
        published: string_field(c, "published"),
        modified: string_field(c, "lastModified"),
        withdrawn: str_field(c, "vulnStatus").is_some_and(|s| s.eq_ignore_ascii_case("rejected")),
        references: array_field(c, "references").iter().filter_map(|r| string_field(r, "url")).collect(),
        affected: Vec::new(),
        source: SOURCE.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_nvd_entry() {
        let doc = br#"{"format": "NVD_CVE", "vulnerabilities": [
          {"cve": {"id": "CVE-2023-1", "vulnStatus": "Analyzed", "published": "2023-10-01T00:00:00.000",
            "descriptions": [{"lang": "es", "value": "hola"}, {"lang": "en", "value": "Hello\nworld"}],
            "metrics": {
              "cvssMetricV31": [
                {"source": "cna@x", "type": "Secondary", "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", "baseScore": 6.1, "baseSeverity": "MEDIUM"}},
                {"source": "nvd@nist.gov", "type": "Primary", "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "baseSeverity": "CRITICAL"}}],
              "cvssMetricV2": [{"source": "nvd@nist.gov", "type": "Primary", "cvssData": {"version": "2.0", "vectorString": "AV:N/AC:M/Au:N/C:N/I:P/A:N", "baseScore": 4.3}, "baseSeverity": "MEDIUM"}]},
            "references": [{"url": "https://a"}]}},
          {"cve": {"id": "CVE-2023-2", "vulnStatus": "Rejected"}},
          {"nocve": 1},
          {"cve": {"id": 5}}
        ]}"#;
        let p = parse("n", doc).unwrap_or_default();
        assert_eq!((p.records.len(), p.skipped), (2, 2));
        let a = &p.records[0];
        assert_eq!(a.summary, "Hello");
        assert_eq!(a.severity, Some(Severity::Critical));
        let cv: Vec<_> = a.cvss.iter().map(|c| (c.version.as_str(), c.score, c.source.as_str())).collect();
        assert_eq!(cv, vec![("3.1", Some(9.8), "nvd"), ("3.1", Some(6.1), "cna@x"), ("2.0", Some(4.3), "nvd")]);
        assert!(a.affected.is_empty());
        assert!(p.records[1].withdrawn);
        assert!(parse("n", b"{}").is_err());
        assert!(parse("n", b"nope").is_err());
    }
}
