//! The operator end to end on the real control plane: `tandem_kube::controller::run` with its
//! event log on disk, watching one namespace, against the real API server, scheduler,
//! controller-manager and kwok. Each member's database is an agent double on loopback that
//! speaks the real protocol and replicates from the double of its source; a follower restarts a
//! member's double when kwok runs a new pod for it, and stops it when its pod goes. Every
//! Kubernetes interaction is real.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use libtest_mimic::Trial;
use serde_json::{Value, json};
use tandem_crds::ZenithCluster;
use tandem_kube::agent::Timeouts;
use tandem_kube::agent_double::{AgentDouble, DoubleWorld};
use tandem_kube::controller::{Agents, OperatorConfig};
use tandem_kube::resources::{CONFIG_HASH_ANNOTATION, ROLE_ACTIVE, ROLE_LABEL};
use tandem_sled::{EventLog, LogConfig};
use tandem_tests::cluster::ControlPlane;
use tandem_tests::examples::Example;
use tandem_tests::runner::control_plane;

use crate::support::{install_crd, wait_for_within};

/// The cluster's name in every test.
const NAME: &str = "zc";
/// The agents' token.
const TOKEN: &str = "e2e-token";
/// How long the operator may take to reach a state.
const LIMIT: Duration = Duration::from_secs(120);

pub fn tests() -> Vec<Trial> {
    vec![
        control_plane(
            "operator::a_cluster_is_created_and_reaches_normal",
            a_cluster_is_created_and_reaches_normal,
        ),
        control_plane(
            "operator::the_active_process_goes_down",
            the_active_process_goes_down,
        ),
        control_plane(
            "operator::the_standby_node_is_lost",
            the_standby_node_is_lost,
        ),
        control_plane(
            "operator::a_restarted_operator_resumes_with_or_without_its_log",
            a_restarted_operator_resumes_with_or_without_its_log,
        ),
        control_plane(
            "operator::a_deleted_cluster_is_cleaned_up",
            a_deleted_cluster_is_cleaned_up,
        ),
        control_plane(
            "operator::a_standalone_cluster_stops_and_starts_with_its_data",
            a_standalone_cluster_stops_and_starts_with_its_data,
        ),
        control_plane(
            "operator::bad_input_is_refused_and_changes_nothing",
            bad_input_is_refused_and_changes_nothing,
        ),
        control_plane(
            "operator::a_log_behind_its_status_is_refused_until_a_person_says_so",
            a_log_behind_its_status_is_refused_until_a_person_says_so,
        ),
    ]
}

/// An operator and the doubles of one cluster's members, in a namespace of their own.
struct Rig {
    client: Client,
    namespace: String,
    world: DoubleWorld,
    doubles: Vec<AgentDouble>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    config: OperatorConfig,
    operator: Option<tokio::task::JoinHandle<()>>,
    logs: Vec<tempfile::TempDir>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(&self.operator) {
            task.abort();
        }
    }
}

impl Rig {
    async fn start(cp: &ControlPlane, test: &str, members: u8) -> Rig {
        // The operator's log, when asked for: TANDEM_TEST_LOG=tandem_kube=debug.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("TANDEM_TEST_LOG"))
            .try_init();
        let client = cp.client();
        install_crd(&client).await;
        let namespace = cp.namespace(test).await.expect("a namespace");
        let world = DoubleWorld::default();
        let mut doubles = Vec::new();
        for member in 0..members {
            let double = AgentDouble::start_member(TOKEN, &world, member)
                .await
                .expect("an agent double");
            // No pod, no database: the follower starts it when kwok runs the member's pod.
            double.state().go_offline();
            doubles.push(double);
        }
        let addresses: Vec<_> = doubles.iter().map(AgentDouble::address).collect();
        let config = OperatorConfig {
            agent_token: TOKEN.into(),
            agent_tls: None,
            agents: Agents::Fixed(Arc::new(move |_, member| {
                addresses.get(member.index()).copied()
            })),
            timeouts: Timeouts {
                status: Duration::from_secs(1),
                command: Duration::from_secs(5),
            },
            local_root: "/mnt/tandem".into(),
            namespace: Some(namespace.clone()),
            metrics: Arc::new(tandem_kube::metrics::Metrics::new()),
        };
        let follower = tokio::spawn(follow_pods(
            client.clone(),
            namespace.clone(),
            Arc::clone(&world),
        ));
        let mut rig = Rig {
            client,
            namespace,
            world,
            doubles,
            tasks: vec![follower],
            config,
            operator: None,
            logs: Vec::new(),
        };
        rig.start_operator(true).await;
        rig
    }

    /// Starts the operator, on the log of the previous one (`same_log`) or on a new, empty one.
    async fn start_operator(&mut self, same_log: bool) {
        if let Some(operator) = self.operator.take() {
            operator.abort();
            let _ = operator.await;
        }
        if !same_log || self.logs.is_empty() {
            // TANDEM_TEST_KEEP_LOGS=1 keeps each operator's event log for `tandem-sim log show`.
            let mut log_dir = tempfile::tempdir().expect("a log directory");
            if std::env::var_os("TANDEM_TEST_KEEP_LOGS").is_some() {
                log_dir.disable_cleanup(true);
                eprintln!(
                    "{}: an operator's log is in {}",
                    self.namespace,
                    log_dir.path().display()
                );
            }
            self.logs.push(log_dir);
        }
        let path = self.logs.last().expect("a log").path().to_path_buf();
        // The previous operator's tasks let go of the log as they are cancelled.
        let log = wait_for_within("the log to be free", LIMIT, || async {
            EventLog::open(&path, LogConfig::default()).ok()
        })
        .await;
        let client = self.client.clone();
        let config = self.config.clone();
        self.operator = Some(tokio::spawn(async move {
            let _ = tandem_kube::controller::run(client, Arc::new(log), config).await;
        }));
    }

    /// Stops the operator and waits until its log is closed.
    async fn stop_operator(&mut self) {
        if let Some(operator) = self.operator.take() {
            operator.abort();
            let _ = operator.await;
        }
        let path = self.logs.last().expect("a log").path().to_path_buf();
        wait_for_within("the log to be free", LIMIT, || async {
            EventLog::open(&path, LogConfig::default()).ok().map(drop)
        })
        .await;
    }

    fn clusters(&self) -> Api<ZenithCluster> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn create(&self, object: Value) -> ZenithCluster {
        let object: ZenithCluster = serde_json::from_value(object).expect("a ZenithCluster");
        self.clusters()
            .create(&PostParams::default(), &object)
            .await
            .expect("the API server takes the cluster")
    }

    async fn state_is(&self, state: &str) -> ZenithCluster {
        let clusters = self.clusters();
        wait_for_within(&format!("the cluster to be {state}"), LIMIT, || async {
            let cluster = clusters.get(NAME).await.ok()?;
            let now = cluster.status.as_ref()?.state.as_deref()?;
            (now == state).then_some(cluster)
        })
        .await
    }

    async fn patch_spec(&self, spec: Value) -> Result<ZenithCluster, kube::Error> {
        self.clusters()
            .patch(
                NAME,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
    }

    /// The member the status names as the active.
    fn active_of(cluster: &ZenithCluster) -> u8 {
        let name = cluster
            .status
            .as_ref()
            .and_then(|status| status.active_member.clone())
            .expect("an active member");
        name.rsplit('-')
            .next()
            .and_then(|ordinal| ordinal.parse().ok())
            .expect("a member name ends in its ordinal")
    }

    /// Waits until the `-rw` Service's endpoints are exactly the pod of `member`.
    async fn rw_selects(&self, member: u8) {
        let slices: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &self.namespace);
        let pods = self.pods();
        wait_for_within(
            &format!("{NAME}-rw to select member {member}"),
            LIMIT,
            || async {
                let pod = pods.get(&format!("{NAME}-{member}")).await.ok()?;
                let labelled = pod.labels().get(ROLE_LABEL).map(String::as_str);
                let ip = pod.status.as_ref()?.pod_ip.clone()?;
                let list = slices
                    .list(
                        &ListParams::default()
                            .labels(&format!("kubernetes.io/service-name={NAME}-rw")),
                    )
                    .await
                    .ok()?;
                let addresses: Vec<String> = list
                    .items
                    .iter()
                    .flat_map(|slice| slice.endpoints.iter().flatten())
                    .flat_map(|endpoint| endpoint.addresses.clone())
                    .collect();
                (labelled == Some(ROLE_ACTIVE) && addresses == vec![ip]).then_some(())
            },
        )
        .await;
    }

    /// The reasons of the Events on the cluster.
    async fn event_reasons(&self) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        events
            .list(&ListParams::default())
            .await
            .expect("the Events")
            .items
            .into_iter()
            .filter(|event| event.involved_object.name.as_deref() == Some(NAME))
            .filter_map(|event| event.reason)
            .collect()
    }
}

/// Restarts a member's double when kwok runs a new pod for it (with the configuration hash the
/// pod's template names), and stops it when its pod goes.
async fn follow_pods(client: Client, namespace: String, world: DoubleWorld) {
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let mut running: BTreeMap<u8, String> = BTreeMap::new();
    loop {
        let listed = pods
            .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={NAME}")))
            .await
            .map(|list| list.items)
            .unwrap_or_default();
        let doubles: Vec<(u8, _)> = world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(member, state)| (*member, Arc::clone(state)))
            .collect();
        for (member, state) in doubles {
            let pod = listed
                .iter()
                .find(|pod| pod.name_any() == format!("{NAME}-{member}"));
            let live = pod.filter(|pod| {
                pod.metadata.deletion_timestamp.is_none()
                    && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            });
            let mut double = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match live {
                Some(pod) if running.get(&member) != pod.metadata.uid.as_ref() => {
                    let hash = pod
                        .annotations()
                        .get(CONFIG_HASH_ANNOTATION)
                        .and_then(|hash| u64::from_str_radix(hash, 16).ok())
                        .unwrap_or(0);
                    double.restart(hash);
                    running.insert(member, pod.metadata.uid.clone().unwrap_or_default());
                }
                Some(_) => {}
                None => {
                    if running.remove(&member).is_some() {
                        double.go_offline();
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The master-slave example, renamed, with quick timing for tests, and without its log claim
/// (no provisioner makes volumes of the local class here: the operator makes only the data
/// volumes).
fn master_slave() -> Value {
    let mut object = Example::MasterSlave.json();
    object["metadata"] = json!({"name": NAME});
    object["spec"]["volumeClaimTemplates"] = json!([]);
    let anti = &mut object["spec"]["template"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        [0]["labelSelector"]["matchLabels"];
    *anti = json!({"app.kubernetes.io/instance": NAME});
    object["spec"]["zenithSpec"]["pollingInterval"] = json!(1);
    object["spec"]["zenithSpec"]["unreachableTimeout"] = json!(8);
    object["spec"]["zenithSpec"]["storageSize"] = json!("1Gi");
    object["spec"]["haSpec"]["agentLeaseSeconds"] = json!(5);
    object["spec"]["haSpec"]["nodeLostTimeout"] = json!(20);
    object
}

fn standalone() -> Value {
    let mut object = Example::Standalone.json();
    object["metadata"] = json!({"name": NAME});
    object["spec"]["volumeClaimTemplates"] = json!([]);
    object["spec"]["zenithSpec"]["pollingInterval"] = json!(1);
    object["spec"]["zenithSpec"]["unreachableTimeout"] = json!(8);
    object["spec"]["zenithSpec"]["storageSize"] = json!("1Gi");
    object["spec"]["haSpec"]["agentLeaseSeconds"] = json!(5);
    object
}

async fn a_cluster_is_created_and_reaches_normal(cp: Arc<ControlPlane>) {
    let rig = Rig::start(&cp, "operator-create", 2).await;
    rig.create(master_slave()).await;
    let cluster = rig.state_is("Normal").await;
    let active = Rig::active_of(&cluster);
    // Each member's claim is bound to the local PV provisioned for it, on the node its pod runs.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(rig.client.clone(), &rig.namespace);
    let volumes: Api<PersistentVolume> = Api::all(rig.client.clone());
    for member in 0..2u8 {
        let claim = claims
            .get(&format!("data-{NAME}-{member}"))
            .await
            .expect("the member's claim");
        let pv_name = claim
            .spec
            .as_ref()
            .and_then(|spec| spec.volume_name.clone())
            .expect("bound");
        assert_eq!(pv_name, format!("{}-{NAME}-{member}-g1", rig.namespace));
        let volume = volumes.get(&pv_name).await.expect("the local PV");
        let pv_node = tandem_kube::observe::pv_node(&volume).expect("a pinned PV");
        let pod = rig
            .pods()
            .get(&format!("{NAME}-{member}"))
            .await
            .expect("the pod");
        assert_eq!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Running")
        );
        assert_eq!(
            pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            Some(pv_node.0.clone()),
            "the pod runs where its data is"
        );
    }
    rig.rw_selects(active).await;
    let status = cluster.status.expect("a status");
    assert_eq!(status.members.len(), 2);
    assert!(
        status
            .transitions
            .iter()
            .any(|transition| transition.to == "Normal"),
        "{:?}",
        status.transitions
    );
    // The standby holds what the active holds.
    let lsn = |member: usize| rig.doubles[member].state().status.lsn;
    rig.doubles[usize::from(active)].state().write(4096);
    wait_for_within("the standby to catch up", LIMIT, || async {
        (lsn(0) == lsn(1) && lsn(0) >= 4096).then_some(())
    })
    .await;
}

async fn the_active_process_goes_down(cp: Arc<ControlPlane>) {
    let rig = Rig::start(&cp, "operator-active-down", 2).await;
    rig.create(master_slave()).await;
    let cluster = rig.state_is("Normal").await;
    let old = Rig::active_of(&cluster);
    let new = 1 - old;
    rig.rw_selects(old).await;
    rig.doubles[usize::from(old)].state().write(8192);
    wait_for_within("the standby to be in sync", LIMIT, || async {
        let standby = rig.doubles[usize::from(new)].state().status.clone();
        (standby.in_sync && standby.lsn >= 8192).then_some(())
    })
    .await;
    // The engine records a steady member's contact every quarter of unreachableTimeout (2 s):
    // it must have seen the standby in sync at the active's position before the active fails,
    // or it rightly waits for the active, which holds the newest data.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let old_pod = rig
        .pods()
        .get(&format!("{NAME}-{old}"))
        .await
        .expect("the active's pod");
    let old_uid = old_pod.metadata.uid.clone().expect("a UID");
    // The active's database process dies; its pod stays.
    rig.doubles[usize::from(old)].state().stop();
    let clusters = rig.clusters();
    let promoted = wait_for_within("the standby to be promoted", LIMIT, || async {
        let cluster = clusters.get(NAME).await.ok()?;
        let status = cluster.status.as_ref()?;
        (status.active_member.as_deref() == Some(&format!("{NAME}-{new}")[..])).then_some(cluster)
    })
    .await;
    assert_eq!(Rig::active_of(&promoted), new);
    rig.rw_selects(new).await;
    // The failover is in the operator's metrics, with its duration.
    let metrics = rig.config.metrics.encode();
    let cluster = format!("{}/{NAME}", rig.namespace);
    for line in [
        format!(r#"tandem_failovers_total{{cluster="{cluster}"}} 1"#),
        format!(r#"tandem_failover_duration_seconds_count{{cluster="{cluster}"}} 1"#),
    ] {
        assert!(metrics.contains(&line), "missing {line:?} in\n{metrics}");
    }
    let into_active_down = format!(r#"tandem_transitions_total{{cluster="{cluster}",from="#);
    assert!(
        metrics.lines().any(|line| {
            line.starts_with(&into_active_down) && line.ends_with(r#"to="ActiveDown"} 1"#)
        }),
        "no transition to ActiveDown in\n{metrics}"
    );
    // The old active was fenced by deleting its pod under its UID; it rejoins as the standby.
    let pods = rig.pods();
    wait_for_within("the old active's pod to be replaced", LIMIT, || async {
        let pod = pods.get(&format!("{NAME}-{old}")).await.ok()?;
        (pod.metadata.uid.as_deref() != Some(old_uid.as_str())).then_some(())
    })
    .await;
    let cluster = rig.state_is("Normal").await;
    let status = cluster.status.expect("a status");
    let path: Vec<String> = status
        .transitions
        .iter()
        .map(|transition| transition.to.clone())
        .collect();
    assert!(path.iter().any(|to| to == "ActiveDown"), "{path:?}");
    assert_eq!(path.last().map(String::as_str), Some("Normal"), "{path:?}");
    let rejoined = rig.doubles[usize::from(old)].state().status.clone();
    assert_eq!(rejoined.lsn, 8192, "the old active holds every write again");
    let reasons = rig.event_reasons().await;
    for reason in ["ActiveFailed", "PromotionConfirmed"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
    assert!(!rig.world.lock().expect("the doubles").is_empty());
}

/// Three kwok nodes of the test's own, so that one can be lost without touching the others.
async fn own_nodes(client: &Client, namespace: &str) -> Vec<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut names = Vec::new();
    for index in 0..3 {
        let name = format!("{namespace}-node-{index}");
        let node: Node = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {
                    "kubernetes.io/hostname": name,
                    "type": "kwok",
                    "tandem.io/e2e": namespace,
                },
            },
            "spec": {},
        }))
        .expect("a well-formed node");
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("the node");
        names.push(name);
    }
    for name in &names {
        wait_for_within(&format!("{name} to be Ready"), LIMIT, || async {
            let node = nodes.get(name).await.ok()?;
            tandem_tests::cluster::node_is_ready(&node).then_some(())
        })
        .await;
    }
    names
}

async fn the_standby_node_is_lost(cp: Arc<ControlPlane>) {
    let rig = Rig::start(&cp, "operator-node-lost", 2).await;
    let names = own_nodes(&rig.client, &rig.namespace).await;
    let mut object = master_slave();
    object["spec"]["template"]["affinity"]["nodeAffinity"] = json!({
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
            "matchExpressions": [{"key": "tandem.io/e2e", "operator": "In",
                                  "values": [rig.namespace]}],
        }]},
    });
    rig.create(object).await;
    let cluster = rig.state_is("Normal").await;
    let active = Rig::active_of(&cluster);
    let standby = 1 - active;
    let pod = rig
        .pods()
        .get(&format!("{NAME}-{standby}"))
        .await
        .expect("the standby's pod");
    let lost = pod
        .spec
        .and_then(|spec| spec.node_name)
        .expect("a scheduled pod");
    assert!(names.contains(&lost), "the members run on the test's nodes");
    rig.doubles[usize::from(active)].state().write(1 << 20);
    // The standby's node goes NotReady (kwok's stage), then is deleted.
    let nodes: Api<Node> = Api::all(rig.client.clone());
    nodes
        .patch(
            &lost,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {
                "node-not-ready.stage.kwok.x-k8s.io": "true"
            }}})),
        )
        .await
        .expect("the node is labelled");
    wait_for_within("the node to be NotReady", LIMIT, || async {
        let node = nodes.get(&lost).await.ok()?;
        (!tandem_tests::cluster::node_is_ready(&node)).then_some(())
    })
    .await;
    nodes
        .delete(&lost, &DeleteParams::default())
        .await
        .expect("the node is deleted");
    // The member's volume is released and provisioned on another node, where its pod lands and
    // is copied.
    let volumes: Api<PersistentVolume> = Api::all(rig.client.clone());
    let second = format!("{}-{NAME}-{standby}-g2", rig.namespace);
    let volume = wait_for_within("a new volume for the standby", LIMIT, || async {
        volumes.get(&second).await.ok()
    })
    .await;
    let node = tandem_kube::observe::pv_node(&volume).expect("a pinned PV");
    assert_ne!(node.0, lost);
    let first = format!("{}-{NAME}-{standby}-g1", rig.namespace);
    wait_for_within("the lost volume to be released", LIMIT, || async {
        volumes.get_opt(&first).await.ok()?.is_none().then_some(())
    })
    .await;
    let pods = rig.pods();
    wait_for_within("the standby's pod on the new node", LIMIT, || async {
        let pod = pods.get(&format!("{NAME}-{standby}")).await.ok()?;
        let running = pod.status.as_ref()?.phase.as_deref() == Some("Running");
        (running && pod.spec.as_ref()?.node_name.as_deref() == Some(node.0.as_str())).then_some(())
    })
    .await;
    rig.state_is("Normal").await;
    wait_for_within("the new copy to hold every write", LIMIT, || async {
        (rig.doubles[usize::from(standby)].state().status.lsn >= 1 << 20).then_some(())
    })
    .await;
    // The operator stops before the test's nodes go.
    drop(rig);
    for name in names.iter().filter(|name| **name != lost) {
        let _ = nodes.delete(name, &DeleteParams::default()).await;
    }
}

async fn a_restarted_operator_resumes_with_or_without_its_log(cp: Arc<ControlPlane>) {
    let mut rig = Rig::start(&cp, "operator-restart", 2).await;
    rig.create(master_slave()).await;
    let cluster = rig.state_is("Normal").await;
    let active = Rig::active_of(&cluster);
    let transitions = |cluster: &ZenithCluster| {
        cluster
            .status
            .as_ref()
            .map_or(0, |status| status.transitions.len())
    };
    let before = transitions(&cluster);
    // From its log: the cluster stays Normal with the same active, and nothing is redone.
    rig.start_operator(true).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cluster = rig.state_is("Normal").await;
    assert_eq!(Rig::active_of(&cluster), active);
    assert_eq!(
        transitions(&cluster),
        before,
        "a restart from the log changes nothing"
    );
    // Without its log: the status shows the cluster ran, so the engine is told its log was
    // lost; it reexamines what the members report and adopts the active they show.
    rig.start_operator(false).await;
    let clusters = rig.clusters();
    let reexamined = wait_for_within("the cluster to be reexamined", LIMIT, || async {
        let cluster = clusters.get(NAME).await.ok()?;
        let status = cluster.status.as_ref()?;
        let path: Vec<&str> = status.transitions.iter().map(|t| t.to.as_str()).collect();
        (path.contains(&"Reexamine") && status.state.as_deref() == Some("Normal"))
            .then_some(cluster)
    })
    .await;
    assert_eq!(
        Rig::active_of(&reexamined),
        active,
        "the same active, adopted"
    );
    rig.rw_selects(active).await;
}

async fn a_deleted_cluster_is_cleaned_up(cp: Arc<ControlPlane>) {
    let rig = Rig::start(&cp, "operator-delete", 2).await;
    rig.create(master_slave()).await;
    rig.state_is("Normal").await;
    rig.clusters()
        .delete(NAME, &DeleteParams::default())
        .await
        .expect("deleted");
    let clusters = rig.clusters();
    wait_for_within("the cluster to be gone", LIMIT, || async {
        clusters.get_opt(NAME).await.ok()?.is_none().then_some(())
    })
    .await;
    let volumes: Api<PersistentVolume> = Api::all(rig.client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(rig.client.clone(), &rig.namespace);
    let pods = rig.pods();
    let selector = format!(
        "tandem.io/cluster={NAME},tandem.io/namespace={}",
        rig.namespace
    );
    wait_for_within(
        "its pods, claims and local PVs to be gone",
        LIMIT,
        || async {
            let volumes = volumes
                .list(&ListParams::default().labels(&selector))
                .await
                .ok()?;
            let claims = claims.list(&ListParams::default()).await.ok()?;
            let pods = pods.list(&ListParams::default()).await.ok()?;
            (volumes.items.is_empty() && claims.items.is_empty() && pods.items.is_empty())
                .then_some(())
        },
    )
    .await;
}

async fn a_standalone_cluster_stops_and_starts_with_its_data(cp: Arc<ControlPlane>) {
    let rig = Rig::start(&cp, "operator-standalone", 1).await;
    rig.create(standalone()).await;
    rig.state_is("Normal").await;
    rig.rw_selects(0).await;
    rig.doubles[0].state().write(123);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(rig.client.clone(), &rig.namespace);
    let claim_uid = claims
        .get(&format!("data-{NAME}-0"))
        .await
        .expect("the claim")
        .metadata
        .uid;
    rig.patch_spec(json!({"haSpec": {"stopped": true}}))
        .await
        .expect("stopped");
    rig.state_is("Stopped").await;
    let pods = rig.pods();
    wait_for_within("the pod to be gone", LIMIT, || async {
        pods.get_opt(&format!("{NAME}-0"))
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    rig.patch_spec(json!({"haSpec": {"stopped": false}}))
        .await
        .expect("started");
    rig.state_is("Normal").await;
    rig.rw_selects(0).await;
    let after = claims
        .get(&format!("data-{NAME}-0"))
        .await
        .expect("the claim")
        .metadata
        .uid;
    assert_eq!(after, claim_uid, "the same claim, with the same data");
    assert_eq!(rig.doubles[0].state().status.lsn, 123);
}

async fn bad_input_is_refused_and_changes_nothing(cp: Arc<ControlPlane>) {
    let rig = Rig::start(&cp, "operator-bad-input", 2).await;
    // Refused by the resource's schema: nothing is created.
    let mut three = master_slave();
    three["spec"]["zenithSpec"]["replicas"] = json!(3);
    let object: ZenithCluster = serde_json::from_value(three).expect("a ZenithCluster");
    let error = rig
        .clusters()
        .create(&PostParams::default(), &object)
        .await
        .expect_err("three replicas are refused");
    let causes = crate::support::refusals(&error);
    assert!(
        causes
            .iter()
            .any(|(_, message)| message.contains("replicas must be 1 (standalone) or 2")),
        "{causes:?}"
    );
    rig.create(master_slave()).await;
    rig.state_is("Normal").await;
    let statefulsets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(rig.client.clone(), &rig.namespace);
    let before = statefulsets.get(NAME).await.expect("the StatefulSet");
    // A timeout beyond what the engine holds, in a change that also asks for a new version:
    // the schema's range is the engine's, so the API server refuses the whole change, naming
    // the field, before it reaches the operator.
    let error = rig
        .patch_spec(json!({
            "haSpec": {"lagTimeout": 5_000_000_000_i64},
            "zenithSpec": {"version": "v2.0.0"},
        }))
        .await
        .expect_err("the schema refuses it");
    let causes = crate::support::refusals(&error);
    assert!(
        causes
            .iter()
            .any(|(field, message)| field == "spec.haSpec.lagTimeout"
                && message.contains("lagTimeout must be from 1 to 4294967295 seconds")),
        "{causes:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = statefulsets.get(NAME).await.expect("the StatefulSet");
    assert_eq!(
        before.spec.template, after.spec.template,
        "the refused change reached nothing that runs"
    );
    let cluster = rig.state_is("Normal").await;
    assert_eq!(
        cluster.status.and_then(|s| s.state).as_deref(),
        Some("Normal")
    );
}

/// Copies a directory's files, recursively.
fn copy_directory(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("a listing") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_directory(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copy");
        }
    }
}

/// A log put back to an older copy of itself (a restored backup, a volume snapshot) is
/// consistent inside, so only the witness outside it can tell: the status's `lastSequence`. The
/// operator refuses to act on the cluster, says so in the status, a condition and an Event, and
/// waits. A new `reexamine` token from a person sets the log aside, and the cluster recovers
/// from what its members report, keeping its active. (The older copy still names the first
/// active; acting on it would undo the failover.)
async fn a_log_behind_its_status_is_refused_until_a_person_says_so(cp: Arc<ControlPlane>) {
    let mut rig = Rig::start(&cp, "operator-log-behind", 2).await;
    rig.create(master_slave()).await;
    let cluster = rig.state_is("Normal").await;
    let first = Rig::active_of(&cluster);
    rig.stop_operator().await;
    let older = tempfile::tempdir().expect("a directory for the copy");
    let log = rig.logs.last().expect("a log").path().to_path_buf();
    copy_directory(&log, older.path());

    // The cluster goes on: the active's process dies and the standby takes over, which the
    // status witnesses.
    rig.start_operator(true).await;
    let standby = 1 - first;
    rig.doubles[usize::from(first)].state().write(8192);
    wait_for_within("the standby to be in sync", LIMIT, || async {
        let status = rig.doubles[usize::from(standby)].state().status.clone();
        (status.in_sync && status.lsn >= 8192).then_some(())
    })
    .await;
    // Long enough for the engine to record the standby in sync at the active's position.
    tokio::time::sleep(Duration::from_secs(5)).await;
    rig.doubles[usize::from(first)].state().stop();
    let clusters = rig.clusters();
    let moved = wait_for_within("the standby to take over", LIMIT, || async {
        let cluster = clusters.get(NAME).await.ok()?;
        let status = cluster.status.as_ref()?;
        (status.state.as_deref() == Some("Normal") && Rig::active_of(&cluster) == standby)
            .then_some(cluster)
    })
    .await;
    let active = Rig::active_of(&moved);
    let witnessed = moved
        .status
        .as_ref()
        .and_then(|status| status.last_sequence)
        .expect("a witnessed sequence number");

    // The log goes back to its older copy.
    rig.stop_operator().await;
    std::fs::remove_dir_all(&log).expect("the log removed");
    copy_directory(older.path(), &log);
    rig.start_operator(true).await;
    let refused = wait_for_within("the log to be refused", LIMIT, || async {
        let cluster = clusters.get(NAME).await.ok()?;
        cluster.status.as_ref()?.log_refused.as_ref()?;
        Some(cluster)
    })
    .await;
    let status = refused.status.as_ref().expect("a status");
    let refusal = status.log_refused.as_ref().expect("a refusal");
    assert!(
        refusal.reason.contains(&witnessed.to_string()),
        "the reason names the witnessed record: {refusal:?}"
    );
    assert!(
        status
            .conditions
            .iter()
            .any(|condition| condition.type_ == "LogRefused" && condition.status == "True"),
        "{:?}",
        status.conditions
    );
    let reasons = rig.event_reasons().await;
    assert!(
        reasons.iter().any(|reason| reason == "LogRefused"),
        "{reasons:?}"
    );
    // Waiting, it acts on nothing: the active stays, and the status is the refusal's.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = clusters.get(NAME).await.expect("the cluster");
    assert_eq!(Rig::active_of(&waiting), active);
    assert_eq!(
        waiting
            .status
            .as_ref()
            .and_then(|status| status.last_sequence),
        Some(witnessed),
        "nothing was recorded over the witness"
    );
    rig.rw_selects(active).await;

    // A person looks, and says go.
    rig.patch_spec(json!({"haSpec": {"reexamine": "log-rolled-back"}}))
        .await
        .expect("a reexamine token");
    let recovered = wait_for_within("the cluster to recover from observation", LIMIT, || async {
        let cluster = clusters.get(NAME).await.ok()?;
        let status = cluster.status.as_ref()?;
        let path: Vec<&str> = status.transitions.iter().map(|t| t.to.as_str()).collect();
        (status.log_refused.is_none()
            && path.contains(&"Reexamine")
            && status.state.as_deref() == Some("Normal"))
        .then_some(cluster)
    })
    .await;
    assert_eq!(
        Rig::active_of(&recovered),
        active,
        "the active the members show, adopted"
    );
    rig.rw_selects(active).await;
}
