//! Shared checks of the fuzz targets: a parser of a contract must never panic,
//! and what it accepts must survive a round trip through its own encoding
//! (encode, parse again, get the same value), so that what one part writes the
//! other part reads back unchanged.

#![forbid(unsafe_code)]

use std::fmt::Debug;

use serde::Serialize;

/// Parse `data` with `parse`; if it is accepted, encode it as JSON, parse that
/// again and require the same value. Rejections are fine; a panic or a value
/// that changes across the round trip is a finding.
pub fn round_trip<T, E>(data: &[u8], parse: impl Fn(&[u8]) -> Result<T, E>)
where
    T: Serialize + PartialEq + Debug,
{
    let Ok(first) = parse(data) else { return };
    let encoded = match serde_json::to_vec(&first) {
        Ok(bytes) => bytes,
        Err(e) => panic!("an accepted value does not encode: {e}: {first:?}"),
    };
    match parse(&encoded) {
        Ok(second) => assert_eq!(first, second, "the value changed across a round trip"),
        Err(_) => panic!(
            "the parser refuses its own encoding of an accepted value: {}",
            String::from_utf8_lossy(&encoded)
        ),
    }
}

/// Parse `data` twice with `parse`: the parser must not panic and must give
/// the same answer (value or error text) both times, for parsers whose value
/// has no encoding to round-trip.
pub fn deterministic<T, E>(data: &[u8], parse: impl Fn(&[u8]) -> Result<T, E>)
where
    T: PartialEq + Debug,
    E: std::fmt::Display,
{
    let first = parse(data).map_err(|e| e.to_string());
    let second = parse(data).map_err(|e| e.to_string());
    assert_eq!(first, second, "the parser answered differently twice");
}
