//! The Kubernetes objects that install the webhook (`palisade admission manifests`).
//!
//! Invariants the output keeps, each tested:
//! - The webhook's `namespaceSelector` excludes its own namespace (and every exempt namespace),
//!   so a broken webhook can never stop its own pods from being recreated.
//! - `failurePolicy` is `Ignore` unless strict mode asks for `Fail`.
//! - The pods pass Palisade's own PSS restricted checks: non-root, read-only root filesystem,
//!   no privilege escalation, all capabilities dropped, RuntimeDefault seccomp, resource limits,
//!   no service-account token (the webhook never calls the API server).
//! - With generated TLS, `caBundle` is the CA that signed the serving certificate, whose SANs are
//!   the Service's DNS names; with cert-manager, the CA is injected by annotation instead.

use crate::Config;
use base64::Engine as _;
use serde_json::{json, Value};

/// What to render.
#[derive(Debug, Clone)]
pub struct ManifestOptions {
    /// Namespace to install into.
    pub namespace: String,
    /// Name of the Deployment, Service, Secret and webhook configuration.
    pub name: String,
    /// Container image.
    pub image: String,
    /// The configuration shipped in the ConfigMap (YAML text).
    pub config_yaml: String,
    /// The parsed configuration (for exempt namespaces).
    pub config: Config,
    /// failurePolicy Fail instead of Ignore.
    pub strict: bool,
    /// Use cert-manager instead of generated TLS.
    pub cert_manager: bool,
    /// kube-apiserver's call timeout.
    pub timeout_seconds: u8,
    /// Replicas.
    pub replicas: u16,
}

/// Generated TLS material (PEM).
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The CA certificate (goes to `caBundle`).
    pub ca_pem: String,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving key.
    pub key_pem: String,
}

/// The default configuration: PSS baseline denied, restricted warned, kube-system exempt.
pub const DEFAULT_CONFIG: &str = "\
# Palisade admission webhook configuration.
# Policies are evaluated in order; the strictest action wins (deny > warn > audit).
policies:
  - name: pss-baseline
    preset: baseline
    action: deny
  - name: pss-restricted
    preset: restricted
    action: warn
exemptions:
  namespaces: [kube-system]
";

/// The DNS names the serving certificate must carry.
pub fn service_dns_names(name: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{name}.{namespace}.svc"),
        format!("{name}.{namespace}.svc.cluster.local"),
        format!("{name}.{namespace}"),
        name.to_string(),
    ]
}

/// Generates a CA (valid 10 years) and a serving certificate (valid 2 years) for the Service.
pub fn generate_tls(name: &str, namespace: &str) -> Result<TlsMaterial, rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{name} webhook CA"));
    ca.distinguished_name = dn;
    ca.not_before = now - time::Duration::hours(1);
    ca.not_after = now + time::Duration::days(3650);
    let ca_cert = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(service_dns_names(name, namespace))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{name}.{namespace}.svc"));
    leaf.distinguished_name = dn;
    leaf.not_before = now - time::Duration::hours(1);
    leaf.not_after = now + time::Duration::days(730);
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;
    Ok(TlsMaterial { ca_pem: ca_cert.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// The resources the webhook validates (CREATE and UPDATE).
const RULES: &[(&str, &str, &[&str])] = &[
    // pods/ephemeralcontainers: what `kubectl debug` updates; the object is the whole Pod
    ("", "v1", &["pods", "pods/ephemeralcontainers", "services"]),
    ("apps", "v1", &["deployments", "replicasets", "statefulsets", "daemonsets"]),
    ("batch", "v1", &["jobs", "cronjobs"]),
    ("rbac.authorization.k8s.io", "v1", &["roles", "clusterroles", "rolebindings", "clusterrolebindings"]),
];

/// Renders every object, in apply order.
pub fn render(o: &ManifestOptions, tls: Option<&TlsMaterial>) -> Vec<Value> {
    let (ns, name) = (o.namespace.as_str(), o.name.as_str());
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "palisade", "app.kubernetes.io/component": "admission-webhook"});
    let selector = json!({"app.kubernetes.io/name": name});
    let secret = format!("{name}-tls");
    let mut out = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "kubernetes.io/metadata.name": ns,
            "pod-security.kubernetes.io/enforce": "restricted"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "automountServiceAccountToken": false}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("{name}-config"), "namespace": ns, "labels": labels},
            "data": {"config.yaml": o.config_yaml}}),
    ];
    if o.cert_manager {
        out.push(json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
            "metadata": {"name": format!("{name}-selfsigned"), "namespace": ns, "labels": labels},
            "spec": {"selfSigned": {}}}));
        out.push(json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": format!("{name}-cert"), "namespace": ns, "labels": labels},
            "spec": {"secretName": secret, "dnsNames": service_dns_names(name, ns), "duration": "8760h", "renewBefore": "720h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "issuerRef": {"name": format!("{name}-selfsigned"), "kind": "Issuer"}}}));
    } else if let Some(t) = tls {
        out.push(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": secret, "namespace": ns, "labels": labels},
            "stringData": {"tls.crt": t.cert_pem, "tls.key": t.key_pem, "ca.crt": t.ca_pem}}));
    }
    let probe = |path: &str, period: u32| json!({"httpGet": {"path": path, "port": "https", "scheme": "HTTPS"}, "periodSeconds": period, "timeoutSeconds": 2, "failureThreshold": 3});
    out.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": o.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels, "annotations": {"kubectl.kubernetes.io/default-container": "webhook"}},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": selector}}}]}},
                    "containers": [{
                        "name": "webhook",
                        "image": o.image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": ["admission", "serve", "--config", "/etc/palisade/config/config.yaml",
                                 "--tls-cert", "/etc/palisade/tls/tls.crt", "--tls-key", "/etc/palisade/tls/tls.key",
                                 "--listen", "0.0.0.0:8443"],
                        "ports": [{"name": "https", "containerPort": 8443, "protocol": "TCP"}],
                        "readinessProbe": probe("/readyz", 5),
                        "livenessProbe": probe("/healthz", 10),
                        // memory from a measurement (examples/rss.rs, process incl. its client): 8 parallel
                        // 3 MB reviews of 1,000 privileged containers peak at 310 MB; the worst shape (3.3 MB
                        // of 30,000 tiny containers, decided invalid) at 375 MB with `serve`'s 4 bodies in flight
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
                        "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                            "privileged": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/etc/palisade/config", "readOnly": true},
                            {"name": "tls", "mountPath": "/etc/palisade/tls", "readOnly": true}],
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": format!("{name}-config")}},
                        {"name": "tls", "secret": {"secretName": secret}}],
                }
            }
        }}));
    out.push(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}}}));
    out.push(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"type": "ClusterIP", "selector": selector,
            "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]}}));
    // never call the webhook for its own namespace, nor for namespaces it exempts anyway
    let mut excluded = vec![ns.to_string()];
    for n in &o.config.exemptions.namespaces {
        if !n.ends_with('*') && !excluded.contains(n) {
            excluded.push(n.clone());
        }
    }
    let mut client = json!({"service": {"name": name, "namespace": ns, "path": "/validate", "port": 443}});
    let mut meta = json!({"name": name, "labels": labels});
    match (o.cert_manager, tls) {
        (true, _) => meta["annotations"] = json!({"cert-manager.io/inject-ca-from": format!("{ns}/{name}-cert")}),
        (false, Some(t)) => {
            client["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(t.ca_pem.as_bytes()))
        }
        (false, None) => {}
    }
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(g, v, r)| {
            json!({"apiGroups": [g], "apiVersions": [v], "resources": r, "operations": ["CREATE", "UPDATE"], "scope": "*"})
        })
        .collect();
    out.push(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": meta,
        "webhooks": [{
            "name": "validate.admission.palisade.dev",
            "admissionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": client,
            "rules": rules,
            "failurePolicy": if o.strict { "Fail" } else { "Ignore" },
            "matchPolicy": "Equivalent",
            "sideEffects": "NoneOnDryRun",
            "timeoutSeconds": o.timeout_seconds,
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}]},
        }]}));
    out
}

/// Multi-document YAML.
pub fn to_yaml(objects: &[Value]) -> String {
    let mut s = String::from("# Generated by `palisade admission manifests`.\n");
    for o in objects {
        s.push_str("---\n");
        s.push_str(&palisade_yaml::to_string(o));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(strict: bool, cert_manager: bool) -> ManifestOptions {
        ManifestOptions {
            namespace: "palisade-system".into(),
            name: "palisade-admission".into(),
            image: "ghcr.io/palisade-sec/palisade:0.1.0".into(),
            config_yaml: DEFAULT_CONFIG.into(),
            config: Config::from_yaml(DEFAULT_CONFIG).unwrap_or_default(),
            strict,
            cert_manager,
            timeout_seconds: 5,
            replicas: 2,
        }
    }

    fn find<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
        objs.iter().find(|o| o["kind"] == kind).unwrap_or(&Value::Null)
    }

    #[test]
    fn webhook_never_locks_itself_out_and_defaults_to_ignore() {
        let tls = generate_tls("palisade-admission", "palisade-system").unwrap_or_else(|e| panic!("{e}"));
        let objs = render(&opts(false, false), Some(&tls));
        let wh = &find(&objs, "ValidatingWebhookConfiguration")["webhooks"][0];
        assert_eq!(wh["failurePolicy"], "Ignore");
        assert_eq!(wh["timeoutSeconds"], 5);
        let excluded = &wh["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(excluded["operator"], "NotIn");
        assert!(excluded["values"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("palisade-system")) && v.contains(&json!("kube-system"))));
        let ca = base64::engine::general_purpose::STANDARD
            .decode(wh["clientConfig"]["caBundle"].as_str().unwrap_or(""))
            .unwrap_or_default();
        assert_eq!(ca, tls.ca_pem.as_bytes());
        assert_eq!(find(&objs, "Secret")["stringData"]["tls.crt"], tls.cert_pem.as_str());
        let strict = render(&opts(true, true), None);
        let wh = find(&strict, "ValidatingWebhookConfiguration");
        assert_eq!(wh["webhooks"][0]["failurePolicy"], "Fail");
        assert_eq!(
            wh["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "palisade-system/palisade-admission-cert"
        );
        assert!(find(&strict, "Certificate").is_object() && find(&strict, "Secret").is_null());
        assert_eq!(find(&objs, "PodDisruptionBudget")["spec"]["minAvailable"], 1);
        assert_eq!(find(&objs, "Deployment")["spec"]["replicas"], 2);
        let rules = &find(&objs, "ValidatingWebhookConfiguration")["webhooks"][0]["rules"];
        assert!(
            rules.as_array().is_some_and(|r| r
                .iter()
                .any(|r| r["resources"].as_array().is_some_and(|x| x.contains(&json!("pods/ephemeralcontainers"))
                    && r["operations"].as_array().is_some_and(|o| o.contains(&json!("UPDATE")))))),
            "{rules}"
        );
    }

    #[test]
    fn the_webhook_pods_pass_our_own_restricted_checks() {
        let objs = render(&opts(false, true), None);
        let dep = find(&objs, "Deployment");
        let cfg = Config::preset(crate::Preset::Restricted, crate::Action::Deny);
        let d = crate::decide(dep, crate::Operation::Create, "admin", &[], &cfg);
        assert!(d.allowed, "{:?}", d.violations);
        // and the rendered YAML reads back as the same objects
        let text = to_yaml(&objs);
        let mut loaded = palisade_k8s::load::Loaded::default();
        palisade_k8s::load::load_bytes("m.yaml", text.as_bytes(), &mut loaded);
        assert_eq!(loaded.objects.len(), objs.len(), "{:?}", loaded.warnings);
    }
}
