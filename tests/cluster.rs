//! A real Kubernetes control plane for the tests: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, and kwok acting as the kubelet of three fake nodes. Started once per test run,
//! on loopback, in one temporary directory; each test gets its own namespace.
//!
//! Start order: PKI, etcd, kube-apiserver, the `local-storage` StorageClass, controller-manager
//! and scheduler, kwok, the fake nodes; then a probe pod proves the whole chain (service-account
//! controller, scheduler, kwok) works before any test runs.

pub mod binaries;
pub mod pki;
pub mod supervisor;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use binaries::Binaries;
use pki::Pki;
use supervisor::Supervisor;

/// The fake nodes kwok runs pods on.
pub const NODES: [&str; 3] = ["kwok-node-0", "kwok-node-1", "kwok-node-2"];
/// The StorageClass of local PVs: no provisioner, bind on first use.
pub const LOCAL_STORAGE_CLASS: &str = "local-storage";
/// How long each start-up step may take.
const START_STEP_LIMIT: Duration = Duration::from_secs(120);
/// How often start-up conditions are checked.
const POLL: Duration = Duration::from_millis(200);
/// The annotation that hands a node to kwok.
const KWOK_NODE_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");
/// The namespace of the start-up probe pod.
const PROBE_NAMESPACE: &str = "tandem-probe";

/// Why the control plane did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The binaries are not built.
    #[error(transparent)]
    MissingBinaries(#[from] binaries::MissingBinaries),
    /// The certificates could not be made.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A component exited during start-up.
    #[error(transparent)]
    Exited(#[from] supervisor::Exited),
    /// A step did not finish in time.
    #[error("{step} did not happen within {limit:?}; logs are in {logs}{detail}")]
    Timeout {
        /// The step.
        step: String,
        /// Its limit.
        limit: Duration,
        /// The log directory.
        logs: String,
        /// The last error seen, if any.
        detail: String,
    },
    /// The Kubernetes client could not be made or a request failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: kube::Error,
    },
    /// The kubeconfig could not be read.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Io { what, source }
}

fn kube_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Kube { what, source }
}

/// A running control plane. Dropping it stops every process it started and removes its
/// directory.
pub struct ControlPlane {
    supervisor: Supervisor,
    directory: PathBuf,
    kubeconfig: PathBuf,
    client: Client,
    startup: Duration,
    namespaces: AtomicU32,
}

/// Free loopback ports for the components.
struct Ports {
    etcd_client: u16,
    etcd_peer: u16,
    apiserver: u16,
    controller_manager: u16,
    scheduler: u16,
    kwok: u16,
}

impl ControlPlane {
    /// Starts the control plane and waits until it is ready for tests.
    pub async fn start() -> Result<Self, StartError> {
        let started = Instant::now();
        let binaries = binaries::locate()?;
        let directory =
            std::env::temp_dir().join(format!("tandem-control-plane-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(directory.join("pki"))
            .map_err(io("create the control-plane directory"))?;
        let pki = pki::create(&directory.join("pki"))?;
        let ports = free_ports()?;
        let mut supervisor =
            Supervisor::new(&directory.join("logs")).map_err(io("start the watchdog"))?;
        let kubeconfig = directory.join("admin.kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_text(&pki, ports.apiserver))
            .map_err(io("write the kubeconfig"))?;

        start_etcd(&mut supervisor, &binaries, &directory, &ports).await?;
        start_apiserver(&mut supervisor, &binaries, &directory, &pki, &ports)?;
        let client = client(&kubeconfig).await?;
        wait_until(
            &mut supervisor,
            &directory,
            "kube-apiserver /readyz",
            || async {
                let request = http::Request::get("/readyz")
                    .body(Vec::new())
                    .map_err(|e| e.to_string())?;
                match client.request_text(request).await {
                    Ok(text) if text.trim() == "ok" => Ok(Some(())),
                    Ok(text) => Err(text),
                    Err(error) => Err(error.to_string()),
                }
            },
        )
        .await?;
        create_storage_class(&client).await?;
        start_controllers(
            &mut supervisor,
            &binaries,
            &directory,
            &pki,
            &kubeconfig,
            &ports,
        )?;
        create_nodes(&client).await?;
        let mut control_plane = Self {
            supervisor,
            directory,
            kubeconfig,
            client,
            startup: Duration::ZERO,
            namespaces: AtomicU32::new(0),
        };
        control_plane.wait_until_ready().await?;
        control_plane.startup = started.elapsed();
        Ok(control_plane)
    }

    /// A client with the admin identity (`system:masters`).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The admin client's configuration, for a client made elsewhere (on another runtime: a
    /// client's connection tasks run on the runtime it is made on).
    pub async fn config(&self) -> Result<Config, StartError> {
        config(&self.kubeconfig).await
    }

    /// The admin kubeconfig, for tools and other components.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The temporary directory holding data, certificates and logs.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// How long start-up took.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// The processes started, by name and id.
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.supervisor.processes()
    }

    /// Creates a fresh namespace for a test, named after it, and waits until pods can be created
    /// in it (its `default` service account exists).
    pub async fn namespace(&self, test: &str) -> Result<String, StartError> {
        let number = self.namespaces.fetch_add(1, Ordering::Relaxed);
        let mut name: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        name.truncate(50);
        let name = format!("{}-{number}", name.trim_matches('-'));
        create_namespace(&self.client, &name).await?;
        Ok(name)
    }

    async fn wait_until_ready(&mut self) -> Result<(), StartError> {
        let client = self.client.clone();
        create_namespace(&client, PROBE_NAMESPACE).await?;
        let nodes: Api<Node> = Api::all(client.clone());
        wait_until(
            &mut self.supervisor,
            &self.directory,
            "three kwok nodes Ready",
            || async {
                let ready = nodes
                    .list(&Default::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let count = ready
                    .items
                    .iter()
                    .filter(|node| node_is_ready(node))
                    .count();
                Ok((count == NODES.len()).then_some(()))
            },
        )
        .await?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), PROBE_NAMESPACE);
        let probe: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "probe"},
            "spec": {"containers": [{"name": "probe", "image": "busybox"}]}
        }))
        .expect("the probe pod is well formed");
        pods.create(&PostParams::default(), &probe)
            .await
            .map_err(kube_error("create the probe pod"))?;
        wait_until(
            &mut self.supervisor,
            &self.directory,
            "the probe pod Running on a kwok node",
            || async {
                let pod = pods.get("probe").await.map_err(|e| e.to_string())?;
                let phase = pod.status.as_ref().and_then(|status| status.phase.clone());
                Ok((phase.as_deref() == Some("Running")).then_some(()))
            },
        )
        .await
    }

    /// Stops every process, checks that none survives, and removes the directory. Returns the
    /// processes still alive afterwards (none, unless something escaped the process group).
    pub fn stop(mut self) -> Vec<(u32, String)> {
        self.supervisor.stop();
        let marker = self.directory.display().to_string();
        let survivors = supervisor::wait_for_no_process_mentioning(&marker, Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.directory);
        survivors
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.supervisor.stop();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// Whether kwok has reported the node Ready.
pub fn node_is_ready(node: &Node) -> bool {
    let conditions = node
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref());
    conditions.is_some_and(|conditions| {
        conditions
            .iter()
            .any(|condition| condition.type_ == "Ready" && condition.status == "True")
    })
}

/// Polls `check` until it returns `Ok(Some(_))`, failing early if a component exits.
async fn wait_until<T, F, Fut>(
    supervisor: &mut Supervisor,
    directory: &Path,
    step: &str,
    mut check: F,
) -> Result<T, StartError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + START_STEP_LIMIT;
    let mut last_error = String::new();
    loop {
        supervisor.check_running()?;
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = error,
        }
        if Instant::now() >= deadline {
            let detail = if last_error.is_empty() {
                String::new()
            } else {
                format!("; last error: {last_error}")
            };
            return Err(StartError::Timeout {
                step: step.to_owned(),
                limit: START_STEP_LIMIT,
                logs: directory.join("logs").display().to_string(),
                detail,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn free_ports() -> Result<Ports, StartError> {
    // Hold every listener until all ports are chosen, so no two components get the same one.
    let listeners: Vec<std::net::TcpListener> = (0..6)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(io("find free ports"))?;
    let ports: Vec<u16> = listeners
        .iter()
        .map(|listener| listener.local_addr().map(|address| address.port()))
        .collect::<Result<_, _>>()
        .map_err(io("find free ports"))?;
    Ok(Ports {
        etcd_client: ports[0],
        etcd_peer: ports[1],
        apiserver: ports[2],
        controller_manager: ports[3],
        scheduler: ports[4],
        kwok: ports[5],
    })
}

fn kubeconfig_text(pki: &Pki, port: u16) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: tandem
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: admin
  user:
    client-certificate: {certificate}
    client-key: {key}
contexts:
- name: tandem
  context:
    cluster: tandem
    user: admin
current-context: tandem
",
        ca = pki.ca_certificate.display(),
        certificate = pki.admin_certificate.display(),
        key = pki.admin_key.display(),
    )
}

async fn config(kubeconfig: &Path) -> Result<Config, StartError> {
    let kubeconfig_error = |message: String| StartError::Kubeconfig {
        path: kubeconfig.display().to_string(),
        message,
    };
    let config = Kubeconfig::read_from(kubeconfig).map_err(|e| kubeconfig_error(e.to_string()))?;
    Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .map_err(|e| kubeconfig_error(e.to_string()))
}

async fn client(kubeconfig: &Path) -> Result<Client, StartError> {
    Client::try_from(config(kubeconfig).await?).map_err(kube_error("make the client"))
}

async fn start_etcd(
    supervisor: &mut Supervisor,
    binaries: &Binaries,
    directory: &Path,
    ports: &Ports,
) -> Result<(), StartError> {
    let client_url = format!("http://127.0.0.1:{}", ports.etcd_client);
    let peer_url = format!("http://127.0.0.1:{}", ports.etcd_peer);
    let mut etcd = Command::new(binaries.bin.join("etcd"));
    etcd.arg("--name=tandem")
        .arg(format!("--data-dir={}", directory.join("etcd").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=tandem={peer_url}"))
        .arg("--unsafe-no-fsync")
        .arg("--log-level=warn");
    supervisor.spawn("etcd", etcd).map_err(io("start etcd"))?;
    let port = ports.etcd_client;
    wait_until(supervisor, directory, "etcd /health", || async move {
        Ok(etcd_is_healthy(port).then_some(()))
    })
    .await
}

/// Asks etcd's `/health` over plain HTTP (etcd listens without TLS here).
fn etcd_is_healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.contains("\"health\":\"true\"")
}

fn start_apiserver(
    supervisor: &mut Supervisor,
    binaries: &Binaries,
    directory: &Path,
    pki: &Pki,
    ports: &Ports,
) -> Result<(), StartError> {
    let mut apiserver = Command::new(binaries.bin.join("kube-apiserver"));
    apiserver
        .arg(format!(
            "--etcd-servers=http://127.0.0.1:{}",
            ports.etcd_client
        ))
        .arg("--bind-address=127.0.0.1")
        // Mandatory where the machine has no default route.
        .arg("--advertise-address=127.0.0.1")
        // The endpoint reconciler refuses a loopback address; no pod needs the kubernetes
        // service's endpoints here.
        .arg("--endpoint-reconciler-type=none")
        .arg(format!("--secure-port={}", ports.apiserver))
        .arg(format!(
            "--cert-dir={}",
            directory.join("apiserver").display()
        ))
        .arg(format!(
            "--tls-cert-file={}",
            pki.serving_certificate.display()
        ))
        .arg(format!(
            "--tls-private-key-file={}",
            pki.serving_key.display()
        ))
        .arg(format!("--client-ca-file={}", pki.ca_certificate.display()))
        .arg("--authorization-mode=RBAC")
        .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
        .arg(format!(
            "--service-account-key-file={}",
            pki.service_account_public_key.display()
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            pki.service_account_key.display()
        ))
        .arg("--service-cluster-ip-range=10.0.0.0/24")
        .arg("--enable-priority-and-fairness=false")
        .arg("--profiling=false");
    supervisor
        .spawn("kube-apiserver", apiserver)
        .map_err(io("start kube-apiserver"))?;
    Ok(())
}

fn start_controllers(
    supervisor: &mut Supervisor,
    binaries: &Binaries,
    directory: &Path,
    pki: &Pki,
    kubeconfig: &Path,
    ports: &Ports,
) -> Result<(), StartError> {
    let kubeconfig = kubeconfig.display().to_string();
    let mut controller_manager = Command::new(binaries.bin.join("kube-controller-manager"));
    controller_manager
        .arg(format!("--kubeconfig={kubeconfig}"))
        .arg(format!("--authentication-kubeconfig={kubeconfig}"))
        .arg(format!("--authorization-kubeconfig={kubeconfig}"))
        .arg("--leader-elect=false")
        // Every controller, including PV/PVC protection: without them PVC deletion hangs.
        .arg("--controllers=*")
        .arg(format!(
            "--service-account-private-key-file={}",
            pki.service_account_key.display()
        ))
        .arg(format!("--root-ca-file={}", pki.ca_certificate.display()))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", ports.controller_manager))
        .arg(format!(
            "--cert-dir={}",
            directory.join("controller-manager").display()
        ))
        // Short node monitoring, so that node-failure tests run in seconds.
        .arg("--node-monitor-period=2s")
        .arg("--node-monitor-grace-period=20s");
    supervisor
        .spawn("kube-controller-manager", controller_manager)
        .map_err(io("start kube-controller-manager"))?;

    let mut scheduler = Command::new(binaries.bin.join("kube-scheduler"));
    scheduler
        .arg(format!("--kubeconfig={kubeconfig}"))
        .arg(format!("--authentication-kubeconfig={kubeconfig}"))
        .arg(format!("--authorization-kubeconfig={kubeconfig}"))
        .arg("--leader-elect=false")
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", ports.scheduler))
        .arg(format!(
            "--cert-dir={}",
            directory.join("scheduler").display()
        ));
    supervisor
        .spawn("kube-scheduler", scheduler)
        .map_err(io("start kube-scheduler"))?;

    let mut kwok = Command::new(binaries.bin.join("kwok"));
    kwok.arg(format!("--kubeconfig={kubeconfig}"))
        .arg("--manage-all-nodes=false")
        .arg(format!(
            "--manage-nodes-with-annotation-selector={}={}",
            KWOK_NODE_ANNOTATION.0, KWOK_NODE_ANNOTATION.1
        ))
        .arg(format!("--config={}", binaries.stages.display()))
        .arg("--cidr=10.244.0.0/16")
        .arg("--node-lease-duration-seconds=20")
        .arg(format!("--server-address=127.0.0.1:{}", ports.kwok));
    supervisor.spawn("kwok", kwok).map_err(io("start kwok"))?;
    Ok(())
}

async fn create_storage_class(client: &Client) -> Result<(), StartError> {
    let storage_class: StorageClass = serde_json::from_value(serde_json::json!({
        "metadata": {"name": LOCAL_STORAGE_CLASS},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
    }))
    .expect("the storage class is well formed");
    Api::<StorageClass>::all(client.clone())
        .create(&PostParams::default(), &storage_class)
        .await
        .map_err(kube_error("create the local-storage StorageClass"))?;
    Ok(())
}

async fn create_nodes(client: &Client) -> Result<(), StartError> {
    let nodes: Api<Node> = Api::all(client.clone());
    for name in NODES {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": name,
                "annotations": {KWOK_NODE_ANNOTATION.0: KWOK_NODE_ANNOTATION.1},
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
            "status": {
                "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            },
        }))
        .expect("the node is well formed");
        nodes
            .create(&PostParams::default(), &node)
            .await
            .map_err(kube_error(format!("create node {name}")))?;
    }
    Ok(())
}

async fn create_namespace(client: &Client, name: &str) -> Result<(), StartError> {
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
            .expect("the namespace is well formed");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .map_err(kube_error(format!("create namespace {name}")))?;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    let deadline = Instant::now() + START_STEP_LIMIT;
    // The controller-manager's service-account controller creates `default`; pods need it.
    while accounts
        .get_opt("default")
        .await
        .map_err(kube_error("read service accounts"))?
        .is_none()
    {
        if Instant::now() >= deadline {
            return Err(StartError::Timeout {
                step: format!("the default service account of namespace {name}"),
                limit: START_STEP_LIMIT,
                logs: String::new(),
                detail: String::new(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}
