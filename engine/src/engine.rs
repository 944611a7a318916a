//! The engine's driving API: an input goes in with the current time, a [`Step`] comes out, and
//! its effects are released only once its record is persisted.

use crate::effect::Effect;
use crate::event::Event;
use crate::input::Input;
use crate::machine::{self, Ctx};
use crate::record::{FoldError, Record};
use crate::state::EngineState;
use crate::types::{MemberId, Seq, Timestamp};

/// Errors of the driving API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// A previous step's record was not persisted (its persistence failed, or the step was
    /// dropped without being committed): the engine's state is ahead of the log. Rebuild the
    /// engine from the log.
    #[error(
        "the engine is poisoned: a step was not persisted (at seq {seq}); recover from the log"
    )]
    Poisoned {
        /// The sequence number of the record that was not persisted.
        seq: Seq,
    },
    /// An input carries a string longer than any Kubernetes object can hold
    /// ([`crate::limits::MAX_INPUT_STRING_BYTES`]): it is not recorded.
    #[error(
        "{input} input refused unrecorded: {what} of {bytes} bytes, more than {}",
        crate::limits::MAX_INPUT_STRING_BYTES
    )]
    InputTooLarge {
        /// The kind of input ([`Input::kind`]).
        input: &'static str,
        /// Which string.
        what: &'static str,
        /// Its length.
        bytes: usize,
    },
    /// An input's time is earlier than a previous input's.
    #[error("time went backwards: input at {now} after an input at {last}")]
    TimeWentBackwards {
        /// The time of this input.
        now: Timestamp,
        /// The latest time seen.
        last: Timestamp,
    },
}

/// One cluster's engine.
///
/// ```
/// use tandem_engine::{Engine, Input, Spec, Timestamp, Topology};
///
/// let mut engine = Engine::new();
/// let mut log = Vec::new();
/// let step = engine.step(Timestamp(0), Input::Spec(Spec::defaults(Topology::Standalone)))?;
/// let effects = step.commit(|record| {
///     log.push(record.encode()); // must be durable before the effects are carried out
///     Ok::<(), std::io::Error>(())
/// })?;
/// assert_eq!(log.len(), 1);
/// # let _ = effects;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Engine {
    state: EngineState,
    poisoned: Option<Seq>,
    last_now: Timestamp,
    /// Per member, how many times this engine (since it was made) replaced or wiped the
    /// member's data: what a [`PollTicket`] is checked against. Not state: an answer to a poll
    /// asked of an earlier engine is never delivered to this one.
    data_epochs: [u64; 2],
}

/// Taken when a driver asks a member's agent for a report, and checked when the answer comes
/// ([`Engine::answer_is_current`]): an answer to a poll asked before the engine replaced or
/// wiped the member's data describes data that is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollTicket {
    member: MemberId,
    epoch: u64,
}

impl PollTicket {
    /// The member polled.
    pub fn member(&self) -> MemberId {
        self.member
    }
}

impl Engine {
    /// An engine for a cluster that does not exist yet: its first spec creates it.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// An engine resuming from a state (a snapshot, or a fold of the log).
    pub fn from_state(state: EngineState) -> Engine {
        let last_now = state.since();
        Engine {
            state,
            poisoned: None,
            last_now,
            data_epochs: [0; 2],
        }
    }

    /// Folds records (in order, from the first or from after a snapshot's state) into an engine.
    pub fn recover<'a>(
        state: EngineState,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<Engine, FoldError> {
        let mut state = state;
        let mut last_now = state.since();
        for record in records {
            state.apply_record(record)?;
            last_now = last_now.max(record.at);
        }
        Ok(Engine {
            state,
            poisoned: None,
            last_now,
            data_epochs: [0; 2],
        })
    }

    /// The current state.
    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// The latest time the engine saw.
    pub fn now(&self) -> Timestamp {
        self.last_now
    }

    /// A ticket for a poll of `member`'s agent asked now.
    pub fn poll_ticket(&self, member: MemberId) -> PollTicket {
        PollTicket {
            member,
            epoch: self.data_epochs.get(member.index()).copied().unwrap_or(0),
        }
    }

    /// Whether the answer to the poll of `ticket` may be given to the engine: false when, since
    /// the poll was asked, the engine issued a rebuild of the member or released or assigned its
    /// volume, or observed its volume lost or another PV under it. Such an answer describes data that is gone (its copy complete, its position, its
    /// sync), and the driver drops it; the next poll is asked after the change. Dropping it is
    /// like a missed poll: the member's contact is not renewed.
    pub fn answer_is_current(&self, ticket: &PollTicket) -> bool {
        self.data_epochs
            .get(ticket.member.index())
            .copied()
            .unwrap_or(0)
            == ticket.epoch
    }

    /// Decides on one input observed at `now`. The returned step must be committed (its record
    /// persisted) before its effects may be carried out; see [`Step::commit`].
    pub fn step(&mut self, now: Timestamp, input: Input) -> Result<Step<'_>, EngineError> {
        if let Some(seq) = self.poisoned {
            return Err(EngineError::Poisoned { seq });
        }
        if now < self.last_now {
            return Err(EngineError::TimeWentBackwards {
                now,
                last: self.last_now,
            });
        }
        if let Some((what, bytes)) = oversized_string(&input) {
            return Err(EngineError::InputTooLarge {
                input: input.kind(),
                what,
                bytes,
            });
        }
        self.last_now = now;
        if let Input::Volume { member, volume } = &input
            && member.index() < self.data_epochs.len()
            && self.state.volume_changes_data(*member, volume)
        {
            self.data_epochs[member.index()] += 1;
        }
        let mut ctx = Ctx::new(&mut self.state, now);
        machine::step(&mut ctx, &input);
        let Ctx {
            events, effects, ..
        } = ctx;
        if events.is_empty() {
            assert!(effects.is_empty(), "a step with effects records events");
            return Ok(Step {
                engine: self,
                record: None,
                committed: true,
            });
        }
        for member in events.iter().filter_map(Event::forgets_data_of) {
            self.data_epochs[member.index()] += 1;
        }
        let seq = self.state.seq.next();
        self.state.seq = seq;
        self.poisoned = Some(seq); // until committed
        let record = Record {
            seq,
            at: now,
            input,
            events,
            effects,
        };
        Ok(Step {
            engine: self,
            record: Some(record),
            committed: false,
        })
    }

    /// Whether an effect this engine emitted is still wanted now, on what it has observed since:
    /// a driver asks right before carrying out a destructive effect (a pod deletion, a volume
    /// release, a rebuild; see [`crate::Action::is_destructive`]). When it is not, the driver
    /// does not carry it out and reports [`crate::EffectError::Withdrawn`]. A query: it records
    /// nothing.
    pub fn still_wanted(&self, effect: &Effect) -> bool {
        machine::still_wanted(&self.state, self.last_now, &effect.action)
    }

    /// The next time at which the engine wants a [`Input::Timer`], if any: the earliest pending
    /// deadline (a member becoming `Down`, a timeout, a retry) after the latest input.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let mut next: Option<Timestamp> = None;
        self.state.for_each_timer(|timer| {
            if let Some(at) = self.state.deadline(&timer)
                && at > self.last_now
            {
                next = Some(next.map_or(at, |next| next.min(at)));
            }
        });
        next
    }
}

/// A decided step. Its record must be persisted before its effects are carried out:
/// [`Step::commit`] is the only way to the effects, and it hands them out only after the
/// persistence callback succeeded. A step dropped without a successful commit poisons the
/// engine, whose state is then ahead of the log.
#[must_use = "a step's record must be persisted and its effects carried out"]
#[derive(Debug)]
pub struct Step<'a> {
    engine: &'a mut Engine,
    record: Option<Record>,
    committed: bool,
}

impl Step<'_> {
    /// The record to persist, `None` for a quiet step (nothing to record, nothing to do).
    pub fn record(&self) -> Option<&Record> {
        self.record.as_ref()
    }

    /// Whether the step decided nothing.
    pub fn is_quiet(&self) -> bool {
        self.record.is_none()
    }

    /// Persists the record with `persist` (which must make it durable), then hands out the
    /// effects to carry out. If `persist` fails, the engine is poisoned and the error returned.
    pub fn commit<E>(
        self,
        persist: impl FnOnce(&Record) -> Result<(), E>,
    ) -> Result<Vec<Effect>, E> {
        let record = self.commit_record(persist)?;
        Ok(record.map_or_else(Vec::new, |record| record.effects))
    }

    /// Like [`Step::commit`], but hands out the whole record persisted (`None` for a quiet
    /// step), its effects included.
    pub fn commit_record<E>(
        mut self,
        persist: impl FnOnce(&Record) -> Result<(), E>,
    ) -> Result<Option<Record>, E> {
        let Some(record) = self.record.take() else {
            return Ok(None); // a quiet step emits nothing
        };
        persist(&record)?;
        self.committed = true;
        self.engine.poisoned = None;
        Ok(Some(record))
    }
}

impl Drop for Step<'_> {
    fn drop(&mut self) {
        // Leaves `poisoned` set unless committed: the record never reached the log.
        if self.committed {
            self.engine.poisoned = None;
        }
    }
}

/// The first string of an input longer than [`crate::limits::MAX_INPUT_STRING_BYTES`], named.
fn oversized_string(input: &Input) -> Option<(&'static str, usize)> {
    let too_long = |what: &'static str, string: &str| {
        (string.len() > crate::limits::MAX_INPUT_STRING_BYTES).then_some((what, string.len()))
    };
    match input {
        Input::Spec(spec) => too_long("the reexamine token", &spec.reexamine).or_else(|| {
            let request = spec.switchover.as_ref()?;
            too_long("the switchover token", &request.token)
        }),
        Input::Pod { pod, .. } => {
            let pod = pod.as_ref()?;
            too_long("a pod UID", &pod.uid.0)
                .or_else(|| too_long("a node name", &pod.node.as_ref()?.0))
        }
        Input::Volume { volume, .. } => volume
            .pvc
            .as_ref()
            .and_then(|uid| too_long("a PVC UID", &uid.0))
            .or_else(|| {
                let (name, node) = volume.pv.as_ref()?;
                too_long("a PV name", &name.0).or_else(|| too_long("a node name", &node.0))
            }),
        Input::Node { node, .. } => too_long("a node name", &node.0),
        Input::Agent { .. }
        | Input::Timer
        | Input::EffectFinished { .. }
        | Input::Recovered { .. } => None,
    }
}
