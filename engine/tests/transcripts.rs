//! Transcript tests: small data-driven text files of inputs with the expected events, effects
//! and state (`engine/tests/transcripts/*.txt`). Every step is also checked against the
//! invariants, and each transcript's whole trace against its snapshot (`NAME.trace`, rewritten
//! with `UPDATE_EXPECT=1`). The language is described in `engine/tests/transcripts/README.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tandem_engine::testing::Harness;
use tandem_engine::{
    Action, AgentReport, ClusterState, ConfigHash, CopyProgress, Effect, EffectError, EffectKey,
    Event, FenceEvidence, Health, Input, Lsn, MemberId, MemberStatus, NodeName, NodeStatus,
    NotServing, Outcome, PodObservation, PodUid, Poll, PollTicket, Process, PvName, PvcUid, Reason,
    Record, Role, Spec, Status, SwitchoverRequest, Timeline, Timestamp, Topology,
    VolumeObservation,
};

struct Runner {
    file: PathBuf,
    harness: Harness,
    spec: Spec,
    now: u64,
    window: Vec<Record>,
    window_effects: Vec<Effect>,
    all_effects: Vec<Effect>,
    last_was_expect: bool,
    lsn: u64,
    /// Polls asked and not answered yet, per member.
    asked: [Option<PollTicket>; 2],
    /// Whether the latest answer was dropped as asked before the member's data changed.
    dropped: bool,
    /// Whether label effects are left for `finished` lines (`labels manual`) rather than
    /// carried out at once.
    manual_labels: bool,
    /// The events and effects of the current transcript line, rendered, in the order of its
    /// steps: the body of its entry in the trace.
    traced: Vec<String>,
}

type Outcome_ = Result<(), String>;

impl Runner {
    fn new(file: &Path) -> Runner {
        Runner {
            file: file.to_path_buf(),
            harness: Harness::new(),
            spec: Spec::defaults(Topology::MasterSlave),
            now: 0,
            window: Vec::new(),
            window_effects: Vec::new(),
            all_effects: Vec::new(),
            last_was_expect: false,
            lsn: 0,
            asked: [None; 2],
            dropped: false,
            manual_labels: false,
            traced: Vec::new(),
        }
    }

    fn input(&mut self, input: Input) -> Outcome_ {
        if self.last_was_expect {
            self.window.clear();
            self.window_effects.clear();
            self.last_was_expect = false;
        }
        let seq_before = self.harness.engine.state().seq();
        let effects = self
            .harness
            .step(Timestamp(self.now), input)
            .map_err(|violation| violation.to_string())?;
        if self.harness.engine.state().seq() != seq_before {
            let bytes = self.harness.log.last().expect("a record was written");
            let record = Record::decode(bytes).map_err(|e| e.to_string())?;
            self.traced.extend(
                record
                    .events
                    .iter()
                    .map(|event| format!("event {}", render_event(event))),
            );
            self.window.push(record);
        }
        self.trace_effects(&effects);
        self.window_effects.extend(effects.iter().cloned());
        self.all_effects.extend(effects.iter().cloned());
        if !self.manual_labels {
            for effect in &effects {
                if matches!(effect.action, Action::LabelPod { .. }) {
                    self.input(Input::EffectFinished {
                        id: effect.id,
                        outcome: Outcome::Ok,
                    })?;
                }
            }
        }
        Ok(())
    }

    fn trace_effects(&mut self, effects: &[Effect]) {
        self.traced.extend(effects.iter().map(|effect| {
            format!(
                "effect {} id={}",
                render_action(&effect.action),
                effect.id.0
            )
        }));
    }

    /// The trace's entry for a transcript line that was just run: the line with the time after
    /// it, what its steps recorded and emitted, and the state it left.
    fn trace_entry(&mut self, line: &str) -> String {
        let mut entry = format!("@{} {line}\n", duration(self.now));
        for traced in self.traced.drain(..) {
            writeln!(entry, "  {traced}").expect("writing to a String");
        }
        if line.starts_with("answer") && self.dropped {
            entry.push_str("  dropped\n");
        }
        writeln!(entry, "  {}", self.render_state()).expect("writing to a String");
        entry
    }

    /// The engine's state, in the stable rendering: the cluster state, the active, each
    /// member's health and the next deadline.
    fn render_state(&self) -> Rendered {
        let engine = &self.harness.engine;
        let state = engine.state();
        let mut rendered = Rendered::new("state")
            .with("cluster", cluster_state(state.cluster()))
            .with("active", optional(state.active(), member));
        for of in state
            .topology()
            .map(Topology::members)
            .into_iter()
            .flatten()
        {
            let derived = state.health(of, Timestamp(self.now));
            rendered = rendered.with(format!("m{}", of.0), health(derived));
        }
        rendered.with("deadline", optional(engine.next_deadline(), time))
    }

    fn member(word: &str) -> Result<MemberId, String> {
        word.parse::<u8>()
            .map(MemberId)
            .map_err(|_| format!("not a member ordinal: {word:?}"))
    }

    fn run_line(&mut self, line: &str) -> Outcome_ {
        let words = split_words(line)?;
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let (command, args) = words.split_first().ok_or("empty line")?;
        match *command {
            "topology" => {
                let topology = match args.first().copied() {
                    Some("master-slave") => Topology::MasterSlave,
                    Some("standalone") => Topology::Standalone,
                    other => return Err(format!("unknown topology {other:?}")),
                };
                self.spec = Spec::defaults(topology);
                Ok(())
            }
            "set" => {
                for arg in args {
                    set_field(&mut self.spec, arg)?;
                }
                Ok(())
            }
            "spec" => {
                for arg in args {
                    set_field(&mut self.spec, arg)?;
                }
                self.input(Input::Spec(self.spec.clone()))
            }
            "at" => {
                let word = args.first().ok_or("at needs a time")?;
                let (relative, text) = match word.strip_prefix('+') {
                    Some(rest) => (true, rest),
                    None => (false, *word),
                };
                let ms = parse_duration(text)?;
                self.now = if relative { self.now + ms } else { ms };
                Ok(())
            }
            "bootstrap" => self.bootstrap(),
            "steady" => self.steady(args),
            "report" => {
                let member = Self::member(args.first().ok_or("report needs a member")?)?;
                let report = parse_report(&args[1..])?;
                self.input(Input::Agent {
                    member,
                    poll: Poll::Report(report),
                })
            }
            "ask" => {
                let member = Self::member(args.first().ok_or("ask needs a member")?)?;
                self.asked[member.index()] = Some(self.harness.engine.poll_ticket(member));
                Ok(())
            }
            "answer" => {
                let member = Self::member(args.first().ok_or("answer needs a member")?)?;
                let ticket = self.asked[member.index()]
                    .take()
                    .ok_or(format!("answer {member}: no poll was asked"))?;
                let report = parse_report(&args[1..])?;
                self.dropped = !self.harness.engine.answer_is_current(&ticket);
                if self.dropped {
                    return Ok(());
                }
                self.input(Input::Agent {
                    member,
                    poll: Poll::Report(report),
                })
            }
            "unreachable" => {
                let member = Self::member(args.first().ok_or("unreachable needs a member")?)?;
                self.input(Input::Agent {
                    member,
                    poll: Poll::Unreachable,
                })
            }
            "pod" => self.pod(args),
            "volume" => self.volume(args),
            "node" => {
                let name = args.first().ok_or("node needs a name")?;
                let status = match args.get(1).copied() {
                    Some("ready") => NodeStatus::Ready,
                    Some("notready") => NodeStatus::NotReady,
                    Some("deleted") => NodeStatus::Deleted,
                    other => return Err(format!("unknown node status {other:?}")),
                };
                self.input(Input::Node {
                    node: NodeName(name.to_string()),
                    status,
                })
            }
            "timer" => self.input(Input::Timer),
            "recovered" => {
                let log_lost = args.first() == Some(&"log-lost");
                if log_lost {
                    self.harness = Harness::new();
                }
                self.input(Input::Recovered { log_lost })
            }
            "restart" => {
                let effects = self
                    .harness
                    .restart(Timestamp(self.now))
                    .map_err(|violation| violation.to_string())?;
                self.trace_effects(&effects);
                self.window_effects.extend(effects);
                Ok(())
            }
            "finished" => self.finished(args),
            "labels" => {
                self.manual_labels = match args.first().copied() {
                    Some("manual") => true,
                    Some("auto") => false,
                    other => return Err(format!("labels manual|auto, not {other:?}")),
                };
                Ok(())
            }
            "repeat" => {
                let count: usize = args
                    .first()
                    .and_then(|n| n.parse().ok())
                    .ok_or("repeat N +DURATION COMMAND")?;
                let step = args
                    .get(1)
                    .and_then(|d| d.strip_prefix('+'))
                    .ok_or("repeat N +DURATION COMMAND")?;
                let step_ms = parse_duration(step)?;
                let command = args[2..]
                    .iter()
                    .map(|word| quoted(word))
                    .collect::<Vec<_>>()
                    .join(" ");
                for _ in 0..count {
                    self.now += step_ms;
                    self.run_line(&command)?;
                }
                Ok(())
            }
            "expect" => {
                self.last_was_expect = true;
                self.expect(args)
            }
            other => Err(format!("unknown command {other:?}")),
        }
    }

    fn pod(&mut self, args: &[&str]) -> Outcome_ {
        let member = Self::member(args.first().ok_or("pod needs a member")?)?;
        if args.get(1) == Some(&"gone") {
            return self.input(Input::Pod { member, pod: None });
        }
        let mut pod = PodObservation {
            uid: PodUid(format!("p{}", member.0)),
            node: Some(NodeName(format!("node-{}", member.0))),
            running: true,
            deleting: false,
        };
        for arg in &args[1..] {
            match arg.split_once('=') {
                Some(("uid", uid)) => pod.uid = PodUid(uid.to_string()),
                Some(("node", node)) => pod.node = Some(NodeName(node.to_string())),
                None if *arg == "deleting" => pod.deleting = true,
                None if *arg == "pending" => pod.running = false,
                _ => return Err(format!("unknown pod argument {arg:?}")),
            }
        }
        self.input(Input::Pod {
            member,
            pod: Some(pod),
        })
    }

    fn volume(&mut self, args: &[&str]) -> Outcome_ {
        let member = Self::member(args.first().ok_or("volume needs a member")?)?;
        let mut volume = VolumeObservation {
            pvc: None,
            pv: None,
            lost: false,
        };
        for arg in &args[1..] {
            match arg.split_once('=') {
                Some(("pv", value)) => {
                    let (name, node) = value.split_once('@').ok_or("pv=NAME@NODE")?;
                    volume.pv = Some((PvName(name.into()), NodeName(node.into())));
                    volume.pvc = Some(PvcUid(format!("pvc-{}-{name}", member.0)));
                }
                None if *arg == "lost" => volume.lost = true,
                None if *arg == "none" => {}
                _ => return Err(format!("unknown volume argument {arg:?}")),
            }
        }
        self.input(Input::Volume { member, volume })
    }

    fn finished(&mut self, args: &[&str]) -> Outcome_ {
        let name = args.first().ok_or("finished needs an effect name")?;
        let member = args
            .get(1)
            .filter(|word| **word != "*")
            .map(|word| Self::member(word))
            .transpose()?;
        let outcome = match args.get(2).copied() {
            Some("ok") | None => Outcome::Ok,
            Some("conflict") => Outcome::Failed(EffectError::Conflict),
            Some("timeout") => Outcome::Failed(EffectError::Timeout),
            Some("error") => Outcome::Failed(EffectError::ServerError),
            Some("rejected") => Outcome::Failed(EffectError::Rejected),
            other => return Err(format!("unknown outcome {other:?}")),
        };
        let effect = self
            .all_effects
            .iter()
            .rev()
            .find(|effect| {
                effect.action.name() == *name
                    && (member.is_none() || effect.action.member() == member)
            })
            .ok_or(format!("no {name} effect was emitted"))?;
        let id = effect.id;
        self.input(Input::EffectFinished { id, outcome })
    }

    /// Brings a new cluster to `Normal` with member 0 active (member 1 standby).
    fn bootstrap(&mut self) -> Outcome_ {
        for index in 0..3 {
            let node = NodeName(format!("node-{index}"));
            self.input(Input::Node {
                node,
                status: NodeStatus::Ready,
            })?;
        }
        self.input(Input::Spec(self.spec.clone()))?;
        let topology = self.spec.topology;
        for member in topology.members() {
            self.run_line(&format!(
                "volume {} pv=pv{}@node-{}",
                member.0, member.0, member.0
            ))?;
            self.run_line(&format!("pod {}", member.0))?;
        }
        self.now += 5_000;
        self.run_line("report 0 running none copy")?;
        self.run_line("report 0 active copy")?;
        if topology == Topology::MasterSlave {
            self.run_line("report 1 running none")?;
            self.run_line("report 1 standby copy connected sync")?;
            self.run_line("report 0 active copy connected")?;
        }
        let state = self.harness.engine.state().cluster();
        if state != ClusterState::Normal {
            return Err(format!("bootstrap ended in {state}, not Normal"));
        }
        self.window.clear();
        self.window_effects.clear();
        Ok(())
    }

    /// Every member reports the steady state the engine expects of it.
    fn steady(&mut self, args: &[&str]) -> Outcome_ {
        for arg in args {
            match arg.split_once('=') {
                Some(("lsn", value)) => self.lsn = value.parse().map_err(|_| "lsn=N")?,
                _ => return Err(format!("unknown steady argument {arg:?}")),
            }
        }
        let state = self.harness.engine.state();
        let active = state.active().ok_or("steady needs an active")?;
        let hash = self.spec.config_hash.0;
        let lsn = self.lsn;
        let topology = self.spec.topology;
        let connected = if topology == Topology::MasterSlave {
            " connected"
        } else {
            ""
        };
        self.run_line(&format!(
            "report {} active copy lsn={lsn} hash={hash}{connected}",
            active.0
        ))?;
        if topology == Topology::MasterSlave {
            let standby = active.peer().0;
            self.run_line(&format!(
                "report {standby} standby copy connected sync lsn={lsn} hash={hash}"
            ))?;
        }
        Ok(())
    }

    fn expect(&mut self, args: &[&str]) -> Outcome_ {
        let (what, rest) = args.split_first().ok_or("expect what?")?;
        let state = self.harness.engine.state();
        match *what {
            "dropped" => {
                let want = rest.first().is_none_or(|word| *word != "no");
                (self.dropped == want).then_some(()).ok_or(format!(
                    "the latest answer was {}",
                    if self.dropped { "dropped" } else { "delivered" }
                ))
            }
            "state" => {
                let want = rest.join(" ");
                let got = state.cluster().to_string();
                (got == want)
                    .then_some(())
                    .ok_or(format!("state is {got}, expected {want}"))
            }
            "transition" => {
                let want = rest.join(" ");
                let found = self.transitions().contains(&want);
                found.then_some(()).ok_or(format!(
                    "no transition {want:?}; this window has {:?}",
                    self.transitions()
                ))
            }
            "no-transition" => {
                let found = self.transitions();
                found
                    .is_empty()
                    .then_some(())
                    .ok_or(format!("unexpected transitions {found:?}"))
            }
            "effect" | "no-effect" => {
                let name = rest.first().ok_or("which effect?")?;
                let member = match rest.get(1).copied() {
                    Some("*") | None => None,
                    Some(word) => Some(Self::member(word)?),
                };
                let wants = parse_wants(rest.get(2..).unwrap_or_default())?;
                let found = self.window_effects.iter().any(|effect| {
                    effect.action.name() == *name
                        && (member.is_none() || effect.action.member() == member)
                        && render_action(&effect.action).matches(&wants)
                });
                match (*what, found) {
                    ("effect", false) => Err(format!(
                        "no effect {rest:?}; this window has {:?}",
                        self.actions()
                    )),
                    ("no-effect", true) => Err(format!("unexpected effect {rest:?}")),
                    _ => Ok(()),
                }
            }
            "no-effects" => {
                let actions: Vec<String> = self
                    .window_effects
                    .iter()
                    .filter(|effect| !effect.action.is_report())
                    .map(|effect| format!("{:?}", effect.action))
                    .collect();
                actions
                    .is_empty()
                    .then_some(())
                    .ok_or(format!("unexpected effects {actions:?}"))
            }
            "health" => {
                let member = Self::member(rest.first().ok_or("health of which member?")?)?;
                let want = rest.get(1).ok_or("which health?")?;
                let got = state.health(member, Timestamp(self.now)).name();
                (got == *want)
                    .then_some(())
                    .ok_or(format!("{member} is {got}, expected {want}"))
            }
            "active" => {
                let want = rest.first().ok_or("which member?")?;
                let got = state
                    .active()
                    .map_or("none".to_string(), |m| m.0.to_string());
                (got == *want)
                    .then_some(())
                    .ok_or(format!("active is {got}, expected {want}"))
            }
            "quiet" => self.window.is_empty().then_some(()).ok_or(format!(
                "{} records in this window: {:?}",
                self.window.len(),
                self.window
                    .iter()
                    .map(|record| &record.events)
                    .collect::<Vec<_>>()
            )),
            "records" => {
                let want: usize = rest
                    .first()
                    .and_then(|n| n.parse().ok())
                    .ok_or("records N")?;
                let got = self.window.len();
                (got <= want)
                    .then_some(())
                    .ok_or(format!("{got} records, expected at most {want}"))
            }
            "no-event" => {
                let kind = rest.first().ok_or("which event?")?;
                let wants = parse_wants(&rest[1..])?;
                let found = self
                    .window
                    .iter()
                    .flat_map(|record| &record.events)
                    .map(render_event)
                    .find(|event| event.kind == *kind && event.matches(&wants));
                match found {
                    None => Ok(()),
                    Some(event) => Err(format!("unexpected event {event}")),
                }
            }
            "event" => {
                let kind = rest.first().ok_or("which event?")?;
                let wants = parse_wants(&rest[1..])?;
                let events: Vec<Rendered> = self
                    .window
                    .iter()
                    .flat_map(|record| &record.events)
                    .map(render_event)
                    .collect();
                let found = events
                    .iter()
                    .any(|event| event.kind == *kind && event.matches(&wants));
                found.then_some(()).ok_or_else(|| {
                    let mut message = format!("no event {rest:?} in this window; it has:");
                    for event in &events {
                        write!(message, "\n    {event}").expect("writing to a String");
                    }
                    message
                })
            }
            "rejected" => {
                let field = rest.first().ok_or("which field?")?;
                let found = self.window.iter().flat_map(|r| &r.events).any(
                    |event| matches!(event, Event::SpecRejected { field: f, .. } if f == field),
                );
                found
                    .then_some(())
                    .ok_or(format!("no rejection of {field}"))
            }
            "next-deadline" => {
                let want = parse_duration(rest.first().ok_or("which time?")?)?;
                let got = self.harness.engine.next_deadline().map(|t| t.0);
                (got == Some(want))
                    .then_some(())
                    .ok_or(format!("next deadline {got:?}"))
            }
            other => Err(format!("unknown expectation {other:?}")),
        }
    }

    fn transitions(&self) -> Vec<String> {
        self.window
            .iter()
            .flat_map(|record| &record.events)
            .filter_map(|event| match event {
                Event::Transition {
                    from, to, reason, ..
                } => Some(format!("{from} -> {to} {}", reason.name())),
                _ => None,
            })
            .collect()
    }

    fn actions(&self) -> Vec<String> {
        self.window_effects
            .iter()
            .filter(|effect| !effect.action.is_report())
            .map(|effect| format!("{:?}", effect.action))
            .collect()
    }
}

/// A duration as Go and humantime write them (`15s`, `1m30s`, `500ms`), in milliseconds: the
/// engine's clock counts whole milliseconds, so a finer duration is refused.
fn parse_duration(text: &str) -> Result<u64, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|error| format!("bad duration {text:?}: {error}"))?;
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "{text:?} is not a whole number of milliseconds: the engine's clock counts milliseconds"
        ));
    }
    u64::try_from(duration.as_millis()).map_err(|_| format!("duration too long: {text:?}"))
}

fn parse_report(args: &[&str]) -> Result<AgentReport, String> {
    let mut report = AgentReport {
        process: Process::Running,
        ..AgentReport::default()
    };
    for arg in args {
        match arg.split_once('=') {
            Some(("lsn", value)) => report.lsn = Lsn(value.parse().map_err(|_| "lsn=N")?),
            Some(("hash", value)) => {
                report.config_hash = ConfigHash(value.parse().map_err(|_| "hash=N")?)
            }
            Some(("copying", value)) => {
                let percent = value.parse().map_err(|_| "copying=PERCENT")?;
                report.copy = CopyProgress::Copying { percent }
            }
            Some(("timeline", value)) => {
                // `ID/PARENT@BRANCHED_AT`, or `ID` alone for a first timeline.
                let usage = "timeline=ID or timeline=ID/PARENT@LSN";
                let (id, rest) = value.split_once('/').unwrap_or((value, "0@0"));
                let (parent, at) = rest.split_once('@').ok_or(usage)?;
                report.timeline = Timeline {
                    id: id.parse().map_err(|_| usage)?,
                    parent: parent.parse().map_err(|_| usage)?,
                    branched_at: Lsn(at.parse().map_err(|_| usage)?),
                };
            }
            Some(("why", value)) => {
                report.not_serving = Some(match value {
                    "starting" => NotServing::Starting,
                    "restarted" => NotServing::Restarted,
                    "demoted" => NotServing::Demoted,
                    "fenced" => NotServing::Fenced,
                    "lease-expired" => NotServing::LeaseExpired,
                    _ => return Err(format!("unknown reason {value:?}")),
                })
            }
            Some(_) => return Err(format!("unknown report argument {arg:?}")),
            None => match *arg {
                "active" => report.role = Role::Active,
                "standby" => report.role = Role::Standby,
                "none" => report.role = Role::None,
                "running" => report.process = Process::Running,
                "starting" => report.process = Process::Starting,
                "down" => report.process = Process::Down,
                "initfailed" => report.process = Process::InitFailed,
                "connected" => report.replication_connected = true,
                "sync" => report.in_sync = true,
                "copy" => report.copy_complete = true,
                "copy-failed" => report.copy = CopyProgress::Failed,
                _ => return Err(format!("unknown report argument {arg:?}")),
            },
        }
    }
    Ok(report)
}

fn set_field(spec: &mut Spec, arg: &str) -> Outcome_ {
    let (key, value) = arg
        .split_once('=')
        .ok_or(format!("expected key=value, got {arg:?}"))?;
    let number = || {
        value
            .parse::<u32>()
            .map_err(|_| format!("{key}: not a number: {value:?}"))
    };
    if let Some(field) = tandem_engine::config::spec_field(key) {
        let value = field.parse(value)?;
        return field.set(spec, value);
    }
    match key {
        "configHash" => spec.config_hash = ConfigHash(u64::from(number()?)),
        "stopped" => spec.stopped = value == "true",
        "reexamine" => spec.reexamine = value.to_string(),
        "replicas" => {
            spec.topology = if value == "1" {
                Topology::Standalone
            } else {
                Topology::MasterSlave
            }
        }
        "switchover" => {
            let (token, to) = match value.split_once(':') {
                Some((token, to)) => (
                    token,
                    Some(MemberId(to.parse().map_err(|_| "switchover=TOKEN:N")?)),
                ),
                None => (value, None),
            };
            spec.switchover = Some(SwitchoverRequest {
                token: token.to_string(),
                to,
            });
        }
        _ => return Err(format!("unknown field {key:?}")),
    }
    Ok(())
}

/// Runs a transcript; returns its trace: for every line that is an input (not `at`, `set`,
/// `topology`, `ask`, `labels` or an expectation), what it recorded and emitted and the state it
/// left, in the stable rendering.
fn run_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut runner = Runner::new(path);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut trace = format!(
        "# The trace of {name}: per input line, the events recorded, the effects emitted and the \
         state after it.\n# Written by UPDATE_EXPECT=1 (engine/tests/transcripts/README.md).\n"
    );
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        runner.traced.clear();
        runner.run_line(line).map_err(|error| {
            format!(
                "{}:{}: `{line}`: {error}",
                runner.file.display(),
                number + 1
            )
        })?;
        let command = line.split_whitespace().next().unwrap_or_default();
        if !matches!(
            command,
            "at" | "set" | "topology" | "ask" | "labels" | "expect"
        ) {
            trace.push('\n');
            trace.push_str(&runner.trace_entry(line));
        }
    }
    Ok(trace)
}

/// Compares a transcript's trace with its snapshot, `NAME.trace` beside it (with
/// `UPDATE_EXPECT=1`, rewrites the snapshot instead). A difference is printed as a diff.
fn check_trace(transcript: &Path, trace: &str) -> Result<(), String> {
    let path = transcript.with_extension("trace");
    let snapshot = expect_test::expect_file![path.clone()];
    std::panic::catch_unwind(|| snapshot.assert_eq(trace)).map_err(|_| {
        format!(
            "{}: the trace differs from {} (the diff is printed above; UPDATE_EXPECT=1 \
             rewrites it)",
            transcript.display(),
            path.display()
        )
    })
}

// The stable rendering: engine values as `kind key=value ...`, lower case, enum values in
// kebab-case, members as numbers, times as humantime writes durations. Expectations match it,
// and traces are made of it, so renaming a Rust field or variant does not change a transcript.

/// An engine value rendered: its kind and its fields, in a fixed order.
#[derive(Debug)]
struct Rendered {
    kind: &'static str,
    fields: Vec<(String, String)>,
}

impl Rendered {
    fn new(kind: &'static str) -> Rendered {
        Rendered {
            kind,
            fields: Vec::new(),
        }
    }

    fn with(mut self, key: impl Into<String>, value: impl ToString) -> Rendered {
        self.fields.push((key.into(), value.to_string()));
        self
    }

    /// Whether every wanted field is there with the wanted value.
    fn matches(&self, wants: &[Want]) -> bool {
        wants.iter().all(|want| {
            self.fields.iter().any(|(key, value)| match want {
                Want::Is(want_key, want_value) => key == want_key && value == want_value,
                Want::Has(want_key, text) => key == want_key && value.contains(text.as_str()),
            })
        })
    }
}

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind)?;
        for (key, value) in &self.fields {
            write!(f, " {key}={}", quoted(value))?;
        }
        Ok(())
    }
}

/// A word of an expectation about a rendered value: `key=value` (the field is exactly
/// `value`) or `key~text` (the field contains `text`).
#[derive(Debug)]
enum Want {
    Is(String, String),
    Has(String, String),
}

fn parse_wants(words: &[&str]) -> Result<Vec<Want>, String> {
    words
        .iter()
        .map(|word| match word.find(['=', '~']) {
            Some(at) if at > 0 => {
                let (key, value) = (word[..at].to_string(), word[at + 1..].to_string());
                Ok(if word[at..].starts_with('=') {
                    Want::Is(key, value)
                } else {
                    Want::Has(key, value)
                })
            }
            _ => Err(format!("expected key=value or key~text, got {word:?}")),
        })
        .collect()
}

/// A value as a word: bare when it is one, else quoted (as Rust writes a string literal).
fn quoted(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@/(),+".contains(c));
    if bare {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

/// Splits a line into words at white space; `"..."` quotes white space (with `\"` and `\\`).
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => word.push(chars.next().ok_or("a quote ends in \\")?),
                        Some(c) => word.push(c),
                        None => return Err("a quote is not closed".to_string()),
                    }
                }
            }
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// A camel-case name in kebab-case: `StandbyFailed` is `standby-failed`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (index, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if index > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A time or a duration in milliseconds, as humantime writes it without spaces: `1m30s`.
fn duration(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(ms))
        .to_string()
        .replace(' ', "")
}

fn time(at: Timestamp) -> String {
    duration(at.0)
}

fn member(member: MemberId) -> String {
    member.0.to_string()
}

fn optional<T>(value: Option<T>, render: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| "none".to_string(), render)
}

fn cluster_state(state: ClusterState) -> String {
    match state {
        ClusterState::Initializing => "initializing".to_string(),
        ClusterState::Normal => "normal".to_string(),
        ClusterState::ActiveDown => "active-down".to_string(),
        ClusterState::StandbyDown => "standby-down".to_string(),
        ClusterState::StandbyPartiallyStarting => "standby-partially-starting".to_string(),
        ClusterState::StandbyPartiallyDown => "standby-partially-down".to_string(),
        ClusterState::BothDown => "both-down".to_string(),
        ClusterState::WaitingForActive(to) => format!("waiting-for-active({})", to.0),
        ClusterState::Switchover(to) => format!("switchover({})", to.0),
        ClusterState::ManualInterventionRequired => "manual-intervention-required".to_string(),
        ClusterState::Reexamine => "reexamine".to_string(),
        ClusterState::Stopping => "stopping".to_string(),
        ClusterState::Stopped => "stopped".to_string(),
        ClusterState::Starting => "starting".to_string(),
        ClusterState::Failed => "failed".to_string(),
    }
}

/// A reason by its name in the transition table (`Reason::name`), in kebab-case.
fn reason(reason: Reason) -> String {
    kebab(reason.name())
}

fn health(health: Health) -> &'static str {
    match health {
        Health::Healthy => "healthy",
        Health::CatchingUp => "catching-up",
        Health::Starting => "starting",
        Health::Degraded => "degraded",
        Health::Unknown => "unknown",
        Health::Down => "down",
        Health::Gone => "gone",
        Health::Lost => "lost",
    }
}

fn role(role: Role) -> &'static str {
    match role {
        Role::Active => "active",
        Role::Standby => "standby",
        Role::None => "none",
    }
}

fn fence(fence: FenceEvidence) -> &'static str {
    match fence {
        FenceEvidence::NoPreviousActive => "no-previous-active",
        FenceEvidence::PodGone => "pod-gone",
        FenceEvidence::AgentConfirmed => "agent-confirmed",
        FenceEvidence::LeaseExpired => "lease-expired",
    }
}

fn node_status(status: NodeStatus) -> &'static str {
    match status {
        NodeStatus::Ready => "ready",
        NodeStatus::NotReady => "not-ready",
        NodeStatus::Deleted => "deleted",
    }
}

fn outcome(outcome: Outcome) -> String {
    let error = match outcome {
        Outcome::Ok => return "ok".to_string(),
        Outcome::Failed(EffectError::Conflict) => "conflict",
        Outcome::Failed(EffectError::NotFound) => "not-found",
        Outcome::Failed(EffectError::Timeout) => "timeout",
        Outcome::Failed(EffectError::ServerError) => "server-error",
        Outcome::Failed(EffectError::Rejected) => "rejected",
        Outcome::Failed(EffectError::Withdrawn) => "withdrawn",
    };
    format!("failed({error})")
}

fn effect_key(key: EffectKey) -> String {
    let (name, of) = match key {
        EffectKey::DeletePod(of) => ("delete-pod", of),
        EffectKey::Promote(of) => ("promote", of),
        EffectKey::Demote(of) => ("demote", of),
        EffectKey::Fence(of) => ("fence", of),
        EffectKey::Rebuild(of) => ("rebuild", of),
        EffectKey::RestartReplication(of) => ("restart-replication", of),
        EffectKey::Volume(of) => ("volume", of),
        EffectKey::Release(of) => ("release", of),
        EffectKey::Replicas => return "replicas".to_string(),
        EffectKey::Bind(of) => ("bind", of),
        EffectKey::ForceDeletePod(of) => ("force-delete-pod", of),
        EffectKey::Label(of, label) => return format!("label({},{})", of.0, role(label)),
        EffectKey::Rewind(of) => ("rewind", of),
        EffectKey::RelaxSync(of) => ("relax-sync", of),
        EffectKey::RestoreSync(of) => ("restore-sync", of),
    };
    format!("{name}({})", of.0)
}

/// An agent's report, its fields named as a `report` line writes them where it can.
fn with_report(rendered: Rendered, report: &AgentReport) -> Rendered {
    let AgentReport {
        process,
        role: reported_role,
        lsn,
        replication_connected,
        in_sync,
        copy_complete,
        config_hash,
        copy,
        not_serving,
        timeline,
    } = *report;
    let process = match process {
        Process::Starting => "starting",
        Process::Running => "running",
        Process::Down => "down",
        Process::InitFailed => "init-failed",
    };
    let copy = match copy {
        CopyProgress::Idle => "idle".to_string(),
        CopyProgress::Copying { percent } => format!("copying({percent})"),
        CopyProgress::Failed => "failed".to_string(),
    };
    let why = optional(not_serving, |why| {
        match why {
            NotServing::Starting => "starting",
            NotServing::Restarted => "restarted",
            NotServing::Demoted => "demoted",
            NotServing::Fenced => "fenced",
            NotServing::LeaseExpired => "lease-expired",
        }
        .to_string()
    });
    let rendered = rendered
        .with("role", role(reported_role))
        .with("process", process)
        .with("lsn", lsn.0)
        .with("connected", replication_connected)
        .with("sync", in_sync)
        .with("copy-complete", copy_complete)
        .with("copy", copy)
        .with("why", why)
        .with("hash", config_hash.0);
    // Written only when known, as a `report` line's `timeline=` argument writes it.
    if timeline.id == 0 {
        return rendered;
    }
    rendered.with(
        "timeline",
        format!(
            "{}/{}@{}",
            timeline.id, timeline.parent, timeline.branched_at.0
        ),
    )
}

/// A spec: its topology, then what differs from the topology's defaults, by the names `set`
/// and `spec` lines write (the CRD's).
fn with_spec(mut rendered: Rendered, spec: &Spec) -> Rendered {
    // The fields bound to `_` are rendered through the engine's table of settable fields.
    let Spec {
        topology,
        polling_interval_s: _,
        unreachable_timeout_s: _,
        agent_lease_s: _,
        node_lost_timeout_s: _,
        replication: _,
        max_lag_on_failover_bytes: _,
        lag_threshold_bytes: _,
        lag_timeout_s: _,
        init_timeout_s: _,
        standby_start_timeout_s: _,
        switchover_timeout_s: _,
        max_rebuild_attempts: _,
        max_restart_attempts: _,
        wait_for_active_timeout_s: _,
        auto_failover: _,
        stopped,
        reexamine,
        switchover,
        config_hash,
    } = spec;
    let defaults = Spec::defaults(*topology);
    rendered = rendered.with("topology", topology.name());
    for field in tandem_engine::config::SPEC_FIELDS {
        let value = field.get(spec);
        if value != field.get(&defaults) {
            rendered = rendered.with(field.name, optional(value, |value| value.to_string()));
        }
    }
    if *stopped {
        rendered = rendered.with("stopped", stopped);
    }
    if !reexamine.is_empty() {
        rendered = rendered.with("reexamine", reexamine);
    }
    if let Some(SwitchoverRequest { token, to }) = switchover {
        let to = to.map_or(String::new(), |to| format!(":{}", to.0));
        rendered = rendered.with("switchover", format!("{token}{to}"));
    }
    if config_hash.0 != 0 {
        rendered = rendered.with("configHash", config_hash.0);
    }
    rendered
}

/// An event, in the stable rendering. Every variant is named here: a new one does not compile
/// until it has a rendering.
fn render_event(event: &Event) -> Rendered {
    match event {
        Event::Created { spec, at } => {
            with_spec(Rendered::new("created").with("at", time(*at)), spec)
        }
        Event::SpecChanged { spec } => with_spec(Rendered::new("spec-changed"), spec),
        Event::SpecRejected { field, message } => Rendered::new("spec-rejected")
            .with("field", field)
            .with("message", message),
        Event::Contact {
            member: of,
            at,
            report,
            lag_bytes,
        } => with_report(
            Rendered::new("contact")
                .with("member", member(*of))
                .with("at", time(*at))
                .with("lag", lag_bytes),
            report,
        ),
        Event::Unreachable { member: of, at } => Rendered::new("unreachable")
            .with("member", member(*of))
            .with("at", time(*at)),
        Event::PodObserved { member: of, pod } => {
            let rendered = Rendered::new("pod-observed").with("member", member(*of));
            match pod {
                None => rendered.with("pod", "none"),
                Some(PodObservation {
                    uid,
                    node,
                    running,
                    deleting,
                }) => rendered
                    .with("uid", &uid.0)
                    .with("node", optional(node.as_ref(), |node| node.0.clone()))
                    .with("running", running)
                    .with("deleting", deleting),
            }
        }
        Event::VolumeObserved { member: of, volume } => {
            let VolumeObservation { pvc, pv, lost } = volume;
            Rendered::new("volume-observed")
                .with("member", member(*of))
                .with("pvc", optional(pvc.as_ref(), |pvc| pvc.0.clone()))
                .with(
                    "pv",
                    optional(pv.as_ref(), |(name, node)| format!("{}@{}", name.0, node.0)),
                )
                .with("lost", lost)
        }
        Event::NodeObserved { node, status, at } => Rendered::new("node-observed")
            .with("node", &node.0)
            .with("status", node_status(*status))
            .with("at", time(*at)),
        Event::Transition {
            from,
            to,
            reason: why,
            detail,
            at,
        } => Rendered::new("transition")
            .with("from", cluster_state(*from))
            .with("to", cluster_state(*to))
            .with("reason", reason(*why))
            .with("at", time(*at))
            .with("detail", detail),
        Event::Promoting {
            member: of,
            fence: evidence,
            accepted_lag_bytes,
        } => Rendered::new("promoting")
            .with("member", member(*of))
            .with("fence", fence(*evidence))
            .with(
                "accepted-lag",
                optional(*accepted_lag_bytes, |bytes| bytes.to_string()),
            ),
        Event::Issued { id, key, at } => Rendered::new("issued")
            .with("id", id.0)
            .with("key", effect_key(*key))
            .with("at", time(*at)),
        Event::Finished { id, outcome: how } => Rendered::new("finished")
            .with("id", id.0)
            .with("outcome", outcome(*how)),
        Event::AttemptCounted { attempts } => {
            Rendered::new("attempt-counted").with("attempts", attempts)
        }
        Event::PodCondemned { member: of, uid } => Rendered::new("pod-condemned")
            .with("member", member(*of))
            .with("uid", &uid.0),
        Event::ReexamineSeen { token, acted } => Rendered::new("reexamine-seen")
            .with("token", token)
            .with("acted", acted),
        Event::SwitchoverSeen { token, acted } => Rendered::new("switchover-seen")
            .with("token", token)
            .with("acted", acted),
        Event::LagAccepted { bytes } => {
            Rendered::new("lag-accepted").with("bytes", optional(*bytes, |bytes| bytes.to_string()))
        }
        Event::VolumeAssigned {
            member: of,
            node,
            generation,
        } => Rendered::new("volume-assigned")
            .with("member", member(*of))
            .with("node", &node.0)
            .with("generation", generation),
        Event::VolumeReleased {
            member: of,
            generation,
        } => Rendered::new("volume-released")
            .with("member", member(*of))
            .with("generation", generation),
        Event::ActiveAdopted { member: of } => {
            Rendered::new("active-adopted").with("member", member(*of))
        }
        Event::Recovered { log_lost, at } => Rendered::new("recovered")
            .with("log-lost", log_lost)
            .with("at", time(*at)),
        Event::InputRefused { input, reason: why } => Rendered::new("input-refused")
            .with("input", input)
            .with("reason", why),
        Event::LeaseShortened { until } => {
            Rendered::new("lease-shortened").with("until", time(*until))
        }
        Event::SyncRelaxed { at } => Rendered::new("sync-relaxed").with("at", time(*at)),
        Event::SyncRestoreConfirmed { at } => {
            Rendered::new("sync-restore-confirmed").with("at", time(*at))
        }
        Event::SyncRestored { at } => Rendered::new("sync-restored").with("at", time(*at)),
    }
}

/// An effect's action, in the stable rendering; its kind is the action's name
/// ([`Action::name`]), as `expect effect` and `finished` lines write it.
fn render_action(action: &Action) -> Rendered {
    let rendered = Rendered::new(action.name());
    match action {
        Action::DeletePod {
            member: of,
            uid,
            grace_period_s,
        } => rendered
            .with("member", member(*of))
            .with("uid", &uid.0)
            .with("grace", grace_period_s),
        Action::Promote { member: of }
        | Action::RelaxSync { member: of }
        | Action::RestoreSync { member: of }
        | Action::Demote { member: of }
        | Action::Fence { member: of } => rendered.with("member", member(*of)),
        Action::Rebuild { member: of, from }
        | Action::Rewind { member: of, from }
        | Action::RestartReplication { member: of, from } => rendered
            .with("member", member(*of))
            .with("from", member(*from)),
        Action::ProvisionLocalPv {
            member: of,
            node,
            generation,
        } => rendered
            .with("member", member(*of))
            .with("node", &node.0)
            .with("generation", generation),
        Action::BindPvc {
            member: of,
            generation,
        } => rendered
            .with("member", member(*of))
            .with("generation", generation),
        Action::ReleaseVolume {
            member: of,
            pvc,
            generation,
        } => rendered
            .with("member", member(*of))
            .with("pvc", optional(pvc.as_ref(), |pvc| pvc.0.clone()))
            .with("generation", generation),
        Action::SetReplicas { replicas } => rendered.with("replicas", replicas),
        Action::UpdateStatus(status) => {
            let Status {
                state,
                previous_state,
                since,
                reason: why,
                active,
                members,
                seq,
            } = status.as_ref();
            let mut rendered = rendered
                .with("state", cluster_state(*state))
                .with("previous", optional(*previous_state, cluster_state))
                .with("since", time(*since))
                .with("active", optional(*active, member))
                .with("seq", seq.0);
            for MemberStatus {
                member: of,
                role: reported_role,
                health: derived,
                node,
                lsn,
                config_hash,
            } in members
            {
                let prefix = format!("m{}.", of.0);
                rendered = rendered
                    .with(format!("{prefix}role"), role(*reported_role))
                    .with(format!("{prefix}health"), health(*derived))
                    .with(
                        format!("{prefix}node"),
                        optional(node.as_ref(), |node| node.0.clone()),
                    )
                    .with(format!("{prefix}lsn"), lsn.0)
                    .with(format!("{prefix}hash"), config_hash.0);
            }
            rendered.with("reason", why)
        }
        Action::EmitEvent {
            warning,
            reason: why,
            message,
        } => rendered
            .with("warning", warning)
            .with("reason", why)
            .with("message", message),
        Action::LabelPod {
            member: of,
            uid,
            role: label,
        } => rendered
            .with("member", member(*of))
            .with("uid", &uid.0)
            .with("role", role(*label)),
    }
}

#[test]
fn transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the transcripts directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "expected at least 30 transcripts, found {}",
        files.len()
    );
    let mut failures = String::new();
    for file in &files {
        if let Err(error) = run_file(file).and_then(|trace| check_trace(file, &trace)) {
            writeln!(failures, "{error}").expect("writing to a String");
        }
    }
    // A snapshot whose transcript is gone would never be checked again.
    for entry in std::fs::read_dir(&dir).expect("the transcripts directory") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|ext| ext == "trace")
            && !path.with_extension("txt").exists()
        {
            writeln!(failures, "{}: no transcript of that name", path.display())
                .expect("writing to a String");
        }
    }
    assert!(failures.is_empty(), "failing transcripts:\n{failures}");
}

#[test]
fn a_wrong_expectation_fails() {
    let dir = std::env::temp_dir().join(format!("tandem-transcript-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("wrong.txt");
    std::fs::write(&path, "bootstrap\nexpect state ActiveDown\n").expect("writing a transcript");
    let error = run_file(&path).expect_err("a wrong expectation must fail");
    assert!(
        error.contains("state is Normal, expected ActiveDown"),
        "{error}"
    );
    std::fs::write(
        &path,
        "bootstrap\nat +1s\nreport 0 active\nexpect effect promote 1\n",
    )
    .expect("writing a transcript");
    assert!(run_file(&path).is_err());
    std::fs::write(
        &path,
        "bootstrap\nat +20s\nreport 0 down\nexpect event promoting member=1 fence=pod-gone\n",
    )
    .expect("writing a transcript");
    let error = run_file(&path).expect_err("a wrong event must fail");
    assert!(
        error.contains("promoting member=1 fence=agent-confirmed accepted-lag=none"),
        "the message shows the window's events: {error}"
    );
}

#[test]
fn the_rendering_is_stable() {
    let promoting = Event::Promoting {
        member: MemberId(1),
        fence: FenceEvidence::AgentConfirmed,
        accepted_lag_bytes: None,
    };
    assert_eq!(
        render_event(&promoting).to_string(),
        "promoting member=1 fence=agent-confirmed accepted-lag=none"
    );
    let transition = Event::Transition {
        from: ClusterState::Normal,
        to: ClusterState::WaitingForActive(MemberId(0)),
        reason: Reason::NewestChosen,
        detail: "member-0 holds the newest data".to_string(),
        at: Timestamp(90_500),
    };
    assert_eq!(
        render_event(&transition).to_string(),
        "transition from=normal to=waiting-for-active(0) reason=newest-chosen at=1m30s500ms \
         detail=\"member-0 holds the newest data\""
    );
    let delete = Action::DeletePod {
        member: MemberId(0),
        uid: PodUid("p0".to_string()),
        grace_period_s: 30,
    };
    assert_eq!(
        render_action(&delete).to_string(),
        "delete-pod member=0 uid=p0 grace=30"
    );
    // A rendered line splits back into its words, quotes and all.
    let words = split_words(&render_event(&transition).to_string()).expect("words");
    assert_eq!(
        words.last().map(String::as_str),
        Some("detail=member-0 holds the newest data")
    );
    let wants = parse_wants(&["reason=newest-chosen", "detail~newest data"]).expect("wants");
    assert!(render_event(&transition).matches(&wants));
    let wants = parse_wants(&["reason=newest"]).expect("wants");
    assert!(!render_event(&transition).matches(&wants));
}

#[test]
fn a_wrong_trace_fails() {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        return; // blessing rewrites a wrong trace rather than failing
    }
    let dir = std::env::temp_dir().join(format!("tandem-transcript-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("traced.txt");
    std::fs::write(&path, "bootstrap\nat +20s\nreport 0 down\n").expect("writing a transcript");
    let trace = run_file(&path).expect("the transcript runs");
    assert!(
        trace.contains("\n  event promoting member=1 fence=agent-confirmed accepted-lag=none\n"),
        "{trace}"
    );
    std::fs::write(
        path.with_extension("trace"),
        trace.replace("agent-confirmed", "pod-gone"),
    )
    .expect("writing a snapshot");
    let error = check_trace(&path, &trace).expect_err("a wrong trace must fail");
    assert!(error.contains("the trace differs"), "{error}");
    std::fs::write(path.with_extension("trace"), &trace).expect("writing a snapshot");
    check_trace(&path, &trace).expect("the right trace passes");
}

#[test]
fn durations_are_written_as_humantime_writes_them() {
    assert_eq!(parse_duration("15s"), Ok(15_000));
    assert_eq!(parse_duration("1m30s"), Ok(90_000));
    assert_eq!(parse_duration("500ms"), Ok(500));
    assert_eq!(parse_duration("1h"), Ok(3_600_000));
    assert_eq!(parse_duration("0s"), Ok(0));
    // The trace writes times the same way, and they read back.
    for ms in [0, 500, 15_000, 90_500, 3_600_000] {
        assert_eq!(parse_duration(&duration(ms)), Ok(ms), "{}", duration(ms));
    }
    let error = parse_duration("1500us").expect_err("sub-millisecond");
    assert!(error.contains("whole number of milliseconds"), "{error}");
    assert!(parse_duration("1.0005s").is_err());
    assert!(parse_duration("15").is_err());
    assert!(parse_duration("fifteen seconds").is_err());
}
