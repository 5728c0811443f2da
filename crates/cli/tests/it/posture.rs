//! `palisade posture` and `palisade k8s inventory` on the shared corpus of real manifests.

use crate::util::*;
use serde_json::Value;

fn corpus() -> String {
    shared().join("k8s-corpus").display().to_string()
}

fn count(report: &Value, check: &str) -> usize {
    report["findings"].as_array().map(|a| a.iter().filter(|f| f["check_id"] == check).count()).unwrap_or(0)
}

#[test]
fn corpus_assessment_agrees_on_privileged_containers() {
    let r = palisade_json(&["posture", "-f", &corpus(), "--format", "json"]);
    // Checkov CKV_K8S_16, Trivy KSV017 and Gatekeeper's privileged-container policy all find 8.
    assert_eq!(count(&r, "PAL-K8S-001"), 8);
    assert!(r["objects"].as_u64().unwrap_or(0) >= 480);
    let scores: Vec<String> =
        r["scores"].as_array().map(|a| a.iter().map(|x| s(&x["framework"])).collect()).unwrap_or_default();
    assert_eq!(scores, vec!["pss-baseline", "pss-restricted", "nsa", "cis"]);
    // Bad documents are warnings with file and line; the rest is still assessed.
    let warnings: Vec<String> = r["warnings"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w.contains("newrelic-config-template.yaml:1: invalid YAML at line 7")),
        "{warnings:?}"
    );
    // Every finding names the object, its file and line, and the failing field.
    for f in r["findings"].as_array().into_iter().flatten().take(200) {
        assert!(!s(&f["object"]["kind"]).is_empty() && !s(&f["object"]["file"]).is_empty());
        assert!(s(&f["path"]).starts_with('/'), "{f}");
    }
    assert!(!r["manual"].as_array().map(Vec::is_empty).unwrap_or(true), "node-access CIS items are listed");
}

#[test]
fn sarif_table_gates_and_filters() {
    let sarif = palisade_json(&["posture", "-f", &corpus(), "--format", "sarif", "--severity", "critical"]);
    let results = sarif["runs"][0]["results"].as_array().cloned().unwrap_or_default();
    assert!(!results.is_empty());
    assert!(results.iter().all(|r| r["level"] == "error"));
    let fq = s(&results[0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]);
    assert!(fq.split('/').count() >= 2, "kind/namespace/name: {fq}");
    assert!(results[0]["locations"][0]["physicalLocation"]["region"]["startLine"].as_u64().unwrap_or(0) >= 1);
    let out = palisade(&["posture", "-f", &corpus(), "--format", "table", "--exit-code", "4"]);
    assert_eq!(out.status.code(), Some(4));
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("PAL-K8S-001") && t.contains("FRAMEWORK"), "{}", &t[..t.len().min(500)]);
}

#[test]
fn custom_rego_and_exceptions() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pod = dir.path().join("pod.yaml");
    std::fs::write(&pod, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n  labels: {team: a}\nspec:\n  containers:\n  - name: app\n    image: nginx:1.25\n    securityContext: {privileged: true}\n").unwrap_or_else(|e| panic!("{e}"));
    // A Gatekeeper ConstraintTemplate + Constraint, as users bring them.
    let tpl = dir.path().join("template.yaml");
    std::fs::write(
        &tpl,
        r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sdenylatestnginx
spec:
  crd:
    spec:
      names:
        kind: K8sDenyImage
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sdenyimage
        violation[{"msg": msg}] {
          c := input.review.object.spec.containers[_]
          startswith(c.image, input.parameters.prefix)
          msg := sprintf("image %v is not allowed", [c.image])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sDenyImage
metadata:
  name: no-nginx
spec:
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
  parameters:
    prefix: "nginx"
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let r = palisade_json(&[
        "posture",
        "-f",
        pod.to_str().unwrap_or_default(),
        "--policy",
        tpl.to_str().unwrap_or_default(),
        "--format",
        "json",
    ]);
    let rego: Vec<&Value> = r["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| s(&f["message"]).contains("image nginx:1.25 is not allowed")).collect())
        .unwrap_or_default();
    assert_eq!(rego.len(), 1, "{r}");
    assert_eq!(count(&r, "PAL-K8S-001"), 1);
    // An exception by check and namespace, with a reason, removes the privileged finding.
    let cfg = dir.path().join("posture.yaml");
    std::fs::write(&cfg, "exceptions:\n- checks: [PAL-K8S-001]\n  namespaces: [shop]\n  reason: break-glass debugging pod, ticket SEC-42\n  expires: 2999-01-01\n").unwrap_or_else(|e| panic!("{e}"));
    let r = palisade_json(&[
        "posture",
        "-f",
        pod.to_str().unwrap_or_default(),
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--format",
        "json",
    ]);
    assert_eq!(count(&r, "PAL-K8S-001"), 0);
    let exc = r["excepted"].as_array().cloned().unwrap_or_default();
    assert!(exc.iter().any(|e| s(&e["reason"]).contains("SEC-42")), "{exc:?}");
    // An expired exception no longer applies.
    std::fs::write(
        &cfg,
        "exceptions:\n- checks: [PAL-K8S-001]\n  namespaces: [shop]\n  reason: old\n  expires: 2001-01-01\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let r = palisade_json(&[
        "posture",
        "-f",
        pod.to_str().unwrap_or_default(),
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--format",
        "json",
    ]);
    assert_eq!(count(&r, "PAL-K8S-001"), 1);
    // A configuration error is a clear failure.
    std::fs::write(&cfg, "exeptions: []\n").unwrap_or_else(|e| panic!("{e}"));
    let out =
        palisade(&["posture", "-f", pod.to_str().unwrap_or_default(), "--config", cfg.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field"));
}

#[test]
fn inventory_of_the_corpus() {
    let inv = palisade_json(&["k8s", "inventory", "-f", &corpus(), "--format", "json"]);
    assert!(inv["workloads"].as_array().map(Vec::len).unwrap_or(0) > 100);
    assert!(inv["images"].as_object().is_some_and(|m| m.keys().any(|k| k.contains("ingress-nginx/controller"))));
    assert!(inv["admission_webhooks"]
        .as_array()
        .is_some_and(|a| a.iter().any(|w| s(w).contains("ingress-nginx-admission"))));
    assert!(inv["bindings"].as_array().is_some_and(|a| a.iter().any(|b| b["role"] == "ClusterRole/prometheus-k8s")));
}

#[test]
fn streaming_files_equals_in_memory_assessment() {
    // Files are assessed in two streaming passes; stdin is held in memory. Same verdicts.
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    let mut stack = vec![shared().join("k8s-corpus/kube-prometheus")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut stream = String::new();
    for f in &files {
        stream.push_str("---\n");
        stream.push_str(&std::fs::read_to_string(f).unwrap_or_default());
        stream.push('\n');
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let all = dir.path().join("all.yaml");
    std::fs::write(&all, &stream).unwrap_or_else(|e| panic!("{e}"));
    let key = |r: &Value| -> Vec<String> {
        let mut v: Vec<String> = r["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        format!(
                            "{} {} {} {} {}",
                            s(&f["check_id"]),
                            s(&f["object"]["kind"]),
                            s(&f["object"]["namespace"]),
                            s(&f["object"]["name"]),
                            s(&f["path"])
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    // Pad the file past the streaming threshold (32 MiB) with a YAML comment.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&all).unwrap_or_else(|e| panic!("{e}"));
        let line = format!("# {}\n", "x".repeat(1022));
        for _ in 0..(33 * 1024) {
            f.write_all(line.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let streamed = palisade_json(&["posture", "-f", all.to_str().unwrap_or_default(), "--format", "json"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["posture", "-f", "-", "--format", "json"])
        .stdin(std::fs::File::open(&all).unwrap_or_else(|e| panic!("{e}")))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let in_memory: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(!key(&streamed).is_empty());
    assert_eq!(key(&streamed), key(&in_memory));
    assert_eq!(streamed["scores"], in_memory["scores"]);
    assert_eq!(streamed["objects"], in_memory["objects"]);
}

#[test]
fn admission_test_gives_the_webhook_verdict_offline() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let f = dir.path().join("pods.yaml");
    std::fs::write(&f, "apiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: shop}\nspec:\n  containers:\n  - name: app\n    image: nginx:1.25\n    securityContext: {privileged: true}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: good, namespace: shop}\nspec:\n  containers:\n  - name: app\n    image: nginx:1.25\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: sys, namespace: kube-system}\nspec:\n  containers:\n  - name: app\n    image: nginx:1.25\n    securityContext: {privileged: true}\n").unwrap_or_else(|e| panic!("{e}"));
    let path = f.to_str().unwrap_or_default();
    let out = palisade(&["admission", "test", "-f", path, "--preset", "baseline", "--action", "deny"]);
    assert_eq!(out.status.code(), Some(1));
    let t = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("Pod/shop/bad denied: PAL-K8S-001"), "{t}");
    assert_eq!(lines[1], "Pod/shop/good allowed");
    assert!(lines[2].starts_with("Pod/kube-system/sys exempt"), "{t}");
    let out = palisade(&["admission", "test", "-f", path, "--preset", "baseline", "--action", "warn"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Pod/shop/bad warned"));
}

/// `--preset`, `--action` and `--severity` are typed: an unknown value is clap's usage error
/// (exit 2, the valid values listed), from a flag or its environment variable, never a
/// fallback to a preset, an action or a severity.
#[test]
fn unknown_presets_actions_and_severities_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let f = dir.path().join("pod.yaml");
    std::fs::write(&f, "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers:\n  - {name: app, image: nginx:1.25}\n").unwrap_or_else(|e| panic!("{e}"));
    let path = f.to_str().unwrap_or_default();
    let usage_error = |args: &[&str], value: &str, listed: &str| {
        let out = palisade(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("invalid value '{value}'")) && err.contains(listed), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    };
    usage_error(&["admission", "test", "-f", path, "--preset", "strict"], "strict", "baseline, restricted");
    usage_error(
        &["admission", "test", "-f", path, "--preset", "baseline", "--action", "block"],
        "block",
        "audit, warn, deny",
    );
    usage_error(
        &["admission", "serve", "--preset", "Baseline", "--tls-cert", path, "--tls-key", path],
        "Baseline",
        "baseline, restricted",
    );
    usage_error(&["posture", "-f", path, "--severity", "high,hihg"], "hihg", "critical, high, medium, low, info");
    // the environment variable goes through the same parser
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["admission", "serve", "--tls-cert", path, "--tls-key", path])
        .env("PALISADE_ADMISSION_PRESET", "strict")
        .env("PALISADE_LOG", "error")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'strict'"));
    // the accepted spellings are unchanged
    let out = palisade(&["admission", "test", "-f", path, "--preset", "restricted", "--action", "audit"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Pod/shop/p allowed: PAL-"), "{out:?}");
    let out = palisade(&["posture", "-f", path, "--format", "json", "--severity", "HIGH,Medium,informational"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A label-selector operator Kubernetes does not have fails where the configuration is loaded
/// (it used to match nothing, so the policy silently never applied).
#[test]
fn unknown_selector_operators_refuse_the_configuration() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let f = dir.path().join("pod.yaml");
    std::fs::write(&f, "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers:\n  - {name: app, image: nginx:1.25, securityContext: {privileged: true}}\n").unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("config.yaml");
    let config = |op: &str| {
        format!("policies:\n- name: scoped\n  preset: baseline\n  action: deny\n  objectSelector:\n    matchExpressions: [{{key: palisade.dev/skip, operator: {op}}}]\n")
    };
    std::fs::write(&cfg, config("DoesNotExists")).unwrap_or_else(|e| panic!("{e}"));
    let (pods, cfg_path) = (f.to_str().unwrap_or_default(), cfg.to_str().unwrap_or_default());
    let out = palisade(&["admission", "test", "-f", pods, "--config", cfg_path]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("DoesNotExists") && err.contains("config.yaml"), "{err}");
    std::fs::write(&cfg, config("DoesNotExist")).unwrap_or_else(|e| panic!("{e}"));
    let out = palisade(&["admission", "test", "-f", pods, "--config", cfg_path]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Pod/shop/p denied"));
}

/// Every list forbidden (403, as kube-apiserver answers an identity without RBAC): the
/// assessment read nothing, so it must fail with the reason rather than pass `--exit-code 1`
/// with perfect scores. The API server is a stand-in over real HTTPS answering kube-apiserver's
/// Status objects.
#[test]
fn posture_fails_when_every_list_is_forbidden() {
    use base64::Engine as _;
    use std::sync::Arc;
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
    // Discovery is open to every authenticated identity (system:discovery); lists are not.
    let handler: palisade_https::Handler = Arc::new(|r: &palisade_https::Request| {
        match r.path.as_str() {
        "/api" => palisade_https::Response::json(200, br#"{"kind":"APIVersions","versions":["v1"]}"#.to_vec()),
        "/apis" => palisade_https::Response::json(
            200,
            br#"{"kind":"APIGroupList","apiVersion":"v1","groups":[{"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],"preferredVersion":{"groupVersion":"apps/v1","version":"v1"}}]}"#.to_vec(),
        ),
        _ => palisade_https::Response::json(
            403,
            br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden: User \"system:anonymous\" cannot list resource","reason":"Forbidden","code":403}"#
                .to_vec(),
        ),
    }
    });
    let server =
        palisade_https::Server::bind("127.0.0.1:0", Some(tls), Default::default(), "forbidding-apiserver", handler)
            .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kc = dir.path().join("kubeconfig");
    let ca = base64::engine::general_purpose::STANDARD.encode(cert.cert.pem());
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority-data: {ca}\ncontexts:\n- name: t\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user:\n    token: nobody\n",
            server.local_addr().port()
        ),
    )
    .ok();
    let out = palisade(&["posture", "--kubeconfig", kc.to_str().unwrap_or(""), "--exit-code", "1", "--format", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an assessment that read nothing passed the gate: {err}");
    assert!(err.contains("no kind could be read"), "{err}");
    assert!(err.contains("403") || err.to_lowercase().contains("forbidden"), "{err}");
}

/// A file that could not be read fails `--exit-code` even when what was read is clean: the
/// score describes only the objects read (hardening issue, item 6).
#[test]
fn a_skipped_file_fails_the_gate() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\ndata:\n  mode: fast\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let clean = palisade(&["posture", "-f", &dir.path().display().to_string(), "--format", "json", "--exit-code", "3"]);
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stderr));
    std::fs::write(dir.path().join("broken.json"), "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"spec\": ")
        .unwrap_or_else(|e| panic!("{e}"));
    let ungated = palisade(&["posture", "-f", &dir.path().display().to_string(), "--format", "json"]);
    assert_eq!(ungated.status.code(), Some(0));
    let gated = palisade(&["posture", "-f", &dir.path().display().to_string(), "--format", "json", "--exit-code", "3"]);
    assert_eq!(gated.status.code(), Some(3));
    let err = String::from_utf8_lossy(&gated.stderr);
    assert!(err.contains("skipped"), "{err}");
    let r: Value = serde_json::from_slice(&gated.stdout).unwrap_or_else(|e| panic!("{e}"));
    let warnings: Vec<String> = r["warnings"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
    assert!(warnings.iter().any(|w| w.contains("broken.json") && w.contains("invalid JSON")), "{warnings:?}");
}
