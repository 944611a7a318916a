//! The one driver of a cluster's engine. The operator and the simulator both run this code; only
//! the IO around it differs (a real API server and real agents, or the simulated world).
//!
//! The driver owes the engine, and does for it:
//! - **persist, then act**: every step's record is appended to the cluster's stream in the event
//!   log before any of its effects is handed out ([`Driver::observe`]);
//! - **the invariant checker** runs on every step, in production as in tests;
//! - **poll tickets**: an agent's answer to a poll asked before the engine replaced or wiped the
//!   member's data, or before a rebuild of it landed, is dropped ([`Driver::ask`],
//!   [`Driver::answer`]);
//! - **still wanted**: right before a destructive effect is carried out, the engine is asked
//!   whether its premise still holds ([`Driver::before_carrying_out`]); a leadership check runs
//!   there too ([`Driver::set_leadership`]);
//! - **outcomes** go back to the engine by effect id; the engine decides about retries, and the
//!   driver adds no retry policy of its own ([`Driver::finished`]);
//! - **deadlines**: the engine's next deadline, to wake it with a `Timer` input
//!   ([`Driver::next_wake`]);
//! - **recovery**: after a restart, `Recovered`, then what the watches list, then the spec
//!   ([`Driver::relist`]).
//!
//! The driver is synchronous and does no IO other than the log's appends.

use std::ops::Deref;
use tandem_engine::checker::{Before, Checker, Violation};
use tandem_engine::{
    Action, Effect, EffectError, Engine, EngineError, Input, MemberId, NodeName, NodeStatus,
    Outcome, PodObservation, Poll, PollTicket, Record, Seq, Spec, Timestamp, VolumeObservation,
};
use tandem_sled::{EventLog, LogError};

/// Why a step could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The engine refused the input (time went backwards) or is poisoned.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The log could not persist or recover the stream.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// What one step produced.
#[derive(Debug, Default)]
pub struct Observed {
    /// The persisted record, when the step recorded anything.
    pub record: Option<Record>,
    /// The effects to carry out, now that the record is durable.
    pub effects: Vec<Effect>,
    /// An invariant the step broke, as the checker saw it.
    pub violation: Option<Violation>,
}

/// What the watches list after a restart, given to the engine before the spec.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// Every node.
    pub nodes: Vec<(NodeName, NodeStatus)>,
    /// Each member's volume and pod.
    pub members: Vec<MemberListing>,
}

/// One member as the watches list it.
#[derive(Clone, Debug)]
pub struct MemberListing {
    /// The member.
    pub member: MemberId,
    /// Its PVC and PV.
    pub volume: VolumeObservation,
    /// Its pod, `None` when it does not exist.
    pub pod: Option<PodObservation>,
}

/// One cluster's driver: its engine and its stream in the event log. `L` is how the driver holds
/// the log: a borrow (`&EventLog`) in the simulator, an `Arc<EventLog>` in the operator, whose
/// cluster tasks outlive any borrow.
pub struct Driver<L: Deref<Target = EventLog>> {
    log: L,
    stream: String,
    tail: Seq,
    engine: Engine,
    checker: Checker,
    /// Per member, the rebuilds being carried out now (let through, outcome not back yet).
    rebuilding: [u32; 2],
    /// Per member, how many rebuilds were carried out by this driver.
    rebuilt: [u64; 2],
    /// Whether this process may act on the cluster now, asked before every effect.
    leadership: Option<Leadership>,
}

/// A check that this process still leads: an operator that lost its lease must not act.
pub type Leadership = Box<dyn Fn() -> bool + Send + Sync>;

/// A poll asked of a member's agent: checked when its answer comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AskTicket {
    ticket: PollTicket,
    rebuilt: u64,
}

impl AskTicket {
    /// The member asked.
    pub fn member(&self) -> MemberId {
        self.ticket.member()
    }
}

impl<L: Deref<Target = EventLog>> Driver<L> {
    /// A driver resuming the cluster's stream from the log (a stream that does not exist yet is a
    /// new cluster).
    pub fn recover(log: L, stream: &str) -> Result<Driver<L>, DriverError> {
        let engine = log.recover(stream)?.engine;
        let tail = engine.state().seq();
        Ok(Driver::with_engine(log, stream, tail, engine))
    }

    /// A driver with a fresh engine on `stream`: a new cluster, or one whose log was lost (then on
    /// a stream of its own, since the engine's records start again from 1).
    pub fn fresh(log: L, stream: &str) -> Result<Driver<L>, DriverError> {
        let tail = log.tail_seq(stream)?;
        Ok(Driver::with_engine(log, stream, tail, Engine::new()))
    }

    fn with_engine(log: L, stream: &str, tail: Seq, engine: Engine) -> Driver<L> {
        let checker = Checker::from_state(engine.state().clone());
        Driver {
            log,
            stream: stream.to_string(),
            tail,
            engine,
            checker,
            rebuilding: [0; 2],
            rebuilt: [0; 2],
            leadership: None,
        }
    }

    /// Installs the leadership check, asked right before each effect other than a report is
    /// carried out: while it says no, effects are withdrawn (`EffectError::Withdrawn`) and the
    /// engine issues them again later. Without one, this process always leads.
    pub fn set_leadership(&mut self, leadership: Leadership) {
        self.leadership = Some(leadership);
    }

    /// The engine, to read its state.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The stream the driver appends to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Gives one input observed at `now` to the engine, persists the step, checks it, and hands
    /// out its effects.
    pub fn observe(&mut self, now: Timestamp, input: Input) -> Result<Observed, DriverError> {
        let before = Before::of(self.engine.state());
        let step = self.engine.step(now, input)?;
        let (log, stream, tail) = (&*self.log, self.stream.as_str(), &mut self.tail);
        let record = step.commit_record(|record: &Record| {
            *tail = log.append(stream, *tail, std::slice::from_ref(record))?;
            Ok::<(), LogError>(())
        })?;
        let effects = record
            .as_ref()
            .map_or_else(Vec::new, |record| record.effects.clone());
        let violation = self
            .checker
            .check(&before, record.as_ref(), self.engine.state(), now)
            .err();
        Ok(Observed {
            record,
            effects,
            violation,
        })
    }

    /// The first steps after a restart, in the order the engine's contract asks: `Recovered`,
    /// then every node, volume and pod the watches list, then the spec. Returns each input with
    /// what its step produced, in order.
    pub fn relist(
        &mut self,
        now: Timestamp,
        log_lost: bool,
        listing: Listing,
        spec: Spec,
    ) -> Result<Vec<(Input, Observed)>, DriverError> {
        let mut inputs = vec![Input::Recovered { log_lost }];
        inputs.extend(
            listing
                .nodes
                .into_iter()
                .map(|(node, status)| Input::Node { node, status }),
        );
        for MemberListing {
            member,
            volume,
            pod,
        } in listing.members
        {
            inputs.push(Input::Volume { member, volume });
            inputs.push(Input::Pod { member, pod });
        }
        inputs.push(Input::Spec(spec));
        inputs
            .into_iter()
            .map(|input| Ok((input.clone(), self.observe(now, input)?)))
            .collect()
    }

    /// A ticket for a poll of `member`'s agent asked now.
    pub fn ask(&self, member: MemberId) -> AskTicket {
        AskTicket {
            ticket: self.engine.poll_ticket(member),
            rebuilt: self.rebuilt.get(member.index()).copied().unwrap_or(0),
        }
    }

    /// An agent's answer, given to the engine unless it may describe data that is gone (then
    /// `None`: it is dropped, like a missed poll): the engine replaced or wiped the member's data
    /// since the poll was asked, a rebuild of the member is being carried out, or one was carried
    /// out since (a poll asked after the rebuild was issued but answered before it landed).
    pub fn answer(
        &mut self,
        now: Timestamp,
        ticket: AskTicket,
        poll: Poll,
    ) -> Result<Option<Observed>, DriverError> {
        let member = ticket.member();
        let index = member.index();
        let rebuilding = self.rebuilding.get(index).is_some_and(|count| *count > 0);
        let rebuilt_since = self.rebuilt.get(index).copied().unwrap_or(0) != ticket.rebuilt;
        if !self.engine.answer_is_current(&ticket.ticket) || rebuilding || rebuilt_since {
            return Ok(None);
        }
        self.observe(now, Input::Agent { member, poll }).map(Some)
    }

    /// Asked right before an effect is carried out: `Some(outcome)` when it must not be (a
    /// destructive effect, or the active label, whose premise no longer holds is withdrawn),
    /// `None` to go ahead. The
    /// caller reports the outcome of every effect let through ([`Driver::finished`]).
    pub fn before_carrying_out(&mut self, effect: &Effect) -> Option<Outcome> {
        let leads = self.leadership.as_ref().is_none_or(|leads| leads());
        if !effect.action.is_report() && !leads {
            return Some(Outcome::Failed(EffectError::Withdrawn));
        }
        if effect.action.checks_premise() && !self.engine.still_wanted(effect) {
            return Some(Outcome::Failed(EffectError::Withdrawn));
        }
        if let Action::Rebuild { member, .. } = effect.action
            && let Some(count) = self.rebuilding.get_mut(member.index())
        {
            *count += 1;
        }
        None
    }

    /// An effect's outcome, given back to the engine (reports, which the engine does not track,
    /// give nothing back).
    pub fn finished(
        &mut self,
        now: Timestamp,
        effect: &Effect,
        outcome: Outcome,
    ) -> Result<Option<Observed>, DriverError> {
        if let Action::Rebuild { member, .. } = effect.action
            && outcome != Outcome::Failed(EffectError::Withdrawn)
            && let (Some(count), Some(done)) = (
                self.rebuilding.get_mut(member.index()),
                self.rebuilt.get_mut(member.index()),
            )
        {
            *count = count.saturating_sub(1);
            *done += 1;
        }
        if effect.id == tandem_engine::REPORT_EFFECT_ID {
            return Ok(None);
        }
        let input = Input::EffectFinished {
            id: effect.id,
            outcome,
        };
        self.observe(now, input).map(Some)
    }

    /// How long after asking `member`'s agent to ask it again, once the answer was handled: the
    /// polling interval, shorter while the member is not reachable
    /// ([`tandem_engine::EngineState::poll_interval_ms`]).
    pub fn poll_interval_ms(&self, member: MemberId) -> u64 {
        self.engine.state().poll_interval_ms(member)
    }

    /// When the engine wants a `Timer` input next, if ever.
    pub fn next_wake(&self) -> Option<Timestamp> {
        self.engine.next_deadline()
    }
}
