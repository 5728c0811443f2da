//! `palisade scan image|rootfs|sbom`.

use crate::args::{ScanArgs, ScanCommand, ScanFormat};
use crate::cmd::sbom::open_options;
use crate::progress::Bar;
use anyhow::Context;
use palisade_image::Transport;
use palisade_model::Sbom;
use palisade_vulndb::db::VulnDb;
use palisade_vulndb::filter::{self, Policy};
use palisade_vulndb::record::Status;
use palisade_vulndb::report::{self, DbFacts, Report};
use std::io::{IsTerminal, Read};
use std::process::ExitCode;

fn policy(a: &ScanArgs) -> anyhow::Result<Policy> {
    let mut p = Policy { ignore_unfixed: a.ignore_unfixed, ..Default::default() };
    if !a.severity.is_empty() {
        p.severities = Some(a.severity.iter().copied().collect());
    }
    for s in &a.ignore_status {
        let st: Status = serde_json::from_value(serde_json::json!(s.to_ascii_lowercase())).map_err(|_| {
            anyhow::anyhow!(
                "--ignore-status: unknown status {s:?} (fixed, affected, will-not-fix, fix-deferred, end-of-life)"
            )
        })?;
        p.ignore_status.insert(st);
    }
    let ignorefile = a.ignorefile.clone().or_else(|| {
        let d = std::path::PathBuf::from(".palisadeignore");
        d.exists().then_some(d)
    });
    if let Some(f) = ignorefile {
        let text = std::fs::read_to_string(&f).with_context(|| format!("reading ignore file {}", f.display()))?;
        p.ignores = filter::parse_ignore_file(&f.display().to_string(), &text)?;
    }
    for v in &a.vex {
        let data = std::fs::read(v).with_context(|| format!("reading VEX {}", v.display()))?;
        p.vex.extend(filter::parse_openvex(&v.display().to_string(), &data)?);
    }
    Ok(p)
}

fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    palisade_vulndb::db::humantime_rfc3339(secs)[..10].to_string()
}

pub fn run(c: ScanCommand, quiet: bool) -> anyhow::Result<ExitCode> {
    let (args, name) = match &c {
        ScanCommand::Image { scan, image, .. } => (scan, image.clone()),
        ScanCommand::Rootfs { scan, dir } => (scan, format!("dir:{}", dir.display())),
        ScanCommand::Sbom { scan, file } => (scan, file.display().to_string()),
    };
    let pol = policy(args)?;
    let db_path = crate::cmd::db::path(&args.db);
    let max_age = args.db_max_age;
    if let Some(url) = &args.server {
        let sbom = produce_sbom(&c, &name, quiet)?;
        let (findings, warnings) = send_to_server(url, args.token.as_deref(), &sbom)?;
        return finish(args, &pol, sbom, findings, warnings, DbFacts { path: url.clone(), built_at: String::new() });
    }
    // Open the database while the image is read.
    let (db, sbom) = std::thread::scope(|s| -> anyhow::Result<(VulnDb, Sbom)> {
        let db = s.spawn(|| VulnDb::open(&db_path));
        let sbom = produce_sbom(&c, &name, quiet);
        let db = db.join().map_err(|_| anyhow::anyhow!("database thread panicked"))??;
        Ok((db, sbom?))
    })?;
    let built = db.meta().built_at_unix;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut warnings: Vec<String> = Vec::new();
    if now.saturating_sub(built) >= max_age.as_secs() {
        warnings.push(format!(
            "the vulnerability database is {} h old (built {}); run `palisade db update`",
            now.saturating_sub(built) / 3600,
            db.meta().built_at
        ));
    }
    let result = palisade_vulndb::matcher::match_sbom(&db, &sbom)?;
    warnings.extend(result.warnings);
    let facts = DbFacts { path: db.path().display().to_string(), built_at: db.meta().built_at.clone() };
    finish(args, &pol, sbom, result.findings, warnings, facts)
}

/// Filter, render and gate.
fn finish(
    args: &ScanArgs,
    pol: &Policy,
    sbom: Sbom,
    findings: Vec<palisade_vulndb::matcher::Finding>,
    warnings: Vec<String>,
    facts: DbFacts,
) -> anyhow::Result<ExitCode> {
    let (kept, suppressed) = filter::apply(findings, pol, &today());
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let rep = Report {
        target: sbom.target.clone(),
        os: sbom.os.clone(),
        db: facts,
        summary: report::summarize(&kept),
        findings: kept,
        suppressed,
        warnings,
    };
    let fmt = args.format.unwrap_or(if args.output.is_none() && std::io::stdout().is_terminal() {
        ScanFormat::Table
    } else {
        ScanFormat::Json
    });
    let text = match fmt {
        ScanFormat::Table => report::table(&rep),
        ScanFormat::Json => report::json(&rep),
        ScanFormat::Sarif => report::sarif(&rep, env!("CARGO_PKG_VERSION")),
        ScanFormat::Cyclonedx => {
            let (now, uuid) = palisade_sbom::format::now_and_uuid();
            let mut doc = palisade_sbom::format::cyclonedx(&sbom, &now, &uuid);
            report::add_cyclonedx_vulnerabilities(&mut doc, &rep);
            serde_json::to_string_pretty(&doc)? + "\n"
        }
    };
    crate::cmd::sbom::emit(&args.output, &text)?;
    if !rep.findings.is_empty() && args.exit_code != 0 {
        return Ok(ExitCode::from(args.exit_code));
    }
    Ok(ExitCode::SUCCESS)
}

/// Largest server answer read.
const MAX_SERVER_ANSWER: u64 = 256 << 20;

/// The digest an SBOM is stored under: the image's manifest digest, or (a root filesystem, an
/// SBOM file without one) the sha256 of the SBOM's JSON.
fn storage_digest(sbom: &Sbom) -> anyhow::Result<String> {
    let d = &sbom.target.digest;
    if d.len() == 71
        && d.starts_with("sha256:")
        && d[7..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Ok(d.clone());
    }
    use sha2::Digest as _;
    Ok(format!("sha256:{}", hex::encode(sha2::Sha256::digest(serde_json::to_vec(sbom)?))))
}

/// Upload the SBOM; the server matches it and answers the stored findings.
pub(crate) fn send_to_server(
    url: &str,
    token: Option<&str>,
    sbom: &Sbom,
) -> anyhow::Result<(Vec<palisade_vulndb::matcher::Finding>, Vec<String>)> {
    let digest = storage_digest(sbom)?;
    let (repo, tag) = match sbom.target.name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') && !r.is_empty() => (Some(r.to_string()), vec![t.to_string()]),
        _ => (None, Vec::new()),
    };
    let body = serde_json::to_vec(
        &serde_json::json!({"images": [{"digest": digest, "repo": repo, "tags": tag, "sbom": sbom}]}),
    )?;
    let client = palisade_net::Client::new(palisade_net::ClientOptions::default());
    let endpoint = format!("{}/api/v1/images", url.trim_end_matches('/'));
    let req = palisade_net::Request::post(endpoint.clone(), &body)
        .header("content-type", "application/json")
        .credential(token.map(|t| format!("Bearer {t}")));
    let resp = client
        .send_with_retry(&req, &palisade_net::RetryPolicy::default())
        .with_context(|| format!("sending the SBOM to {endpoint}"))?;
    if !resp.is_success() {
        let status = resp.status();
        anyhow::bail!("{endpoint}: HTTP {status}: {}", resp.error_excerpt());
    }
    let answer: serde_json::Value = serde_json::from_slice(&resp.read_to_vec(MAX_SERVER_ANSWER)?)
        .with_context(|| format!("{endpoint}: the answer is not JSON"))?;
    let img = &answer["images"][0];
    let mut warnings = Vec::new();
    if img["assessed"] != serde_json::Value::Bool(true) {
        warnings.push(format!(
            "{url} has no vulnerability database yet: the SBOM is stored and will be assessed after its first update"
        ));
    }
    if img["more_findings"] == serde_json::Value::Bool(true) {
        warnings
            .push(format!("more findings than one answer holds; read them at {url}/api/v1/images/{digest}/findings"));
    }
    let mut out = Vec::new();
    for f in img["findings"].as_array().into_iter().flatten() {
        match serde_json::from_value::<palisade_vulndb::matcher::Finding>(f["doc"].clone()) {
            Ok(x) => out.push(x),
            Err(e) => warnings.push(format!("a finding from the server could not be read: {e}")),
        }
    }
    Ok((out, warnings))
}

fn produce_sbom(c: &ScanCommand, name: &str, quiet: bool) -> anyhow::Result<Sbom> {
    match c {
        ScanCommand::Image { image, image_args, .. } => {
            let transport = Transport::parse(image)?;
            let opts = open_options(image_args)?;
            let bar = Bar::new(!quiet && std::io::stderr().is_terminal());
            let opened = palisade_image::open(&transport, &opts)?;
            let r = palisade_sbom::scan(name, &opened, &bar);
            bar.finish();
            Ok(r?)
        }
        ScanCommand::Rootfs { dir, .. } => {
            let opened = palisade_image::open(&Transport::Dir { root: dir.clone() }, &Default::default())?;
            Ok(palisade_sbom::scan(name, &opened, &palisade_image::NoProgress)?)
        }
        ScanCommand::Sbom { file, .. } => {
            let mut data = Vec::new();
            if file.as_os_str() == "-" {
                std::io::stdin().lock().take(palisade_sbom::read::MAX_SBOM as u64 + 1).read_to_end(&mut data)?;
            } else {
                std::fs::File::open(file)
                    .with_context(|| format!("reading {}", file.display()))?
                    .take(palisade_sbom::read::MAX_SBOM as u64 + 1)
                    .read_to_end(&mut data)
                    .with_context(|| format!("reading {}", file.display()))?;
            }
            let (mut sbom, _) = palisade_sbom::read::read(&data).with_context(|| format!("{}", file.display()))?;
            if sbom.target.name.is_empty() {
                sbom.target.name = name.to_string();
            }
            Ok(sbom)
        }
    }
}
