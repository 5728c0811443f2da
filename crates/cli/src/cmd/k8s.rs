//! `palisade k8s inventory`, and the object source shared with `palisade posture`.

use crate::args::{K8sCommand, K8sSource, TableOrJson};
use palisade_k8s::{load, Object};
use std::process::ExitCode;

/// Objects, the cluster name, and warnings, from files or a live cluster.
/// Objects, cluster name, warnings, and whether input was lost (a file skipped whole or in
/// part: an assessment of what remains must not pass a gate as if it were complete).
pub fn collect(src: &K8sSource) -> anyhow::Result<(Vec<Object>, String, Vec<String>, bool)> {
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
        if let Some(s) = got.summary() {
            tracing::warn!("{s}");
            got.warnings.push(s);
        }
        let name = src.cluster_name.clone().unwrap_or_else(|| conn.context.clone());
        return Ok((got.objects, name, got.warnings, false));
    }
    let loaded = load::load_paths(&src.files)?;
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let name = src.cluster_name.clone().unwrap_or_else(|| "files".into());
    Ok((loaded.objects, name, warnings, load::incomplete(&loaded.warnings)))
}

pub fn run(c: K8sCommand) -> anyhow::Result<ExitCode> {
    match c {
        K8sCommand::Inventory { source, format, output } => {
            let (objects, name, _, _) = collect(&source)?;
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
