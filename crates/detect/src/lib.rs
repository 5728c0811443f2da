#![cfg_attr(test, allow(clippy::unwrap_used, clippy::panic))]
//! Palisade run-time detection: Kubernetes audit events (agentless) — and node sensor events
//! later — matched against CEL rules mapped to MITRE ATT&CK, folded into alerts and incidents,
//! delivered to sinks.
//!
//! # Pieces
//!
//! | module | what |
//! | --- | --- |
//! | [`event`] | the typed [`Event`](event::Event): [`AuditEvent`](event::AuditEvent) (borrowing its JSON) or [`SensorEvent`](event::SensorEvent), shared [`Entity`](event::Entity) fields |
//! | [`audit`] | parsing JSON lines (log backend) and `EventList` bodies (webhook backend); size cap, counted skips |
//! | [`rules`] | the rule file format, the linter ([`rules::validate`]) with line numbers, [`RuleSet`](rules::RuleSet) merging built-ins and user files |
//! | [`attack`] | the bundled ATT&CK tactics and Containers-matrix techniques |
//! | [`bind`] | how events look to CEL (`ka`, `evt`, lists) and Palisade's CEL functions |
//! | [`engine`] | compiled, indexed rules; stateful thresholds and first-seen with bounded state |
//! | [`alert`] | alerts, incidents, duplicate folding and correlation |
//! | [`pipeline`] | [`Detector`](pipeline::Detector): parse → engine → fold; file, reader, follow and `EventList` entry points |
//! | [`follow`] | tailing across rotation/truncation and resuming from a saved position |
//! | [`serve`] | the HTTPS audit webhook receiver (bearer token / client certificates) |
//! | [`sinks`], [`spool`] | JSON lines, OCSF 2004/2005, syslog RFC 5424 + CEF, HTTP webhook with an on-disk spool |
//! | [`simulate`] | realistic audit events: an attack story and benign background, deterministic from a seed |
//!
//! # The CLI's calls
//!
//! - `palisade detect audit FILE|-`: `RuleSet::builtin()` (+ `add_path` for `--rules`,
//!   `set_list` for configured registries / CIDRs, `set_enabled`), `Detector::new`, then
//!   `Detector::process_reader(reader, name, emit)`; with `--follow`,
//!   `Detector::follow(path, Some(pos_file), from_end, interval, stop, emit)`. `emit` hands
//!   findings to a [`sinks::Sink`]; `Detector::stats` gives the counts to log.
//! - `palisade detect serve --listen ADDR`: `serve::WebhookServer::bind(ServeConfig)` then
//!   `serve::run(&server, &mut detector, stop, emit)`.
//! - `palisade detect rules --validate FILE`: `rules::validate(text, file_name)` →
//!   `Vec<Diagnostic>` (`Display` is `file:line:col: level: message`).
//! - `palisade simulate audit`: `simulate::Generator::new(SimConfig)` yields JSON lines.
//!
//! # Events in CEL
//!
//! Audit rules see `ka`, a lazy view of the typed event (nothing is converted unless read):
//!
//! | field | value |
//! | --- | --- |
//! | `ka.verb`, `ka.stage`, `ka.level`, `ka.auditID`, `ka.uri` | strings as logged |
//! | `ka.user.{name,uid,groups}`, `ka.impersonated.{name,uid,groups}` | `""` / `[]` when absent |
//! | `ka.sourceIP` (first of `sourceIPs`), `ka.sourceIPs`, `ka.userAgent` | |
//! | `ka.target.{resource,subresource,namespace,name,apiGroup,apiVersion}` | `objectRef`; `""` when absent |
//! | `ka.response.{code,status,reason,message}` | `responseStatus` |
//! | `ka.auth.{decision,reason}` | `authorization.k8s.io/*` annotations |
//! | `ka.annotations` | all annotations (map) |
//! | `ka.req`, `ka.resp` | `requestObject` / `responseObject` as CEL maps (`{}` when absent) |
//! | `ka.pod.{present,containers,images,hostNetwork,hostPID,hostIPC,hostPaths,serviceAccountName,nodeName,name,labels}` | the pod spec of a Pod, of a workload's template or of a CronJob's job template; each container has `name, image, kind (container/init/ephemeral), privileged, allowPrivilegeEscalation, capabilities, runAsUser, command` |
//! | `ka.cluster`, `ka.time` | configured cluster name; event time (µs) |
//!
//! Sensor rules see `evt`: `evt.type` (`process`, `exit`, `file`, `network`, `syscall`),
//! `evt.proc.{exe,name,comm,args,cmdline,cwd,pid,ppid,tid,uid,euid,gid,parentExe,parentName,
//! ancestors,ancestorNames,upperLayer,fileless,stdioSocket,tty,drift}`,
//! `evt.file.{path,name,op,flags,mode,newPath}`, `evt.net.{direction,family,protocol,srcIP,srcPort,
//! dstIP,dstPort,unixPath}`, `evt.sys.{name,flags,request,targetPid,ids,source,target,fstype}`,
//! `evt.namespace`, `evt.pod`, `evt.container`, `evt.containerId`, `evt.host` (no container),
//! `evt.image`, `evt.node`. Lists are CEL variables by name; macros
//! are expanded textually (parenthesised) before compiling. Palisade adds `inCidrs(ip, list)`,
//! `s.startsWithAny(list)`, `s.endsWithAny(list)`, `s.containsAny(list)`, `s.globAny(list)`,
//! `s.glob(pattern)`, `imageRegistry(i)`, `imageRepo(i)`, `imageName(i)`, `imageTag(i)` to the
//! standard library and the strings extension. A condition that fails to evaluate (a missing map
//! key, say) counts as no match and is counted in [`engine::EngineStats::cel_errors`].
//!
//! CEL is the [`cel`](https://crates.io/crates/cel) crate (0.15), the maintained successor of
//! `cel-interpreter` in the cel-rust project.

pub mod alert;
pub mod attack;
pub mod audit;
pub mod bind;
pub mod engine;
pub mod event;
pub mod fields;
pub mod follow;
pub mod pipeline;
pub mod pod;
pub mod rules;
pub mod serve;
pub mod simulate;
pub mod sinks;
pub mod spool;
pub mod state;
pub mod yaml;
