//! `palisade simulate node`: real attack actions in a real container with the sensor on
//! ([`palisade_sensor::simulate`]); prints what fired, exit 1 if an expected detection is
//! missing.

use palisade_sensor::simulate::SimConfig;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(mut cfg: SimConfig) -> anyhow::Result<ExitCode> {
    // every converted event, for inspection
    cfg.event_log = std::env::var("PALISADE_SIM_EVENTS").ok().map(PathBuf::from);
    let report = palisade_sensor::simulate::run(&cfg)?;
    print!("{report}");
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
