//! Subcommand implementations: each parses its arguments into engine calls.

use crate::args::{Cli, Command};
use std::process::ExitCode;

mod admission;
mod db;
mod detect;
mod k8s;
mod posture;
mod sbom;
mod scan;
pub(crate) mod sensor;
pub(crate) mod simnode;

/// Run the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Sbom(a) => sbom::run(a, cli.quiet),
        Command::Scan(c) => scan::run(c, cli.quiet),
        Command::Db(c) => db::run(c, cli.quiet),
        Command::K8s(c) => k8s::run(c),
        Command::Posture(a) => posture::run(a),
        Command::Detect(c) => detect::run(c),
        Command::Simulate(c) => detect::simulate(c),
        Command::Sensor(c) => sensor::run(c),
        Command::Admission(c) => admission::run(c),
    }
}
