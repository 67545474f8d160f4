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
