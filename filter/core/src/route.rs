//! The per-request decision: what to do with one outbound request's headers.
//! Pure: the glue reads the headers, calls [`decide`], and applies the result.

use crate::index::{ServiceEntry, TableIndex, authority_host};

/// What the glue must do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave every header as it is.
    Untouched,
    /// Remove the (stale) endpoint header; stamp nothing.
    Strip,
    /// Send the request to `pod` of `service`. `pinned`: the client's own
    /// endpoint header named this pod and stays as it is.
    Stamp {
        /// The service's index in the table.
        service: u32,
        /// The pod's index in the service.
        pod: u32,
        /// The client's own endpoint header named this pod.
        pinned: bool,
    },
}

/// Is `host` this workload's own service (`own` is a name like `frontend`, or
/// an FQDN)? Matches `own` itself and any `own.<...>` name.
pub fn is_own(host: &str, own: &str) -> bool {
    host.len() >= own.len()
        && host.as_bytes()[..own.len()].eq_ignore_ascii_case(own.as_bytes())
        && (host.len() == own.len() || host.as_bytes()[own.len()] == b'.')
}

/// Where a request's `:authority` points, under one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// This workload's own service: not touched.
    Own,
    /// A destination the table does not know (Istio's balancing applies).
    Unknown,
    /// A service of the table.
    Service(u32),
}

/// Resolve an `:authority` (`None`: absent) against a fresh table.
pub fn resolve(authority: Option<&str>, own: Option<&str>, table: &TableIndex) -> Dest {
    let host = authority.map(authority_host).unwrap_or("");
    if let Some(own) = own
        && is_own(host, own)
    {
        return Dest::Own;
    }
    let Some(service) = table.lookup(host) else {
        return Dest::Unknown;
    };
    let Some(svc) = table.service(service) else {
        return Dest::Unknown;
    };
    if let Some(own) = own
        && (table.lookup(own) == Some(service) || is_own(&svc.fqdn, own))
    {
        return Dest::Own;
    }
    Dest::Service(service)
}

/// The last `:authority` a VM resolved and where it pointed, under one table
/// version: a sidecar sends most of its requests to a few services, and a
/// repeat skips the port strip and the name lookups.
#[derive(Debug, Default)]
pub struct LastDest {
    version: u64,
    authority: String,
    dest: Option<Dest>,
}

impl LastDest {
    /// [`resolve`], remembering the answer for the next request.
    pub fn resolve(
        &mut self,
        authority: Option<&str>,
        own: Option<&str>,
        table: &TableIndex,
    ) -> Dest {
        if let (Some(dest), Some(a)) = (self.dest, authority)
            && self.version == table.version
            && self.authority == a
        {
            return dest;
        }
        let dest = resolve(authority, own, table);
        if let Some(a) = authority {
            self.version = table.version;
            self.authority.clear();
            self.authority.push_str(a);
            self.dest = Some(dest);
        }
        dest
    }
}

/// Decide for one request.
///
/// - `authority`: the `:authority` header; `endpoint_header`: the current
///   value of the endpoint header (`x-lb-endpt`), if any.
/// - `own`: this workload's own service; requests to it are not touched.
/// - `table`: the current table if it is fresh, `None` if there is none or it
///   expired.
/// - `pick`: the pod of a service (its index and entry), called at most
///   once, only when a pick is needed.
pub fn decide(
    authority: Option<&str>,
    endpoint_header: Option<&str>,
    own: Option<&str>,
    table: Option<&TableIndex>,
    pick: impl FnOnce(u32, &ServiceEntry) -> u32,
) -> Action {
    match table {
        Some(table) => act(resolve(authority, own, table), endpoint_header, table, pick),
        None => {
            let host = authority.map(authority_host).unwrap_or("");
            if own.is_some_and(|own| is_own(host, own)) {
                Action::Untouched
            } else {
                fail_open(endpoint_header)
            }
        }
    }
}

/// Decide for a request to a resolved destination of a fresh table.
pub fn act(
    dest: Dest,
    endpoint_header: Option<&str>,
    table: &TableIndex,
    pick: impl FnOnce(u32, &ServiceEntry) -> u32,
) -> Action {
    let service = match dest {
        Dest::Own => return Action::Untouched,
        Dest::Unknown => return fail_open(endpoint_header),
        Dest::Service(s) => s,
    };
    let Some(svc) = table.service(service) else {
        return fail_open(endpoint_header);
    };
    if let Some(pod) = endpoint_header.and_then(|p| svc.pod_index(p)) {
        return Action::Stamp {
            service,
            pod,
            pinned: true,
        };
    }
    Action::Stamp {
        service,
        pod: pick(service, svc),
        pinned: false,
    }
}

/// No pick for this request: a stale endpoint header goes, nothing is stamped.
fn fail_open(endpoint_header: Option<&str>) -> Action {
    if endpoint_header.is_some() {
        Action::Strip
    } else {
        Action::Untouched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The weighted draw of these random bits, as the pick.
    fn by(random: u64) -> impl FnOnce(u32, &ServiceEntry) -> u32 {
        move |_, svc| svc.pick(random)
    }
    use mplb_wire::WeightsTable;
    use mplb_wire::testing::TableBuilder;

    fn index() -> TableIndex {
        let body = TableBuilder::new(3)
            .service("backend.default.svc.cluster.local", &["backend"])
            .pod("b-0", "10.0.0.1:80", 1.0)
            .pod("b-1", "10.0.0.2:80", 3.0)
            .service("other.default.svc.cluster.local", &["other"])
            .pod("o-0", "10.0.1.1:80", 1.0)
            .service("frontend.default.svc.cluster.local", &["fe"])
            .pod("f-0", "10.0.2.1:80", 1.0)
            .json();
        TableIndex::build(&WeightsTable::parse(body.as_bytes()).unwrap())
    }

    const HI: u64 = u64::MAX; // picks the last endpoint
    const LO: u64 = 0; // picks the first

    #[test]
    fn stamps_a_weighted_pick_for_fqdn_alias_and_port() {
        let t = index();
        for auth in [
            "backend",
            "backend:8080",
            "backend.default.svc.cluster.local:80",
            "Backend",
        ] {
            assert_eq!(
                decide(Some(auth), None, Some("frontend"), Some(&t), by(HI)),
                Action::Stamp {
                    service: 0,
                    pod: 1,
                    pinned: false
                },
                "{auth}"
            );
        }
        assert_eq!(
            decide(Some("backend"), None, None, Some(&t), by(LO)),
            Action::Stamp {
                service: 0,
                pod: 0,
                pinned: false
            }
        );
    }

    #[test]
    fn a_pin_to_a_pod_of_the_destination_is_kept() {
        let t = index();
        let a = decide(Some("backend"), Some("b-0"), None, Some(&t), by(HI));
        assert_eq!(
            a,
            Action::Stamp {
                service: 0,
                pod: 0,
                pinned: true
            }
        );
    }

    #[test]
    fn a_stale_header_for_another_service_is_replaced() {
        let t = index();
        for stale in ["o-0", "f-0", "nope", ""] {
            let a = decide(Some("backend"), Some(stale), None, Some(&t), by(HI));
            assert_eq!(
                a,
                Action::Stamp {
                    service: 0,
                    pod: 1,
                    pinned: false
                },
                "{stale}"
            );
        }
    }

    #[test]
    fn no_table_or_unknown_destination_strips_a_stale_header_and_stamps_nothing() {
        let t = index();
        assert_eq!(
            decide(Some("backend"), Some("b-0"), None, None, by(HI)),
            Action::Strip
        );
        assert_eq!(
            decide(Some("backend"), None, None, None, by(HI)),
            Action::Untouched
        );
        assert_eq!(
            decide(Some("unknown:80"), Some("b-0"), None, Some(&t), by(HI)),
            Action::Strip
        );
        assert_eq!(
            decide(Some("unknown"), None, None, Some(&t), by(HI)),
            Action::Untouched
        );
        assert_eq!(
            decide(None, Some("b-0"), None, Some(&t), by(HI)),
            Action::Strip
        );
        assert_eq!(
            decide(None, None, None, Some(&t), by(HI)),
            Action::Untouched
        );
    }

    #[test]
    fn own_service_requests_are_not_touched() {
        let t = index();
        for auth in [
            "frontend",
            "frontend:8080",
            "frontend.default.svc.cluster.local",
            "fe:80",
        ] {
            for header in [None, Some("o-0"), Some("b-1")] {
                for table in [None, Some(&t)] {
                    if auth.starts_with("fe:") && table.is_none() {
                        continue; // an alias is only known from the table
                    }
                    assert_eq!(
                        decide(Some(auth), header, Some("frontend"), table, by(HI)),
                        Action::Untouched,
                        "{auth} {header:?}"
                    );
                }
            }
        }
        // The own-service match is by name boundary, not by prefix.
        assert!(!is_own("frontend2", "frontend"));
        assert!(is_own("FRONTEND.default", "frontend"));
        assert!(!is_own("front", "frontend"));
    }

    #[test]
    fn the_last_destination_is_remembered_for_its_table_version_only() {
        let t = index();
        let mut last = LastDest::default();
        assert_eq!(last.resolve(Some("backend"), None, &t), Dest::Service(0));
        assert_eq!(last.resolve(Some("backend"), None, &t), Dest::Service(0));
        assert_eq!(last.resolve(Some("fe:80"), Some("frontend"), &t), Dest::Own);
        assert_eq!(last.resolve(Some("nope"), None, &t), Dest::Unknown);
        assert_eq!(last.resolve(None, None, &t), Dest::Unknown);
        assert_eq!(last.resolve(Some("nope"), None, &t), Dest::Unknown);
        // A new version resolves again: `backend` is gone from it.
        let body = TableBuilder::new(4)
            .service("other.default.svc.cluster.local", &["backend"])
            .pod("o-0", "10.0.1.1:80", 1.0)
            .json();
        let t4 = TableIndex::build(&WeightsTable::parse(body.as_bytes()).unwrap());
        assert_eq!(last.resolve(Some("backend"), None, &t), Dest::Service(0));
        assert_eq!(last.resolve(Some("backend"), None, &t4), Dest::Service(0));
        assert_eq!(last.resolve(Some("other"), None, &t4), Dest::Unknown);
        assert_eq!(last.resolve(Some("backend"), None, &t4), Dest::Service(0));
        assert_eq!(last.resolve(Some("other"), None, &t), Dest::Service(2));
    }

    #[test]
    fn the_random_source_is_only_used_for_a_pick() {
        let t = index();
        let untouched = decide(
            Some("backend"),
            Some("b-0"),
            None,
            Some(&t),
            |_, _| unreachable!(),
        );
        assert!(matches!(untouched, Action::Stamp { pinned: true, .. }));
        assert_eq!(
            decide(Some("x"), None, None, Some(&t), |_, _| unreachable!()),
            Action::Untouched
        );
    }
}
