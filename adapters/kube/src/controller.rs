//! The operator: it watches `ZenithCluster`s and runs one task per cluster around the one
//! driver ([`tandem_driver::Driver`]). A cluster's task:
//!
//! - applies the objects the cluster owns (the StatefulSet and the Services) on creation and on
//!   every change of its spec;
//! - watches the cluster's pods, claims and local PVs, and the nodes, and gives the engine what
//!   changed (`Input::Pod`, `Input::Volume`, `Input::Node`); the spec goes through the one
//!   conversion, `ZenithClusterSpec::to_engine`;
//! - polls each member's agent every `pollingInterval`, every 2 s while it does not answer (the
//!   poll renews the agent's lease);
//! - wakes the engine at its next deadline (`Input::Timer`);
//! - carries out the effects of every step once the step is in the log: Kubernetes effects
//!   through [`KubeEffects`], agent commands through [`AgentClient`], in the order they were
//!   issued for each member (a lane per member and kind), reports in order through one
//!   [`Reporter`] queue; each outcome goes back to the engine.
//!
//! Every step is appended to the cluster's stream in the event log before any of its effects
//! runs (the driver does that). After a restart, a cluster whose stream exists resumes from it;
//! one whose stream is gone but whose status shows it ran before starts a new stream and tells
//! the engine its log was lost (`Recovered { log_lost: true }`), which then reexamines what every
//! member reports rather than trust any memory.
//!
//! A cluster carries the finalizer [`FINALIZER`]: when it is deleted, its task stops, and its
//! StatefulSet, claims and local PVs are deleted (PVs are cluster-scoped, so no owner reference
//! can take them away), then the finalizer is removed.

use crate::agent::{
    AgentClient, AgentError, AgentResolver, AgentTls, CommandId, Timeouts, command_for,
};
use crate::effects::{ClusterObjects, KubeEffects};
use crate::leader::Leadership;
use crate::observe;
use crate::report::Reporter;
use crate::resources;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tandem_crds::{
    LogRefusal, OperatorStatus, Transition, ZenithCluster, ZenithClusterSpec, ZenithClusterStatus,
};
use tandem_driver::{Driver, Listing, MemberListing, Observed};
use tandem_engine::{
    Action, AgentReport, Effect, EffectError, Input, MemberId, NodeName, NodeStatus, Outcome,
    PodObservation, Poll, Spec, Timestamp, Topology, VolumeObservation,
};
use tandem_sled::EventLog;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The finalizer the operator puts on every `ZenithCluster`, to delete its local PVs.
pub const FINALIZER: &str = "tandem.io/cleanup";

/// How a member's agent is reached.
#[derive(Clone)]
pub enum Agents {
    /// At the pod's IP, on this port (in a cluster).
    PodIp {
        /// The agent's port.
        port: u16,
    },
    /// At an address a function gives (tests: agent doubles on loopback ports).
    Fixed(AgentAddress),
    /// At the IP address `host` names once `{member}` is replaced by the member's ordinal, on
    /// this port: for an operator run outside the cluster, where pod IPs are not reachable,
    /// with each agent's port forwarded to a loopback address of its own (`127.0.0.1{member}`
    /// reaches member 0 at 127.0.0.10 and member 1 at 127.0.0.11).
    Template {
        /// The host, with `{member}`.
        host: String,
        /// The agent's port.
        port: u16,
    },
}

impl Agents {
    /// Checks a host template ([`Agents::Template`]): both members' hosts must be IP
    /// addresses.
    pub fn template(host: &str, port: u16) -> Result<Agents, String> {
        for member in [MemberId(0), MemberId(1)] {
            template_address(host, port, member).ok_or_else(|| {
                format!(
                    "the agent host {host:?} gives {:?} for member {member}, which is not an IP address",
                    host.replace("{member}", &member.0.to_string())
                )
            })?;
        }
        Ok(Agents::Template {
            host: host.into(),
            port,
        })
    }
}

fn template_address(host: &str, port: u16, member: MemberId) -> Option<SocketAddr> {
    let ip: IpAddr = host
        .replace("{member}", &member.0.to_string())
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port))
}

/// Where a member's agent listens, by cluster and member.
pub type AgentAddress = Arc<dyn Fn(&ClusterObjects, MemberId) -> Option<SocketAddr> + Send + Sync>;

/// What the operator is configured with.
#[derive(Clone)]
pub struct OperatorConfig {
    /// The token every agent call carries.
    pub agent_token: String,
    /// TLS for the agent calls, plain HTTP when `None`.
    pub agent_tls: Option<AgentTls>,
    /// How agents are reached.
    pub agents: Agents,
    /// The timeouts of agent calls.
    pub timeouts: Timeouts,
    /// The directory on each node under which local PVs are made.
    pub local_root: String,
    /// The namespace to watch, all of them when `None`.
    pub namespace: Option<String>,
    /// The metrics and readiness the operator reports (`crate::metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This process's part in the leader election, when replicas elect one
    /// ([`crate::leader`]); `None`: this process always leads, in epoch 0.
    pub leadership: Option<Leadership>,
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The watch of `ZenithCluster`s ended.
    #[error("the watch of ZenithClusters ended")]
    WatchEnded,
    /// This process led in `epoch` and no longer does: it stops, so that it starts again as a
    /// candidate with nothing of the old leadership left running.
    #[error("leadership of epoch {epoch} was lost")]
    LeadershipLost {
        /// The epoch that was led in.
        epoch: u64,
    },
}

/// The highest leadership epoch this process knows of: in the statuses of the clusters it
/// watches and in its log. A Lease created anew starts above it ([`Leadership::start`]).
pub async fn epoch_floor(
    client: &Client,
    log: &EventLog,
    namespace: Option<&str>,
) -> Result<u64, kube::Error> {
    let api: Api<ZenithCluster> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let listed = api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(|cluster| cluster.status.as_ref()?.epoch)
        .max()
        .unwrap_or(0);
    let logged = log
        .streams()
        .unwrap_or_default()
        .iter()
        .filter_map(|stream| log.epoch(stream).ok())
        .max()
        .unwrap_or(0);
    Ok(listed.max(logged))
}

/// Runs the operator: with leader election, waits until this process leads, then acts until
/// it no longer leads ([`OperatorError::LeadershipLost`]) or its watch of `ZenithCluster`s
/// ends.
pub async fn run(
    client: Client,
    log: Arc<EventLog>,
    config: OperatorConfig,
) -> Result<(), OperatorError> {
    let Some(leadership) = config.leadership.clone() else {
        config.metrics.set_leading(true);
        return control(client, log, config, 0).await;
    };
    // A replica standing by is ready: it does what it should.
    config.metrics.set_ready();
    tracing::info!(identity = %leadership.identity(), "waiting to lead");
    let epoch = leadership.acquired().await;
    config.metrics.set_not_ready();
    config.metrics.set_leading(true);
    tracing::info!(epoch, identity = %leadership.identity(), "leading: acting on the clusters");
    let result = tokio::select! {
        result = control(client, log, config.clone(), epoch) => result,
        () = leadership.lost(epoch) => Err(OperatorError::LeadershipLost { epoch }),
    };
    config.metrics.set_leading(false);
    // Nothing acts for this process any more: it must not take the Lease again and hold it
    // while no one acts. A Lease still held is given up, so that another replica takes over at
    // once.
    match result {
        Err(OperatorError::LeadershipLost { .. }) => leadership.stop(),
        _ => leadership.release().await,
    }
    result
}

/// The operator's work as the leader of `epoch`.
async fn control(
    client: Client,
    log: Arc<EventLog>,
    config: OperatorConfig,
    epoch: u64,
) -> Result<(), OperatorError> {
    let api: Api<ZenithCluster> = match &config.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let mut tasks: BTreeMap<String, ClusterHandle> = BTreeMap::new();
    // The clean-ups of deleted clusters under way, by the cluster's UID.
    let mut cleaning: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let cluster = match event {
            Ok(watcher::Event::Apply(cluster) | watcher::Event::InitApply(cluster)) => cluster,
            Ok(watcher::Event::Delete(cluster)) => {
                if let Some(uid) = cluster.uid() {
                    tasks.remove(&uid);
                }
                config.metrics.forget(&metrics_name(&cluster));
                continue;
            }
            Ok(watcher::Event::InitDone) => {
                config.metrics.set_ready();
                continue;
            }
            Ok(watcher::Event::Init) => continue,
            Err(error) => {
                tracing::warn!(%error, "watching ZenithClusters");
                continue;
            }
        };
        let Some(uid) = cluster.uid() else {
            continue;
        };
        tasks.retain(|_, handle| !handle.task.is_finished());
        if cluster.metadata.deletion_timestamp.is_some() {
            tasks.remove(&uid);
            cleaning.retain(|_, task: &mut JoinHandle<()>| !task.is_finished());
            if let std::collections::btree_map::Entry::Vacant(entry) = cleaning.entry(uid) {
                entry.insert(tokio::spawn(clean_up_until_done(
                    client.clone(),
                    cluster,
                    config.leadership.clone(),
                    epoch,
                )));
            }
            continue;
        }
        if !cluster.finalizers().iter().any(|f| f == FINALIZER) {
            if let Err(error) = add_finalizer(&client, &cluster).await {
                tracing::warn!(%error, cluster = %cluster.name_any(), "adding the finalizer");
            }
            // The change comes back through the watch.
            continue;
        }
        match tasks.get(&uid) {
            Some(handle) => {
                let _ = handle.sender.send(Msg::Cluster(Box::new(cluster)));
            }
            None => {
                let (sender, receiver) = mpsc::unbounded_channel();
                let task = tokio::spawn(run_cluster(
                    client.clone(),
                    Arc::clone(&log),
                    config.clone(),
                    epoch,
                    cluster,
                    sender.clone(),
                    receiver,
                ));
                tasks.insert(uid, ClusterHandle { sender, task });
            }
        }
    }
    Err(OperatorError::WatchEnded)
}

/// A running cluster task; dropping it stops the task.
struct ClusterHandle {
    sender: mpsc::UnboundedSender<Msg>,
    task: JoinHandle<()>,
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What reaches a cluster's task.
enum Msg {
    /// The `ZenithCluster` changed.
    Cluster(Box<ZenithCluster>),
    /// A watched pod, claim, PV or node changed.
    Changed,
    /// An agent answered a poll (or did not), asked at the instant given.
    Answer(tandem_driver::AskTicket, Poll, tokio::time::Instant),
    /// An effect was carried out.
    Done(Effect, Outcome),
}

/// The stream of a cluster in the event log: a cluster deleted and created again under the
/// same name is another cluster.
pub fn stream_name(cluster: &ZenithCluster) -> String {
    format!(
        "{}/{}/{}",
        cluster.namespace().unwrap_or_default(),
        cluster.name_any(),
        cluster.uid().unwrap_or_default()
    )
}

async fn add_finalizer(client: &Client, cluster: &ZenithCluster) -> Result<(), kube::Error> {
    let api: Api<ZenithCluster> =
        Api::namespaced(client.clone(), &cluster.namespace().unwrap_or_default());
    let mut finalizers = cluster.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    // The resource version makes this a compare-and-swap of the list.
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": cluster.resource_version(),
    }});
    api.patch(
        &cluster.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
}

/// The pause before a failed clean-up of a deleted cluster is tried again; it doubles up to
/// [`CLEAN_UP_MAX_PAUSE`].
const CLEAN_UP_FIRST_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause between two tries of a clean-up.
const CLEAN_UP_MAX_PAUSE: Duration = Duration::from_secs(60);

/// Cleans a deleted cluster up ([`clean_up`]), and tries again after a failure, with a growing
/// pause, until it is done, the cluster is gone, or this process no longer leads in `epoch`
/// (the next leader finds the cluster deleting when it lists the clusters, and cleans up). A
/// failure does not wait for the cluster to change: a finalizer left behind would keep the
/// cluster from ever going.
async fn clean_up_until_done(
    client: Client,
    mut cluster: ZenithCluster,
    leadership: Option<Leadership>,
    epoch: u64,
) {
    let name = cluster.name_any();
    let api: Api<ZenithCluster> =
        Api::namespaced(client.clone(), &cluster.namespace().unwrap_or_default());
    let mut pause = CLEAN_UP_FIRST_PAUSE;
    loop {
        // Confirmed like every effect, and held while the deletions run.
        let acting = match &leadership {
            Some(leadership) => match leadership.confirm(epoch).await {
                Some(acting) => Some(acting),
                None => {
                    tracing::warn!(cluster = %name, epoch, "not the leader of this epoch any more: the clean-up is left to the leader");
                    return;
                }
            },
            None => None,
        };
        let result = clean_up(&client, &cluster).await;
        drop(acting);
        let Err(error) = result else {
            return;
        };
        tracing::warn!(%error, cluster = %name, retry_in_s = pause.as_secs(), "cleaning up: trying again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(CLEAN_UP_MAX_PAUSE);
        // Tried again on the cluster as it is now (its finalizers are removed under its
        // resource version).
        match api.get_opt(&name).await {
            Ok(Some(now)) if now.uid() == cluster.uid() => cluster = now,
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(%error, cluster = %name, "reading the cluster to clean it up")
            }
        }
    }
}

/// Deletes what a deleted cluster leaves behind: its StatefulSet (its pods go with it), its
/// claims and its local PVs; then removes the finalizer.
pub async fn clean_up(client: &Client, cluster: &ZenithCluster) -> Result<(), kube::Error> {
    if !cluster.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let namespace = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();
    let ignore_missing = |result: Result<(), kube::Error>| match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    };
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    ignore_missing(
        statefulsets
            .delete(&name, &DeleteParams::background())
            .await
            .map(|_| ()),
    )?;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    for selector in [
        format!("app.kubernetes.io/instance={name}"),
        format!("tandem.io/cluster={name}"),
    ] {
        for claim in claims
            .list(&ListParams::default().labels(&selector))
            .await?
        {
            ignore_missing(
                claims
                    .delete(&claim.name_any(), &listed(&claim))
                    .await
                    .map(|_| ()),
            )?;
        }
    }
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let selector = format!("tandem.io/cluster={name},tandem.io/namespace={namespace}");
    for volume in volumes
        .list(&ListParams::default().labels(&selector))
        .await?
    {
        let pv = volume.name_any();
        ignore_missing(volumes.delete(&pv, &listed(&volume)).await.map(|_| ()))?;
        // The UID makes the patch refuse another PV made under the same name since.
        let mut clear = json!({"metadata": {"finalizers": null}});
        if let Some(uid) = volume.uid() {
            clear["metadata"]["uid"] = json!(uid);
        }
        ignore_missing(
            volumes
                .patch(&pv, &PatchParams::default(), &Patch::Merge(&clear))
                .await
                .map(|_| ()),
        )?;
    }
    let api: Api<ZenithCluster> = Api::namespaced(client.clone(), &namespace);
    let finalizers: Vec<String> = cluster
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": cluster.resource_version(),
    }});
    ignore_missing(
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ()),
    )
}

/// A deletion of the object as it was listed: the API server refuses it if another object took
/// its name since.
fn listed<K: kube::Resource>(object: &K) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions {
            uid: object.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    }
}

/// The watched objects of one cluster, as reflector stores.
struct Watched {
    pods: Store<Pod>,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    nodes: Store<Node>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    sender: mpsc::UnboundedSender<Msg>,
) -> (Store<K>, JoinHandle<()>)
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    let task = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(_) => {
                    if sender.send(Msg::Changed).is_err() {
                        return;
                    }
                }
                Err(error) => tracing::warn!(%error, "watching"),
            }
        }
    });
    (reader, task)
}

impl Watched {
    fn start(
        client: &Client,
        objects: &ClusterObjects,
        sender: &mpsc::UnboundedSender<Msg>,
    ) -> Self {
        let namespace = &objects.namespace;
        let cluster = &objects.cluster;
        let (pods, pods_task) = watch(
            Api::<Pod>::namespaced(client.clone(), namespace),
            watcher::Config::default().labels(&format!("app.kubernetes.io/instance={cluster}")),
            sender.clone(),
        );
        let (claims, claims_task) = watch(
            Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace),
            watcher::Config::default(),
            sender.clone(),
        );
        let (volumes, volumes_task) = watch(
            Api::<PersistentVolume>::all(client.clone()),
            watcher::Config::default().labels(&format!(
                "tandem.io/cluster={cluster},tandem.io/namespace={namespace}"
            )),
            sender.clone(),
        );
        let (nodes, nodes_task) = watch(
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            sender.clone(),
        );
        Watched {
            pods,
            claims,
            volumes,
            nodes,
            tasks: vec![pods_task, claims_task, volumes_task, nodes_task],
        }
    }

    async fn ready(&self) {
        let _ = self.pods.wait_until_ready().await;
        let _ = self.claims.wait_until_ready().await;
        let _ = self.volumes.wait_until_ready().await;
        let _ = self.nodes.wait_until_ready().await;
    }
}

/// Where the members' agents are, from the pods the watch sees.
struct Resolver {
    agents: Agents,
    objects: ClusterObjects,
    pod_ips: [Option<IpAddr>; 2],
    replication_port: u16,
}

impl AgentResolver for Resolver {
    fn agent(&self, member: MemberId) -> Option<SocketAddr> {
        match &self.agents {
            Agents::PodIp { port } => {
                let ip = (*self.pod_ips.get(member.index())?)?;
                Some(SocketAddr::new(ip, *port))
            }
            Agents::Fixed(address) => address(&self.objects, member),
            Agents::Template { host, port } => template_address(host, *port, member),
        }
    }

    fn replication_address(&self, member: MemberId) -> Option<String> {
        Some(format!(
            "{}.{}.{}.svc:{}",
            self.objects.pod(member),
            self.objects.cluster,
            self.objects.namespace,
            self.replication_port
        ))
    }
}

/// The port the databases replicate on: the first container's port named `repl-port`, else its
/// second port.
fn replication_port(cluster: &ZenithCluster) -> u16 {
    let ports = cluster
        .spec
        .template
        .as_ref()
        .and_then(|template| template.spec.as_ref())
        .and_then(|pod| pod.containers.first())
        .and_then(|container| container.ports.clone())
        .unwrap_or_default();
    ports
        .iter()
        .find(|port| port.name.as_deref() == Some("repl-port"))
        .or_else(|| ports.get(1))
        .and_then(|port| u16::try_from(port.container_port).ok())
        .unwrap_or(0)
}

/// What the task last gave the engine, so that only changes are given again.
#[derive(Default)]
struct Given {
    nodes: BTreeMap<NodeName, NodeStatus>,
    pods: [Option<Option<PodObservation>>; 2],
    volumes: [Option<VolumeObservation>; 2],
    spec: Option<Spec>,
    generation: Option<i64>,
}

/// A cluster's name in the metrics: `namespace/name`.
fn metrics_name(cluster: &ZenithCluster) -> String {
    format!(
        "{}/{}",
        cluster.namespace().unwrap_or_default(),
        cluster.name_any()
    )
}

/// One cluster's task.
struct ClusterTask {
    client: Client,
    objects: ClusterObjects,
    driver: Driver<Arc<EventLog>>,
    effects: KubeEffects,
    agents: AgentClient,
    resolver: Resolver,
    reports: mpsc::UnboundedSender<Report>,
    sender: mpsc::UnboundedSender<Msg>,
    lanes: BTreeMap<(Option<u8>, bool), mpsc::UnboundedSender<Job>>,
    cluster: ZenithCluster,
    accepted: Option<ZenithClusterSpec>,
    refused: Option<ZenithClusterSpec>,
    given: Given,
    last_ms: u64,
    /// When each member's agent is to be asked next; `None` while a poll is in flight (the
    /// answer sets it, from the interval the engine gives for the member).
    next_poll: [Option<tokio::time::Instant>; 2],
    metrics: Arc<crate::metrics::Metrics>,
    /// The cluster's name in the metrics.
    name: String,
    /// The leadership every effect is confirmed against, and its epoch.
    fence: Option<(Leadership, u64)>,
    /// The stream, and its incarnation when it has one, as agent command ids name it.
    command_stream: String,
    _watched: Watched,
}

fn objects_of(cluster: &ZenithCluster, config: &OperatorConfig) -> ClusterObjects {
    ClusterObjects {
        namespace: cluster.namespace().unwrap_or_default(),
        cluster: cluster.name_any(),
        storage_class: cluster.spec.zenith_spec.storage_class_name.clone(),
        storage_size: cluster.spec.zenith_spec.storage_size.clone(),
        local_root: config.local_root.clone(),
    }
}

async fn run_cluster(
    client: Client,
    log: Arc<EventLog>,
    config: OperatorConfig,
    epoch: u64,
    cluster: ZenithCluster,
    sender: mpsc::UnboundedSender<Msg>,
    mut receiver: mpsc::UnboundedReceiver<Msg>,
) {
    let name = format!(
        "{}/{}",
        cluster.namespace().unwrap_or_default(),
        cluster.name_any()
    );
    match ClusterTask::start(client, log, config, epoch, cluster, sender).await {
        Ok(mut task) => {
            if let Err(error) = task.run(&mut receiver).await {
                tracing::error!(cluster = %name, %error, "the cluster's driver stopped");
            }
        }
        Err(error) => {
            tracing::error!(cluster = %name, %error, "the cluster's driver did not start")
        }
    }
}

/// Why a cluster's task stopped.
#[derive(Debug, thiserror::Error)]
enum TaskError {
    #[error(transparent)]
    Driver(#[from] tandem_driver::DriverError),
    #[error(transparent)]
    Log(#[from] tandem_sled::LogError),
    #[error("the agents' TLS configuration: {0}")]
    Agents(String),
    #[error("the cluster's log is refused, waiting for a person: {0}")]
    LogRefused(String),
    #[error("the witness could not be written in the status: {0}")]
    Witness(String),
}

/// The wall clock, in milliseconds since 1970.
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// What a cluster's stream in this process's log is worth, against the witness in the
/// cluster's status (`status.logIncarnation`, `status.lastSequence`).
#[derive(Debug, PartialEq, Eq)]
enum LogVerdict {
    /// Nothing says it is behind (or there is no stream): act on it.
    Current,
    /// The status was written from another life of the stream: another replica acted on the
    /// cluster with its own log (or this log lost the stream and started it again since). This
    /// stream is stale by design; it is set aside and the cluster recovered from observation,
    /// as after a lost log.
    Behind(String),
    /// The log found the stream damaged when it opened, or the stream ends before the record
    /// the witness names although the same life of it wrote both: the log was rolled back to an
    /// older copy of itself, or lost records. A person decides.
    Refused(String),
}

fn judge_log(
    log: &EventLog,
    stream: &str,
    status: Option<&ZenithClusterStatus>,
) -> Result<LogVerdict, TaskError> {
    let witnessed = status.and_then(|status| status.last_sequence).unwrap_or(0);
    let witness_life = status.and_then(|status| status.log_incarnation);
    let tail = match log.tail_seq(stream) {
        Err(tandem_sled::LogError::Damaged { detail, .. }) => {
            return Ok(LogVerdict::Refused(detail));
        }
        Err(other) => return Err(other.into()),
        Ok(tail) => tail,
    };
    if tail.0 == 0 {
        return Ok(LogVerdict::Current);
    }
    let life = match log.incarnation(stream) {
        Err(error @ tandem_sled::LogError::CorruptEpoch { .. }) => {
            return Ok(LogVerdict::Refused(error.to_string()));
        }
        other => other?,
    };
    if let Some(witness_life) = witness_life
        && life != Some(witness_life)
    {
        let life = life.map_or_else(|| "none".to_string(), |life| life.to_string());
        return Ok(LogVerdict::Behind(format!(
            "the status was written from incarnation {witness_life} of the stream {stream} \
             (record {witnessed}), but this log holds incarnation {life}: another replica \
             acted on the cluster since, with its own log"
        )));
    }
    if tail.0 < witnessed {
        return Ok(LogVerdict::Refused(format!(
            "the log's stream {stream} ends at record {tail}, but the status shows that record \
             {witnessed} was written: the log was rolled back to an older copy, or lost records"
        )));
    }
    Ok(LogVerdict::Current)
}

impl ClusterTask {
    async fn start(
        client: Client,
        log: Arc<EventLog>,
        config: OperatorConfig,
        epoch: u64,
        cluster: ZenithCluster,
        sender: mpsc::UnboundedSender<Msg>,
    ) -> Result<ClusterTask, TaskError> {
        let objects = objects_of(&cluster, &config);
        let stream = stream_name(&cluster);
        let ran_before = cluster
            .status
            .as_ref()
            .is_some_and(|status| status.state.is_some());
        let mut reporter = Reporter::new(client.clone(), objects.clone(), epoch);
        let verdict = judge_log(&log, &stream, cluster.status.as_ref())?;
        if let LogVerdict::Behind(reason) = &verdict {
            tracing::warn!(%stream, %reason, "the log is behind the status: recovering from observation");
            log.remove_stream(&stream)?;
            let _ = reporter
                .carry_out(&Action::EmitEvent {
                    warning: true,
                    reason: "LogBehind".into(),
                    message: format!(
                        "{reason}. The cluster is recovered from what its members report, as \
                         after a lost log"
                    ),
                })
                .await;
        }
        if let LogVerdict::Refused(reason) = &verdict {
            let token = &cluster.spec.ha_spec.reexamine;
            let refused = cluster
                .status
                .as_ref()
                .and_then(|status| status.log_refused.as_ref());
            match refused {
                // A person set a new reexamine token since tandem refused: the log is set
                // aside, and the cluster recovered from observation as after a lost log.
                Some(refused) if refused.reexamine != *token => {
                    tracing::warn!(%stream, %reason, "the log set aside as a person asked: recovering from observation");
                    log.remove_stream(&stream)?;
                }
                _ => {
                    let refusal = LogRefusal {
                        since: refused.map_or_else(
                            || {
                                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                                    k8s_openapi::jiff::Timestamp::now(),
                                )
                            },
                            |refused| refused.since.clone(),
                        ),
                        reason: reason.clone(),
                        reexamine: refused
                            .map_or_else(|| token.clone(), |refused| refused.reexamine.clone()),
                    };
                    reporter.refuse_log(&refusal).await.map_err(|error| {
                        TaskError::LogRefused(format!("{reason} (reporting it failed: {error:?})"))
                    })?;
                    return Err(TaskError::LogRefused(reason.clone()));
                }
            }
        }
        let tail = log.tail_seq(&stream)?;
        let logged = tail.0 > 0;
        let mut driver = if logged {
            Driver::recover(Arc::clone(&log), &stream)?
        } else {
            Driver::fresh(Arc::clone(&log), &stream)?
        };
        // A stream started afresh (a new cluster, a lost or set-aside log) is another life of
        // it: its effect ids start again from 1, so the agents' command ids name the life too.
        let incarnation = if logged {
            log.incarnation(&stream)?
        } else {
            Some(log.incarnate(&stream, wall_ms())?)
        };
        let command_stream = match incarnation {
            Some(incarnation) => format!("{stream}.{incarnation}"),
            None => stream.clone(),
        };
        // The status names the life of the stream it was written from.
        reporter.set_incarnation(incarnation);
        let identity = config
            .leadership
            .as_ref()
            .map_or("tandem-operator", Leadership::identity);
        let (start, how) = if logged {
            (
                "ResumedFromLog",
                format!("resumed from its log at record {tail}"),
            )
        } else if let LogVerdict::Behind(reason) = &verdict {
            (
                "RecoveredFromObservation",
                format!(
                    "its log was set aside ({reason}): the cluster is recovered from what its \
                     members report"
                ),
            )
        } else if ran_before {
            (
                "RecoveredFromObservation",
                "no log holds this cluster: it is recovered from what its members report".into(),
            )
        } else {
            ("NewCluster", "a new cluster".into())
        };
        // Before acting: the epoch in the log, then the witness in the status, so that a
        // replica taking over later can tell whether its own log saw everything done.
        log.set_epoch(&stream, epoch)?;
        let operator = OperatorStatus {
            identity: identity.to_string(),
            since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ),
            start: start.into(),
            message: how.clone(),
        };
        reporter
            .witness(tail.0, &operator)
            .await
            .map_err(|error| TaskError::Witness(format!("{error:?}")))?;
        let _ = reporter
            .carry_out(&Action::EmitEvent {
                warning: false,
                reason: "Leading".into(),
                message: format!(
                    "{identity} acts on this cluster in leadership epoch {epoch}: {how}"
                ),
            })
            .await;
        if let Some(leadership) = config.leadership.clone() {
            driver.set_leadership(Box::new(move || leadership.epoch() == Some(epoch)));
        }
        let watched = Watched::start(&client, &objects, &sender);
        watched.ready().await;
        let (reports, queue) = mpsc::unbounded_channel();
        tokio::spawn(report_in_order(reporter, queue));
        let agents = match &config.agent_tls {
            Some(tls) => AgentClient::with_tls(config.agent_token.clone(), config.timeouts, tls)
                .map_err(|error| TaskError::Agents(error.to_string()))?,
            None => AgentClient::new(config.agent_token.clone(), config.timeouts),
        };
        let name = metrics_name(&cluster);
        let mut task = ClusterTask {
            effects: KubeEffects::new(client.clone(), objects.clone()).observing(
                watched.pods.clone(),
                watched.claims.clone(),
                watched.volumes.clone(),
            ),
            agents,
            resolver: Resolver {
                agents: config.agents.clone(),
                objects: objects.clone(),
                pod_ips: [None, None],
                replication_port: replication_port(&cluster),
            },
            client,
            objects,
            driver,
            reports,
            sender,
            lanes: BTreeMap::new(),
            cluster,
            accepted: None,
            refused: None,
            given: Given::default(),
            last_ms: 0,
            next_poll: [Some(tokio::time::Instant::now()); 2],
            metrics: Arc::clone(&config.metrics),
            name,
            fence: config
                .leadership
                .clone()
                .map(|leadership| (leadership, epoch)),
            command_stream,
            _watched: watched,
        };
        task.metrics
            .set_state(&task.name, task.driver.engine().state().cluster());
        task.apply_resources().await;
        let now = task.now();
        let Some(spec) = task.spec() else {
            // The engine waits for a spec it can take; the message is out.
            return Ok(task);
        };
        let listing = task.listing();
        if logged || ran_before {
            // A restart: from the log, or without it when the status shows the cluster ran.
            let log_lost = !logged;
            if log_lost {
                tracing::warn!(stream = %task.driver.stream(), "no log for a cluster that ran: recovering from observation");
            }
            for (_, observed) in task
                .driver
                .relist(now, log_lost, listing.clone(), spec.clone())?
            {
                task.handle(observed)?;
            }
        } else {
            // A new cluster: what the watches list, then the spec.
            let mut inputs: Vec<Input> = listing
                .nodes
                .iter()
                .map(|(node, status)| Input::Node {
                    node: node.clone(),
                    status: *status,
                })
                .collect();
            for member in &listing.members {
                inputs.push(Input::Volume {
                    member: member.member,
                    volume: member.volume.clone(),
                });
                inputs.push(Input::Pod {
                    member: member.member,
                    pod: member.pod.clone(),
                });
            }
            inputs.push(Input::Spec(spec.clone()));
            for input in inputs {
                let observed = task.driver.observe(now, input)?;
                task.handle(observed)?;
            }
        }
        task.given.spec = Some(spec);
        for (node, status) in listing.nodes {
            task.given.nodes.insert(node, status);
        }
        for member in listing.members {
            task.given.volumes[member.member.index()] = Some(member.volume);
            task.given.pods[member.member.index()] = Some(member.pod);
        }
        Ok(task)
    }

    /// Milliseconds since the epoch, never going backwards.
    fn now(&mut self) -> Timestamp {
        self.last_ms = self.last_ms.max(wall_ms());
        Timestamp(self.last_ms)
    }

    fn topology(&self) -> Topology {
        self.driver
            .engine()
            .state()
            .topology()
            .or_else(|| {
                tandem_engine::config::topology_from_replicas(
                    self.cluster.spec.zenith_spec.replicas,
                )
                .ok()
            })
            .unwrap_or(Topology::MasterSlave)
    }

    /// The engine's spec for the cluster now, or `None` with a warning Event when the spec
    /// cannot be taken (the previous one stays in force).
    fn spec(&mut self) -> Option<Spec> {
        let hash = resources::config_hash(&self.cluster);
        match self.cluster.spec.to_engine(self.accepted.as_ref(), hash) {
            Ok(spec) => {
                self.accepted = Some(self.cluster.spec.clone());
                self.refused = None;
                Some(spec)
            }
            Err(errors) => {
                self.refused = Some(self.cluster.spec.clone());
                let message = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                let _ = self.reports.send((
                    Action::EmitEvent {
                        warning: true,
                        reason: "SpecRejected".into(),
                        message: format!(
                            "the spec change is refused, the previous spec stays: {message}"
                        ),
                    },
                    Vec::new(),
                ));
                None
            }
        }
    }

    async fn apply_resources(&mut self) {
        let generation = self.cluster.metadata.generation;
        if self.given.generation == generation && generation.is_some() {
            return;
        }
        match resources::apply(&self.client, &self.cluster, &self.objects).await {
            Ok(()) => self.given.generation = generation,
            Err(error) => {
                tracing::warn!(%error, cluster = %self.objects.cluster, "applying the owned objects");
            }
        }
    }

    /// What the watches see now: the nodes the members may run on, each member's volume and pod.
    fn listing(&mut self) -> Listing {
        let watched = &self._watched;
        let affinity = self
            .cluster
            .spec
            .template
            .as_ref()
            .and_then(|template| template.affinity.clone());
        let nodes = watched
            .nodes
            .state()
            .iter()
            .filter(|node| observe::node_fits(affinity.as_ref(), node))
            .filter_map(|node| observe::node(node))
            .collect();
        let mut members = Vec::new();
        for member in self.topology().members() {
            let pod_ref = ObjectRef::new(&self.objects.pod(member)).within(&self.objects.namespace);
            let pod = watched.pods.get(&pod_ref);
            self.resolver.pod_ips[member.index()] = pod
                .as_ref()
                .and_then(|pod| pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok());
            let claim_ref =
                ObjectRef::new(&self.objects.pvc(member)).within(&self.objects.namespace);
            let claim = watched.claims.get(&claim_ref);
            let bound = claim
                .as_ref()
                .and_then(|claim| claim.spec.as_ref()?.volume_name.clone())
                .and_then(|name| watched.volumes.get(&ObjectRef::new(&name)));
            members.push(MemberListing {
                member,
                volume: observe::volume(claim.as_deref(), bound.as_deref()),
                pod: pod.as_deref().and_then(observe::pod),
            });
        }
        Listing { nodes, members }
    }

    async fn run(&mut self, receiver: &mut mpsc::UnboundedReceiver<Msg>) -> Result<(), TaskError> {
        loop {
            let next_poll = self
                .topology()
                .members()
                .filter_map(|member| self.next_poll[member.index()])
                .min();
            let poll_due = async {
                match next_poll {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let wake = self.driver.next_wake().map(|at| {
                let wait = at.0.saturating_sub(self.now().0);
                tokio::time::Instant::now() + Duration::from_millis(wait)
            });
            let timer = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = receiver.recv() => match message {
                    None => return Ok(()),
                    Some(message) => self.on_message(message).await?,
                },
                () = poll_due => self.poll_due(),
                () = timer => {
                    let now = self.now();
                    let observed = self.driver.observe(now, Input::Timer)?;
                    self.handle(observed)?;
                }
            }
        }
    }

    async fn on_message(&mut self, message: Msg) -> Result<(), TaskError> {
        match message {
            Msg::Cluster(cluster) => {
                self.cluster = *cluster;
                let same = [&self.accepted, &self.refused]
                    .iter()
                    .any(|known| known.as_ref() == Some(&self.cluster.spec));
                if same {
                    return Ok(());
                }
                // A spec refused by the conversion or by the engine changes nothing that runs:
                // the owned objects are applied only once the engine took it.
                let previous = self.accepted.clone();
                let Some(spec) = self.spec() else {
                    return Ok(());
                };
                if self.given.spec.as_ref() != Some(&spec) {
                    let now = self.now();
                    let observed = self.driver.observe(now, Input::Spec(spec.clone()))?;
                    let refused = observed.record.as_ref().is_some_and(|record| {
                        record
                            .events
                            .iter()
                            .any(|event| matches!(event, tandem_engine::Event::SpecRejected { .. }))
                    });
                    self.handle(observed)?;
                    if refused {
                        self.refused = std::mem::replace(&mut self.accepted, previous);
                        return Ok(());
                    }
                    self.given.spec = Some(spec);
                }
                self.apply_resources().await;
            }
            Msg::Changed => self.observe_changes()?,
            Msg::Answer(ticket, poll, asked_at) => {
                let now = self.now();
                let member = ticket.member();
                match self.driver.answer(now, ticket, poll)? {
                    Some(observed) => self.handle(observed)?,
                    None => tracing::debug!(
                        member = %member,
                        "answer dropped: asked before the member's data changed"
                    ),
                }
                // The next poll of this member, after the interval the engine gives for it now:
                // shorter while the member is not reachable.
                let interval = Duration::from_millis(self.driver.poll_interval_ms(member));
                let at = (asked_at + interval).max(tokio::time::Instant::now());
                self.next_poll[member.index()] = Some(at);
            }
            Msg::Done(effect, outcome) => {
                if let Outcome::Failed(error) = outcome {
                    self.metrics
                        .effect_failed(&self.name, effect.action.name(), error);
                }
                let now = self.now();
                if let Some(observed) = self.driver.finished(now, &effect, outcome)? {
                    self.handle(observed)?;
                }
            }
        }
        Ok(())
    }

    /// Gives the engine what changed among the nodes, volumes and pods.
    fn observe_changes(&mut self) -> Result<(), TaskError> {
        let listing = self.listing();
        let mut inputs = Vec::new();
        let seen: BTreeMap<NodeName, NodeStatus> = listing.nodes.into_iter().collect();
        for (node, status) in &seen {
            if self.given.nodes.get(node) != Some(status) {
                inputs.push(Input::Node {
                    node: node.clone(),
                    status: *status,
                });
            }
        }
        for (node, status) in &self.given.nodes {
            if !seen.contains_key(node) && *status != NodeStatus::Deleted {
                inputs.push(Input::Node {
                    node: node.clone(),
                    status: NodeStatus::Deleted,
                });
            }
        }
        for member in listing.members {
            let index = member.member.index();
            if self.given.volumes[index].as_ref() != Some(&member.volume) {
                inputs.push(Input::Volume {
                    member: member.member,
                    volume: member.volume.clone(),
                });
                self.given.volumes[index] = Some(member.volume);
            }
            if self.given.pods[index].as_ref() != Some(&member.pod) {
                inputs.push(Input::Pod {
                    member: member.member,
                    pod: member.pod.clone(),
                });
                self.given.pods[index] = Some(member.pod);
            }
        }
        for input in inputs {
            if let Input::Node { node, status } = &input {
                self.given.nodes.insert(node.clone(), *status);
            }
            let now = self.now();
            let observed = self.driver.observe(now, input)?;
            self.handle(observed)?;
        }
        Ok(())
    }

    /// Asks every member whose poll is due for its status; the answers come back as messages.
    fn poll_due(&mut self) {
        let lease_s = self.given.spec.as_ref().and_then(Spec::agent_lease);
        let now = tokio::time::Instant::now();
        for member in self.topology().members() {
            let due = self.next_poll[member.index()].is_some_and(|at| at <= now);
            if !due {
                continue;
            }
            self.next_poll[member.index()] = None;
            let ticket = self.driver.ask(member);
            let address = self.resolver.agent(member);
            let agents = self.agents.clone();
            let sender = self.sender.clone();
            tokio::spawn(async move {
                tracing::trace!(member = %member, ?address, "asking");
                let poll = match address {
                    Some(address) => match agents.status(address, lease_s).await {
                        Ok(status) => Poll::Report(AgentReport::from(&status)),
                        Err(error) => {
                            tracing::debug!(%error, member = %member, "poll");
                            Poll::Unreachable
                        }
                    },
                    None => Poll::Unreachable,
                };
                let _ = sender.send(Msg::Answer(ticket, poll, now));
            });
        }
    }

    /// A persisted step: its violation is reported, its effects carried out.
    fn handle(&mut self, observed: Observed) -> Result<(), TaskError> {
        let step = observed
            .record
            .as_ref()
            .map(crate::report::step_transitions)
            .unwrap_or_default();
        if let Some(record) = &observed.record {
            tracing::debug!(
                stream = %self.driver.stream(),
                seq = %record.seq,
                input = record.input.kind(),
                events = record.events.len(),
                effects = record.effects.len(),
                "step"
            );
            for event in &record.events {
                if let tandem_engine::Event::Transition {
                    from, to, detail, ..
                } = event
                {
                    tracing::info!(stream = %self.driver.stream(), "{from} -> {to}: {detail}");
                }
            }
            self.metrics.observe(&self.name, record);
        }
        if let Some(violation) = &observed.violation {
            tracing::error!(%violation, stream = %self.driver.stream(), "an invariant is broken");
        }
        for effect in observed.effects {
            self.dispatch(effect, &step)?;
        }
        Ok(())
    }

    /// Carries `effect` out; `step`: the transitions of the step that issued it.
    fn dispatch(&mut self, effect: Effect, step: &[Transition]) -> Result<(), TaskError> {
        if effect.action.is_report() {
            let step = match effect.action {
                Action::UpdateStatus(_) => step.to_vec(),
                _ => Vec::new(),
            };
            let _ = self.reports.send((effect.action, step));
            return Ok(());
        }
        if let Some(outcome) = self.driver.before_carrying_out(&effect) {
            let now = self.now();
            if let Some(observed) = self.driver.finished(now, &effect, outcome)? {
                self.handle(observed)?;
            }
            return Ok(());
        }
        let command = command_for(&effect.action, &self.resolver).map(|command| {
            command.and_then(|(member, message)| {
                let address = self
                    .resolver
                    .agent(member)
                    .ok_or(AgentError::NoAddress(member))?;
                Ok((address, message))
            })
        });
        let id = CommandId::new(&self.command_stream, effect.id);
        // Effects on one member reach the world in the order the engine issued them: a label
        // patch issued later never lands before an earlier one (two actives labelled), a command
        // never overtakes the one before it. One lane per member and kind (agent commands apart
        // from API calls, so that a silent agent does not hold up a pod deletion).
        let lane = (
            effect.action.member().map(|member| member.0),
            command.is_some(),
        );
        let sender = match self.lanes.get(&lane) {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, queue) = mpsc::unbounded_channel();
                tokio::spawn(carry_out_in_order(
                    self.effects.clone(),
                    self.agents.clone(),
                    self.fence.clone(),
                    self.sender.clone(),
                    queue,
                ));
                self.lanes.insert(lane, sender.clone());
                sender
            }
        };
        let _ = sender.send(Job {
            effect,
            command,
            id,
        });
        Ok(())
    }
}

/// An effect on its way to a lane.
struct Job {
    effect: Effect,
    command: Option<Result<(SocketAddr, crate::agent::CommandMessage), AgentError>>,
    id: CommandId,
}

/// Carries out the effects of one lane one after the other; each outcome goes back to the
/// cluster's task. Right before each, the leadership is confirmed against the Lease: a deposed
/// leader's effect is withdrawn, not carried out.
async fn carry_out_in_order(
    effects: KubeEffects,
    agents: AgentClient,
    fence: Option<(Leadership, u64)>,
    sender: mpsc::UnboundedSender<Msg>,
    mut queue: mpsc::UnboundedReceiver<Job>,
) {
    while let Some(Job {
        effect,
        command,
        id,
    }) = queue.recv().await
    {
        // The cluster's task is gone (the operator stopped it): what it queued is abandoned.
        if sender.is_closed() {
            return;
        }
        // Held until the call ends: the Lease is not released while it is in flight.
        let acting = match &fence {
            Some((leadership, epoch)) => match leadership.confirm(*epoch).await {
                Some(acting) => Some(acting),
                None => {
                    tracing::warn!(id = %effect.id.0, action = effect.action.name(), epoch, "not the leader of this epoch any more: the effect is withdrawn");
                    if sender
                        .send(Msg::Done(effect, Outcome::Failed(EffectError::Withdrawn)))
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
            },
            None => None,
        };
        tracing::debug!(id = %effect.id.0, action = ?effect.action, "carrying out");
        let outcome = match command {
            Some(Ok((address, message))) => match agents.command(address, &id, &message).await {
                Ok(()) => Outcome::Ok,
                Err(error) => {
                    tracing::warn!(%error, action = effect.action.name(), "agent command");
                    Outcome::Failed(error.effect_error())
                }
            },
            Some(Err(error)) => Outcome::Failed(error.effect_error()),
            // An API call has the deadline of an agent command: a call that lands long after
            // the leadership was confirmed would widen the window a deposed leader has.
            None => match tokio::time::timeout(
                agents.timeouts().command,
                effects.carry_out(&effect.action),
            )
            .await
            {
                Ok(outcome) => outcome.unwrap_or(Outcome::Failed(EffectError::Rejected)),
                Err(_) => Outcome::Failed(EffectError::Timeout),
            },
        };
        drop(acting);
        tracing::debug!(id = %effect.id.0, action = effect.action.name(), ?outcome, "carried out");
        if sender.send(Msg::Done(effect, outcome)).is_err() {
            return;
        }
    }
}

/// A report to write, with the transitions of the step that made it (for a status).
type Report = (Action, Vec<Transition>);

/// Writes reports one after the other, so that a newer status is never overwritten by an older.
/// Each comes with the transitions of the step that made it.
async fn report_in_order(reporter: Reporter, mut queue: mpsc::UnboundedReceiver<Report>) {
    while let Some((action, step)) = queue.recv().await {
        if let Some(Outcome::Failed(error)) = reporter.carry_out_step(&action, &step).await {
            tracing::warn!(?error, action = action.name(), "report");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LogVerdict, judge_log};
    use tandem_crds::ZenithClusterStatus;
    use tandem_engine::Seq;
    use tandem_sled::{EventLog, LogConfig, Workload};

    const STREAM: &str = "ns/zc/uid";

    /// A log whose stream holds `records` records, of incarnation `life` when given.
    fn log_of(records: usize, life: Option<u64>) -> (tempfile::TempDir, EventLog) {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let log = EventLog::open(directory.path(), LogConfig::default()).expect("a log");
        let mut tail = Seq(0);
        for record in Workload::new().records(records) {
            tail = log
                .append(STREAM, tail, std::slice::from_ref(&record))
                .expect("an append");
        }
        if let Some(life) = life {
            log.incarnate(STREAM, life).expect("an incarnation");
        }
        (directory, log)
    }

    fn witness(last_sequence: u64, life: Option<u64>) -> ZenithClusterStatus {
        ZenithClusterStatus {
            state: Some("Normal".into()),
            last_sequence: Some(last_sequence),
            epoch: Some(3),
            log_incarnation: life,
            ..ZenithClusterStatus::default()
        }
    }

    fn judge(
        records: usize,
        life: Option<u64>,
        status: Option<&ZenithClusterStatus>,
    ) -> LogVerdict {
        let (_directory, log) = log_of(records, life);
        judge_log(&log, STREAM, status).expect("a verdict")
    }

    #[test]
    fn a_log_that_wrote_the_status_and_reaches_it_is_current() {
        assert_eq!(
            judge(20, Some(7), Some(&witness(20, Some(7)))),
            LogVerdict::Current
        );
        assert_eq!(
            judge(25, Some(7), Some(&witness(20, Some(7)))),
            LogVerdict::Current
        );
        // A new cluster, and a stream the log does not hold (lost: recovered as such).
        assert_eq!(judge(5, Some(7), None), LogVerdict::Current);
        assert_eq!(
            judge(0, None, Some(&witness(20, Some(7)))),
            LogVerdict::Current
        );
    }

    #[test]
    fn an_older_copy_of_the_log_that_wrote_the_status_is_refused() {
        let verdict = judge(12, Some(7), Some(&witness(20, Some(7))));
        let LogVerdict::Refused(reason) = verdict else {
            panic!("{verdict:?}");
        };
        assert!(reason.contains("ends at record 12"), "{reason}");
        assert!(reason.contains("record 20"), "{reason}");
        // A status written before incarnations were: the record count alone decides.
        assert!(matches!(
            judge(12, Some(7), Some(&witness(20, None))),
            LogVerdict::Refused(_)
        ));
        assert!(matches!(
            judge(12, None, Some(&witness(20, None))),
            LogVerdict::Refused(_)
        ));
    }

    #[test]
    fn a_log_of_another_life_of_the_stream_is_behind_however_long_it_is() {
        for records in [3, 20, 40] {
            let verdict = judge(records, Some(8), Some(&witness(20, Some(7))));
            let LogVerdict::Behind(reason) = verdict else {
                panic!("{records} records: {verdict:?}");
            };
            assert!(reason.contains("incarnation 7"), "{reason}");
            assert!(reason.contains("incarnation 8"), "{reason}");
        }
        assert!(matches!(
            judge(20, None, Some(&witness(20, Some(7)))),
            LogVerdict::Behind(_)
        ));
    }
}
