//! Automatic responses to run-time alerts on a pod: label it, isolate it with a deny-all
//! NetworkPolicy, or delete it. [`plan`] is pure (the API calls an action needs, testable
//! without a cluster); [`execute`] sends them with a [`Client`].
//!
//! Isolation labels the pod `palisade.dev/quarantine: "true"` and makes sure the namespace has
//! the NetworkPolicy `palisade-quarantine`, which selects that label and allows no ingress
//! and no egress (it needs a CNI that enforces NetworkPolicies). An existing policy (409) is
//! fine, as is a pod already gone (404) when deleting.

use crate::live::Client;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What to do to the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PodAction {
    /// Label the pod (`palisade.dev/alert`, `palisade.dev/quarantine`).
    Label,
    /// Label it and cut its network with a deny-all NetworkPolicy.
    Isolate,
    /// Delete the pod (its controller recreates a clean one).
    DeletePod,
}

/// The NetworkPolicy isolation uses.
pub const QUARANTINE_POLICY: &str = "palisade-quarantine";
/// The label isolation keys on.
pub const QUARANTINE_LABEL: &str = "palisade.dev/quarantine";

/// One API request.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    /// HTTP method.
    pub method: &'static str,
    /// Path from the server root.
    pub path: String,
    /// Content type and body.
    pub body: Option<(&'static str, Value)>,
    /// Non-2xx codes that still count as done (409 exists, 404 gone).
    pub also_ok: &'static [u16],
}

/// Makes `s` a valid label value (63 characters of `[A-Za-z0-9._-]`, alphanumeric at the ends).
fn label_value(s: &str) -> String {
    let v: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).take(63).collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

/// Path segments must be DNS-1123 names; anything else is refused rather than escaped.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// The calls that carry out `action` on `namespace/pod` because of `rule` (a rule id).
pub fn plan(action: PodAction, namespace: &str, pod: &str, rule: &str) -> Result<Vec<ApiCall>, String> {
    if !valid_name(namespace) || !valid_name(pod) {
        return Err(format!("not a valid pod reference: {namespace:?}/{pod:?}"));
    }
    let pod_path = format!("/api/v1/namespaces/{namespace}/pods/{pod}");
    let label = |quarantine: bool| {
        let mut labels = json!({"palisade.dev/alert": label_value(rule)});
        if quarantine {
            labels[QUARANTINE_LABEL] = json!("true");
        }
        ApiCall {
            method: "PATCH",
            path: pod_path.clone(),
            body: Some(("application/merge-patch+json", json!({"metadata": {"labels": labels}}))),
            also_ok: &[],
        }
    };
    Ok(match action {
        PodAction::Label => vec![label(false)],
        PodAction::Isolate => vec![
            ApiCall {
                method: "POST",
                path: format!("/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"),
                body: Some((
                    "application/json",
                    json!({
                        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": QUARANTINE_POLICY, "namespace": namespace,
                                     "labels": {"app.kubernetes.io/managed-by": "palisade"}},
                        "spec": {"podSelector": {"matchLabels": {QUARANTINE_LABEL: "true"}},
                                 "policyTypes": ["Ingress", "Egress"]}
                    }),
                )),
                also_ok: &[409],
            },
            label(true),
        ],
        PodAction::DeletePod => vec![ApiCall { method: "DELETE", path: pod_path, body: None, also_ok: &[404] }],
    })
}

/// Pod labels by `(namespace, name)`.
pub type PodLabels = std::collections::HashMap<(String, String), std::collections::BTreeMap<String, String>>;

/// The labels of the pods scheduled on `node` (one list call with a field selector; the
/// sensor's view of pods that its container runtime does not label, e.g. containerd's).
pub fn node_pod_labels(client: &Client, node: &str) -> Result<PodLabels, String> {
    if !valid_name(node) {
        return Err(format!("not a valid node name: {node:?}"));
    }
    let v = client
        .get_json(&format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}&limit=1000"))
        .map_err(|e| format!("listing the pods of node {node}: {e}"))?;
    Ok(pod_labels_of(&v))
}

/// Reads a PodList.
pub fn pod_labels_of(list: &Value) -> PodLabels {
    let mut out = PodLabels::new();
    for p in list.get("items").and_then(Value::as_array).into_iter().flatten() {
        let m = &p["metadata"];
        let (Some(ns), Some(name)) = (m["namespace"].as_str(), m["name"].as_str()) else { continue };
        let labels = m["labels"]
            .as_object()
            .map(|l| l.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
            .unwrap_or_default();
        out.insert((ns.to_string(), name.to_string()), labels);
    }
    out
}

/// Sends the calls in order; stops at the first failure, naming it.
pub fn execute(client: &Client, calls: &[ApiCall]) -> Result<(), String> {
    for c in calls {
        match client.call(c.method, &c.path, c.body.as_ref().map(|(ct, v)| (*ct, v))) {
            Ok(_) => {}
            Err(e) if e.status().is_some_and(|code| c.also_ok.contains(&code)) => {}
            Err(e) => return Err(format!("{} {}: {e}", c.method, c.path)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        let calls = plan(PodAction::Isolate, "shop", "api-7d4b9", "PAL-SEN-006").unwrap_or_default();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].method, "POST");
        assert_eq!(calls[0].also_ok, &[409]);
        let np = &calls[0].body.as_ref().map(|b| b.1.clone()).unwrap_or_default();
        assert_eq!(np["spec"]["podSelector"]["matchLabels"][QUARANTINE_LABEL], "true");
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert!(np["spec"].get("ingress").is_none() && np["spec"].get("egress").is_none(), "deny all");
        assert_eq!(calls[1].path, "/api/v1/namespaces/shop/pods/api-7d4b9");
        let d = plan(PodAction::DeletePod, "shop", "api-7d4b9", "x").unwrap_or_default();
        assert_eq!((d[0].method, d[0].also_ok), ("DELETE", &[404u16][..]));
        assert!(plan(PodAction::Label, "../../x", "p", "r").is_err());
        assert!(plan(PodAction::Label, "shop", "", "r").is_err());
        assert_eq!(label_value("rule with spaces/and:colons"), "rule_with_spaces_and_colons");
        assert_eq!(label_value("-x-"), "x");
    }

    /// An API server stand-in over real HTTPS that records requests and answers with
    /// kube-apiserver's Status bodies.
    #[test]
    fn executes_against_an_https_api_server() {
        use std::sync::{Arc, Mutex};
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap_or_else(|e| panic!("{e}"));
        let tls = palisade_https::server_config(
            &palisade_https::TlsConfig {
                cert_pem: cert.cert.pem().into_bytes(),
                key_pem: cert.key_pair.serialize_pem().into_bytes(),
                client_ca_pem: None,
            },
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        #[allow(clippy::type_complexity)]
        let seen: Arc<Mutex<Vec<(String, String, String, Value)>>> = Arc::default();
        let seen2 = seen.clone();
        let handler: palisade_https::Handler = Arc::new(move |r: &palisade_https::Request| {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let ct = r.header("content-type").unwrap_or("").to_string();
            if let Ok(mut s) = seen2.lock() {
                s.push((r.method.clone(), r.path.clone(), ct, body));
            }
            if r.bearer() != Some("responder-token") {
                return palisade_https::Response::json(401, br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#.to_vec());
            }
            match (r.method.as_str(), r.path.as_str()) {
                ("GET", "/api/v1/pods") if r.query.contains("fieldSelector=spec.nodeName%3Dnode-1") => palisade_https::Response::json(200, br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1234"},"items":[{"metadata":{"name":"api-7d4b9","namespace":"shop","uid":"5a4c","labels":{"app":"payments-api","pod-template-hash":"7d4b9"}},"spec":{"nodeName":"node-1"}},{"metadata":{"name":"x","namespace":"kube-system"}}]}"#.to_vec()),
                ("POST", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies") => palisade_https::Response::json(409, br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"networkpolicies.networking.k8s.io \"palisade-quarantine\" already exists","reason":"AlreadyExists","details":{"name":"palisade-quarantine","group":"networking.k8s.io","kind":"networkpolicies"},"code":409}"#.to_vec()),
                ("PATCH", "/api/v1/namespaces/shop/pods/api-7d4b9") => palisade_https::Response::json(200, br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"api-7d4b9","namespace":"shop"}}"#.to_vec()),
                ("DELETE", "/api/v1/namespaces/shop/pods/gone") => palisade_https::Response::json(404, br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"gone\" not found","reason":"NotFound","details":{"name":"gone","kind":"pods"},"code":404}"#.to_vec()),
                _ => palisade_https::Response::json(403, br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"x\" is forbidden: User \"system:serviceaccount:palisade:sensor\" cannot delete resource \"pods\"","reason":"Forbidden","code":403}"#.to_vec()),
            }
        });
        let server = palisade_https::Server::bind("127.0.0.1:0", Some(tls), Default::default(), "apiserver", handler)
            .unwrap_or_else(|e| panic!("{e}"));
        let conn = crate::live::Connection {
            server: format!("https://127.0.0.1:{}", server.local_addr().port()),
            context: "test".into(),
            token: Some("responder-token".into()),
            basic: None,
            ca_pem: Some(cert.cert.pem().into_bytes()),
            client_cert: None,
            insecure: false,
            limits: crate::live::Limits::default(),
        };
        let client = Client::new(conn).unwrap_or_else(|e| panic!("{e}"));
        let isolate = plan(PodAction::Isolate, "shop", "api-7d4b9", "PAL-SEN-006").unwrap_or_default();
        assert_eq!(execute(&client, &isolate), Ok(()), "an existing quarantine policy is fine");
        let log = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].0, "PATCH");
        assert_eq!(log[1].2, "application/merge-patch+json");
        assert_eq!(log[1].3["metadata"]["labels"][QUARANTINE_LABEL], "true");
        assert_eq!(log[1].3["metadata"]["labels"]["palisade.dev/alert"], "PAL-SEN-006");
        assert_eq!(execute(&client, &plan(PodAction::DeletePod, "shop", "gone", "r").unwrap_or_default()), Ok(()));
        let labels = node_pod_labels(&client, "node-1").unwrap_or_default();
        assert_eq!(
            labels.get(&("shop".to_string(), "api-7d4b9".to_string())).and_then(|l| l.get("app")).map(String::as_str),
            Some("payments-api")
        );
        assert!(node_pod_labels(&client, "bad/node").is_err());
        let err = execute(&client, &plan(PodAction::DeletePod, "shop", "x", "r").unwrap_or_default());
        assert!(err.as_ref().is_err_and(|e| e.contains("403") && e.contains("forbidden")), "{err:?}");
    }
}
