//! `palisade admission test`.

use crate::args::AdmissionCommand;
use anyhow::Context as _;
use palisade_admission::{decide, Action, Config, Preset};
use std::fmt::Write as _;
use std::process::ExitCode;

pub fn run(c: AdmissionCommand) -> anyhow::Result<ExitCode> {
    match c {
        AdmissionCommand::Test { files, config, preset, action, user } => {
            let cfg = match (config, preset) {
                (Some(p), _) => {
                    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
                    Config::from_yaml(&text).with_context(|| p.display().to_string())?
                }
                (None, Some(pr)) => {
                    let preset = if pr == "baseline" { Preset::Baseline } else { Preset::Restricted };
                    let action = match action.as_str() {
                        "audit" => Action::Audit,
                        "warn" => Action::Warn,
                        _ => Action::Deny,
                    };
                    Config::preset(preset, action)
                }
                (None, None) => anyhow::bail!("give --config FILE or --preset baseline|restricted"),
            };
            let loaded = palisade_k8s::load::load_paths(&files)?;
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            let mut out = String::new();
            let mut denied = 0;
            for o in &loaded.objects {
                let d = decide(&o.value, "CREATE", &user, &[], &cfg);
                if !d.allowed {
                    denied += 1;
                }
                let reasons: Vec<String> = d
                    .violations
                    .iter()
                    .filter(|v| v.action != Action::Audit || d.verdict == "allowed")
                    .map(|v| format!("{} {} ({})", v.check_id, v.message, v.path))
                    .collect();
                let tail = match (&d.exempt, reasons.is_empty()) {
                    (Some(why), _) => format!(": {why}"),
                    (None, true) => String::new(),
                    (None, false) => format!(": {}", reasons.join("; ")),
                };
                let _ = writeln!(out, "{} {}{tail}", o.id(), d.verdict);
            }
            crate::cmd::sbom::emit(&None, &out)?;
            Ok(if denied > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
    }
}
