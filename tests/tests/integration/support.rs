//! Helpers of the control-plane tests.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::OnceCell;

/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(250);
/// The usual limit of a wait in a test.
pub const WAIT_LIMIT: Duration = Duration::from_secs(90);

static CRD_INSTALLED: OnceCell<()> = OnceCell::const_new();

/// Installs the generated CRD once per run and waits until it is Established.
pub async fn install_crd(client: &Client) {
    CRD_INSTALLED
        .get_or_init(|| async {
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            crds.create(&PostParams::default(), &tandem_crds::crd())
                .await
                .expect("the API server takes the CRD");
            let name = tandem_crds::crd()
                .metadata
                .name
                .expect("the CRD has a name");
            wait_for("the CRD to become Established", || async {
                let crd = crds.get(&name).await.ok()?;
                let conditions = crd.status?.conditions?;
                conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            })
            .await;
        })
        .await;
}

/// Polls `check` until it gives a value; panics, naming `what`, after [`WAIT_LIMIT`].
pub async fn wait_for<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_for_within(what, WAIT_LIMIT, check).await
}

/// Polls `check` until it gives a value; panics, naming `what`, after `limit`.
pub async fn wait_for_within<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The (field, message) causes of a validation refusal by the API server.
pub fn refusals(error: &kube::Error) -> Vec<(String, String)> {
    let kube::Error::Api(status) = error else {
        panic!("expected a refusal by the API server, got {error}");
    };
    assert_eq!(
        status.code, 422,
        "a validation refusal is 422 Unprocessable Entity: {status:?}"
    );
    let causes = status
        .details
        .as_ref()
        .map(|details| details.causes.clone())
        .unwrap_or_default();
    causes
        .into_iter()
        // After a type error the API server adds that it skipped the CEL rules; not a refusal.
        .filter(|cause| {
            !cause
                .message
                .contains("some validation rules were not checked")
        })
        .map(|cause| (cause.field, cause.message))
        .collect()
}

/// With `TANDEM_TEST_KUBECTL` naming a kubectl binary, runs `kubectl <args>` against the control
/// plane from the workspace's root, and prints the command and what it showed (the operator's
/// guide quotes it); `None` without it.
pub async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Option<std::process::Output> {
    let kubectl = std::env::var_os("TANDEM_TEST_KUBECTL")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace's root");
    let output = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .current_dir(root)
        .output()
        .await
        .expect("kubectl runs");
    eprintln!(
        "$ kubectl {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(output)
}
