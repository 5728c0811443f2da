//! Reading Kubernetes objects from manifests: YAML (multi-document, Helm-rendered), JSON,
//! `kind: List` and `kubectl get -o json` dumps, directories (recursively) and stdin.
//!
//! Every object keeps its file and the line its document starts on. A document that does not
//! parse, or is not a Kubernetes object, becomes a warning naming file and line; the rest of
//! the file is still read.

use crate::object::{Object, Origin};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Largest single file read (JSON, which is streamed item by item when large).
pub const MAX_FILE: u64 = 1 << 30;
/// Largest YAML file read: a YAML document is held whole as a value tree, several times its
/// size in memory, so YAML is refused well below [`MAX_FILE`] (convert it to JSON to go further).
pub const MAX_YAML_FILE: u64 = 256 << 20;

/// File-size limits, injectable for tests ([`load_paths_with`], [`for_each_object_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Any file (JSON).
    pub file: u64,
    /// A file whose content is not JSON.
    pub yaml: u64,
}

impl Default for SizeLimits {
    fn default() -> Self {
        SizeLimits { file: MAX_FILE, yaml: MAX_YAML_FILE }
    }
}

impl SizeLimits {
    /// Why a file of `len` bytes that starts with `head` is refused, if it is.
    pub fn refuse(&self, len: u64, head: &[u8]) -> Option<String> {
        if len > self.file {
            return Some(format!("larger than {} bytes; refused", self.file));
        }
        let first = head.iter().find(|b| !b.is_ascii_whitespace() && !matches!(b, 0xEF | 0xBB | 0xBF));
        let json = matches!(first, Some(b'{' | b'['));
        if !json && len > self.yaml {
            return Some(format!(
                "YAML larger than {} bytes; refused (convert it to JSON, e.g. kubectl get -o json, or split it)",
                self.yaml
            ));
        }
        None
    }

    /// Check a file by its metadata and first bytes, without reading it.
    fn check(&self, p: &Path) -> Result<(), String> {
        use std::io::Read;
        let len = std::fs::metadata(p).map_err(|e| e.to_string())?.len();
        if len <= self.yaml.min(self.file) {
            return Ok(());
        }
        let mut head = Vec::with_capacity(4096);
        std::fs::File::open(p).and_then(|f| f.take(4096).read_to_end(&mut head)).map_err(|e| e.to_string())?;
        match self.refuse(len, &head) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}
/// Most objects taken from one input set.
pub const MAX_OBJECTS: usize = 5_000_000;

/// A problem with one document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadWarning {
    /// File.
    pub file: String,
    /// 1-based line of the document (0 when unknown).
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// Input was lost: the file, or a document of it, could not be read or parsed (not merely a
    /// document that is not a Kubernetes object). An assessment with such a warning is incomplete.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

impl LoadWarning {
    fn new(file: impl Into<String>, line: usize, message: impl Into<String>) -> Self {
        LoadWarning { file: file.into(), line, message: message.into(), skipped: false }
    }
    fn skipped(file: impl Into<String>, line: usize, message: impl Into<String>) -> Self {
        LoadWarning { skipped: true, ..Self::new(file, line, message) }
    }
}

/// Whether any warning says input was lost (see [`LoadWarning::skipped`]).
pub fn incomplete(warnings: &[LoadWarning]) -> bool {
    warnings.iter().any(|w| w.skipped)
}

impl std::fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

/// Why loading failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        error: std::io::Error,
    },
}

/// Objects and warnings.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Objects in input order.
    pub objects: Vec<Object>,
    /// Per-document problems.
    pub warnings: Vec<LoadWarning>,
    /// Files read.
    pub files: usize,
}

fn is_manifest(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(),
        Some("yaml" | "yml" | "json")
    )
}

/// Load every path: files, directories (recursively, `.yaml`, `.yml`, `.json`), or `-` for stdin.
pub fn load_paths(paths: &[PathBuf]) -> Result<Loaded, LoadError> {
    load_paths_with(paths, &SizeLimits::default())
}

/// [`load_paths`] with explicit file-size limits.
pub fn load_paths_with(paths: &[PathBuf], limits: &SizeLimits) -> Result<Loaded, LoadError> {
    let mut out = Loaded::default();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut data = Vec::new();
            use std::io::Read;
            std::io::stdin()
                .lock()
                .take(limits.file + 1)
                .read_to_end(&mut data)
                .map_err(|e| LoadError::Io { path: p.clone(), error: e })?;
            if let Some(why) = limits.refuse(data.len() as u64, &data[..data.len().min(4096)]) {
                out.warnings.push(LoadWarning::skipped("-", 0, why));
                continue;
            }
            load_bytes("-", &data, &mut out);
            continue;
        }
        let md = std::fs::metadata(p).map_err(|e| LoadError::Io { path: p.clone(), error: e })?;
        if md.is_dir() {
            let mut files = Vec::new();
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                let rd = match std::fs::read_dir(&d) {
                    Ok(rd) => rd,
                    Err(e) => {
                        out.warnings.push(LoadWarning::skipped(d.display().to_string(), 0, e.to_string()));
                        continue;
                    }
                };
                for e in rd.flatten() {
                    let ft = match e.file_type() {
                        Ok(ft) => ft,
                        Err(_) => continue,
                    };
                    let path = e.path();
                    if ft.is_dir() {
                        if !e.file_name().to_string_lossy().starts_with('.') {
                            stack.push(path);
                        }
                    } else if ft.is_file() && is_manifest(&path) {
                        files.push(path);
                    }
                }
            }
            files.sort();
            for f in files {
                load_file(&f, limits, &mut out);
            }
        } else {
            load_file(p, limits, &mut out);
        }
    }
    Ok(out)
}

fn load_file(p: &Path, limits: &SizeLimits, out: &mut Loaded) {
    let name = p.display().to_string();
    if let Err(why) = limits.check(p) {
        out.warnings.push(LoadWarning::skipped(name, 0, why));
        return;
    }
    match std::fs::read(p) {
        Ok(data) => load_bytes(&name, &data, out),
        Err(e) => out.warnings.push(LoadWarning::skipped(name, 0, e.to_string())),
    }
}

/// Stream every object of `paths` to `f` without keeping them: a large `kubectl get -o json`
/// dump is parsed item by item, so memory stays at one object (plus what `f` keeps).
/// Warnings are returned.
pub fn for_each_object(paths: &[PathBuf], f: &mut dyn FnMut(Object)) -> Result<Vec<LoadWarning>, LoadError> {
    for_each_object_with(paths, &SizeLimits::default(), f)
}

/// [`for_each_object`] with explicit file-size limits: a file over them is refused with a
/// warning (marked [`LoadWarning::skipped`]) before it is read.
pub fn for_each_object_with(
    paths: &[PathBuf],
    limits: &SizeLimits,
    f: &mut dyn FnMut(Object),
) -> Result<Vec<LoadWarning>, LoadError> {
    let mut warnings = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" || !p.is_dir() {
            files.push(p.clone());
            continue;
        }
        // Directories: the same walk as load_paths, one file at a time.
        let mut stack = vec![p.clone()];
        while let Some(d) = stack.pop() {
            let rd = std::fs::read_dir(&d).map_err(|e| LoadError::Io { path: d.clone(), error: e })?;
            for e in rd.flatten() {
                let path = e.path();
                match e.file_type() {
                    Ok(ft) if ft.is_dir() && !e.file_name().to_string_lossy().starts_with('.') => stack.push(path),
                    Ok(ft) if ft.is_file() && is_manifest(&path) => files.push(path),
                    _ => {}
                }
            }
        }
    }
    files.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    for p in files {
        let name = p.display().to_string();
        let data = if p.as_os_str() == "-" {
            let mut data = Vec::new();
            use std::io::Read;
            std::io::stdin()
                .lock()
                .take(limits.file + 1)
                .read_to_end(&mut data)
                .map_err(|e| LoadError::Io { path: p.clone(), error: e })?;
            if let Some(why) = limits.refuse(data.len() as u64, &data[..data.len().min(4096)]) {
                warnings.push(LoadWarning::skipped(name, 0, why));
                continue;
            }
            data
        } else {
            if let Err(why) = limits.check(&p) {
                warnings.push(LoadWarning::skipped(name, 0, why));
                continue;
            }
            match std::fs::read(&p) {
                Ok(d) => d,
                Err(e) => return Err(LoadError::Io { path: p.clone(), error: e }),
            }
        };
        let plain = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&data);
        let trimmed = plain.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &plain[i..]).unwrap_or(&[]);
        if trimmed.first() == Some(&b'{') {
            warnings.extend(stream_json(&name, trimmed, f));
            continue;
        }
        let mut one = Loaded::default();
        load_bytes(&name, &data, &mut one);
        warnings.extend(one.warnings);
        for o in one.objects {
            f(o);
        }
    }
    Ok(warnings)
}

/// Stream a JSON document: a List's items one at a time, or a single object.
fn stream_json(file: &str, data: &[u8], f: &mut dyn FnMut(Object)) -> Vec<LoadWarning> {
    use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
    struct Doc<'a> {
        file: &'a str,
        f: &'a mut dyn FnMut(Object),
        warnings: Vec<LoadWarning>,
    }
    struct Items<'a, 'b>(&'b mut Doc<'a>);
    impl<'de> DeserializeSeed<'de> for Items<'_, '_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Items<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(v) = seq.next_element::<Value>()? {
                let mut tmp = Loaded::default();
                take(self.0.file, 1, v, &mut tmp);
                self.0.warnings.extend(tmp.warnings);
                for o in tmp.objects {
                    (self.0.f)(o);
                }
            }
            Ok(())
        }
    }
    struct Top<'a, 'b>(&'b mut Doc<'a>);
    impl<'de> Visitor<'de> for Top<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a Kubernetes object or List")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut rest = serde_json::Map::new();
            let mut streamed = false;
            while let Some(k) = map.next_key::<String>()? {
                if k == "items" {
                    map.next_value_seed(Items(self.0))?;
                    streamed = true;
                } else {
                    rest.insert(k, map.next_value::<Value>()?);
                }
            }
            if !streamed {
                let mut tmp = Loaded::default();
                take(self.0.file, 1, Value::Object(rest), &mut tmp);
                self.0.warnings.extend(tmp.warnings);
                for o in tmp.objects {
                    (self.0.f)(o);
                }
            }
            Ok(())
        }
    }
    let mut doc = Doc { file, f, warnings: Vec::new() };
    let mut de = serde_json::Deserializer::from_slice(data);
    let r = serde::Deserializer::deserialize_map(&mut de, Top(&mut doc)).and_then(|_| de.end());
    let mut w = doc.warnings;
    if let Err(e) = r {
        w.push(LoadWarning::skipped(file, e.line(), format!("invalid JSON: {e}")));
    }
    w
}

/// Parse one file's content (YAML or JSON) into objects.
///
/// Bytes are decoded as kubectl decodes them (UTF-16 by BOM, UTF-8 with invalid bytes replaced
/// and a warning), and YAML is read by `palisade_yaml` (YAML 1.1 scalars as kubectl reads them,
/// an alias-expansion budget per document, a depth limit).
pub fn load_bytes(file: &str, data: &[u8], out: &mut Loaded) {
    out.files += 1;
    let decoded = palisade_yaml::decode(data);
    if let Some(w) = &decoded.warning {
        out.warnings.push(LoadWarning::new(file, 0, format!("{w}; read anyway")));
    }
    let text: &str = &decoded.text;
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON: one document (an object, a List dump, or an array of objects).
        match serde_json::from_str::<Value>(trimmed) {
            Ok(v) => take(file, 1, v, out),
            Err(e) => out.warnings.push(LoadWarning::skipped(file, e.line(), format!("invalid JSON: {e}"))),
        }
        return;
    }
    for (line, doc) in yaml_documents(text) {
        if doc.trim().is_empty() || doc.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            continue;
        }
        match palisade_yaml::from_str_multi(doc) {
            Ok(docs) => {
                for d in docs {
                    if !d.value.is_null() {
                        take(file, line, d.value, out);
                    }
                }
            }
            // Positions are relative to the document: make them absolute.
            Err(e) => out.warnings.push(LoadWarning::skipped(file, line, e.offset_lines(line - 1).to_string())),
        }
    }
}

/// Drop what no engine reads, to keep large dumps small in memory: server bookkeeping in
/// `metadata` (managedFields, uid, resourceVersion, timestamps, generation, selfLink) and
/// `status`, except where status says something we report (nodes, services, pods' phase).
pub fn prune(m: &mut serde_json::Map<String, Value>) {
    if let Some(Value::Object(meta)) = m.get_mut("metadata") {
        for k in ["managedFields", "uid", "resourceVersion", "creationTimestamp", "generation", "selfLink"] {
            meta.remove(k);
        }
    }
    let keep_status = matches!(m.get("kind").and_then(Value::as_str), Some("Node" | "Service"));
    if !keep_status {
        m.remove("status");
    }
}

/// Split a YAML stream into documents with their 1-based starting lines.
fn yaml_documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let l = line.trim_end();
        if l == "---" || l.starts_with("--- ") || l == "..." {
            docs.push((start_line, &text[start_byte..offset]));
            start_byte = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start_byte..]));
    docs
}

fn take(file: &str, line: usize, v: Value, out: &mut Loaded) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        if out.objects.len() >= MAX_OBJECTS {
            out.warnings.push(LoadWarning::skipped(
                file,
                line,
                format!("more than {MAX_OBJECTS} objects; the rest are ignored"),
            ));
            return;
        }
        match v {
            Value::Array(items) => stack.extend(items.into_iter().rev()),
            Value::Object(mut m) => {
                let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
                if kind.ends_with("List") && m.get("items").is_some_and(Value::is_array) {
                    if let Some(Value::Array(items)) = m.remove("items") {
                        stack.extend(items.into_iter().rev());
                    }
                    continue;
                }
                prune(&mut m);
                let v = Value::Object(m);
                match Object::from_value(v, Origin { file: file.into(), line }) {
                    Some(o) => out.objects.push(o),
                    None => out.warnings.push(LoadWarning::new(
                        file,
                        line,
                        "not a Kubernetes object (no kind, or no metadata.name)",
                    )),
                }
            }
            other => out.warnings.push(LoadWarning::new(
                file,
                line,
                format!(
                    "not a Kubernetes object (a {})",
                    match other {
                        Value::String(_) => "string",
                        Value::Number(_) => "number",
                        Value::Bool(_) => "boolean",
                        _ => "scalar",
                    }
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Loaded {
        let mut out = Loaded::default();
        load_bytes("t.yaml", text.as_bytes(), &mut out);
        out
    }

    #[test]
    fn multi_document_yaml_with_lines_and_bad_documents() {
        let text = "# Source: chart/templates/a.yaml\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: a\nspec:\n  containers: [{name: c, image: nginx}]\n---\nkind: [unclosed\n---\njust a string\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n";
        let l = load(text);
        let ids: Vec<(String, usize)> = l.objects.iter().map(|o| (o.id(), o.origin.line)).collect();
        assert_eq!(ids, vec![("Namespace/a".into(), 1), ("Pod/a/p".into(), 7), ("ConfigMap/cm".into(), 21)]);
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
        assert_eq!(l.warnings[0].line, 15);
        assert!(l.warnings[0].message.contains("invalid YAML"));
        assert_eq!(l.warnings[1].line, 17);
    }

    #[test]
    fn kubectl_list_dumps_and_json_arrays() {
        let dump = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","namespace":"x"}},
            {"apiVersion":"v1","kind":"ServiceList","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}]},
            {"kind":"Thing"}]}"#;
        let l = load(dump);
        let ids: Vec<String> = l.objects.iter().map(Object::id).collect();
        assert_eq!(ids, vec!["Deployment/x/d", "Service/s"]);
        assert_eq!(l.warnings.len(), 1);
        let l = load("{\"broken\": ");
        assert!(l.objects.is_empty() && l.warnings[0].message.contains("invalid JSON"));
        let l = load("\u{feff}[{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\"}}]");
        assert_eq!(l.objects.len(), 1);
    }

    #[test]
    fn streaming_matches_loading() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dump = r#"{"apiVersion":"v1","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"n"}},
            {"kind":"Nope"},{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}],"kind":"List","metadata":{}}"#;
        std::fs::write(dir.path().join("d.json"), dump).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("one.json"), r#"{"kind":"Pod","metadata":{"name":"b"}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("bad.json"), r#"{"items":[{"kind":"Pod","metadata":{"name":"c"}}, {"#)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("y.yaml"), "kind: Pod\nmetadata: {name: 'y'}\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut ids = Vec::new();
        let w =
            for_each_object(&[dir.path().to_path_buf()], &mut |o| ids.push(o.id())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ids, vec!["Pod/c", "Pod/n/a", "Service/s", "Pod/b", "Pod/y"]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().any(|x| x.file.ends_with("bad.json") && x.message.contains("invalid JSON")));
    }

    #[test]
    fn directories_recursively_and_missing_paths() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(dir.path().join("sub/.git")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("a.yaml"), "kind: Pod\nmetadata: {name: a}\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("sub/b.yml"), "kind: Pod\nmetadata: {name: b}\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("sub/.git/c.yaml"), "kind: Pod\nmetadata: {name: c}\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("sub/readme.md"), "kind: Pod").unwrap_or_else(|e| panic!("{e}"));
        let l = load_paths(&[dir.path().to_path_buf()]).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = l.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert!(load_paths(&[dir.path().join("missing")]).is_err());
    }

    /// One anchor of `n` items referenced by `m` aliases, inside an object.
    fn fan_out(n: usize, m: usize) -> String {
        let items: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
        let mut s =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bomb}}\nx: &a [{}]\ndata:\n", items.join(","));
        for i in 0..m {
            s.push_str(&format!("  k{i}: *a\n"));
        }
        s
    }

    #[test]
    fn hostile_yaml_is_a_warning_and_the_rest_is_read() {
        let good = "---\napiVersion: v1\nkind: Pod\nmetadata: {name: ok}\n";
        let mut laughs = String::from("a0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
        for i in 1..9 {
            let p = i - 1;
            laughs.push_str(&format!("a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"));
        }
        for bomb in [
            fan_out(3_000, 3_000),
            laughs,
            format!("x: {}\n", "[".repeat(100_000)),
            format!("y: {}\n", "{a: ".repeat(60_000)),
        ] {
            let t = std::time::Instant::now();
            let l = load(&format!("{bomb}{good}"));
            assert!(t.elapsed() < std::time::Duration::from_secs(3), "{:?}", t.elapsed());
            let ids: Vec<String> = l.objects.iter().map(Object::id).collect();
            assert_eq!(ids, vec!["Pod/ok"], "{:?}", l.warnings);
            assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
            assert!(l.warnings[0].skipped && incomplete(&l.warnings));
            assert_eq!(l.warnings[0].line, 1);
            let m = &l.warnings[0].message;
            assert!(m.contains("after alias expansion") || m.contains("nested deeper"), "{m}");
        }
        // Errors inside a later document name absolute lines.
        let l = load("kind: Pod\nmetadata: {name: a}\n---\nkind: Pod\nmetadata: {name: *nope}\n");
        assert!(l.warnings[0].message.contains("line 5"), "{:?}", l.warnings);
    }

    #[test]
    fn kubectl_decoding_booleans_utf16_and_stray_bytes() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostPID: on\n  containers:\n  - name: c\n    image: nginx\n    securityContext: {privileged: yes, allowPrivilegeEscalation: Y, readOnlyRootFilesystem: OFF}\n";
        let check = |l: &Loaded| {
            assert_eq!(l.objects.len(), 1, "{:?}", l.warnings);
            let v = &l.objects[0].value;
            assert_eq!(v["spec"]["hostPID"], serde_json::json!(true));
            let sc = &v["spec"]["containers"][0]["securityContext"];
            assert_eq!(sc["privileged"], serde_json::json!(true));
            assert_eq!(sc["allowPrivilegeEscalation"], serde_json::json!(true));
            assert_eq!(sc["readOnlyRootFilesystem"], serde_json::json!(false));
        };
        let l = load(pod);
        check(&l);
        assert!(l.warnings.is_empty());
        for be in [false, true] {
            let mut bytes = if be { vec![0xFE, 0xFF] } else { vec![0xFF, 0xFE] };
            for u in pod.encode_utf16() {
                bytes.extend(if be { u.to_be_bytes() } else { u.to_le_bytes() });
            }
            let mut l = Loaded::default();
            load_bytes("u16.yaml", &bytes, &mut l);
            check(&l);
            assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        }
        let stray = pod.replace("image: nginx", "image: nginx\n    # caf\u{e9}").replace('\u{e9}', "\u{fffd}");
        let mut bytes = stray.into_bytes();
        let at = bytes.windows(3).position(|w| w == "\u{fffd}".as_bytes()).unwrap_or(0);
        bytes.splice(at..at + 3, [0xFF]);
        let mut l = Loaded::default();
        load_bytes("bad.yaml", &bytes, &mut l);
        check(&l);
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].message.contains("not valid UTF-8") && !l.warnings[0].skipped, "{:?}", l.warnings);
    }

    #[test]
    fn huge_files_are_refused_by_size_before_reading() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let yaml = dir.path().join("big.yaml");
        let json = dir.path().join("big.json");
        std::fs::write(&yaml, "kind: Pod\nmetadata: {name: a}\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&json, "{\"kind\":\"List\",\"items\":[]}").unwrap_or_else(|e| panic!("{e}"));
        // Sparse: the size is in the metadata, no data is written.
        for (p, len) in [(&yaml, 900_000_000u64), (&json, 1_100_000_000)] {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .and_then(|f| f.set_len(len))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let paths = vec![yaml.clone(), json.clone()];
        let l = load_paths(&paths).unwrap_or_else(|e| panic!("{e}"));
        assert!(l.objects.is_empty());
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
        assert!(l.warnings[0].message.contains("YAML larger than"), "{:?}", l.warnings);
        assert!(l.warnings[1].message.contains("larger than 1073741824"), "{:?}", l.warnings);
        assert!(incomplete(&l.warnings));
        let w = for_each_object(&paths, &mut |_| panic!("nothing is read")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.len(), 2);
        assert!(w.iter().all(|w| w.skipped));
        // Injectable limits: small files, small limits.
        let small = dir.path().join("small.yaml");
        std::fs::write(&small, "kind: Pod\nmetadata: {name: s}\n").unwrap_or_else(|e| panic!("{e}"));
        let limits = SizeLimits { file: 1 << 20, yaml: 10 };
        let l = load_paths_with(std::slice::from_ref(&small), &limits).unwrap_or_else(|e| panic!("{e}"));
        assert!(l.objects.is_empty() && l.warnings[0].message.contains("YAML larger than 10 bytes"));
        let l = load_paths(std::slice::from_ref(&small)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.objects.len(), 1);
    }
}
