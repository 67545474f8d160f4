//! The hostile requests of `tests/hostile.rs`, one table per surface: the
//! `/v1` routes (`v1.rs`) and the admin API (`admin.rs`).

mod admin;
mod v1;

use http::Method;

use crate::common::*;

/// One hostile request and the answer it must get.
pub struct Case {
    pub what: &'static str,
    pub method: Method,
    pub uri: &'static str,
    pub auth: Option<&'static str>,
    pub body: Vec<u8>,
    pub status: u16,
    pub says: &'static str,
}

pub const GOOD_TOKEN: Option<&str> = Some("Bearer s3cret-token");

pub fn case(
    what: &'static str,
    method: Method,
    uri: &'static str,
    auth: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: u16,
    says: &'static str,
) -> Case {
    Case {
        what,
        method,
        uri,
        auth,
        body: body.into(),
        status,
        says,
    }
}

pub fn good_report() -> String {
    report("node-a", 500.0, &[("profile-0", 100.0)])
}

/// Every case, `/v1` first.
pub fn cases() -> Vec<Case> {
    let mut all = v1::cases();
    all.extend(admin::cases());
    all
}
