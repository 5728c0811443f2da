//! Container attribution: which container (and pod) a task belongs to.
//!
//! The kernel side reports each task's cgroup leaf name and mount namespace. Runtimes name that
//! leaf after the container:
//!
//! | runtime | cgroup leaf |
//! |---|---|
//! | containerd (CRI, systemd driver) | `cri-containerd-<id>.scope` |
//! | CRI-O | `crio-<id>.scope` (`crio-conmon-<id>.scope` is the monitor, not the container) |
//! | Docker | `docker-<id>.scope` |
//! | Podman | `libpod-<id>.scope` (`libpod-conmon-…` is the monitor) |
//! | cgroupfs drivers, plain runc | `<id>` (whatever `cgroupsPath` ends in) |
//!
//! [`parse_cgroup_leaf`] turns the name into `(runtime, id)` — pure. [`Resolver`] then looks
//! the id up in the runtimes' state directories to learn the container name, image, pod and
//! namespace from the OCI annotations that CRI runtimes write (`io.kubernetes.cri.*` for
//! containerd, `io.kubernetes.pod.*` / `io.kubernetes.cri-o.*` for CRI-O), caching the answer.
//! A task whose leaf names no container but whose mount namespace differs from the host's is
//! still a container (runtime `unknown`); everything else is the host.

use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What is known about a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContainerInfo {
    /// Container id (as the runtime names it).
    pub id: String,
    /// `containerd`, `crio`, `docker`, `podman`, `runc` or `unknown`.
    pub runtime: String,
    /// Container name (Kubernetes container name when known).
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Pod name.
    pub pod: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod UID.
    pub pod_uid: String,
    /// Bundle directory (the OCI runtime bundle), when found.
    pub bundle: String,
    /// Pod labels the runtime recorded (CRI-O's `io.kubernetes.cri-o.Labels`); empty otherwise.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Splits a cgroup leaf name into `(runtime, container id)`; `None` for non-container cgroups.
pub fn parse_cgroup_leaf(leaf: &str) -> Option<(&'static str, String)> {
    let stem = leaf.strip_suffix(".scope").unwrap_or(leaf);
    for (prefix, runtime) in
        [("cri-containerd-", "containerd"), ("crio-", "crio"), ("docker-", "docker"), ("libpod-", "podman")]
    {
        if let Some(id) = stem.strip_prefix(prefix) {
            if id.starts_with("conmon-") || id.is_empty() {
                return None;
            }
            return Some((runtime, id.to_string()));
        }
    }
    // cgroupfs drivers use the bare 64-hex id
    if stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(("unknown", stem.to_string()));
    }
    None
}

/// Where runtimes keep per-container state (`<root>/<id>/state.json` for runc-style runtimes).
const RUNC_ROOTS: &[&str] = &[
    "/run/containerd/runc/k8s.io",
    "/run/containerd/runc/moby",
    "/run/containerd/runc/default",
    "/run/runc",
    "/run/docker/runtime-runc/moby",
    "/run/crun",
];
const PODMAN_ROOTS: &[&str] =
    &["/run/containers/storage/overlay-containers", "/var/lib/containers/storage/overlay-containers"];

/// Looks containers up in the runtimes' state and caches what it finds.
#[derive(Debug)]
pub struct Resolver {
    root: PathBuf,
    host_mntns: u32,
    cache: HashMap<String, Option<ContainerInfo>>,
    /// Leaf names that named no runc container when last looked up (host cgroups such as
    /// `session-1.scope`): not looked up again for [`MISS_TTL`], so host events do not stat
    /// the state directories each time.
    misses: HashMap<String, std::time::Instant>,
    max_cache: usize,
}

/// How long a leaf name that named no container is believed (a runc container's state file can
/// appear just after its first process starts).
const MISS_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl Resolver {
    /// A resolver reading state under `root` (`/` on a node; a test directory in tests), with
    /// the host's mount namespace inode (`/proc/1/ns/mnt`).
    pub fn new(root: &Path, host_mntns: u32) -> Resolver {
        Resolver {
            root: root.to_path_buf(),
            host_mntns,
            cache: HashMap::new(),
            misses: HashMap::new(),
            max_cache: 4096,
        }
    }

    /// The host's mount namespace inode, read from `/proc/1/ns/mnt` (0 if unreadable).
    pub fn host_mntns() -> u32 {
        std::fs::read_link("/proc/1/ns/mnt")
            .ok()
            .and_then(|p| {
                let s = p.to_string_lossy().into_owned();
                s.strip_prefix("mnt:[").and_then(|r| r.strip_suffix(']')).and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    }

    /// The container of a task with this cgroup leaf and mount namespace; `None` for the host.
    pub fn resolve(&mut self, cgroup_leaf: &str, mntns: u32) -> Option<ContainerInfo> {
        if let Some(hit) = self.cache.get(cgroup_leaf) {
            if hit.is_some() || mntns == self.host_mntns || self.host_mntns == 0 {
                return hit.clone();
            }
        }
        let found = match parse_cgroup_leaf(cgroup_leaf) {
            Some((runtime, id)) => Some(self.lookup(runtime, &id)),
            None if self.misses.get(cgroup_leaf).is_some_and(|t| t.elapsed() < MISS_TTL) => None,
            // plain runc: the leaf is whatever cgroupsPath said; the state directory tells
            None => {
                let hit = self.runc_state(cgroup_leaf).map(|_| self.lookup("runc", cgroup_leaf));
                if hit.is_none() {
                    if self.misses.len() >= self.max_cache {
                        self.misses.clear();
                    }
                    self.misses.insert(cgroup_leaf.to_string(), std::time::Instant::now());
                }
                hit
            }
        };
        let found = found.or_else(|| {
            (self.host_mntns != 0 && mntns != 0 && mntns != self.host_mntns).then(|| ContainerInfo {
                id: format!("mntns-{mntns}"),
                runtime: "unknown".into(),
                ..ContainerInfo::default()
            })
        });
        if self.cache.len() >= self.max_cache {
            self.cache.clear();
        }
        // only cache names that identify a container by themselves
        if parse_cgroup_leaf(cgroup_leaf).is_some() || found.as_ref().is_some_and(|c| c.runtime == "runc") {
            self.cache.insert(cgroup_leaf.to_string(), found.clone());
        }
        found
    }

    /// A container already resolved, by id.
    pub fn cached(&self, container_id: &str) -> Option<ContainerInfo> {
        self.cache.values().flatten().find(|c| c.id == container_id).cloned()
    }

    /// Forgets a container (its cgroup went away).
    pub fn forget(&mut self, cgroup_leaf: &str) {
        self.cache.remove(cgroup_leaf);
        self.misses.remove(cgroup_leaf);
    }

    fn runc_state(&self, id: &str) -> Option<(PathBuf, Value)> {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return None;
        }
        for r in RUNC_ROOTS {
            let p = self.root.join(r.trim_start_matches('/')).join(id).join("state.json");
            if let Some(v) = read_json(&p) {
                return Some((p, v));
            }
        }
        None
    }

    fn lookup(&self, runtime: &str, id: &str) -> ContainerInfo {
        let mut info = ContainerInfo { id: id.to_string(), runtime: runtime.to_string(), ..ContainerInfo::default() };
        let mut annotations = serde_json::Map::new();
        if let Some((_, state)) = self.runc_state(id) {
            if info.runtime == "unknown" {
                info.runtime = "runc".into();
            }
            // runc keeps `bundle=<dir>` among the config labels
            let bundle = state
                .pointer("/config/labels")
                .and_then(Value::as_array)
                .and_then(|l| l.iter().filter_map(Value::as_str).find_map(|s| s.strip_prefix("bundle=")))
                .map(str::to_string)
                .or_else(|| state.get("bundle").and_then(Value::as_str).map(str::to_string));
            if let Some(b) = bundle {
                if let Some(cfg) = read_json(&self.root.join(b.trim_start_matches('/')).join("config.json")) {
                    if let Some(a) = cfg.get("annotations").and_then(Value::as_object) {
                        annotations.extend(a.clone());
                    }
                }
                info.bundle = b;
            }
        } else if runtime == "podman" {
            for r in PODMAN_ROOTS {
                let p = self.root.join(r.trim_start_matches('/')).join(id).join("userdata/config.json");
                if let Some(cfg) = read_json(&p) {
                    if let Some(a) = cfg.get("annotations").and_then(Value::as_object) {
                        annotations.extend(a.clone());
                    }
                    break;
                }
            }
        }
        let a = |keys: &[&str]| {
            keys.iter().find_map(|k| annotations.get(*k).and_then(Value::as_str)).unwrap_or("").to_string()
        };
        info.pod = a(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]);
        info.namespace = a(&["io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"]);
        info.pod_uid = a(&["io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"]);
        info.name =
            a(&["io.kubernetes.cri.container-name", "io.kubernetes.container.name", "io.podman.annotations.name"]);
        info.image =
            a(&["io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName", "org.opencontainers.image.ref.name"]);
        info.labels = serde_json::from_str(&a(&["io.kubernetes.cri-o.Labels"])).unwrap_or_default();
        if info.name.is_empty() {
            info.name = id.chars().take(12).collect();
        }
        info
    }
}

/// Reads a small JSON state file (at most 4 MiB; anything else is ignored).
fn read_json(p: &Path) -> Option<Value> {
    let meta = std::fs::metadata(p).ok()?;
    if !meta.is_file() || meta.len() > 4 << 20 {
        return None;
    }
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8f3c1a0b9e7d6c5b4a3928171615141312111009080706050403020100ffeedd";

    #[test]
    fn cgroup_leaves() {
        assert_eq!(parse_cgroup_leaf(&format!("cri-containerd-{ID}.scope")), Some(("containerd", ID.to_string())));
        assert_eq!(parse_cgroup_leaf(&format!("crio-{ID}.scope")), Some(("crio", ID.to_string())));
        assert_eq!(parse_cgroup_leaf(&format!("crio-conmon-{ID}.scope")), None);
        assert_eq!(parse_cgroup_leaf(&format!("libpod-{ID}.scope")), Some(("podman", ID.to_string())));
        assert_eq!(parse_cgroup_leaf(&format!("docker-{ID}.scope")), Some(("docker", ID.to_string())));
        assert_eq!(parse_cgroup_leaf(ID), Some(("unknown", ID.to_string())));
        for host in ["", "user@0.service", "session-3.scope", "system.slice", "kubepods-besteffort.slice"] {
            assert_eq!(parse_cgroup_leaf(host), None, "{host}");
        }
    }

    #[test]
    fn resolves_cri_annotations_from_runc_state() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        let state = root.join("run/containerd/runc/k8s.io").join(ID);
        std::fs::create_dir_all(&state).ok();
        let bundle = format!("/run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}");
        std::fs::create_dir_all(root.join(bundle.trim_start_matches('/'))).ok();
        std::fs::write(
            state.join("state.json"),
            serde_json::to_vec(&serde_json::json!({"id": ID, "config": {"labels": [format!("bundle={bundle}")]}}))
                .unwrap_or_default(),
        )
        .ok();
        std::fs::write(
            root.join(bundle.trim_start_matches('/')).join("config.json"),
            serde_json::to_vec(&serde_json::json!({"annotations": {
                "io.kubernetes.cri.container-name": "api", "io.kubernetes.cri.sandbox-name": "api-7d4b9",
                "io.kubernetes.cri.sandbox-namespace": "shop", "io.kubernetes.cri.image-name": "ghcr.io/acme/api:1.2",
                "io.kubernetes.cri-o.Labels": "{\"app\":\"api\"}"}}))
            .unwrap_or_default(),
        )
        .ok();
        let mut r = Resolver::new(root, 4026531840);
        let c = r.resolve(&format!("cri-containerd-{ID}.scope"), 4026532000).unwrap_or_default();
        assert_eq!((c.runtime.as_str(), c.name.as_str(), c.pod.as_str()), ("containerd", "api", "api-7d4b9"));
        assert_eq!((c.namespace.as_str(), c.image.as_str()), ("shop", "ghcr.io/acme/api:1.2"));
        assert_eq!(c.labels.get("app").map(String::as_str), Some("api"));
        // host: no container leaf, host mount namespace
        assert_eq!(r.resolve("session-1.scope", 4026531840), None);
        // an unknown leaf in another mount namespace is still a container
        assert_eq!(r.resolve("session-1.scope", 4026532999).map(|c| c.runtime), Some("unknown".to_string()));
        // hostile names never leave the state roots
        assert_eq!(r.resolve("../../etc", 4026531840), None);
    }
}
