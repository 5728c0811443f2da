//! Pod responses through the API server (label, isolate, delete), carried out on a worker
//! thread of their own so that API calls never stall the event loop.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use palisade_k8s::respond::PodAction;
use serde::Serialize;

use crate::node::ResponseAction;

/// Requests waiting for the worker; more are counted as failed.
const QUEUE: usize = 256;
/// (action, namespace, pod) pairs remembered for "once per pod and action".
const MAX_REMEMBERED: usize = 10_000;

/// Counters of pod responses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ResponseCounts {
    /// Carried out.
    pub done: u64,
    /// Refused by the API server, failed, or dropped because the queue was full.
    pub failed: u64,
    /// Not attempted: no API access, or the process was in no pod.
    pub skipped: u64,
}

#[derive(Debug, Default)]
struct Stats {
    done: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
}

/// One pod response to carry out.
#[derive(Debug)]
struct Job {
    action: PodAction,
    namespace: String,
    pod: String,
    rule: String,
}

/// How a worker carries out a response (`plan` + `execute` against the API server; a stand-in
/// in tests).
pub(crate) type Executor = Box<dyn FnMut(PodAction, &str, &str, &str) -> Result<(), String> + Send>;

/// The pod action of a response action; `None` for actions that need no API server.
pub(crate) fn pod_action(action: ResponseAction) -> Option<PodAction> {
    match action {
        ResponseAction::Label => Some(PodAction::Label),
        ResponseAction::Isolate => Some(PodAction::Isolate),
        ResponseAction::DeletePod => Some(PodAction::DeletePod),
        ResponseAction::None | ResponseAction::Kill => None,
    }
}

/// Hands pod responses to the worker, once per pod and action, and counts the outcomes.
#[derive(Debug, Default)]
pub(crate) struct Responder {
    tx: Option<SyncSender<Job>>,
    responded: HashSet<(PodAction, String, String)>,
    stats: Arc<Stats>,
}

impl Responder {
    /// Starts the worker: from now on responses go to the API server through `client`.
    pub(crate) fn connect(&mut self, client: palisade_k8s::live::Client) {
        self.start_worker(Box::new(move |action, ns, pod, rule| {
            palisade_k8s::respond::plan(action, ns, pod, rule)
                .and_then(|calls| palisade_k8s::respond::execute(&client, &calls))
        }));
    }

    /// Starts the worker with any executor.
    pub(crate) fn start_worker(&mut self, mut exec: Executor) {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let stats = self.stats.clone();
        std::thread::spawn(move || {
            for Job { action, namespace: ns, pod, rule } in rx {
                match exec(action, &ns, &pod, &rule) {
                    Ok(()) => {
                        stats.done.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(?action, namespace = %ns, pod = %pod, rule = %rule, "cluster response carried out");
                    }
                    Err(e) => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(?action, namespace = %ns, pod = %pod, rule = %rule, error = %e, "cluster response failed");
                    }
                }
            }
        });
        self.tx = Some(tx);
    }

    /// Asks for `action` on the pod `ns/pod` because `rule` fired. A process outside any pod,
    /// or a runtime without API access, counts as skipped; a pod already handled with this
    /// action is left alone.
    pub(crate) fn request(&mut self, action: PodAction, ns: &str, pod: &str, rule: &str) {
        if ns.is_empty() || pod.is_empty() {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !self.responded.insert((action, ns.to_string(), pod.to_string())) {
            return;
        }
        if self.responded.len() > MAX_REMEMBERED {
            self.responded.clear();
        }
        match &self.tx {
            Some(tx) => {
                let job = Job { action, namespace: ns.to_string(), pod: pod.to_string(), rule: rule.to_string() };
                if tx.try_send(job).is_err() {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                if self.stats.skipped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!("a cluster response is configured but the sensor has no API access (--kubeconfig, or run in a pod)");
                }
            }
        }
    }

    /// The counters so far.
    pub(crate) fn counts(&self) -> ResponseCounts {
        ResponseCounts {
            done: self.stats.done.load(Ordering::Relaxed),
            failed: self.stats.failed.load(Ordering::Relaxed),
            skipped: self.stats.skipped.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    fn wait_for(r: &Responder, done: impl Fn(ResponseCounts) -> bool) -> ResponseCounts {
        let until = Instant::now() + Duration::from_secs(5);
        while !done(r.counts()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        r.counts()
    }

    #[test]
    fn maps_only_api_actions() {
        assert_eq!(pod_action(ResponseAction::Label), Some(PodAction::Label));
        assert_eq!(pod_action(ResponseAction::Isolate), Some(PodAction::Isolate));
        assert_eq!(pod_action(ResponseAction::DeletePod), Some(PodAction::DeletePod));
        assert_eq!(pod_action(ResponseAction::Kill), None);
        assert_eq!(pod_action(ResponseAction::None), None);
    }

    #[test]
    fn without_api_access_responses_are_skipped() {
        let mut r = Responder::default();
        r.request(PodAction::Isolate, "shop", "web-1", "PAL-SEN-006");
        r.request(PodAction::Isolate, "", "web-1", "PAL-SEN-006");
        assert_eq!(r.counts(), ResponseCounts { done: 0, failed: 0, skipped: 2 });
    }

    #[test]
    fn once_per_pod_and_action_and_failures_counted() {
        #[allow(clippy::type_complexity)]
        let seen: Arc<Mutex<Vec<(PodAction, String, String, String)>>> = Arc::default();
        let seen2 = seen.clone();
        let mut r = Responder::default();
        r.start_worker(Box::new(move |a, ns, pod, rule| {
            if let Ok(mut s) = seen2.lock() {
                s.push((a, ns.into(), pod.into(), rule.into()));
            }
            if pod == "broken" {
                Err("403 forbidden".into())
            } else {
                Ok(())
            }
        }));
        r.request(PodAction::Isolate, "shop", "web-1", "PAL-SEN-006");
        r.request(PodAction::Isolate, "shop", "web-1", "PAL-SEN-008"); // same pod and action
        r.request(PodAction::Label, "shop", "web-1", "PAL-SEN-008"); // another action
        r.request(PodAction::DeletePod, "shop", "broken", "PAL-SEN-002");
        r.request(PodAction::Label, "", "", "PAL-SEN-002"); // not in a pod
        let c = wait_for(&r, |c| c.done + c.failed >= 3);
        assert_eq!(c, ResponseCounts { done: 2, failed: 1, skipped: 1 });
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[0], (PodAction::Isolate, "shop".into(), "web-1".into(), "PAL-SEN-006".into()));
    }
}
