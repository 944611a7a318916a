//! What a decoded record or snapshot must hold before it is folded.
//!
//! Checksums catch damage, not a record that was wrong when its checksum was computed: a bug in
//! another build, a stray write inside a value whose checksum was then recomputed, a hand-made
//! log. The engine indexes its per-member arrays by member, counts effects up from their ids and
//! keeps at most [`MAX_NODES`] nodes; a value outside those bounds would panic a reader, and an
//! operator crash-loop on its log. So every event is checked against the state it is folded
//! into, and every decoded snapshot as a whole, and a value out of bounds is refused with an
//! error that names it.
//!
//! Only bounds are checked here, not the rules a spec must pass: a spec in the log was accepted
//! by the build that recorded it, and a later build's stricter rules must not make its own log
//! unreadable.

use crate::config::Spec;
use crate::event::{EffectKey, Event};
use crate::input::{PodObservation, VolumeObservation};
use crate::limits::{MAX_EFFECT_ID, MAX_ISSUED, MAX_NAME_BYTES, MAX_NODES};
use crate::state::{ClusterState, EngineState, MemberView};
use crate::types::{EffectId, MemberId, NodeName, Topology};

/// A value out of bounds, described.
pub(crate) type Invalid = String;

/// What the events of one record are checked against: the state before it, with the
/// topology a creation in the same record sets.
struct Bounds<'a> {
    state: &'a EngineState,
    members: u8,
    topology: Option<Topology>,
}

impl Bounds<'_> {
    fn member(&self, member: MemberId) -> Result<(), Invalid> {
        if member.0 < self.members {
            Ok(())
        } else {
            Err(format!(
                "member {} beyond the cluster's {}",
                member.0, self.members
            ))
        }
    }

    fn spec(&self, spec: &Spec) -> Result<(), Invalid> {
        if let Some(topology) = self.topology
            && topology != spec.topology
        {
            return Err(format!(
                "a spec of topology {} for a {} cluster",
                spec.topology.name(),
                topology.name()
            ));
        }
        name("the reexamine token", &spec.reexamine)?;
        if let Some(request) = &spec.switchover {
            name("the switchover token", &request.token)?;
        }
        Ok(())
    }

    fn cluster(&self, cluster: ClusterState) -> Result<(), Invalid> {
        match cluster {
            ClusterState::WaitingForActive(of) | ClusterState::Switchover(of) => self.member(of),
            ClusterState::Initializing
            | ClusterState::Normal
            | ClusterState::ActiveDown
            | ClusterState::StandbyDown
            | ClusterState::StandbyPartiallyStarting
            | ClusterState::StandbyPartiallyDown
            | ClusterState::BothDown
            | ClusterState::ManualInterventionRequired
            | ClusterState::Reexamine
            | ClusterState::Stopping
            | ClusterState::Stopped
            | ClusterState::Starting
            | ClusterState::Failed => Ok(()),
        }
    }

    fn key(&self, key: EffectKey) -> Result<(), Invalid> {
        match key {
            EffectKey::DeletePod(of)
            | EffectKey::Promote(of)
            | EffectKey::Demote(of)
            | EffectKey::Fence(of)
            | EffectKey::Rebuild(of)
            | EffectKey::RestartReplication(of)
            | EffectKey::Volume(of)
            | EffectKey::Release(of)
            | EffectKey::Bind(of)
            | EffectKey::ForceDeletePod(of)
            | EffectKey::Rewind(of)
            | EffectKey::RelaxSync(of)
            | EffectKey::RestoreSync(of)
            | EffectKey::Label(of, _) => self.member(of),
            EffectKey::Replicas => Ok(()),
        }
    }

    fn event(&self, event: &Event) -> Result<(), Invalid> {
        match event {
            Event::Created { spec, .. } => {
                if self.state.spec.is_some() {
                    return Err("a second creation".into());
                }
                self.spec(spec)
            }
            Event::SpecChanged { spec } => self.spec(spec),
            Event::Contact { member, .. }
            | Event::Unreachable { member, .. }
            | Event::Promoting { member, .. }
            | Event::ActiveAdopted { member }
            | Event::VolumeReleased { member, .. } => self.member(*member),
            Event::PodObserved { member, pod: seen } => {
                self.member(*member)?;
                seen.as_ref().map_or(Ok(()), pod)
            }
            Event::VolumeObserved {
                member,
                volume: seen,
            } => {
                self.member(*member)?;
                volume(seen)
            }
            Event::NodeObserved { node, .. } => name("a node name", &node.0),
            Event::Transition { to, .. } => self.cluster(*to),
            Event::Issued { id, key, .. } => {
                effect_id(*id)?;
                self.key(*key)
            }
            Event::Finished { id, .. } => effect_id(*id),
            Event::PodCondemned { member, uid } => {
                self.member(*member)?;
                name("a pod UID", &uid.0)
            }
            Event::ReexamineSeen { token, .. } => name("the reexamine token", token),
            Event::SwitchoverSeen { token, .. } => name("the switchover token", token),
            Event::VolumeAssigned { member, node, .. } => {
                self.member(*member)?;
                name("a node name", &node.0)
            }
            Event::SpecRejected { .. }
            | Event::AttemptCounted { .. }
            | Event::LagAccepted { .. }
            | Event::Recovered { .. }
            | Event::InputRefused { .. }
            | Event::LeaseShortened { .. }
            | Event::SyncRelaxed { .. }
            | Event::SyncRestoreConfirmed { .. }
            | Event::SyncRestored { .. } => Ok(()),
        }
    }
}

fn name(what: &str, name: &str) -> Result<(), Invalid> {
    if name.len() <= MAX_NAME_BYTES {
        Ok(())
    } else {
        Err(format!(
            "{what} of {} bytes, more than {MAX_NAME_BYTES}",
            name.len()
        ))
    }
}

fn effect_id(id: EffectId) -> Result<(), Invalid> {
    if id.0 <= MAX_EFFECT_ID {
        Ok(())
    } else {
        Err(format!("effect id {} beyond {MAX_EFFECT_ID}", id.0))
    }
}

fn pod(pod: &PodObservation) -> Result<(), Invalid> {
    name("a pod UID", &pod.uid.0)?;
    pod.node
        .as_ref()
        .map_or(Ok(()), |node| name("a node name", &node.0))
}

fn volume(volume: &VolumeObservation) -> Result<(), Invalid> {
    if let Some(pvc) = &volume.pvc {
        name("a PVC UID", &pvc.0)?;
    }
    if let Some((pv, node)) = &volume.pv {
        name("a PV name", &pv.0)?;
        name("a node name", &node.0)?;
    }
    Ok(())
}

/// Checks the events of a record against the state it is about to be folded into.
pub(crate) fn events(state: &EngineState, events: &[Event]) -> Result<(), Invalid> {
    let created = events.iter().find_map(|event| match event {
        Event::Created { spec, .. } => Some(spec.topology),
        _ => None,
    });
    let topology = state.topology().or(created);
    let bounds = Bounds {
        state,
        members: topology.map_or(2, Topology::member_count),
        topology,
    };
    let mut new_nodes: Vec<&NodeName> = Vec::new();
    for event in events {
        bounds.event(event)?;
        if let Event::NodeObserved { node, .. } = event
            && state.node(node).is_none()
            && !new_nodes.contains(&node)
        {
            new_nodes.push(node);
        }
    }
    if state.nodes.len() + new_nodes.len() > MAX_NODES {
        return Err(format!(
            "{} nodes, more than the {MAX_NODES} the engine tracks",
            state.nodes.len() + new_nodes.len()
        ));
    }
    Ok(())
}

fn member_view(view: &MemberView) -> Result<(), Invalid> {
    if let Some(seen) = &view.pod {
        pod(seen)?;
    }
    if let Some(uid) = &view.condemned_pod {
        name("a pod UID", &uid.0)?;
    }
    if let Some(pvc) = &view.pvc {
        name("a PVC UID", &pvc.0)?;
    }
    if let Some((pv, node)) = &view.pv {
        name("a PV name", &pv.0)?;
        name("a node name", &node.0)?;
    }
    if let Some(node) = &view.assigned_node {
        name("a node name", &node.0)?;
    }
    Ok(())
}

/// Checks a decoded snapshot as a whole.
pub(crate) fn state(state: &EngineState) -> Result<(), Invalid> {
    let topology = state.topology();
    let bounds = Bounds {
        state,
        members: topology.map_or(2, Topology::member_count),
        topology,
    };
    if let Some(spec) = &state.spec {
        bounds.spec(spec)?;
    }
    bounds.cluster(state.cluster)?;
    if let Some(previous) = state.previous {
        bounds.cluster(previous)?;
    }
    for member in [state.active, state.promoted_in_state]
        .into_iter()
        .flatten()
    {
        bounds.member(member)?;
    }
    for view in &state.members {
        member_view(view)?;
    }
    if state.nodes.len() > MAX_NODES {
        return Err(format!(
            "{} nodes, more than the {MAX_NODES} the engine tracks",
            state.nodes.len()
        ));
    }
    for (index, view) in state.nodes.iter().enumerate() {
        name("a node name", &view.name.0)?;
        if index > 0 && state.nodes[index - 1].name >= view.name {
            return Err(format!("node {} out of order", view.name));
        }
    }
    if state.issued.len() > MAX_ISSUED {
        return Err(format!(
            "{} effects tracked, more than {MAX_ISSUED}",
            state.issued.len()
        ));
    }
    for (index, issued) in state.issued.iter().enumerate() {
        effect_id(issued.id)?;
        bounds.key(issued.key)?;
        if state.issued[..index]
            .iter()
            .any(|other| other.key == issued.key)
        {
            return Err(format!("effect key {:?} tracked twice", issued.key));
        }
    }
    if state.next_effect > MAX_EFFECT_ID + 1 {
        return Err(format!(
            "next effect id {} beyond {MAX_EFFECT_ID}",
            state.next_effect
        ));
    }
    name("the reexamine token", &state.reexamine_token)?;
    name("the switchover token", &state.switchover_token)?;
    Ok(())
}
