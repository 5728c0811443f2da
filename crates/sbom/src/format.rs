//! SBOM writers: aligned table, native JSON, CycloneDX 1.6 JSON, SPDX 2.3 JSON.

use palisade_model::{Package, PackageType, Sbom};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Output formats of `palisade sbom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable table.
    Table,
    /// Native Palisade JSON (the [`Sbom`] structure).
    Json,
    /// CycloneDX 1.6 JSON.
    CycloneDx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// Identity of the tool, written into SBOM metadata.
const TOOL: &str = "palisade";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Render `sbom` in `format`. `now` is the creation time (RFC 3339), `uuid` the document's unique id.
pub fn render(sbom: &Sbom, format: Format, now: &str, uuid: &str) -> String {
    match format {
        Format::Table => table(sbom),
        Format::Json => serde_json::to_string_pretty(sbom).unwrap_or_default() + "\n",
        Format::CycloneDx => serde_json::to_string_pretty(&cyclonedx(sbom, now, uuid)).unwrap_or_default() + "\n",
        Format::Spdx => serde_json::to_string_pretty(&spdx(sbom, now, uuid)).unwrap_or_default() + "\n",
    }
}

/// Current time as RFC 3339 (seconds), and a fresh v4 UUID.
pub fn now_and_uuid() -> (String, String) {
    (humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(), uuid::Uuid::new_v4().to_string())
}

pub use palisade_model::terminal_safe;

/// An aligned text table with a summary line. Text from the image is passed
/// through [`terminal_safe`].
pub fn table(sbom: &Sbom) -> String {
    let mut out = String::new();
    let _ = write!(out, "{}", terminal_safe(&sbom.target.name));
    if let Some(os) = &sbom.os {
        let _ = write!(
            out,
            " ({} {}{})",
            terminal_safe(&os.family),
            terminal_safe(&os.version),
            if os.distroless { ", distroless" } else { "" }
        );
    }
    out.push('\n');
    let rows: Vec<[String; 4]> = sbom
        .packages
        .iter()
        .map(|p| [terminal_safe(&p.name), terminal_safe(&p.version), p.kind.to_string(), terminal_safe(&p.found_in)])
        .collect();
    let headers = ["NAME", "VERSION", "TYPE", "FOUND IN"];
    let mut widths = headers.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count()).min(60);
        }
    }
    let line = |cells: [&str; 4], out: &mut String| {
        for (i, c) in cells.iter().enumerate() {
            if i == 3 {
                out.push_str(c);
            } else {
                let _ = write!(out, "{:<w$}  ", c, w = widths[i]);
            }
        }
        out.push('\n');
    };
    line(headers, &mut out);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3]], &mut out);
    }
    let mut counts: Vec<(PackageType, usize)> = Vec::new();
    for t in PackageType::ALL {
        let n = sbom.packages.iter().filter(|p| p.kind == t).count();
        if n > 0 {
            counts.push((t, n));
        }
    }
    let summary: Vec<String> = counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
    let _ = writeln!(out, "\n{} packages ({})", sbom.packages.len(), summary.join(", "));
    for w in &sbom.warnings {
        let _ = writeln!(out, "warning: {}: {}", terminal_safe(&w.path), terminal_safe(&w.message));
    }
    out
}

fn properties(p: &Package) -> Vec<Value> {
    let mut props = vec![json!({"name": "palisade:package:type", "value": p.kind.as_str()})];
    props.push(json!({"name": "palisade:package:found_in", "value": p.found_in}));
    if !p.layer.is_empty() {
        props.push(json!({"name": "palisade:layer:digest", "value": p.layer}));
    }
    if let Some(s) = &p.source_name {
        props.push(json!({"name": "palisade:package:source_name", "value": s}));
    }
    if let Some(s) = &p.source_version {
        props.push(json!({"name": "palisade:package:source_version", "value": s}));
    }
    props
}

/// Unique reference per package: the PURL, disambiguated by location when repeated.
fn refs(sbom: &Sbom) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    sbom.packages
        .iter()
        .map(|p| {
            let n = seen.entry(p.purl.as_str()).or_insert(0);
            *n += 1;
            if *n == 1 {
                p.purl.clone()
            } else {
                format!("{}#{}", p.purl, n)
            }
        })
        .collect()
}

fn cdx_licenses(p: &Package) -> Vec<Value> {
    p.licenses
        .iter()
        .map(|l| {
            if l.contains(" AND ") || l.contains(" OR ") || l.contains(" WITH ") {
                json!({"expression": l})
            } else {
                json!({"license": {"name": l}})
            }
        })
        .collect()
}

/// A CycloneDX 1.6 document.
pub fn cyclonedx(sbom: &Sbom, now: &str, uuid: &str) -> Value {
    let refs = refs(sbom);
    let root_ref = format!("palisade:target:{}", sbom.target.name);
    let mut components = Vec::new();
    let mut os_ref = None;
    if let Some(os) = &sbom.os {
        let r = format!("palisade:os:{}:{}", os.family, os.version);
        components.push(json!({
            "bom-ref": r, "type": "operating-system", "name": os.family, "version": os.version,
            "description": os.pretty_name,
        }));
        os_ref = Some(r);
    }
    let mut os_children = Vec::new();
    let mut app_children = Vec::new();
    for (p, r) in sbom.packages.iter().zip(&refs) {
        let mut c = json!({
            "bom-ref": r, "type": "library", "name": p.name, "version": p.version, "purl": p.purl,
            "properties": properties(p),
        });
        if p.kind == PackageType::Maven {
            if let Some((g, a)) = p.name.split_once(':') {
                c["group"] = json!(g);
                c["name"] = json!(a);
            }
        }
        let lic = cdx_licenses(p);
        if !lic.is_empty() {
            c["licenses"] = Value::Array(lic);
        }
        components.push(c);
        if p.kind.is_os() && os_ref.is_some() {
            os_children.push(r.clone());
        } else {
            app_children.push(r.clone());
        }
    }
    let mut deps = Vec::new();
    let mut root_deps: Vec<String> = app_children;
    if let Some(o) = &os_ref {
        root_deps.insert(0, o.clone());
        deps.push(json!({"ref": o, "dependsOn": os_children}));
    }
    deps.insert(0, json!({"ref": root_ref, "dependsOn": root_deps}));
    let mut root_props = Vec::new();
    if !sbom.target.digest.is_empty() {
        root_props.push(json!({"name": "palisade:image:manifest_digest", "value": sbom.target.digest}));
    }
    if !sbom.target.image_id.is_empty() {
        root_props.push(json!({"name": "palisade:image:id", "value": sbom.target.image_id}));
    }
    for l in &sbom.target.layers {
        root_props.push(json!({"name": "palisade:image:layer", "value": l}));
    }
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{uuid}"),
        "version": 1,
        "metadata": {
            "timestamp": now,
            "tools": {"components": [{"type": "application", "name": TOOL, "version": VERSION}]},
            "component": {
                "bom-ref": root_ref,
                "type": if sbom.target.layers.is_empty() { "file" } else { "container" },
                "name": sbom.target.name,
                "properties": root_props,
            }
        },
        "components": components,
        "dependencies": deps,
    })
}

fn spdx_id(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect()
}

/// Whether `l` is syntactically an SPDX licence expression made of identifiers.
fn spdx_expression(l: &str) -> bool {
    let words: Vec<&str> = l.split_whitespace().map(|w| w.trim_matches(|c| c == '(' || c == ')')).collect();
    words.len() % 2 == 1
        && words.iter().enumerate().all(|(i, w)| {
            let op = matches!(*w, "AND" | "OR" | "WITH");
            if i % 2 == 1 {
                op
            } else {
                !op && !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+')
            }
        })
}

/// An SPDX 2.3 document.
pub fn spdx(sbom: &Sbom, now: &str, uuid: &str) -> Value {
    let mut packages = Vec::new();
    let mut rels = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Target"
    })];
    let mut extracted: Vec<Value> = Vec::new();
    let mut extracted_ids: HashMap<String, String> = HashMap::new();
    packages.push(json!({
        "name": sbom.target.name, "SPDXID": "SPDXRef-Target", "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false, "primaryPackagePurpose": if sbom.target.layers.is_empty() { "OTHER" } else { "CONTAINER" },
        "versionInfo": sbom.target.digest,
    }));
    if let Some(os) = &sbom.os {
        packages.push(json!({
            "name": os.family, "SPDXID": "SPDXRef-OperatingSystem", "versionInfo": os.version,
            "downloadLocation": "NOASSERTION", "filesAnalyzed": false, "primaryPackagePurpose": "OPERATING-SYSTEM",
        }));
        rels.push(json!({"spdxElementId": "SPDXRef-Target", "relationshipType": "CONTAINS", "relatedSpdxElement": "SPDXRef-OperatingSystem"}));
    }
    for (i, p) in sbom.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{}-{}", p.kind.as_str(), spdx_id(&p.name), i + 1);
        let declared = if p.licenses.is_empty() {
            "NOASSERTION".to_string()
        } else {
            let parts: Vec<String> = p
                .licenses
                .iter()
                .map(|l| {
                    if spdx_expression(l) {
                        if l.contains(' ') {
                            format!("({l})")
                        } else {
                            l.clone()
                        }
                    } else {
                        let next = extracted_ids.len() + 1;
                        let lid = extracted_ids.entry(l.clone()).or_insert_with(|| {
                            let lid = format!("LicenseRef-{}-{next}", spdx_id(l).chars().take(40).collect::<String>());
                            extracted.push(json!({"licenseId": lid, "extractedText": l, "name": l}));
                            lid
                        });
                        lid.clone()
                    }
                })
                .collect();
            parts.join(" AND ")
        };
        let mut source_info = format!("found in {}", p.found_in);
        if !p.layer.is_empty() {
            let _ = write!(source_info, " (layer {})", p.layer);
        }
        let mut pkg = json!({
            "name": p.name, "SPDXID": id, "versionInfo": p.version, "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false, "licenseConcluded": "NOASSERTION", "licenseDeclared": declared,
            "copyrightText": "NOASSERTION", "sourceInfo": source_info, "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.purl}],
        });
        if let Some(s) = &p.source_name {
            pkg["comment"] = json!(format!("source package {} {}", s, p.source_version.clone().unwrap_or_default()));
        }
        packages.push(pkg);
        let parent = if p.kind.is_os() && sbom.os.is_some() { "SPDXRef-OperatingSystem" } else { "SPDXRef-Target" };
        rels.push(json!({"spdxElementId": parent, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": sbom.target.name,
        "documentNamespace": format!("https://palisade.invalid/spdx/{}-{uuid}", spdx_id(&sbom.target.name)),
        "creationInfo": {"created": now, "creators": [format!("Tool: {TOOL}-{VERSION}")]},
        "packages": packages,
        "relationships": rels,
    });
    if !extracted.is_empty() {
        doc["hasExtractedLicensingInfos"] = Value::Array(extracted);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_model::{OsInfo, PackageBuilder};

    fn sample() -> Sbom {
        let mut s = Sbom::default();
        s.target.name = "img".into();
        s.target.layers = vec!["sha256:aa".into()];
        s.os = Some(OsInfo { family: "debian".into(), version: "12".into(), ..Default::default() });
        s.packages
            .push(PackageBuilder::new(PackageType::Deb, "libc6", "2.36").found_in("/var/lib/dpkg/status").build());
        s.packages.push(
            PackageBuilder::new(PackageType::Npm, "lodash", "4.17.15")
                .licenses(["MIT"])
                .found_in("/a/package.json")
                .build(),
        );
        s.packages.push(
            PackageBuilder::new(PackageType::Npm, "lodash", "4.17.15")
                .licenses(["Some Custom"])
                .found_in("/b/package.json")
                .build(),
        );
        s
    }

    #[test]
    fn cyclonedx_has_unique_refs_and_os_tree() {
        let v = cyclonedx(&sample(), "2026-01-01T00:00:00Z", "u");
        assert_eq!(v["specVersion"], "1.6");
        let comps = v["components"].as_array().cloned().unwrap_or_default();
        assert_eq!(comps.len(), 4);
        let refs: std::collections::HashSet<&str> = comps.iter().filter_map(|c| c["bom-ref"].as_str()).collect();
        assert_eq!(refs.len(), 4);
        assert_eq!(v["dependencies"][1]["dependsOn"][0], "pkg:deb/libc6@2.36");
    }

    #[test]
    fn spdx_licenses_are_valid_expressions_or_refs() {
        let v = spdx(&sample(), "2026-01-01T00:00:00Z", "u");
        let pk = v["packages"].as_array().cloned().unwrap_or_default();
        assert_eq!(pk[3]["licenseDeclared"], "MIT");
        assert!(pk[4]["licenseDeclared"].as_str().unwrap_or("").starts_with("LicenseRef-Some-Custom"));
        assert_eq!(v["hasExtractedLicensingInfos"].as_array().map(Vec::len), Some(1));
        assert!(spdx_expression("GPL-2.0-only OR MIT"));
        assert!(!spdx_expression("Apache Software License"));
    }

    #[test]
    fn table_lists_and_counts() {
        let t = table(&sample());
        assert!(t.starts_with("img (debian 12)\nNAME"));
        assert!(t.contains("3 packages (1 deb, 2 npm)"));
    }

    #[test]
    fn table_escapes_terminal_sequences() {
        let mut sbom = Sbom::default();
        sbom.target.name = "img".into();
        sbom.packages.push(
            palisade_model::PackageBuilder::new(
                PackageType::Npm,
                "evil\u{1b}]0;pwned\u{7}\u{1b}[2J",
                "1.0\u{9b}31m\u{202e}",
            )
            .found_in("/app/\rpackage.json")
            .build(),
        );
        let t = table(&sbom);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
        assert!(t.contains("evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"), "{t}");
        assert!(t.contains("1.0\\u{9b}31m\\u{202e}") && t.contains("/app/\\u{d}package.json"), "{t}");
        assert_eq!(terminal_safe("plain ünïcode"), "plain ünïcode");
    }
}
