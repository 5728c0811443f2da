//! The typed event model shared by every data source.
//!
//! An [`Event`] is either a Kubernetes audit event ([`AuditEvent`], the agentless source) or a
//! node sensor event ([`SensorEvent`]: process, file and network activity, filled in by the node
//! sensor later). Both carry the same [`Entity`] fields (cluster, namespace, pod, container,
//! image) once resolved, so alerts, incidents and sinks treat them alike.
//!
//! Audit events borrow from the text they were parsed from (`'a`): strings without JSON escapes
//! are not copied, and `requestObject` / `responseObject` stay raw JSON until a rule needs them.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

/// A string borrowed from the input where possible (no JSON escapes), owned otherwise.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'a> Str<'a> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// An owned copy that no longer borrows the input.
    pub fn into_static(self) -> Str<'static> {
        Str(Cow::Owned(self.0.into_owned()))
    }
}

impl Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Self {
        Str(Cow::Borrowed(s))
    }
}

impl From<String> for Str<'_> {
    fn from(s: String) -> Self {
        Str(Cow::Owned(s))
    }
}

impl Serialize for Str<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
            // Tolerate `null` where a string is expected: it reads as "".
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Str::default())
            }
        }
        d.deserialize_str(V)
    }
}

/// The audit stage an event was recorded at (`stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Stage {
    /// The apiserver received the request, before it was handled.
    RequestReceived,
    /// Response headers were sent (long-running requests: watch, exec, attach).
    ResponseStarted,
    /// The response body was sent.
    ResponseComplete,
    /// The handler panicked.
    Panic,
}

impl Stage {
    /// Parses the stage name as kube-apiserver writes it.
    pub fn parse(s: &str) -> Option<Stage> {
        Some(match s {
            "RequestReceived" => Stage::RequestReceived,
            "ResponseStarted" => Stage::ResponseStarted,
            "ResponseComplete" => Stage::ResponseComplete,
            "Panic" => Stage::Panic,
            _ => return None,
        })
    }
    /// The name as kube-apiserver writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }
}

/// `user` / `impersonatedUser` (authentication.k8s.io/v1 `UserInfo`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct UserInfo<'a> {
    /// The user name, e.g. `system:serviceaccount:ns:sa`, `system:node:n1`, `alice@example.com`.
    #[serde(borrow, default)]
    pub username: Str<'a>,
    /// The user's UID, when the authenticator provides one.
    #[serde(borrow, default)]
    pub uid: Str<'a>,
    /// The groups the user belongs to.
    #[serde(borrow, default)]
    pub groups: Vec<Str<'a>>,
}

impl UserInfo<'_> {
    /// A copy that no longer borrows the input.
    pub fn into_static(self) -> UserInfo<'static> {
        UserInfo {
            username: self.username.into_static(),
            uid: self.uid.into_static(),
            groups: self.groups.into_iter().map(Str::into_static).collect(),
        }
    }
    /// For a service account user, `(namespace, name)`.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        let rest = self.username.strip_prefix("system:serviceaccount:")?;
        rest.split_once(':')
    }
}

/// `objectRef`: the object the request was about.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef<'a> {
    /// Plural resource name: `pods`, `secrets`, `clusterrolebindings`, …
    #[serde(borrow, default)]
    pub resource: Str<'a>,
    /// Subresource: `exec`, `attach`, `ephemeralcontainers`, `token`, `approval`, `status`, …
    #[serde(borrow, default)]
    pub subresource: Str<'a>,
    /// Namespace ("" for cluster-scoped objects).
    #[serde(borrow, default)]
    pub namespace: Str<'a>,
    /// Object name ("" for collections).
    #[serde(borrow, default)]
    pub name: Str<'a>,
    /// API group ("" for the core group).
    #[serde(borrow, default)]
    pub api_group: Str<'a>,
    /// API version.
    #[serde(borrow, default)]
    pub api_version: Str<'a>,
    /// Object UID, when known.
    #[serde(borrow, default)]
    pub uid: Str<'a>,
}

/// `responseStatus` (a `metav1.Status`, only some fields).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ResponseStatus<'a> {
    /// HTTP status code; 0 when not recorded.
    #[serde(default)]
    pub code: i64,
    /// `Success` / `Failure`, when present.
    #[serde(borrow, default)]
    pub status: Str<'a>,
    /// Machine-readable reason (`Forbidden`, `NotFound`, …).
    #[serde(borrow, default)]
    pub reason: Str<'a>,
    /// Human-readable message.
    #[serde(borrow, default)]
    pub message: Str<'a>,
}

/// Event annotations (`authorization.k8s.io/decision`, `pod-security.kubernetes.io/…`, …) in
/// the order they were written.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Annotations<'a>(pub Vec<(Str<'a>, Str<'a>)>);

impl Annotations<'_> {
    /// The value of annotation `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v.as_str())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Annotations<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Annotations<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<Str<'de>, Str<'de>>()? {
                    if out.len() < 256 {
                        out.push((k, v));
                    }
                }
                Ok(Annotations(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Annotations::default())
            }
        }
        d.deserialize_map(V)
    }
}

/// A Kubernetes audit event (`audit.k8s.io/v1` `Event`), borrowing from its JSON text.
///
/// `request_object` and `response_object` are kept as raw JSON; [`AuditEvent::request_json`]
/// parses them on demand.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// `auditID`: unique per request (shared by the stages of one request).
    pub audit_id: Str<'a>,
    /// `level`: `Metadata`, `Request` or `RequestResponse`.
    pub level: Str<'a>,
    /// `stage`.
    pub stage: Stage,
    /// `requestURI`.
    pub request_uri: Str<'a>,
    /// `verb`: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, …
    pub verb: Str<'a>,
    /// `user`: the authenticated user.
    pub user: UserInfo<'a>,
    /// `impersonatedUser`, when the request impersonated another user.
    pub impersonated_user: Option<UserInfo<'a>>,
    /// `sourceIPs`: the client address first, then proxies (X-Forwarded-For).
    pub source_ips: Vec<Str<'a>>,
    /// `userAgent`.
    pub user_agent: Str<'a>,
    /// `objectRef`: default (all empty) for non-resource requests.
    pub object_ref: ObjectRef<'a>,
    /// `responseStatus`: code 0 at the RequestReceived stage.
    pub response_status: ResponseStatus<'a>,
    /// `requestObject`, raw (Request and RequestResponse levels).
    pub request_object: Option<&'a RawValue>,
    /// `responseObject`, raw (RequestResponse level).
    pub response_object: Option<&'a RawValue>,
    /// `requestReceivedTimestamp` as written (RFC 3339, microseconds).
    pub request_received_timestamp: Str<'a>,
    /// `stageTimestamp` as written.
    pub stage_timestamp: Str<'a>,
    /// Event time in microseconds since the Unix epoch (`stageTimestamp`, else
    /// `requestReceivedTimestamp`; 0 when neither parses).
    pub time_us: i64,
    /// `annotations`.
    pub annotations: Annotations<'a>,
    /// The JSON text of the whole event (for evidence).
    pub raw: &'a str,
}

impl<'a> AuditEvent<'a> {
    /// `authorization.k8s.io/decision` (`allow` / `forbid`), or "".
    pub fn authz_decision(&self) -> &str {
        self.annotations.get("authorization.k8s.io/decision").unwrap_or("")
    }
    /// `authorization.k8s.io/reason`, or "".
    pub fn authz_reason(&self) -> &str {
        self.annotations.get("authorization.k8s.io/reason").unwrap_or("")
    }
    /// The client address: the first of `sourceIPs`, or "".
    pub fn source_ip(&self) -> &str {
        self.source_ips.first().map(|s| s.as_str()).unwrap_or("")
    }
    /// Whether the response code is a success (2xx) — or unknown (0), as at RequestReceived.
    pub fn succeeded(&self) -> bool {
        let c = self.response_status.code;
        c == 0 || (200..300).contains(&c)
    }
    /// `requestObject` parsed into a JSON value (None when absent or not JSON).
    pub fn request_json(&self) -> Option<serde_json::Value> {
        self.request_object.and_then(|r| serde_json::from_str(r.get()).ok())
    }
    /// `responseObject` parsed into a JSON value.
    pub fn response_json(&self) -> Option<serde_json::Value> {
        self.response_object.and_then(|r| serde_json::from_str(r.get()).ok())
    }
    /// The whole event as JSON (for evidence); `Null` if the raw text is not JSON.
    pub fn evidence(&self) -> serde_json::Value {
        serde_json::from_str(self.raw).unwrap_or(serde_json::Value::Null)
    }
}

/// The kind of activity a node sensor reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SensorKind {
    /// A process started (execve).
    Process,
    /// A process ended.
    Exit,
    /// A file was opened, written, renamed, removed or made executable.
    File,
    /// A network connection was made or accepted.
    Network,
    /// A privilege or isolation syscall: setuid family, capset, ptrace, module load, mount,
    /// unshare, setns, memfd_create.
    Syscall,
}

impl SensorKind {
    /// The lowercase name used in rules (`match.event_types`).
    pub fn as_str(self) -> &'static str {
        match self {
            SensorKind::Process => "process",
            SensorKind::Exit => "exit",
            SensorKind::File => "file",
            SensorKind::Network => "network",
            SensorKind::Syscall => "syscall",
        }
    }
}

/// The workload an event is attributed to; shared by all sources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Cluster name (from configuration).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Pod name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// Container name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// Container image reference.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Container ID (node sensor; empty for host processes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_id: String,
}

/// A node sensor event (process, file or network activity in a container).
///
/// The node sensor is not built yet; this is the shape its events take so that the same rule
/// engine, alerts and sinks serve both sources. Rules see it as the CEL variable `evt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SensorEvent {
    /// What happened.
    pub kind: SensorKind,
    /// Time in microseconds since the Unix epoch.
    pub time_us: i64,
    /// Node name.
    #[serde(default)]
    pub node: String,
    /// Where it happened.
    #[serde(default)]
    pub entity: Entity,
    /// Process fields (all kinds carry the acting process).
    #[serde(default)]
    pub process: ProcessInfo,
    /// File fields (kind `file`).
    #[serde(default)]
    pub file: Option<FileInfo>,
    /// Network fields (kind `network`).
    #[serde(default)]
    pub network: Option<NetworkInfo>,
    /// Syscall fields (kind `syscall`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<SyscallInfo>,
}

/// Syscall fields of a sensor event.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyscallInfo {
    /// `setuid`, `setresuid`, ..., `capset`, `ptrace`, `init_module`, `finit_module`, `mount`,
    /// `unshare`, `setns`, `memfd_create`.
    pub name: String,
    /// Flags: unshare/clone flags, setns nstype, mount flags, memfd flags.
    #[serde(default)]
    pub flags: i64,
    /// ptrace request.
    #[serde(default)]
    pub request: i64,
    /// ptrace / capset target pid.
    #[serde(default)]
    pub target_pid: i64,
    /// New ids of the setuid family (-1: unchanged).
    #[serde(default)]
    pub ids: Vec<i64>,
    /// Mount source, or the module name / file of a module load, or the memfd name.
    #[serde(default)]
    pub source: String,
    /// Mount target.
    #[serde(default)]
    pub target: String,
    /// Mount filesystem type.
    #[serde(default)]
    pub fstype: String,
}

/// The acting process of a sensor event.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Process ID.
    #[serde(default)]
    pub pid: i64,
    /// Parent process ID.
    #[serde(default)]
    pub ppid: i64,
    /// Executable path.
    #[serde(default)]
    pub exe: String,
    /// Command line arguments (argv).
    #[serde(default)]
    pub args: Vec<String>,
    /// Parent executable path.
    #[serde(default)]
    pub parent_exe: String,
    /// User ID (real).
    #[serde(default)]
    pub uid: i64,
    /// Thread ID.
    #[serde(default)]
    pub tid: i64,
    /// Effective user ID.
    #[serde(default)]
    pub euid: i64,
    /// Group ID.
    #[serde(default)]
    pub gid: i64,
    /// Kernel command name (`comm`, 15 bytes).
    #[serde(default)]
    pub comm: String,
    /// Working directory.
    #[serde(default)]
    pub cwd: String,
    /// Executables of the ancestors, parent first (as far as the sensor knows them).
    #[serde(default)]
    pub ancestors: Vec<String>,
    /// The executable is on the overlayfs upper layer: written after the container started.
    #[serde(default)]
    pub upper_layer: bool,
    /// The executable has no file on disk (memfd or deleted).
    #[serde(default)]
    pub fileless: bool,
    /// stdin, stdout or stderr is a socket (a reverse shell's signature).
    #[serde(default)]
    pub stdio_socket: bool,
    /// The process has a controlling terminal.
    #[serde(default)]
    pub tty: bool,
    /// The drift policy classified this exec as drift (not in the image, not allowed).
    #[serde(default)]
    pub drift: bool,
}

/// File fields of a sensor event.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FileInfo {
    /// Path (as the process named it).
    pub path: String,
    /// Operation: `open` (read), `write` (opened for writing, creating or truncating), `rename`,
    /// `unlink`, `chmod`.
    pub op: String,
    /// open(2) flags.
    #[serde(default)]
    pub flags: i64,
    /// chmod mode.
    #[serde(default)]
    pub mode: i64,
    /// New path of a rename.
    #[serde(default)]
    pub new_path: String,
}

/// Network fields of a sensor event.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// `inet`, `inet6` or `unix`.
    #[serde(default)]
    pub family: String,
    /// Path of a unix socket.
    #[serde(default)]
    pub unix_path: String,
    /// `connect` or `accept`.
    pub direction: String,
    /// `tcp` / `udp`.
    pub protocol: String,
    /// Source address.
    pub src_ip: String,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst_ip: String,
    /// Destination port.
    pub dst_port: u16,
}

/// An event from any source.
// Audit events are the hot path and live on the stack for one evaluation: not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A Kubernetes audit event (data source `k8s_audit`).
    Audit(AuditEvent<'a>),
    /// A node sensor event (data source `sensor`).
    Sensor(SensorEvent),
}

impl Event<'_> {
    /// Event time in microseconds since the Unix epoch.
    pub fn time_us(&self) -> i64 {
        match self {
            Event::Audit(a) => a.time_us,
            Event::Sensor(s) => s.time_us,
        }
    }
}

/// Parses an RFC 3339 timestamp (`2024-05-01T10:00:00.123456Z`, offsets allowed) into
/// microseconds since the Unix epoch.
pub fn parse_rfc3339_us(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut digits = 0;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if digits < 6 {
                micros = micros * 10 + i64::from(c - b'0');
                digits += 1;
            }
            i += 1;
        }
        while digits < 6 {
            micros *= 10;
            digits += 1;
        }
    }
    let offset_s = match b.get(i) {
        Some(b'Z') | Some(b'z') => 0,
        Some(&sign) if sign == b'+' || sign == b'-' => {
            let oh = num(i + 1..i + 3)?;
            if b.get(i + 3) != Some(&b':') {
                return None;
            }
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_s;
    Some(secs * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats microseconds since the epoch as RFC 3339 UTC with microseconds.
pub fn format_rfc3339_us(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = palisade_model::civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", sod / 3600, (sod / 60) % 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = parse_rfc3339_us("2024-05-01T10:00:00.123456Z").unwrap();
        assert_eq!(format_rfc3339_us(t), "2024-05-01T10:00:00.123456Z");
        assert_eq!(parse_rfc3339_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_us("1970-01-01T01:00:00+01:00"), Some(0), "offset");
        assert_eq!(parse_rfc3339_us("1970-01-01T00:00:01.5Z"), Some(1_500_000));
        assert_eq!(parse_rfc3339_us("garbage"), None);
        assert_eq!(parse_rfc3339_us("2024-13-01T10:00:00Z"), None);
        assert_eq!(format_rfc3339_us(parse_rfc3339_us("2000-02-29T23:59:59Z").unwrap()), "2000-02-29T23:59:59.000000Z");
    }

    #[test]
    fn service_account_user() {
        let u = UserInfo {
            username: "system:serviceaccount:kube-system:replicaset-controller".into(),
            ..Default::default()
        };
        assert_eq!(u.service_account(), Some(("kube-system", "replicaset-controller")));
    }
}
