//! Small helpers for reading untrusted JSON without panicking.

use serde_json::Value;

/// Escape one JSON pointer reference token (RFC 6901).
pub fn esc(token: &str) -> String {
    if token.contains('~') || token.contains('/') {
        token.replace('~', "~0").replace('/', "~1")
    } else {
        token.to_string()
    }
}

/// `v[key]` as a bool, only when it really is a JSON bool.
pub fn get_bool(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

/// `v[key]` as a str.
pub fn get_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `v[key]` as an object value (None when absent or not an object).
pub fn get_obj<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| x.is_object())
}

/// `v[key]` as an array slice (empty when absent or not an array).
pub fn get_arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// An integer that may be written as a number or a numeric string.
pub fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Strings of an array (non-strings skipped).
pub fn str_list<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    get_arr(v, key).iter().filter_map(Value::as_str).collect()
}

/// Whether an object is in a "system" RBAC set (bootstrap defaults).
pub fn is_bootstrap_rbac(value: &Value, name: &str, cluster_scoped: bool) -> bool {
    let bootstrap = value
        .pointer("/metadata/labels/kubernetes.io~1bootstrapping")
        .and_then(Value::as_str)
        .map(|s| s == "rbac-defaults")
        .unwrap_or(false);
    bootstrap || (cluster_scoped && name.starts_with("system:"))
}

/// A parsed container image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (Docker Hub normalised to `docker.io`).
    pub registry: String,
    /// Repository path (Docker Hub official images get `library/`).
    pub repository: String,
    /// Tag, when present.
    pub tag: Option<String>,
    /// Digest, when present.
    pub digest: Option<String>,
}

/// Parse an image reference the way the container runtimes do (Docker Hub defaults).
pub fn parse_image(image: &str) -> Option<ImageRef> {
    let image = image.trim();
    if image.is_empty() {
        return None;
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d.to_string())),
        None => (image, None),
    };
    // The tag is after the last ':' that follows the last '/'.
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(rest[last_slash + i + 1..].to_string())),
        None => (rest, None),
    };
    let (registry, repository) = match name.split_once('/') {
        Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first.to_ascii_lowercase(), path.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_string(),
        _ => registry,
    };
    let repository =
        if registry == "docker.io" && !repository.contains('/') { format!("library/{repository}") } else { repository };
    Some(ImageRef { registry, repository, tag: tag.filter(|t| !t.is_empty()), digest })
}

/// Whether `image` comes from one of `trusted` (registries or repository prefixes).
pub fn image_trusted(image: &ImageRef, trusted: &[String]) -> bool {
    let full = format!("{}/{}", image.registry, image.repository);
    trusted.iter().any(|t| {
        let t = t.trim().trim_end_matches('/');
        if t.is_empty() {
            return false;
        }
        let t = t.strip_prefix("https://").or_else(|| t.strip_prefix("http://")).unwrap_or(t);
        let t_norm = match parse_trusted(t) {
            Some(n) => n,
            None => return false,
        };
        full == t_norm || full.starts_with(&format!("{t_norm}/"))
    })
}

fn parse_trusted(t: &str) -> Option<String> {
    let t = t.to_string();
    let (first, rest) = match t.split_once('/') {
        Some((a, b)) => (a.to_string(), Some(b.to_string())),
        None => (t.clone(), None),
    };
    let first_l = first.to_ascii_lowercase();
    let first_norm = match first_l.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_string(),
        _ => first_l,
    };
    Some(match rest {
        Some(r) => format!("{first_norm}/{r}"),
        None => first_norm,
    })
}

/// Command-line flags of a process: `--name=value`, `--name value` and bare `--name` (`"true"`).
#[derive(Debug, Default)]
pub struct Flags {
    /// (name without dashes, value, index into the combined argv, whether it came from `args`).
    pub items: Vec<(String, String, usize, bool)>,
}

impl Flags {
    /// Parse `command[1..]` then `args` (or `command[skip..]`).
    pub fn parse(command: &[Value], args: &[Value], skip: usize) -> Flags {
        let mut items = Vec::new();
        let tokens: Vec<(usize, bool, &str)> = command
            .iter()
            .enumerate()
            .skip(skip)
            .filter_map(|(i, v)| v.as_str().map(|s| (i, false, s)))
            .chain(args.iter().enumerate().filter_map(|(i, v)| v.as_str().map(|s| (i, true, s))))
            .collect();
        let mut k = 0;
        while k < tokens.len() {
            let (idx, in_args, tok) = tokens[k];
            // A shell wrapper (`sh -c "kube-apiserver --a=b ..."`) is split into words.
            if let Some(body) = tok.strip_prefix("--").or_else(|| tok.strip_prefix('-').filter(|b| !b.is_empty())) {
                if let Some((n, v)) = body.split_once('=') {
                    items.push((n.to_string(), v.to_string(), idx, in_args));
                } else if k + 1 < tokens.len()
                    && !tokens[k + 1].2.starts_with('-')
                    && !tokens[k + 1].2.contains(" --")
                    && tokens[k + 1].1 == in_args
                {
                    items.push((body.to_string(), tokens[k + 1].2.to_string(), idx, in_args));
                    k += 1;
                } else {
                    items.push((body.to_string(), "true".to_string(), idx, in_args));
                }
            } else if tok.contains(" --") {
                for word in tok.split_whitespace() {
                    if let Some(body) = word.strip_prefix("--") {
                        let (n, v) = body.split_once('=').unwrap_or((body, "true"));
                        items.push((n.to_string(), v.to_string(), idx, in_args));
                    }
                }
            }
            k += 1;
        }
        Flags { items }
    }

    /// The last value of a flag (the one the process uses).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.items.iter().rev().find(|(n, ..)| n == name).map(|(_, v, ..)| v.as_str())
    }

    /// Where a flag is: (index, in args).
    pub fn position(&self, name: &str) -> Option<(usize, bool)> {
        self.items.iter().rev().find(|(n, ..)| n == name).map(|(_, _, i, a)| (*i, *a))
    }

    /// Comma-separated list value of a flag.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.get(name).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
    }

    /// Add a flag taken from an environment variable (etcd's `ETCD_*`), when not given as a flag.
    pub fn add_env(&mut self, name: &str, value: &str, idx: usize) {
        if self.get(name).is_none() {
            self.items.push((name.to_string(), value.to_string(), idx, false));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_parsing() {
        let i = parse_image("nginx").unwrap();
        assert_eq!(
            (i.registry.as_str(), i.repository.as_str(), i.tag.as_deref()),
            ("docker.io", "library/nginx", None)
        );
        let i = parse_image("localhost:5000/a/b:1.2@sha256:abc").unwrap();
        assert_eq!(i.registry, "localhost:5000");
        assert_eq!(i.tag.as_deref(), Some("1.2"));
        assert_eq!(i.digest.as_deref(), Some("sha256:abc"));
        let i = parse_image("registry.k8s.io/kube-apiserver:v1.30.0").unwrap();
        assert_eq!(i.registry, "registry.k8s.io");
        assert!(image_trusted(&i, &["registry.k8s.io".into()]));
        assert!(!image_trusted(&i, &["registry.k8s.io/other".into()]));
        let i = parse_image("ghcr.io/acme/app:1").unwrap();
        assert!(image_trusted(&i, &["ghcr.io/acme".into()]));
        assert!(!image_trusted(&i, &["ghcr.io/acm".into()]));
        let i = parse_image("library/busybox").unwrap();
        assert!(image_trusted(&i, &["docker.io/library".into()]));
        assert!(parse_image("  ").is_none());
    }

    #[test]
    fn flag_parsing() {
        let cmd = vec![json!("kube-apiserver"), json!("--a=1"), json!("--b"), json!("2"), json!("--c"), json!(5)];
        let args = vec![json!("--d=x,y"), json!("-v=2")];
        let f = Flags::parse(&cmd, &args, 1);
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), Some("2"));
        assert_eq!(f.get("c"), Some("true"));
        assert_eq!(f.list("d"), vec!["x", "y"]);
        assert_eq!(f.position("d"), Some((0, true)));
        assert_eq!(f.get("v"), Some("2"));
        let f = Flags::parse(&[json!("sh"), json!("-c"), json!("kube-scheduler --profiling=false --x")], &[], 1);
        assert_eq!(f.get("profiling"), Some("false"));
    }

    #[test]
    fn pointer_escape() {
        assert_eq!(esc("a/b~c"), "a~1b~0c");
        assert_eq!(esc("plain"), "plain");
    }
}
