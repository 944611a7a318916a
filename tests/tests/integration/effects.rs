//! The engine's Kubernetes effects, carried out by `tandem_kube::effects` against the real API
//! server: local-PV provisioning and PVC pre-binding, pod deletion under a UID precondition,
//! deletions and labels refused when made on a view of the pod that is out of date,
//! the release of a lost member's volume, and the StatefulSet's replicas; and the engine's
//! reports, carried out by `tandem_kube::report`: the status subresource and Events.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::ListParams;
use kube::api::{Api, PostParams};
use libtest_mimic::Trial;
use serde_json::json;
use tandem_crds::ZenithCluster;
use tandem_engine::{
    Action, ClusterState, ConfigHash, EffectError, Health, Lsn, MemberId, MemberStatus, NodeName,
    Outcome, PodUid, PvcUid, Role, Seq, Status, Timestamp,
};
use tandem_kube::effects::{ClusterObjects, KubeEffects};
use tandem_kube::report::Reporter;
use tandem_kube::resources;
use tandem_tests::cluster::{ControlPlane, LOCAL_STORAGE_CLASS, NODES};
use tandem_tests::examples::Example;
use tandem_tests::runner::control_plane;

use crate::support::{install_crd, wait_for};

pub fn tests() -> Vec<Trial> {
    vec![
        control_plane(
            "effects::volumes_are_provisioned_bound_and_released",
            volumes_are_provisioned_bound_and_released,
        ),
        control_plane(
            "effects::replicas_follow_the_engine",
            replicas_follow_the_engine,
        ),
        control_plane(
            "effects::pods_are_labelled_by_role",
            pods_are_labelled_by_role,
        ),
        control_plane(
            "effects::a_call_on_an_outdated_view_is_refused",
            a_call_on_an_outdated_view_is_refused,
        ),
        control_plane(
            "effects::owned_resources_are_applied",
            owned_resources_are_applied,
        ),
        control_plane(
            "effects::status_and_events_are_written",
            status_and_events_are_written,
        ),
    ]
}

fn objects(namespace: &str) -> ClusterObjects {
    ClusterObjects {
        namespace: namespace.to_string(),
        cluster: "zc".into(),
        storage_class: LOCAL_STORAGE_CLASS.into(),
        storage_size: "1Gi".into(),
        local_root: "/mnt/tandem".into(),
    }
}

async fn run(effects: &KubeEffects, action: Action) -> Outcome {
    effects
        .carry_out(&action)
        .await
        .expect("a Kubernetes effect")
}

async fn volumes_are_provisioned_bound_and_released(cp: Arc<ControlPlane>) {
    let client = cp.client();
    let namespace = cp.namespace("effects-volumes").await.expect("a namespace");
    let objects = objects(&namespace);
    let effects = KubeEffects::new(client.clone(), objects.clone());
    let member = MemberId(0);
    let node = NodeName(NODES[1].to_string());

    // Provisioning is idempotent: the second call finds the PV made by the first.
    for _ in 0..2 {
        let provision = Action::ProvisionLocalPv {
            member,
            node: node.clone(),
            generation: 1,
        };
        assert_eq!(run(&effects, provision).await, Outcome::Ok);
    }
    assert_eq!(
        run(
            &effects,
            Action::BindPvc {
                member,
                generation: 1
            }
        )
        .await,
        Outcome::Ok
    );
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let claim = wait_for("the PVC to be Bound to its PV", || async {
        let claim = claims.get(&objects.pvc(member)).await.ok()?;
        let phase = claim.status.as_ref()?.phase.as_deref()?;
        (phase == "Bound").then_some(claim)
    })
    .await;
    assert_eq!(
        claim
            .spec
            .as_ref()
            .and_then(|spec| spec.volume_name.clone()),
        Some(objects.pv(member, 1))
    );
    // The watches' view of it, as the engine gets it.
    let bound_volume = Api::<PersistentVolume>::all(client.clone())
        .get(&objects.pv(member, 1))
        .await
        .expect("the PV");
    let seen = tandem_kube::observe::volume(Some(&claim), Some(&bound_volume));
    assert_eq!(seen.pvc, claim.metadata.uid.clone().map(PvcUid));
    assert_eq!(seen.pv.map(|(_, node)| node), Some(node.clone()));
    assert!(!seen.lost);
    // Binding the claim to another generation's PV is a conflict while it holds this one.
    assert_eq!(
        run(
            &effects,
            Action::BindPvc {
                member,
                generation: 2
            }
        )
        .await,
        Outcome::Failed(EffectError::Conflict)
    );

    // The member's pod, on its claim, as the StatefulSet would make it; kwok runs it.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": objects.pod(member)},
        "spec": {
            "containers": [{"name": "zenith", "image": "zenith:test",
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data",
                         "persistentVolumeClaim": {"claimName": objects.pvc(member)}}],
        },
    }))
    .expect("a well-formed pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("the pod");
    let running = wait_for("the pod to run on the PV's node", || async {
        let pod = pods.get(&objects.pod(member)).await.ok()?;
        let phase = pod.status.as_ref()?.phase.as_deref()?;
        (phase == "Running").then_some(pod)
    })
    .await;
    assert_eq!(
        running
            .spec
            .as_ref()
            .and_then(|spec| spec.node_name.as_deref()),
        Some(node.0.as_str()),
        "the local PV pins the pod to its node"
    );
    let uid = running.metadata.uid.clone().expect("a UID");
    let seen = tandem_kube::observe::pod(&running).expect("observed");
    assert!(seen.running && !seen.deleting);
    assert_eq!(seen.node, Some(node.clone()));

    // A deletion under another pod's UID is refused by the API server and deletes nothing.
    let stale = Action::DeletePod {
        member,
        uid: PodUid("not-this-pod".into()),
        grace_period_s: 0,
    };
    assert_eq!(
        run(&effects, stale).await,
        Outcome::Failed(EffectError::Conflict)
    );
    assert!(
        pods.get(&objects.pod(member)).await.is_ok(),
        "the pod is still there"
    );
    let delete = Action::DeletePod {
        member,
        uid: PodUid(uid),
        grace_period_s: 0,
    };
    assert_eq!(run(&effects, delete.clone()).await, Outcome::Ok);
    wait_for("the pod to be gone", || async {
        pods.get_opt(&objects.pod(member))
            .await
            .ok()
            .and_then(|pod| pod.is_none().then_some(()))
    })
    .await;
    // Deleting it again finds nothing.
    assert_eq!(
        run(&effects, delete).await,
        Outcome::Failed(EffectError::NotFound)
    );

    // The member's volume is released: its claim under a UID precondition, then its PV with
    // its finalizers cleared.
    let pvc_uid = claim.metadata.uid.clone().expect("a UID");
    let wrong = Action::ReleaseVolume {
        member,
        pvc: Some(PvcUid("not-this-claim".into())),
        generation: 1,
    };
    assert_eq!(
        run(&effects, wrong).await,
        Outcome::Failed(EffectError::Conflict)
    );
    let release = Action::ReleaseVolume {
        member,
        pvc: Some(PvcUid(pvc_uid)),
        generation: 1,
    };
    assert_eq!(run(&effects, release.clone()).await, Outcome::Ok);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    wait_for("the PVC and the PV to be gone", || async {
        let claim = claims.get_opt(&objects.pvc(member)).await.ok()?;
        let volume = volumes.get_opt(&objects.pv(member, 1)).await.ok()?;
        (claim.is_none() && volume.is_none()).then_some(())
    })
    .await;
    // Releasing what is gone already is done.
    assert_eq!(run(&effects, release).await, Outcome::Ok);
}

async fn replicas_follow_the_engine(cp: Arc<ControlPlane>) {
    let client = cp.client();
    let namespace = cp.namespace("effects-replicas").await.expect("a namespace");
    let objects = objects(&namespace);
    let effects = KubeEffects::new(client.clone(), objects.clone());
    // Without its StatefulSet, the effect fails as not found.
    assert_eq!(
        run(&effects, Action::SetReplicas { replicas: 0 }).await,
        Outcome::Failed(EffectError::NotFound)
    );
    let statefulset: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": objects.cluster},
        "spec": {
            "serviceName": objects.cluster,
            "replicas": 2,
            "selector": {"matchLabels": {"app": "zc"}},
            "template": {
                "metadata": {"labels": {"app": "zc"}},
                "spec": {"containers": [{"name": "zenith", "image": "zenith:test"}]},
            },
        },
    }))
    .expect("a well-formed StatefulSet");
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    statefulsets
        .create(&PostParams::default(), &statefulset)
        .await
        .expect("the StatefulSet");
    assert_eq!(
        run(&effects, Action::SetReplicas { replicas: 0 }).await,
        Outcome::Ok
    );
    let replicas = statefulsets
        .get(&objects.cluster)
        .await
        .expect("the StatefulSet")
        .spec
        .replicas;
    assert_eq!(replicas, Some(0));
}

/// Creates member 0's pod, `zc-0`, with an `app` label of its own.
async fn create_member_pod(pods: &Api<Pod>) -> Pod {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "zc-0", "labels": {"app": "zc"}},
        "spec": {"containers": [{"name": "zenith", "image": "zenith:test"}]},
    }))
    .expect("a well-formed pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("the pod")
}

async fn pods_are_labelled_by_role(cp: Arc<ControlPlane>) {
    let client = cp.client();
    let namespace = cp.namespace("effects-labels").await.expect("a namespace");
    let objects = objects(&namespace);
    let effects = KubeEffects::new(client.clone(), objects.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pod = create_member_pod(&pods).await;
    let uid = PodUid(pod.metadata.uid.clone().expect("a UID"));
    let label = |role: Role, uid: PodUid| Action::LabelPod {
        member: MemberId(0),
        uid,
        role,
    };
    let role_label = || async {
        let pod = pods.get("zc-0").await.expect("the pod");
        let labels = pod.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("app").map(String::as_str),
            Some("zc"),
            "other labels stay"
        );
        labels.get(resources::ROLE_LABEL).cloned()
    };
    assert_eq!(
        run(&effects, label(Role::Active, uid.clone())).await,
        Outcome::Ok
    );
    assert_eq!(role_label().await.as_deref(), Some(resources::ROLE_ACTIVE));
    // Another pod under the same name is not labelled: the UID is a precondition.
    assert_eq!(
        run(&effects, label(Role::Standby, PodUid("another-pod".into()))).await,
        Outcome::Failed(EffectError::Conflict)
    );
    assert_eq!(role_label().await.as_deref(), Some(resources::ROLE_ACTIVE));
    assert_eq!(
        run(&effects, label(Role::Standby, uid.clone())).await,
        Outcome::Ok
    );
    assert_eq!(role_label().await.as_deref(), Some(resources::ROLE_STANDBY));
    assert_eq!(run(&effects, label(Role::None, uid)).await, Outcome::Ok);
    assert_eq!(role_label().await, None);
    // A pod that is gone cannot be labelled.
    let gone = Action::LabelPod {
        member: MemberId(1),
        uid: PodUid("u".into()),
        role: Role::None,
    };
    assert_eq!(
        run(&effects, gone).await,
        Outcome::Failed(EffectError::NotFound)
    );
}

/// A deposed leader's view: its watches saw the pod, then stopped seeing; the new leader changed
/// the pod since. Its label and its deletion are refused; with the view brought up to date, the
/// deletion goes through.
async fn a_call_on_an_outdated_view_is_refused(cp: Arc<ControlPlane>) {
    use kube::runtime::{reflector, watcher};
    let client = cp.client();
    let namespace = cp.namespace("effects-outdated").await.expect("a namespace");
    let objects = objects(&namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pod = create_member_pod(&pods).await;
    let uid = PodUid(pod.metadata.uid.clone().expect("a UID"));
    // The view, as a reflector store fed what was seen and nothing since.
    let (seen, mut writer) = reflector::store::<Pod>();
    writer.apply_watcher_event(&watcher::Event::Apply(pod.clone()));
    let effects = KubeEffects::new(client.clone(), objects.clone()).observing(
        seen,
        reflector::store().0,
        reflector::store().0,
    );
    // The new leader labels it.
    pods.patch(
        "zc-0",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {
            resources::ROLE_LABEL: resources::ROLE_ACTIVE,
        }}})),
    )
    .await
    .expect("the new leader's label");
    let label = Action::LabelPod {
        member: MemberId(0),
        uid: uid.clone(),
        role: Role::Standby,
    };
    assert_eq!(
        run(&effects, label).await,
        Outcome::Failed(EffectError::Conflict)
    );
    let delete = Action::DeletePod {
        member: MemberId(0),
        uid: uid.clone(),
        grace_period_s: 0,
    };
    assert_eq!(
        run(&effects, delete.clone()).await,
        Outcome::Failed(EffectError::Conflict)
    );
    let now = pods.get("zc-0").await.expect("the pod is still there");
    assert_eq!(
        now.metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(resources::ROLE_LABEL))
            .map(String::as_str),
        Some(resources::ROLE_ACTIVE),
        "the new leader's label stands"
    );
    // Seen as it is now, the pod is deleted.
    writer.apply_watcher_event(&watcher::Event::Apply(now));
    assert_eq!(run(&effects, delete).await, Outcome::Ok);
    wait_for("the pod to be gone", || async {
        pods.get_opt("zc-0")
            .await
            .ok()
            .and_then(|pod| pod.is_none().then_some(()))
    })
    .await;
}

fn engine_status(state: ClusterState, previous: Option<ClusterState>, at_ms: u64) -> Status {
    let member = |number: u8, role: Role| MemberStatus {
        member: MemberId(number),
        role,
        health: Health::Healthy,
        node: Some(NodeName(NODES[usize::from(number)].to_string())),
        lsn: Lsn(4096),
        config_hash: ConfigHash(7),
    };
    Status {
        state,
        previous_state: previous,
        since: Timestamp(at_ms),
        reason: "every member is Healthy".into(),
        active: Some(MemberId(0)),
        members: vec![member(0, Role::Active), member(1, Role::Standby)],
        seq: Seq(12),
    }
}

async fn status_and_events_are_written(cp: Arc<ControlPlane>) {
    let client = cp.client();
    install_crd(&client).await;
    let namespace = cp.namespace("effects-status").await.expect("a namespace");
    let mut object: ZenithCluster =
        serde_json::from_value(Example::MasterSlave.json()).expect("the example");
    object.metadata.name = Some("zc".into());
    object.metadata.namespace = None;
    let clusters: Api<ZenithCluster> = Api::namespaced(client.clone(), &namespace);
    clusters
        .create(&PostParams::default(), &object)
        .await
        .expect("the ZenithCluster");
    let reporter = Reporter::new(client.clone(), objects(&namespace), 0);
    let created = 1_780_000_000_000;
    for (state, previous, at) in [
        (ClusterState::Initializing, None, created),
        (
            ClusterState::Normal,
            Some(ClusterState::Initializing),
            created + 90_000,
        ),
    ] {
        let update = Action::UpdateStatus(Box::new(engine_status(state, previous, at)));
        assert_eq!(reporter.carry_out(&update).await, Some(Outcome::Ok));
    }
    let status = clusters
        .get_status("zc")
        .await
        .expect("the object")
        .status
        .expect("a status");
    assert_eq!(status.state.as_deref(), Some("Normal"));
    assert_eq!(status.previous_state.as_deref(), Some("Initializing"));
    assert_eq!(status.active_member.as_deref(), Some("zc-0"));
    assert_eq!(status.last_sequence, Some(12));
    let members: Vec<(String, Option<String>)> = status
        .members
        .iter()
        .map(|member| (member.name.clone(), member.role.clone()))
        .collect();
    assert_eq!(
        members,
        vec![
            ("zc-0".to_string(), Some("Active".to_string())),
            ("zc-1".to_string(), Some("Standby".to_string())),
        ]
    );
    let ready = status
        .conditions
        .iter()
        .find(|condition| condition.type_ == "Ready")
        .expect("a Ready condition");
    assert_eq!(ready.status, "True");
    assert_eq!(status.transitions.len(), 1);
    assert_eq!(status.transitions[0].from, "Initializing");
    assert_eq!(status.transitions[0].to, "Normal");

    let event = Action::EmitEvent {
        warning: false,
        reason: "Initialized".into(),
        message: "was Initializing, now Normal: every member is Healthy".into(),
    };
    assert_eq!(reporter.carry_out(&event).await, Some(Outcome::Ok));
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let listed = events
        .list(&ListParams::default().fields("involvedObject.name=zc"))
        .await
        .expect("the events");
    let found = listed
        .items
        .iter()
        .find(|event| event.reason.as_deref() == Some("Initialized"))
        .expect("the Initialized event");
    assert_eq!(found.type_.as_deref(), Some("Normal"));
    assert_eq!(found.involved_object.kind.as_deref(), Some("ZenithCluster"));
    // A report about a cluster that does not exist fails as not found.
    let mut gone = objects(&namespace);
    gone.cluster = "not-there".into();
    let reporter = Reporter::new(client, gone, 0);
    let update = Action::UpdateStatus(Box::new(engine_status(ClusterState::Normal, None, created)));
    assert_eq!(
        reporter.carry_out(&update).await,
        Some(Outcome::Failed(EffectError::NotFound))
    );
}

async fn owned_resources_are_applied(cp: Arc<ControlPlane>) {
    let client = cp.client();
    install_crd(&client).await;
    let namespace = cp.namespace("effects-owned").await.expect("a namespace");
    let mut object: ZenithCluster =
        serde_json::from_value(Example::MasterSlave.json()).expect("the example");
    object.metadata.name = Some("zc".into());
    object.metadata.namespace = None;
    let clusters: Api<ZenithCluster> = Api::namespaced(client.clone(), &namespace);
    let cluster = clusters
        .create(&PostParams::default(), &object)
        .await
        .expect("the ZenithCluster");
    let objects = ClusterObjects {
        storage_class: cluster.spec.zenith_spec.storage_class_name.clone(),
        storage_size: cluster.spec.zenith_spec.storage_size.clone(),
        ..objects(&namespace)
    };
    for _ in 0..2 {
        resources::apply(&client, &cluster, &objects)
            .await
            .expect("applied");
    }
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let statefulset = statefulsets.get("zc").await.expect("the StatefulSet");
    assert_eq!(
        statefulset.spec.replicas,
        Some(0),
        "no pod runs before the engine asks for one"
    );
    let owner = statefulset
        .metadata
        .owner_references
        .as_ref()
        .and_then(|owners| owners.first())
        .expect("an owner");
    assert_eq!(Some(&owner.uid), cluster.metadata.uid.as_ref());
    assert_eq!(owner.controller, Some(true));
    let spec = &statefulset.spec;
    assert_eq!(
        spec.update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref()),
        Some("OnDelete"),
        "the engine replaces pods itself"
    );
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    let claims: Vec<String> = spec
        .volume_claim_templates
        .iter()
        .flatten()
        .filter_map(|claim| claim.metadata.name.clone())
        .collect();
    assert_eq!(claims, vec!["data".to_string(), "zenith-log".to_string()]);
    let pod = spec.template.spec.as_ref().expect("a pod spec");
    let projected = pod
        .volumes
        .iter()
        .flatten()
        .find(|volume| volume.name == resources::CONFIG_VOLUME)
        .and_then(|volume| volume.projected.as_ref())
        .expect("the projected configuration");
    assert_eq!(projected.sources.as_ref().map(Vec::len), Some(4));
    let first = &pod.containers[0];
    let probe = first
        .readiness_probe
        .as_ref()
        .and_then(|probe| probe.tcp_socket.as_ref())
        .expect("a readiness probe");
    assert_eq!(
        probe.port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(32080)
    );
    // The engine owns the replicas: an apply after SetReplicas leaves them alone.
    let effects = KubeEffects::new(client.clone(), objects.clone());
    assert_eq!(
        run(&effects, Action::SetReplicas { replicas: 2 }).await,
        Outcome::Ok
    );
    resources::apply(&client, &cluster, &objects)
        .await
        .expect("applied");
    let replicas = statefulsets
        .get("zc")
        .await
        .expect("the StatefulSet")
        .spec
        .replicas;
    assert_eq!(replicas, Some(2));
    // The client Services select the member by role.
    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let headless = services.get("zc").await.expect("the headless Service");
    assert_eq!(
        headless.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()),
        Some("None")
    );
    for (name, role) in [("zc-rw", "active"), ("zc-ro", "standby")] {
        let service = services.get(name).await.expect("a client Service");
        let selector = service
            .spec
            .and_then(|spec| spec.selector)
            .unwrap_or_default();
        assert_eq!(
            selector.get(resources::ROLE_LABEL).map(String::as_str),
            Some(role)
        );
    }
}
