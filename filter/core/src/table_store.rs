//! The weights table as every VM sees it.
//!
//! The lease holder stores each validated table in shared data (`TABLE_KEY`,
//! the body) and then its meta line (`META_KEY`: `<version> <fresh_at_ms>
//! <ttl_ms>`). Every VM reads the small meta key on its tick, follows the
//! freshness time, and re-reads and re-indexes the body only when the
//! version changes. A body that fails validation (here or from shared data)
//! never replaces the last good table.

use mplb_wire::WeightsTable;

use crate::FilterError;
use crate::host::{Host, Level, LogLimiter};
use crate::index::TableIndex;

/// The shared-data key of the table body.
pub const TABLE_KEY: &str = "mplb.v1.table";
/// The shared-data key of the meta line.
pub const META_KEY: &str = "mplb.v1.meta";

/// The meta line of the shared table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The table's version.
    pub version: u64,
    /// When it was last confirmed fresh, ms since the epoch.
    pub fresh_at_ms: u64,
    /// Its time-to-live from then.
    pub ttl_ms: u64,
}

impl Meta {
    fn encode(&self) -> String {
        format!("{} {} {}", self.version, self.fresh_at_ms, self.ttl_ms)
    }

    fn decode(value: &[u8]) -> Option<Meta> {
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.split(' ').map(str::parse::<u64>);
        let meta = Meta {
            version: parts.next()?.ok()?,
            fresh_at_ms: parts.next()?.ok()?,
            ttl_ms: parts.next()?.ok()?,
        };
        parts.next().is_none().then_some(meta)
    }

    /// The meta line in shared data, if readable.
    pub fn read(host: &dyn Host) -> Option<Meta> {
        host.shared_get(META_KEY)
            .and_then(|(v, _)| Meta::decode(&v))
    }
}

/// One VM's copy of the table.
#[derive(Debug)]
pub struct TableStore {
    index: Option<TableIndex>,
    fresh_at_ms: u64,
    config_ttl_ms: u64,
    log: LogLimiter,
}

impl TableStore {
    /// An empty store; `config_ttl_ms` caps a table's time-to-live.
    pub fn new(config_ttl_ms: u64) -> TableStore {
        TableStore {
            index: None,
            fresh_at_ms: 0,
            config_ttl_ms,
            log: LogLimiter::default(),
        }
    }

    /// The table, if there is one and it is within its time-to-live (the
    /// smaller of the configured one and the table's own).
    pub fn current(&self, now_ms: u64) -> Option<&TableIndex> {
        let index = self.index.as_ref()?;
        let ttl = self.config_ttl_ms.min(index.ttl_ms);
        (now_ms < self.fresh_at_ms.saturating_add(ttl)).then_some(index)
    }

    /// The last good table, fresh or not.
    pub fn index(&self) -> Option<&TableIndex> {
        self.index.as_ref()
    }

    /// Version of the last good table (0: none).
    pub fn version(&self) -> u64 {
        self.index.as_ref().map_or(0, |i| i.version)
    }

    /// Follow the shared table: freshness always, the body on a version change.
    pub fn sync(&mut self, host: &dyn Host) {
        let Some(meta) = Meta::read(host) else { return };
        if meta.version != self.version() {
            let Some((body, _)) = host.shared_get(TABLE_KEY) else {
                return;
            };
            match WeightsTable::parse(&body) {
                Ok(t) if t.version == meta.version => self.index = Some(TableIndex::build(&t)),
                // The body is already newer than this meta: wait for its meta.
                Ok(_) => return,
                Err(e) => {
                    let msg = format!(
                        "mplb: shared weights table v{} rejected, keeping v{}: {e}",
                        meta.version,
                        self.version()
                    );
                    self.log.log(host, Level::Error, &msg);
                    return;
                }
            }
        }
        self.fresh_at_ms = self.fresh_at_ms.max(meta.fresh_at_ms);
    }

    /// A 200 from the weight server: validate, share, install. On error the
    /// last good table stays (shared and local) and the error is returned.
    pub fn publish(&mut self, host: &dyn Host, body: &[u8]) -> Result<u64, FilterError> {
        let table = WeightsTable::parse(body)?;
        let now = host.now_ms();
        let meta = Meta {
            version: table.version,
            fresh_at_ms: now,
            ttl_ms: table.ttl_ms,
        };
        if table.version != self.version() {
            host.shared_set(TABLE_KEY, body, 0)
                .map_err(|_| FilterError::Shared { key: TABLE_KEY })?;
            self.index = Some(TableIndex::build(&table));
        }
        host.shared_set(META_KEY, meta.encode().as_bytes(), 0)
            .map_err(|_| FilterError::Shared { key: META_KEY })?;
        self.fresh_at_ms = now;
        Ok(table.version)
    }

    /// A 304 from the weight server: the table in force is still current.
    pub fn refresh(&mut self, host: &dyn Host) {
        let Some(index) = &self.index else { return };
        let meta = Meta {
            version: index.version,
            fresh_at_ms: host.now_ms(),
            ttl_ms: index.ttl_ms,
        };
        if host
            .shared_set(META_KEY, meta.encode().as_bytes(), 0)
            .is_ok()
        {
            self.fresh_at_ms = meta.fresh_at_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockProxy;
    use mplb_wire::testing::TableBuilder;

    fn body(version: u64, ttl_ms: u64) -> String {
        TableBuilder::new(version)
            .ttl_ms(ttl_ms)
            .service("b.default.svc.cluster.local", &[])
            .pod("b-0", "10.0.0.1:80", 1.0)
            .json()
    }

    #[test]
    fn other_vms_follow_the_version_and_the_freshness() {
        let proxy = MockProxy::new(1000);
        let (a, b) = (proxy.vm(), proxy.vm());
        let (mut sa, mut sb) = (TableStore::new(30_000), TableStore::new(30_000));
        sb.sync(&b);
        assert!(sb.current(1000).is_none());
        assert_eq!(sa.publish(&a, body(3, 5000).as_bytes()), Ok(3));
        sb.sync(&b);
        assert_eq!(sb.current(1000).map(|i| i.version), Some(3));
        // The table's own ttl (5 s) wins over the configured 30 s.
        assert!(sb.current(5999).is_some());
        assert!(sb.current(6000).is_none());
        proxy.advance(4000);
        sa.refresh(&a);
        sb.sync(&b);
        assert!(sb.current(9999).is_some() && sb.current(10_000).is_none());
    }

    #[test]
    fn the_configured_ttl_wins_when_smaller() {
        let proxy = MockProxy::new(1000);
        let a = proxy.vm();
        let mut s = TableStore::new(1500);
        s.publish(&a, body(1, 30_000).as_bytes()).unwrap();
        assert!(s.current(2499).is_some());
        assert!(s.current(2500).is_none());
        assert!(
            s.index().is_some(),
            "expired, but still the last good table"
        );
    }

    #[test]
    fn an_invalid_shared_body_is_rejected_and_logged() {
        let proxy = MockProxy::new(1000);
        let (a, b) = (proxy.vm(), proxy.vm());
        let (mut sa, mut sb) = (TableStore::new(30_000), TableStore::new(30_000));
        sa.publish(&a, body(1, 30_000).as_bytes()).unwrap();
        sb.sync(&b);
        a.shared_set(TABLE_KEY, b"{\"version\":2", 0).unwrap();
        a.shared_set(META_KEY, b"2 1000 30000", 0).unwrap();
        sb.sync(&b);
        assert_eq!(sb.version(), 1);
        assert!(b.logged("rejected, keeping v1"));
        a.shared_set(META_KEY, b"garbage", 0).unwrap();
        sb.sync(&b);
        assert_eq!(sb.version(), 1);
    }

    #[test]
    fn meta_round_trips_and_rejects_junk() {
        let m = Meta {
            version: 9,
            fresh_at_ms: 8,
            ttl_ms: 7,
        };
        assert_eq!(Meta::decode(m.encode().as_bytes()), Some(m));
        for junk in [&b""[..], b"1 2", b"1 2 3 4", b"a b c", b"\xff"] {
            assert_eq!(Meta::decode(junk), None);
        }
    }
}
