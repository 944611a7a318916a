//! The operator's install manifest (`deploy/operator.yaml`): every object in it is accepted by
//! the real API server (a server-side dry run: schema, defaults and admission, nothing stored).

use std::sync::Arc;

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use libtest_mimic::Trial;
use tandem_tests::cluster::ControlPlane;
use tandem_tests::runner::control_plane;

pub fn tests() -> Vec<Trial> {
    vec![control_plane(
        "deploy::the_install_manifest_is_accepted",
        the_install_manifest_is_accepted,
    )]
}

const MANIFEST: &str = include_str!("../../../deploy/operator.yaml");

fn plural(kind: &str) -> String {
    match kind {
        "ClusterRoleBinding" => "clusterrolebindings".into(),
        other => format!("{}s", other.to_lowercase()),
    }
}

async fn the_install_manifest_is_accepted(cp: Arc<ControlPlane>) {
    let client = cp.client();
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(MANIFEST).expect("the manifest is YAML");
    let mut kinds = Vec::new();
    for document in documents {
        let object: DynamicObject =
            serde_json::from_value(document.clone()).expect("a Kubernetes object");
        let types = object.types.clone().expect("apiVersion and kind");
        let (group, version) = types
            .api_version
            .split_once('/')
            .unwrap_or(("", types.api_version.as_str()));
        let gvk = GroupVersionKind::gvk(group, version, &types.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, &plural(&types.kind));
        let namespaced = document["metadata"]["namespace"].as_str();
        let api: Api<DynamicObject> = match namespaced {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let params = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        if let Err(error) = api.create(&params, &object).await {
            // The namespace does not exist in a dry run: its objects are checked in a real one.
            let missing_namespace = matches!(&error, kube::Error::Api(status)
                if status.code == 404 && status.message.contains("namespaces"));
            assert!(missing_namespace, "{} refused: {error}", types.kind);
            let namespace = cp.namespace("deploy-manifest").await.expect("a namespace");
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &namespace, &resource);
            let mut object = object.clone();
            object.metadata.namespace = Some(namespace);
            api.create(&params, &object)
                .await
                .unwrap_or_else(|error| panic!("{} refused: {error}", types.kind));
        }
        kinds.push(types.kind);
    }
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "PersistentVolumeClaim",
            "Deployment"
        ]
    );
}
