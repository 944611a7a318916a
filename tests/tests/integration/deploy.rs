//! The operator's install manifest (`deploy/operator.yaml`): every object in it is accepted by
//! the real API server (a server-side dry run: schema, defaults and admission, nothing stored);
//! and the operator binary, run outside the cluster as the ServiceAccount the manifest makes
//! (a kubeconfig with its token), does its work with the permissions the manifest grants and no
//! other.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolume, ServiceAccount};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{AuthInfo, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use tandem_crds::ZenithCluster;
use tandem_kube::agent_double::{AgentDouble, DoubleWorld};

use crate::operator::{LIMIT, NAME, TOKEN, follow_pods, master_slave};
use crate::support::{install_crd, wait_for_within};
use libtest_mimic::Trial;
use tandem_tests::cluster::ControlPlane;
use tandem_tests::runner::control_plane;

pub fn tests() -> Vec<Trial> {
    vec![
        control_plane(
            "deploy::the_install_manifest_is_accepted",
            the_install_manifest_is_accepted,
        ),
        control_plane(
            "deploy::the_operator_works_with_the_manifests_permissions_alone",
            the_operator_works_with_the_manifests_permissions_alone,
        ),
    ]
}

const MANIFEST: &str = include_str!("../../../deploy/operator.yaml");

/// The API resource of a manifest's object of these types.
fn resource_of(types: &kube::core::TypeMeta) -> ApiResource {
    let (group, version) = types
        .api_version
        .split_once('/')
        .unwrap_or(("", types.api_version.as_str()));
    let gvk = GroupVersionKind::gvk(group, version, &types.kind);
    ApiResource::from_gvk_with_plural(&gvk, &plural(&types.kind))
}

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
        let resource = resource_of(&types);
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
    // With kubectl at hand, the install as the operator's guide gives it, for real.
    if let Some(applied) =
        crate::support::kubectl(cp.kubeconfig(), &["apply", "-f", "deploy/operator.yaml"]).await
    {
        assert!(applied.status.success(), "kubectl apply failed");
        let _ = crate::support::kubectl(
            cp.kubeconfig(),
            &[
                "-n",
                "tandem-system",
                "auth",
                "can-i",
                "--list",
                "--as=system:serviceaccount:tandem-system:tandem-operator",
            ],
        )
        .await;
    }
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "PersistentVolumeClaim",
            "Deployment"
        ]
    );
}

/// Where the operator binary is: beside the directory of this test's executable, where
/// `cargo test --workspace` builds it (tandem-kube's own tests need it).
fn operator_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's executable");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .expect("the target directory")
        .join("tandem-operator");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p tandem-kube` in this profile (`cargo test \
         --workspace` does)",
        binary.display()
    );
    binary
}

/// The manifest's objects that give the operator its identity and permissions, created for real
/// (server-side apply); the claim and the Deployment are left out: no container runs here.
async fn install_permissions(client: &Client) {
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(MANIFEST).expect("the manifest is YAML");
    for document in documents {
        let object: DynamicObject =
            serde_json::from_value(document.clone()).expect("a Kubernetes object");
        let types = object.types.clone().expect("apiVersion and kind");
        if matches!(types.kind.as_str(), "PersistentVolumeClaim" | "Deployment") {
            continue;
        }
        let resource = resource_of(&types);
        let api: Api<DynamicObject> = match document["metadata"]["namespace"].as_str() {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        api.patch(
            &object.name_any(),
            &PatchParams::apply("tandem-e2e").force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|error| panic!("{} refused: {error}", types.kind));
    }
}

/// A kubeconfig for the control plane that authenticates as the operator's ServiceAccount: a
/// token the API server issues for it, and nothing else.
async fn service_account_kubeconfig(cp: &ControlPlane, directory: &Path) -> PathBuf {
    let accounts: Api<ServiceAccount> = Api::namespaced(cp.client(), "tandem-system");
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let issued: TokenRequest = accounts
        .create_subresource("token", "tandem-operator", &PostParams::default(), &request)
        .await
        .expect("a token for the ServiceAccount");
    let token: String = issued
        .status
        .and_then(|status| status.token)
        .expect("an issued token");
    let mut config = Kubeconfig::read_from(cp.kubeconfig()).expect("the admin kubeconfig");
    for user in &mut config.auth_infos {
        user.auth_info = Some(AuthInfo {
            token: Some(token.clone().into()),
            ..AuthInfo::default()
        });
    }
    let path = directory.join("kubeconfig");
    std::fs::write(
        &path,
        serde_json::to_vec(&config).expect("a kubeconfig serializes"),
    )
    .expect("the kubeconfig written");
    path
}

async fn the_operator_works_with_the_manifests_permissions_alone(cp: Arc<ControlPlane>) {
    let client = cp.client();
    install_crd(&client).await;
    install_permissions(&client).await;
    let namespace = cp.namespace("deploy-operator").await.expect("a namespace");
    let directory = tempfile::tempdir().expect("a directory");
    let kubeconfig = service_account_kubeconfig(&cp, directory.path()).await;
    // The members' agents, each on a loopback address of its own, one port for both.
    let world = DoubleWorld::default();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.10:0").expect("a free port");
        probe.local_addr().expect("its address").port()
    };
    let mut doubles = Vec::new();
    for member in 0..2u8 {
        let address: SocketAddr = format!("127.0.0.1{member}:{port}")
            .parse()
            .expect("an address");
        let double = AgentDouble::start_member_at(TOKEN, &world, member, address)
            .await
            .expect("an agent double");
        double.state().go_offline();
        doubles.push(double);
    }
    let follower = tokio::spawn(follow_pods(
        client.clone(),
        namespace.clone(),
        Arc::clone(&world),
    ));
    let token_file = directory.path().join("agent-token");
    std::fs::write(&token_file, TOKEN).expect("the agent token written");
    let output = directory.path().join("operator.log");
    let mut operator = tokio::process::Command::new(operator_binary())
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info,tandem_kube=debug")
        .arg(format!(
            "--log-dir={}",
            directory.path().join("log").display()
        ))
        .arg(format!("--agent-token-file={}", token_file.display()))
        .arg(format!("--agent-port={port}"))
        .arg("--agent-host=127.0.0.1{member}")
        .arg(format!("--namespace={namespace}"))
        .arg("--lease-namespace=tandem-system")
        .arg("--identity=e2e")
        .arg("--metrics-address=127.0.0.1:0")
        .arg("--log-format=json")
        .stdout(std::fs::File::create(&output).expect("the operator's log"))
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the operator binary runs");
    // The operator's whole round: a cluster made (StatefulSet, Services, volumes, claims, labels,
    // status, Events, the finalizer), a failover (a pod deleted under its UID), the cluster
    // deleted (its objects and volumes removed).
    let clusters: Api<ZenithCluster> = Api::namespaced(client.clone(), &namespace);
    let object: ZenithCluster = serde_json::from_value(master_slave()).expect("a ZenithCluster");
    clusters
        .create(&PostParams::default(), &object)
        .await
        .expect("the cluster created");
    let normal = |limit| {
        let clusters = clusters.clone();
        let output = output.clone();
        async move {
            wait_for_within("the cluster to be Normal", limit, || async {
                assert_permitted(&output);
                let cluster = clusters.get(NAME).await.ok()?;
                (cluster.status.as_ref()?.state.as_deref() == Some("Normal")).then_some(cluster)
            })
            .await
        }
    };
    let cluster = normal(LIMIT).await;
    let status = cluster.status.as_ref().expect("a status");
    let old: u8 = status
        .active_member
        .as_deref()
        .and_then(|name| name.strip_prefix(&format!("{NAME}-")))
        .and_then(|ordinal| ordinal.parse().ok())
        .expect("an active");
    let new = 1 - old;
    doubles[usize::from(old)].state().write(4096);
    wait_for_within("the standby to be in sync", LIMIT, || async {
        let standby = doubles[usize::from(new)].state().status.clone();
        (standby.in_sync && standby.lsn >= 4096).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    doubles[usize::from(old)].state().stop();
    wait_for_within("the standby to be promoted", LIMIT, || async {
        assert_permitted(&output);
        let cluster = clusters.get(NAME).await.ok()?;
        (cluster.status.as_ref()?.active_member.as_deref() == Some(&format!("{NAME}-{new}")[..]))
            .then_some(())
    })
    .await;
    normal(LIMIT).await;
    // Its metrics, scraped as Prometheus would, and its probes.
    let address = metrics_address(&output);
    let (code, scrape) = http_get(address, "/metrics").await;
    assert_eq!(code, 200, "{scrape}");
    let cluster = format!("{namespace}/{NAME}");
    for series in [
        format!("tandem_failovers_total{{cluster=\"{cluster}\"}} 1"),
        format!("tandem_failover_duration_seconds_count{{cluster=\"{cluster}\"}} 1"),
        format!(
            "tandem_transitions_total{{cluster=\"{cluster}\",from=\"ActiveDown\",to=\"StandbyDown\"}} 1"
        ),
        format!("tandem_cluster_state{{cluster=\"{cluster}\",state=\"Normal\"}} 1"),
        "tandem_leader 1".to_string(),
    ] {
        assert!(
            scrape.lines().any(|line| line == series),
            "{series} in the scrape:\n{scrape}"
        );
    }
    if std::env::var_os("TANDEM_TEST_SHOW").is_some() {
        eprintln!("$ curl http://{address}/metrics\n{scrape}");
    }
    for probe in ["/healthz", "/readyz"] {
        let (code, body) = http_get(address, probe).await;
        assert_eq!(code, 200, "{probe}: {body}");
    }
    clusters
        .delete(NAME, &DeleteParams::default())
        .await
        .expect("the cluster deleted");
    wait_for_within("the cluster to be gone", LIMIT, || async {
        assert_permitted(&output);
        clusters.get_opt(NAME).await.ok()?.is_none().then_some(())
    })
    .await;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    wait_for_within("its local PVs to be gone", LIMIT, || async {
        assert_permitted(&output);
        let left = volumes
            .list(&ListParams::default().labels(&format!(
                "tandem.io/cluster={NAME},tandem.io/namespace={namespace}"
            )))
            .await
            .ok()?;
        left.items.is_empty().then_some(())
    })
    .await;
    // Stopped as Kubernetes stops a pod: it gives its Lease up.
    let pid = operator.id().expect("the operator's pid");
    std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    let exit = tokio::time::timeout(LIMIT, operator.wait())
        .await
        .expect("the operator stops")
        .expect("its exit status");
    follower.abort();
    assert_permitted(&output);
    let log = std::fs::read_to_string(&output).expect("the operator's log");
    assert!(exit.success(), "the operator exited with {exit}:\n{log}");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "tandem-system");
    let lease = leases.get("tandem-operator").await.expect("the Lease");
    assert_eq!(
        lease.spec.and_then(|spec| spec.holder_identity),
        None,
        "the Lease given up"
    );
}

/// The address the operator answers `/metrics` on, from its JSON log.
fn metrics_address(output: &std::path::Path) -> SocketAddr {
    let log = std::fs::read_to_string(output).expect("the operator's log");
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|line| line["fields"]["metrics_address"].as_str()?.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in the operator's log:\n{log}"))
}

/// A plain HTTP/1.0 GET: the status code and the body.
async fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("the metrics endpoint");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .await
        .expect("the request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("the response read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    (code, body.to_string())
}

/// Fails at once, with the calls it names, when the operator's log shows that the API server
/// refused the operator a permission (`403 Forbidden`): the manifests do not grant a verb it
/// needs.
fn assert_permitted(output: &std::path::Path) {
    let log = std::fs::read_to_string(output).unwrap_or_default();
    let refused: Vec<&str> = log
        .lines()
        .filter(|line| {
            let line = line.to_lowercase();
            line.contains("forbidden") || line.contains("\"code\":403") || line.contains(" 403")
        })
        .collect();
    assert!(
        refused.is_empty(),
        "the operator needed a permission the manifest does not grant:\n{}",
        refused.join("\n")
    );
}
