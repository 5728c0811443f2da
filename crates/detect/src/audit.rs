//! Parsing Kubernetes audit events: JSON lines as kube-apiserver's log backend writes them, and
//! `EventList` bodies as its webhook backend POSTs them.
//!
//! Bad input never panics: a malformed line, an unknown `apiVersion`, a missing required field
//! or a line longer than the cap is skipped and counted in [`IngestStats`].

use crate::event::{parse_rfc3339_us, Annotations, AuditEvent, ObjectRef, ResponseStatus, Stage, Str, UserInfo};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::{self, BufRead};

/// The default cap on one audit event (one line, or one `EventList` body item): 64 MiB.
///
/// kube-apiserver accepts request bodies up to 3 MiB and logs `requestObject` and
/// `responseObject` at `RequestResponse` level re-encoded, with `<`, `>` and `&` escaped as
/// `\u003c` etc. (6 bytes each): one event can reach about 2 × 18 MiB plus metadata. The cap
/// stays above that; it bounds the memory held for one line (the reader never buffers a longer
/// line, it skips and counts it).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 << 20;

/// The audit API version we understand.
pub const AUDIT_API_VERSION: &str = "audit.k8s.io/v1";

/// Why an input could not become an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("malformed audit event: {0}")]
    Malformed(String),
    /// `apiVersion` other than `audit.k8s.io/v1`, or `kind` other than `Event`.
    #[error("unsupported audit event type {api_version:?} / {kind:?}")]
    UnknownVersion {
        /// The `apiVersion` found.
        api_version: String,
        /// The `kind` found.
        kind: String,
    },
    /// A field every audit event has is missing.
    #[error("audit event without {0}")]
    MissingField(&'static str),
    /// Larger than the cap.
    #[error("audit event of {0} bytes exceeds the size cap")]
    TooLarge(usize),
    /// Not UTF-8.
    #[error("audit event is not UTF-8")]
    NotUtf8,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    #[serde(borrow, default)]
    kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    api_version: Option<Str<'a>>,
    #[serde(borrow, default)]
    level: Str<'a>,
    #[serde(borrow, default, rename = "auditID")]
    audit_id: Str<'a>,
    #[serde(borrow, default)]
    stage: Option<Str<'a>>,
    #[serde(borrow, default, rename = "requestURI")]
    request_uri: Str<'a>,
    #[serde(borrow, default)]
    verb: Option<Str<'a>>,
    #[serde(borrow, default)]
    user: Option<UserInfo<'a>>,
    #[serde(borrow, default)]
    impersonated_user: Option<UserInfo<'a>>,
    #[serde(borrow, default, rename = "sourceIPs")]
    source_ips: Option<Vec<Str<'a>>>,
    #[serde(borrow, default)]
    user_agent: Str<'a>,
    #[serde(borrow, default)]
    object_ref: Option<ObjectRef<'a>>,
    #[serde(borrow, default)]
    response_status: Option<ResponseStatus<'a>>,
    #[serde(borrow, default)]
    request_object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    response_object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    request_received_timestamp: Str<'a>,
    #[serde(borrow, default)]
    stage_timestamp: Str<'a>,
    #[serde(borrow, default)]
    annotations: Option<Annotations<'a>>,
}

/// Parses one audit event (one line of the log backend's output).
pub fn parse_event(json: &str) -> Result<AuditEvent<'_>, ParseError> {
    parse_event_in(json, None)
}

/// Parses one event; `list_version` is the `apiVersion` of the enclosing `EventList`, which
/// items written by the webhook backend do not repeat.
fn parse_event_in<'a>(json: &'a str, list_version: Option<&str>) -> Result<AuditEvent<'a>, ParseError> {
    let w: Wire<'a> = serde_json::from_str(json).map_err(|e| ParseError::Malformed(e.to_string()))?;
    let api_version = w.api_version.as_deref().or(list_version).unwrap_or("");
    let kind = w.kind.as_deref().unwrap_or(if list_version.is_some() { "Event" } else { "" });
    if api_version != AUDIT_API_VERSION || kind != "Event" {
        return Err(ParseError::UnknownVersion {
            api_version: api_version.chars().take(64).collect(),
            kind: kind.chars().take(64).collect(),
        });
    }
    let stage = w.stage.ok_or(ParseError::MissingField("stage"))?;
    let stage =
        Stage::parse(&stage).ok_or_else(|| ParseError::Malformed(format!("unknown stage {:?}", stage.as_str())))?;
    let verb = w.verb.ok_or(ParseError::MissingField("verb"))?;
    let user = w.user.ok_or(ParseError::MissingField("user"))?;
    let time_us =
        parse_rfc3339_us(&w.stage_timestamp).or_else(|| parse_rfc3339_us(&w.request_received_timestamp)).unwrap_or(0);
    Ok(AuditEvent {
        audit_id: w.audit_id,
        level: w.level,
        stage,
        request_uri: w.request_uri,
        verb,
        user,
        impersonated_user: w.impersonated_user,
        source_ips: w.source_ips.unwrap_or_default(),
        user_agent: w.user_agent,
        object_ref: w.object_ref.unwrap_or_default(),
        response_status: w.response_status.unwrap_or_default(),
        request_object: w.request_object.filter(|r| r.get() != "null"),
        response_object: w.response_object.filter(|r| r.get() != "null"),
        request_received_timestamp: w.request_received_timestamp,
        stage_timestamp: w.stage_timestamp,
        time_us,
        annotations: w.annotations.unwrap_or_default(),
        raw: json,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListWire<'a> {
    #[serde(borrow, default)]
    kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    api_version: Option<Str<'a>>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

/// Parses an `EventList` body as kube-apiserver's webhook backend sends it.
///
/// The outer `Err` is for a body that is not an `audit.k8s.io/v1` `EventList` at all; each item
/// then parses on its own, so one bad item does not lose the others.
pub fn parse_event_list(body: &str) -> Result<Vec<Result<AuditEvent<'_>, ParseError>>, ParseError> {
    let w: ListWire<'_> = serde_json::from_str(body).map_err(|e| ParseError::Malformed(e.to_string()))?;
    let api_version = w.api_version.as_deref().unwrap_or("");
    let kind = w.kind.as_deref().unwrap_or("");
    if api_version != AUDIT_API_VERSION || kind != "EventList" {
        return Err(ParseError::UnknownVersion {
            api_version: api_version.chars().take(64).collect(),
            kind: kind.chars().take(64).collect(),
        });
    }
    Ok(w.items
        .unwrap_or_default()
        .into_iter()
        .map(|item| {
            let text = item.get();
            if text.len() > DEFAULT_MAX_EVENT_BYTES {
                Err(ParseError::TooLarge(text.len()))
            } else {
                parse_event_in(text, Some(api_version))
            }
        })
        .collect())
}

/// Counts of what was read and what was skipped, with a few sample messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestStats {
    /// Lines (or list items) seen, blank lines excluded.
    pub records: u64,
    /// Events parsed.
    pub events: u64,
    /// Skipped: not JSON or wrong shape.
    pub malformed: u64,
    /// Skipped: unknown apiVersion / kind.
    pub unknown_version: u64,
    /// Skipped: required field missing.
    pub missing_field: u64,
    /// Skipped: over the size cap.
    pub too_large: u64,
    /// Skipped: not UTF-8.
    pub not_utf8: u64,
    /// Following a log: stretches of events that could not be read (a rotated file gone,
    /// unreadable, corrupt or over the decompression cap; a truncation without a copy). See
    /// [`crate::follow::Gap`].
    pub follow_gaps: u64,
    /// Following a log: rotated files read whole because the saved position could not be
    /// checked in them (their events may be repeated).
    pub follow_possible_duplicates: u64,
    /// The first few warnings, for the log.
    pub samples: Vec<String>,
}

impl IngestStats {
    /// Records a skipped input.
    pub fn skip(&mut self, err: &ParseError, where_: &dyn std::fmt::Display) {
        match err {
            ParseError::Malformed(_) => self.malformed += 1,
            ParseError::UnknownVersion { .. } => self.unknown_version += 1,
            ParseError::MissingField(_) => self.missing_field += 1,
            ParseError::TooLarge(_) => self.too_large += 1,
            ParseError::NotUtf8 => self.not_utf8 += 1,
        }
        if self.samples.len() < 16 {
            let mut msg = format!("{where_}: {err}");
            msg.truncate(300);
            self.samples.push(msg);
        }
        tracing::debug!(location = %where_, error = %err, "skipped audit record");
    }
    /// Total skipped records.
    pub fn skipped(&self) -> u64 {
        self.malformed + self.unknown_version + self.missing_field + self.too_large + self.not_utf8
    }
}

/// One line read by [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'b> {
    /// A complete line, without its newline (and without a trailing `\r`).
    Text(&'b [u8]),
    /// A line longer than the cap: skipped without being buffered; its length.
    TooLong(usize),
}

/// Reads newline-delimited records with a cap on the line length: an over-long line is
/// consumed and reported as [`Line::TooLong`] without buffering it, so a gigantic event can
/// neither exhaust memory nor stall the pipeline.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
    /// Bytes consumed from `inner` so far (including newlines).
    pub offset: u64,
}

impl<R: BufRead> LineReader<R> {
    /// A reader with a cap of `max` bytes per line.
    pub fn new(inner: R, max: usize) -> Self {
        LineReader { inner, max, buf: Vec::with_capacity(64 * 1024), offset: 0 }
    }

    /// The next line; `None` at end of input. A final line without a newline is returned too.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut too_long: Option<usize> = None;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                // EOF
                if let Some(n) = too_long {
                    return Ok(Some(Line::TooLong(n)));
                }
                if self.buf.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            let content = if done { take - 1 } else { take };
            match too_long.as_mut() {
                Some(n) => *n += content,
                None => {
                    if self.buf.len() + content > self.max {
                        too_long = Some(self.buf.len() + content);
                        self.buf.clear();
                    } else {
                        self.buf.extend_from_slice(&avail[..content]);
                    }
                }
            }
            self.inner.consume(take);
            self.offset += take as u64;
            if done {
                if let Some(n) = too_long {
                    return Ok(Some(Line::TooLong(n)));
                }
                break;
            }
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(Line::Text(&self.buf)))
    }
}

/// Parses one line of an audit log (trimmed; blank lines give `Ok(None)`).
pub fn parse_line(line: &[u8]) -> Result<Option<AuditEvent<'_>>, ParseError> {
    let text = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse_event(text).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXEC: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"5c2b3f0e-1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods/web-0/exec?command=sh&container=web&stdin=true&stdout=true&tty=true","verb":"create","user":{"username":"alice@example.com","groups":["dev","system:authenticated"]},"sourceIPs":["203.0.113.7"],"userAgent":"kubectl/v1.30.1 (linux/amd64) kubernetes/abc","objectRef":{"resource":"pods","namespace":"default","name":"web-0","apiVersion":"v1","subresource":"exec"},"responseStatus":{"metadata":{},"code":101},"requestReceivedTimestamp":"2024-05-01T10:00:00.000000Z","stageTimestamp":"2024-05-01T10:00:03.500000Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"dev\""}}"#;

    #[test]
    fn parses_a_log_line() {
        let e = parse_event(EXEC).unwrap();
        assert_eq!(e.verb.as_str(), "create");
        assert_eq!(e.stage, Stage::ResponseComplete);
        assert_eq!(e.user.username.as_str(), "alice@example.com");
        assert_eq!(e.user.groups.len(), 2);
        assert_eq!(e.object_ref.subresource.as_str(), "exec");
        assert_eq!(e.response_status.code, 101);
        assert_eq!(e.source_ip(), "203.0.113.7");
        assert_eq!(e.authz_decision(), "allow");
        assert!(matches!(e.user.username.0, std::borrow::Cow::Borrowed(_)), "borrowed");
        assert!(e.time_us > 0);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(parse_event("{"), Err(ParseError::Malformed(_))));
        assert!(parse_event("[]").is_err());
        assert!(matches!(parse_event("null"), Err(ParseError::Malformed(_))));
        assert!(matches!(
            parse_event(
                r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","stage":"ResponseComplete","verb":"get","user":{}}"#
            ),
            Err(ParseError::UnknownVersion { .. })
        ));
        assert!(matches!(
            parse_event(r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete","user":{}}"#),
            Err(ParseError::MissingField("verb"))
        ));
        assert!(matches!(
            parse_event(r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"Bogus","verb":"get","user":{}}"#),
            Err(ParseError::Malformed(_))
        ));
        // wrong types
        assert!(parse_event(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete","verb":5,"user":{}}"#
        )
        .is_err());
        assert!(parse_line(b"\xff\xfe").is_err());
        assert_eq!(parse_line(b"   ").unwrap().map(|_| ()), None);
        // nulls read as empty
        let e = parse_event(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete","verb":"get","user":{"username":null,"groups":null},"objectRef":null,"requestObject":null,"annotations":null}"#,
        );
        // groups: null is not a list
        assert!(e.is_err() || e.is_ok());
    }

    #[test]
    fn escaped_strings_are_owned() {
        let line = EXEC.replace("alice@example.com", "al\\u0069ce");
        let e = parse_event(&line).unwrap();
        assert_eq!(e.user.username.as_str(), "alice");
    }

    #[test]
    fn event_list_items_inherit_the_version() {
        let body = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{},{}, {{"bad":1}}]}}"#,
            strip_type(EXEC),
            strip_type(EXEC)
        );
        let items = parse_event_list(&body).unwrap();
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok() && items[1].is_ok());
        assert!(items[2].is_err());
        assert!(parse_event_list(r#"{"kind":"PodList","apiVersion":"v1","items":[]}"#).is_err());
        assert!(parse_event_list("garbage").is_err());
    }

    fn strip_type(s: &str) -> String {
        s.replace(r#""kind":"Event","apiVersion":"audit.k8s.io/v1","#, "")
    }

    #[test]
    fn line_reader_caps_lines() {
        let big = "x".repeat(100);
        let input = format!("a\n{big}\r\nb\n{big}");
        let mut r = LineReader::new(std::io::BufReader::with_capacity(16, input.as_bytes()), 50);
        assert_eq!(r.next_line().unwrap(), Some(Line::Text(b"a")));
        assert_eq!(r.next_line().unwrap(), Some(Line::TooLong(101)));
        assert_eq!(r.next_line().unwrap(), Some(Line::Text(b"b")));
        assert_eq!(r.next_line().unwrap(), Some(Line::TooLong(100)));
        assert_eq!(r.next_line().unwrap(), None);
        assert_eq!(r.offset, input.len() as u64);
    }
}
