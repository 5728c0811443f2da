//! CISA Known Exploited Vulnerabilities catalogue
//! (`https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json`).
//!
//! Accepts the catalogue (`{"vulnerabilities": [...]}`), a bare array of entries or a single
//! entry object. Entries without a `cveID` are skipped and counted.

use serde_json::Value;

use super::util::{str_field, string_field};
use super::{FeedError, FeedKind, Parsed};
use crate::record::KevEntry;

/// Parse a KEV catalogue.
pub fn parse(file: &str, data: &[u8]) -> Result<Parsed<KevEntry>, FeedError> {
    let bad = |r: &str| FeedError::format(file, FeedKind::Kev, r);
    let doc: Value = serde_json::from_slice(data).map_err(|e| bad(&e.to_string()))?;
    let entries: Vec<&Value> = match &doc {
        Value::Object(m) if m.contains_key("vulnerabilities") => doc["vulnerabilities"]
            .as_array()
            .ok_or_else(|| bad("\"vulnerabilities\" is not an array"))?
            .iter()
            .collect(),
        Value::Object(m) if m.contains_key("cveID") => vec![&doc],
        Value::Array(items) => items.iter().collect(),
        _ => return Err(bad("no \"vulnerabilities\" array")),
    };
    let mut out = Parsed::default();
    for e in entries {
        match entry(e) {
            Some(k) => out.push(file, k)?,
            None => out.skipped += 1,
        }
    }
    Ok(out)
}

fn entry(e: &Value) -> Option<KevEntry> {
    let cve = str_field(e, "cveID")?;
    if !cve.starts_with("CVE-") {
        return None;
    }
    Some(KevEntry {
        cve: cve.to_string(),
        date_added: string_field(e, "dateAdded").unwrap_or_default(),
        due_date: string_field(e, "dueDate").unwrap_or_default(),
        ransomware: str_field(e, "knownRansomwareCampaignUse").is_some_and(|s| s.eq_ignore_ascii_case("known")),
        required_action: string_field(e, "requiredAction").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_kev_shapes() {
        let doc = br#"{"vulnerabilities": [{"cveID": "CVE-2020-1", "dateAdded": "2021-11-03", "dueDate": "2022-05-03",
            "knownRansomwareCampaignUse": "Known", "requiredAction": "Apply updates."}, {"cveID": 5}, {}]}"#;
        let p = parse("k", doc).unwrap_or_default();
        assert_eq!((p.records.len(), p.skipped), (1, 2));
        assert_eq!(
            p.records[0],
            KevEntry {
                cve: "CVE-2020-1".into(),
                date_added: "2021-11-03".into(),
                due_date: "2022-05-03".into(),
                ransomware: true,
                required_action: "Apply updates.".into()
            }
        );
        assert_eq!(parse("k", br#"{"cveID": "CVE-1-2"}"#).map(|p| p.records.len()).ok(), Some(1));
        assert!(parse("k", b"{\"a\": 1}").is_err());
        assert!(parse("k", b"{\"vulnerabilities\": 3}").is_err());
        assert!(parse("k", b"").is_err());
    }
}
