//! `palisade`: the command-line shell over the Palisade engines.

use clap::Parser;
use std::process::ExitCode;

// Matching and cataloguing allocate many small strings; mimalloc is markedly faster at that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod cmd;
mod progress;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("palisade: error: {}", one_line(&chain.join(": ")));
            ExitCode::from(2)
        }
    }
}

/// Escape control characters (hostile input can put newlines in error text), keeping one line.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = if quiet {
        "error"
    } else {
        match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PALISADE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
