//! The detection pipeline: parse → engine → fold/correlate, with counters. This is what
//! `palisade detect audit` and `palisade detect serve` drive.

use crate::alert::{AlertConfig, AlertProcessor, Finding};
use crate::audit::{self, IngestStats, Line, LineReader, ParseError};
use crate::engine::{Engine, EngineConfig, EngineStats};
use crate::event::{Event, SensorEvent};
use crate::rules::{RuleSet, RulesError};
use std::io::{self, BufRead};

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// Engine settings.
    pub engine: EngineConfig,
    /// Folding and correlation.
    pub alerts: AlertConfig,
    /// Cap on one event (line or list item).
    pub max_event_bytes: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            engine: EngineConfig::default(),
            alerts: AlertConfig::default(),
            max_event_bytes: audit::DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

/// Counters of a pipeline run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DetectorStats {
    /// Input.
    pub ingest: IngestStats,
    /// Engine.
    pub engine: EngineStats,
    /// Alerts emitted (first occurrences).
    pub alerts: u64,
    /// Alert updates emitted (folded duplicates).
    pub alert_updates: u64,
    /// Incidents emitted (including updates).
    pub incidents: u64,
    /// Duplicates folded.
    pub folded: u64,
}

/// Parse, detect, fold and correlate.
#[derive(Debug)]
pub struct Detector {
    engine: Engine,
    alerts: AlertProcessor,
    ingest: IngestStats,
    max_event_bytes: usize,
    scratch: Vec<crate::alert::Alert>,
    matched: Vec<String>,
    emitted_alerts: u64,
    emitted_updates: u64,
    emitted_incidents: u64,
}

impl Detector {
    /// Compiles `rules`.
    pub fn new(rules: &RuleSet, cfg: DetectorConfig) -> Result<Self, RulesError> {
        Ok(Detector {
            engine: Engine::new(rules, cfg.engine)?,
            alerts: AlertProcessor::new(cfg.alerts),
            ingest: IngestStats::default(),
            max_event_bytes: cfg.max_event_bytes,
            scratch: Vec::new(),
            matched: Vec::new(),
            emitted_alerts: 0,
            emitted_updates: 0,
            emitted_incidents: 0,
        })
    }

    /// The engine (rule count, candidates, stats).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn count(&mut self, out: &[Finding], from: usize) {
        for f in &out[from..] {
            match f {
                Finding::Alert(a) if a.update => self.emitted_updates += 1,
                Finding::Alert(_) => self.emitted_alerts += 1,
                Finding::Incident(_) => self.emitted_incidents += 1,
            }
        }
    }

    /// Processes one parsed event.
    pub fn process_event(&mut self, ev: &Event<'_>, out: &mut Vec<Finding>) {
        let from = out.len();
        self.scratch.clear();
        self.engine.process(ev, &mut self.scratch);
        self.matched.clear();
        self.matched.extend(self.scratch.iter().map(|a| a.rule.id.clone()));
        self.alerts.advance(ev.time_us(), out);
        for a in self.scratch.drain(..) {
            self.alerts.push(a, out);
        }
        self.count(out, from);
    }

    /// The ids of the rules that matched the last processed event (before folding: a repeat
    /// that only updates an alert is listed too). Automatic responses act on these.
    pub fn last_matches(&self) -> &[String] {
        &self.matched
    }

    /// Processes one sensor event.
    pub fn process_sensor(&mut self, ev: SensorEvent, out: &mut Vec<Finding>) {
        self.ingest.records += 1;
        self.ingest.events += 1;
        self.process_event(&Event::Sensor(ev), out);
    }

    /// Processes one line of an audit log; bad lines are counted and skipped. `where_` names the
    /// input for warnings (e.g. `audit.log:1234`).
    pub fn process_line(&mut self, line: &[u8], where_: &dyn std::fmt::Display, out: &mut Vec<Finding>) {
        if line.len() > self.max_event_bytes {
            self.ingest.records += 1;
            self.ingest.skip(&ParseError::TooLarge(line.len()), where_);
            return;
        }
        match audit::parse_line(line) {
            Ok(None) => {}
            Ok(Some(ev)) => {
                self.ingest.records += 1;
                self.ingest.events += 1;
                self.process_event(&Event::Audit(ev), out);
            }
            Err(e) => {
                self.ingest.records += 1;
                self.ingest.skip(&e, where_);
            }
        }
    }

    /// Processes an `EventList` body (webhook backend). Returns the number of events accepted;
    /// `Err` when the body is not an `EventList` at all (bad items are only counted).
    pub fn process_event_list(&mut self, body: &str, out: &mut Vec<Finding>) -> Result<usize, ParseError> {
        if body.len() > self.max_event_bytes.saturating_mul(16) {
            self.ingest.skip(&ParseError::TooLarge(body.len()), &"webhook");
            return Err(ParseError::TooLarge(body.len()));
        }
        let items = match audit::parse_event_list(body) {
            Ok(items) => items,
            Err(e) => {
                self.ingest.skip(&e, &"webhook");
                return Err(e);
            }
        };
        let mut n = 0;
        for (i, item) in items.into_iter().enumerate() {
            self.ingest.records += 1;
            match item {
                Ok(ev) => {
                    self.ingest.events += 1;
                    n += 1;
                    self.process_event(&Event::Audit(ev), out);
                }
                Err(e) => self.ingest.skip(&e, &format_args!("webhook item {i}")),
            }
        }
        Ok(n)
    }

    /// Reads an audit log to its end (`palisade detect audit FILE|-`), handing every finding to
    /// `emit` as it is produced, then flushes pending alert updates. Stops early if `emit`
    /// fails. `name` labels warnings.
    pub fn process_reader<R: BufRead>(
        &mut self,
        reader: R,
        name: &str,
        mut emit: impl FnMut(&Finding) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut lr = LineReader::new(reader, self.max_event_bytes);
        let mut out = Vec::new();
        let mut lineno = 0u64;
        loop {
            lineno += 1;
            let loc = Loc(name, lineno);
            match lr.next_line()? {
                None => break,
                Some(Line::TooLong(n)) => {
                    self.ingest.records += 1;
                    self.ingest.skip(&ParseError::TooLarge(n), &loc);
                    continue;
                }
                Some(Line::Text(t)) => self.process_line(t, &loc, &mut out),
            }
            for f in out.drain(..) {
                emit(&f)?;
            }
        }
        self.flush(&mut out);
        for f in out.drain(..) {
            emit(&f)?;
        }
        Ok(())
    }

    /// Follows an audit log (`palisade detect audit FILE --follow`): polls `path` every
    /// `interval` until `stop()` says so, across rotation and truncation; with `pos_file`,
    /// resumes from the position saved there and saves the position after every batch whose
    /// findings `emit` accepted (and at the end). A crash between `emit` and the save replays
    /// that batch on restart: delivery is at-least-once, and a clean stop repeats nothing.
    pub fn follow(
        &mut self,
        path: &std::path::Path,
        pos_file: Option<&std::path::Path>,
        from_end: bool,
        interval: std::time::Duration,
        stop: &dyn Fn() -> bool,
        emit: impl FnMut(&Finding) -> io::Result<()>,
    ) -> io::Result<crate::follow::Resume> {
        self.follow_durable(path, pos_file, from_end, interval, stop, emit, || Ok(()))
    }

    /// [`Detector::follow`] for sinks that buffer: `sync` must make every finding `emit`
    /// accepted so far durable (flush + `fsync`, or the receiver's acknowledgement); the
    /// position is saved only after it returned `Ok`, so a stop or a crash at any point loses
    /// nothing (at-least-once; a stop between two polls, as on SIGTERM, repeats nothing).
    #[allow(clippy::too_many_arguments)]
    pub fn follow_durable(
        &mut self,
        path: &std::path::Path,
        pos_file: Option<&std::path::Path>,
        from_end: bool,
        interval: std::time::Duration,
        stop: &dyn Fn() -> bool,
        mut emit: impl FnMut(&Finding) -> io::Result<()>,
        mut sync: impl FnMut() -> io::Result<()>,
    ) -> io::Result<crate::follow::Resume> {
        use crate::follow::{Follower, Position};
        let saved = match pos_file {
            Some(p) => Position::load(p)?,
            None => None,
        };
        let (mut f, resume) = Follower::open(path, saved, from_end, self.max_event_bytes)?;
        if let crate::follow::Resume::Restarted(why) = &resume {
            tracing::warn!(path = %path.display(), reason = %why, "saved position not usable; reading from the start");
        }
        let name = path.display().to_string();
        let mut out = Vec::new();
        let mut err: Option<io::Error> = None;
        let mut lineno = 0u64;
        loop {
            let n = f.poll(&mut |line| {
                lineno += 1;
                self.process_line(line, &Loc(&name, lineno), &mut out);
            })?;
            for fd in out.drain(..) {
                if let Err(e) = emit(&fd) {
                    err = Some(e);
                    break;
                }
            }
            if let Some(e) = err.take() {
                return Err(e);
            }
            if n > 0 {
                if let Some(p) = pos_file {
                    sync()?;
                    f.position().save(p)?;
                }
            }
            self.ingest.too_large += std::mem::take(&mut f.too_long);
            for g in std::mem::take(&mut f.gaps) {
                match g.kind {
                    crate::follow::GapKind::PossibleDuplicates => self.ingest.follow_possible_duplicates += 1,
                    _ => self.ingest.follow_gaps += 1,
                }
                if self.ingest.samples.len() < 16 {
                    self.ingest.samples.push(g.to_string());
                }
            }
            if stop() {
                break;
            }
            if n == 0 {
                // idle: fold windows close on wall-clock time too
                self.advance_clock(now_us(), &mut out);
                std::thread::sleep(interval);
            }
        }
        self.flush(&mut out);
        for fd in out.drain(..) {
            emit(&fd)?;
        }
        sync()?;
        if let Some(p) = pos_file {
            f.position().save(p)?;
        }
        Ok(resume)
    }

    /// Advances the alert clock (e.g. to the wall clock while a live source is idle), emitting
    /// fold updates whose window has closed.
    pub fn advance_clock(&mut self, now_us: i64, out: &mut Vec<Finding>) {
        let from = out.len();
        self.alerts.advance(now_us, out);
        self.count(out, from);
    }

    /// Emits pending alert updates (end of input or shutdown).
    pub fn flush(&mut self, out: &mut Vec<Finding>) {
        let from = out.len();
        self.alerts.flush(out);
        self.count(out, from);
    }

    /// Counters so far.
    pub fn stats(&self) -> DetectorStats {
        DetectorStats {
            ingest: self.ingest.clone(),
            engine: self.engine.stats().clone(),
            alerts: self.emitted_alerts,
            alert_updates: self.emitted_updates,
            incidents: self.emitted_incidents,
            folded: self.alerts.folded,
        }
    }
}

/// `name:line`, formatted only when a warning needs it.
#[derive(Debug, Clone, Copy)]
pub struct Loc<'a>(pub &'a str, pub u64);

impl std::fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// The wall clock in microseconds since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}
