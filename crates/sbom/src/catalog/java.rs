//! Java archives: `.jar`, `.war`, `.ear`, `.jpi` and `.hpi` (Jenkins plugins).
//!
//! The archive is read from memory. For each archive (the outer one and every
//! nested one) packages are found the way Trivy does, without its network
//! look-ups:
//!
//! 1. every `META-INF/maven/<group>/<artifact>/pom.properties` (also below a
//!    prefix such as `WEB-INF/classes/`) with a `groupId`, `artifactId` and
//!    `version` gives a Maven package named `groupId:artifactId`;
//! 2. when none of those describes the archive itself (its artifact and
//!    version are those of the file name, allowing a classifier such as
//!    `-shaded` and `_`/`-` differences; a file name without a version is
//!    assumed described by any `pom.properties`), the main section of
//!    `META-INF/MANIFEST.MF` is used: group from `Implementation-Vendor-Id`
//!    or `Bundle-SymbolicName` (all but its last dot-separated part),
//!    artifact from `Implementation-Title` or the last part of
//!    `Bundle-SymbolicName`, version from `Implementation-Version` or
//!    `Bundle-Version`; missing artifact or version are taken from
//!    3. the file name (`jackson-databind-2.14.0.jar` → artifact
//!    `jackson-databind`, version `2.14.0`). Without any group the package is
//!    named by the artifact alone (`pkg:maven/jackson-databind@2.14.0`).
//!
//! Nested archives (`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`, `lib/*.jar` in
//! an EAR, ...) are searched recursively. Their packages are reported with
//! `found_in` set to `outer-path!/entry/name.jar` (Java's `jar:` URL
//! convention; deeper levels chain: `a.war!/WEB-INF/lib/b.jar!/lib/c.jar`),
//! so `found_in` is not always a plain file path: everything before the first
//! `!/` is the file in the image.
//!
//! Licences: pom.properties has none; the manifest's `Bundle-License` is
//! attached to the package describing the archive itself.
//!
//! Packages are deduplicated on (name, version), keeping the first (outermost,
//! then earliest) occurrence.
//!
//! Limits, so hostile archives cost time and memory linear in their size:
//! nesting depth [`MAX_DEPTH`], total decompressed bytes [`MAX_DECOMPRESSED`]
//! (nested archives and metadata files count), total entries [`MAX_ENTRIES`],
//! 1 MiB per metadata file, and reads from each archive's bytes capped at a
//! small multiple of its size (so overlapping-entry or many-directory tricks
//! cannot make the zip reader quadratic). Beyond a limit the rest is skipped
//! (logged); only an outer archive that cannot be opened is an error.

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, Cursor, Read, Seek, SeekFrom};

use palisade_model::{Package, PackageBuilder, PackageType};

use crate::CatalogError;

/// Deepest nesting searched (the outer archive is depth 0).
pub const MAX_DEPTH: usize = 4;
/// Most bytes decompressed from one outer archive, all levels together.
pub const MAX_DECOMPRESSED: u64 = 512 << 20;
/// Most archive entries looked at from one outer archive, all levels together.
pub const MAX_ENTRIES: usize = 500_000;
/// Largest `pom.properties` or `MANIFEST.MF` read.
const MAX_METADATA_FILE: u64 = 1 << 20;
/// Format name in errors.
const FORMAT: &str = "java archive";

#[derive(Debug, Clone, Copy)]
struct Limits {
    depth: usize,
    decompressed: u64,
    entries: usize,
}

const LIMITS: Limits = Limits { depth: MAX_DEPTH, decompressed: MAX_DECOMPRESSED, entries: MAX_ENTRIES };

/// Read budget for an archive of `len` bytes: the zip reader may read each
/// byte a few times (central directory search, then entries), no more. A
/// well-formed archive needs about 1x (2x for one made of empty entries).
fn read_budget(len: usize) -> u64 {
    (len as u64).saturating_mul(8).saturating_add(4 << 20)
}

/// A cursor over the archive bytes that fails once it has read more than its budget.
struct BudgetReader<'a> {
    inner: Cursor<&'a [u8]>,
    left: &'a Cell<u64>,
}

impl BudgetReader<'_> {
    /// Fixed cost charged per call, so many tiny reads add up too.
    const CALL_COST: u64 = 8;

    fn charge(&self, cost: u64) -> io::Result<()> {
        match self.left.get().checked_sub(cost) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.left.set(0);
                Err(io::Error::other("java archive read budget exhausted"))
            }
        }
    }
}

impl Read for BudgetReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.charge((n as u64).saturating_add(Self::CALL_COST))?;
        Ok(n)
    }
}

impl Seek for BudgetReader<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.charge(Self::CALL_COST)?;
        self.inner.seek(pos)
    }
}

/// Maven coordinates (any part may be empty until validated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Coords {
    group: String,
    artifact: String,
    version: String,
}

impl Coords {
    fn name(&self) -> String {
        if self.group.is_empty() {
            self.artifact.clone()
        } else {
            format!("{}:{}", self.group, self.artifact)
        }
    }
}

/// State shared by all levels of one outer archive.
struct Walk {
    limits: Limits,
    decompressed: u64,
    entries: usize,
    seen: HashSet<(String, String)>,
    out: Vec<Package>,
    /// What was not searched (a limit reached), for the scan's warnings.
    notes: Vec<String>,
}

impl Walk {
    fn emit(&mut self, coords: &Coords, licenses: &[String], found_in: &str) {
        let name = coords.name();
        if !self.seen.insert((name.clone(), coords.version.clone())) {
            return;
        }
        self.out.push(
            PackageBuilder::new(PackageType::Maven, name, coords.version.clone())
                .licenses(licenses.iter().cloned())
                .found_in(found_in)
                .build(),
        );
    }

    fn remaining(&self) -> u64 {
        self.limits.decompressed.saturating_sub(self.decompressed)
    }
}

/// Whether an entry name is a nested archive we search.
fn is_archive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jar", ".war", ".ear", ".jpi", ".hpi"].iter().any(|ext| lower.ends_with(ext))
}

/// The file name without its archive extension, if it has one.
fn archive_stem(file_name: &str) -> Option<&str> {
    let dot = file_name.rfind('.')?;
    let (stem, ext) = (file_name.get(..dot)?, file_name.get(dot..)?);
    is_archive_name(ext).then_some(stem)
}

fn is_pom_properties(name: &str) -> bool {
    name.ends_with("/pom.properties") && (name.starts_with("META-INF/maven/") || name.contains("/META-INF/maven/"))
}

fn is_manifest(name: &str) -> bool {
    name.eq_ignore_ascii_case("META-INF/MANIFEST.MF")
}

/// The last path component.
fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Lower case, `_` as `-`: for comparing a file name with an artifact id.
fn normalize_id(s: &str) -> String {
    s.to_ascii_lowercase().replace('_', "-")
}

/// Artifact and version from a file name like `jackson-databind-2.14.0.jar`:
/// split at the last `-` followed by a digit (as Trivy's
/// `^([a-zA-Z0-9\._-]*[^-*])-(\d\S*)\.jar$`, for all supported extensions).
fn parse_file_name(path: &str) -> Option<Coords> {
    let stem = archive_stem(base_name(path))?;
    for (i, _) in stem.match_indices('-').rev() {
        let (Some(artifact), Some(version)) = (stem.get(..i), stem.get(i + 1..)) else { continue };
        if !version.starts_with(|c: char| c.is_ascii_digit()) || version.contains(char::is_whitespace) {
            continue;
        }
        let mut chars = artifact.chars();
        let Some(last) = chars.next_back() else { continue };
        if last == '-' || last == '*' || last.is_whitespace() {
            continue;
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            continue;
        }
        return Some(Coords { group: String::new(), artifact: artifact.to_string(), version: version.to_string() });
    }
    None
}

/// `key=value` / `key: value` pairs of a Java properties file (comments,
/// blank lines skipped; escapes and continuation lines are not needed for
/// the Maven-generated files read here).
fn parse_properties(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                return None;
            }
            let sep = line.find(['=', ':'])?;
            let key = line.get(..sep)?.trim();
            let value = line.get(sep + 1..)?.trim();
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

fn pom_coords(bytes: &[u8]) -> Option<Coords> {
    let props = parse_properties(bytes);
    let get = |k: &str| props.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let coords = Coords { group: get("groupId"), artifact: get("artifactId"), version: get("version") };
    (!coords.group.is_empty() && !coords.artifact.is_empty() && !coords.version.is_empty()).then_some(coords)
}

/// The main-section attributes of a manifest (continuation lines joined).
fn parse_manifest(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    let mut attrs: Vec<(String, String)> = Vec::new();
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            if attrs.is_empty() {
                continue;
            }
            break; // end of the main section
        }
        if let Some(continuation) = line.strip_prefix(' ') {
            if let Some(last) = attrs.last_mut() {
                last.1.push_str(continuation);
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            attrs.push((key.trim().to_string(), value.trim_start().to_string()));
        }
    }
    attrs
}

/// A manifest attribute, trimmed, if present and non-empty (keys are case-insensitive).
fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
}

/// A value usable as a Maven group or artifact id (no spaces: not a display name).
fn id_like(v: &str) -> Option<&str> {
    (!v.contains(char::is_whitespace)).then_some(v)
}

/// Coordinates from a manifest (parts may be empty).
fn manifest_coords(attrs: &[(String, String)]) -> Coords {
    // `Bundle-SymbolicName: com.fasterxml.jackson.core.jackson-databind;singleton:=true`
    let bsn = attr(attrs, "Bundle-SymbolicName")
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .and_then(id_like)
        .filter(|v| !v.is_empty());
    let bsn_split = bsn.map(|b| match b.rsplit_once('.') {
        Some((g, a)) if !g.is_empty() && !a.is_empty() => (g, a),
        _ => (b, b),
    });
    let group = attr(attrs, "Implementation-Vendor-Id")
        .and_then(id_like)
        .or(bsn_split.map(|(g, _)| g))
        .or_else(|| {
            ["Implementation-Vendor", "Specification-Vendor"]
                .iter()
                .filter_map(|k| attr(attrs, k).and_then(id_like))
                .find(|v| v.contains('.'))
        })
        .unwrap_or_default();
    let artifact = attr(attrs, "Implementation-Title")
        .and_then(id_like)
        .or(bsn_split.map(|(_, a)| a))
        .or_else(|| attr(attrs, "Specification-Title").and_then(id_like))
        .or_else(|| attr(attrs, "Bundle-Name").and_then(id_like))
        .unwrap_or_default();
    let version = ["Implementation-Version", "Bundle-Version", "Specification-Version"]
        .iter()
        .find_map(|k| attr(attrs, k).and_then(id_like))
        .unwrap_or_default();
    Coords { group: group.to_string(), artifact: artifact.to_string(), version: version.to_string() }
}

/// Licences from an OSGi `Bundle-License` header: comma-separated clauses,
/// each a licence name or URL optionally followed by `;attr=value`.
fn manifest_licenses(attrs: &[(String, String)]) -> Vec<String> {
    let Some(value) = attr(attrs, "Bundle-License") else { return Vec::new() };
    let mut out = Vec::new();
    let mut clause = String::new();
    let mut quoted = false;
    for c in value.chars().chain(std::iter::once(',')) {
        match c {
            '"' => {
                quoted = !quoted;
                clause.push(c);
            }
            ',' if !quoted => {
                let name = clause.split(';').next().unwrap_or_default().trim().trim_matches('"').trim();
                if !name.is_empty() && !out.iter().any(|x: &String| x == name) {
                    out.push(name.to_string());
                }
                clause.clear();
            }
            _ => clause.push(c),
        }
    }
    out
}

/// Read one entry fully, if it is a file of at most `cap` bytes once
/// decompressed. Decompressed bytes are charged to the walk.
fn read_entry<R: Read + Seek>(
    walk: &mut Walk,
    archive: &mut zip::ZipArchive<R>,
    index: usize,
    cap: u64,
) -> Option<Vec<u8>> {
    let mut file = archive.by_index(index).ok()?;
    if !file.is_file() || file.size() > cap {
        return None;
    }
    let mut buf = Vec::new();
    let result = (&mut file).take(cap.saturating_add(1)).read_to_end(&mut buf);
    walk.decompressed = walk.decompressed.saturating_add(buf.len() as u64);
    result.ok()?;
    (buf.len() as u64 <= cap).then_some(buf)
}

/// Catalog one archive (`data`) found at `location`; `file_name` is used
/// for the name/version fallback.
fn walk_archive(
    walk: &mut Walk,
    location: &str,
    file_name: &str,
    data: &[u8],
    depth: usize,
) -> Result<(), CatalogError> {
    let budget = Cell::new(read_budget(data.len()));
    let reader = BudgetReader { inner: Cursor::new(data), left: &budget };
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| CatalogError::malformed(FORMAT, e.to_string()))?;

    let mut poms = Vec::new();
    let mut manifest = None;
    let mut nested = Vec::new();
    let mut too_deep = 0usize;
    for index in 0..archive.len() {
        if walk.entries >= walk.limits.entries {
            tracing::warn!(location, limit = walk.limits.entries, "java archive entry limit reached; rest skipped");
            walk.notes
                .push(format!("{location}: entry limit ({}) reached; the rest was not searched", walk.limits.entries));
            break;
        }
        walk.entries += 1;
        let Some(name) = archive.name_for_index(index) else { continue };
        if is_pom_properties(name) {
            poms.push(index);
        } else if is_manifest(name) {
            manifest.get_or_insert(index);
        } else if is_archive_name(name) && depth < walk.limits.depth {
            nested.push((index, name.to_string()));
        } else if is_archive_name(name) {
            too_deep += 1;
        }
    }

    if too_deep > 0 {
        tracing::warn!(
            location,
            archives = too_deep,
            limit = walk.limits.depth,
            "java archives nested deeper than the limit; not searched"
        );
        walk.notes.push(format!(
            "{location}: {too_deep} archive(s) nested deeper than {} levels not searched",
            walk.limits.depth
        ));
    }

    // This archive's own metadata.
    let mut pom_coords_list = Vec::new();
    for index in poms {
        let cap = MAX_METADATA_FILE.min(walk.remaining());
        if let Some(coords) = read_entry(walk, &mut archive, index, cap).as_deref().and_then(pom_coords) {
            pom_coords_list.push(coords);
        }
    }
    let attrs = match manifest {
        Some(index) => {
            let cap = MAX_METADATA_FILE.min(walk.remaining());
            read_entry(walk, &mut archive, index, cap).map(|b| parse_manifest(&b)).unwrap_or_default()
        }
        None => Vec::new(),
    };
    let licenses = manifest_licenses(&attrs);
    let from_file = parse_file_name(file_name);
    let base = base_name(file_name);
    let stem = normalize_id(archive_stem(base).unwrap_or(base));
    let describes_self = |c: &Coords| {
        let by_name = match &from_file {
            // Same artifact and version, or with a classifier added to the
            // file name (`wagon-http-shaded-3.5.3.jar`, `wagon-http-3.5.3-shaded.jar`).
            Some(f) => {
                f.artifact.starts_with(&c.artifact)
                    && (f.version == c.version || f.version.starts_with(&format!("{}-", c.version)))
            }
            None => false,
        };
        // `geronimo-annotation-1.3-spec.jar` for artifact `geronimo-annotation_1.3_spec`.
        by_name || stem == normalize_id(&c.artifact) || stem == normalize_id(&format!("{}-{}", c.artifact, c.version))
    };
    let self_found = match &from_file {
        Some(_) => pom_coords_list.iter().any(describes_self),
        None => !pom_coords_list.is_empty(),
    };
    for coords in &pom_coords_list {
        let own_licenses: &[String] = if describes_self(coords) { &licenses } else { &[] };
        walk.emit(coords, own_licenses, location);
    }
    if !self_found {
        let mut coords = manifest_coords(&attrs);
        if let Some(f) = &from_file {
            if coords.artifact.is_empty() {
                coords.artifact.clone_from(&f.artifact);
            }
            if coords.version.is_empty() {
                coords.version.clone_from(&f.version);
            }
        }
        let already = pom_coords_list.iter().any(|p| p.artifact == coords.artifact && p.version == coords.version);
        if !coords.artifact.is_empty() && !coords.version.is_empty() && !already {
            walk.emit(&coords, &licenses, location);
        }
    }

    // Nested archives, one at a time (only one level's bytes held per depth).
    for (index, name) in nested {
        let cap = walk.remaining();
        if cap == 0 {
            tracing::warn!(
                location,
                limit = walk.limits.decompressed,
                "java archive decompression limit reached; rest skipped"
            );
            walk.notes.push(format!(
                "{location}: decompression limit ({} bytes) reached; nested archives not searched",
                walk.limits.decompressed
            ));
            break;
        }
        let Some(bytes) = read_entry(walk, &mut archive, index, cap) else {
            tracing::debug!(location, entry = %name, "nested archive unreadable or over the size limit; skipped");
            continue;
        };
        let inner_location = format!("{location}!/{name}");
        if let Err(e) = walk_archive(walk, &inner_location, base_name(&name), &bytes, depth + 1) {
            tracing::debug!(location = %inner_location, error = %e, "nested archive skipped");
        }
    }
    Ok(())
}

fn parse_with_limits(path: &str, data: &[u8], limits: Limits) -> Result<Vec<Package>, CatalogError> {
    parse_noted_with_limits(path, data, limits).map(|(p, _)| p)
}

fn parse_noted_with_limits(
    path: &str,
    data: &[u8],
    limits: Limits,
) -> Result<(Vec<Package>, Vec<String>), CatalogError> {
    let mut walk =
        Walk { limits, decompressed: 0, entries: 0, seen: HashSet::new(), out: Vec::new(), notes: Vec::new() };
    walk_archive(&mut walk, path, base_name(path), data, 0)?;
    Ok((walk.out, walk.notes))
}

/// [`parse`], plus what was not searched because a limit was reached (nesting depth, entries,
/// decompressed bytes): the scan reports these as warnings next to the packages found.
pub fn parse_noted(path: &str, data: &[u8]) -> Result<(Vec<Package>, Vec<String>), CatalogError> {
    parse_noted_with_limits(path, data, LIMITS)
}

/// Catalog a Java archive (`.jar`, `.war`, `.ear`, `.jpi`, `.hpi`) given its
/// path in the image and its bytes: Maven packages from `pom.properties`,
/// the manifest and the file name, in nested archives too (see the module
/// documentation for the rules, `found_in` values and limits). Errors only
/// when the outer archive is not a readable zip file.
pub fn parse(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    parse_with_limits(path, data, LIMITS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;

    fn zip_of(entries: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().compression_method(method);
        for (name, data) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, opts).unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    fn pom(g: &str, a: &str, v: &str) -> String {
        format!("#Generated by Maven\n#Tue Nov 01 00:00:00 UTC 2022\nartifactId={a}\ngroupId={g}\nversion={v}\n")
    }

    fn nv(pkgs: &[Package]) -> Vec<(String, String, String)> {
        pkgs.iter().map(|p| (p.name.clone(), p.version.clone(), p.found_in.clone())).collect()
    }

    const JACKSON_MANIFEST: &str = "Manifest-Version: 1.0\r\n\
        Bundle-License: https://www.apache.org/licenses/LICENSE-2.0.t\r\n xt\r\n\
        Bundle-SymbolicName: com.fasterxml.jackson.core.jackson-databind\r\n\
        Bundle-Version: 2.14.0\r\n\
        Implementation-Title: jackson-databind\r\n\
        \r\n\
        Name: com/fasterxml/jackson/databind/\r\n\
        Implementation-Version: 9.9.9\r\n";

    fn jackson_jar() -> Vec<u8> {
        let p = pom("com.fasterxml.jackson.core", "jackson-databind", "2.14.0");
        zip_of(
            &[
                ("META-INF/", b""),
                ("META-INF/MANIFEST.MF", JACKSON_MANIFEST.as_bytes()),
                ("META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties", p.as_bytes()),
                ("META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.xml", b"<project/>"),
                ("com/fasterxml/jackson/databind/ObjectMapper.class", &[0xca, 0xfe, 0xba, 0xbe]),
            ],
            CompressionMethod::Deflated,
        )
    }

    /// A WAR with its own pom, a pom-described jar, a manifest-only jar, a
    /// bare jar named with its version, a fat jar nesting another jar, and a
    /// duplicate.
    fn sample_war() -> Vec<u8> {
        let jackson = jackson_jar();
        let manifest_only = zip_of(
            &[(
                "META-INF/MANIFEST.MF",
                b"Manifest-Version: 1.0\nImplementation-Title: widget-core\nImplementation-Version: 3.1\n\
                  Implementation-Vendor-Id: org.widgets\nImplementation-Vendor: Widgets Inc.\n",
            )],
            CompressionMethod::Stored,
        );
        let bare = zip_of(&[("com/google/common/base/Strings.class", b"x")], CompressionMethod::Deflated);
        let inner = zip_of(
            &[("META-INF/maven/org.slf4j/slf4j-api/pom.properties", pom("org.slf4j", "slf4j-api", "2.0.5").as_bytes())],
            CompressionMethod::Deflated,
        );
        let fat = zip_of(
            &[
                ("META-INF/maven/com.example/fat/pom.properties", pom("com.example", "fat", "1.0").as_bytes()),
                ("BOOT-INF/lib/slf4j-api-2.0.5.jar", &inner),
            ],
            CompressionMethod::Stored,
        );
        zip_of(
            &[
                ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
                ("META-INF/maven/com.example/shop/pom.properties", pom("com.example", "shop", "1.2.3").as_bytes()),
                ("WEB-INF/", b""),
                ("WEB-INF/lib/", b""),
                ("WEB-INF/lib/jackson-databind-2.14.0.jar", &jackson),
                ("WEB-INF/lib/widget.jar", &manifest_only),
                ("WEB-INF/lib/guava-31.1-jre.jar", &bare),
                ("WEB-INF/lib/fat.jar", &fat),
                ("WEB-INF/lib/copy/jackson-databind-2.14.0.jar", &jackson),
                ("index.html", b"<html/>"),
            ],
            CompressionMethod::Stored,
        )
    }

    #[test]
    fn war_with_nested_jars() {
        let pkgs = parse("/srv/shop.war", &sample_war()).unwrap();
        let l = "/srv/shop.war";
        assert_eq!(
            nv(&pkgs),
            vec![
                ("com.example:shop".into(), "1.2.3".into(), l.to_string()),
                (
                    "com.fasterxml.jackson.core:jackson-databind".into(),
                    "2.14.0".into(),
                    format!("{l}!/WEB-INF/lib/jackson-databind-2.14.0.jar")
                ),
                ("org.widgets:widget-core".into(), "3.1".into(), format!("{l}!/WEB-INF/lib/widget.jar")),
                ("guava".into(), "31.1-jre".into(), format!("{l}!/WEB-INF/lib/guava-31.1-jre.jar")),
                ("com.example:fat".into(), "1.0".into(), format!("{l}!/WEB-INF/lib/fat.jar")),
                (
                    "org.slf4j:slf4j-api".into(),
                    "2.0.5".into(),
                    format!("{l}!/WEB-INF/lib/fat.jar!/BOOT-INF/lib/slf4j-api-2.0.5.jar")
                ),
            ]
        );
        assert!(pkgs.iter().all(|p| p.kind == PackageType::Maven));
        let jackson = &pkgs[1];
        assert_eq!(jackson.purl, "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.14.0");
        assert_eq!(jackson.licenses, vec!["https://www.apache.org/licenses/LICENSE-2.0.txt".to_string()]);
        assert!(pkgs[0].licenses.is_empty());
        assert_eq!(pkgs[3].purl, "pkg:maven/guava@31.1-jre");
    }

    #[test]
    fn single_jar_prefers_pom_properties() {
        let pkgs = parse("/usr/share/java/jackson-databind.jar", &jackson_jar()).unwrap();
        assert_eq!(nv(&pkgs).len(), 1);
        assert_eq!(pkgs[0].name, "com.fasterxml.jackson.core:jackson-databind");
        assert_eq!(pkgs[0].licenses.len(), 1, "only pom.properties: it describes the jar");
    }

    #[test]
    fn shaded_jar_reports_its_own_identity_too() {
        // A shaded jar carries a dependency's pom.properties but not its own.
        let jar = zip_of(
            &[
                ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\nBundle-SymbolicName: org.acme.tool;singleton:=true\nBundle-Version: 5.0.1\nBundle-License: Apache-2.0;link=\"http://x/y\", MIT\n"),
                ("META-INF/maven/com.google.guava/guava/pom.properties", pom("com.google.guava", "guava", "31.1-jre").as_bytes()),
            ],
            CompressionMethod::Deflated,
        );
        let pkgs = parse("/opt/tool-5.0.1.jar", &jar).unwrap();
        assert_eq!(
            nv(&pkgs),
            vec![
                ("com.google.guava:guava".into(), "31.1-jre".into(), "/opt/tool-5.0.1.jar".into()),
                ("org.acme:tool".into(), "5.0.1".into(), "/opt/tool-5.0.1.jar".into()),
            ]
        );
        assert!(pkgs[0].licenses.is_empty());
        assert_eq!(pkgs[1].licenses, vec!["Apache-2.0".to_string(), "MIT".to_string()]);
    }

    #[test]
    fn pom_properties_matching_the_file_name_loosely_describe_the_jar() {
        let lic: &[u8] = b"Manifest-Version: 1.0\nBundle-SymbolicName: x.y.z\nBundle-Version: 9\nBundle-License: MIT\n";
        let jar = |g: &str, a: &str, v: &str| {
            zip_of(
                &[
                    ("META-INF/MANIFEST.MF", lic),
                    (&*format!("META-INF/maven/{g}/{a}/pom.properties"), pom(g, a, v).as_bytes()),
                ],
                CompressionMethod::Stored,
            )
        };
        for (file, g, a, v) in [
            ("/j/geronimo-annotation-1.3-spec.jar", "org.apache.geronimo.specs", "geronimo-annotation_1.3_spec", "1.3"),
            ("/j/wagon-http-3.5.3-shaded.jar", "org.apache.maven.wagon", "wagon-http", "3.5.3"),
            ("/j/wagon-http-shaded-3.5.3.jar", "org.apache.maven.wagon", "wagon-http", "3.5.3"),
            ("/j/Foo_Bar.jar", "g", "foo-bar", "1"),
        ] {
            let pkgs = parse(file, &jar(g, a, v)).unwrap();
            assert_eq!(nv(&pkgs), vec![(format!("{g}:{a}"), v.to_string(), file.to_string())], "{file}");
            assert_eq!(pkgs[0].licenses, vec!["MIT".to_string()], "{file}");
        }
        // An unversioned name that is not the pom's artifact: the pom is still
        // trusted (no fallback) but is not given the archive's licence.
        let pkgs = parse("/j/guice.jar", &jar("cglib", "cglib", "3.2.12")).unwrap();
        assert_eq!(nv(&pkgs), vec![("cglib:cglib".into(), "3.2.12".into(), "/j/guice.jar".into())]);
        assert!(pkgs[0].licenses.is_empty());
    }

    #[test]
    fn file_name_fallback_and_parsing() {
        let empty = zip_of(&[("a.txt", b"x")], CompressionMethod::Stored);
        assert_eq!(
            nv(&parse("/x/log4j-1.2-api-2.17.1.jar", &empty).unwrap()),
            vec![("log4j-1.2-api".into(), "2.17.1".into(), "/x/log4j-1.2-api-2.17.1.jar".into())]
        );
        assert!(parse("/x/app.jar", &empty).unwrap().is_empty());
        let c = |s: &str| parse_file_name(s).map(|c| (c.artifact, c.version));
        assert_eq!(c("jackson-databind-2.14.0.jar"), Some(("jackson-databind".into(), "2.14.0".into())));
        assert_eq!(c("/a/b/spring-core-5.3.4-SNAPSHOT.jar"), Some(("spring-core".into(), "5.3.4-SNAPSHOT".into())));
        assert_eq!(c("guava-31.1-jre.JAR"), Some(("guava".into(), "31.1-jre".into())));
        assert_eq!(c("plugin-1.0.hpi"), Some(("plugin".into(), "1.0".into())));
        assert_eq!(c("foo.jar"), None);
        assert_eq!(c("foo-bar.jar"), None);
        assert_eq!(c("-1.0.jar"), None);
        assert_eq!(c("foo--1.0.jar"), None);
        assert_eq!(c("foo-1.0.zip"), None);
        assert_eq!(c("f o-1.0.jar"), None);
    }

    #[test]
    fn manifest_parsing() {
        let attrs = parse_manifest(JACKSON_MANIFEST.as_bytes());
        assert_eq!(attr(&attrs, "bundle-version"), Some("2.14.0"));
        assert_eq!(attr(&attrs, "Implementation-Version"), None, "per-entry sections are ignored");
        let c = manifest_coords(&attrs);
        assert_eq!(
            c,
            Coords {
                group: "com.fasterxml.jackson.core".into(),
                artifact: "jackson-databind".into(),
                version: "2.14.0".into()
            }
        );
        // Display names are not ids.
        let attrs = parse_manifest(
            b"Implementation-Title: Apache Commons IO\nImplementation-Vendor: The Apache Software Foundation\nImplementation-Version: 2.11.0\n",
        );
        assert_eq!(manifest_coords(&attrs), Coords { version: "2.11.0".into(), ..Coords::default() });
        let pkgs = parse(
            "/x/commons-io-2.11.0.jar",
            &zip_of(
                &[(
                    "META-INF/MANIFEST.MF",
                    b"Implementation-Title: Apache Commons IO\nImplementation-Version: 2.11.0\n",
                )],
                CompressionMethod::Stored,
            ),
        )
        .unwrap();
        assert_eq!(nv(&pkgs), vec![("commons-io".into(), "2.11.0".into(), "/x/commons-io-2.11.0.jar".into())]);
    }

    #[test]
    fn depth_is_bounded() {
        let mut jar = zip_of(
            &[("META-INF/maven/g/l6/pom.properties", pom("g", "l6", "1").as_bytes())],
            CompressionMethod::Stored,
        );
        for level in (0..6).rev() {
            let p = pom("g", &format!("l{level}"), "1");
            jar = zip_of(
                &[("META-INF/maven/g/x/pom.properties", p.as_bytes()), ("lib/inner.jar", &jar)],
                CompressionMethod::Deflated,
            );
        }
        let (pkgs, notes) = parse_noted("/a.jar", &jar).unwrap();
        let names: Vec<String> = pkgs.into_iter().map(|p| p.name).collect();
        assert_eq!(names, vec!["g:l0", "g:l1", "g:l2", "g:l3", "g:l4"]);
        // what was left unsearched is said, with where
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("nested deeper than 4 levels") && notes[0].starts_with("/a.jar!/lib/inner.jar"),
            "{notes:?}"
        );
    }

    #[test]
    fn decompression_and_entry_limits() {
        let war = sample_war();
        // A small decompression budget: the outer metadata fits, nested jars do not.
        let limits = Limits { decompressed: 130, ..LIMITS };
        let pkgs = parse_with_limits("/w.war", &war, limits).unwrap();
        assert_eq!(nv(&pkgs), vec![("com.example:shop".into(), "1.2.3".into(), "/w.war".into())]);
        // Entry limit: only the first entries are looked at.
        let limits = Limits { entries: 2, ..LIMITS };
        let pkgs = parse_with_limits("/w.war", &war, limits).unwrap();
        assert_eq!(pkgs.len(), 1);
        // Oversized metadata file is skipped.
        let mut big = pom("g", "big", "1").into_bytes();
        big.resize((MAX_METADATA_FILE + 1) as usize, b'#');
        let jar = zip_of(&[("META-INF/maven/g/big/pom.properties", &big)], CompressionMethod::Deflated);
        assert!(jar.len() < 64 * 1024);
        assert!(parse("/app.jar", &jar).unwrap().is_empty());
    }

    #[test]
    fn read_budget_stops_reads() {
        let data = vec![7u8; 1000];
        let left = Cell::new(500);
        let mut r = BudgetReader { inner: Cursor::new(&data[..]), left: &left };
        let mut buf = Vec::new();
        assert!(r.read_to_end(&mut buf).is_err());
        assert_eq!(left.get(), 0);
        assert!(r.seek(SeekFrom::Start(0)).is_err());
    }

    #[test]
    fn garbage_and_truncations_never_panic() {
        assert!(parse("/x.jar", b"").is_err());
        assert!(parse("/x.jar", b"PK\x03\x04garbage").is_err());
        assert!(parse("/x.jar", &[0u8; 4096]).is_err());
        // Many fake end-of-central-directory records.
        let mut fake = Vec::new();
        for _ in 0..5000 {
            fake.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0\x2e\0\0\0\0\0\0\0\0\0");
        }
        let _ = parse("/x.jar", &fake);
        let war = sample_war();
        for cut in 0..war.len() {
            let _ = parse("/x.war", &war[..cut]);
        }
        let mut seed: u64 = 0xdead_beef_cafe_f00d;
        for round in 0..3000 {
            let mut m = war.clone();
            for _ in 0..(1 + round % 6) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Favour the central directory at the end.
                let pos = if seed & 1 == 0 {
                    m.len() - 1 - (seed >> 8) as usize % 700.min(m.len())
                } else {
                    (seed >> 8) as usize % m.len()
                };
                m[pos] = (seed >> 40) as u8;
            }
            let _ = parse("/x.war", &m);
        }
    }

    #[test]
    fn many_tiny_entries_stay_within_the_read_budget() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        for i in 0..100_000u32 {
            w.start_file(format!("{i:x}"), opts).unwrap();
        }
        let p = pom("g", "last", "1");
        w.start_file("META-INF/maven/g/last/pom.properties", opts).unwrap();
        w.write_all(p.as_bytes()).unwrap();
        let jar = w.finish().unwrap().into_inner();
        let start = std::time::Instant::now();
        let pkgs = parse("/many.jar", &jar).unwrap();
        assert_eq!(nv(&pkgs), vec![("g:last".into(), "1".into(), "/many.jar".into())]);
        eprintln!("{} bytes, {:?}", jar.len(), start.elapsed());
        // Opening it costs well under half of the budget.
        // Opening it costs at most a quarter of the read budget.
        let left = Cell::new(u64::MAX);
        zip::ZipArchive::new(BudgetReader { inner: Cursor::new(&jar[..]), left: &left }).unwrap();
        let cost = u64::MAX - left.get();
        eprintln!("open cost: {cost} for len {}", jar.len());
        assert!(cost <= read_budget(jar.len()) / 4);
    }

    /// Debian's maven-repo jars, when installed (optional: skipped otherwise).
    #[test]
    fn system_jars_when_present() {
        let Ok(dir) = std::fs::read_dir("/usr/share/java") else { return };
        let mut seen = 0;
        for entry in dir.flatten() {
            let path = entry.path();
            let Some(p) = path.to_str() else { continue };
            if !p.ends_with(".jar") || path.is_symlink() {
                continue;
            }
            let Ok(data) = std::fs::read(&path) else { continue };
            let pkgs = parse(p, &data).unwrap_or_else(|e| panic!("{p}: {e}"));
            seen += 1;
            if p.ends_with("/commons-io.jar") {
                assert!(pkgs.iter().any(|x| x.name == "commons-io:commons-io" && x.version == "2.11.0"), "{pkgs:?}");
            }
        }
        eprintln!("parsed {seen} system jars");
    }
}
