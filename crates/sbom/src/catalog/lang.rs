//! Other language ecosystems: Cargo.lock, Ruby (gemspecs, Gemfile.lock),
//! PHP (composer.lock, vendor/composer/installed.json) and .NET (*.deps.json).

use crate::CatalogError;
use palisade_model::{Package, PackageBuilder, PackageType};
use serde_json::Value;

/// `Cargo.lock`: every `[[package]]` that comes from a registry or git source.
pub fn parse_cargo_lock(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    #[derive(serde::Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<Pkg>,
    }
    #[derive(serde::Deserialize)]
    struct Pkg {
        name: String,
        version: String,
        #[serde(default)]
        source: Option<String>,
    }
    let text = std::str::from_utf8(data).map_err(|e| CatalogError::malformed("Cargo.lock", e.to_string()))?;
    let lock: Lock = toml::from_str(text).map_err(|e| CatalogError::malformed("Cargo.lock", e.to_string()))?;
    Ok(lock
        .package
        .into_iter()
        .filter(|p| p.source.is_some())
        .map(|p| PackageBuilder::new(PackageType::Cargo, p.name, p.version).found_in(path).build())
        .collect())
}

fn ruby_string(expr: &str) -> Option<String> {
    // "rack".freeze, 'rack', %q{rack}
    let e = expr.trim();
    let e = e.strip_suffix(".freeze").unwrap_or(e);
    if let Some(rest) = e.strip_prefix('"') {
        return rest.find('"').map(|i| rest[..i].to_string());
    }
    if let Some(rest) = e.strip_prefix('\'') {
        return rest.find('\'').map(|i| rest[..i].to_string());
    }
    if let Some(rest) = e.strip_prefix("%q{") {
        return rest.find('}').map(|i| rest[..i].to_string());
    }
    None
}

/// A `*.gemspec` as RubyGems writes them into `specifications/`.
pub fn parse_gemspec(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let text = String::from_utf8_lossy(data);
    let (mut name, mut version, mut licenses) = (None, None, Vec::new());
    for line in text.lines() {
        let l = line.trim();
        let Some((lhs, rhs)) = l.split_once('=') else { continue };
        let field = lhs.trim().rsplit('.').next().unwrap_or("").trim();
        match field {
            "name" if name.is_none() => name = ruby_string(rhs),
            "version" if version.is_none() => {
                // s.version = "2.2.4" or Gem::Version.new("2.2.4")
                let r = rhs.trim();
                let r = r.strip_prefix("Gem::Version.new(").and_then(|x| x.strip_suffix(')')).unwrap_or(r);
                version = ruby_string(r);
            }
            "license" => licenses.extend(ruby_string(rhs)),
            "licenses" => {
                let inner = rhs.trim().trim_start_matches('[').trim_end_matches(".freeze").trim_end_matches(']');
                licenses.extend(inner.split(',').filter_map(ruby_string));
            }
            _ => {}
        }
    }
    match (name, version) {
        (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() => {
            Ok(vec![PackageBuilder::new(PackageType::Gem, n, v).licenses(licenses).found_in(path).build()])
        }
        _ => Err(CatalogError::malformed("gemspec", "no name/version assignment")),
    }
}

/// `Gemfile.lock`: the `specs:` of the GEM (and GIT/PATH) sections.
pub fn parse_gemfile_lock(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    let mut in_specs = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_specs = false;
            continue;
        }
        if line.trim() == "specs:" {
            in_specs = true;
            continue;
        }
        if !in_specs || !line.starts_with("    ") || line.starts_with("      ") {
            continue;
        }
        let l = line.trim();
        let Some((name, rest)) = l.split_once(' ') else { continue };
        let ver = rest.trim().trim_start_matches('(').trim_end_matches(')');
        // Platform-specific gems: "nokogiri (1.13.10-x86_64-linux)".
        let ver = ver.split_once('-').map(|(v, _)| v).unwrap_or(ver);
        if !ver.is_empty() {
            out.push(PackageBuilder::new(PackageType::Gem, name, ver).found_in(path).build());
        }
    }
    Ok(out)
}

fn composer_packages(path: &str, list: &[Value], out: &mut Vec<Package>) {
    for p in list {
        let (Some(name), Some(ver)) = (p.get("name").and_then(Value::as_str), p.get("version").and_then(Value::as_str))
        else {
            continue;
        };
        let lic: Vec<String> = match p.get("license") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let ver = ver.strip_prefix('v').filter(|v| v.starts_with(|c: char| c.is_ascii_digit())).unwrap_or(ver);
        out.push(PackageBuilder::new(PackageType::Composer, name, ver).licenses(lic).found_in(path).build());
    }
}

/// `composer.lock` (packages and packages-dev) or `vendor/composer/installed.json` (v1 array or v2 object).
pub fn parse_composer(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let v: Value = serde_json::from_slice(data).map_err(|e| CatalogError::malformed("composer", e.to_string()))?;
    let mut out = Vec::new();
    match &v {
        Value::Array(a) => composer_packages(path, a, &mut out),
        Value::Object(o) => {
            for key in ["packages", "packages-dev"] {
                if let Some(Value::Array(a)) = o.get(key) {
                    composer_packages(path, a, &mut out);
                }
            }
        }
        _ => return Err(CatalogError::malformed("composer", "neither an array nor an object")),
    }
    Ok(out)
}

/// `*.deps.json` of a .NET application: libraries of type `package`.
pub fn parse_deps_json(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let v: Value = serde_json::from_slice(data).map_err(|e| CatalogError::malformed("deps.json", e.to_string()))?;
    let Some(libs) = v.get("libraries").and_then(Value::as_object) else {
        return Err(CatalogError::malformed("deps.json", "no libraries object"));
    };
    let mut out = Vec::new();
    for (key, lib) in libs {
        if lib.get("type").and_then(Value::as_str) != Some("package") {
            continue;
        }
        if let Some((n, ver)) = key.split_once('/') {
            out.push(PackageBuilder::new(PackageType::Nuget, n, ver).found_in(path).build());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_lock() {
        let lock = "version = 3\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
        let p = parse_cargo_lock("/Cargo.lock", lock.as_bytes()).unwrap_or_default();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].purl, "pkg:cargo/smallvec@1.6.0");
        assert!(parse_cargo_lock("/x", b"[[package]\nname=").is_err());
    }

    #[test]
    fn ruby() {
        let spec = "# stub: rack 2.2.4 ruby lib\nGem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"2.2.4\"\n  s.licenses = [\"MIT\".freeze]\nend\n";
        let p = parse_gemspec("/usr/share/rubygems-integration/all/specifications/rack-2.2.4.gemspec", spec.as_bytes())
            .unwrap_or_default();
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str(), p[0].licenses.clone()),
            ("rack", "2.2.4", vec!["MIT".to_string()])
        );
        let lock = "GEM\n  remote: https://rubygems.org/\n  specs:\n    actionpack (5.2.3)\n      rack (~> 2.0)\n    nokogiri (1.13.10-x86_64-linux)\n\nPLATFORMS\n  ruby\n";
        let p = parse_gemfile_lock("/Gemfile.lock", lock.as_bytes()).unwrap_or_default();
        let nv: Vec<_> = p.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(nv, vec![("actionpack", "5.2.3"), ("nokogiri", "1.13.10")]);
    }

    #[test]
    fn php_and_dotnet() {
        let lock = br#"{"packages":[{"name":"guzzlehttp/guzzle","version":"7.4.0","license":["MIT"]}],"packages-dev":[{"name":"phpunit/phpunit","version":"9.5.0"}]}"#;
        let p = parse_composer("/app/composer.lock", lock).unwrap_or_default();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].purl, "pkg:composer/guzzlehttp/guzzle@7.4.0");
        let v2 = br#"{"packages":[{"name":"a/b","version":"v1.2.3"}],"dev":true}"#;
        assert_eq!(parse_composer("/v/installed.json", v2).unwrap_or_default()[0].version, "1.2.3");
        let deps = br#"{"libraries":{"app/1.0.0":{"type":"project"},"Newtonsoft.Json/13.0.1":{"type":"package"}}}"#;
        let p = parse_deps_json("/app/app.deps.json", deps).unwrap_or_default();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].purl, "pkg:nuget/Newtonsoft.Json@13.0.1");
        assert!(parse_deps_json("/x", b"[]").is_err());
    }
}
