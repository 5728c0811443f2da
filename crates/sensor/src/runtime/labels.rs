//! Pod labels from the API server, refreshed on a thread of their own (for drift rules with
//! `podLabels` on runtimes that do not record labels, such as containerd).

use std::sync::mpsc::{sync_channel, Receiver};
use std::time::Duration;

use palisade_k8s::respond::PodLabels;

/// Receives this node's pod labels as a background thread refreshes them.
#[derive(Debug)]
pub(crate) struct PodLabelWatcher {
    rx: Receiver<PodLabels>,
}

impl PodLabelWatcher {
    /// Lists the pods of `node` through `client` now and every `every`.
    pub(crate) fn spawn(client: palisade_k8s::live::Client, node: String, every: Duration) -> PodLabelWatcher {
        PodLabelWatcher::spawn_with(move || palisade_k8s::respond::node_pod_labels(&client, &node), every)
    }

    /// Calls `fetch` now and every `every`; the thread ends when the watcher is dropped.
    pub(crate) fn spawn_with(
        mut fetch: impl FnMut() -> Result<PodLabels, String> + Send + 'static,
        every: Duration,
    ) -> PodLabelWatcher {
        let (tx, rx) = sync_channel(1);
        std::thread::spawn(move || loop {
            match fetch() {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "pod labels not refreshed"),
            }
            std::thread::sleep(every);
        });
        PodLabelWatcher { rx }
    }

    /// The labels fetched since the last call, if any (never waits).
    pub(crate) fn latest(&self) -> Option<PodLabels> {
        self.rx.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn delivers_each_refresh_and_survives_errors() {
        let mut n = 0;
        let w = PodLabelWatcher::spawn_with(
            move || {
                n += 1;
                if n == 1 {
                    return Err("API server unreachable".into());
                }
                Ok([(("shop".to_string(), format!("web-{n}")), [("app".to_string(), "web".to_string())].into())].into())
            },
            Duration::from_millis(1),
        );
        let until = Instant::now() + Duration::from_secs(5);
        let mut got = None;
        while got.is_none() && Instant::now() < until {
            got = w.latest();
            std::thread::sleep(Duration::from_millis(2));
        }
        let got = got.unwrap_or_default();
        let ((ns, pod), labels) = got.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
        assert_eq!(ns, "shop");
        assert!(pod.starts_with("web-") && pod != "web-1", "{pod}");
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    }
}
