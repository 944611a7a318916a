//! A Zenith StatefulSet on local PVs: proof that the controller-manager (StatefulSet, PV
//! binder, PV protection), the scheduler (volume binding, node affinity) and kwok (pods Running
//! on fake nodes) are really at work.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use libtest_mimic::Trial;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tandem_tests::cluster::{ControlPlane, NODES};
use tandem_tests::runner::control_plane;

use crate::support::{wait_for, wait_for_within};

/// How long a PV blocked by its finalizer is watched to make sure it stays.
const BLOCKED_FOR: Duration = Duration::from_secs(3);

pub fn tests() -> Vec<Trial> {
    vec![
        control_plane(
            "workloads::statefulset_on_local_pvs_runs_on_the_pvs_nodes",
            statefulset_on_local_pvs_runs_on_the_pvs_nodes,
        ),
        control_plane(
            "workloads::pv_finalizer_blocks_deletion_until_cleared",
            pv_finalizer_blocks_deletion_until_cleared,
        ),
    ]
}

fn from_json<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("the object is well formed")
}

/// A StorageClass of the test's own (so that its PVs bind to its claims only), shaped like the
/// usual `local-storage` class of local PVs: no provisioner, binding waits for the first consumer.
async fn storage_class(client: &Client, namespace: &str) -> String {
    let name = format!("{namespace}-local");
    let class: StorageClass = from_json(json!({
        "metadata": {"name": name},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
    }));
    Api::<StorageClass>::all(client.clone())
        .create(&PostParams::default(), &class)
        .await
        .expect("storage class");
    name
}

/// A local PV on `node`, as the operator provisions them (`local.path` plus the required node
/// affinity).
async fn local_pv(client: &Client, name: &str, class: &str, node: &str) {
    let volume: PersistentVolume = from_json(json!({
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "2Gi"},
            "volumeMode": "Filesystem",
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": class,
            "local": {"path": format!("/mnt/disks/{name}")},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
            ]}]}},
        },
    }));
    Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &volume)
        .await
        .expect("local PV");
}

fn is_running(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        == Some("Running")
}

/// The node of each Running pod of the StatefulSet, once all `replicas` run.
async fn running_pods(pods: &Api<Pod>, replicas: usize) -> BTreeMap<String, (String, String)> {
    wait_for("the StatefulSet's pods to be Running", || async {
        let list = pods.list(&Default::default()).await.ok()?;
        let running: BTreeMap<String, (String, String)> = list
            .items
            .iter()
            .filter(|pod| is_running(pod) && pod.metadata.deletion_timestamp.is_none())
            .filter_map(|pod| {
                let node = pod.spec.as_ref()?.node_name.clone()?;
                Some((
                    pod.metadata.name.clone()?,
                    (node, pod.metadata.uid.clone()?),
                ))
            })
            .collect();
        (running.len() == replicas).then_some(running)
    })
    .await
}

async fn statefulset_on_local_pvs_runs_on_the_pvs_nodes(cp: Arc<ControlPlane>) {
    let client = cp.client();
    let namespace = cp.namespace("statefulset").await.expect("a namespace");
    let class = storage_class(&client, &namespace).await;
    for (number, node) in NODES.iter().enumerate() {
        local_pv(&client, &format!("{namespace}-pv-{number}"), &class, node).await;
    }
    let service: Service = from_json(json!({
        "metadata": {"name": "local-pv-service"},
        "spec": {"clusterIP": "None", "selector": {"app": "local-test"},
                 "ports": [{"port": 8090, "targetPort": 80, "protocol": "TCP"}]},
    }));
    Api::<Service>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &service)
        .await
        .expect("the headless service");
    // A Zenith StatefulSet, with the test's storage class and ReadWriteOnce claims.
    let statefulset: StatefulSet = from_json(json!({
        "metadata": {"name": "local-test"},
        "spec": {
            "serviceName": "local-pv-service",
            "replicas": 3,
            "selector": {"matchLabels": {"app": "local-test"}},
            "template": {
                "metadata": {"labels": {"app": "local-test"}},
                "spec": {"containers": [{
                    "name": "test-container", "image": "nginx:latest",
                    "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
                    "volumeMounts": [{"name": "local-vol", "mountPath": "/usr/test-pod"}],
                }]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "local-vol"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                         "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    }));
    Api::<StatefulSet>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &statefulset)
        .await
        .expect("the StatefulSet");

    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let running = running_pods(&pods, 3).await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let mut nodes_used = Vec::new();
    for (pod, (node, _)) in &running {
        let claim = claims
            .get(&format!("local-vol-{pod}"))
            .await
            .expect("the pod's claim");
        let volume_name = claim
            .spec
            .and_then(|spec| spec.volume_name)
            .expect("the claim is bound");
        let volume = volumes.get(&volume_name).await.expect("the bound PV");
        assert_eq!(
            tandem_kube::observe::pv_node(&volume)
                .map(|node| node.0)
                .as_deref(),
            Some(node.as_str()),
            "{pod} runs off its PV's node"
        );
        nodes_used.push(node.clone());
    }
    nodes_used.sort();
    nodes_used.dedup();
    assert_eq!(
        nodes_used.len(),
        3,
        "one pod per local PV, each on its own node"
    );

    // A deleted pod comes back (the StatefulSet controller), on the node of its volume.
    let (node, uid) = running["local-test-1"].clone();
    pods.delete("local-test-1", &DeleteParams::default())
        .await
        .expect("the pod is deleted");
    let again = wait_for("local-test-1 to be recreated and Running", || async {
        let pod = pods.get_opt("local-test-1").await.ok()??;
        let recreated = pod.metadata.uid.as_deref() != Some(uid.as_str()) && is_running(&pod);
        recreated.then_some(pod)
    })
    .await;
    assert_eq!(
        again.spec.and_then(|spec| spec.node_name).as_deref(),
        Some(node.as_str())
    );
}

/// The clean-up problem of local PVs: a PV in use is not deleted while its finalizer stands; clearing
/// the finalizers releases it.
async fn pv_finalizer_blocks_deletion_until_cleared(cp: Arc<ControlPlane>) {
    let client = cp.client();
    let namespace = cp.namespace("finalizer").await.expect("a namespace");
    let class = storage_class(&client, &namespace).await;
    let volume_name = format!("{namespace}-pv");
    local_pv(&client, &volume_name, &class, NODES[0]).await;
    let claim: PersistentVolumeClaim = from_json(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                 "resources": {"requests": {"storage": "1Gi"}}},
    }));
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &claim)
        .await
        .expect("the claim");
    let pod: Pod = from_json(json!({
        "metadata": {"name": "user"},
        "spec": {
            "containers": [{"name": "user", "image": "busybox",
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    }));
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("the pod");
    wait_for("the pod using the PV to run", || async {
        pods.get("user").await.ok().filter(is_running)
    })
    .await;

    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let volume = volumes.get(&volume_name).await.expect("the PV");
    let finalizers = volume.metadata.finalizers.clone().unwrap_or_default();
    assert!(
        finalizers
            .iter()
            .any(|f| f == "kubernetes.io/pv-protection"),
        "{finalizers:?}"
    );

    volumes
        .delete(&volume_name, &DeleteParams::default())
        .await
        .expect("deletion is accepted");
    // Deletion blocks: the PV stays, marked for deletion, while its finalizer stands.
    tokio::time::sleep(BLOCKED_FOR).await;
    let blocked = volumes
        .get(&volume_name)
        .await
        .expect("the PV is still there");
    assert!(
        blocked.metadata.deletion_timestamp.is_some(),
        "the PV is marked for deletion"
    );

    let clear = json!({"metadata": {"finalizers": []}});
    volumes
        .patch(&volume_name, &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .expect("the finalizers are cleared");
    wait_for_within("the PV to be gone", Duration::from_secs(30), || async {
        matches!(volumes.get_opt(&volume_name).await, Ok(None)).then_some(())
    })
    .await;
}
