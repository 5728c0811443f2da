//! Python distributions: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` and `*.egg-info` files.

use crate::CatalogError;
use palisade_model::{Package, PackageBuilder, PackageType};

/// Parse core metadata (RFC 822 headers up to the first blank line).
pub fn parse(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let text = String::from_utf8_lossy(data);
    let (mut name, mut version, mut license, mut expr) = (None, None, None, None);
    let mut classifiers = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v.to_string()),
            "version" => version = Some(v.to_string()),
            "license" if !v.is_empty() && v != "UNKNOWN" => license = Some(v.to_string()),
            "license-expression" if !v.is_empty() => expr = Some(v.to_string()),
            "classifier" => {
                if let Some(l) = v.strip_prefix("License :: ") {
                    let l = l.rsplit(" :: ").next().unwrap_or(l);
                    classifiers.push(l.to_string());
                }
            }
            _ => {}
        }
    }
    let (Some(name), Some(version)) = (name, version) else {
        return Err(CatalogError::malformed("python metadata", "missing Name or Version"));
    };
    // A long licence text in `License:` is not a licence name: prefer the expression or classifiers.
    let lic: Vec<String> = if let Some(e) = expr {
        vec![e]
    } else if let Some(l) = license.filter(|l| l.len() < 80 && !l.contains('\n')) {
        vec![l]
    } else {
        classifiers
    };
    Ok(vec![PackageBuilder::new(PackageType::Pypi, name, version).licenses(lic).found_in(path).build()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_metadata() {
        let m = "Metadata-Version: 2.1\nName: PyYAML\nVersion: 5.3\nSummary: YAML parser\nLicense: MIT\nClassifier: License :: OSI Approved :: MIT License\n\nlong description\nName: not-this\n";
        let p = parse("/usr/lib/python3/dist-packages/PyYAML-5.3.dist-info/METADATA", m.as_bytes()).unwrap_or_default();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].name.as_str(), p[0].version.as_str()), ("PyYAML", "5.3"));
        assert_eq!(p[0].purl, "pkg:pypi/pyyaml@5.3");
        assert_eq!(p[0].licenses, vec!["MIT".to_string()]);
        let m = "Name: requests\nVersion: 2.19.1\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: Apache Software License\n";
        let p = parse("/x/PKG-INFO", m.as_bytes()).unwrap_or_default();
        assert_eq!(p[0].licenses, vec!["Apache Software License".to_string()]);
        assert!(parse("/x", b"\x00\x01garbage").is_err());
    }
}
