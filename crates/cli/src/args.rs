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
    /// Find vulnerable packages in an image, a root filesystem or a stored SBOM.
    #[command(subcommand)]
    Scan(ScanCommand),
    /// Build, update and inspect the local vulnerability database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Kubernetes inventory.
    #[command(subcommand)]
    K8s(K8sCommand),
    /// Assess Kubernetes objects for misconfigurations (workloads, RBAC, exposure, control plane).
    Posture(PostureArgs),
    /// Run-time threat detection from Kubernetes audit logs.
    #[command(subcommand)]
    Detect(DetectCommand),
    /// Generate attack simulations that prove the detections fire.
    #[command(subcommand)]
    Simulate(SimulateCommand),
    /// Admission control with the posture checks.
    #[command(subcommand)]
    Admission(AdmissionCommand),
    /// The eBPF node sensor: run-time detection and binary drift on this node.
    #[command(subcommand)]
    Sensor(SensorCommand),
    /// The central server: stores inventories, SBOMs, findings and alerts; serves the REST API;
    /// updates its vulnerability database and re-assesses every stored SBOM.
    Server(Box<ServerArgs>),
    /// The whole product on this machine: start the server (embedded SQLite in the user data
    /// directory), assess this machine and any manifests or cluster given, print the console's
    /// address and where the admin token is, and keep serving until Ctrl-C.
    Up(Box<UpArgs>),
}

/// `palisade up` (every flag is also an environment variable).
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Data directory (the server's). Default: `$XDG_DATA_HOME/palisade` (or `~/.local/share/palisade`).
    #[arg(long, env = "PALISADE_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "PALISADE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Build the vulnerability database from these offline feed directories instead of
    /// downloading it; `up` waits for that build before assessing.
    #[arg(long, env = "PALISADE_DB_FROM", value_delimiter = ',')]
    pub db_from: Vec<std::path::PathBuf>,
    /// Root filesystem of this machine to inventory and assess.
    #[arg(long, env = "PALISADE_UP_ROOT", default_value = "/")]
    pub root: std::path::PathBuf,
    /// Do not assess this machine's root filesystem.
    #[arg(long, env = "PALISADE_UP_NO_HOST")]
    pub no_host: bool,
    /// Manifests or a live cluster to assess for posture (`-f DIR`, `--kubeconfig FILE`).
    #[command(flatten)]
    pub source: K8sSource,
    /// Stop after assessing instead of serving (scripts, tests).
    #[arg(long, env = "PALISADE_UP_ONCE")]
    pub once: bool,
}

/// `palisade server` (every flag is also an environment variable).
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Data directory: SQLite store, vulnerability database, feed downloads, `admin.token`.
    /// Default: `$XDG_DATA_HOME/palisade` (or `~/.local/share/palisade`).
    #[arg(long, env = "PALISADE_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "PALISADE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// PostgreSQL instead of the embedded SQLite: `postgres://user:pass@host:5432/db`.
    #[arg(long, env = "PALISADE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Build the vulnerability database from these offline feed directories (the
    /// `db build --from` logic) instead of downloading (`db update`). Repeatable.
    #[arg(long, env = "PALISADE_DB_FROM", value_delimiter = ',')]
    pub db_from: Vec<std::path::PathBuf>,
    /// Interval of the scheduled database update and re-assessment.
    #[arg(long, env = "PALISADE_DB_UPDATE_INTERVAL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub db_update_interval: std::time::Duration,
    /// Accept a rebuilt database that lost a source or more than 10 % of its records.
    #[arg(long, env = "PALISADE_DB_ALLOW_SHRINK")]
    pub db_allow_shrink: bool,
    /// Per-file feed errors of `--db-from` are warnings instead of refusing the build.
    #[arg(long, env = "PALISADE_DB_ALLOW_FEED_ERRORS")]
    pub db_allow_feed_errors: bool,
    /// Serve HTTPS with this certificate chain (PEM; reloaded when the file changes).
    #[arg(long, env = "PALISADE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// Private key of `--tls-cert` (PEM).
    #[arg(long, env = "PALISADE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SensorCommand {
    /// Run the sensor (as root): events from the kernel, detections, drift, responses.
    Run(Box<SensorRunArgs>),
    /// Check that this node can run the sensor: load the programs, report what attaches, stop.
    Check,
    /// Write the Kubernetes manifests that run the sensor on every node (DaemonSet, RBAC for
    /// pod responses, node configuration).
    Manifests {
        /// Namespace (privileged; not shared with the admission webhook's restricted one).
        #[arg(long, env = "PALISADE_SENSOR_NAMESPACE", default_value = "palisade-sensor")]
        namespace: String,
        /// Container image of palisade.
        #[arg(long, env = "PALISADE_IMAGE", default_value = concat!("ghcr.io/palisade-sec/palisade:", env!("CARGO_PKG_VERSION")))]
        image: String,
        /// Cluster name on every event.
        #[arg(long, env = "PALISADE_CLUSTER_NAME", default_value = "default")]
        cluster: String,
        /// node.yaml to ship (drift policy, responses); validated first.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// `palisade sensor run`.
#[derive(Debug, Clone, clap::Args)]
pub struct SensorRunArgs {
    /// Node configuration: drift policy and automatic responses (YAML).
    #[arg(long, env = "PALISADE_SENSOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Node name on events (default: the host name).
    #[arg(long, env = "PALISADE_NODE_NAME")]
    pub node: Option<String>,
    /// Write the sensor's health (JSON) to this file every --health-interval.
    #[arg(long, env = "PALISADE_SENSOR_HEALTH_FILE")]
    pub health_file: Option<PathBuf>,
    /// How often health is written.
    #[arg(long, env = "PALISADE_SENSOR_HEALTH_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub health_interval: std::time::Duration,
    /// Serve /healthz (503 when unhealthy), /health (JSON) and /metrics (Prometheus) over plain
    /// HTTP on this address, e.g. 127.0.0.1:9464.
    #[arg(long, env = "PALISADE_SENSOR_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Ring-buffer size in MiB.
    #[arg(long, env = "PALISADE_SENSOR_RINGBUF_MB", default_value_t = 8)]
    pub ringbuf_mb: usize,
    /// BPF programs not to attach, e.g. `handle_sys_enter` (module loads on kernels without
    /// module tracepoints: it runs on every syscall).
    #[arg(long, env = "PALISADE_SENSOR_DISABLE_PROGRAMS", value_delimiter = ',')]
    pub disable_programs: Vec<String>,
    /// Stop after this long (default: until SIGTERM/SIGINT).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Kubeconfig for pod responses (label, isolate, delete-pod); in a pod, the service account
    /// is used without it.
    #[arg(long, env = "PALISADE_SENSOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, env = "PALISADE_SENSOR_CONTEXT")]
    pub context: Option<String>,
    #[command(flatten)]
    pub detect: DetectArgs,
}

#[derive(Debug, Subcommand)]
pub enum AdmissionCommand {
    /// Give the webhook's verdict offline: one line per object; exit 1 when any is denied.
    Test {
        /// Manifests (files, directories, `-`).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Webhook configuration (policies, exemptions).
        #[arg(long, env = "PALISADE_ADMISSION_CONFIG", conflicts_with = "preset")]
        config: Option<PathBuf>,
        /// A Pod Security Standards preset instead of a configuration.
        #[arg(long, value_enum)]
        preset: Option<AdmissionPreset>,
        /// Action for --preset.
        #[arg(long, value_enum, default_value = "deny")]
        action: AdmissionAction,
        /// The requesting user (for exemptions).
        #[arg(long, default_value = "kubernetes-admin")]
        user: String,
    },
    /// Run the validating admission webhook (HTTPS).
    Serve(AdmissionServeArgs),
    /// Write the Kubernetes manifests that install the webhook (namespace, RBAC, Deployment,
    /// PodDisruptionBudget, Service, TLS, ValidatingWebhookConfiguration).
    Manifests(AdmissionManifestsArgs),
}

/// `--preset` of `admission test|serve`: the Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdmissionPreset {
    /// PSS baseline controls.
    Baseline,
    /// PSS restricted controls (includes baseline).
    Restricted,
}

impl From<AdmissionPreset> for palisade_admission::Preset {
    fn from(p: AdmissionPreset) -> Self {
        match p {
            AdmissionPreset::Baseline => palisade_admission::Preset::Baseline,
            AdmissionPreset::Restricted => palisade_admission::Preset::Restricted,
        }
    }
}

/// `--action` of `admission test|serve`: what the preset's policy does with a failed check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdmissionAction {
    /// Allow and record (audit annotation).
    Audit,
    /// Allow with a warning shown by kubectl.
    Warn,
    /// Reject.
    Deny,
}

impl From<AdmissionAction> for palisade_admission::Action {
    fn from(a: AdmissionAction) -> Self {
        match a {
            AdmissionAction::Audit => palisade_admission::Action::Audit,
            AdmissionAction::Warn => palisade_admission::Action::Warn,
            AdmissionAction::Deny => palisade_admission::Action::Deny,
        }
    }
}

/// `palisade admission serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct AdmissionServeArgs {
    /// Webhook configuration (policies, exemptions); reloaded when it changes.
    #[arg(long, env = "PALISADE_ADMISSION_CONFIG", conflicts_with = "preset", required_unless_present = "preset")]
    pub config: Option<PathBuf>,
    /// A Pod Security Standards preset instead of a configuration.
    #[arg(long, env = "PALISADE_ADMISSION_PRESET", value_enum)]
    pub preset: Option<AdmissionPreset>,
    /// Action for --preset.
    #[arg(long, env = "PALISADE_ADMISSION_ACTION", value_enum, default_value = "deny")]
    pub action: AdmissionAction,
    /// Address to listen on.
    #[arg(long, env = "PALISADE_ADMISSION_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: String,
    /// Server certificate chain (PEM); reloaded when it changes.
    #[arg(long, env = "PALISADE_ADMISSION_TLS_CERT")]
    pub tls_cert: PathBuf,
    /// Server private key (PEM).
    #[arg(long, env = "PALISADE_ADMISSION_TLS_KEY")]
    pub tls_key: PathBuf,
    /// Require client certificates signed by this CA (kube-apiserver's
    /// --admission-control-config-file kubeconfig).
    #[arg(long, env = "PALISADE_ADMISSION_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Largest AdmissionReview body accepted (bytes).
    #[arg(long, env = "PALISADE_ADMISSION_MAX_BODY", default_value_t = 3 * 1024 * 1024 + 65536)]
    pub max_body_bytes: usize,
    /// Time a client has to send a whole request (slow clients are cut off).
    #[arg(long, env = "PALISADE_ADMISSION_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,
    /// Concurrent connections.
    #[arg(long, env = "PALISADE_ADMISSION_MAX_CONNECTIONS", default_value_t = 256)]
    pub max_connections: usize,
    /// How often the configuration, Rego and TLS files are checked for changes (SIGHUP checks at once).
    #[arg(long, env = "PALISADE_ADMISSION_RELOAD_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub reload_interval: std::time::Duration,
    /// Where decisions with violations are recorded as JSON lines (`-`: stdout; `off`).
    #[arg(long, env = "PALISADE_ADMISSION_DECISION_LOG", default_value = "-")]
    pub decision_log: String,
    /// On SIGTERM: time for requests in flight to finish (readiness turns off first).
    #[arg(long, env = "PALISADE_ADMISSION_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: std::time::Duration,
}

/// `palisade admission manifests`.
#[derive(Debug, Clone, clap::Args)]
pub struct AdmissionManifestsArgs {
    /// Namespace to install into (excluded from the webhook so it can never lock itself out).
    #[arg(long, env = "PALISADE_ADMISSION_NAMESPACE", default_value = "palisade-system")]
    pub namespace: String,
    /// Name of the Deployment, Service and webhook configuration.
    #[arg(long, default_value = "palisade-admission")]
    pub name: String,
    /// Container image of palisade.
    #[arg(long, env = "PALISADE_IMAGE", default_value = concat!("ghcr.io/palisade-sec/palisade:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// Webhook configuration to ship in the ConfigMap (default: PSS baseline denied, restricted warned).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Strict mode: failurePolicy Fail (requests are rejected when the webhook is unreachable).
    #[arg(long)]
    pub strict: bool,
    /// Let cert-manager issue the certificate and inject the CA instead of generating them here.
    #[arg(long)]
    pub cert_manager: bool,
    /// kube-apiserver's timeout for one call (1-30 s).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=30))]
    pub timeout_seconds: u8,
    /// Replicas (with a PodDisruptionBudget keeping one available).
    #[arg(long, default_value_t = 2)]
    pub replicas: u16,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Rules and alert delivery shared by the detect commands.
#[derive(Debug, Clone, clap::Args)]
pub struct DetectArgs {
    /// Extra rule files or directories (same id overrides a built-in).
    #[arg(long = "rules", env = "PALISADE_RULES", value_delimiter = ',')]
    pub rules: Vec<PathBuf>,
    /// Disable rules by id.
    #[arg(long, env = "PALISADE_DISABLE_RULES", value_delimiter = ',')]
    pub disable: Vec<String>,
    /// Set a rule list: NAME=item1,item2 (e.g. trusted_registries=registry.example.com).
    #[arg(long = "list", env = "PALISADE_RULE_LISTS", value_delimiter = ';')]
    pub lists: Vec<String>,
    /// Cluster name stamped on alerts.
    #[arg(long, env = "PALISADE_CLUSTER_NAME", default_value = "default")]
    pub cluster: String,
    /// Alert format: json (JSON lines), ocsf (OCSF Detection Finding), syslog (RFC 5424 + CEF).
    #[arg(long, env = "PALISADE_ALERT_FORMAT", value_enum, ignore_case = true, default_value = "json")]
    pub alert_format: AlertFormat,
    /// Write alerts to FILE (appended) instead of stdout.
    #[arg(short, long, env = "PALISADE_OUTPUT")]
    pub output: Option<PathBuf>,
    /// Also deliver alerts to this HTTP webhook (JSON lines), spooled on disk while it is down.
    #[arg(long, env = "PALISADE_ALERT_WEBHOOK")]
    pub webhook: Option<String>,
    /// Spool directory for the webhook sink.
    #[arg(long, env = "PALISADE_SPOOL_DIR", default_value = "palisade-spool")]
    pub spool: PathBuf,
    /// Also send alerts to a syslog server (host:port, UDP; tcp:// for TCP).
    #[arg(long, env = "PALISADE_SYSLOG")]
    pub syslog: Option<String>,
    /// Also send alerts to this Palisade server (`http(s)://host:port`; `POST /api/v1/alerts`),
    /// spooled on disk under `--spool` while it is unreachable (at-least-once; the server keeps
    /// a re-sent alert once). `sensor run` also sends its health as heartbeats.
    #[arg(long, env = "PALISADE_SERVER", requires = "token")]
    pub server: Option<String>,
    /// API token for `--server` (operator role or higher).
    #[arg(long, env = "PALISADE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `--alert-format` (any case; the aliases are the spellings `palisade_detect::sinks::Format`
/// accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlertFormat {
    /// Palisade's native JSON, one alert per line.
    #[value(alias = "jsonl", alias = "ndjson")]
    Json,
    /// OCSF 1.3 Detection Finding / Incident Finding.
    Ocsf,
    /// RFC 5424 syslog line with a CEF message.
    #[value(alias = "cef", alias = "syslog-cef")]
    Syslog,
}

impl From<AlertFormat> for palisade_detect::sinks::Format {
    fn from(f: AlertFormat) -> Self {
        match f {
            AlertFormat::Json => palisade_detect::sinks::Format::Json,
            AlertFormat::Ocsf => palisade_detect::sinks::Format::Ocsf,
            AlertFormat::Syslog => palisade_detect::sinks::Format::SyslogCef,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DetectCommand {
    /// Read an audit log (JSON lines as kube-apiserver's log backend writes them), or `-`.
    Audit {
        /// The audit log file, or `-` for stdin.
        file: PathBuf,
        /// Keep reading as the file grows, across rotation.
        #[arg(long)]
        follow: bool,
        /// With --follow: save and resume the position here (no loss, no repeats across restarts).
        #[arg(long, env = "PALISADE_POSITION_FILE")]
        position: Option<PathBuf>,
        /// With --follow and no saved position: start at the end of the file.
        #[arg(long)]
        from_end: bool,
        #[command(flatten)]
        detect: DetectArgs,
    },
    /// Receive audit events from kube-apiserver's webhook backend (EventList POSTs) over TLS.
    Serve {
        /// Listen address.
        #[arg(long, env = "PALISADE_LISTEN", default_value = "0.0.0.0:8443")]
        listen: String,
        /// TLS certificate (PEM).
        #[arg(long, env = "PALISADE_TLS_CERT")]
        tls_cert: Option<PathBuf>,
        /// TLS key (PEM).
        #[arg(long, env = "PALISADE_TLS_KEY")]
        tls_key: Option<PathBuf>,
        /// CA for client certificates (enables mutual TLS).
        #[arg(long, env = "PALISADE_CLIENT_CA")]
        client_ca: Option<PathBuf>,
        /// File with accepted bearer tokens, one per line.
        #[arg(long, env = "PALISADE_TOKEN_FILE")]
        token_file: Option<PathBuf>,
        /// Accept bearer tokens over plain HTTP on a non-loopback address (only behind a
        /// TLS-terminating proxy).
        #[arg(long)]
        insecure: bool,
        #[command(flatten)]
        detect: DetectArgs,
    },
    /// List the rules, or lint rule files.
    Rules {
        /// Lint these rule files: errors with line and column; exit 1 on errors.
        #[arg(long, num_args = 1..)]
        validate: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// Run attack actions inside a real container (runc, busybox) with the sensor on, and
    /// check that each expected alert fires; exit 1 if any is missing. Needs root.
    Node {
        /// Keep the container bundle directory (for inspection).
        #[arg(long)]
        keep: bool,
        /// How long to wait for alerts after the attack ends.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        wait: std::time::Duration,
        /// Also write every alert (JSON lines) to this file.
        #[arg(long)]
        alerts: Option<PathBuf>,
        /// Also check drift prevention: a drift policy that blocks, and a dropped binary that
        /// must be killed.
        #[arg(long)]
        block_drift: bool,
        /// Like --block-drift, but stop the dropped binary before it runs (fanotify exec
        /// permission on the container's root mount).
        #[arg(long)]
        prevent_drift: bool,
        /// Also check cluster responses: isolate the pod of the reverse shell through the API
        /// server of this kubeconfig.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
    /// Send realistic fleet traffic to a Palisade server (inventories, image SBOMs with
    /// findings, alerts, heartbeats) and report throughput and latency (JSON).
    Fleet(Box<FleetArgs>),
    /// Write a realistic attack story as audit events, mixed into benign traffic.
    Audit {
        /// Seed (the same seed gives the same log).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Benign background events.
        #[arg(long, default_value_t = 5000)]
        events: u64,
        /// Attack stories mixed in.
        #[arg(long, default_value_t = 1)]
        stories: usize,
        /// Write to FILE instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// Posture report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PostureFormat {
    /// Grouped by resource (the default on a terminal).
    Table,
    /// JSON (the default when stdout is not a terminal).
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

#[derive(Debug, clap::Args)]
pub struct PostureArgs {
    #[command(flatten)]
    pub source: K8sSource,
    /// Report format.
    #[arg(long, value_enum, env = "PALISADE_FORMAT")]
    pub format: Option<PostureFormat>,
    /// Write the report to FILE.
    #[arg(short, long, env = "PALISADE_OUTPUT")]
    pub output: Option<PathBuf>,
    /// Only findings of these severities (critical, high, medium, low, info).
    #[arg(long, env = "PALISADE_SEVERITY", value_delimiter = ',', value_parser = posture_severity)]
    pub severity: Vec<palisade_posture::Severity>,
    /// Only checks of these frameworks (pss-baseline, pss-restricted, nsa, cis).
    #[arg(long, env = "PALISADE_FRAMEWORK", value_delimiter = ',')]
    pub framework: Vec<String>,
    /// Configuration: trustedRegistries, exceptions, policies (Rego files or ConstraintTemplates).
    #[arg(long, env = "PALISADE_POSTURE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Extra custom Rego policies or Gatekeeper ConstraintTemplates (files or directories).
    #[arg(long = "policy", env = "PALISADE_POLICY", value_delimiter = ',')]
    pub policies: Vec<PathBuf>,
    /// Registries images may come from (enables the untrusted-registry check).
    #[arg(long = "trusted-registry", env = "PALISADE_TRUSTED_REGISTRIES", value_delimiter = ',')]
    pub trusted_registries: Vec<String>,
    /// Exit with this code when findings remain (a CI gate).
    #[arg(long, env = "PALISADE_EXIT_CODE", default_value_t = 0)]
    pub exit_code: u8,
    /// List the check catalogue and exit.
    #[arg(long)]
    pub list_checks: bool,
    /// Send the result to this Palisade server: the inventory (`POST /api/v1/inventory`, a full
    /// snapshot of what was read) and the posture snapshot (`POST /api/v1/posture`; a full run
    /// resolves the cluster's findings it no longer finds). Sent when the assessment is complete;
    /// a partial read or `--framework` sends a partial snapshot that resolves nothing.
    #[arg(long, env = "PALISADE_SERVER", requires = "token")]
    pub server: Option<String>,
    /// API token for `--server` (operator role or higher).
    #[arg(long, env = "PALISADE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `posture --severity`: a posture severity name in any case.
fn posture_severity(s: &str) -> Result<palisade_posture::Severity, String> {
    palisade_posture::Severity::parse(s)
        .ok_or_else(|| format!("unknown severity {s:?} (critical, high, medium, low, info)"))
}

/// Where Kubernetes objects come from: files, or a live cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct K8sSource {
    /// Manifests, directories (recursive), `kubectl get -o json` dumps, Helm output, or `-` for stdin.
    #[arg(short = 'f', long = "filename", num_args = 1.., env = "PALISADE_K8S_FILES", value_delimiter = ',')]
    pub files: Vec<PathBuf>,
    /// Read a live cluster through this kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, env = "PALISADE_K8S_CONTEXT")]
    pub context: Option<String>,
    /// Cluster name to report (default: the context name, or "files").
    #[arg(long, env = "PALISADE_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum K8sCommand {
    /// List what is in the cluster: namespaces, nodes, workloads down to images, identities, exposure.
    Inventory {
        #[command(flatten)]
        source: K8sSource,
        /// Output format.
        #[arg(long, value_enum, default_value = "table", env = "PALISADE_FORMAT")]
        format: TableOrJson,
        /// Write to FILE.
        #[arg(short, long, env = "PALISADE_OUTPUT")]
        output: Option<PathBuf>,
    },
}

/// Table or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableOrJson {
    /// Text table.
    Table,
    /// JSON.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Scan an image (any transport of `palisade sbom`).
    Image {
        /// The image reference.
        image: String,
        #[command(flatten)]
        image_args: ImageArgs,
        #[command(flatten)]
        scan: ScanArgs,
    },
    /// Scan a root filesystem (a node's /).
    Rootfs {
        /// Directory.
        dir: PathBuf,
        #[command(flatten)]
        scan: ScanArgs,
    },
    /// Re-assess an SBOM (CycloneDX or SPDX JSON, Palisade's, Trivy's or Syft's) without the image.
    Sbom {
        /// SBOM file (`-` for stdin).
        file: PathBuf,
        #[command(flatten)]
        scan: ScanArgs,
    },
}

/// Report formats of `palisade scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    /// Grouped by package, with counts per severity (the default on a terminal).
    Table,
    /// Native JSON (the default when stdout is not a terminal).
    Json,
    /// SARIF 2.1.0.
    Sarif,
    /// CycloneDX 1.6 with a vulnerabilities section.
    Cyclonedx,
}

/// Options shared by every scan.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub db: DbPath,
    /// Send the SBOM to this Palisade server (`http(s)://host:port`), which stores it, matches it
    /// against its own vulnerability database and answers the findings shown here (no local
    /// database needed).
    #[arg(long, env = "PALISADE_SERVER")]
    pub server: Option<String>,
    /// API token for `--server` (a role of operator or higher).
    #[arg(long, env = "PALISADE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Report format.
    #[arg(short, long, value_enum, env = "PALISADE_FORMAT")]
    pub format: Option<ScanFormat>,
    /// Write the report to FILE.
    #[arg(short, long, env = "PALISADE_OUTPUT")]
    pub output: Option<PathBuf>,
    /// Only these severities (comma-separated: CRITICAL,HIGH,MEDIUM,LOW,NEGLIGIBLE,UNKNOWN).
    #[arg(long, env = "PALISADE_SEVERITY", value_delimiter = ',', value_parser = palisade_vulndb::record::Severity::parse)]
    pub severity: Vec<palisade_vulndb::record::Severity>,
    /// Hide findings that have no fixed version.
    #[arg(long, env = "PALISADE_IGNORE_UNFIXED")]
    pub ignore_unfixed: bool,
    /// Hide findings with these statuses (fixed, affected, will-not-fix, fix-deferred, end-of-life).
    #[arg(long, env = "PALISADE_IGNORE_STATUS", value_delimiter = ',')]
    pub ignore_status: Vec<String>,
    /// Ignore file (IDs one per line, or YAML); default `.palisadeignore` when present.
    #[arg(long, env = "PALISADE_IGNOREFILE")]
    pub ignorefile: Option<PathBuf>,
    /// OpenVEX documents whose not_affected/fixed statements suppress findings.
    #[arg(long, env = "PALISADE_VEX", value_delimiter = ',')]
    pub vex: Vec<PathBuf>,
    /// Exit with this code when findings remain after filtering (a CI gate).
    #[arg(long, env = "PALISADE_EXIT_CODE", default_value_t = 0)]
    pub exit_code: u8,
    /// Warn when the database is older than this (e.g. 36h, 7d).
    #[arg(long, env = "PALISADE_DB_MAX_AGE", default_value = "7d", value_parser = humantime::parse_duration)]
    pub db_max_age: std::time::Duration,
}

/// Where the vulnerability database is.
#[derive(Debug, Clone, clap::Args)]
pub struct DbPath {
    /// Database file (default: the user cache directory).
    #[arg(long = "db", env = "PALISADE_DB", global = true)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Download the feeds from their upstream locations (or mirrors) and rebuild the database.
    Update {
        #[command(flatten)]
        db: DbPath,
        /// Base URL override per source group, e.g. `osv=http://mirror/osv` (groups: osv, debian, alpine, kev, epss).
        #[arg(long, env = "PALISADE_FEED_MIRROR", value_delimiter = ',')]
        mirror: Vec<String>,
        /// Only these source groups.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Where downloads are kept between updates (default: next to the database).
        #[arg(long, env = "PALISADE_FEED_DIR")]
        feed_dir: Option<PathBuf>,
    },
    /// Build the database from local copies of the feeds.
    Build {
        #[command(flatten)]
        db: DbPath,
        /// Directories to search for feeds (laid out as upstream publishes them).
        #[arg(long = "from", required = true, num_args = 1..)]
        from: Vec<PathBuf>,
        /// Replace the database even if the result lost a source or more than 10% of its records.
        #[arg(long)]
        allow_shrink: bool,
        /// Build even if some feed files fail to parse (each is still reported as a warning).
        #[arg(long)]
        allow_feed_errors: bool,
    },
    /// Show sources, record counts and age.
    Status {
        #[command(flatten)]
        db: DbPath,
        /// Output as JSON.
        #[arg(long)]
        json: bool,
    },
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

/// `palisade simulate fleet`.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// Server base URL.
    #[arg(long, env = "PALISADE_SERVER")]
    pub server: String,
    /// Operator (or admin) token.
    #[arg(long, env = "PALISADE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Clusters.
    #[arg(long, default_value_t = 3)]
    pub clusters: usize,
    /// Workloads per cluster.
    #[arg(long, default_value_t = 100)]
    pub workloads: usize,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Distinct images.
    #[arg(long, default_value_t = 200)]
    pub images: usize,
    /// Packages per image SBOM.
    #[arg(long, default_value_t = 300)]
    pub packages: usize,
    /// Alerts per cluster.
    #[arg(long, default_value_t = 50)]
    pub alerts: usize,
    /// Images per upload.
    #[arg(long, default_value_t = 20)]
    pub batch: usize,
    /// Parallel senders.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Timed list/filter requests after the ingest.
    #[arg(long, default_value_t = 0)]
    pub queries: usize,
    /// Percent of packages with a finding.
    #[arg(long, default_value_t = 3)]
    pub vulnerable_percent: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}
