//! Sensor configuration and the in-kernel path rule table.

use std::time::Duration;

use serde::Serialize;

use crate::Error;

/// Most rules the kernel table holds.
pub const MAX_RULES: usize = 64;
/// Longest rule pattern, in bytes.
pub const MAX_RULE_LEN: usize = 64;
/// Size of one rule entry in the `path_rules` map (`struct rule` in `sensor.bpf.c`).
pub(crate) const RULE_ENTRY_LEN: usize = 4 + MAX_RULE_LEN;

/// How a [`PathRule`] pattern is compared with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The path starts with the pattern.
    Prefix,
    /// The path ends with the pattern.
    Suffix,
}

/// One entry of the sensitive-path table, matched in the kernel against the path string as
/// the program passed it to open/openat/openat2/unlink/unlinkat/rename*.
///
/// Matching is on the raw argument: relative paths are not resolved, so prefix rules only
/// see absolute paths (suffix rules match relative ones too). Paths longer than 255 bytes are
/// not matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathRule {
    /// The pattern (1 to 64 bytes).
    pub pattern: String,
    /// Prefix or suffix match.
    pub kind: MatchKind,
    /// Report opens only when they may write (`O_WRONLY`, `O_RDWR`, `O_CREAT` or `O_TRUNC`).
    /// Unlink and rename always count as writes.
    pub write_only: bool,
}

impl PathRule {
    /// A prefix rule.
    pub fn prefix(pattern: &str, write_only: bool) -> Self {
        Self { pattern: pattern.to_owned(), kind: MatchKind::Prefix, write_only }
    }

    /// A suffix rule.
    pub fn suffix(pattern: &str, write_only: bool) -> Self {
        Self { pattern: pattern.to_owned(), kind: MatchKind::Suffix, write_only }
    }

    /// The map entry: kind, write_only, len, pad, pattern bytes (NUL padded).
    pub(crate) fn encode(&self) -> Result<[u8; RULE_ENTRY_LEN], Error> {
        let p = self.pattern.as_bytes();
        if p.is_empty() || p.len() > MAX_RULE_LEN || p.contains(&0) {
            return Err(Error::Config(format!(
                "path rule {:?}: the pattern must be 1 to {MAX_RULE_LEN} bytes without NUL",
                self.pattern
            )));
        }
        let mut e = [0u8; RULE_ENTRY_LEN];
        e[0] = match self.kind {
            MatchKind::Prefix => 1,
            MatchKind::Suffix => 2,
        };
        e[1] = u8::from(self.write_only);
        e[2] = p.len() as u8; // <= 64, checked above
        e[4..4 + p.len()].copy_from_slice(p);
        Ok(e)
    }
}

/// First 8 bytes of the prefix rules, last 4 of the suffix rules.
pub(crate) type PrefilterKeys = (Vec<[u8; 8]>, Vec<[u8; 4]>);

/// The kernel prefilter's keys: the first 8 bytes of every prefix rule and the last 4 of every
/// suffix rule (as the kernel reads them from the path), or `None` when a rule is too short
/// for the prefilter (then every path goes through the full table scan).
pub(crate) fn prefilter_keys(rules: &[PathRule]) -> Option<PrefilterKeys> {
    let (mut heads, mut tails) = (Vec::new(), Vec::new());
    for r in rules {
        let p = r.pattern.as_bytes();
        match r.kind {
            MatchKind::Prefix => heads.push(p.get(..8)?.try_into().ok()?),
            MatchKind::Suffix => tails.push(p.get(p.len().checked_sub(4)?..)?.try_into().ok()?),
        }
    }
    Some((heads, tails))
}

/// The default sensitive-path rules.
pub fn default_path_rules() -> Vec<PathRule> {
    use PathRule as R;
    vec![
        R::prefix("/etc/shadow", false),
        R::prefix("/etc/gshadow", false),
        R::prefix("/etc/sudoers", false),
        R::prefix("/etc/ld.so.preload", true),
        R::prefix("/etc/passwd", true),
        R::prefix("/etc/group", true),
        R::prefix("/root/.ssh", false),
        R::prefix("/var/run/secrets/kubernetes.io", false),
        R::prefix("/run/secrets/kubernetes.io", false),
        R::prefix("/proc/sys/kernel/core_pattern", true),
        R::prefix("/sys/fs/cgroup", true),
        R::prefix("/var/log", true),
        R::prefix("/etc/kubernetes", false),
        R::prefix("/var/lib/kubelet", false),
        R::prefix("/etc/crontab", true),
        R::prefix("/etc/cron.d", true),
        R::prefix("/var/run/docker.sock", false),
        R::prefix("/run/containerd", false),
        R::suffix("/.ssh/authorized_keys", true),
        R::suffix("/.bash_history", false),
        R::suffix("/.kube/config", false),
        R::suffix("release_agent", true),
        R::suffix("/id_rsa", false),
    ]
}

/// How the sensor is set up. `Default` gives the documented defaults.
#[derive(Debug, Clone, Serialize)]
pub struct SensorConfig {
    /// Ring-buffer size in bytes; rounded up to a power of two of at least one page.
    /// Default 8 MiB.
    pub ringbuf_bytes: usize,
    /// The sensitive-path table (at most [`MAX_RULES`]). Default: [`default_path_rules`].
    pub path_rules: Vec<PathRule>,
    /// Capacity of the channel between the polling thread and [`crate::Sensor::events`];
    /// events beyond it are dropped and counted (`Health::dropped_user`). Default 65536.
    pub channel_capacity: usize,
    /// How often the ring buffer is drained when the kernel has not woken the consumer (it
    /// wakes it once 32 KiB are waiting): the bound on added latency at low event rates, and
    /// how quickly `stop` is noticed. Default 10 ms.
    pub poll_interval: Duration,
    /// Take the start-up process snapshot. Default true.
    pub snapshot: bool,
    /// Programs not to attach (by name, e.g. `handle_sys_enter`). Default: none.
    pub disabled_programs: Vec<String>,
}

impl Default for SensorConfig {
    fn default() -> Self {
        Self {
            ringbuf_bytes: 8 << 20,
            path_rules: default_path_rules(),
            channel_capacity: 65_536,
            poll_interval: Duration::from_millis(10),
            snapshot: true,
            disabled_programs: Vec::new(),
        }
    }
}

impl SensorConfig {
    /// Check the configuration; [`crate::Sensor::start`] calls this.
    pub fn validate(&self) -> Result<(), Error> {
        if self.path_rules.len() > MAX_RULES {
            return Err(Error::Config(format!(
                "{} path rules given, the kernel table holds {MAX_RULES}",
                self.path_rules.len()
            )));
        }
        for r in &self.path_rules {
            r.encode()?;
        }
        if self.ringbuf_bytes > 1 << 30 {
            return Err(Error::Config(format!("ringbuf_bytes {} is over the 1 GiB limit", self.ringbuf_bytes)));
        }
        if self.channel_capacity == 0 {
            return Err(Error::Config("channel_capacity must be at least 1".into()));
        }
        Ok(())
    }

    /// The ring-buffer size actually used: a power of two, at least 4096.
    pub fn effective_ringbuf_bytes(&self) -> usize {
        self.ringbuf_bytes.max(4096).next_power_of_two()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefilter_keys_cover_the_defaults() {
        let (heads, tails) = prefilter_keys(&default_path_rules()).unwrap_or_default();
        assert!(heads.contains(b"/etc/sha") && heads.contains(b"/var/run"));
        assert!(tails.contains(b"_rsa") && tails.contains(b"keys"));
        assert_eq!(heads.len() + tails.len(), default_path_rules().len());
        // a short rule turns the prefilter off rather than missing matches
        assert!(prefilter_keys(&[PathRule::prefix("/tmp", false)]).is_none());
        assert!(prefilter_keys(&[PathRule::suffix(".so", false)]).is_none());
    }

    #[test]
    fn defaults_are_valid() {
        let c = SensorConfig::default();
        c.validate().expect("valid");
        assert_eq!(c.effective_ringbuf_bytes(), 8 << 20);
        assert_eq!(c.path_rules.len(), 23);
    }

    #[test]
    fn rule_encoding() {
        let e = PathRule::suffix("/id_rsa", true).encode().expect("encode");
        assert_eq!(&e[..4], &[2, 1, 7, 0]);
        assert_eq!(&e[4..11], b"/id_rsa");
        assert!(e[11..].iter().all(|&b| b == 0));
        assert!(PathRule::prefix("", false).encode().is_err());
        assert!(PathRule::prefix(&"x".repeat(65), false).encode().is_err());
        let c = SensorConfig { path_rules: vec![PathRule::prefix("/a", false); 65], ..SensorConfig::default() };
        assert!(c.validate().is_err());
    }

    #[test]
    fn ringbuf_rounding() {
        let c = SensorConfig { ringbuf_bytes: 5000, ..SensorConfig::default() };
        assert_eq!(c.effective_ringbuf_bytes(), 8192);
        let c = SensorConfig { ringbuf_bytes: 0, ..SensorConfig::default() };
        assert_eq!(c.effective_ringbuf_bytes(), 4096);
    }
}
