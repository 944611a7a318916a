//! The engine's effects on the Kubernetes API: pod deletions, the pods' role labels (which route
//! the `-rw` and `-ro` Services), the StatefulSet's replicas, local-PV provisioning and PVC
//! pre-binding, and the release of a lost member's volume. Each call's failure becomes the
//! engine's [`EffectError`]; the engine decides whether and when to issue the effect again.
//!
//! Every deletion and role label is conditional. The UID the engine names must still be the
//! object's, and, when the executor observes the objects ([`KubeEffects::observing`]), so must
//! the `resourceVersion` it last saw. A call made on a view of the world that has changed since
//! (a deposed leader whose watch lags, a pod relabelled by the new leader) fails with a
//! conflict instead of landing.
//!
//! Names follow the members: member `N` of cluster `C` has pod `C-N` and PVC `data-C-N`; its
//! local PV of volume generation `G` is `<namespace>-C-N-g<G>` (PVs are cluster-scoped).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use serde_json::json;
use tandem_engine::{Action, EffectError, MemberId, NodeName, Outcome, PodUid, PvcUid, Role};

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "tandem";

/// One cluster's place in the API: where its objects live and how its volumes are made.
#[derive(Clone, Debug)]
pub struct ClusterObjects {
    /// The namespace of the `ZenithCluster`.
    pub namespace: String,
    /// Its name (also the StatefulSet's).
    pub cluster: String,
    /// The storage class of its local PVs.
    pub storage_class: String,
    /// The size of each member's volume, a Kubernetes quantity.
    pub storage_size: String,
    /// The directory on each node under which local PVs live.
    pub local_root: String,
}

impl ClusterObjects {
    /// The member's pod.
    pub fn pod(&self, member: MemberId) -> String {
        format!("{}-{}", self.cluster, member.0)
    }

    /// The member's data PVC.
    pub fn pvc(&self, member: MemberId) -> String {
        format!("data-{}-{}", self.cluster, member.0)
    }

    /// The member's local PV of volume generation `generation`.
    pub fn pv(&self, member: MemberId, generation: u32) -> String {
        format!(
            "{}-{}-{}-g{generation}",
            self.namespace, self.cluster, member.0
        )
    }
}

/// Carries out the engine's Kubernetes effects.
#[derive(Clone)]
pub struct KubeEffects {
    client: Client,
    objects: ClusterObjects,
    seen: Option<Seen>,
}

/// The cluster's objects as the operator's watches last saw them.
#[derive(Clone)]
struct Seen {
    pods: Store<Pod>,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
}

impl KubeEffects {
    /// An executor for one cluster; its preconditions are the UIDs the engine names.
    pub fn new(client: Client, objects: ClusterObjects) -> KubeEffects {
        KubeEffects {
            client,
            objects,
            seen: None,
        }
    }

    /// The same executor, whose deletions and labels also carry the `resourceVersion` of the
    /// object as these watches last saw it.
    pub fn observing(
        self,
        pods: Store<Pod>,
        claims: Store<PersistentVolumeClaim>,
        volumes: Store<PersistentVolume>,
    ) -> KubeEffects {
        KubeEffects {
            seen: Some(Seen {
                pods,
                claims,
                volumes,
            }),
            ..self
        }
    }

    /// The `resourceVersion` last seen of the namespaced object `name` in `store`, if the object
    /// seen is the one of UID `uid`.
    fn version_seen<K>(&self, store: &Store<K>, name: &str, uid: &str) -> Option<String>
    where
        K: kube::Resource<DynamicType = ()> + Clone,
    {
        let object = store.get(&ObjectRef::new(name).within(&self.objects.namespace))?;
        (object.uid().as_deref() == Some(uid))
            .then(|| object.resource_version())
            .flatten()
    }

    /// Carries out `action` if it is a Kubernetes effect; `None` for the others (agent commands,
    /// status and events, which have their own executors).
    pub async fn carry_out(&self, action: &Action) -> Option<Outcome> {
        let result = match action {
            Action::DeletePod {
                member,
                uid,
                grace_period_s,
            } => self.delete_pod(*member, uid, *grace_period_s).await,
            Action::SetReplicas { replicas } => self.set_replicas(*replicas).await,
            Action::LabelPod { member, uid, role } => self.label(*member, uid, *role).await,
            Action::ProvisionLocalPv {
                member,
                node,
                generation,
            } => self.provision(*member, node, *generation).await,
            Action::BindPvc { member, generation } => self.bind(*member, *generation).await,
            Action::ReleaseVolume {
                member,
                pvc,
                generation,
            } => self.release(*member, pvc.as_ref(), *generation).await,
            Action::Promote { .. }
            | Action::Demote { .. }
            | Action::Fence { .. }
            | Action::Rebuild { .. }
            | Action::Rewind { .. }
            | Action::RelaxSync { .. }
            | Action::RestoreSync { .. }
            | Action::RestartReplication { .. }
            | Action::UpdateStatus(_)
            | Action::EmitEvent { .. } => return None,
        };
        Some(match result {
            Ok(()) => Outcome::Ok,
            Err(error) => Outcome::Failed(error),
        })
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.objects.namespace)
    }

    fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), &self.objects.namespace)
    }

    fn volumes(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }

    /// Deletes the member's pod if it is still the pod `uid`, unchanged since it was last seen
    /// (preconditions the API server checks), with the given grace period (0: with force).
    async fn delete_pod(
        &self,
        member: MemberId,
        uid: &PodUid,
        grace_period_s: u32,
    ) -> Result<(), EffectError> {
        let name = self.objects.pod(member);
        let params = DeleteParams {
            grace_period_seconds: Some(grace_period_s),
            preconditions: Some(Preconditions {
                uid: Some(uid.0.clone()),
                resource_version: self
                    .seen
                    .as_ref()
                    .and_then(|seen| self.version_seen(&seen.pods, &name, &uid.0)),
            }),
            ..DeleteParams::default()
        };
        self.pods()
            .delete(&name, &params)
            .await
            .map(|_| ())
            .map_err(effect_error)
    }

    /// Sets (or removes) the role label of the member's pod if it is still the pod `uid`: the
    /// patch names the UID, which the API server refuses to change (422 on `metadata.uid` when
    /// it differs: another pod under the same name, a conflict), and the resourceVersion last
    /// seen (409 when the pod changed since).
    async fn label(&self, member: MemberId, uid: &PodUid, role: Role) -> Result<(), EffectError> {
        let value = match role {
            Role::Active => Some(crate::resources::ROLE_ACTIVE),
            Role::Standby => Some(crate::resources::ROLE_STANDBY),
            Role::None => None,
        };
        let name = self.objects.pod(member);
        let mut patch = json!({"metadata": {
            "uid": uid.0,
            "labels": {crate::resources::ROLE_LABEL: value},
        }});
        // A merge patch that names a resourceVersion is refused (409) if the pod changed since.
        if let Some(version) = self
            .seen
            .as_ref()
            .and_then(|seen| self.version_seen(&seen.pods, &name, &uid.0))
        {
            patch["metadata"]["resourceVersion"] = json!(version);
        }
        self.pods()
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|error| match error {
                // The patch's UID differs from the pod's: another pod under the same name.
                kube::Error::Api(status) if status.code == 422 && names_the_uid(&status) => {
                    EffectError::Conflict
                }
                error => effect_error(error),
            })
    }

    /// Sets the StatefulSet's replicas under the engine's own field manager, so that applying
    /// the owned objects never resets them.
    async fn set_replicas(&self, replicas: u8) -> Result<(), EffectError> {
        let statefulsets: Api<StatefulSet> =
            Api::namespaced(self.client.clone(), &self.objects.namespace);
        // An apply would create a missing StatefulSet (and fail on the missing fields).
        if statefulsets
            .get_opt(&self.objects.cluster)
            .await
            .map_err(effect_error)?
            .is_none()
        {
            return Err(EffectError::NotFound);
        }
        let params = PatchParams::apply(crate::resources::REPLICAS_MANAGER).force();
        let patch = crate::resources::replicas(&self.objects, replicas);
        statefulsets
            .patch(&self.objects.cluster, &params, &Patch::Apply(patch))
            .await
            .map(|_| ())
            .map_err(effect_error)
    }

    /// Creates the member's local PV on `node`, pre-bound to its PVC (`claimRef`), so that no
    /// other claim can take it. An existing PV of the same name is the same effect carried out
    /// before.
    async fn provision(
        &self,
        member: MemberId,
        node: &NodeName,
        generation: u32,
    ) -> Result<(), EffectError> {
        let name = self.objects.pv(member, generation);
        let volume: PersistentVolume = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "labels": {
                    "tandem.io/cluster": self.objects.cluster,
                    "tandem.io/namespace": self.objects.namespace,
                    "tandem.io/member": member.0.to_string(),
                },
            },
            "spec": {
                "capacity": {"storage": self.objects.storage_size},
                "volumeMode": "Filesystem",
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": self.objects.storage_class,
                "local": {"path": format!("{}/{name}", self.objects.local_root)},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node.0]}
                ]}]}},
                "claimRef": {
                    "namespace": self.objects.namespace,
                    "name": self.objects.pvc(member),
                },
            },
        }))
        .expect("a well-formed PV");
        match self.volumes().create(&post(), &volume).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(error) => Err(effect_error(error)),
        }
    }

    /// Creates the member's PVC naming its PV (`volumeName`): the PV binder binds the two at
    /// once. A PVC that exists unbound (the StatefulSet made it from its template) is bound to
    /// the PV by the PV's `claimRef`; one bound to another PV is a conflict: its volume must be
    /// released first.
    async fn bind(&self, member: MemberId, generation: u32) -> Result<(), EffectError> {
        let volume_name = self.objects.pv(member, generation);
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {
                "name": self.objects.pvc(member),
                "labels": {
                    "tandem.io/cluster": self.objects.cluster,
                    "app.kubernetes.io/instance": self.objects.cluster,
                },
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": self.objects.storage_class,
                "resources": {"requests": {"storage": self.objects.storage_size}},
                "volumeName": volume_name,
            },
        }))
        .expect("a well-formed PVC");
        match self.claims().create(&post(), &claim).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let existing = self
                    .claims()
                    .get(&self.objects.pvc(member))
                    .await
                    .map_err(effect_error)?;
                // The StatefulSet may have made the claim from its template first: unbound, it
                // is bound to the PV by the PV's `claimRef`, which names it.
                let bound_to = existing.spec.and_then(|spec| spec.volume_name);
                match bound_to {
                    None => Ok(()),
                    Some(bound) if bound == volume_name => Ok(()),
                    Some(_) => Err(EffectError::Conflict),
                }
            }
            Err(error) => Err(effect_error(error)),
        }
    }

    /// Releases a lost member's volume: its PVC (if it is still the PVC `pvc`), then its PV of
    /// `generation`, whose finalizers are cleared first (a PV on a node that is gone is never
    /// released by its protection controller).
    async fn release(
        &self,
        member: MemberId,
        pvc: Option<&PvcUid>,
        generation: u32,
    ) -> Result<(), EffectError> {
        if let Some(uid) = pvc {
            let name = self.objects.pvc(member);
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(uid.0.clone()),
                    resource_version: self
                        .seen
                        .as_ref()
                        .and_then(|seen| self.version_seen(&seen.claims, &name, &uid.0)),
                }),
                ..DeleteParams::default()
            };
            match self.claims().delete(&name, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(effect_error(error)),
            }
        }
        // The PV is deleted first, then its finalizers cleared: the protection controller puts
        // its finalizer back on a PV that is not being deleted.
        let name = self.objects.pv(member, generation);
        // The PV as last seen, if it was: its UID and version make the deletion conditional.
        let seen = self.seen.as_ref().and_then(|seen| {
            seen.volumes
                .get(&ObjectRef::new(&name))
                .map(|volume| (volume.uid(), volume.resource_version()))
        });
        let params = DeleteParams {
            preconditions: seen.clone().map(|(uid, resource_version)| Preconditions {
                uid,
                resource_version,
            }),
            ..DeleteParams::default()
        };
        let deleted = match self.volumes().delete(&name, &params).await {
            Ok(deleted) => deleted.left(),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(error) => return Err(effect_error(error)),
        };
        // The UID makes the patch refuse another PV made under the same name since.
        let uid = deleted
            .and_then(|volume| volume.uid())
            .or_else(|| seen.and_then(|(uid, _)| uid));
        let mut clear = json!({"metadata": {"finalizers": null}});
        if let Some(uid) = uid {
            clear["metadata"]["uid"] = json!(uid);
        }
        match self
            .volumes()
            .patch(&name, &PatchParams::default(), &Patch::Merge(&clear))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 422 && names_the_uid(&status) => {
                Err(EffectError::Conflict)
            }
            Err(error) => Err(effect_error(error)),
        }
    }
}

/// Whether the API server refused a write for its `metadata.uid`.
fn names_the_uid(status: &kube::core::Status) -> bool {
    status.details.as_ref().is_some_and(|details| {
        details
            .causes
            .iter()
            .any(|cause| cause.field == "metadata.uid")
    })
}

fn post() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    }
}

/// The engine's view of a failed API call. A failure other than the expected ones (an object
/// gone, a precondition that no longer holds) is logged with the API server's message, which
/// names what was refused (a permission the operator lacks, a value the server does not take).
pub fn effect_error(error: kube::Error) -> EffectError {
    match &error {
        kube::Error::Api(status) if matches!(status.code, 404 | 409) => {}
        kube::Error::Api(status) => tracing::warn!(
            code = status.code,
            reason = %status.reason,
            detail = %status.message,
            "the API server refused a call"
        ),
        other => tracing::warn!(error = %other, "an API call failed"),
    }
    match error {
        kube::Error::Api(status) => match status.code {
            404 => EffectError::NotFound,
            409 => EffectError::Conflict,
            408 | 429 | 504 => EffectError::Timeout,
            code if code >= 500 => EffectError::ServerError,
            _ => EffectError::Rejected,
        },
        _ => EffectError::Timeout,
    }
}
