//! `palisade posture`.

use crate::args::{PostureArgs, PostureFormat};
use anyhow::Context as _;
use palisade_posture::{Assessment, Exception, Framework, Options, Severity};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    trusted_registries: Vec<String>,
    #[serde(default)]
    exceptions: Vec<Exception>,
    #[serde(default)]
    policies: Vec<PathBuf>,
}

/// Objects assessed at a time when streaming files.
const CHUNK: usize = 4096;
/// Inputs larger than this are streamed (two passes) instead of held in memory.
const STREAM_ABOVE: u64 = 32 << 20;

/// Total size of the files under `paths` (directories walked).
fn input_bytes(paths: &[PathBuf]) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => {
                stack.extend(std::fs::read_dir(&p).into_iter().flatten().flatten().map(|e| e.path()))
            }
            Ok(m) => total += m.len(),
            Err(_) => {}
        }
    }
    total
}

fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    palisade_vulndb::db::humantime_rfc3339(secs)[..10].to_string()
}

fn options(a: &PostureArgs) -> anyhow::Result<Options> {
    let mut cfg = Config::default();
    if let Some(p) = &a.config {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        cfg = palisade_yaml::from_str(&text)
            .with_context(|| format!("{}: invalid posture configuration", p.display()))?;
        let base = p.parent().unwrap_or(Path::new("."));
        cfg.policies = cfg.policies.iter().map(|x| if x.is_absolute() { x.clone() } else { base.join(x) }).collect();
    }
    let mut opts = Options { today: Some(today()), ..Default::default() };
    opts.trusted_registries = cfg.trusted_registries;
    opts.trusted_registries.extend(a.trusted_registries.iter().cloned());
    opts.exceptions = cfg.exceptions;
    let mut policies = cfg.policies;
    policies.extend(a.policies.iter().cloned());
    opts.custom_rego = palisade_posture::rego::load_paths(&policies)?;
    for f in &a.framework {
        let fw: Framework = serde_json::from_value(json!(f.to_ascii_lowercase())).map_err(|_| {
            anyhow::anyhow!("--framework: unknown framework {f:?} (pss-baseline, pss-restricted, nsa, cis)")
        })?;
        opts.frameworks.push(fw);
    }
    Ok(opts)
}

fn table(a: &Assessment, cluster: &str) -> String {
    let mut out = String::new();
    let mut by_obj: BTreeMap<String, Vec<&palisade_posture::Finding>> = BTreeMap::new();
    for f in &a.findings {
        let o = &f.object;
        let id = if o.namespace.is_empty() {
            format!("{}/{}", o.kind, o.name)
        } else {
            format!("{}/{}/{}", o.kind, o.namespace, o.name)
        };
        let loc = if o.line > 0 { format!("{}:{}", o.file, o.line) } else { o.file.clone() };
        by_obj.entry(format!("{id}  ({loc})")).or_default().push(f);
    }
    let _ = writeln!(out, "{cluster}: {} objects, {} findings", a.objects, a.findings.len());
    for (obj, fs) in &by_obj {
        let _ = writeln!(out, "\n{obj}");
        for f in fs {
            let title = palisade_posture::check(&f.check_id).map(|c| c.title).unwrap_or("");
            let _ = writeln!(
                out,
                "  {:<9} {:<14} {}  [{}]",
                f.severity.as_str().to_uppercase(),
                f.check_id,
                if title.is_empty() { &f.message } else { title },
                f.path
            );
            if !f.message.is_empty() && !title.is_empty() {
                let _ = writeln!(out, "  {:<24} {}", "", f.message);
            }
        }
    }
    let mut sev: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &a.findings {
        *sev.entry(f.severity.as_str()).or_insert(0) += 1;
    }
    let _ = writeln!(
        out,
        "\nfindings by severity: {}",
        sev.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    );
    if !a.excepted.is_empty() {
        let _ = writeln!(out, "{} finding(s) excepted", a.excepted.len());
    }
    let _ = writeln!(out, "\nFRAMEWORK                 SCORE   PASSED  FAILED");
    for s in &a.scores {
        let _ = writeln!(out, "{:<25} {:>5.1}%  {:>6}  {:>6}", s.framework.name(), s.score_percent, s.passed, s.failed);
    }
    if !a.manual.is_empty() {
        let _ = writeln!(
            out,
            "\n{} CIS item(s) need node access and were not assessed (see --format json: manual)",
            a.manual.len()
        );
    }
    for w in &a.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        _ => "note",
    }
}

fn sarif(a: &Assessment) -> Value {
    let mut used: Vec<&str> = a.findings.iter().map(|f| f.check_id.as_str()).collect();
    used.sort();
    used.dedup();
    let rules: Vec<Value> = used
        .iter()
        .map(|id| match palisade_posture::check(id) {
            Some(c) => json!({
                "id": c.id, "name": c.title, "shortDescription": {"text": c.title}, "fullDescription": {"text": c.rationale},
                "help": {"text": c.remediation}, "defaultConfiguration": {"level": level(c.severity)},
                "properties": {"category": c.category, "cis": c.references.cis, "mitre": c.references.mitre,
                               "tags": ["kubernetes", "security", c.category], "security-severity": match c.severity {
                                   Severity::Critical => "9.0", Severity::High => "7.5", Severity::Medium => "5.0", _ => "2.0" }},
            }),
            None => json!({"id": id, "shortDescription": {"text": id}}),
        })
        .collect();
    let results: Vec<Value> = a
        .findings
        .iter()
        .map(|f| {
            let o = &f.object;
            let id = if o.namespace.is_empty() { format!("{}/{}", o.kind, o.name) } else { format!("{}/{}/{}", o.kind, o.namespace, o.name) };
            let mut loc = json!({"logicalLocations": [{"fullyQualifiedName": id, "kind": "resource"}]});
            if !o.file.is_empty() && !o.file.starts_with("api://") {
                loc["physicalLocation"] = json!({"artifactLocation": {"uri": o.file}, "region": {"startLine": o.line.max(1)}});
            }
            json!({"ruleId": f.check_id, "level": level(f.severity), "message": {"text": format!("{id}: {} ({})", f.message, f.path)},
                   "locations": [loc], "properties": {"path": f.path, "remediation": f.remediation}})
        })
        .collect();
    json!({"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": "palisade", "version": env!("CARGO_PKG_VERSION"), "rules": rules}}, "results": results}]})
}

pub fn run(a: PostureArgs) -> anyhow::Result<ExitCode> {
    if a.list_checks {
        let mut out = String::new();
        if a.format == Some(PostureFormat::Json) {
            out = serde_json::to_string_pretty(palisade_posture::catalogue())? + "\n";
        } else {
            for c in palisade_posture::catalogue() {
                let _ = writeln!(out, "{:<14} {:<9} {:<13} {}", c.id, c.severity.as_str(), c.category, c.title);
            }
        }
        crate::cmd::sbom::emit(&a.output, &out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut opts = options(&a)?;
    // Manifests without a namespace are applied to the current namespace, usually `default`
    // (Checkov counts them so too); objects read from a live cluster always carry theirs.
    opts.missing_namespace_is_default = !a.source.files.is_empty();
    let streamable = !a.source.files.is_empty()
        && a.source.files.iter().all(|f| f.as_os_str() != "-")
        && input_bytes(&a.source.files) > STREAM_ABOVE;
    let mut inventory: Option<serde_json::Value> = None;
    let mut partial = false;
    let (mut assessment, cluster, incomplete) = if streamable {
        // Files are read twice rather than held in memory: a pass for the cross-object facts,
        // then the objects in chunks (a 50,000-object dump would otherwise hold every object).
        let mut ctx = palisade_posture::Context { complete: true, ..Default::default() };
        let warnings = palisade_k8s::load::for_each_object(&a.source.files, &mut |o| ctx.observe(&o, &opts))?;
        for w in &warnings {
            tracing::warn!("{w}");
        }
        let mut failure = None;
        let mut assessment = palisade_posture::assess_streaming(ctx, &opts, &mut |sink| {
            let mut buf: Vec<palisade_k8s::Object> = Vec::with_capacity(CHUNK);
            let r = palisade_k8s::load::for_each_object(&a.source.files, &mut |o| {
                buf.push(o);
                if buf.len() >= CHUNK {
                    sink(&buf);
                    buf.clear();
                }
            });
            if !buf.is_empty() {
                sink(&buf);
            }
            if let Err(e) = r {
                failure = Some(e);
            }
        });
        if let Some(e) = failure {
            return Err(e.into());
        }
        assessment.warnings.splice(0..0, warnings.iter().map(|w| w.to_string()));
        let incomplete = palisade_k8s::load::incomplete(&warnings);
        (assessment, a.source.cluster_name.clone().unwrap_or_else(|| "files".into()), incomplete)
    } else {
        let got = crate::cmd::k8s::collect(&a.source)?;
        let (objects, cluster, incomplete) = (got.objects, got.cluster, got.incomplete);
        partial = got.partial;
        let mut assessment = palisade_posture::assess(&objects, &opts);
        assessment.warnings.splice(0..0, got.warnings);
        if a.server.is_some() {
            inventory = Some(inventory_update(&cluster, &objects));
        }
        (assessment, cluster, incomplete)
    };
    // the server gets every finding (a severity filter is for this report only)
    let unfiltered = a.server.as_ref().map(|_| assessment.findings.clone());
    if !a.severity.is_empty() {
        assessment.findings.retain(|f| a.severity.contains(&f.severity));
    }
    let fmt = a.format.unwrap_or(if a.output.is_none() && std::io::stdout().is_terminal() {
        PostureFormat::Table
    } else {
        PostureFormat::Json
    });
    let text = match fmt {
        PostureFormat::Table => table(&assessment, &cluster),
        PostureFormat::Json => serde_json::to_string_pretty(&assessment)? + "\n",
        PostureFormat::Sarif => serde_json::to_string_pretty(&sarif(&assessment))? + "\n",
    };
    crate::cmd::sbom::emit(&a.output, &text)?;
    if let Some(server) = &a.server {
        if incomplete {
            // a snapshot of part of the input would resolve findings that are still there
            eprintln!("posture: input was skipped; not sending a partial snapshot to {server}");
        } else {
            // a full snapshot resolves what it does not list: only when the whole cluster was
            // read and every check ran
            let full = !partial && a.framework.is_empty();
            let findings = unfiltered.as_deref().unwrap_or(&assessment.findings);
            send_to_server(server, a.token.as_deref(), &cluster, findings, full, inventory.as_ref())?;
        }
    }
    if a.exit_code != 0 && incomplete {
        // a file that could not be read (or only in part) must fail the gate: the findings
        // above describe only what was read
        eprintln!("posture: input was skipped (see the warnings); failing --exit-code");
        return Ok(ExitCode::from(a.exit_code));
    }
    if !assessment.findings.is_empty() && a.exit_code != 0 {
        return Ok(ExitCode::from(a.exit_code));
    }
    Ok(ExitCode::SUCCESS)
}

/// The inventory of what was read, as a full snapshot of the cluster: every object with the
/// images its pods run.
fn inventory_update(cluster: &str, objects: &[palisade_k8s::Object]) -> serde_json::Value {
    let mut objs = Vec::with_capacity(objects.len());
    let mut nodes = Vec::new();
    for o in objects {
        if o.kind == "Node" {
            nodes.push(serde_json::json!({
                "name": o.name,
                "kubelet_version": o.value.pointer("/status/nodeInfo/kubeletVersion"),
                "os_image": o.value.pointer("/status/nodeInfo/osImage"),
            }));
            continue;
        }
        let mut images = Vec::new();
        if let Some((spec, _)) = o.pod_spec() {
            for (_, c) in palisade_k8s::object::containers(spec) {
                if let (Some(name), Some(image)) =
                    (c.get("name").and_then(|v| v.as_str()), c.get("image").and_then(|v| v.as_str()))
                {
                    images.push(serde_json::json!({"container": name, "image_ref": image}));
                }
            }
        }
        objs.push(serde_json::json!({"kind": o.kind, "namespace": o.namespace, "name": o.name, "images": images}));
    }
    serde_json::json!({"cluster": cluster, "full": true, "nodes": nodes, "objects": objs})
}

fn send_to_server(
    server: &str,
    token: Option<&str>,
    cluster: &str,
    findings: &[palisade_posture::Finding],
    full: bool,
    inventory: Option<&serde_json::Value>,
) -> anyhow::Result<()> {
    let count = findings.len();
    let findings: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "check_id": f.check_id,
                "object": {"kind": f.object.kind, "namespace": f.object.namespace, "name": f.object.name},
                "severity": f.severity.as_str(),
                "doc": f,
            })
        })
        .collect();
    let snapshot = serde_json::json!({"cluster": cluster, "full": full, "findings": findings});
    let client = palisade_net::Client::new(palisade_net::ClientOptions::default());
    let base = server.trim_end_matches('/');
    let mut posts = Vec::new();
    if let Some(inv) = inventory {
        let mut inv = inv.clone();
        inv["full"] = serde_json::Value::Bool(full);
        posts.push((format!("{base}/api/v1/inventory"), inv));
    }
    posts.push((format!("{base}/api/v1/posture"), snapshot));
    for (endpoint, body) in posts {
        let body = serde_json::to_vec(&body)?;
        let req = palisade_net::Request::post(endpoint.clone(), &body)
            .header("content-type", "application/json")
            .credential(token.map(|t| format!("Bearer {t}")));
        let resp = client
            .send_with_retry(&req, &palisade_net::RetryPolicy::default())
            .with_context(|| format!("sending to {endpoint}"))?;
        if !resp.is_success() {
            let status = resp.status();
            anyhow::bail!("{endpoint}: HTTP {status}: {}", resp.error_excerpt());
        }
    }
    eprintln!(
        "posture: {count} findings of {cluster} sent to {server} ({})",
        if full { "full snapshot" } else { "partial: nothing resolved" }
    );
    Ok(())
}
