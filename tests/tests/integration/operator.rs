//! The operator end to end on the real control plane: `tandem_kube::controller::run` with its
//! event log on disk, watching one namespace, against the real API server, scheduler,
//! controller-manager and kwok. Each member's database is an agent double on loopback that
//! speaks the real protocol and replicates from the double of its source; a follower restarts a
//! member's double when kwok runs a new pod for it, and stops it when its pod goes. Every
//! Kubernetes interaction is real.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use libtest_mimic::Trial;
use serde_json::{Value, json};
use tandem_crds::ZenithCluster;
use tandem_engine::{EffectId, Input, Outcome, Record, Seq};
use tandem_kube::agent::{CommandMessage, RoleMessage, Timeouts};
use tandem_kube::agent_double::{AgentDouble, DoubleWorld};
use tandem_kube::controller::{Agents, OperatorConfig, OperatorError};
use tandem_kube::leader::{Leadership, LeaseConfig};
use tandem_kube::resources::{CONFIG_HASH_ANNOTATION, ROLE_ACTIVE, ROLE_LABEL};
use tandem_sled::{EventLog, LogConfig};
use tandem_tests::cluster::ControlPlane;
use tandem_tests::examples::Example;
use tandem_tests::runner::control_plane;

use crate::support::{install_crd, wait_for_within};

/// The cluster's name in every test.
pub const NAME: &str = "zc";
/// The agents' token.
pub const TOKEN: &str = "e2e-token";
/// How long the operator may take to reach a state.
pub const LIMIT: Duration = Duration::from_secs(120);

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
            "operator::a_clean_up_refused_for_a_while_is_tried_again",
            a_clean_up_refused_for_a_while_is_tried_again,
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
        control_plane(
            "operator::a_replica_with_a_stale_log_recovers_from_observation",
            a_replica_with_a_stale_log_recovers_from_observation,
        ),
        control_plane(
            "operator::a_configuration_change_rolls_standby_first",
            a_configuration_change_rolls_standby_first,
        ),
        control_plane(
            "operator::an_operator_killed_mid_failover_finishes_it_once",
            an_operator_killed_mid_failover_finishes_it_once,
        ),
        control_plane(
            "operator::only_the_leader_acts_and_a_deposed_leaders_effect_is_refused",
            only_the_leader_acts_and_a_deposed_leaders_effect_is_refused,
        ),
        control_plane(
            "operator::an_operator_restart_without_a_fault_changes_nothing",
            an_operator_restart_without_a_fault_changes_nothing,
        ),
        control_plane(
            "operator::the_lease_is_given_up_once_the_calls_in_flight_end",
            the_lease_is_given_up_once_the_calls_in_flight_end,
        ),
        control_plane(
            "operator::a_cluster_waiting_for_a_person_goes_on_after_reexamine",
            a_cluster_waiting_for_a_person_goes_on_after_reexamine,
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
    /// The admin client's configuration, for each operator process's own client.
    kube_config: kube::Config,
    /// The admin kubeconfig, for [`Rig::show`].
    kubeconfig: std::path::PathBuf,
    /// The running operator process: a runtime of its own, so that killing it ends every task
    /// it started, its connections included, as the end of a process does.
    operator: Option<tokio::runtime::Runtime>,
    /// The running operator's part in the election.
    leadership: Option<Leadership>,
    /// How many operator processes were started.
    processes: u32,
    /// Operator replicas a test runs itself: stopped with the rig.
    replicas: Vec<Leadership>,
    logs: Vec<tempfile::TempDir>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(operator) = self.operator.take() {
            operator.shutdown_background();
        }
        for leadership in &self.replicas {
            leadership.stop();
        }
    }
}

impl Rig {
    async fn start(cp: &ControlPlane, test: &str, members: u8) -> Rig {
        let mut rig = Rig::start_with(cp, test, members).await;
        rig.start_operator(true).await;
        rig
    }

    /// The doubles of a master-slave cluster, and no operator yet.
    async fn start_idle(cp: &ControlPlane, test: &str) -> Rig {
        Rig::start_with(cp, test, 2).await
    }

    async fn start_with(cp: &ControlPlane, test: &str, members: u8) -> Rig {
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
            leadership: None,
        };
        let follower = tokio::spawn(follow_pods(
            client.clone(),
            namespace.clone(),
            Arc::clone(&world),
        ));
        Rig {
            client,
            namespace,
            world,
            doubles,
            tasks: vec![follower],
            config,
            kube_config: cp.config().await.expect("the client's configuration"),
            kubeconfig: cp.kubeconfig().to_path_buf(),
            operator: None,
            leadership: None,
            processes: 0,
            replicas: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// A process's part in the election of the test's operators, with short periods, on the
    /// process's client.
    fn leadership(&self, client: Client, identity: &str) -> Leadership {
        let lease = LeaseConfig {
            lease_duration: Duration::from_secs(4),
            renew_deadline: Duration::from_secs(3),
            retry_period: Duration::from_secs(1),
            ..LeaseConfig::new(&self.namespace, "tandem-operator", identity)
        };
        Leadership::start(client, lease, 0)
    }

    /// Starts the operator, on the log of the previous one (`same_log`) or on a new, empty one;
    /// the previous one stops as a pod deleted does (it gives its Lease up).
    async fn start_operator(&mut self, same_log: bool) {
        self.stop_process(true).await;
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
        self.launch(path).await;
    }

    /// Starts the operator on the log of an earlier one, the `index`th the rig made (a replica
    /// that kept its own volume).
    async fn start_operator_on(&mut self, index: usize) {
        self.stop_process(true).await;
        let path = self.logs[index].path().to_path_buf();
        self.launch(path).await;
    }

    async fn launch(&mut self, path: std::path::PathBuf) {
        // The previous operator's tasks let go of the log as they are cancelled.
        let log = wait_for_within("the log to be free", LIMIT, || async {
            EventLog::open(&path, LogConfig::default()).ok()
        })
        .await;
        self.processes += 1;
        let process = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("operator-{}", self.processes))
            .enable_all()
            .build()
            .expect("the operator process's runtime");
        let mut config = self.config.clone();
        // Made inside the process: its client's and its election's tasks are the process's.
        let client = {
            let _inside = process.enter();
            let client = Client::try_from(self.kube_config.clone()).expect("a client");
            config.leadership =
                Some(self.leadership(client.clone(), &format!("operator-{}", self.processes)));
            client
        };
        self.leadership = config.leadership.clone();
        process.spawn(async move {
            let _ = tandem_kube::controller::run(client, Arc::new(log), config).await;
        });
        self.operator = Some(process);
    }

    /// Ends the operator's process: gracefully (it gives its Lease up, as on SIGTERM), or
    /// killed (every task it started ends where it stands; its Lease runs out).
    async fn stop_process(&mut self, graceful: bool) {
        if let Some(leadership) = self.leadership.take()
            && graceful
        {
            leadership.release().await;
        }
        if let Some(operator) = self.operator.take() {
            operator.shutdown_background();
        }
    }

    /// Stops the operator and waits until its log is closed.
    async fn stop_operator(&mut self) {
        self.stop_process(true).await;
        let path = self.logs.last().expect("a log").path().to_path_buf();
        wait_for_within("the log to be free", LIMIT, || async {
            EventLog::open(&path, LogConfig::default()).ok().map(drop)
        })
        .await;
    }

    /// With `TANDEM_TEST_KUBECTL` naming a kubectl binary, prints what `kubectl -n <namespace>
    /// <args>` shows now (see [`crate::support::kubectl`]). Nothing otherwise.
    async fn show(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.namespace];
        all.extend_from_slice(args);
        let _ = crate::support::kubectl(&self.kubeconfig, &all).await;
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
pub async fn follow_pods(client: Client, namespace: String, world: DoubleWorld) {
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
pub fn master_slave() -> Value {
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

/// The API server refuses the deletion of the cluster's claims for a while (an admission
/// policy, as a webhook or a policy engine of the platform might): the clean-up fails, and is
/// tried again without the cluster changing, until the refusal ends and the cluster is gone.
async fn a_clean_up_refused_for_a_while_is_tried_again(cp: Arc<ControlPlane>) {
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    let rig = Rig::start(&cp, "operator-clean-up-refused", 2).await;
    rig.create(master_slave()).await;
    rig.state_is("Normal").await;
    let name = format!("{}-hold-claims", rig.namespace);
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(rig.client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(rig.client.clone());
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["DELETE"],
                "resources": ["persistentvolumeclaims"],
            }]},
            "validations": [{"expression": "false", "message": "the claims are held"}],
        },
    }))
    .expect("a policy");
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": rig.namespace,
            }}},
        },
    }))
    .expect("a binding");
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("the policy");
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("the binding");
    // In force once a deletion (a dry run) is refused.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(rig.client.clone(), &rig.namespace);
    let claim = format!("data-{NAME}-0");
    let dry_run = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    wait_for_within("the policy to be in force", LIMIT, || async {
        claims.delete(&claim, &dry_run).await.is_err().then_some(())
    })
    .await;

    rig.clusters()
        .delete(NAME, &DeleteParams::default())
        .await
        .expect("deleted");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let clusters = rig.clusters();
    assert!(
        clusters.get_opt(NAME).await.expect("a read").is_some(),
        "the cluster waits for its clean-up"
    );
    assert!(
        claims.get_opt(&claim).await.expect("a read").is_some(),
        "the claims are held"
    );
    // The refusal ends; nothing else changes, and the clean-up completes.
    bindings
        .delete(&name, &DeleteParams::default())
        .await
        .expect("the binding removed");
    policies
        .delete(&name, &DeleteParams::default())
        .await
        .expect("the policy removed");
    wait_for_within("the cluster to be gone", LIMIT, || async {
        clusters.get_opt(NAME).await.ok()?.is_none().then_some(())
    })
    .await;
    let volumes: Api<PersistentVolume> = Api::all(rig.client.clone());
    let selector = format!(
        "tandem.io/cluster={NAME},tandem.io/namespace={}",
        rig.namespace
    );
    wait_for_within("its claims and local PVs to be gone", LIMIT, || async {
        let volumes = volumes
            .list(&ListParams::default().labels(&selector))
            .await
            .ok()?;
        let claims = claims.list(&ListParams::default()).await.ok()?;
        (volumes.items.is_empty() && claims.items.is_empty()).then_some(())
    })
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

/// Two replicas, each with its own log volume: the second takes over while the first is away,
/// and acts (a failover). When the first leads again, its log is behind the status's witness,
/// which names another life of the stream: it is not acted on as if it were current. The
/// operator sets it aside and recovers the cluster from what the members report, as after a
/// lost log, says so in a `LogBehind` Warning, and its log records the recovery.
async fn a_replica_with_a_stale_log_recovers_from_observation(cp: Arc<ControlPlane>) {
    let mut rig = Rig::start(&cp, "operator-stale-replica", 2).await;
    rig.create(master_slave()).await;
    let cluster = rig.state_is("Normal").await;
    let first = Rig::active_of(&cluster);
    settled_with(&rig, first).await;
    // Replica b, with its own (empty) log, takes over; the cluster fails over under it.
    rig.start_operator(false).await;
    let clusters = rig.clusters();
    let epoch = epoch_of(&cluster);
    wait_for_within("replica b to take the cluster over", LIMIT, || async {
        let cluster = clusters.get(NAME).await.ok()?;
        (epoch_of(&cluster) > epoch && cluster.status.as_ref()?.state.as_deref() == Some("Normal"))
            .then_some(())
    })
    .await;
    write_and_replicate(&rig, first, 4096).await;
    rig.doubles[usize::from(first)].state().stop();
    let standby = 1 - first;
    let moved = settled_with(&rig, standby).await;
    let witness = moved.status.clone().expect("a status");
    // Replica a leads again, on its own log: long enough to have reached the witnessed
    // sequence number, yet written by another life of the stream.
    rig.start_operator_on(0).await;
    let recovered = wait_for_within("replica a to recover from observation", LIMIT, || async {
        let cluster = clusters.get(NAME).await.ok()?;
        let status = cluster.status.as_ref()?;
        (status.epoch > witness.epoch
            && status.log_incarnation != witness.log_incarnation
            && status.state.as_deref() == Some("Normal"))
        .then_some(cluster)
    })
    .await;
    assert_eq!(
        Rig::active_of(&recovered),
        standby,
        "the active the failover made, adopted: the stale log's active is not restored"
    );
    let path = states_entered(&recovered);
    assert!(path.contains(&"Reexamine"), "{path:?}");
    let behind = event_messages(&rig, "LogBehind").await;
    assert!(
        behind
            .iter()
            .any(|message| message.contains("another replica acted on the cluster")),
        "{behind:?}"
    );
    assert!(
        recovered
            .status
            .as_ref()
            .is_some_and(|status| status.log_refused.is_none()),
        "a stale replica's log needs no person"
    );
    // The status says who took over, and that its log was set aside.
    let operator = recovered
        .status
        .as_ref()
        .and_then(|status| status.operator.clone())
        .expect("the operator in the status");
    assert_eq!(operator.start, "RecoveredFromObservation", "{operator:?}");
    assert!(
        operator.message.contains("its log was set aside"),
        "{operator:?}"
    );
    rig.rw_selects(standby).await;
    // Its log records that the cluster was recovered without its history.
    rig.stop_operator().await;
    let log = EventLog::open(rig.logs[0].path(), LogConfig::default()).expect("replica a's log");
    let stream = log.streams().expect("streams").pop().expect("a stream");
    let first_record = log
        .records(&stream, Seq(1))
        .expect("the records")
        .next()
        .expect("a record")
        .expect("readable");
    assert!(
        matches!(first_record.input, Input::Recovered { log_lost: true, .. }),
        "{:?}",
        first_record.input
    );
}

/// How many times each member's database became the active. A `promote` sent again (a
/// restarted operator that does not know whether the first one landed) changes nothing in a
/// database that is already the active, and is not a promotion.
fn promotions(rig: &Rig) -> Vec<u32> {
    rig.doubles
        .iter()
        .map(|double| double.state().promotions)
        .collect()
}

/// The states the cluster's status shows it entered, oldest first.
fn states_entered(cluster: &ZenithCluster) -> Vec<&str> {
    cluster
        .status
        .as_ref()
        .map(|status| status.transitions.iter().map(|t| t.to.as_str()).collect())
        .unwrap_or_default()
}

/// The role each member's database reports.
fn roles(rig: &Rig) -> Vec<RoleMessage> {
    rig.doubles
        .iter()
        .map(|double| double.state().status.role)
        .collect()
}

/// How many of `roles` are the active.
fn actives(roles: &[RoleMessage]) -> usize {
    roles
        .iter()
        .filter(|role| **role == RoleMessage::Active)
        .count()
}

/// The ids of the `promote` commands each member's agent received.
fn promote_ids(rig: &Rig) -> Vec<std::collections::BTreeSet<String>> {
    rig.doubles
        .iter()
        .map(|double| {
            double
                .state()
                .received
                .iter()
                .filter(|(_, command)| *command == CommandMessage::Promote)
                .map(|(id, _)| id.clone())
                .collect()
        })
        .collect()
}

/// How many commands that copy or rewind data each member's agent carried out.
fn copies(rig: &Rig) -> usize {
    rig.doubles
        .iter()
        .map(|double| {
            double
                .state()
                .commands
                .values()
                .filter(|(command, _)| {
                    matches!(
                        command,
                        CommandMessage::Rebuild { .. } | CommandMessage::Rewind { .. }
                    )
                })
                .count()
        })
        .sum()
}

/// The messages of the cluster's Events with this reason.
async fn event_messages(rig: &Rig, reason: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(rig.client.clone(), &rig.namespace);
    events
        .list(&ListParams::default())
        .await
        .expect("the Events")
        .items
        .into_iter()
        .filter(|event| event.involved_object.name.as_deref() == Some(NAME))
        .filter(|event| event.reason.as_deref() == Some(reason))
        .filter_map(|event| event.message)
        .collect()
}

fn epoch_of(cluster: &ZenithCluster) -> u64 {
    cluster
        .status
        .as_ref()
        .and_then(|status| status.epoch)
        .unwrap_or(0)
}

/// Waits until the cluster is Normal, its active is `active`, and its standby is in sync.
async fn settled_with(rig: &Rig, active: u8) -> ZenithCluster {
    let clusters = rig.clusters();
    wait_for_within("the cluster to settle", LIMIT, || async {
        let cluster = clusters.get(NAME).await.ok()?;
        let standby = rig.doubles[usize::from(1 - active)].state().status.clone();
        (cluster.status.as_ref()?.state.as_deref() == Some("Normal")
            && Rig::active_of(&cluster) == active
            && standby.in_sync)
            .then_some(cluster)
    })
    .await
}

/// Writes on the active, waits until its standby holds the writes, and gives the engine time to
/// see it (it records a steady member's contact every quarter of unreachableTimeout): a failover
/// then has a standby that holds every write.
async fn write_and_replicate(rig: &Rig, active: u8, bytes: u64) {
    let lsn = {
        let mut double = rig.doubles[usize::from(active)].state();
        double.write(bytes);
        double.status.lsn
    };
    wait_for_within("the standby to be in sync", LIMIT, || async {
        let standby = rig.doubles[usize::from(1 - active)].state().status.clone();
        (standby.in_sync && standby.lsn >= lsn).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
}

async fn an_operator_killed_mid_failover_finishes_it_once(cp: Arc<ControlPlane>) {
    let mut rig = Rig::start(&cp, "operator-killed", 2).await;
    rig.create(master_slave()).await;
    let cluster = rig.state_is("Normal").await;
    let first = Rig::active_of(&cluster);
    settled_with(&rig, first).await;
    for (round, same_log) in [(1, true), (2, false)] {
        let cluster = rig.clusters().get(NAME).await.expect("the cluster");
        let old = Rig::active_of(&cluster);
        let new = 1 - old;
        write_and_replicate(&rig, old, 8192).await;
        let (before, asked_before) = (promotions(&rig), promote_ids(&rig));
        // The active's database dies. The standby's database takes the promotion but is still
        // carrying it out when the operator is killed (no goodbye: its Lease runs out, its
        // calls end where they stand); the promotion completes while no operator runs, and the
        // operator starts again, on its log or on none.
        rig.doubles[usize::from(new)].state().hold_commands = true;
        rig.doubles[usize::from(old)].state().stop();
        wait_for_within("the promotion to reach the standby", LIMIT, || async {
            (promote_ids(&rig)[usize::from(new)].len() > asked_before[usize::from(new)].len())
                .then_some(())
        })
        .await;
        rig.stop_process(false).await;
        rig.doubles[usize::from(new)].state().hold_commands = false;
        rig.start_operator(same_log).await;
        let cluster = settled_with(&rig, new).await;
        let after = promotions(&rig);
        let promoted: Vec<u32> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        let mut expected = vec![0, 0];
        expected[usize::from(new)] = 1;
        assert_eq!(
            promoted, expected,
            "round {round} (log kept: {same_log}): promotions per member"
        );
        // The other member was never asked. The standby may be asked once more by the restarted
        // operator, which cannot know whether the first request landed: its database, already
        // the active then, changes nothing (counted above).
        let asked: Vec<usize> = promote_ids(&rig)
            .iter()
            .zip(&asked_before)
            .map(|(now, then)| now.difference(then).count())
            .collect();
        assert_eq!(
            asked[usize::from(old)],
            0,
            "round {round} (log kept: {same_log}): the old active is never asked: {asked:?}"
        );
        assert!(
            (1..=2).contains(&asked[usize::from(new)]),
            "round {round} (log kept: {same_log}): promotions asked: {asked:?}"
        );
        let roles = roles(&rig);
        assert_eq!(actives(&roles), 1, "round {round}: one active: {roles:?}");
        rig.rw_selects(new).await;
        let path = states_entered(&cluster);
        if !same_log {
            assert!(path.contains(&"Reexamine"), "round {round}: {path:?}");
        }
    }
}

async fn an_operator_restart_without_a_fault_changes_nothing(cp: Arc<ControlPlane>) {
    let mut rig = Rig::start(&cp, "operator-pod-deleted", 2).await;
    rig.create(master_slave()).await;
    let cluster = rig.state_is("Normal").await;
    let active = Rig::active_of(&cluster);
    let cluster = settled_with(&rig, active).await;
    let transitions = cluster.status.as_ref().map_or(0, |s| s.transitions.len());
    let epoch = epoch_of(&cluster);
    let (promoted, copied) = (promotions(&rig), copies(&rig));
    // The operator's pod is deleted (it stops and gives its Lease up) and is back 30 s later.
    rig.stop_operator().await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    rig.start_operator(true).await;
    let clusters = rig.clusters();
    let cluster = wait_for_within(
        "the new process to take the cluster over",
        LIMIT,
        || async {
            let cluster = clusters.get(NAME).await.ok()?;
            (epoch_of(&cluster) > epoch).then_some(cluster)
        },
    )
    .await;
    let cluster = settled_with(&rig, Rig::active_of(&cluster)).await;
    assert_eq!(Rig::active_of(&cluster), active, "no failover");
    // The agents' lease (5 s here) runs out while no operator renews it: the active stops
    // accepting writes by itself and the new leader resumes it in place, which is no failover.
    let now = promotions(&rig);
    let standby = usize::from(1 - active);
    assert_eq!(
        now[standby], promoted[standby],
        "the standby is not promoted"
    );
    // Its lease ran out 5 s into the 30 s: the active stopped accepting writes by itself, and
    // is resumed in place exactly once.
    let resumed = now[usize::from(active)] - promoted[usize::from(active)];
    assert_eq!(resumed, 1, "the active resumed once: {now:?}");
    let why = event_messages(&rig, "ResumedInPlace").await;
    assert!(!why.is_empty(), "a resumption is explained by an Event");
    assert_eq!(copies(&rig), copied, "no copy");
    let status = cluster.status.as_ref().expect("a status");
    assert!(
        status.transitions[transitions..]
            .iter()
            .all(|transition| transition.to != "ActiveDown"),
        "{:?}",
        status.transitions
    );
    // What happened is in the status (the new epoch, and who took over and how) and in an
    // Event.
    let operator = status
        .operator
        .as_ref()
        .expect("the operator in the status");
    assert_eq!(operator.start, "ResumedFromLog", "{operator:?}");
    assert!(
        operator
            .identity
            .starts_with(&format!("operator-{}", rig.processes)),
        "{operator:?}"
    );
    assert!(
        operator
            .message
            .starts_with("resumed from its log at record"),
        "{operator:?}"
    );
    let leading = event_messages(&rig, "Leading").await;
    let new_epoch = epoch_of(&cluster);
    assert!(
        leading.iter().any(|message| message.contains(&format!(
            "leadership epoch {new_epoch}: resumed from its log at record"
        ))),
        "{leading:?}"
    );
}

async fn only_the_leader_acts_and_a_deposed_leaders_effect_is_refused(cp: Arc<ControlPlane>) {
    let mut rig = Rig::start_idle(&cp, "operator-leadership").await;
    // Long periods: the leader renews every 20 s, so it learns of its deposition only from the
    // confirmation before an effect.
    let replica = |identity: &str| {
        let lease = LeaseConfig {
            lease_duration: Duration::from_secs(60),
            renew_deadline: Duration::from_secs(40),
            retry_period: Duration::from_secs(20),
            ..LeaseConfig::new(&rig.namespace, "tandem-operator", identity)
        };
        let leadership = Leadership::start(rig.client.clone(), lease, 0);
        let directory = tempfile::tempdir().expect("a log directory");
        let log = EventLog::open(directory.path(), LogConfig::default()).expect("a log");
        let mut config = rig.config.clone();
        config.metrics = Arc::new(tandem_kube::metrics::Metrics::new());
        config.leadership = Some(leadership.clone());
        let metrics = Arc::clone(&config.metrics);
        let client = rig.client.clone();
        let task = tokio::spawn(async move {
            tandem_kube::controller::run(client, Arc::new(log), config).await
        });
        (leadership, directory, metrics, task)
    };
    let (a, a_log, a_metrics, a_task) = replica("replica-a");
    let epoch = tokio::time::timeout(LIMIT, a.acquired())
        .await
        .expect("replica a leads");
    let (b, b_log, b_metrics, b_task) = replica("replica-b");
    rig.replicas.extend([a.clone(), b.clone()]);
    rig.create(master_slave()).await;
    let cluster = rig.state_is("Normal").await;
    let active = Rig::active_of(&cluster);
    settled_with(&rig, active).await;
    assert_eq!(epoch_of(&cluster), epoch);
    assert!(a_metrics.encode().contains("tandem_leader 1"));
    assert!(b_metrics.encode().contains("tandem_leader 0"));
    let b_streams = EventLog::inspect(b_log.path())
        .expect("replica b's log")
        .streams()
        .expect("its streams");
    assert!(
        b_streams.is_empty(),
        "the replica standing by logged {b_streams:?}"
    );
    // Replica a is deposed without knowing it: the Lease is taken as a replica takes one that
    // ran out (its holder cut off from the API server), here by an identity that runs nowhere,
    // with a short lease so that replica b takes it over next.
    let leases: Api<Lease> = Api::namespaced(rig.client.clone(), &rig.namespace);
    let mut lease = leases.get("tandem-operator").await.expect("the Lease");
    let spec = lease.spec.as_mut().expect("a spec");
    spec.holder_identity = Some("replica-gone".into());
    spec.lease_transitions = spec.lease_transitions.map(|t| t + 1);
    spec.lease_duration_seconds = Some(5);
    leases
        .replace("tandem-operator", &PostParams::default(), &lease)
        .await
        .expect("the Lease taken");
    let commands_before: Vec<usize> = rig
        .doubles
        .iter()
        .map(|double| double.state().commands.len())
        .collect();
    let pods_before: Vec<String> = rig
        .pods()
        .list(&ListParams::default())
        .await
        .expect("the pods")
        .items
        .iter()
        .filter_map(|pod| pod.metadata.uid.clone())
        .collect();
    // A switchover asked now makes replica a issue effects at once: each is confirmed against
    // the Lease first, and refused.
    rig.patch_spec(json!({"haSpec": {"switchover": {"token": "deposed"}}}))
        .await
        .expect("the switchover asked");
    let ended = tokio::time::timeout(Duration::from_secs(15), a_task)
        .await
        .expect("replica a stops")
        .expect("its task");
    assert!(
        matches!(ended, Err(OperatorError::LeadershipLost { epoch: lost }) if lost == epoch),
        "{ended:?}"
    );
    let commands_after: Vec<usize> = rig
        .doubles
        .iter()
        .map(|double| double.state().commands.len())
        .collect();
    assert_eq!(
        commands_after, commands_before,
        "the deposed leader commanded no agent"
    );
    // Its log holds the effects the switchover asked of it (it was issued before the
    // confirmation refused it), and none of them carried out: the process stops acting the
    // moment it learns it no longer leads, before it records anything more.
    let path = a_log.path().to_path_buf();
    let log = wait_for_within("replica a's log to be free", LIMIT, || async {
        EventLog::open(&path, LogConfig::default()).ok()
    })
    .await;
    let stream = log.streams().expect("streams").pop().expect("a stream");
    let records: Vec<Record> = log
        .records(&stream, Seq(1))
        .expect("the records")
        .collect::<Result<_, _>>()
        .expect("readable");
    let switchover_at = records
        .iter()
        .position(|record| {
            record.events.iter().any(|event| {
                matches!(event, tandem_engine::Event::Transition { to, .. }
                    if matches!(to, tandem_engine::ClusterState::Switchover(_)))
            })
        })
        .expect("replica a decided the switchover");
    let pending: Vec<EffectId> = records[switchover_at..]
        .iter()
        .flat_map(|record| &record.effects)
        .filter(|effect| !effect.action.is_report())
        .map(|effect| effect.id)
        .collect();
    assert!(
        !pending.is_empty(),
        "the switchover gave replica a an effect to carry out"
    );
    let carried_out: Vec<EffectId> = records
        .iter()
        .filter_map(|record| match &record.input {
            Input::EffectFinished {
                id,
                outcome: Outcome::Ok,
            } if pending.contains(id) => Some(*id),
            _ => None,
        })
        .collect();
    assert!(
        carried_out.is_empty(),
        "the deposed leader carried out {carried_out:?}"
    );
    drop(log);
    // Replica b takes over once the Lease runs out; its log never held the cluster, so it
    // recovers the cluster from what the members report, and completes the switchover.
    let clusters = rig.clusters();
    let cluster = wait_for_within("replica b to take the cluster over", LIMIT, || async {
        let cluster = clusters.get(NAME).await.ok()?;
        (epoch_of(&cluster) > epoch + 1
            && cluster.status.as_ref()?.state.as_deref() == Some("Normal"))
        .then_some(cluster)
    })
    .await;
    assert!(b.epoch().is_some());
    assert!(b_metrics.encode().contains("tandem_leader 1"));
    let leading = event_messages(&rig, "Leading").await;
    assert!(
        leading
            .iter()
            .any(|message| message.starts_with("replica-b")),
        "{leading:?}"
    );
    let roles = roles(&rig);
    assert_eq!(actives(&roles), 1, "one active: {roles:?}");
    rig.rw_selects(Rig::active_of(&cluster)).await;
    // The deposed leader deleted no pod.
    let pods_after: Vec<String> = rig
        .pods()
        .list(&ListParams::default())
        .await
        .expect("the pods")
        .items
        .iter()
        .filter_map(|pod| pod.metadata.uid.clone())
        .collect();
    assert_eq!(pods_after, pods_before);
    b_task.abort();
}

async fn a_configuration_change_rolls_standby_first(cp: Arc<ControlPlane>) {
    let rig = Rig::start(&cp, "operator-config-change", 2).await;
    rig.create(master_slave()).await;
    let cluster = rig.state_is("Normal").await;
    let first = Rig::active_of(&cluster);
    settled_with(&rig, first).await;
    let uid = |pod: &Pod| pod.metadata.uid.clone().unwrap_or_default();
    let pods = rig.pods();
    let original: Vec<String> = pod_uids(&pods).await;
    // The order things happen in, sampled: each member's pod replaced, the active changed.
    let clusters = rig.clusters();
    let watcher = {
        let (pods, clusters, original) = (pods.clone(), clusters.clone(), original.clone());
        tokio::spawn(async move {
            let mut seen: Vec<String> = Vec::new();
            let mut active = None;
            loop {
                for (member, was) in original.iter().enumerate() {
                    let replaced = pods
                        .get(&format!("{NAME}-{member}"))
                        .await
                        .ok()
                        .is_some_and(|pod| uid(&pod) != *was);
                    let step = format!("pod {member} replaced");
                    if replaced && !seen.contains(&step) {
                        seen.push(step);
                    }
                }
                if let Ok(cluster) = clusters.get(NAME).await {
                    let now = Rig::active_of(&cluster);
                    if active.is_some_and(|was| was != now) {
                        seen.push(format!("active is {now}"));
                    }
                    active = Some(now);
                }
                if seen.len() >= 3 {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    rig.patch_spec(json!({"zenithSpec": {"dbSpecs": {"maxConnections": 300}}}))
        .await
        .expect("the configuration change");
    let order = tokio::time::timeout(LIMIT, watcher)
        .await
        .expect("the rolling change within the limit")
        .expect("the watcher");
    let standby = 1 - first;
    assert_eq!(
        order,
        vec![
            format!("pod {standby} replaced"),
            format!("active is {standby}"),
            format!("pod {first} replaced"),
        ],
        "the rolling procedure: the standby first, a switchover, then the old active"
    );
    settled_with(&rig, standby).await;
    // Both members report the new configuration (the status shows a member's hash as of the
    // last report that changed what the status says of it).
    let wanted = rig.doubles[usize::from(standby)].state().status.config_hash;
    let clusters = rig.clusters();
    let cluster = wait_for_within(
        "both members to run the new configuration",
        LIMIT,
        || async {
            let cluster = clusters.get(NAME).await.ok()?;
            let status = cluster.status.as_ref()?;
            let reported = rig
                .doubles
                .iter()
                .all(|double| double.state().status.config_hash == wanted);
            let shown = status
                .members
                .iter()
                .all(|member| member.config_hash == Some(format!("{wanted:016x}")));
            (reported && shown).then_some(cluster)
        },
    )
    .await;
    let path = states_entered(&cluster);
    assert!(
        path.contains(&format!("Switchover(member-{standby})").as_str()),
        "{path:?}"
    );
}

async fn pod_uids(pods: &Api<Pod>) -> Vec<String> {
    let mut uids = Vec::new();
    for member in 0..2 {
        let pod = pods
            .get(&format!("{NAME}-{member}"))
            .await
            .expect("the member's pod");
        uids.push(pod.metadata.uid.unwrap_or_default());
    }
    uids
}

/// The troubleshooting path of the operator's guide: a promotion that keeps failing stops the
/// engine in `ManualInterventionRequired`, where it acts on nothing; a person repairs the
/// database and sets a new `reexamine` token, and the cluster goes on from what its members
/// report.
async fn a_cluster_waiting_for_a_person_goes_on_after_reexamine(cp: Arc<ControlPlane>) {
    let rig = Rig::start(&cp, "operator-manual", 2).await;
    rig.create(master_slave()).await;
    let cluster = rig.state_is("Normal").await;
    let old = Rig::active_of(&cluster);
    settled_with(&rig, old).await;
    let new = 1 - old;
    write_and_replicate(&rig, old, 8192).await;
    rig.doubles[usize::from(new)].state().promote_fails =
        Some("the database cannot leave recovery".into());
    rig.doubles[usize::from(old)].state().stop();
    let waiting = rig.state_is("ManualInterventionRequired").await;
    let reason = waiting
        .status
        .as_ref()
        .and_then(|status| status.reason.clone())
        .unwrap_or_default();
    assert!(reason.contains("failed 5 times"), "{reason}");
    // Waiting for a person, it asks for nothing more.
    let asked = promote_ids(&rig);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(promote_ids(&rig), asked, "no promotion while it waits");
    rig.show(&["get", "zenithclusters"]).await;
    rig.show(&[
        "get",
        "events",
        "--field-selector=involvedObject.kind=ZenithCluster",
        "--sort-by=.lastTimestamp",
    ])
    .await;

    // A person repairs the database, then says go.
    rig.doubles[usize::from(new)].state().promote_fails = None;
    rig.patch_spec(json!({"haSpec": {"reexamine": "checked-by-ops-1"}}))
        .await
        .expect("a reexamine token");
    let cluster = settled_with(&rig, new).await;
    // Out of the wait through Reexamine; the status keeps every transition, those of one step
    // included (Reexamine is left in the step that enters it).
    let transitions = &cluster.status.as_ref().expect("a status").transitions;
    let waited = transitions
        .iter()
        .position(|transition| transition.to == "ManualInterventionRequired")
        .expect("the wait among the transitions");
    let next = transitions
        .get(waited + 1)
        .map(|transition| (transition.from.as_str(), transition.to.as_str()));
    assert_eq!(
        next,
        Some(("ManualInterventionRequired", "Reexamine")),
        "{transitions:?}"
    );
    for pair in transitions.windows(2) {
        assert_eq!(
            pair[0].to, pair[1].from,
            "no state skipped: {transitions:?}"
        );
    }
    let reasons = rig.event_reasons().await;
    assert!(
        reasons.iter().any(|reason| reason == "ReexamineRequested"),
        "{reasons:?}"
    );
    rig.rw_selects(new).await;
    rig.show(&["get", "zenithclusters"]).await;
    rig.show(&[
        "get",
        "events",
        "--field-selector=involvedObject.kind=ZenithCluster",
        "--sort-by=.lastTimestamp",
    ])
    .await;

    // A manual switchover back, as before a node's maintenance.
    rig.patch_spec(json!({"haSpec": {"switchover": {"token": "drain-node", "to": old}}}))
        .await
        .expect("a switchover");
    settled_with(&rig, old).await;
    rig.rw_selects(old).await;
    rig.show(&[
        "get",
        "events",
        "--field-selector=involvedObject.kind=ZenithCluster",
        "--sort-by=.lastTimestamp",
    ])
    .await;
}

/// A leader stopping (`SIGTERM`) stops confirming calls at once, but gives its Lease up only
/// once the calls it confirmed have ended: its successor never acts while one is in flight.
async fn the_lease_is_given_up_once_the_calls_in_flight_end(cp: Arc<ControlPlane>) {
    let client = cp.client();
    let namespace = cp.namespace("leader-release").await.expect("a namespace");
    let lease = LeaseConfig {
        lease_duration: Duration::from_secs(20),
        renew_deadline: Duration::from_secs(15),
        retry_period: Duration::from_secs(1),
        ..LeaseConfig::new(&namespace, "tandem-operator", "replica-a")
    };
    let leadership = Leadership::start(client.clone(), lease, 0);
    let epoch = tokio::time::timeout(LIMIT, leadership.acquired())
        .await
        .expect("it leads");
    let in_flight = leadership.confirm(epoch).await.expect("a call confirmed");
    let releasing = tokio::spawn({
        let leadership = leadership.clone();
        async move { leadership.release().await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    let holder = || async {
        leases
            .get("tandem-operator")
            .await
            .expect("the Lease")
            .spec
            .and_then(|spec| spec.holder_identity)
    };
    assert_eq!(leadership.epoch(), None, "it no longer leads");
    assert!(
        leadership.confirm(epoch).await.is_none(),
        "no call is confirmed once the release began"
    );
    assert!(!releasing.is_finished(), "the release waits for the call");
    assert_eq!(holder().await.as_deref(), Some("replica-a"));
    drop(in_flight);
    tokio::time::timeout(LIMIT, releasing)
        .await
        .expect("the release ends once the call did")
        .expect("the release task");
    assert_eq!(holder().await, None, "the Lease given up");
}
