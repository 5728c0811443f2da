//! Reading Kubernetes objects from manifests: YAML (multi-document, Helm-rendered), JSON,
//! `kind: List` and `kubectl get -o json` dumps, directories (recursively) and stdin.
//!
//! Every object keeps its file and the line its document starts on. A document that does not
//! parse, or is not a Kubernetes object, becomes a warning naming file and line; the rest of
//! the file is still read.

use crate::object::{Object, Origin};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Largest single file read.
pub const MAX_FILE: u64 = 1 << 30;
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
    let mut out = Loaded::default();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut data = Vec::new();
            use std::io::Read;
            std::io::stdin()
                .lock()
                .take(MAX_FILE)
                .read_to_end(&mut data)
                .map_err(|e| LoadError::Io { path: p.clone(), error: e })?;
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
                        out.warnings.push(LoadWarning {
                            file: d.display().to_string(),
                            line: 0,
                            message: e.to_string(),
                        });
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
                load_file(&f, &mut out);
            }
        } else {
            load_file(p, &mut out);
        }
    }
    Ok(out)
}

fn load_file(p: &Path, out: &mut Loaded) {
    let name = p.display().to_string();
    match std::fs::metadata(p) {
        Ok(m) if m.len() > MAX_FILE => {
            out.warnings.push(LoadWarning {
                file: name,
                line: 0,
                message: format!("larger than {MAX_FILE} bytes; skipped"),
            });
            return;
        }
        Err(e) => {
            out.warnings.push(LoadWarning { file: name, line: 0, message: e.to_string() });
            return;
        }
        _ => {}
    }
    match std::fs::read(p) {
        Ok(data) => load_bytes(&name, &data, out),
        Err(e) => out.warnings.push(LoadWarning { file: name, line: 0, message: e.to_string() }),
    }
}

/// Stream every object of `paths` to `f` without keeping them: a large `kubectl get -o json`
/// dump is parsed item by item, so memory stays at one object (plus what `f` keeps).
/// Warnings are returned.
pub fn for_each_object(paths: &[PathBuf], f: &mut dyn FnMut(Object)) -> Result<Vec<LoadWarning>, LoadError> {
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
                .take(MAX_FILE)
                .read_to_end(&mut data)
                .map_err(|e| LoadError::Io { path: p.clone(), error: e })?;
            data
        } else {
            match std::fs::read(&p) {
                Ok(d) => d,
                Err(e) => return Err(LoadError::Io { path: p.clone(), error: e }),
            }
        };
        let trimmed = data.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &data[i..]).unwrap_or(&[]);
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
        w.push(LoadWarning { file: file.into(), line: e.line(), message: format!("invalid JSON: {e}") });
    }
    w
}

/// Parse one file's content (YAML or JSON) into objects.
pub fn load_bytes(file: &str, data: &[u8], out: &mut Loaded) {
    out.files += 1;
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) => {
            out.warnings.push(LoadWarning { file: file.into(), line: 0, message: format!("not UTF-8: {e}") });
            return;
        }
    };
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON: one document (an object, a List dump, or an array of objects).
        match serde_json::from_str::<Value>(trimmed) {
            Ok(v) => take(file, 1, v, out),
            Err(e) => out.warnings.push(LoadWarning {
                file: file.into(),
                line: e.line(),
                message: format!("invalid JSON: {e}"),
            }),
        }
        return;
    }
    for (line, doc) in yaml_documents(text) {
        if doc.trim().is_empty() || doc.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            continue;
        }
        match serde_yaml::from_str::<Value>(doc) {
            Ok(Value::Null) => {}
            Ok(v) => take(file, line, v, out),
            Err(e) => {
                // serde_yaml's location is relative to the document: make it absolute.
                let msg = match e.location() {
                    Some(l) => {
                        let text = e.to_string();
                        let text = text.split(" at line ").next().unwrap_or(&text).to_string();
                        format!(
                            "invalid YAML at line {}, column {}: {text}",
                            line + l.line().saturating_sub(1),
                            l.column()
                        )
                    }
                    None => format!("invalid YAML: {e}"),
                };
                out.warnings.push(LoadWarning { file: file.into(), line, message: msg });
            }
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
            out.warnings.push(LoadWarning {
                file: file.into(),
                line,
                message: format!("more than {MAX_OBJECTS} objects; the rest are ignored"),
            });
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
                    None => out.warnings.push(LoadWarning {
                        file: file.into(),
                        line,
                        message: "not a Kubernetes object (no kind, or no metadata.name)".into(),
                    }),
                }
            }
            other => out.warnings.push(LoadWarning {
                file: file.into(),
                line,
                message: format!(
                    "not a Kubernetes object (a {})",
                    match other {
                        Value::String(_) => "string",
                        Value::Number(_) => "number",
                        Value::Bool(_) => "boolean",
                        _ => "scalar",
                    }
                ),
            }),
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
        std::fs::write(dir.path().join("y.yaml"), "kind: Pod\nmetadata: {name: y}\n").unwrap_or_else(|e| panic!("{e}"));
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
}
