//! `palisade sensor run|check|manifests`: flags into `palisade_sensor`'s runtime
//! ([`palisade_sensor::runtime::Agent`]), which runs the kernel sensor, the node pipeline and
//! the rule engine.

use crate::args::{SensorCommand, SensorRunArgs};
use crate::cmd::detect::{detector, ruleset, Sinks};
use anyhow::Context as _;
use palisade_detect::alert::Finding;
use palisade_sensor::node::NodeConfig;
use palisade_sensor::runtime::{self, Agent, AgentConfig, ApiAccess, FindingSink, HeartbeatConfig, RuntimeConfig};
use palisade_sensor::{Sensor, SensorConfig};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

impl FindingSink for Sinks {
    fn send(&mut self, finding: &Finding) -> std::io::Result<()> {
        Sinks::send(self, finding)
    }

    fn flush(&mut self) {
        Sinks::flush(self);
    }
}

pub fn run(c: SensorCommand) -> anyhow::Result<ExitCode> {
    match c {
        SensorCommand::Check => {
            let s = Sensor::start(&SensorConfig { snapshot: true, ..SensorConfig::default() })
                .context("the eBPF sensor cannot run here")?;
            let h = s.health();
            println!("{}", serde_json::to_string_pretty(&h)?);
            s.stop();
            Ok(if h.attach_failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        SensorCommand::Run(a) => run_sensor(*a),
        SensorCommand::Manifests { namespace, image, cluster, config, output } => {
            use palisade_sensor::manifests::{render, SensorManifestOptions, DEFAULT_NODE_CONFIG};
            let node_config = match &config {
                Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
                None => DEFAULT_NODE_CONFIG.to_string(),
            };
            NodeConfig::from_yaml(&node_config).map_err(|e| anyhow::anyhow!("node configuration: {e}"))?;
            let objs = render(&SensorManifestOptions { namespace, image, cluster, node_config });
            let text = palisade_admission::manifests::to_yaml(&objs)
                .replace("palisade admission manifests", "palisade sensor manifests");
            match &output {
                Some(p) => std::fs::write(p, text).with_context(|| p.display().to_string())?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn agent_config(a: &SensorRunArgs, node: NodeConfig) -> AgentConfig {
    AgentConfig {
        runtime: RuntimeConfig {
            sensor: SensorConfig {
                ringbuf_bytes: a.ringbuf_mb << 20,
                disabled_programs: a.disable_programs.clone(),
                ..SensorConfig::default()
            },
            node,
        },
        api: ApiAccess::from_kubeconfig(a.kubeconfig.clone(), a.context.clone()),
        metrics_listen: a.metrics_listen.clone(),
        health_file: a.health_file.clone(),
        health_interval: a.health_interval,
        duration: a.duration,
        heartbeats: a.detect.server.as_ref().map(|server| HeartbeatConfig {
            server: server.clone(),
            token: a.detect.token.clone(),
            cluster: a.detect.cluster.clone(),
            node: a.node.clone().unwrap_or_else(runtime::hostname),
        }),
    }
}

fn run_sensor(a: SensorRunArgs) -> anyhow::Result<ExitCode> {
    let node = runtime::load_node_config(a.config.as_deref(), a.node.as_deref(), &a.detect.cluster)?;
    let rs = ruleset(&a.detect)?;
    let det = detector(&a.detect)?;
    let mut sinks = Sinks::new(&a.detect)?;
    let mut agent = Agent::start(agent_config(&a, node), &rs, det)?;
    for (prog, err) in agent.runtime().attach_failures() {
        eprintln!("palisade: warning: {prog} did not attach ({err}); carrying on with the rest");
    }
    if agent.api_missing() {
        eprintln!(
            "palisade: warning: pod responses (label/isolate/delete-pod) are configured, but there is no API access: give --kubeconfig or run in a pod"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    if let Some(addr) = agent.metrics_addr() {
        eprintln!("sensor health on http://{addr}/health");
    }
    eprintln!("palisade sensor running ({} sensor rules)", agent.runtime().sensor_rules());
    let h = agent.run(&stop, &mut sinks)?;
    eprintln!("{}", h.to_json());
    Ok(ExitCode::SUCCESS)
}
