//! Exceptions: accepted risks that suppress findings.

use crate::{Finding, ObjectRef};
use palisade_k8s::Object;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An accepted risk. Every non-empty selector must match (AND); within a selector any entry may
/// match (OR). Entries of `checks`, `namespaces`, `kinds` and `names` match exactly, or by prefix
/// with a trailing `*` (`"PAL-API-*"`, `"*"`). An exception with no selector at all, or without a
/// reason, is rejected with a warning rather than suppressing everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Exception {
    /// Check ids (built-in or custom Rego).
    pub checks: Vec<String>,
    /// Namespaces of the objects.
    pub namespaces: Vec<String>,
    /// Kinds of the objects.
    pub kinds: Vec<String>,
    /// Names of the objects.
    pub names: Vec<String>,
    /// Label selector (`matchLabels`): every pair must be among the object's labels.
    pub labels: BTreeMap<String, String>,
    /// Why the risk is accepted (required).
    pub reason: String,
    /// Last day the exception applies, `YYYY-MM-DD`; compared with [`crate::Options::today`].
    pub expires: Option<String>,
}

fn pat_match(patterns: &[String], value: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => p == value,
        })
}

/// Whether `s` is a plausible `YYYY-MM-DD` date.
pub(crate) fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return false;
    }
    let month: u32 = s[5..7].parse().unwrap_or(0);
    let day: u32 = s[8..10].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

impl Exception {
    /// Whether the exception covers this finding on an object with these labels (expiry not
    /// considered).
    pub fn matches(&self, finding: &Finding, labels: &[(&str, &str)]) -> bool {
        self.matches_ref(&finding.check_id, &finding.object, labels)
    }

    fn matches_ref(&self, check_id: &str, obj: &ObjectRef, labels: &[(&str, &str)]) -> bool {
        pat_match(&self.checks, check_id)
            && pat_match(&self.namespaces, &obj.namespace)
            && pat_match(&self.kinds, &obj.kind)
            && pat_match(&self.names, &obj.name)
            && self.labels.iter().all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
    }

    /// Whether the exception has expired on `today` (`YYYY-MM-DD`); an exception is valid through
    /// its expiry day.
    pub fn is_expired(&self, today: &str) -> bool {
        match &self.expires {
            Some(e) => valid_date(e) && valid_date(today) && today > e.as_str(),
            None => false,
        }
    }

    fn has_selector(&self) -> bool {
        !(self.checks.is_empty()
            && self.namespaces.is_empty()
            && self.kinds.is_empty()
            && self.names.is_empty()
            && self.labels.is_empty())
    }
}

/// The active exceptions of an assessment.
#[derive(Debug)]
pub(crate) struct Matcher<'a> {
    active: Vec<&'a Exception>,
}

impl<'a> Matcher<'a> {
    /// Keep the valid, unexpired exceptions; warn about the others.
    pub(crate) fn new(exceptions: &'a [Exception], today: Option<&str>, warnings: &mut Vec<String>) -> Self {
        let mut active = Vec::new();
        if let Some(t) = today {
            if !valid_date(t) {
                warnings.push(format!("today's date {t:?} is not YYYY-MM-DD: exception expiries are not enforced"));
            }
        }
        for (i, e) in exceptions.iter().enumerate() {
            let label = format!("exception {} ({})", i + 1, if e.reason.is_empty() { "no reason" } else { &e.reason });
            if e.reason.trim().is_empty() {
                warnings.push(format!("{label}: ignored, a reason is required"));
                continue;
            }
            if !e.has_selector() {
                warnings.push(format!(
                    "{label}: ignored, it selects nothing (give checks, namespaces, kinds, names or labels)"
                ));
                continue;
            }
            if let Some(exp) = &e.expires {
                if !valid_date(exp) {
                    warnings.push(format!("{label}: ignored, expiry {exp:?} is not YYYY-MM-DD"));
                    continue;
                }
                if let Some(t) = today.filter(|t| valid_date(t)) {
                    if e.is_expired(t) {
                        warnings.push(format!("{label}: expired on {exp}, no longer applied"));
                        continue;
                    }
                }
            }
            active.push(e);
        }
        Matcher { active }
    }

    /// The reason of the first exception covering the finding.
    pub(crate) fn matching(&self, f: &Finding, obj: &Object) -> Option<&'a str> {
        if self.active.is_empty() {
            return None;
        }
        let labels = obj.labels();
        self.matching_ref(f, &f.object, &labels)
    }

    pub(crate) fn matching_ref(&self, f: &Finding, obj: &ObjectRef, labels: &[(&str, &str)]) -> Option<&'a str> {
        self.active.iter().find(|e| e.matches_ref(&f.check_id, obj, labels)).map(|e| e.reason.as_str())
    }
}
