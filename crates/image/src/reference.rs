//! Image references and skopeo-style transports.
//!
//! `oci:DIR[:TAG]`, `docker-archive:FILE`, `dir:PATH`, `docker://REF` and a
//! bare registry reference such as `127.0.0.1:5000/team/app:1.0`,
//! `alpine:3.19` or `host/app@sha256:...`.

use crate::error::{ImageError, Result};
use std::fmt;
use std::path::PathBuf;

/// Docker Hub's registry host, used for references without a host.
pub const DOCKER_HUB: &str = "registry-1.docker.io";

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A registry speaking the OCI Distribution API.
    Registry(RegistryRef),
    /// An OCI image layout directory, with an optional tag (`org.opencontainers.image.ref.name`).
    OciLayout {
        /// Layout directory.
        dir: PathBuf,
        /// Tag, if given.
        tag: Option<String>,
    },
    /// A `docker save` / skopeo docker-archive tarball, gzip or not.
    DockerArchive {
        /// Archive file.
        file: PathBuf,
    },
    /// A root filesystem directory.
    Dir {
        /// Root directory.
        root: PathBuf,
    },
}

impl Transport {
    /// Parse a transport string as the CLI accepts it.
    pub fn parse(s: &str) -> Result<Transport> {
        let bad = |reason: &str| ImageError::InvalidReference { reference: s.to_string(), reason: reason.to_string() };
        if let Some(rest) = s.strip_prefix("oci:") {
            if rest.is_empty() {
                return Err(bad("missing directory after oci:"));
            }
            // oci:DIR:TAG — like skopeo, the directory ends at the first ':'; tags may contain ':'.
            // A directory whose own name contains ':' is recognised when it exists.
            let (dir, tag) = if std::path::Path::new(rest).is_dir() {
                (rest, None)
            } else {
                let existing = rest
                    .match_indices(':')
                    .map(|(i, _)| (&rest[..i], &rest[i + 1..]))
                    .find(|(d, _)| std::path::Path::new(d).is_dir());
                match existing.or_else(|| rest.split_once(':')) {
                    Some((d, t)) if !d.is_empty() => (d, Some(t.to_string())),
                    _ => (rest, None),
                }
            };
            return Ok(Transport::OciLayout { dir: PathBuf::from(dir), tag: tag.filter(|t| !t.is_empty()) });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            if rest.is_empty() {
                return Err(bad("missing file after docker-archive:"));
            }
            // skopeo allows docker-archive:FILE:REF; we read the first image, so drop a trailing ref.
            let file = match rest.split_once(':') {
                Some((f, _)) if std::path::Path::new(f).exists() => f,
                _ => rest,
            };
            return Ok(Transport::DockerArchive { file: PathBuf::from(file) });
        }
        if let Some(rest) = s.strip_prefix("dir:") {
            if rest.is_empty() {
                return Err(bad("missing path after dir:"));
            }
            return Ok(Transport::Dir { root: PathBuf::from(rest) });
        }
        let r = s.strip_prefix("docker://").unwrap_or(s);
        Ok(Transport::Registry(RegistryRef::parse(r)?))
    }
}

/// A parsed registry reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// Registry host (and port), e.g. `127.0.0.1:5000`, `registry-1.docker.io`.
    pub registry: String,
    /// Repository path, e.g. `library/alpine`.
    pub repository: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Digest, if any (`sha256:...`).
    pub digest: Option<String>,
}

impl RegistryRef {
    /// Parse `[host[:port]/]path[:tag][@digest]`, applying Docker Hub defaults.
    pub fn parse(s: &str) -> Result<RegistryRef> {
        let bad = |reason: &str| ImageError::InvalidReference { reference: s.to_string(), reason: reason.to_string() };
        if s.is_empty() {
            return Err(bad("empty reference"));
        }
        if s.len() > 4096 {
            return Err(bad("reference too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                validate_digest(d).map_err(|e| bad(&e))?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (host, path) = match rest.split_once('/') {
            Some((h, p)) if h.contains('.') || h.contains(':') || h == "localhost" => (h.to_string(), p.to_string()),
            _ => (DOCKER_HUB.to_string(), rest.to_string()),
        };
        let (path, tag) = match path.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p.to_string(), Some(t.to_string())),
            _ => (path, None),
        };
        if path.is_empty() {
            return Err(bad("missing repository"));
        }
        let valid_path = path.split('/').all(|c| {
            !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
        if !valid_path {
            return Err(bad("repository must be lower-case components [a-z0-9._-] separated by '/'"));
        }
        if let Some(t) = &tag {
            let ok =
                !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(bad("invalid tag"));
            }
        }
        let repository = if host == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path };
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Ok(RegistryRef { registry: host, repository, tag, digest })
    }

    /// The manifest reference to request: the digest when given, else the tag.
    pub fn reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// Whether the host is a loopback address (plain HTTP is tried there, as Docker does):
    /// only `localhost` or an IP literal in a loopback range (`127.0.0.0/8`, `[::1]`), never a
    /// name that merely looks like one (`127.evil.test`).
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Whether `host[:port]` is `localhost` or a loopback IP literal (`127.0.0.0/8`, `[::1]`).
pub fn is_loopback_host(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, _)) => h,
            None => return false,
        }
    } else {
        host_port.rsplit_once(':').map(|(h, _)| h).unwrap_or(host_port)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Check a digest string `algo:hex` (sha256 and sha512 are accepted).
pub fn validate_digest(d: &str) -> std::result::Result<(), String> {
    let (algo, hex) = d.split_once(':').ok_or_else(|| format!("digest {d:?} lacks an algorithm"))?;
    let len = match algo {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm {algo:?}")),
    };
    if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("malformed digest {d:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        assert_eq!(
            Transport::parse("oci:/nonexistent/x:app:1.0").unwrap_or_else(|e| panic!("{e}")),
            Transport::OciLayout { dir: "/nonexistent/x".into(), tag: Some("app:1.0".into()) }
        );
        assert_eq!(
            Transport::parse("oci:/nonexistent/x").unwrap_or_else(|e| panic!("{e}")),
            Transport::OciLayout { dir: "/nonexistent/x".into(), tag: None }
        );
        assert_eq!(Transport::parse("dir:/").unwrap_or_else(|e| panic!("{e}")), Transport::Dir { root: "/".into() });
        let r = RegistryRef::parse("alpine:3.19").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.registry, DOCKER_HUB);
        assert_eq!(r.repository, "library/alpine");
        assert_eq!(r.tag.as_deref(), Some("3.19"));
        let r = RegistryRef::parse("127.0.0.1:5000/team/app:1.0").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.registry.as_str(), r.repository.as_str(), r.reference()), ("127.0.0.1:5000", "team/app", "1.0"));
        assert!(r.is_loopback());
        let d = format!("sha256:{}", "a".repeat(64));
        let r = RegistryRef::parse(&format!("host.io/app@{d}")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.reference(), d);
        assert_eq!(r.tag, None);
        let r = RegistryRef::parse("localhost:5000/app").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.tag.as_deref(), Some("latest"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "Host.io/App:1", "host.io/app@sha256:xyz", "a//b", "host.io/app:bad tag", "host.io/app@md5:00"]
        {
            assert!(RegistryRef::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn loopback_is_decided_from_literals_only() {
        for yes in ["localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "LOCALHOST"] {
            assert!(is_loopback_host(yes), "{yes}");
        }
        for no in ["127.evil.test", "127.0.0.1.nip.io:5000", "localhost.evil.test", "[::2]:5000", "10.0.0.1", "[::1"] {
            assert!(!is_loopback_host(no), "{no}");
        }
    }
}
