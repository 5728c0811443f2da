//! The audit webhook receiver over real HTTPS on 127.0.0.1: bearer tokens, client certificates,
//! EventList bodies as kube-apiserver's webhook backend sends them.

#![allow(clippy::unwrap_used, clippy::panic)]

use palisade_detect::alert::Finding;
use palisade_detect::pipeline::{Detector, DetectorConfig};
use palisade_detect::rules::RuleSet;
use palisade_detect::serve::{self, ServeConfig, TlsConfig, WebhookServer};
use palisade_detect::simulate::EventBuilder;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "palisade test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let sk = KeyPair::generate().unwrap();
    let sp = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let server = sp.signed_by(&sk, &ca, &ca_key).unwrap();
    let ck = KeyPair::generate().unwrap();
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.distinguished_name.push(DnType::CommonName, "kube-apiserver-audit");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = cp.signed_by(&ck, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_cert: server.pem(),
        server_key: sk.serialize_pem(),
        client_cert: client.pem(),
        client_key: ck.serialize_pem(),
    }
}

fn agent(p: &Pki, client_cert: bool) -> ureq::Agent {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(p.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = if client_cert {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(p.client_cert.as_bytes()).map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_slice(p.client_key.as_bytes()).unwrap();
        b.with_client_auth_cert(certs, key).unwrap()
    } else {
        b.with_no_client_auth()
    };
    ureq::AgentBuilder::new().tls_config(Arc::new(cfg)).build()
}

fn event_list() -> String {
    let exec = EventBuilder::new("create", "pods")
        .user("mallory@corp.example", &["dev"])
        .ip("198.51.100.7")
        .ns("prod")
        .name("api-0")
        .sub("exec")
        .query("command=sh&container=api&stdin=true&tty=true")
        .code(101)
        .id("a1")
        .build();
    let list = EventBuilder::new("list", "pods").user("alice@corp.example", &["dev"]).ns("prod").id("a2").build();
    // the webhook backend writes list items without kind/apiVersion
    let strip = |s: String| s.replacen("\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",", "", 1);
    format!(
        "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{},{}]}}",
        strip(exec),
        strip(list)
    )
}

fn run_server(cfg: ServeConfig, client: impl FnOnce(std::net::SocketAddr) + Send + 'static) -> Vec<Finding> {
    let server = WebhookServer::bind(cfg).unwrap();
    let addr = server.local_addr();
    let rules = RuleSet::builtin().unwrap_or_else(|e| panic!("{e}"));
    let mut det = Detector::new(&rules, DetectorConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let h = std::thread::spawn(move || {
        client(addr);
        done2.store(true, Ordering::SeqCst);
    });
    let mut out = Vec::new();
    serve::run(&server, &mut det, &|| done.load(Ordering::SeqCst), |f| {
        out.push(f.clone());
        Ok(())
    })
    .unwrap();
    h.join().unwrap();
    server.shutdown();
    out
}

#[test]
fn https_with_bearer_token() {
    let p = Arc::new(pki());
    let mut cfg = ServeConfig::new("127.0.0.1:0");
    cfg.tls = Some(TlsConfig {
        cert_pem: p.server_cert.clone().into_bytes(),
        key_pem: p.server_key.clone().into_bytes(),
        client_ca_pem: None,
    });
    cfg.bearer_tokens = vec!["t0ken".into()];
    let p2 = p.clone();
    let out = run_server(cfg, move |addr| {
        let a = agent(&p2, false);
        let url = format!("https://127.0.0.1:{}/audit", addr.port());
        let r = a
            .post(&url)
            .set("Authorization", "Bearer t0ken")
            .set("Content-Type", "application/json")
            .send_string(&event_list());
        assert_eq!(r.map(|r| r.status()).map_err(|e| e.to_string()), Ok(200));
        // keep-alive: a second request on the pooled connection
        let r = a.post(&url).set("Authorization", "Bearer t0ken").send_string(&event_list());
        assert_eq!(r.map(|r| r.status()).ok(), Some(200));
        match a.post(&url).set("Authorization", "Bearer wrong").send_string(&event_list()) {
            Err(ureq::Error::Status(code, _)) => assert_eq!(code, 401),
            other => panic!("{other:?}"),
        }
        match a.post(&url).set("Authorization", "Bearer t0ken").send_string("{\"kind\":\"PodList\"}") {
            Err(ureq::Error::Status(code, _)) => assert_eq!(code, 400),
            other => panic!("{other:?}"),
        }
        // plain HTTP to the TLS port fails
        assert!(ureq::post(&format!("http://127.0.0.1:{}/audit", addr.port()))
            .timeout(std::time::Duration::from_secs(3))
            .send_string("{}")
            .is_err());
    });
    let alerts: Vec<_> = out
        .iter()
        .filter_map(|f| match f {
            Finding::Alert(a) => Some(a),
            _ => None,
        })
        .collect();
    assert!(
        alerts.iter().any(|a| a.rule.id == "PAL-KA-001" && a.entities.user == "mallory@corp.example"),
        "{alerts:?}"
    );
}

#[test]
fn https_with_client_certificates() {
    let p = Arc::new(pki());
    let mut cfg = ServeConfig::new("127.0.0.1:0");
    cfg.tls = Some(TlsConfig {
        cert_pem: p.server_cert.clone().into_bytes(),
        key_pem: p.server_key.clone().into_bytes(),
        client_ca_pem: Some(p.ca_pem.clone().into_bytes()),
    });
    let p2 = p.clone();
    let out = run_server(cfg, move |addr| {
        let url = format!("https://127.0.0.1:{}/audit", addr.port());
        let r = agent(&p2, true).post(&url).send_string(&event_list());
        assert_eq!(r.map(|r| r.status()).map_err(|e| e.to_string()), Ok(200));
        // without a client certificate the handshake is refused
        assert!(agent(&p2, false).post(&url).send_string(&event_list()).is_err());
    });
    assert!(out.iter().any(|f| matches!(f, Finding::Alert(a) if a.rule.id == "PAL-KA-001")));
}

#[test]
fn refuses_to_run_without_authentication() {
    assert!(WebhookServer::bind(ServeConfig::new("127.0.0.1:0")).is_err());
}
