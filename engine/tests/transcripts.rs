//! Transcript tests: small data-driven text files of inputs with the expected events, effects
//! and state (`engine/tests/transcripts/*.txt`). Every step is also checked against the
//! invariants. The language is described in `engine/tests/transcripts/README.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tandem_engine::testing::Harness;
use tandem_engine::{
    Action, AgentReport, ClusterState, ConfigHash, CopyProgress, Effect, EffectError, Event, Input,
    Lsn, MemberId, NodeName, NodeStatus, NotServing, Outcome, PodObservation, PodUid, Poll,
    PollTicket, Process, PvName, PvcUid, Record, Role, Spec, SwitchoverRequest, Timestamp,
    Topology, VolumeObservation,
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
            self.window
                .push(Record::decode(bytes).map_err(|e| e.to_string())?);
        }
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

    fn member(word: &str) -> Result<MemberId, String> {
        word.parse::<u8>()
            .map(MemberId)
            .map_err(|_| format!("not a member ordinal: {word:?}"))
    }

    fn run_line(&mut self, line: &str) -> Outcome_ {
        let words: Vec<&str> = line.split_whitespace().collect();
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
                let command = args[2..].join(" ");
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
                let detail = rest.get(2).copied();
                let found = self.window_effects.iter().any(|effect| {
                    effect.action.name() == *name
                        && (member.is_none() || effect.action.member() == member)
                        && detail.is_none_or(|detail| effect_detail_matches(&effect.action, detail))
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
            "event" => {
                let name = rest.first().ok_or("which event?")?;
                let found = self.window.iter().flat_map(|r| &r.events).any(|event| {
                    let debug = format!("{event:?}");
                    debug.starts_with(name) && rest[1..].iter().all(|part| debug.contains(part))
                });
                found
                    .then_some(())
                    .ok_or(format!("no event {rest:?} in this window"))
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
                } => Some(format!("{from} -> {to} {reason:?}")),
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

fn effect_detail_matches(action: &Action, detail: &str) -> bool {
    match action {
        Action::DeletePod {
            grace_period_s,
            uid,
            ..
        } => detail == format!("grace={grace_period_s}") || detail == format!("uid={}", uid.0),
        Action::ProvisionLocalPv { node, .. } => detail == node.0,
        Action::SetReplicas { replicas } => detail == replicas.to_string(),
        Action::Rebuild { from, .. } | Action::RestartReplication { from, .. } => {
            detail == format!("from={}", from.0)
        }
        Action::LabelPod { uid, role, .. } => {
            detail == format!("uid={}", uid.0) || detail == format!("{role:?}").to_lowercase()
        }
        _ => format!("{action:?}").contains(detail),
    }
}

fn parse_duration(text: &str) -> Result<u64, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map(|index| text.split_at(index))
        .ok_or(format!("duration without unit: {text:?}"))?;
    let value: u64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("unknown unit in {text:?}")),
    };
    Ok(value * factor)
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

fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut runner = Runner::new(path);
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        runner.run_line(line).map_err(|error| {
            format!(
                "{}:{}: `{line}`: {error}",
                runner.file.display(),
                number + 1
            )
        })?;
    }
    Ok(())
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
        if let Err(error) = run_file(file) {
            writeln!(failures, "{error}").expect("writing to a String");
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
}
