#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const GOOD: &str = r#"
name: t
nodes:
  - { name: node-a, capacity_millicores: 400 }
  - { name: node-b, capacity_millicores: 300 }
tenants:
  - { name: hotel, fair_share_millicores: 500 }
services:
  - { name: front, tenant: hotel, port: 8080, cost_us: 1000, calls: back, entry: true, pods_on: [node-a, node-b] }
  - { name: back, tenant: hotel, port: 8081, cost_us: 1000, pods_on: [node-a, node-a] }
load:
  - service: front
    steps:
      - { at_s: 0, rps: 50 }
      - { at_s: 5, cpu_fraction: 0.5 }
events:
  - { at_s: 1, kind: hog_start, node: node-b, millicores: 100 }
  - { at_s: 2, kind: hog_stop, node: node-b }
  - { at_s: 2, kind: agent_kill, node: node-a }
  - { at_s: 3, kind: agent_restart, node: node-a }
  - { at_s: 3, kind: server_kill }
  - { at_s: 4, kind: server_restart }
  - { at_s: 4, kind: pod_add, pod: back-1 }
  - { at_s: 5, kind: pod_not_ready, pod: front-1 }
  - { at_s: 6, kind: pod_ready, pod: front-1 }
  - { at_s: 7, kind: pod_remove, pod: back-0 }
run: { policies: [even, cswrr], warmup_s: 1, duration_s: 10 }
"#;

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn a_good_file_parses_with_every_event_kind() {
    let f = parse(GOOD).unwrap();
    assert_eq!(f.services[1].pod_names(), ["back-0", "back-1"]);
    assert_eq!(f.events.len(), 10);
    assert_eq!(f.events[6].label(), "pod_add back-1");
    assert_eq!(f.run.repeat, 1);
    assert_eq!(f.services[1].request_millicores, 100);
}

#[test]
fn an_unknown_reference_names_the_field() {
    let bad = GOOD.replace("calls: back", "calls: db");
    assert_eq!(
        err(&bad),
        "field `scenario services[0].calls`: unknown service \"db\""
    );
    let bad = GOOD.replace("tenant: hotel, port: 8081", "tenant: shop, port: 8081");
    assert!(err(&bad).contains("services[1].tenant"), "{}", err(&bad));
    let bad = GOOD.replace("pods_on: [node-a, node-a]", "pods_on: [node-z]");
    assert!(err(&bad).contains("services[1].pods_on[0]"));
    let bad = GOOD.replace("pod: back-1", "pod: back-7");
    assert!(err(&bad).contains("events[6].pod"));
}

#[test]
fn unknown_fields_and_kinds_are_refused() {
    assert!(err(&GOOD.replace("cost_us: 1000, calls", "cost: 1, calls")).contains("unknown field"));
    assert!(err(&GOOD.replace("kind: server_kill", "kind: server_nap")).contains("server_nap"));
    assert!(
        err(&GOOD.replace("kind: server_kill }", "kind: server_kill, node: x }"))
            .contains("unknown field")
    );
}

#[test]
fn numbers_names_and_order_are_checked() {
    let bad = GOOD.replace("capacity_millicores: 300", "capacity_millicores: 0");
    assert!(err(&bad).contains("nodes[1].capacity_millicores"));
    let bad = GOOD.replace(
        "{ at_s: 5, cpu_fraction: 0.5 }",
        "{ at_s: 5, cpu_fraction: .nan }",
    );
    assert!(err(&bad).contains("load[0].steps[1]"), "{}", err(&bad));
    let bad = GOOD.replace("{ at_s: 5, cpu_fraction", "{ at_s: 0, cpu_fraction");
    assert!(err(&bad).contains("increasing"));
    let bad = GOOD.replace(
        "{ at_s: 3, kind: server_kill }",
        "{ at_s: 0.5, kind: server_kill }",
    );
    assert!(err(&bad).contains("events[4].at_s"));
    let bad = GOOD.replace("name: node-b", "name: node-a");
    assert!(err(&bad).contains("nodes[1].name"));
    let bad = GOOD.replace(
        "{ at_s: 1, kind: hog_start, node: node-b, millicores: 100 }",
        "{ at_s: 1, kind: hog_stop, node: node-b }",
    );
    assert!(err(&bad).contains("does not follow"), "{}", err(&bad));
    let bad = GOOD.replace("policies: [even, cswrr]", "policies: [fastest]");
    assert!(err(&bad).contains("run.policies[0]"));
    let bad = GOOD.replace("calls: back", "calls: front");
    assert!(err(&bad).contains("services[0].calls"));
    let bad = GOOD.replace(
        "  - { name: back, tenant: hotel, port: 8081, cost_us: 1000, pods_on",
        "  - { name: back, tenant: hotel, port: 8081, cost_us: 1000, calls: front, pods_on",
    );
    assert!(err(&bad).contains("cycle"), "{}", err(&bad));
    let bad = GOOD.replace("duration_s: 10", "duration_s: 6");
    assert!(err(&bad).contains("events[9].at_s"), "{}", err(&bad));
}

#[test]
fn admission_target_is_optional_and_a_fraction() {
    assert_eq!(parse(GOOD).unwrap().run.admission_target, None);
    let on = GOOD.replace(
        "duration_s: 10 }",
        "duration_s: 10, admission_target: 0.95 }",
    );
    assert_eq!(parse(&on).unwrap().run.admission_target, Some(0.95));
    let bad = GOOD.replace(
        "duration_s: 10 }",
        "duration_s: 10, admission_target: 1.5 }",
    );
    assert!(err(&bad).contains("run.admission_target"), "{}", err(&bad));
}
