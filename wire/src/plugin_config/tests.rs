//! The plugin configuration's rules, key by key.

use super::*;

const CLUSTER: &str = "outbound|8080||weight-server.mplb-system.svc.cluster.local";

#[test]
fn defaults_apply_when_only_the_cluster_is_given() {
    let c = PluginConfig::parse(format!(r#"{{"weight_server_cluster":"{CLUSTER}"}}"#).as_bytes())
        .unwrap();
    assert_eq!(
        c.weight_server_authority,
        "weight-server.mplb-system.svc.cluster.local:8080"
    );
    assert_eq!(c.weights_path, "/v1/weights");
    assert_eq!(c.poll_interval_ms, 1000);
    assert_eq!(c.poll_timeout_ms, 500);
    assert_eq!(c.table_ttl_ms, 30_000);
    assert_eq!(c.header, "x-lb-endpt");
    assert_eq!(c.mode, Mode::Subset);
    assert_eq!(c.session_header, "x-lb-session");
    assert_eq!(c.service, None);
    assert!(!c.admission, "sidecars never shed unless told");
    assert_eq!(c.tick_ms(), 250);
    assert!(c.retired.is_empty());
}

#[test]
fn every_key_is_read() {
    let c = PluginConfig::parse(
        br#"{"weight_server_cluster":"ws","weight_server_authority":"ws.local:9",
        "weights_path":"/w","poll_interval_ms":200,"poll_timeout_ms":100,
        "table_ttl_ms":1500,"header":"x-pod","mode":"session","session_header":"x-sess",
        "service":"Frontend","admission":true}"#,
    )
    .unwrap();
    assert_eq!(c.weight_server_authority, "ws.local:9");
    assert_eq!(c.weights_path, "/w");
    assert_eq!(
        (c.poll_interval_ms, c.poll_timeout_ms, c.table_ttl_ms),
        (200, 100, 1500)
    );
    assert_eq!(
        (c.header.as_str(), c.session_header.as_str()),
        ("x-pod", "x-sess")
    );
    assert_eq!(c.mode, Mode::Session);
    assert_eq!(c.service.as_deref(), Some("frontend"));
    assert!(c.admission);
    assert_eq!(c.tick_ms(), 50);
    let err = PluginConfig::parse(br#"{"weight_server_cluster":"ws","admission":"yes"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("admission") && err.contains("boolean"),
        "{err}"
    );
    // A cluster that is not Istio-shaped is its own authority.
    assert_eq!(
        PluginConfig::parse(br#"{"weight_server_cluster":"ws"}"#)
            .unwrap()
            .weight_server_authority,
        "ws"
    );
}

#[test]
fn retired_keys_are_accepted_whatever_their_value_and_reported() {
    // What an earlier filter's configuration carried (the proxy stats).
    let c = PluginConfig::parse(
        br#"{"weight_server_cluster":"ws","stats_path":"/v1/stats",
        "exact_errors":1,"response_samples_per_s":32}"#,
    )
    .unwrap();
    assert_eq!(
        c.retired,
        ["stats_path", "response_samples_per_s", "exact_errors"]
    );
    // Still given at most once.
    let err = PluginConfig::parse(
        br#"{"weight_server_cluster":"ws","exact_errors":true,"exact_errors":false}"#,
    )
    .unwrap_err();
    assert_eq!(
        err,
        WireError::Field {
            field: "exact_errors".into(),
            reason: "given twice".into()
        }
    );
}

#[test]
fn override_mode_is_read() {
    let c = PluginConfig::parse(br#"{"weight_server_cluster":"ws","mode":"override"}"#).unwrap();
    assert_eq!(c.mode, Mode::Override);
}

#[test]
fn bad_configuration_names_the_field() {
    let cases: &[(&str, &str)] = &[
        ("", "<config>"),
        ("[1]", "<config>"),
        ("{\"weight_server_cluster\":", "<config>"),
        ("{}", "weight_server_cluster"),
        (r#"{"weight_server_cluster":""}"#, "weight_server_cluster"),
        (r#"{"weight_server_cluster":7}"#, "weight_server_cluster"),
        (
            r#"{"weight_server_cluster":"ws","pol_interval_ms":5}"#,
            "pol_interval_ms",
        ),
        (
            r#"{"weight_server_cluster":"ws","poll_interval_ms":0}"#,
            "poll_interval_ms",
        ),
        (
            r#"{"weight_server_cluster":"ws","poll_interval_ms":-5}"#,
            "poll_interval_ms",
        ),
        (
            r#"{"weight_server_cluster":"ws","poll_interval_ms":1.5}"#,
            "poll_interval_ms",
        ),
        (
            r#"{"weight_server_cluster":"ws","poll_interval_ms":"1000"}"#,
            "poll_interval_ms",
        ),
        (
            r#"{"weight_server_cluster":"ws","poll_timeout_ms":999999}"#,
            "poll_timeout_ms",
        ),
        (
            r#"{"weight_server_cluster":"ws","table_ttl_ms":0}"#,
            "table_ttl_ms",
        ),
        (
            r#"{"weight_server_cluster":"ws","weights_path":"v1"}"#,
            "weights_path",
        ),
        (
            r#"{"weight_server_cluster":"ws","header":"X-LB"}"#,
            "header",
        ),
        (r#"{"weight_server_cluster":"ws","header":""}"#, "header"),
        (
            r#"{"weight_server_cluster":"ws","session_header":"x-lb-endpt"}"#,
            "session_header",
        ),
        (
            r#"{"weight_server_cluster":"ws","header":"x-lb-host"}"#,
            "header",
        ),
        (
            r#"{"weight_server_cluster":"ws","session_header":"x-lb-host"}"#,
            "session_header",
        ),
        (r#"{"weight_server_cluster":"ws","mode":"random"}"#, "mode"),
        (
            r#"{"weight_server_cluster":"ws","mode":"Override"}"#,
            "mode",
        ),
        (r#"{"weight_server_cluster":"ws","mode":1}"#, "mode"),
        (
            r#"{"weight_server_cluster":"ws","service":"a b"}"#,
            "service",
        ),
        (
            r#"{"weight_server_cluster":"ws","weight_server_authority":""}"#,
            "weight_server_authority",
        ),
    ];
    for (body, field) in cases {
        match PluginConfig::parse(body.as_bytes()) {
            Err(WireError::Field { field: f, reason }) => {
                assert_eq!(&f, field, "{body}: {reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("{body}: expected a config error, got {other:?}"),
        }
    }
    let huge = vec![b' '; MAX_CONFIG_BYTES + 1];
    assert!(PluginConfig::parse(&huge).is_err());
    let msg = PluginConfig::parse(br#"{"weight_server_cluster":"ws","mode":"x"}"#)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`mode`") && msg.contains("subset"), "{msg}");
}

#[test]
fn the_error_text_names_the_field_as_before() {
    let cases: &[(&str, &str, &str)] = &[
        ("", "<config>", "not JSON: "),
        ("[1]", "<config>", "not a JSON object"),
        ("null", "<config>", "not a JSON object"),
        ("{}", "weight_server_cluster", "is required"),
        (
            r#"{"weight_server_cluster":"ws","pol_interval_ms":5}"#,
            "pol_interval_ms",
            "unknown key",
        ),
        (
            r#"{"weight_server_cluster":"ws","poll_interval_ms":"1000"}"#,
            "poll_interval_ms",
            "must be an integer, got a string",
        ),
        (
            r#"{"weight_server_cluster":"ws","poll_interval_ms":-5}"#,
            "poll_interval_ms",
            "must be an integer between 10 and 3600000",
        ),
        (
            r#"{"weight_server_cluster":"ws","poll_interval_ms":1.5}"#,
            "poll_interval_ms",
            "must be an integer between 10 and 3600000",
        ),
        (
            r#"{"weight_server_cluster":"ws","service":true}"#,
            "service",
            "must be a string, got a boolean",
        ),
        (
            r#"{"weight_server_cluster":["ws"]}"#,
            "weight_server_cluster",
            "must be a string, got an array",
        ),
        (
            r#"{"weight_server_cluster":"ws","service":{"a":1}}"#,
            "service",
            "must be a string, got an object",
        ),
        (
            r#"{"weight_server_cluster":"ws","mode":true}"#,
            "mode",
            "must be a string, got a boolean",
        ),
    ];
    for (body, field, reason) in cases {
        match PluginConfig::parse(body.as_bytes()) {
            Err(WireError::Field {
                field: f,
                reason: r,
            }) => {
                assert_eq!(&f, field, "{body}");
                assert!(r.starts_with(reason), "{body}: {r}");
            }
            other => panic!("{body}: expected a field error, got {other:?}"),
        }
    }
}

#[test]
fn a_key_given_twice_is_refused_and_null_means_the_default() {
    let err = PluginConfig::parse(br#"{"weight_server_cluster":"a","weight_server_cluster":"b"}"#)
        .unwrap_err();
    assert_eq!(
        err,
        WireError::Field {
            field: "weight_server_cluster".into(),
            reason: "given twice".into()
        }
    );
    let c = PluginConfig::parse(br#"{"weight_server_cluster":"ws","mode":null,"header":null}"#)
        .unwrap();
    assert_eq!((c.mode, c.header.as_str()), (Mode::Subset, "x-lb-endpt"));
}

#[test]
fn the_first_bad_key_in_order_is_named() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"weight_server_cluster":"ws","zz":1,"aa":2}"#,
            "zz",
            "unknown key",
        ),
        (
            r#"{"mode":null,"mode":null,"weight_server_cluster":"ws"}"#,
            "mode",
            "given twice",
        ),
        (
            r#"{"header":"x-a","nope":{"header":1},"header":"x-b"}"#,
            "nope",
            "unknown key",
        ),
        (
            r#"{"weight_server_cluster":"ws","x":1"#,
            "<config>",
            "not JSON: ",
        ),
    ];
    for (body, field, reason) in cases {
        match PluginConfig::parse(body.as_bytes()) {
            Err(WireError::Field {
                field: f,
                reason: r,
            }) => {
                assert_eq!(
                    (f.as_str(), &r[..reason.len().min(r.len())]),
                    (*field, *reason),
                    "{body}: {r}"
                );
            }
            other => panic!("{body}: expected a field error, got {other:?}"),
        }
    }
}
