use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use mplb_wire::{Endpoint, ServiceWeights, WeightsTable};

use super::follow::served_of;
use super::*;
use crate::clock::ManualClock;
use crate::weights::Served;

fn table(version: u64, w0: f64) -> Arc<Served> {
    let mut services = BTreeMap::new();
    services.insert(
        "a.default.svc.cluster.local".to_string(),
        ServiceWeights {
            aliases: vec![],
            endpoints: vec![
                Endpoint {
                    pod: "a-0".into(),
                    address: "10.0.0.1:80".into(),
                    weight: w0,
                },
                Endpoint {
                    pod: "a-1".into(),
                    address: "10.0.0.2:80".into(),
                    weight: 1.0 - w0,
                },
            ],
            admit: None,
        },
    );
    let t = WeightsTable {
        version,
        generated_at_ms: 1,
        ttl_ms: 30_000,
        services,
    };
    let body = Bytes::from(serde_json::to_vec(&t).unwrap());
    Arc::new(served_of(body).unwrap())
}

type TopoTx = tokio::sync::watch::Sender<Option<Arc<crate::topology::Topology>>>;

fn engine(now: u64) -> (crate::engine::Engine, TopoTx) {
    let topo = crate::topology::file::parse(
        r#"
nodes: [{name: n1, capacity_millicores: 1000}]
services: [{name: a, port: 80}]
pods:
  - {name: a-0, service: a, node: n1, address: "10.0.0.1:80"}
  - {name: a-1, service: a, node: n1, address: "10.0.0.2:80"}
"#,
        "cluster.local",
    )
    .unwrap();
    let (tx, rx) = tokio::sync::watch::channel(Some(Arc::new(topo)));
    let e = crate::engine::Engine::new(
        crate::engine::EngineConfig::default(),
        Arc::new(ManualClock::new(now)),
        crate::persist::Store::memory(),
        rx,
        crate::policy::PolicyKind::Even,
    )
    .unwrap();
    (e, tx)
}

fn replica(now: u64) -> Replica {
    Replica::new("ws-0", "10.0.0.9:8080", Arc::new(ManualClock::new(now)))
}

#[test]
fn the_served_version_never_goes_back() {
    let r = replica(1);
    assert!(r.offer(table(10, 0.5)));
    assert!(!r.offer(table(9, 0.1)), "lower version refused");
    assert!(!r.offer(table(10, 0.1)), "same version refused");
    assert_eq!(r.highest(), 10);
    assert!(r.offer(table(11, 0.1)));
    assert_eq!(r.highest(), 11);
}

#[test]
fn a_table_that_does_not_validate_is_refused() {
    assert!(served_of(Bytes::from_static(b"{\"version\": 1}")).is_err());
    assert!(served_of(Bytes::from_static(b"not json")).is_err());
}

#[test]
fn roles_move_with_the_election() {
    let r = replica(1);
    assert_eq!(r.role(), Role::Unknown);
    r.follow("ws-1", "10.0.0.8:8080");
    assert_eq!(
        r.role(),
        Role::Follower {
            holder: "ws-1".into(),
            address: "10.0.0.8:8080".into()
        }
    );
    r.step_down();
    assert_eq!(r.role(), Role::Unknown);
}

#[test]
fn a_new_leader_starts_above_all_it_has_seen_and_the_clock() {
    // Seen on the Lease above what was mirrored.
    let r = replica(500);
    r.offer(table(1_000, 0.5));
    r.saw(1_200);
    let (engine, _tx) = engine(500);
    assert_eq!(r.take_over(&engine), 1_201);
    assert_eq!(r.role(), Role::Leader);
    // The clock above everything seen: start at the clock.
    let r = replica(5_000);
    r.offer(table(1_000, 0.5));
    assert_eq!(r.take_over(&engine), 5_000);
}

#[test]
fn a_follower_serves_the_mirror_and_a_leader_its_engine_once_above_the_floor() {
    let (engine, _tx) = engine(100);
    engine.recompute().unwrap();
    let own = engine.table().unwrap().table.version;
    let r = replica(100);
    r.follow("ws-1", "10.0.0.8:8080");
    r.offer(table(own + 50, 0.9));
    // Following: the mirror, never the engine's own table.
    assert_eq!(r.served(&engine).unwrap().table.version, own + 50);
    let first = r.take_over(&engine);
    assert_eq!(first, own + 51);
    // Until the engine's next round, the old leader's table stays served.
    assert_eq!(r.served(&engine).unwrap().table.version, own + 50);
    engine.recompute().unwrap();
    let s = r.served(&engine).unwrap();
    assert_eq!(s.table.version, first);
    // Damped on from the old leader's 0.9/0.1 toward even (0.5/0.5).
    let w = s.table.services["a.default.svc.cluster.local"].endpoints[0].weight;
    assert!((w - 0.7).abs() < 1e-9, "{w}");
    // Stepping down: the served table stays until a newer one arrives.
    r.step_down();
    assert_eq!(r.served(&engine).unwrap().table.version, first);
}

mod forwarding {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode, header};

    use super::super::forward::{FORWARDED, route};
    use super::replica;

    async fn body(r: axum::response::Response) -> String {
        use http_body_util::BodyExt;
        let b = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&b).into_owned()
    }

    #[tokio::test]
    async fn no_leader_known_is_a_503_with_a_reason_and_retry_after() {
        let r = replica(1);
        let a = route(&r, "/v1/reports", &HeaderMap::new(), Bytes::new())
            .await
            .unwrap();
        assert_eq!(a.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(a.headers()[header::RETRY_AFTER], "1");
        assert!(body(a).await.contains("no leader elected yet"));
        // A leader that cannot be reached: 503 too.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        r.follow("ws-1", &addr.to_string());
        let a = route(&r, "/v1/reports", &HeaderMap::new(), Bytes::new())
            .await
            .unwrap();
        assert_eq!(a.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body(a).await.contains("cannot be reached"));
        // Already forwarded once: never forwarded again.
        let mut h = HeaderMap::new();
        h.insert(FORWARDED, "ws-2".parse().unwrap());
        let a = route(&r, "/v1/reports", &h, Bytes::new()).await.unwrap();
        assert_eq!(a.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body(a).await.contains("forwarded by ws-2"));
        // The leader handles its own.
        let (engine, _tx) = super::engine(1);
        r.take_over(&engine);
        assert!(
            route(&r, "/v1/reports", &HeaderMap::new(), Bytes::new())
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_follower_passes_the_token_and_body_and_returns_the_leaders_answer() {
        // A stand-in leader that answers with what it received.
        let app = axum::Router::new().route(
            "/v1/reports",
            axum::routing::post(|h: HeaderMap, b: Bytes| async move {
                let auth = h[header::AUTHORIZATION].to_str().unwrap().to_string();
                let by = h[FORWARDED].to_str().unwrap().to_string();
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    format!("{auth}|{by}|{}", String::from_utf8_lossy(&b)),
                )
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(l, app).await });
        let r = replica(1);
        r.follow("ws-1", &addr.to_string());
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        let a = route(&r, "/v1/reports", &h, Bytes::from_static(b"{\"x\":1}"))
            .await
            .unwrap();
        assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(a.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body(a).await, "Bearer abc|ws-0|{\"x\":1}");
        server.abort();
    }
}

#[derive(clap::Parser)]
struct Flags {
    #[command(flatten)]
    leader: LeaderArgs,
}

fn leader_elect(args: &[&str]) -> Result<bool, clap::Error> {
    use clap::Parser;
    Flags::try_parse_from(std::iter::once("weight-server").chain(args.iter().copied()))
        .map(|f| f.leader.leader_elect)
}

#[test]
fn leader_elect_takes_an_optional_value_as_kubernetes_components_do() {
    assert!(!leader_elect(&[]).unwrap());
    assert!(leader_elect(&["--leader-elect"]).unwrap());
    assert!(leader_elect(&["--leader-elect=true"]).unwrap());
    assert!(!leader_elect(&["--leader-elect=false"]).unwrap());
    assert!(leader_elect(&["--leader-elect", "--lease-name=x"]).unwrap());
    assert!(leader_elect(&["--leader-elect=maybe"]).is_err());
}
