//! Heartbeats to a Palisade server (`POST /api/v1/heartbeats`).

use std::sync::mpsc::{sync_channel, SyncSender};
use std::time::Duration;

use crate::runtime::RuntimeHealth;

/// Where heartbeats go and how the sensor names itself in them.
#[derive(Debug, Clone)]
pub struct HeartbeatConfig {
    /// The server's base URL (`http(s)://host:port`).
    pub server: String,
    /// Bearer token.
    pub token: Option<String>,
    /// Cluster name.
    pub cluster: String,
    /// Instance and node name.
    pub node: String,
}

/// Sends the sensor's health to the server as heartbeats from a thread of its own, so a slow
/// or unreachable server never stalls event processing. Only the newest report waits to be
/// sent: heartbeats are telemetry, a missed one is not replayed.
#[derive(Debug)]
pub struct Heartbeats {
    tx: SyncSender<serde_json::Value>,
}

impl Heartbeats {
    /// Starts the sender thread.
    pub fn spawn(cfg: HeartbeatConfig) -> Heartbeats {
        let (tx, rx) = sync_channel::<serde_json::Value>(1);
        let url = format!("{}/api/v1/heartbeats", cfg.server.trim_end_matches('/'));
        let HeartbeatConfig { token, cluster, node, .. } = cfg;
        std::thread::spawn(move || {
            let client = palisade_net::Client::new(palisade_net::ClientOptions {
                deadline: Duration::from_secs(10),
                max_redirects: 0,
                ..palisade_net::ClientOptions::default()
            });
            for health in rx {
                let body = serde_json::to_vec(&beat(&cluster, &node, health)).unwrap_or_default();
                let req = palisade_net::Request::post(url.as_str(), &body)
                    .header("content-type", "application/json")
                    .credential(token.as_ref().map(|t| format!("Bearer {t}")));
                match client.send(req) {
                    Ok(r) if r.is_success() => tracing::debug!("heartbeat sent"),
                    Ok(r) => {
                        let status = r.status();
                        tracing::warn!(status, "heartbeat refused: {}", r.error_excerpt());
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat not sent"),
                }
            }
        });
        Heartbeats { tx }
    }

    /// Queues `health` unless a heartbeat is being sent (then this one is skipped).
    pub fn send(&self, health: &RuntimeHealth) {
        let _ = self.tx.try_send(health.to_json());
    }
}

/// The request body of one heartbeat.
fn beat(cluster: &str, node: &str, health: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"heartbeats": [{
        "cluster": cluster, "component": "sensor", "instance": node, "node": node,
        "version": env!("CARGO_PKG_VERSION"), "doc": health,
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_body_names_the_sensor_and_carries_the_report() {
        let b = beat("prod", "n1", serde_json::json!({"status": "healthy"}));
        let hb = &b["heartbeats"][0];
        assert_eq!(hb["component"], "sensor");
        assert_eq!(
            (hb["cluster"].as_str(), hb["instance"].as_str(), hb["node"].as_str()),
            (Some("prod"), Some("n1"), Some("n1"))
        );
        assert_eq!(hb["doc"]["status"], "healthy");
        assert_eq!(hb["version"], env!("CARGO_PKG_VERSION"));
    }
}
