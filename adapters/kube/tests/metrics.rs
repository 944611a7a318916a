//! The operator's metrics, as Prometheus reads them, and its health endpoints over real HTTP.

use std::sync::Arc;
use tandem_engine::{ClusterState, EffectError, Event, Input, Reason, Record, Seq, Timestamp};
use tandem_kube::metrics::{Metrics, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn transition(from: ClusterState, to: ClusterState, reason: Reason, at_ms: u64) -> Event {
    Event::Transition {
        from,
        to,
        reason,
        detail: "d".into(),
        at: Timestamp(at_ms),
    }
}

fn record(seq: u64, events: Vec<Event>) -> Record {
    Record {
        seq: Seq(seq),
        at: Timestamp(0),
        input: Input::Timer,
        events,
        effects: Vec::new(),
    }
}

#[test]
fn a_failover_is_counted_timed_and_the_state_follows() {
    let metrics = Metrics::new();
    let cluster = "ns/zc";
    metrics.set_state(cluster, ClusterState::Normal);
    metrics.observe(
        cluster,
        &record(
            1,
            vec![transition(
                ClusterState::Normal,
                ClusterState::ActiveDown,
                Reason::ActiveFailed,
                10_000,
            )],
        ),
    );
    metrics.observe(
        cluster,
        &record(
            2,
            vec![transition(
                ClusterState::ActiveDown,
                ClusterState::StandbyDown,
                Reason::PromotionConfirmed,
                25_000,
            )],
        ),
    );
    metrics.effect_failed(cluster, "delete-pod", EffectError::Conflict);
    let text = metrics.encode();
    for line in [
        r#"tandem_failovers_total{cluster="ns/zc"} 1"#,
        r#"tandem_failover_duration_seconds_sum{cluster="ns/zc"} 15.0"#,
        r#"tandem_failover_duration_seconds_bucket{le="10.0",cluster="ns/zc"} 0"#,
        r#"tandem_failover_duration_seconds_bucket{le="20.0",cluster="ns/zc"} 1"#,
        r#"tandem_cluster_state{cluster="ns/zc",state="StandbyDown"} 1"#,
        r#"tandem_cluster_state{cluster="ns/zc",state="ActiveDown"} 0"#,
        r#"tandem_cluster_state{cluster="ns/zc",state="Normal"} 0"#,
        r#"tandem_transitions_total{cluster="ns/zc",from="Normal",to="ActiveDown"} 1"#,
        r#"tandem_effect_errors_total{cluster="ns/zc",action="delete-pod",error="Conflict"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // A switchover's promotion is no failover.
    metrics.observe(
        cluster,
        &record(
            3,
            vec![transition(
                ClusterState::Normal,
                ClusterState::Switchover(tandem_engine::MemberId(0)),
                Reason::SwitchoverRequested,
                40_000,
            )],
        ),
    );
    assert!(
        metrics
            .encode()
            .contains(r#"tandem_failovers_total{cluster="ns/zc"} 1"#)
    );
    // A deleted cluster's state goes.
    metrics.forget(cluster);
    assert!(!metrics.encode().contains(r#"state="Switchover"#));
}

async fn get(address: std::net::SocketAddr, method: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connected");
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: operator\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}

#[tokio::test]
async fn health_readiness_and_metrics_are_answered() {
    let metrics = Arc::new(Metrics::new());
    let (address, _server) = serve(
        "127.0.0.1:0".parse().expect("an address"),
        Arc::clone(&metrics),
    )
    .await
    .expect("serving");
    assert!(
        get(address, "GET", "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let not_ready = get(address, "GET", "/readyz").await;
    assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
    metrics.set_ready();
    assert!(
        get(address, "GET", "/readyz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    metrics.set_state("ns/zc", ClusterState::Normal);
    let scraped = get(address, "GET", "/metrics").await;
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    assert!(
        scraped.contains("application/openmetrics-text"),
        "{scraped}"
    );
    assert!(scraped.contains(r#"tandem_cluster_state{cluster="ns/zc",state="Normal"} 1"#));
    assert!(scraped.contains("# EOF"));
    assert!(
        get(address, "POST", "/metrics")
            .await
            .starts_with("HTTP/1.1 405")
    );
    assert!(
        get(address, "GET", "/other")
            .await
            .starts_with("HTTP/1.1 404")
    );
}
