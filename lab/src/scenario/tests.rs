use super::*;

#[test]
fn shared_node_shape() {
    let s = Scenario::shared_node().unwrap();
    assert_eq!(s.total_capacity(), 1250);
    assert_eq!(s.chain_cost_us("frontend"), 4000);
    assert_eq!(
        s.pods_of("batch")
            .map(|p| p.node.as_str())
            .collect::<Vec<_>>(),
        ["node-c"]
    );
    // 70% of 1250m = 875m, minus the 175m hog = 700m at 4 ms per request.
    assert!((s.rate_for_utilisation(0.7) - 175.0).abs() < 1e-6);
    // The file's schedule offers the same: 56% of 1250m in request CPU.
    assert_eq!(s.schedule("frontend").len(), 1);
    assert!((s.schedule("frontend")[0].1 - 175.0).abs() < 1e-6);
    let names: Vec<_> = s
        .pods
        .iter()
        .map(|p| (p.name.as_str(), p.node.as_str()))
        .collect();
    assert_eq!(names[0], ("frontend-0", "node-a"));
    assert_eq!(names[5], ("profile-2", "node-c"));
    assert_eq!(names[6], ("batch-0", "node-c"));
    assert_eq!(
        s.service("frontend").unwrap().fair_share_millicores,
        Some(500.0)
    );
    assert_eq!(
        s.service("batch").unwrap().fair_share_millicores,
        Some(150.0)
    );
}

#[test]
fn every_shipped_scenario_validates() {
    for (name, _) in SHIPPED {
        let s = Scenario::by_name(name).unwrap();
        assert_eq!(&s.name, name);
        assert!(s.entries().count() >= 1);
    }
    assert!(SHIPPED.len() >= 7);
}

#[test]
fn every_file_in_lab_scenarios_is_shipped_and_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        files += 1;
        let s = Scenario::load(path.to_str().unwrap()).unwrap();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        assert_eq!(s.name, stem, "{}", path.display());
        assert!(
            SHIPPED.iter().any(|(n, _)| *n == stem),
            "{stem} is not in SHIPPED"
        );
    }
    assert_eq!(files, SHIPPED.len());
}

#[test]
fn results_json_copies_the_admission_target_only_when_set() {
    let on = serde_json::to_value(Scenario::by_name("over-capacity").unwrap()).unwrap();
    assert_eq!(on["run"]["admission_target"], 0.95);
    for (name, _) in SHIPPED.iter().filter(|(n, _)| *n != "over-capacity") {
        let s = Scenario::by_name(name).unwrap();
        assert_eq!(s.run.admission_target, None, "{name}");
        let v = serde_json::to_value(s).unwrap();
        assert!(v["run"].get("admission_target").is_none(), "{name}");
    }
}

#[test]
fn a_malformed_file_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    let text = SHIPPED[0].1.replace("calls: profile", "calls: db");
    std::fs::write(&p, text).unwrap();
    let e = Scenario::load(p.to_str().unwrap()).unwrap_err().to_string();
    assert!(
        e.contains("scenario services[0].calls: unknown service \"db\""),
        "{e}"
    );
    assert!(Scenario::load("no-such").is_err());
}

#[test]
fn topology_file_uses_pod_names_as_uids() {
    let s = Scenario::shared_node().unwrap();
    let none = BTreeSet::new();
    let not_ready: BTreeSet<String> = ["profile-1".to_string()].into();
    let absent: BTreeSet<String> = ["frontend-2".to_string()].into();
    let yaml = s.topology_yaml(&|_| "127.0.0.1:9000".parse().unwrap(), &none, &none);
    let t: mplb_wire::topology::TopologyFile = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(t.nodes[2].capacity_millicores, 250.0);
    assert_eq!(t.services[2].fair_share_millicores, Some(150.0));
    assert_eq!(t.pods[0].uid.as_deref(), Some("frontend-0"));
    assert_eq!(t.pods[0].address, "127.0.0.1:9000");
    let yaml = s.topology_yaml(&|_| "127.0.0.1:9000".parse().unwrap(), &absent, &not_ready);
    let t: mplb_wire::topology::TopologyFile = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(t.pods.len(), 6);
    assert!(!t.pods.iter().find(|p| p.name == "profile-1").unwrap().ready);
}
