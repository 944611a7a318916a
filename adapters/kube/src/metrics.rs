//! What the operator tells Prometheus (`/metrics`, in its text format), and whether it is alive
//! (`/healthz`) and ready (`/readyz`: its watch of `ZenithCluster`s has listed them once).
//!
//! The metrics, each labelled with the cluster (`namespace/name`):
//!
//! - `tandem_cluster_state{cluster, state}`: 1 for the state the cluster is in, 0 for the states
//!   it was in before;
//! - `tandem_transitions_total{cluster, from, to}`: the engine's state transitions;
//! - `tandem_failovers_total{cluster}`: promotions of the standby after the active failed
//!   (`ActiveDown` left with the promotion confirmed);
//! - `tandem_failover_duration_seconds{cluster}`: from entering `ActiveDown` to that promotion,
//!   a histogram;
//! - `tandem_effect_errors_total{cluster, action, error}`: effects that failed, by kind of action
//!   and error.
//!
//! Names and states only: no secret, token or address is ever a label.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tandem_engine::{ClusterState, EffectError, Event, Reason, Record};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    cluster: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    cluster: String,
    from: String,
    to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EffectLabels {
    cluster: String,
    action: String,
    error: String,
}

/// The buckets of the failover-duration histogram, in seconds: from a fast failover (a few
/// seconds after the agent answers) to one that waited out `unreachableTimeout` and more.
#[derive(Clone)]
struct FailoverBuckets;

impl MetricConstructor<Histogram> for FailoverBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new([
            1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0,
        ])
    }
}

/// The operator's metrics and readiness, shared by the cluster tasks and the HTTP server.
pub struct Metrics {
    registry: Registry,
    state: Family<StateLabels, Gauge>,
    transitions: Family<TransitionLabels, Counter>,
    failovers: Family<ClusterLabels, Counter>,
    failover_seconds: Family<ClusterLabels, Histogram, FailoverBuckets>,
    effect_errors: Family<EffectLabels, Counter>,
    leader: Gauge,
    ready: AtomicBool,
    /// Per cluster: the state last counted, and when it entered `ActiveDown` (milliseconds).
    clusters: Mutex<BTreeMap<String, Seen>>,
}

/// What the metrics remember of one cluster: the state last counted, and when it entered
/// `ActiveDown` (milliseconds of the engine's clock).
type Seen = (Option<ClusterState>, Option<u64>);

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty metrics, registered; not ready.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tandem");
        let state = Family::<StateLabels, Gauge>::default();
        let transitions = Family::<TransitionLabels, Counter>::default();
        let failovers = Family::<ClusterLabels, Counter>::default();
        let failover_seconds =
            Family::<ClusterLabels, Histogram, FailoverBuckets>::new_with_constructor(
                FailoverBuckets,
            );
        let effect_errors = Family::<EffectLabels, Counter>::default();
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process leads (acts on the clusters), 0 while it stands by",
            leader.clone(),
        );
        registry.register(
            "cluster_state",
            "1 for the state the cluster is in",
            state.clone(),
        );
        registry.register(
            "transitions",
            "The engine's state transitions",
            transitions.clone(),
        );
        registry.register(
            "failovers",
            "Promotions of the standby after the active failed",
            failovers.clone(),
        );
        registry.register(
            "failover_duration_seconds",
            "From entering ActiveDown to the promotion confirmed",
            failover_seconds.clone(),
        );
        registry.register(
            "effect_errors",
            "Effects that failed, by action and error",
            effect_errors.clone(),
        );
        Metrics {
            registry,
            state,
            transitions,
            failovers,
            failover_seconds,
            effect_errors,
            leader,
            ready: AtomicBool::new(false),
            clusters: Mutex::new(BTreeMap::new()),
        }
    }

    fn clusters(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Seen>> {
        self.clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cluster `cluster` is in `state` (its driver started, or a transition).
    pub fn set_state(&self, cluster: &str, state: ClusterState) {
        let mut clusters = self.clusters();
        let entry = clusters.entry(cluster.to_string()).or_default();
        if let Some(previous) = entry.0.filter(|previous| *previous != state) {
            self.state
                .get_or_create(&StateLabels {
                    cluster: cluster.to_string(),
                    state: previous.to_string(),
                })
                .set(0);
        }
        entry.0 = Some(state);
        self.state
            .get_or_create(&StateLabels {
                cluster: cluster.to_string(),
                state: state.to_string(),
            })
            .set(1);
    }

    /// Counts what a record of `cluster` says: its transitions, and a failover it completes.
    pub fn observe(&self, cluster: &str, record: &Record) {
        for event in &record.events {
            let Event::Transition {
                from,
                to,
                reason,
                at,
                ..
            } = event
            else {
                continue;
            };
            self.transitions
                .get_or_create(&TransitionLabels {
                    cluster: cluster.to_string(),
                    from: from.to_string(),
                    to: to.to_string(),
                })
                .inc();
            self.set_state(cluster, *to);
            let mut clusters = self.clusters();
            let entry = clusters.entry(cluster.to_string()).or_default();
            if *to == ClusterState::ActiveDown {
                entry.1 = Some(at.0);
            } else if *from == ClusterState::ActiveDown {
                let since = entry.1.take();
                if *reason == Reason::PromotionConfirmed {
                    let labels = ClusterLabels {
                        cluster: cluster.to_string(),
                    };
                    self.failovers.get_or_create(&labels).inc();
                    if let Some(since) = since {
                        let seconds = at.0.saturating_sub(since) as f64 / 1000.0;
                        self.failover_seconds
                            .get_or_create(&labels)
                            .observe(seconds);
                    }
                }
            }
        }
    }

    /// An effect of `cluster` failed.
    pub fn effect_failed(&self, cluster: &str, action: &str, error: EffectError) {
        self.effect_errors
            .get_or_create(&EffectLabels {
                cluster: cluster.to_string(),
                action: action.to_string(),
                error: format!("{error:?}"),
            })
            .inc();
    }

    /// The cluster is gone: its series go too.
    pub fn forget(&self, cluster: &str) {
        let state = self.clusters().remove(cluster).and_then(|(state, _)| state);
        if let Some(state) = state {
            self.state.remove(&StateLabels {
                cluster: cluster.to_string(),
                state: state.to_string(),
            });
        }
    }

    /// The watch of `ZenithCluster`s listed them once: every cluster has a task.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Not ready again: a replica that stood by now leads, and lists the clusters.
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::Relaxed);
    }

    /// Whether this process leads.
    pub fn set_leading(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Whether [`Metrics::set_ready`] was called.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The metrics in Prometheus's text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Answers `/metrics`, `/healthz` and `/readyz` on `address` until the task is dropped; returns
/// the address bound (a port 0 picks one).
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let response = answer(&metrics, &request);
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((bound, task))
}

fn answer<B>(metrics: &Metrics, request: &Request<B>) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = http::HeaderValue::from_str(content_type) {
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, value);
        }
        response
    };
    let plain = "text/plain; charset=utf-8";
    if request.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, plain, "GET only\n".into());
    }
    match request.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        "/healthz" => text(StatusCode::OK, plain, "ok\n".into()),
        "/readyz" if metrics.is_ready() => text(StatusCode::OK, plain, "ready\n".into()),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            plain,
            "not ready: the ZenithClusters are not listed yet\n".into(),
        ),
        _ => text(StatusCode::NOT_FOUND, plain, "no such path\n".into()),
    }
}
