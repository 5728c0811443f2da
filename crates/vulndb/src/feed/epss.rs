//! FIRST EPSS scores (`https://epss.cyentia.com/epss_scores-current.csv.gz`): an optional
//! `#model_version:…,score_date:…` comment line, the header `cve,epss,percentile`, then one line
//! per CVE. Plain or gzip. Lines that do not parse (or have scores outside 0–1) are skipped and
//! counted; a missing or different header makes the file invalid.

use super::{archive, FeedError, FeedKind, Parsed};
use crate::record::Epss;

/// Parse an EPSS CSV (plain or gzip-compressed).
pub fn parse(file: &str, data: &[u8]) -> Result<Parsed<(String, Epss)>, FeedError> {
    let data = archive::maybe_gunzip(file, FeedKind::Epss, data)?;
    let text = std::str::from_utf8(&data).map_err(|_| FeedError::format(file, FeedKind::Epss, "not UTF-8 text"))?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let header = lines.next().ok_or_else(|| FeedError::format(file, FeedKind::Epss, "empty file"))?;
    let cols: Vec<String> = header.split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
    if cols.len() < 3 || cols[0] != "cve" || cols[1] != "epss" || cols[2] != "percentile" {
        return Err(FeedError::format(file, FeedKind::Epss, format!("unexpected header {header:?}")));
    }
    let mut out = Parsed::default();
    for line in lines {
        match row(line) {
            Some(r) => out.push(file, r)?,
            None => out.skipped += 1,
        }
    }
    Ok(out)
}

fn row(line: &str) -> Option<(String, Epss)> {
    let mut it = line.split(',').map(str::trim);
    let cve = it.next()?;
    let score: f32 = it.next()?.parse().ok()?;
    let percentile: f32 = it.next()?.parse().ok()?;
    let ok = |x: f32| x.is_finite() && (0.0..=1.0).contains(&x);
    if !cve.starts_with("CVE-") || !super::util::looks_like_id(cve) || !ok(score) || !ok(percentile) {
        return None;
    }
    Some((cve.to_string(), Epss { score, percentile }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn feed_epss_plain_and_gzip() {
        let csv = b"#model_version:v2023.03.01,score_date:2025-02-20T00:00:00+0000\ncve,epss,percentile\nCVE-1999-0001,0.00383,0.73075\nCVE-x,1,1\nCVE-1999-0002,2.0,0.5\nCVE-1999-0003,abc,0.1\n";
        let p = parse("e", csv).unwrap_or_default();
        assert_eq!((p.records.len(), p.skipped), (1, 3));
        assert_eq!(p.records[0], ("CVE-1999-0001".to_string(), Epss { score: 0.00383, percentile: 0.73075 }));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(csv);
        let gz = gz.finish().unwrap_or_default();
        assert_eq!(parse("e.gz", &gz).map(|p| p.records.len()).ok(), Some(1));
        assert!(parse("e", b"invalid,header,format\nCVE-1,0.1,0.1\n").is_err());
        assert!(parse("e", b"").is_err());
        assert!(parse("e", &[0x1f, 0x8b, 0, 1, 2]).is_err());
        assert!(parse("e", &[0xff, 0xfe, 0xfd]).is_err());
    }
}
