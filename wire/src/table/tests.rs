use super::*;
use crate::testing::TableBuilder;
use serde_json::{Value, json};

/// The documented example, as a JSON value the tests then break.
fn good() -> Value {
    let table = TableBuilder::new(42)
        .generated_at_ms(1763800000000)
        .service(P, &["profile", "profile.default", "profile.default.svc"])
        .pod("profile-0", "10.1.2.3:8081", 0.7)
        .pod("profile-1", "10.1.2.4:8081", 0.3)
        .service("geo.default.svc.cluster.local", &[])
        .pod("geo-0", "[fd00::1]:8083", 1.0)
        .build();
    let mut v = serde_json::to_value(table).unwrap();
    // `aliases` is optional: the geo service leaves it out.
    if let Some(geo) = v["services"]["geo.default.svc.cluster.local"].as_object_mut() {
        geo.remove("aliases");
    }
    v
}

fn parse(v: &Value) -> Result<WeightsTable, WireError> {
    WeightsTable::parse(v.to_string().as_bytes())
}

const P: &str = "profile.default.svc.cluster.local";

#[test]
fn accepts_the_documented_example() {
    let t = parse(&good()).unwrap();
    assert_eq!(t.version, 42);
    let svc = &t.services[P];
    assert_eq!(svc.endpoints[0].pod, "profile-0");
    assert!((svc.total_weight() - 1.0).abs() < 1e-12);
    let index = t.name_index().unwrap();
    assert_eq!(index.get("profile"), Some(&P));
    assert_eq!(index.get("Profile"), Some(&P), "names match in any case");
    assert_eq!(index.get(P), Some(&P));
    assert_eq!(
        index.get("geo.default.svc.cluster.local"),
        Some(&"geo.default.svc.cluster.local")
    );
}

#[test]
fn ignores_unknown_fields_for_forward_compatibility() {
    let mut v = good();
    v["future_field"] = json!({"x": 1});
    v["services"][P]["endpoints"][0]["zone"] = json!("a");
    assert!(parse(&v).is_ok());
}

#[test]
fn zero_weight_is_allowed_if_the_sum_is_positive() {
    let mut v = good();
    v["services"][P]["endpoints"][1]["weight"] = json!(0.0);
    assert!(parse(&v).is_ok());
}

type Mutation = Box<dyn Fn(&mut Value)>;

fn hostile_mutations() -> Vec<(&'static str, Mutation)> {
    vec![
        (
            "negative weight",
            Box::new(|v| v["services"][P]["endpoints"][0]["weight"] = json!(-0.1)),
        ),
        (
            "all weights zero",
            Box::new(|v| {
                v["services"][P]["endpoints"][0]["weight"] = json!(0);
                v["services"][P]["endpoints"][1]["weight"] = json!(0);
            }),
        ),
        (
            "no endpoints",
            Box::new(|v| v["services"][P]["endpoints"] = json!([])),
        ),
        (
            "duplicate pod",
            Box::new(|v| v["services"][P]["endpoints"][1]["pod"] = json!("profile-0")),
        ),
        (
            "alias on two services",
            Box::new(|v| {
                v["services"]["geo.default.svc.cluster.local"]["aliases"] = json!(["profile"])
            }),
        ),
        (
            "alias on two services differing in case",
            Box::new(|v| {
                v["services"]["geo.default.svc.cluster.local"]["aliases"] = json!(["PROFILE"])
            }),
        ),
        (
            "alias equal to another fqdn",
            Box::new(|v| v["services"]["geo.default.svc.cluster.local"]["aliases"] = json!([P])),
        ),
        (
            "address without port",
            Box::new(|v| v["services"][P]["endpoints"][0]["address"] = json!("10.1.2.3")),
        ),
        (
            "address hostname",
            Box::new(|v| v["services"][P]["endpoints"][0]["address"] = json!("profile:8081")),
        ),
        (
            "address port out of range",
            Box::new(|v| v["services"][P]["endpoints"][0]["address"] = json!("10.1.2.3:70000")),
        ),
        (
            "weight as string",
            Box::new(|v| v["services"][P]["endpoints"][0]["weight"] = json!("0.7")),
        ),
        (
            "weight null",
            Box::new(|v| v["services"][P]["endpoints"][0]["weight"] = Value::Null),
        ),
        ("version negative", Box::new(|v| v["version"] = json!(-1))),
        ("version float", Box::new(|v| v["version"] = json!(1.5))),
        ("ttl zero", Box::new(|v| v["ttl_ms"] = json!(0))),
        (
            "missing services",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("services");
            }),
        ),
        (
            "services is a list",
            Box::new(|v| v["services"] = json!([])),
        ),
        (
            "empty pod name",
            Box::new(|v| v["services"][P]["endpoints"][0]["pod"] = json!("")),
        ),
        (
            "pod name with newline",
            Box::new(|v| v["services"][P]["endpoints"][0]["pod"] = json!("a\nb")),
        ),
        (
            "pod name too long",
            Box::new(|v| v["services"][P]["endpoints"][0]["pod"] = json!("p".repeat(300))),
        ),
        (
            "empty service name",
            Box::new(|v| {
                let svc = v["services"][P].clone();
                v["services"][""] = svc;
            }),
        ),
        (
            "endpoint is a number",
            Box::new(|v| v["services"][P]["endpoints"][0] = json!(7)),
        ),
        (
            "aliases not strings",
            Box::new(|v| v["services"][P]["aliases"] = json!([1, 2])),
        ),
    ]
}

#[test]
fn rejects_hostile_tables_whole() {
    let cases = hostile_mutations();
    assert!(cases.len() >= 20);
    for (what, mutate) in cases {
        let mut v = good();
        mutate(&mut v);
        assert!(parse(&v).is_err(), "{what} was accepted");
    }
}

#[test]
fn rejects_hostile_bytes() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let nan = good().to_string().replace("0.7", "NaN");
    let inf = good().to_string().replace("0.7", "1e999");
    let truncated = good().to_string();
    let truncated = &truncated[..truncated.len() / 2];
    let mut non_utf8 = good().to_string().into_bytes();
    let at = non_utf8.iter().position(|&b| b == b'p').unwrap();
    non_utf8[at] = 0xff;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("null", b"null".to_vec()),
        ("a string", b"\"table\"".to_vec()),
        ("deep nesting", deep.into_bytes()),
        ("NaN literal", nan.into_bytes()),
        ("infinite weight", inf.into_bytes()),
        ("truncated", truncated.as_bytes().to_vec()),
        ("non-UTF-8", non_utf8),
        ("trailing garbage", format!("{} x", good()).into_bytes()),
    ];
    for (what, body) in bodies {
        assert!(WeightsTable::parse(&body).is_err(), "{what} was accepted");
    }
}

#[test]
fn rejects_oversized_tables() {
    let huge = vec![b' '; MAX_TABLE_BYTES + 1];
    assert!(matches!(
        WeightsTable::parse(&huge),
        Err(WireError::TooLarge { .. })
    ));

    let mut big = TableBuilder::new(1)
        .generated_at_ms(0)
        .ttl_ms(1000)
        .service("big", &[]);
    for i in 0..=MAX_ENDPOINTS {
        big = big.pod(&format!("p-{i}"), "10.0.0.1:80", 1.0);
    }
    let err = WeightsTable::parse(big.json().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("endpoints"), "{err}");
}

#[test]
fn admit_is_optional_and_must_be_a_fraction_above_zero() {
    let t = parse(&good()).unwrap();
    assert_eq!(t.services[P].admit, None, "absent: admit all");
    assert_eq!(t.services[P].admit_fraction(), 1.0);
    assert!(
        !serde_json::to_string(&t).unwrap().contains("admit"),
        "a table without admission does not carry the field"
    );
    for ok in [0.05, 0.5, 1.0] {
        let mut v = good();
        v["services"][P]["admit"] = json!(ok);
        assert_eq!(parse(&v).unwrap().services[P].admit_fraction(), ok);
    }
    for bad in [json!(0.0), json!(-0.5), json!(1.5)] {
        let mut v = good();
        v["services"][P]["admit"] = bad.clone();
        let err = parse(&v).unwrap_err().to_string();
        assert!(err.contains("admit") && err.contains(P), "{bad}: {err}");
    }
}
