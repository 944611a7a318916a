//! The world's Kubernetes half: nodes, pods with StatefulSet semantics, PVCs and local PVs, and
//! what the operator's watches observe of them.

use super::*;

impl World {
    pub(super) fn uid(&mut self, prefix: &str) -> String {
        self.next_uid += 1;
        format!("{prefix}-{}", self.next_uid)
    }

    /// The pod as the API server shows it.
    pub fn pod_observation(&self, member: MemberId) -> Option<PodObservation> {
        let pod = self.members[member.index()].pod.as_ref()?;
        Some(PodObservation {
            uid: PodUid(pod.uid.clone()),
            node: pod
                .node
                .map(|node| NodeName(self.nodes[node.0].name.clone())),
            running: self.members[member.index()].process != Proc::Down,
            deleting: pod.deleting,
        })
    }

    /// The PVC and PV as the API server shows them.
    pub fn volume_observation(&self, member: MemberId) -> VolumeObservation {
        let state = &self.members[member.index()];
        let Some(pvc) = &state.pvc else {
            return VolumeObservation {
                pvc: None,
                pv: None,
                lost: false,
            };
        };
        let bound = pvc.volume.map(|index| &self.volumes[index.0]);
        let lost = bound.is_some_and(|volume| !volume.exists);
        let pv = bound.filter(|volume| volume.exists).map(|volume| {
            (
                PvName(volume.name.clone()),
                NodeName(self.nodes[volume.node.0].name.clone()),
            )
        });
        VolumeObservation {
            pvc: Some(PvcUid(pvc.uid.clone())),
            pv,
            lost,
        }
    }

    /// The node as the API server shows it.
    pub fn node_observation(&self, node: NodeIndex) -> (NodeName, NodeStatus) {
        let status = if self.nodes[node.0].up {
            NodeStatus::Ready
        } else {
            NodeStatus::NotReady
        };
        (NodeName(self.nodes[node.0].name.clone()), status)
    }

    /// The StatefulSet controller: creates missing pods (and PVCs) for ordinals below the
    /// replicas, deletes those above.
    pub(super) fn reconcile(&mut self, now: Millis) {
        for member in self.members() {
            let wanted = member.0 < self.replicas;
            let has_pod = self.members[member.index()].pod.is_some();
            if wanted && !has_pod {
                self.create_pod(member, now);
            } else if !wanted && has_pod {
                self.delete_pod(member, now, false);
            } else if wanted {
                self.schedule_pending(member, now);
            }
        }
    }

    pub(super) fn create_pod(&mut self, member: MemberId, now: Millis) {
        if self.members[member.index()].pvc.is_none() {
            let uid = self.uid("pvc");
            self.members[member.index()].pvc = Some(Pvc { uid, volume: None });
            self.bind(member);
            self.changed.push(Changed::Volume(member));
        }
        let uid = self.uid("pod");
        self.members[member.index()].pod = Some(Pod {
            uid,
            node: None,
            deleting: false,
            label: Role::None,
        });
        self.members[member.index()].process = Proc::Down;
        self.schedule_pending(member, now);
        self.changed.push(Changed::Pod(member));
    }

    /// Binds a member's unbound PVC to the newest PV pre-bound to it.
    pub(super) fn bind(&mut self, member: MemberId) {
        let candidate = self
            .volumes
            .iter()
            .enumerate()
            .filter(|(_, volume)| volume.exists && volume.member == member)
            .max_by_key(|(_, volume)| volume.generation)
            .map(|(index, _)| VolumeIndex(index));
        if let (Some(pvc), Some(index)) = (self.members[member.index()].pvc.as_mut(), candidate)
            && pvc.volume.is_none()
        {
            pvc.volume = Some(index);
        }
    }

    /// The scheduler: a pending pod whose PVC is bound goes to its PV's node and starts.
    pub(super) fn schedule_pending(&mut self, member: MemberId, now: Millis) {
        let node = self
            .volume_of(member)
            .map(|index| self.volumes[index.0].node);
        let state = &mut self.members[member.index()];
        let Some(pod) = state.pod.as_mut() else {
            return;
        };
        if pod.node.is_some() || pod.deleting {
            return;
        }
        let Some(node) = node else { return };
        pod.node = Some(node);
        let uid = pod.uid.clone();
        self.changed.push(Changed::Pod(member));
        if self.nodes[node.0].up {
            self.start_process(member, uid, now);
        }
    }

    /// Sets the role label of the member's pod if it is still the pod `uid` (the patch's UID
    /// precondition).
    pub fn label_pod(&mut self, member: MemberId, uid: &str, role: Role) -> bool {
        match self.members[member.index()].pod.as_mut() {
            Some(pod) if pod.uid == uid => {
                pod.label = role;
                true
            }
            _ => false,
        }
    }

    /// The UID of the member's pod, if it has one.
    pub fn pod_uid(&self, member: MemberId) -> Option<&str> {
        let pod = self.members[member.index()].pod.as_ref()?;
        Some(&pod.uid)
    }

    /// The members whose pods carry the active label.
    pub fn labelled_active(&self) -> Vec<MemberId> {
        self.members()
            .filter(|member| {
                self.members[member.index()]
                    .pod
                    .as_ref()
                    .is_some_and(|pod| pod.label == Role::Active)
            })
            .collect()
    }

    /// Deletes a member's pod: gracefully (the object stays until the kubelet confirms), or
    /// forced (the object goes at once). A pod never scheduled on a node has no kubelet to
    /// confirm anything: it goes at once either way.
    pub fn delete_pod(&mut self, member: MemberId, now: Millis, force: bool) {
        let node_up = self.node_up(member);
        let state = &mut self.members[member.index()];
        let Some(pod) = state.pod.as_mut() else {
            return;
        };
        if force || pod.node.is_none() {
            self.remove_pod(member, now);
            return;
        }
        if !pod.deleting {
            pod.deleting = true;
            self.changed.push(Changed::Pod(member));
        }
        if node_up {
            let uid = pod.uid.clone();
            self.later
                .push((now + POD_GRACE_MS, Later::PodGone { member, uid }));
        }
    }

    /// A graceful deletion completes.
    pub(super) fn pod_gone(&mut self, member: MemberId, uid: &str, now: Millis) {
        let state = &mut self.members[member.index()];
        if state.pod.as_ref().is_none_or(|pod| pod.uid != uid) {
            return;
        }
        self.remove_pod(member, now);
    }

    /// The pod object goes, with its process; the StatefulSet notices shortly.
    pub(super) fn remove_pod(&mut self, member: MemberId, now: Millis) {
        self.members[member.index()].pod = None;
        self.crash(member);
        self.changed.push(Changed::Pod(member));
        self.later
            .push((now + STATEFULSET_DELAY_MS, Later::Reconcile));
    }

    /// Provisions a local PV pre-bound to a member.
    pub fn provision(&mut self, member: MemberId, node: &NodeName, generation: u32) -> bool {
        let Some(node) = self
            .nodes
            .iter()
            .position(|candidate| candidate.name == node.0)
            .map(NodeIndex)
        else {
            return false;
        };
        let exists = self
            .volumes
            .iter()
            .any(|v| v.member == member && v.generation == generation && v.exists);
        if !exists {
            // Member 0's agent initializes a new database on an empty volume while the cluster
            // holds none yet (no write was ever acknowledged, and no complete copy exists).
            let fresh_cluster =
                self.history.acknowledged_writes() == 0 && !self.complete_copy_survives();
            self.volumes.push(Volume {
                name: format!("pv-{}-{generation}", member.0),
                node,
                member,
                generation,
                data: Position::default(),
                copy_complete: member == MemberId::FIRST && fresh_cluster,
                exists: true,
            });
        }
        true
    }

    /// Binds the member's PVC (now, or when it is created) to the PV of `generation`.
    pub fn bind_pvc(&mut self, member: MemberId, now: Millis) -> bool {
        self.bind(member);
        self.changed.push(Changed::Volume(member));
        self.schedule_pending(member, now);
        true
    }

    /// Deletes the member's PVC (if its UID matches) and its PV of `generation`.
    pub fn release(&mut self, member: MemberId, pvc_uid: Option<&PvcUid>, generation: u32) -> bool {
        let state = &mut self.members[member.index()];
        let matches = match (&state.pvc, pvc_uid) {
            (Some(pvc), Some(uid)) => pvc.uid == uid.0,
            (_, None) => true,
            (None, Some(_)) => false,
        };
        if !matches {
            return false;
        }
        state.pvc = None;
        for volume in &mut self.volumes {
            if volume.member == member && volume.generation == generation {
                volume.exists = false;
            }
        }
        self.changed.push(Changed::Volume(member));
        true
    }

    /// Scales the StatefulSet.
    pub fn set_replicas(&mut self, replicas: u8, now: Millis) {
        self.replicas = replicas;
        self.reconcile(now);
    }

    /// The ConfigMaps now hold the configuration `hash`: a process runs with the one they held
    /// when it started.
    pub fn set_config_hash(&mut self, hash: u64) {
        self.config_hash = hash;
    }

    /// A node goes away (processes on it die); with `back_after`, it reboots later.
    pub fn node_loss(&mut self, node: NodeIndex, now: Millis, back_after: Option<Millis>) {
        self.nodes[node.0].up = false;
        self.nodes[node.0].gone_for_good = back_after.is_none();
        for member in self.members() {
            if self.node_of(member) == Some(node) {
                self.crash(member);
            }
        }
        self.changed.push(Changed::Node(node));
        if let Some(after) = back_after {
            self.later.push((now + after, Later::NodeBack { node }));
        }
    }

    /// A node comes back with its disks: pods pending deletion go, the others restart. A reboot
    /// that a loss for good overtook never ends.
    pub(super) fn node_back(&mut self, node: NodeIndex, now: Millis) {
        if self.nodes[node.0].gone_for_good {
            return;
        }
        self.nodes[node.0].up = true;
        self.changed.push(Changed::Node(node));
        for member in self.members() {
            let state = &self.members[member.index()];
            let Some(pod) = state.pod.as_ref().filter(|pod| pod.node == Some(node)) else {
                continue;
            };
            let uid = pod.uid.clone();
            if pod.deleting {
                self.pod_gone(member, &uid, now);
            } else if state.process == Proc::Down {
                self.start_process(member, uid, now);
            }
        }
        self.later.push((now, Later::Reconcile));
    }
}
