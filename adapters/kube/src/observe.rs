//! What the operator's watches see, as the engine's observations: a member's pod, its PVC and
//! PV, a node. Pure functions: the watches call them on every change.

use crate::effects::ClusterObjects;
use k8s_openapi::api::core::v1::{Affinity, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use tandem_engine::{
    MemberId, NodeName, NodeStatus, PodObservation, PodUid, PvName, PvcUid, Topology,
    VolumeObservation,
};

/// The member whose pod this is, by name (`<cluster>-N`), if it is one of the topology's
/// members.
pub fn member_of_pod(objects: &ClusterObjects, topology: Topology, name: &str) -> Option<MemberId> {
    ordinal(name.strip_prefix(objects.cluster.as_str())?, topology)
}

/// The member whose data claim this is, by name (`data-<cluster>-N`), if it is one of the
/// topology's members.
pub fn member_of_claim(
    objects: &ClusterObjects,
    topology: Topology,
    name: &str,
) -> Option<MemberId> {
    let rest = name
        .strip_prefix("data-")?
        .strip_prefix(objects.cluster.as_str())?;
    ordinal(rest, topology)
}

fn ordinal(rest: &str, topology: Topology) -> Option<MemberId> {
    let ordinal = rest.strip_prefix('-')?;
    // Only a plain decimal ordinal: `zc-01` or `zc-+1` name no member.
    let plain = !ordinal.is_empty()
        && ordinal.bytes().all(|byte| byte.is_ascii_digit())
        && (ordinal == "0" || !ordinal.starts_with('0'));
    if !plain {
        return None;
    }
    let ordinal: u8 = ordinal.parse().ok()?;
    (ordinal < topology.member_count()).then_some(MemberId(ordinal))
}

/// A pod as the engine observes it: its UID, its node once scheduled, whether it runs, and
/// whether it is being deleted. A pod runs when its phase is `Running`.
pub fn pod(pod: &Pod) -> Option<PodObservation> {
    let uid = pod.metadata.uid.clone()?;
    let node = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.node_name.clone())
        .map(NodeName);
    let running = pod
        .status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        == Some("Running");
    Some(PodObservation {
        uid: PodUid(uid),
        node,
        running,
        deleting: pod.metadata.deletion_timestamp.is_some(),
    })
}

/// The node a local PV is pinned to: the first value of its required node affinity.
pub fn pv_node(volume: &PersistentVolume) -> Option<NodeName> {
    let terms = &volume
        .spec
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|term| term.match_expressions.iter().flatten())
        .find(|expression| expression.key == "kubernetes.io/hostname")
        .and_then(|expression| expression.values.as_ref()?.first().cloned())
        .map(NodeName)
}

/// A member's volume as the engine observes it: the claim's UID, the PV bound to it (with its
/// node), and whether either is lost: the claim's phase is `Lost` (its PV went away), or the PV
/// failed.
pub fn volume(
    claim: Option<&PersistentVolumeClaim>,
    bound: Option<&PersistentVolume>,
) -> VolumeObservation {
    let pvc = claim
        .and_then(|claim| claim.metadata.uid.clone())
        .map(PvcUid);
    let claim_lost =
        claim.and_then(|claim| claim.status.as_ref()?.phase.as_deref()) == Some("Lost");
    let pv_failed =
        bound.and_then(|volume| volume.status.as_ref()?.phase.as_deref()) == Some("Failed");
    let pv = bound.and_then(|volume| {
        let name = volume.metadata.name.clone()?;
        Some((PvName(name), pv_node(volume)?))
    });
    VolumeObservation {
        pvc,
        pv,
        lost: claim_lost || pv_failed,
    }
}

/// Whether the members may run on `node`: the pod template's required node affinity, if any,
/// selects it (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt` on its labels; the terms
/// are alternatives, the expressions of a term all hold). The engine is told only of the nodes
/// the members may run on, and places volumes among them.
pub fn node_fits(affinity: Option<&Affinity>, node: &Node) -> bool {
    let Some(required) = affinity
        .and_then(|affinity| affinity.node_affinity.as_ref())
        .and_then(|node_affinity| {
            node_affinity
                .required_during_scheduling_ignored_during_execution
                .as_ref()
        })
    else {
        return true;
    };
    let labels = node.metadata.labels.clone().unwrap_or_default();
    required.node_selector_terms.iter().any(|term| {
        term.match_expressions.iter().flatten().all(|expression| {
            let value = labels.get(&expression.key);
            let values = expression.values.clone().unwrap_or_default();
            let number = |text: &str| text.parse::<i64>().ok();
            match expression.operator.as_str() {
                "In" => value.is_some_and(|value| values.contains(value)),
                "NotIn" => value.is_none_or(|value| !values.contains(value)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                "Gt" | "Lt" => {
                    let (Some(have), Some(bound)) = (
                        value.and_then(|value| number(value)),
                        values.first().and_then(|value| number(value)),
                    ) else {
                        return false;
                    };
                    if expression.operator == "Gt" {
                        have > bound
                    } else {
                        have < bound
                    }
                }
                _ => false,
            }
        })
    })
}

/// A node's status: `Ready` when its `Ready` condition is `True`, else `NotReady`. (A deleted
/// node is reported by the watch's deletion, as `NodeStatus::Deleted`.)
pub fn node(node: &Node) -> Option<(NodeName, NodeStatus)> {
    let name = node.metadata.name.clone()?;
    let ready = node
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition.type_ == "Ready" && condition.status == "True")
        });
    let status = if ready {
        NodeStatus::Ready
    } else {
        NodeStatus::NotReady
    };
    Some((NodeName(name), status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects() -> ClusterObjects {
        ClusterObjects {
            namespace: "ns".into(),
            cluster: "zc".into(),
            storage_class: "local-storage".into(),
            storage_size: "1Gi".into(),
            local_root: "/mnt".into(),
        }
    }

    fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).expect("a well-formed object")
    }

    #[test]
    fn members_are_named_by_plain_ordinals() {
        let objects = objects();
        let ms = Topology::MasterSlave;
        assert_eq!(member_of_pod(&objects, ms, "zc-0"), Some(MemberId(0)));
        assert_eq!(
            member_of_claim(&objects, ms, "data-zc-1"),
            Some(MemberId(1))
        );
        assert_eq!(member_of_pod(&objects, ms, "data-zc-1"), None);
        assert_eq!(member_of_claim(&objects, ms, "zc-1"), None);
        for other in [
            "zc-2", "zc-01", "zc-+1", "zc-", "zc", "zcx-0", "other-0", "zc-1-x",
        ] {
            assert_eq!(member_of_pod(&objects, ms, other), None, "{other}");
        }
        assert_eq!(member_of_pod(&objects, Topology::Standalone, "zc-1"), None);
        assert_eq!(member_of_pod(&objects, ms, "zc-999999999999"), None);
        // A cluster named like a claim still knows its own pods.
        let data = ClusterObjects {
            cluster: "data-x".into(),
            ..objects.clone()
        };
        assert_eq!(member_of_pod(&data, ms, "data-x-0"), Some(MemberId(0)));
        assert_eq!(
            member_of_claim(&data, ms, "data-data-x-1"),
            Some(MemberId(1))
        );
    }

    #[test]
    fn a_pod_runs_in_phase_running_and_is_deleting_with_a_timestamp() {
        let running: Pod = from(json!({
            "metadata": {"name": "zc-0", "uid": "u1"},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Running"},
        }));
        let seen = pod(&running).expect("observed");
        assert_eq!(seen.uid, PodUid("u1".into()));
        assert_eq!(seen.node, Some(NodeName("n1".into())));
        assert!(seen.running && !seen.deleting);
        let going: Pod = from(json!({
            "metadata": {"name": "zc-0", "uid": "u2",
                         "deletionTimestamp": "2026-11-30T10:00:00Z"},
            "spec": {"containers": []},
            "status": {"phase": "Pending"},
        }));
        let seen = pod(&going).expect("observed");
        assert!(!seen.running && seen.deleting && seen.node.is_none());
        let unnamed: Pod = from(json!({"metadata": {"name": "zc-0"}}));
        assert_eq!(pod(&unnamed), None, "a pod without a UID is not one yet");
    }

    #[test]
    fn a_volume_is_its_claim_its_pv_and_its_node() {
        let claim: PersistentVolumeClaim = from(json!({
            "metadata": {"name": "data-zc-0", "uid": "c1"},
            "status": {"phase": "Bound"},
        }));
        let volume_object: PersistentVolume = from(json!({
            "metadata": {"name": "pv-0"},
            "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]}
            ]}]}}},
            "status": {"phase": "Bound"},
        }));
        let seen = volume(Some(&claim), Some(&volume_object));
        assert_eq!(seen.pvc, Some(PvcUid("c1".into())));
        assert_eq!(
            seen.pv,
            Some((PvName("pv-0".into()), NodeName("n2".into())))
        );
        assert!(!seen.lost);
        let lost: PersistentVolumeClaim = from(json!({
            "metadata": {"name": "data-zc-0", "uid": "c1"},
            "status": {"phase": "Lost"},
        }));
        assert!(volume(Some(&lost), None).lost);
        assert_eq!(
            volume(None, None),
            VolumeObservation {
                pvc: None,
                pv: None,
                lost: false,
            }
        );
    }

    #[test]
    fn a_node_is_ready_only_with_a_true_ready_condition() {
        let ready: Node = from(json!({
            "metadata": {"name": "n1"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }));
        assert_eq!(
            node(&ready),
            Some((NodeName("n1".into()), NodeStatus::Ready))
        );
        for status in ["False", "Unknown"] {
            let not_ready: Node = from(json!({
                "metadata": {"name": "n1"},
                "status": {"conditions": [{"type": "Ready", "status": status}]},
            }));
            assert_eq!(
                node(&not_ready),
                Some((NodeName("n1".into()), NodeStatus::NotReady))
            );
        }
        let silent: Node = from(json!({"metadata": {"name": "n1"}}));
        assert_eq!(
            node(&silent).map(|(_, status)| status),
            Some(NodeStatus::NotReady)
        );
    }
}
