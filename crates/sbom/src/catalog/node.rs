//! Node.js: `node_modules/**/package.json`, `package-lock.json` (v1–v3),
//! `yarn.lock` (classic and berry) and `pnpm-lock.yaml`.

use crate::CatalogError;
use palisade_model::{Package, PackageBuilder, PackageType};
use serde_json::Value;

fn npm(name: &str, version: &str, path: &str) -> Package {
    PackageBuilder::new(PackageType::Npm, name, version).found_in(path).build()
}

fn json(format: &'static str, data: &[u8]) -> Result<Value, CatalogError> {
    serde_json::from_slice(data).map_err(|e| CatalogError::malformed(format, e.to_string()))
}

/// Licences as package.json states them (`license` string or object, or the old `licenses` array).
fn licenses(v: &Value) -> Vec<String> {
    let one = |l: &Value| match l {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("type").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    match (v.get("license"), v.get("licenses")) {
        (Some(l), _) => one(l).into_iter().collect(),
        (None, Some(Value::Array(a))) => a.iter().filter_map(one).collect(),
        _ => Vec::new(),
    }
}

/// An installed package's `package.json`.
pub fn parse_package_json(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let v = json("package.json", data)?;
    let (Some(name), Some(version)) = (v.get("name").and_then(Value::as_str), v.get("version").and_then(Value::as_str))
    else {
        return Ok(Vec::new());
    };
    if name.is_empty() || version.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![PackageBuilder::new(PackageType::Npm, name, version).licenses(licenses(&v)).found_in(path).build()])
}

/// `package-lock.json` / `npm-shrinkwrap.json`, lockfile versions 1, 2 and 3.
pub fn parse_package_lock(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let v = json("package-lock.json", data)?;
    let mut out = Vec::new();
    if let Some(pkgs) = v.get("packages").and_then(Value::as_object) {
        for (key, p) in pkgs {
            if key.is_empty() || p.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let Some(idx) = key.rfind("node_modules/") else { continue };
            let name = p.get("name").and_then(Value::as_str).unwrap_or(&key[idx + "node_modules/".len()..]);
            if let Some(ver) = p.get("version").and_then(Value::as_str) {
                out.push(PackageBuilder::new(PackageType::Npm, name, ver).licenses(licenses(p)).found_in(path).build());
            }
        }
        return Ok(out);
    }
    // v1: nested "dependencies" maps.
    let mut stack: Vec<&Value> = v.get("dependencies").into_iter().collect();
    while let Some(deps) = stack.pop() {
        let Some(map) = deps.as_object() else { continue };
        for (name, d) in map {
            if let Some(ver) = d.get("version").and_then(Value::as_str) {
                // Aliases ("npm:real@1.0.0") and local links ("file:...") are resolved or skipped.
                if let Some(alias) = ver.strip_prefix("npm:") {
                    if let Some((n, v)) = alias.rsplit_once('@') {
                        out.push(npm(n, v, path));
                    }
                } else if !ver.starts_with("file:") && !ver.contains("://") {
                    out.push(npm(name, ver, path));
                }
            }
            if let Some(sub) = d.get("dependencies") {
                stack.push(sub);
            }
        }
    }
    Ok(out)
}

/// Split `name@range` where the name may be scoped (`@scope/name@range`).
fn split_spec(spec: &str) -> Option<&str> {
    let spec = spec.trim().trim_matches('"');
    let at = spec.char_indices().skip(1).find(|(_, c)| *c == '@').map(|(i, _)| i)?;
    Some(&spec[..at])
}

/// `yarn.lock`, classic (v1) and berry (v2+).
pub fn parse_yarn_lock(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut skip = false;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            current = None;
            skip = false;
            let header = line.trim_end_matches(':');
            if header.starts_with("__metadata") {
                skip = true;
                continue;
            }
            let first = header.split(", ").next().unwrap_or(header);
            if first.contains("@workspace:")
                || first.contains("@link:")
                || first.contains("@portal:")
                || first.contains("@file:")
            {
                skip = true;
                continue;
            }
            current = split_spec(first).map(str::to_string);
            continue;
        }
        if skip {
            continue;
        }
        let t = line.trim();
        let ver = t.strip_prefix("version ").or_else(|| t.strip_prefix("version: "));
        if let (Some(name), Some(ver)) = (&current, ver) {
            let ver = ver.trim().trim_matches('"');
            if !ver.is_empty() && line.starts_with("  ") && !line.starts_with("    ") {
                out.push(npm(name, ver, path));
            }
        }
    }
    if out.is_empty() && text.contains("version") && !text.contains("__metadata") {
        return Err(CatalogError::malformed("yarn.lock", "no entries recognised"));
    }
    Ok(out)
}

/// `pnpm-lock.yaml` lockfile versions 5, 6 and 9.
pub fn parse_pnpm_lock(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    // palisade-yaml bounds the document after alias expansion: an alias bomb is an error here
    // (a warning for the scan), never an abort.
    let (v, _lossy): (serde_json::Value, _) =
        palisade_yaml::from_slice(data).map_err(|e| CatalogError::malformed("pnpm-lock.yaml", e.to_string()))?;
    let mut out = Vec::new();
    let Some(pkgs) = v.get("packages").and_then(|p| p.as_object()) else { return Ok(out) };
    let v5 = match v.get("lockfileVersion") {
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|f| f < 6.0),
        Some(serde_json::Value::String(s)) => s.starts_with('5'),
        _ => false,
    };
    for (k, p) in pkgs {
        let key = k.as_str();
        let (name, version) = if let Some(n) = p.get("name").and_then(|n| n.as_str()) {
            let ver = p.get("version").and_then(|v| v.as_str()).map(str::to_string);
            (n.to_string(), ver.unwrap_or_default())
        } else if v5 {
            // v5: /name/version or /@scope/name/version, peers as "_peer@1.0.0".
            let key = key.strip_prefix('/').unwrap_or(key);
            let Some((n, ver)) = key.rsplit_once('/') else { continue };
            (n.to_string(), ver.split('_').next().unwrap_or(ver).to_string())
        } else {
            // v6+: /name@version(peer@1.0.0) (v6) or name@version(peer@1.0.0) (v9).
            let key = key.split('(').next().unwrap_or(key);
            let key = key.strip_prefix('/').unwrap_or(key);
            let Some(name) = split_spec(key) else { continue };
            (name.to_string(), key[name.len() + 1..].to_string())
        };
        if !name.is_empty() && !version.is_empty() && !version.contains(':') {
            out.push(npm(&name, &version, path));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nv(p: &[Package]) -> Vec<(String, String)> {
        let mut v: Vec<_> = p.iter().map(|p| (p.name.clone(), p.version.clone())).collect();
        v.sort();
        v
    }

    #[test]
    fn package_json_and_locks() {
        let p = parse_package_json(
            "/app/node_modules/lodash/package.json",
            br#"{"name":"lodash","version":"4.17.15","license":"MIT"}"#,
        )
        .unwrap_or_default();
        assert_eq!(p[0].licenses, vec!["MIT".to_string()]);
        let v3 = br#"{"lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/@types/node":{"version":"20.1.0"},
            "node_modules/a/node_modules/ms":{"version":"2.0.0"},"node_modules/ms":{"version":"2.1.3"},"node_modules/x":{"link":true}}}"#;
        assert_eq!(
            nv(&parse_package_lock("/p", v3).unwrap_or_default()),
            vec![("@types/node".into(), "20.1.0".into()), ("ms".into(), "2.0.0".into()), ("ms".into(), "2.1.3".into())]
        );
        let v1 = br#"{"lockfileVersion":1,"dependencies":{"express":{"version":"4.16.0","dependencies":{"debug":{"version":"2.6.9"}}},"al":{"version":"npm:lodash@4.17.21"}}}"#;
        assert_eq!(
            nv(&parse_package_lock("/p", v1).unwrap_or_default()),
            vec![
                ("debug".into(), "2.6.9".into()),
                ("express".into(), "4.16.0".into()),
                ("lodash".into(), "4.17.21".into())
            ]
        );
        assert!(parse_package_lock("/p", b"{not json").is_err());
    }

    #[test]
    fn yarn_classic_and_berry() {
        let classic = "# yarn lockfile v1\n\n\"@babel/code-frame@^7.0.0\", \"@babel/code-frame@^7.10.4\":\n  version \"7.12.13\"\n  resolved \"https://r/x.tgz\"\n  dependencies:\n    \"@babel/highlight\" \"^7.12.13\"\n\nlodash@^4.17.15:\n  version \"4.17.21\"\n";
        assert_eq!(
            nv(&parse_yarn_lock("/y", classic.as_bytes()).unwrap_or_default()),
            vec![("@babel/code-frame".into(), "7.12.13".into()), ("lodash".into(), "4.17.21".into())]
        );
        let berry = "__metadata:\n  version: 6\n\n\"app@workspace:.\":\n  version: 0.0.0-use.local\n\n\"minimist@npm:^1.2.0\":\n  version: 1.2.8\n  resolution: \"minimist@npm:1.2.8\"\n";
        assert_eq!(
            nv(&parse_yarn_lock("/y", berry.as_bytes()).unwrap_or_default()),
            vec![("minimist".into(), "1.2.8".into())]
        );
    }

    #[test]
    fn pnpm_versions() {
        let v5 = "lockfileVersion: 5.4\npackages:\n  /lodash/4.17.21:\n    resolution: {integrity: sha512-x}\n  /@babel/core/7.0.0_react@18.0.0:\n    dev: false\n";
        assert_eq!(
            nv(&parse_pnpm_lock("/p", v5.as_bytes()).unwrap_or_default()),
            vec![("@babel/core".into(), "7.0.0".into()), ("lodash".into(), "4.17.21".into())]
        );
        let v9 = "lockfileVersion: '9.0'\npackages:\n  lodash@4.17.21:\n    resolution: {integrity: sha512-x}\n  '@types/react@18.0.0(x@1.0.0)':\n    resolution: {integrity: sha512-y}\n";
        assert_eq!(
            nv(&parse_pnpm_lock("/p", v9.as_bytes()).unwrap_or_default()),
            vec![("@types/react".into(), "18.0.0".into()), ("lodash".into(), "4.17.21".into())]
        );
        assert!(parse_pnpm_lock("/p", b": : :\n\t- [").is_err());
    }
}
