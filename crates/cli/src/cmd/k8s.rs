//! `palisade k8s inventory`, and the object source shared with `palisade posture`.

use crate::args::{K8sCommand, K8sSource, TableOrJson};
use palisade_k8s::{load, Object};
use std::process::ExitCode;

/// Objects, the cluster name, and warnings, from files or a live cluster.
/// What [`collect`] read.
pub struct Collected {
    pub objects: Vec<Object>,
    pub cluster: String,
    pub warnings: Vec<String>,
    /// Input was lost (a file skipped whole or in part): an assessment of what remains must
    /// not pass a gate as if it were complete.
    pub incomplete: bool,
    /// Some kinds could not be listed (e.g. forbidden): what was read is not the whole
    /// cluster, so it must not be sent as a full snapshot.
    pub partial: bool,
}

pub fn collect(src: &K8sSource) -> anyhow::Result<Collected> {
    if src.files.is_empty() {
        let conn = match src.kubeconfig.clone().or_else(palisade_k8s::live::default_kubeconfig) {
            Some(p) => palisade_k8s::live::from_kubeconfig(&p, src.context.as_deref())?,
            None => palisade_k8s::live::in_cluster().ok_or(palisade_k8s::live::LiveError::NoConfig)?,
        };
        let mut got = palisade_k8s::live::collect(&conn)?;
        for w in &got.warnings {
            tracing::warn!("{w}");
        }
        if got.read_nothing() {
            // An assessment that read nothing must not pass a gate with a perfect score.
            let why = got.warnings.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
            anyhow::bail!("{}: no kind could be read from the cluster API ({why})", conn.server);
        }
        let partial = got.summary().is_some();
        if let Some(s) = got.summary() {
            tracing::warn!("{s}");
            got.warnings.push(s);
        }
        let name = src.cluster_name.clone().unwrap_or_else(|| conn.context.clone());
        return Ok(Collected {
            objects: got.objects,
            cluster: name,
            warnings: got.warnings,
            incomplete: false,
            partial,
        });
    }
    let loaded = load::load_paths(&src.files)?;
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let name = src.cluster_name.clone().unwrap_or_else(|| "files".into());
    let incomplete = load::incomplete(&loaded.warnings);
    Ok(Collected { objects: loaded.objects, cluster: name, warnings, incomplete, partial: incomplete })
}

pub fn run(c: K8sCommand) -> anyhow::Result<ExitCode> {
    match c {
        K8sCommand::Inventory { source, format, output } => {
            let Collected { objects, cluster: name, .. } = collect(&source)?;
            let inv = palisade_k8s::inventory::build(&name, &objects);
            let text = match format {
                TableOrJson::Table => palisade_k8s::inventory::table(&inv),
                TableOrJson::Json => serde_json::to_string_pretty(&inv)? + "\n",
            };
            crate::cmd::sbom::emit(&output, &text)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
