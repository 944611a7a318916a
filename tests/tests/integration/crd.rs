//! The generated `ZenithCluster` CRD against the real API server.

use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use libtest_mimic::Trial;
use serde_json::{Value, json};
use tandem_crds::quantity::is_storage_size;
use tandem_crds::validation::parse_and_validate;
use tandem_crds::{HaSpec, ZenithCluster};
use tandem_tests::cluster::ControlPlane;
use tandem_tests::examples::Example;
use tandem_tests::invalid::{cases, check_refusals};
use tandem_tests::runner::control_plane;

use crate::support::{install_crd, refusals};

pub fn tests() -> Vec<Trial> {
    vec![
        control_plane(
            "crd::installs_and_becomes_established",
            installs_and_becomes_established,
        ),
        control_plane(
            "crd::examples_are_accepted_with_the_rust_defaults",
            examples_are_accepted_with_the_rust_defaults,
        ),
        control_plane(
            "crd::invalid_objects_are_refused_naming_the_field",
            invalid_objects_are_refused_naming_the_field,
        ),
        control_plane(
            "crd::storage_size_rule_agrees_with_the_api_server",
            storage_size_rule_agrees_with_the_api_server,
        ),
        control_plane(
            "crd::a_misspelt_field_reaches_the_user",
            a_misspelt_field_reaches_the_user,
        ),
        control_plane(
            "crd::status_and_printer_columns",
            status_and_printer_columns,
        ),
    ]
}

fn object(value: Value) -> ZenithCluster {
    serde_json::from_value(value).expect("the object deserialises")
}

async fn installs_and_becomes_established(cp: Arc<ControlPlane>) {
    let client = cp.client();
    install_crd(&client).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let installed = crds
        .get("zenithclusters.huawei.cloudb.com")
        .await
        .expect("the CRD is there");
    let names = installed.spec.names;
    assert_eq!(names.kind, "ZenithCluster");
    assert_eq!(names.short_names, Some(vec!["zc".to_owned()]));
    let conditions = installed
        .status
        .and_then(|status| status.conditions)
        .unwrap_or_default();
    for wanted in ["Established", "NamesAccepted"] {
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == wanted && c.status == "True"),
            "{wanted} is not True: {conditions:?}"
        );
    }
    // A schema the API server does not consider structural would show up as this condition.
    assert!(
        !conditions
            .iter()
            .any(|c| c.type_ == "NonStructuralSchema" && c.status == "True")
    );
}

async fn examples_are_accepted_with_the_rust_defaults(cp: Arc<ControlPlane>) {
    let client = cp.client();
    install_crd(&client).await;
    let namespace = cp.namespace("examples").await.expect("a namespace");
    let api: Api<ZenithCluster> = Api::namespaced(client, &namespace);
    for example in Example::ALL {
        let created = api
            .create(&PostParams::default(), &object(example.json()))
            .await
            .unwrap_or_else(|error| panic!("{example:?} is refused: {error}"));
        // What the API server stored, with its schema defaults, is what Rust reads from the file
        // with serde's defaults: the two sets of defaults are the same.
        let expected = parse_and_validate(example.json(), None).expect("the example is valid");
        assert_eq!(
            created.spec, expected.spec,
            "{example:?}: the server's defaults differ"
        );
    }
    let standalone = api
        .get(&Example::Standalone.name())
        .await
        .expect("the standalone cluster");
    assert_eq!(standalone.spec.ha_spec, HaSpec::default());
    assert_eq!(standalone.spec.zenith_spec.polling_interval, 10);
    assert_eq!(standalone.spec.zenith_spec.unreachable_timeout, 30);
}

async fn invalid_objects_are_refused_naming_the_field(cp: Arc<ControlPlane>) {
    let client = cp.client();
    install_crd(&client).await;
    let namespace = cp.namespace("invalid").await.expect("a namespace");
    let api: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &zenith_resource());
    let cases = cases();
    assert!(
        cases.len() >= 10,
        "the catalog of invalid objects holds at least 10 of them"
    );
    for (number, case) in cases.iter().enumerate() {
        let name = format!("invalid-{number}");
        let mut changed = case.object();
        changed["metadata"] = json!({"name": name});
        let result = if case.update {
            let mut original = case.example.json();
            original["metadata"] = json!({"name": name});
            api.create(&PostParams::default(), &dynamic(original))
                .await
                .expect("the unchanged example is accepted");
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&changed))
                .await
        } else {
            api.create(&PostParams::default(), &dynamic(changed.clone()))
                .await
        };
        let error = match result {
            Ok(_) => panic!("{}: the API server accepted it", case.name),
            Err(error) => error,
        };
        check_refusals(case, "the API server", &refusals(&error));

        let previous = case.update.then(|| {
            parse_and_validate(case.example.json(), None)
                .expect("valid")
                .spec
        });
        let rust = parse_and_validate(changed, previous.as_ref()).expect_err("Rust refuses it too");
        let rust: Vec<(String, String)> = rust
            .into_iter()
            .map(|error| (error.field, error.message))
            .collect();
        check_refusals(case, "Rust validation", &rust);
    }
}

fn dynamic(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("an object with apiVersion, kind and metadata")
}

fn zenith_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::erase::<ZenithCluster>(&())
}

/// Storage sizes, including quantities apimachinery accepts but that mean nothing as a size,
/// decided by the API server (a dry-run create) and by `is_storage_size`.
async fn storage_size_rule_agrees_with_the_api_server(cp: Arc<ControlPlane>) {
    const CANDIDATES: [&str; 47] = [
        "0.5",
        "0.000000001",
        "-5Gi",
        "9e999999999",
        "0Gi",
        "0.5Gi",
        "1Ei",
        "1.000000001Ei",
        "1025Pi",
        "999999999999999999",
        "1000000000000000000",
        "1.5Ti",
        "05",
        "1.0000000000",
        "1.000000000",
        "5Gi",
        "5G",
        "5",
        "0",
        "1.5Gi",
        ".5",
        "5.",
        "2e3",
        "2E-3",
        "-1",
        "+7k",
        "100m",
        "1n",
        "1u",
        "Gi",
        "-",
        ".",
        "e3",
        "1e-10",
        "12345678901234567890",
        "",
        "five",
        "5 Gi",
        "5GB",
        "5gi",
        "1.2.3",
        "5e",
        "5e1.5",
        "--5",
        "5Ki1",
        "5Gi ",
        "1E",
    ];
    let client = cp.client();
    install_crd(&client).await;
    let namespace = cp.namespace("quantities").await.expect("a namespace");
    let api: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &zenith_resource());
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let mut disagreements = Vec::new();
    for candidate in CANDIDATES {
        let mut cluster = Example::Standalone.json();
        cluster["spec"]["zenithSpec"]["storageSize"] = json!(candidate);
        let server = api.create(&dry_run, &dynamic(cluster)).await.is_ok();
        if server != is_storage_size(candidate) {
            disagreements.push(format!(
                "{candidate:?}: API server {server}, is_storage_size {}",
                !server
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

/// A field the schema does not know (`agentLeaseSecond`, for `agentLeaseSeconds`) is not kept.
/// Server-side field validation tells the user: `Strict` (what `kubectl` asks for by default)
/// refuses the object naming the field, and the API's own default (`Warn`) stores the object
/// without it and says so in a `Warning` header, which `kubectl` prints.
async fn a_misspelt_field_reaches_the_user(cp: Arc<ControlPlane>) {
    let client = cp.client();
    install_crd(&client).await;
    let namespace = cp.namespace("typo").await.expect("a namespace");
    let mut cluster = Example::MasterSlave.json();
    cluster["metadata"] = json!({"name": "typo", "namespace": namespace});
    cluster["spec"]["haSpec"] = json!({"agentLeaseSecond": 25});
    let collection = format!("/apis/huawei.cloudb.com/v1/namespaces/{namespace}/zenithclusters");
    let post = |validation: &str| {
        http::Request::post(format!("{collection}?fieldValidation={validation}"))
            .header("Content-Type", "application/json")
            .body(kube::client::Body::from(
                serde_json::to_vec(&cluster).expect("JSON"),
            ))
            .expect("a request")
    };
    let unknown = "unknown field \"spec.haSpec.agentLeaseSecond\"";

    let response = client.send(post("Strict")).await.expect("an answer");
    assert_eq!(response.status(), 400, "Strict refuses the object");
    let body = response.into_body().collect_bytes().await.expect("a body");
    let status: Value = serde_json::from_slice(&body).expect("a Status");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains(unknown), "{status}");

    let response = client.send(post("Warn")).await.expect("an answer");
    assert_eq!(response.status(), 201, "Warn creates the object");
    let warnings: Vec<String> = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    // The header quotes the message: `299 - "unknown field \"spec.haSpec.agentLeaseSecond\""`.
    assert!(
        warnings.iter().any(|warning| warning.starts_with("299 - ")
            && warning.contains("unknown field")
            && warning.contains("spec.haSpec.agentLeaseSecond")),
        "{warnings:?}"
    );
    let api: Api<ZenithCluster> = Api::namespaced(client, &namespace);
    let stored = api.get("typo").await.expect("stored");
    assert_eq!(
        stored.spec.ha_spec.agent_lease_seconds,
        HaSpec::default().agent_lease_seconds,
        "the misspelt field is dropped, and the field it meant keeps its default"
    );
}

async fn status_and_printer_columns(cp: Arc<ControlPlane>) {
    let client = cp.client();
    install_crd(&client).await;
    let namespace = cp.namespace("status").await.expect("a namespace");
    let api: Api<ZenithCluster> = Api::namespaced(client.clone(), &namespace);
    let name = Example::MasterSlave.name();
    api.create(&PostParams::default(), &object(Example::MasterSlave.json()))
        .await
        .expect("created");
    let transition = |n: u32| json!({"time": format!("2026-01-01T00:00:{:02}Z", n % 60), "from": "Initializing", "to": "Normal", "reason": format!("r{n}")});
    let status = |transitions: Vec<Value>| {
        json!({"status": {
            "state": "Normal", "previousState": "Initializing", "reason": "BothMembersHealthy",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "activeMember": "zenith-ms-0",
            "members": [
                {"name": "zenith-ms-0", "role": "Active", "health": "Healthy", "node": "kwok-node-0",
                 "pvc": "data-zenith-ms-0", "lsn": 1234, "configHash": "abc"},
                {"name": "zenith-ms-1", "role": "Standby", "health": "Healthy", "node": "kwok-node-1",
                 "pvc": "data-zenith-ms-1", "lsn": 1200, "configHash": "abc"},
            ],
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Normal", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Degraded", "status": "False", "reason": "Normal", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Progressing", "status": "False", "reason": "Normal", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            ],
            "observedGeneration": 1, "lastSequence": 42, "epoch": 3,
            "logIncarnation": 1_796_175_204_657_u64, "transitions": transitions,
        }})
    };
    let twenty: Vec<Value> = (0..20).map(transition).collect();
    let patched = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(status(twenty)),
        )
        .await
        .expect("a full status is accepted");
    let reported = patched.status.expect("the status is stored");
    assert_eq!(reported.members.len(), 2);
    assert_eq!(reported.transitions.len(), 20);
    assert_eq!(reported.last_sequence, Some(42));
    // The witness a replica checks its log against when it takes the cluster over.
    assert_eq!(reported.epoch, Some(3));
    assert_eq!(reported.log_incarnation, Some(1_796_175_204_657));

    let twenty_one: Vec<Value> = (0..21).map(transition).collect();
    let error = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(status(twenty_one)),
        )
        .await
        .expect_err("more than 20 transitions are refused");
    assert!(error.to_string().contains("status.transitions"), "{error}");

    // A duplicate condition type breaks the list-map keyed by type.
    let mut duplicate = status(Vec::new());
    duplicate["status"]["conditions"][1]["type"] = json!("Ready");
    let error = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(duplicate))
        .await
        .expect_err("conditions are keyed by type");
    assert!(error.to_string().contains("status.conditions"), "{error}");

    // kubectl's view: the printer columns show state, active member, reason and age.
    let request = http::Request::get(format!(
        "/apis/huawei.cloudb.com/v1/namespaces/{namespace}/zenithclusters"
    ))
    .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
    .body(Vec::new())
    .expect("a request");
    let table: Value = serde_json::from_str(&client.request_text(request).await.expect("a table"))
        .expect("the table is JSON");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|column| column["name"].as_str())
        .collect();
    assert_eq!(columns, ["Name", "State", "Active", "Reason", "Age"]);
    let cells = &table["rows"][0]["cells"];
    assert_eq!(cells[1], "Normal");
    assert_eq!(cells[2], "zenith-ms-0");
    assert_eq!(cells[3], "BothMembersHealthy");

    api.delete(&name, &DeleteParams::default())
        .await
        .expect("deleted");
}
