//! Leader election with a `coordination.k8s.io` Lease: only the leader acts.
//!
//! The election is client-go's:
//! - a candidate takes the Lease when it has no holder, or when its record (holder, renew time,
//!   transitions) has not changed for `leaseDurationSeconds` as measured on the candidate's own
//!   clock since the candidate first saw that record (so clock skew between machines does not
//!   matter, only clock rates);
//! - the holder renews it every `retry_period`; every write is a compare-and-swap on the Lease's
//!   `resourceVersion`, so two candidates never both win one round;
//! - the holder counts itself the leader only while its last successful renewal *began* less than
//!   `renew_deadline` ago; the deadline is shorter than the lease, so it stops acting before
//!   another replica can take the Lease.
//!
//! On top of client-go, an **epoch**: every acquisition raises the Lease's `leaseTransitions`,
//! even by the same process identity, and the holder's epoch is the value it wrote. The epoch is
//! recorded in the event log for each cluster before the leader acts on it
//! ([`tandem_sled::EventLog::set_epoch`]), written in each cluster's status as the witness, and
//! confirmed against the Lease itself, by a read, right before every effect
//! ([`Leadership::confirm`]). A Lease created anew starts above a floor the operator gives (the
//! highest epoch it knows of), so that deleting the Lease never makes an epoch go back.
//!
//! The window a Lease cannot close alone, and its bound, are in `docs/operator.md`
//! ("Leadership").

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedRwLockReadGuard, RwLock, watch};
use tokio::time::Instant;

/// How long a lease may be at most: a longer one leaves the clusters without an operator for
/// that long after the leader dies.
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(300);

/// How the election runs.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This process's identity, unique to it (a restarted process is another candidate).
    pub identity: String,
    /// How long the Lease holds after its last renewal (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// How long after its last successful renewal began the leader stops acting.
    pub renew_deadline: Duration,
    /// How often a candidate tries, and the leader renews.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// A 25 s lease, a 10 s renew deadline, a try every 2 s: client-go's deadline and period,
    /// with a lease long enough that an effect confirmed right before the renew deadline, whose
    /// call times out within 10 s, has landed before another replica can take the Lease
    /// (`docs/operator.md`, "Leadership").
    pub fn new(namespace: &str, name: &str, identity: &str) -> LeaseConfig {
        LeaseConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(25),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Why these durations cannot work, if they cannot: the renew deadline must be shorter than
    /// the lease and longer than the retry period, and the lease at most
    /// [`MAX_LEASE_DURATION`], in whole seconds.
    pub fn check(&self) -> Result<(), String> {
        let seconds = |duration: Duration| duration.as_secs_f64();
        if self.lease_duration.subsec_nanos() != 0 || self.lease_duration.is_zero() {
            return Err(format!(
                "the lease duration ({} s) must be a whole number of seconds, at least 1",
                seconds(self.lease_duration)
            ));
        }
        if self.lease_duration > MAX_LEASE_DURATION {
            return Err(format!(
                "the lease duration ({} s) is longer than {} s",
                seconds(self.lease_duration),
                MAX_LEASE_DURATION.as_secs()
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "the renew deadline ({} s) must be shorter than the lease duration ({} s)",
                seconds(self.renew_deadline),
                seconds(self.lease_duration)
            ));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(format!(
                "the retry period ({} s) must be above 0 and shorter than the renew deadline ({} s)",
                seconds(self.retry_period),
                seconds(self.renew_deadline)
            ));
        }
        if self.identity.is_empty() || self.name.is_empty() || self.namespace.is_empty() {
            return Err(
                "the Lease's namespace and name, and the identity, must not be empty".into(),
            );
        }
        Ok(())
    }
}

/// The leadership this process holds: its epoch, and when its last successful renewal began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    epoch: u64,
    renewed: Instant,
}

/// A Lease record as a candidate last saw it, and since when (its own clock).
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    record: (String, Option<MicroTime>, i32),
    since: Instant,
}

/// A handle on this process's part in the election, shared by the operator's tasks.
#[derive(Clone)]
pub struct Leadership {
    inner: Arc<Inner>,
}

struct Inner {
    api: Api<Lease>,
    config: LeaseConfig,
    held: Mutex<Option<Held>>,
    /// The epoch led in, `None` while not leading.
    leading: watch::Sender<Option<u64>>,
    /// The election's task.
    elector: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Read-held by every call confirmed under this leadership until the call ends; written by
    /// [`Leadership::release`], so that the Lease goes to another replica only once no call of
    /// this one is in flight.
    acting: Arc<RwLock<()>>,
}

/// A call confirmed under this process's leadership, in flight until dropped: while one is,
/// [`Leadership::release`] does not give the Lease up.
#[must_use = "the confirmation covers the call only while it is held"]
pub struct Acting {
    _in_flight: OwnedRwLockReadGuard<()>,
}

impl Leadership {
    /// Starts taking part in the election (a background task); a Lease created by this process
    /// starts at an epoch above `floor`.
    pub fn start(client: Client, config: LeaseConfig, floor: u64) -> Leadership {
        let (leading, _) = watch::channel(None);
        let leadership = Leadership {
            inner: Arc::new(Inner {
                api: Api::namespaced(client, &config.namespace),
                config,
                held: Mutex::new(None),
                leading,
                elector: Mutex::new(None),
                acting: Arc::new(RwLock::new(())),
            }),
        };
        let elector = leadership.clone();
        let task = tokio::spawn(async move { elector.elect(floor).await });
        *leadership
            .inner
            .elector
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(task);
        leadership
    }

    /// Stops taking part in the election, as a process that ends does: no renewal, no try;
    /// whatever this process held, it no longer leads.
    pub fn stop(&self) {
        if let Some(task) = self
            .inner
            .elector
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        self.step_down();
    }

    /// This process's identity in the election.
    pub fn identity(&self) -> &str {
        &self.inner.config.identity
    }

    /// The epoch this process leads in, if it leads now: it holds the Lease and its last
    /// successful renewal began less than the renew deadline ago.
    pub fn epoch(&self) -> Option<u64> {
        let held = *self
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.filter(|held| held.renewed.elapsed() < self.inner.config.renew_deadline)
            .map(|held| held.epoch)
    }

    /// Waits until this process leads, and returns the epoch.
    pub async fn acquired(&self) -> u64 {
        let mut leading = self.inner.leading.subscribe();
        loop {
            if let Some(epoch) = *leading.borrow_and_update() {
                return epoch;
            }
            if leading.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits until this process no longer leads in `epoch`.
    pub async fn lost(&self, epoch: u64) {
        let mut leading = self.inner.leading.subscribe();
        loop {
            if *leading.borrow_and_update() != Some(epoch) {
                return;
            }
            if leading.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether this process still leads in `epoch`, asked of the Lease itself: a read right
    /// before an effect, so that a leader deposed while it could not tell (its renewals still
    /// within the deadline) does not act. A failed read is a no. A yes is held for the length
    /// of the call it covers: the Lease is not released while it is.
    pub async fn confirm(&self, epoch: u64) -> Option<Acting> {
        // Taken before the checks: once a release has begun, nothing more is confirmed.
        let in_flight = Arc::clone(&self.inner.acting).try_read_owned().ok()?;
        if self.epoch() != Some(epoch) {
            return None;
        }
        match self.inner.api.get_opt(&self.inner.config.name).await {
            Ok(Some(lease)) => {
                let spec = lease.spec.unwrap_or_default();
                let ours = spec.holder_identity.as_deref() == Some(self.identity())
                    && spec.lease_transitions.map(i64::from) == i64::try_from(epoch).ok();
                if !ours {
                    tracing::warn!(
                        epoch,
                        holder = spec.holder_identity.as_deref().unwrap_or(""),
                        "the Lease has another holder: this process no longer leads"
                    );
                    self.step_down();
                }
                (ours && self.epoch() == Some(epoch)).then_some(Acting {
                    _in_flight: in_flight,
                })
            }
            Ok(None) => {
                self.step_down();
                None
            }
            Err(error) => {
                tracing::warn!(%error, "reading the Lease to confirm leadership");
                None
            }
        }
    }

    /// Gives the Lease up (on a clean shutdown), so that another replica takes it at once
    /// instead of after the lease duration. It stops leading first, then waits for the calls
    /// it confirmed to end (each has its own deadline; at most the lease duration, after which
    /// the Lease would have expired anyway), so that the next leader never acts while a call of
    /// this one is in flight.
    pub async fn release(&self) {
        let held = *self
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.stop();
        let Some(held) = held else {
            return;
        };
        let drained = tokio::time::timeout(
            self.inner.config.lease_duration,
            Arc::clone(&self.inner.acting).write_owned(),
        )
        .await;
        if drained.is_err() {
            tracing::warn!(
                epoch = held.epoch,
                "a confirmed call outlasted the lease: giving the Lease up anyway"
            );
        }
        let Ok(Some(mut lease)) = self.inner.api.get_opt(&self.inner.config.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity())
            || spec.lease_transitions.map(i64::from) != i64::try_from(held.epoch).ok()
        {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        let name = self.inner.config.name.clone();
        match self
            .inner
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(epoch = held.epoch, "the Lease is released"),
            Err(error) => tracing::warn!(%error, "releasing the Lease"),
        }
    }

    fn set_held(&self, held: Option<Held>) {
        *self
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = held;
        let epoch = held.map(|held| held.epoch);
        self.inner.leading.send_if_modified(|leading| {
            let changed = *leading != epoch;
            *leading = epoch;
            changed
        });
    }

    fn step_down(&self) {
        self.set_held(None);
    }

    /// The election's loop: one round every retry period, for as long as the process runs.
    async fn elect(&self, floor: u64) {
        let config = self.inner.config.clone();
        let mut seen: Option<Seen> = None;
        loop {
            let started = Instant::now();
            let held = *self
                .inner
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match self.round(held, &mut seen, floor, started).await {
                Ok(Some(epoch)) => {
                    if held.map(|held| held.epoch) != Some(epoch) {
                        tracing::info!(epoch, identity = %config.identity, "leading");
                    }
                    self.set_held(Some(Held {
                        epoch,
                        renewed: started,
                    }));
                }
                Ok(None) => {
                    if held.is_some() {
                        tracing::warn!(identity = %config.identity, "the Lease was taken over: no longer leading");
                        self.step_down();
                    }
                }
                Err(error) => tracing::warn!(%error, "leader election"),
            }
            if let Some(held) = *self
                .inner
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                && held.renewed.elapsed() >= config.renew_deadline
            {
                tracing::warn!(
                    epoch = held.epoch,
                    "the Lease was not renewed within the renew deadline: no longer leading"
                );
                self.step_down();
            }
            tokio::time::sleep_until(started + config.retry_period).await;
        }
    }

    /// One try to take or renew the Lease: the epoch led in when it succeeded, `None` when
    /// another holds it (or won this round), an error when the API server did not answer.
    async fn round(
        &self,
        held: Option<Held>,
        seen: &mut Option<Seen>,
        floor: u64,
        started: Instant,
    ) -> Result<Option<u64>, kube::Error> {
        let config = &self.inner.config;
        let api = &self.inner.api;
        let duration = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = api.get_opt(&config.name).await? else {
            if held.is_some() {
                // Deleted under the leader: whoever creates it next is another leadership.
                return Ok(None);
            }
            let epoch = floor.saturating_add(1);
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(i32::try_from(epoch).unwrap_or(i32::MAX)),
                    ..LeaseSpec::default()
                }),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Some(epoch)),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0);
        let ours = held.is_some_and(|held| {
            holder == config.identity
                && i64::from(transitions) == i64::try_from(held.epoch).unwrap_or(-1)
        });
        let epoch = if ours {
            spec.renew_time = Some(now());
            spec.lease_duration_seconds = Some(duration);
            u64::try_from(transitions).unwrap_or(0)
        } else {
            if held.is_some() {
                return Ok(None);
            }
            let record = (holder.clone(), spec.renew_time.clone(), transitions);
            if seen.as_ref().map(|seen| &seen.record) != Some(&record) {
                *seen = Some(Seen {
                    record,
                    since: started,
                });
            }
            let lasts = Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(duration)).unwrap_or(0),
            );
            let expired = holder.is_empty()
                || seen
                    .as_ref()
                    .is_some_and(|seen| seen.since.elapsed() >= lasts);
            if !expired {
                return Ok(None);
            }
            let epoch = u64::try_from(transitions)
                .unwrap_or(0)
                .max(floor)
                .saturating_add(1);
            spec.holder_identity = Some(config.identity.clone());
            spec.lease_duration_seconds = Some(duration);
            spec.acquire_time = Some(now());
            spec.renew_time = Some(now());
            spec.lease_transitions = Some(i32::try_from(epoch).unwrap_or(i32::MAX));
            epoch
        };
        // The resource version read above makes this a compare-and-swap.
        match api
            .replace(&lease.name_any(), &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Some(epoch)),
            // Another candidate won the round. A leader's renewal that conflicted is an error:
            // it keeps leading until its deadline, and the next round reads what changed.
            Err(kube::Error::Api(status)) if status.code == 409 && !ours => Ok(None),
            Err(error) => Err(error),
        }
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}
