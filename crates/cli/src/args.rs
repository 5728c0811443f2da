//! Command-line arguments. Every flag can also be set by an environment variable.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Palisade: container security for Kubernetes clusters and registries.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, propagate_version = true)]
pub struct Cli {
    /// More logging (-v info, -vv debug, -vvv trace). PALISADE_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr; no progress bar.
    #[arg(short, long, global = true, env = "PALISADE_QUIET")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every package in an image or root filesystem (software bill of materials).
    Sbom(SbomArgs),
}

/// SBOM output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    /// Aligned text table (the default on a terminal).
    Table,
    /// Native Palisade JSON (the default when stdout is not a terminal).
    Json,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// Image access options shared by the commands that read images.
#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    /// Platform to pick from a multi-arch image (os/arch[/variant]); default: this machine's.
    #[arg(long, env = "PALISADE_PLATFORM")]
    pub platform: Option<String>,
    /// Talk plain HTTP to the registry.
    #[arg(long, env = "PALISADE_INSECURE")]
    pub insecure: bool,
    /// Registry user name (else ~/.docker/config.json).
    #[arg(long, env = "PALISADE_REGISTRY_USERNAME")]
    pub username: Option<String>,
    /// Registry password or token.
    #[arg(long, env = "PALISADE_REGISTRY_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Docker config file for registry credentials.
    #[arg(long, env = "DOCKER_CONFIG_FILE")]
    pub docker_config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SbomArgs {
    /// The image: REGISTRY/REPO[:TAG|@DIGEST], docker://REF, oci:DIR[:TAG], docker-archive:FILE or dir:PATH.
    pub image: String,
    /// Output format.
    #[arg(short, long, value_enum, env = "PALISADE_FORMAT")]
    pub format: Option<SbomFormat>,
    /// Write to FILE instead of stdout.
    #[arg(short, long, env = "PALISADE_OUTPUT")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub image_args: ImageArgs,
}
