//! What the engine reports, written where people look: the `ZenithCluster`'s status subresource
//! and Kubernetes Events on it.

use crate::effects::{ClusterObjects, FIELD_MANAGER, effect_error};
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tandem_crds::{
    LogRefusal, MemberStatus, OperatorStatus, Transition, ZenithCluster, ZenithClusterStatus,
};
use tandem_engine::{
    Action, ClusterState, EffectError, Outcome, Role, StateKind, Status, Timestamp,
};

/// The time of an engine timestamp (milliseconds since the Unix epoch, as the operator feeds
/// them).
pub fn time(at: Timestamp) -> Time {
    let millis = i64::try_from(at.0).unwrap_or(i64::MAX);
    Time(jiff::Timestamp::from_millisecond(millis).unwrap_or(jiff::Timestamp::MAX))
}

/// A status condition of the cluster.
fn condition(
    type_: &str,
    on: bool,
    reason: &str,
    message: &str,
    since: &Time,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if on { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: since.clone(),
        observed_generation: generation,
    }
}

/// The transitions a step recorded, for the status its [`Action::UpdateStatus`] writes: a step
/// may pass through several states (`ManualInterventionRequired -> Reexamine -> BothDown`),
/// while the engine's status names only the last one and the one before it.
pub fn step_transitions(record: &tandem_engine::Record) -> Vec<Transition> {
    record
        .events
        .iter()
        .filter_map(|event| match event {
            tandem_engine::Event::Transition {
                from,
                to,
                detail,
                at,
                ..
            } => Some(Transition {
                time: time(*at),
                from: from.to_string(),
                to: to.to_string(),
                reason: detail.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The status subresource for the engine's `status`, given the status written before
/// (`previous`, whose transitions it continues), the spec's generation, and the transitions of
/// the step that made the status (`step`, see [`step_transitions`]; each is added once, so a
/// status written again adds none). Without them, a state that differs from the one written
/// before adds the one transition the engine's status names.
pub fn cluster_status(
    status: &Status,
    objects: &ClusterObjects,
    previous: Option<&ZenithClusterStatus>,
    generation: Option<i64>,
    witness: Witness,
    step: &[Transition],
) -> ZenithClusterStatus {
    let state = status.state.to_string();
    let since = time(status.since);
    let mut transitions = previous
        .map(|previous| previous.transitions.clone())
        .unwrap_or_default();
    let previous_state = previous.and_then(|previous| previous.state.clone());
    if !step.is_empty() {
        for transition in step {
            if !transitions.contains(transition) {
                transitions.push(transition.clone());
            }
        }
    } else if let Some(from) = status.previous_state
        && previous_state.as_deref() != Some(state.as_str())
    {
        transitions.push(Transition {
            time: since.clone(),
            from: from.to_string(),
            to: state.clone(),
            reason: status.reason.clone(),
        });
    }
    let excess = transitions
        .len()
        .saturating_sub(tandem_crds::status::TRANSITIONS_KEPT);
    transitions.drain(..excess);
    let condition = |type_: &str, on: bool, why: &str| {
        condition(type_, on, why, &status.reason, &since, generation)
    };
    let kind = status.state.kind();
    let reason = kind.name();
    let degraded = !matches!(
        kind,
        StateKind::Normal
            | StateKind::Initializing
            | StateKind::Stopping
            | StateKind::Stopped
            | StateKind::Starting
    );
    let progressing = matches!(
        kind,
        StateKind::Initializing
            | StateKind::Switchover
            | StateKind::Starting
            | StateKind::Stopping
            | StateKind::StandbyPartiallyStarting
    );
    ZenithClusterStatus {
        state: Some(state),
        previous_state: status.previous_state.map(|state| state.to_string()),
        last_transition_time: Some(since.clone()),
        reason: Some(status.reason.clone()),
        active_member: status.active.map(|member| objects.pod(member)),
        members: status
            .members
            .iter()
            .map(|member| MemberStatus {
                name: objects.pod(member.member),
                role: match member.role {
                    Role::Active => Some("Active".into()),
                    Role::Standby => Some("Standby".into()),
                    Role::None => None,
                },
                health: Some(member.health.name().into()),
                node: member.node.as_ref().map(|node| node.0.clone()),
                pvc: Some(objects.pvc(member.member)),
                lsn: Some(member.lsn.0),
                config_hash: Some(format!("{:016x}", member.config_hash.0)),
            })
            .collect(),
        conditions: vec![
            condition("Ready", status.state == ClusterState::Normal, reason),
            condition("Degraded", degraded, reason),
            condition("Progressing", progressing, reason),
        ],
        observed_generation: generation,
        last_sequence: Some(status.seq.0),
        epoch: Some(witness.epoch),
        log_incarnation: witness.incarnation,
        // Written when the operator takes the cluster over; a merge keeps it.
        operator: None,
        // The engine acts: whatever refusal there was is over.
        log_refused: None,
        transitions,
    }
}

/// Who writes a status: the leadership epoch of the operator, and the incarnation of the log
/// stream it acts on (`None` for a stream that predates incarnations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Witness {
    /// The leadership epoch (0 without leader election).
    pub epoch: u64,
    /// The stream's incarnation.
    pub incarnation: Option<u64>,
}

/// Writes the engine's reports: status updates and Events.
#[derive(Clone)]
pub struct Reporter {
    client: Client,
    objects: ClusterObjects,
    epoch: u64,
    incarnation: Option<u64>,
}

/// How many times a status write is tried again when the cluster changed between its read and
/// its write.
const STATUS_CONFLICT_RETRIES: usize = 5;

impl Reporter {
    /// A reporter for one cluster.
    /// Writes for the leader of `epoch` (0 without leader election).
    pub fn new(client: Client, objects: ClusterObjects, epoch: u64) -> Reporter {
        Reporter {
            client,
            objects,
            epoch,
            incarnation: None,
        }
    }

    /// The incarnation of the stream this reporter's statuses are written from, once known.
    pub fn set_incarnation(&mut self, incarnation: Option<u64>) {
        self.incarnation = incarnation;
    }

    fn witness_of(&self) -> Witness {
        Witness {
            epoch: self.epoch,
            incarnation: self.incarnation,
        }
    }

    /// Carries out `action` if it is a report; `None` for other effects.
    pub async fn carry_out(&self, action: &Action) -> Option<Outcome> {
        self.carry_out_step(action, &[]).await
    }

    /// Carries out `action` if it is a report, a status written with the transitions of the
    /// step that made it ([`step_transitions`]); `None` for other effects.
    pub async fn carry_out_step(&self, action: &Action, step: &[Transition]) -> Option<Outcome> {
        let result = match action {
            Action::UpdateStatus(status) => self.update_status(status, step).await,
            Action::EmitEvent {
                warning,
                reason,
                message,
            } => self.emit(*warning, reason, message).await,
            Action::DeletePod { .. }
            | Action::Promote { .. }
            | Action::Demote { .. }
            | Action::Fence { .. }
            | Action::Rebuild { .. }
            | Action::Rewind { .. }
            | Action::RelaxSync { .. }
            | Action::RestoreSync { .. }
            | Action::RestartReplication { .. }
            | Action::ProvisionLocalPv { .. }
            | Action::BindPvc { .. }
            | Action::ReleaseVolume { .. }
            | Action::SetReplicas { .. }
            | Action::LabelPod { .. } => return None,
        };
        Some(match result {
            Ok(()) => Outcome::Ok,
            Err(error) => Outcome::Failed(error),
        })
    }

    fn clusters(&self) -> Api<ZenithCluster> {
        Api::namespaced(self.client.clone(), &self.objects.namespace)
    }

    async fn update_status(&self, status: &Status, step: &[Transition]) -> Result<(), EffectError> {
        self.write_status(|cluster| {
            let written = cluster_status(
                status,
                &self.objects,
                cluster.status.as_ref(),
                cluster.metadata.generation,
                self.witness_of(),
                step,
            );
            // A merge patch leaves out what serializes to nothing: what no longer holds is
            // cleared explicitly.
            let mut body = serde_json::to_value(&written).expect("a status serializes");
            for field in [
                "activeMember",
                "previousState",
                "logRefused",
                "logIncarnation",
            ] {
                if body.get(field).is_none() {
                    body[field] = serde_json::Value::Null;
                }
            }
            body
        })
        .await
    }

    /// Writes the witness of a leader taking the cluster over, before it acts: its epoch, the
    /// incarnation of its stream, the last record its log holds for the cluster, and who took
    /// the cluster over and how (`operator`). Refused (`Rejected`) when the status already
    /// carries a later epoch.
    pub async fn witness(
        &self,
        last_sequence: u64,
        operator: &OperatorStatus,
    ) -> Result<(), EffectError> {
        self.write_status(|_| {
            json!({
                "epoch": self.epoch,
                "logIncarnation": self.incarnation,
                "lastSequence": last_sequence,
                "operator": operator,
            })
        })
        .await
    }

    /// Reads the cluster, computes the status to merge from it, and writes it only if the
    /// cluster did not change in between (its resource version is the precondition) and no
    /// leader of a later epoch wrote the status: a deposed leader's late write never covers a
    /// newer leader's witness.
    async fn write_status(
        &self,
        body: impl Fn(&ZenithCluster) -> serde_json::Value,
    ) -> Result<(), EffectError> {
        let mut tries = 0;
        loop {
            let cluster = self
                .clusters()
                .get(&self.objects.cluster)
                .await
                .map_err(effect_error)?;
            let written = cluster.status.as_ref().and_then(|status| status.epoch);
            if written.is_some_and(|written| written > self.epoch) {
                tracing::warn!(
                    epoch = self.epoch,
                    written,
                    cluster = %self.objects.cluster,
                    "the status was written by a later leader: not overwritten"
                );
                return Err(EffectError::Rejected);
            }
            let patch = json!({
                "metadata": {"resourceVersion": cluster.resource_version()},
                "status": body(&cluster),
            });
            match self.merge_status(patch).await {
                Err(EffectError::Conflict) if tries < STATUS_CONFLICT_RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// Merges `patch` into the cluster's status subresource.
    async fn merge_status(&self, patch: serde_json::Value) -> Result<(), EffectError> {
        self.clusters()
            .patch_status(
                &self.objects.cluster,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ())
            .map_err(effect_error)
    }

    /// Reports that tandem refuses to act on the cluster's log: `status.logRefused`, the
    /// `LogRefused` condition (and `Ready` false), and a Warning Event the first time.
    pub async fn refuse_log(&self, refusal: &LogRefusal) -> Result<(), EffectError> {
        let cluster = self
            .clusters()
            .get(&self.objects.cluster)
            .await
            .map_err(effect_error)?;
        let status = cluster.status.clone().unwrap_or_default();
        if status.log_refused.as_ref() == Some(refusal) {
            return Ok(());
        }
        let first = status.log_refused.is_none();
        let message = format!(
            "{}. tandem does not act on this cluster until a person sets spec.haSpec.reexamine \
             to a new value, which sets the log aside and recovers the cluster from what its \
             members report",
            refusal.reason
        );
        let condition = |type_: &str, on: bool| {
            condition(
                type_,
                on,
                "LogRefused",
                &message,
                &refusal.since,
                cluster.metadata.generation,
            )
        };
        let mut conditions: Vec<Condition> = status
            .conditions
            .into_iter()
            .filter(|condition| condition.type_ != "LogRefused" && condition.type_ != "Ready")
            .collect();
        conditions.push(condition("LogRefused", true));
        conditions.push(condition("Ready", false));
        self.merge_status(json!({"status": {"logRefused": refusal, "conditions": conditions}}))
            .await?;
        if first {
            self.emit(true, "LogRefused", &message).await?;
        }
        Ok(())
    }

    async fn emit(&self, warning: bool, reason: &str, message: &str) -> Result<(), EffectError> {
        let cluster = self
            .clusters()
            .get(&self.objects.cluster)
            .await
            .map_err(effect_error)?;
        let now = Time(jiff::Timestamp::now());
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", self.objects.cluster)),
                namespace: Some(self.objects.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(ZenithCluster::api_version(&()).into_owned()),
                kind: Some(ZenithCluster::kind(&()).into_owned()),
                name: Some(cluster.name_any()),
                namespace: Some(self.objects.namespace.clone()),
                uid: cluster.metadata.uid.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some(FIELD_MANAGER.into()),
            reporting_instance: Some(FIELD_MANAGER.into()),
            source: Some(k8s_openapi::api::core::v1::EventSource {
                component: Some(FIELD_MANAGER.into()),
                host: None,
            }),
            ..Event::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.objects.namespace);
        events
            .create(&PostParams::default(), &event)
            .await
            .map(|_| ())
            .map_err(effect_error)
    }
}

#[cfg(test)]
mod tests {
    use super::{ClusterObjects, Witness, cluster_status, step_transitions};
    use tandem_engine::{
        ClusterState, Event, Input, Reason, Record, Seq, Spec, Status, Timestamp, Topology,
    };

    fn objects() -> ClusterObjects {
        ClusterObjects {
            namespace: "ns".into(),
            cluster: "zc".into(),
            storage_class: "local".into(),
            storage_size: "1Gi".into(),
            local_root: "/mnt".into(),
        }
    }

    /// A step that leaves a wait for a person through `Reexamine` and `BothDown`.
    fn step() -> Record {
        let transition = |from, to, reason, detail: &str| Event::Transition {
            from,
            to,
            reason,
            detail: detail.into(),
            at: Timestamp(1_780_000_000_000),
        };
        Record {
            seq: Seq(9),
            at: Timestamp(1_780_000_000_000),
            input: Input::Spec(Spec::defaults(Topology::MasterSlave)),
            events: vec![
                transition(
                    ClusterState::ManualInterventionRequired,
                    ClusterState::Reexamine,
                    Reason::ReexamineRequested,
                    "a person asked",
                ),
                transition(
                    ClusterState::Reexamine,
                    ClusterState::BothDown,
                    Reason::Reexamined,
                    "member-0 is Down and member-1 is Standby",
                ),
            ],
            effects: Vec::new(),
        }
    }

    #[test]
    fn every_transition_of_a_step_is_in_the_status_once() {
        let status = Status {
            state: ClusterState::BothDown,
            previous_state: Some(ClusterState::Reexamine),
            since: Timestamp(1_780_000_000_000),
            reason: "member-0 is Down and member-1 is Standby".into(),
            active: None,
            members: Vec::new(),
            seq: Seq(9),
        };
        let witness = Witness {
            epoch: 1,
            incarnation: None,
        };
        let transitions = step_transitions(&step());
        let written = cluster_status(&status, &objects(), None, Some(1), witness, &transitions);
        let path: Vec<(&str, &str)> = written
            .transitions
            .iter()
            .map(|transition| (transition.from.as_str(), transition.to.as_str()))
            .collect();
        assert_eq!(
            path,
            [
                ("ManualInterventionRequired", "Reexamine"),
                ("Reexamine", "BothDown")
            ]
        );
        // Written again (a retried write), it adds nothing.
        let again = cluster_status(
            &status,
            &objects(),
            Some(&written),
            Some(1),
            witness,
            &transitions,
        );
        assert_eq!(again.transitions, written.transitions);
    }
}
