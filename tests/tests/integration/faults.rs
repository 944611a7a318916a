//! Fault injection through kwok's stages: a label on a node makes kwok report it NotReady, and
//! the controller-manager's node lifecycle controller reacts as it would to a real node failure.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use libtest_mimic::Trial;
use serde_json::json;
use tandem_tests::cluster::{ControlPlane, NODES, node_is_ready};
use tandem_tests::runner::control_plane;

use crate::support::wait_for_within;

/// The label kwok's `node-not-ready` stage acts on.
const NODE_NOT_READY: &str = "node-not-ready.stage.kwok.x-k8s.io";
/// The taint the node lifecycle controller puts on a node that is not ready.
const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// How long kwok and the node lifecycle controller may take (monitor period 2 s).
const REACTION_LIMIT: Duration = Duration::from_secs(60);

pub fn tests() -> Vec<Trial> {
    vec![control_plane(
        "faults::a_labelled_node_goes_not_ready_and_recovers",
        a_labelled_node_goes_not_ready_and_recovers,
    )]
}

fn has_not_ready_taint(node: &Node) -> bool {
    let taints = node.spec.as_ref().and_then(|spec| spec.taints.as_ref());
    taints.is_some_and(|taints| taints.iter().any(|taint| taint.key == NOT_READY_TAINT))
}

async fn a_labelled_node_goes_not_ready_and_recovers(cp: Arc<ControlPlane>) {
    let nodes: Api<Node> = Api::all(cp.client());
    let name = NODES[2];
    let label = |value: serde_json::Value| json!({"metadata": {"labels": {NODE_NOT_READY: value}}});
    nodes
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(label(json!("true"))),
        )
        .await
        .expect("the node is labelled");
    let failed = wait_for_within(
        "the node to be NotReady and tainted",
        REACTION_LIMIT,
        || async {
            let node = nodes.get(name).await.ok()?;
            (!node_is_ready(&node) && has_not_ready_taint(&node)).then_some(node)
        },
    )
    .await;
    assert!(!node_is_ready(&failed));

    nodes
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(label(json!(null))),
        )
        .await
        .expect("the label is removed");
    wait_for_within(
        "the node to be Ready and untainted",
        REACTION_LIMIT,
        || async {
            let node = nodes.get(name).await.ok()?;
            (node_is_ready(&node) && !has_not_ready_taint(&node)).then_some(())
        },
    )
    .await;
}
