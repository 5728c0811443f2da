//! `palisade sbom`.

use crate::args::{ImageArgs, SbomArgs, SbomFormat};
use crate::progress::Bar;
use anyhow::Context;
use palisade_image::{OpenOptions, Platform, RegistryOptions, Transport};
use palisade_sbom::format::{self, Format};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Open options from the shared image flags.
pub fn open_options(a: &ImageArgs) -> anyhow::Result<OpenOptions> {
    let platform = match &a.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let mut registry = RegistryOptions::new();
    registry.insecure = a.insecure;
    registry.username = a.username.clone();
    registry.password = a.password.clone();
    registry.docker_config = a.docker_config.clone();
    if registry.username.is_some() != registry.password.is_some() {
        anyhow::bail!("--username and --password must be given together");
    }
    Ok(OpenOptions { platform, registry })
}

pub fn run(a: SbomArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let transport = Transport::parse(&a.image)?;
    let opts = open_options(&a.image_args)?;
    let fmt = a.format.unwrap_or(if a.output.is_none() && std::io::stdout().is_terminal() {
        SbomFormat::Table
    } else {
        SbomFormat::Json
    });
    let bar = Bar::new(!quiet && std::io::stderr().is_terminal());
    let opened = palisade_image::open(&transport, &opts)?;
    let result = palisade_sbom::scan(&a.image, &opened, &bar);
    bar.finish();
    let sbom = result?;
    for w in &sbom.warnings {
        tracing::warn!(path = %w.path, "{}", w.message);
    }
    let (now, uuid) = format::now_and_uuid();
    let f = match fmt {
        SbomFormat::Table => Format::Table,
        SbomFormat::Json => Format::Json,
        SbomFormat::Cyclonedx => Format::CycloneDx,
        SbomFormat::Spdx => Format::Spdx,
    };
    let text = format::render(&sbom, f, &now, &uuid);
    emit(&a.output, &text)?;
    Ok(ExitCode::SUCCESS)
}

/// Write `text` to the output file (atomically) or stdout (a closed pipe is not an error).
pub fn emit(output: &Option<std::path::PathBuf>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            let tmp = path.with_extension("palisade-tmp");
            std::fs::write(&tmp, text.as_bytes()).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("writing to stdout");
                }
            }
        }
    }
    Ok(())
}
