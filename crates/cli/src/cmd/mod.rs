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
#[cfg(feature = "sensor")]
mod sensor;
mod server;
#[cfg(feature = "sensor")]
mod simnode;
mod up;

/// What the sensor commands say in a build without the `sensor` feature.
#[cfg(not(feature = "sensor"))]
pub(crate) fn no_sensor() -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this palisade was built without the eBPF sensor: build it with `cargo build --release --features sensor` \
         (needs clang, llvm, libelf-dev, zlib1g-dev and pkg-config: scripts/install-deps.sh)"
    )
}

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
        #[cfg(feature = "sensor")]
        Command::Sensor(c) => sensor::run(c),
        #[cfg(not(feature = "sensor"))]
        Command::Sensor(_) => no_sensor(),
        Command::Admission(c) => admission::run(c),
        Command::Server(a) => server::run(*a),
        Command::Up(a) => up::run(*a, cli.quiet),
    }
}
