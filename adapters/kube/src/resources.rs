//! The objects the operator owns for each `ZenithCluster`, applied with server-side apply under
//! one field manager: the StatefulSet of the members, the headless Service that names them, and
//! the client Services `-rw` (the active) and `-ro` (the standby).
//!
//! The StatefulSet's `replicas` is not applied: the engine sets it (`SetReplicas`), and an apply
//! that owned the field would undo a stop. Its update strategy is `OnDelete`: the engine replaces
//! pods itself, in the order the rolling configuration change needs.

use crate::effects::{ClusterObjects, FIELD_MANAGER};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Container, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tandem_crds::ZenithCluster;

/// The label that names a member's role on its pod: the client Services select on it.
pub const ROLE_LABEL: &str = "tandem.io/role";
/// The label value of the active member's pod.
pub const ROLE_ACTIVE: &str = "active";
/// The label value of the standby's pod.
pub const ROLE_STANDBY: &str = "standby";
/// The name of the data volume's claim template: member `N`'s claim is `data-<cluster>-N`.
pub const DATA_VOLUME: &str = "data";
/// Where the projected configuration (ConfigMaps and Secrets) is mounted in every container.
pub const CONFIG_MOUNT: &str = "/etc/zenith/config";
/// The name of the projected configuration volume.
pub const CONFIG_VOLUME: &str = "zenith-config";

/// The labels every owned object and every member's pod carries.
fn labels(cluster: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "zenith",
        "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
    })
}

fn owner(cluster: &ZenithCluster) -> Value {
    json!({
        "apiVersion": ZenithCluster::api_version(&()),
        "kind": ZenithCluster::kind(&()),
        "name": cluster.name_any(),
        "uid": cluster.metadata.uid.clone().unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The ports the members serve on: those of the first container, as the Services expose them.
fn ports(containers: &[Container]) -> Vec<Value> {
    containers
        .first()
        .and_then(|container| container.ports.clone())
        .unwrap_or_default()
        .iter()
        .map(|port| {
            json!({
                "name": port.name.clone().unwrap_or_else(|| format!("port-{}", port.container_port)),
                "port": port.container_port,
                "targetPort": port.container_port,
                "protocol": port.protocol.clone().unwrap_or_else(|| "TCP".into()),
            })
        })
        .collect()
}

/// The annotation on each member's pod that names its configuration hash: the agent reports it,
/// and the engine replaces, one member at a time, a pod that runs another configuration.
pub const CONFIG_HASH_ANNOTATION: &str = "tandem.io/config-hash";

/// The hash of what a member runs: the pod template, the package and version of the database
/// and of the agent, and the names of their ConfigMaps and Secrets (FNV-1a over their JSON).
pub fn config_hash(cluster: &ZenithCluster) -> tandem_engine::ConfigHash {
    let spec = &cluster.spec;
    let zenith = &spec.zenith_spec;
    let runs = json!({
        "template": spec.template,
        "version": zenith.version,
        "packageName": zenith.package_name,
        "packageType": zenith.package_type,
        "replicationSslMandatory": zenith.replication_ssl_mandatory,
        "instanceConfigMap": zenith.instance_config_map,
        "dbConfigMap": zenith.db_config_map,
        "dbSecrets": zenith.db_secrets,
        "dbSpecs": zenith.db_specs,
        "agent": spec.agent_spec,
    });
    let bytes = serde_json::to_vec(&runs).expect("JSON serializes");
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    tandem_engine::ConfigHash(hash)
}

/// The StatefulSet of the members, as applied.
pub fn statefulset(cluster: &ZenithCluster, objects: &ClusterObjects) -> Value {
    let spec = &cluster.spec;
    let template = spec.template.clone().unwrap_or_default();
    let pod = template.spec.unwrap_or_default();
    let mut containers = pod.containers.clone();
    // Every container sees the configuration; the first one is probed for readiness when the
    // template does not say how.
    for container in &mut containers {
        let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
        mounts.push(
            serde_json::from_value(json!({
                "name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT, "readOnly": true,
            }))
            .expect("a well-formed mount"),
        );
    }
    if let Some(first) = containers.first_mut()
        && first.readiness_probe.is_none()
        && let Some(port) = first
            .ports
            .as_ref()
            .and_then(|ports| ports.first())
            .map(|port| port.container_port)
    {
        first.readiness_probe = Some(
            serde_json::from_value(json!({
                "tcpSocket": {"port": port},
                "periodSeconds": 5,
                "failureThreshold": 3,
            }))
            .expect("a well-formed probe"),
        );
    }
    let zenith = &spec.zenith_spec;
    let mut sources: Vec<Value> = Vec::new();
    for name in zenith
        .instance_config_map
        .iter()
        .chain(&zenith.db_config_map)
        .chain(&spec.agent_spec.agent_config)
    {
        sources.push(json!({"configMap": {"name": name}}));
    }
    for name in &zenith.db_secrets {
        sources.push(json!({"secret": {"name": name}}));
    }
    let mut volumes: Vec<Value> = pod
        .volumes
        .iter()
        .map(|volume| serde_json::to_value(volume).expect("a volume serializes"))
        .collect();
    volumes.push(json!({"name": CONFIG_VOLUME, "projected": {"sources": sources}}));
    let mut claims = vec![json!({
        "metadata": {"name": DATA_VOLUME},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": objects.storage_class,
            "resources": {"requests": {"storage": objects.storage_size}},
        },
    })];
    claims.extend(
        spec.volume_claim_templates
            .iter()
            .map(|claim| serde_json::to_value(claim).expect("a claim serializes")),
    );
    let name = &objects.cluster;
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name,
            "namespace": objects.namespace,
            "labels": labels(name),
            "ownerReferences": [owner(cluster)],
        },
        "spec": {
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": labels(name)},
            "template": {
                "metadata": {
                    "labels": labels(name),
                    "annotations": {
                        CONFIG_HASH_ANNOTATION: format!("{:016x}", config_hash(cluster).0),
                    },
                },
                "spec": {
                    "affinity": template.affinity,
                    "initContainers": pod.init_containers,
                    "containers": containers,
                    "volumes": volumes,
                },
            },
            "volumeClaimTemplates": claims,
        },
    })
}

/// The Services: the headless one that names the members, `-rw` for the active and `-ro` for
/// the standby.
pub fn services(cluster: &ZenithCluster, objects: &ClusterObjects) -> Vec<Value> {
    let name = &objects.cluster;
    let containers = cluster
        .spec
        .template
        .as_ref()
        .and_then(|template| template.spec.as_ref())
        .map(|pod| pod.containers.clone())
        .unwrap_or_default();
    let ports = ports(&containers);
    let service = |service: String, headless: bool, role: Option<&str>| {
        let mut selector = labels(name);
        if let (Some(role), Some(map)) = (role, selector.as_object_mut()) {
            map.insert(ROLE_LABEL.into(), Value::String(role.into()));
        }
        let mut spec = json!({"selector": selector, "ports": ports});
        if headless {
            spec["clusterIP"] = json!("None");
            spec["publishNotReadyAddresses"] = json!(true);
        }
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": service,
                "namespace": objects.namespace,
                "labels": labels(name),
                "ownerReferences": [owner(cluster)],
            },
            "spec": spec,
        })
    };
    vec![
        service(name.clone(), true, None),
        service(format!("{name}-rw"), false, Some(ROLE_ACTIVE)),
        service(format!("{name}-ro"), false, Some(ROLE_STANDBY)),
    ]
}

/// The field manager of the StatefulSet's `replicas`, which the engine sets
/// (`Action::SetReplicas`); every other owned field is [`FIELD_MANAGER`]'s.
pub const REPLICAS_MANAGER: &str = "tandem-replicas";

/// The StatefulSet's `replicas` alone, as [`REPLICAS_MANAGER`] applies it.
pub fn replicas(objects: &ClusterObjects, replicas: u8) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": objects.cluster, "namespace": objects.namespace},
        "spec": {"replicas": replicas},
    })
}

/// Applies every owned object (server-side apply, forced: tandem owns these fields). The
/// StatefulSet is created with no pod, and its `replicas` are handed to the engine's field
/// manager at once: the applies that follow never name them, so they never reset the number of
/// pods the engine set (nor default it to one).
pub async fn apply(
    client: &Client,
    cluster: &ZenithCluster,
    objects: &ClusterObjects,
) -> Result<(), kube::Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &objects.namespace);
    let object = statefulset(cluster, objects);
    if statefulsets.get_opt(&objects.cluster).await?.is_none() {
        let mut first = object.clone();
        first["spec"]["replicas"] = json!(0);
        statefulsets
            .patch(&objects.cluster, &params, &Patch::Apply(first))
            .await?;
        let engine = PatchParams::apply(REPLICAS_MANAGER).force();
        statefulsets
            .patch(
                &objects.cluster,
                &engine,
                &Patch::Apply(replicas(objects, 0)),
            )
            .await?;
    }
    statefulsets
        .patch(&objects.cluster, &params, &Patch::Apply(object))
        .await?;
    let api: Api<Service> = Api::namespaced(client.clone(), &objects.namespace);
    for service in services(cluster, objects) {
        let name = service["metadata"]["name"]
            .as_str()
            .expect("a named Service")
            .to_owned();
        api.patch(&name, &params, &Patch::Apply(service)).await?;
    }
    Ok(())
}
