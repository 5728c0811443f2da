//! Subcommand implementations: each parses its arguments into engine calls.

use crate::args::{Cli, Command};
use std::process::ExitCode;

mod sbom;

/// Run the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Sbom(a) => sbom::run(a, cli.quiet),
    }
}
