//! A test host: a settable clock, shared data common to several mock VMs
//! (with real CAS semantics, as Envoy implements them), recorded HTTP calls
//! and log lines, buffers, properties and environment, the header maps
//! of the stream being called back for (so a test drives whole requests),
//! and the local responses sent.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::host::{Buffer, Host, HttpHost, Level, Map, SharedError};

/// Shared data and the clock, common to every mock VM of one "Envoy".
#[derive(Default)]
pub struct MockProxy {
    pub now: Cell<u64>,
    data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
    next_token: Cell<u32>,
}

/// One recorded HTTP call.
#[derive(Debug, Clone)]
pub struct Call {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One VM's view of the mock proxy.
pub struct MockHost {
    pub proxy: Rc<MockProxy>,
    pub calls: RefCell<Vec<Call>>,
    pub logs: RefCell<Vec<(Level, String)>>,
    pub fail_calls: Cell<bool>,
    /// Header maps, by map: (name, value) in order.
    pub headers: RefCell<HashMap<MapKey, Headers>>,
    /// Buffers (the plugin configuration, a call's answer body).
    pub buffers: RefCell<HashMap<BufferKey, Vec<u8>>>,
    /// Host properties, by path joined with `.`.
    pub properties: RefCell<HashMap<String, Vec<u8>>>,
    /// Environment variables.
    pub env: RefCell<HashMap<String, String>>,
    /// The last tick period asked for.
    pub tick_ms: Cell<Option<u32>>,
    /// Header reads: (map, name), in order.
    pub reads: RefCell<Vec<(MapKey, String)>>,
    /// The local responses sent, in order.
    pub local: RefCell<Vec<LocalResponse>>,
    /// Refuse local responses (as a host may).
    pub fail_local: Cell<bool>,
}

/// One local response the filter sent.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalResponse {
    pub status: u32,
    pub details: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One header map: (name, raw value) in order.
pub type Headers = Vec<(String, Vec<u8>)>;
/// [`Map`] as a hash key.
pub type MapKey = u8;
/// [`Buffer`] as a hash key.
pub type BufferKey = u8;

pub fn map_key(map: Map) -> MapKey {
    match map {
        Map::Request => 0,
        Map::Response => 1,
        Map::HttpCallResponse => 2,
    }
}

pub fn buffer_key(kind: Buffer) -> BufferKey {
    match kind {
        Buffer::HttpCallResponseBody => 0,
        Buffer::PluginConfiguration => 1,
    }
}

impl MockProxy {
    pub fn new(now: u64) -> Rc<MockProxy> {
        let p = MockProxy::default();
        p.now.set(now);
        Rc::new(p)
    }

    pub fn vm(self: &Rc<Self>) -> MockHost {
        MockHost {
            proxy: Rc::clone(self),
            calls: RefCell::default(),
            logs: RefCell::default(),
            fail_calls: Cell::new(false),
            headers: RefCell::default(),
            buffers: RefCell::default(),
            properties: RefCell::default(),
            env: RefCell::default(),
            tick_ms: Cell::new(None),
            reads: RefCell::default(),
            local: RefCell::default(),
            fail_local: Cell::new(false),
        }
    }

    pub fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }

    pub fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.data.borrow().get(key).map(|(v, _)| v.clone())
    }
}

impl MockHost {
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }

    pub fn logged(&self, needle: &str) -> bool {
        self.logs.borrow().iter().any(|(_, l)| l.contains(needle))
    }

    /// Replace a header map with these headers.
    pub fn set_map(&self, map: Map, headers: &[(&str, &str)]) {
        let pairs = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        self.headers.borrow_mut().insert(map_key(map), pairs);
    }

    /// A header map as (name, value) strings, in order.
    pub fn map(&self, map: Map) -> Vec<(String, String)> {
        self.headers
            .borrow()
            .get(&map_key(map))
            .map(|pairs| {
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many times `name` of `map` was read; the count restarts.
    pub fn take_reads(&self, map: Map, name: &str) -> usize {
        let reads = std::mem::take(&mut *self.reads.borrow_mut());
        reads
            .iter()
            .filter(|(m, n)| *m == map_key(map) && n == name)
            .count()
    }

    /// The local responses sent since the last call.
    pub fn take_local(&self) -> Vec<LocalResponse> {
        std::mem::take(&mut *self.local.borrow_mut())
    }

    /// Set a buffer's content.
    pub fn set_buffer(&self, kind: Buffer, bytes: &[u8]) {
        self.buffers
            .borrow_mut()
            .insert(buffer_key(kind), bytes.to_vec());
    }
}

impl Host for MockHost {
    fn now_ms(&self) -> u64 {
        self.proxy.now.get()
    }

    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.proxy.data.borrow().get(key).cloned()
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
        let mut data = self.proxy.data.borrow_mut();
        if let Some((_, current)) = data.get(key)
            && cas != 0
            && cas != *current
        {
            return Err(SharedError::CasMismatch);
        }
        let next = self.proxy.next_cas.get() + 1;
        self.proxy.next_cas.set(next);
        data.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout_ms: u64,
    ) -> Result<u32, String> {
        if self.fail_calls.get() {
            return Err("mock: dispatch refused".into());
        }
        let token = self.proxy.next_token.get() + 1;
        self.proxy.next_token.set(token);
        self.calls.borrow_mut().push(Call {
            token,
            cluster: cluster.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.map(<[u8]>::to_vec),
            timeout_ms,
        });
        Ok(token)
    }

    fn log(&self, level: Level, msg: &str) {
        self.logs.borrow_mut().push((level, msg.to_string()));
    }

    fn buffer(&self, kind: Buffer, max: usize) -> Option<Vec<u8>> {
        let buffers = self.buffers.borrow();
        let b = buffers.get(&buffer_key(kind))?;
        Some(b[..b.len().min(max)].to_vec())
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.properties.borrow().get(&path.join(".")).cloned()
    }

    fn env(&self, name: &str) -> Option<String> {
        self.env.borrow().get(name).cloned()
    }

    fn random_seed(&self) -> u64 {
        7
    }

    fn set_tick_period_ms(&self, ms: u32) -> bool {
        self.tick_ms.set(Some(ms));
        true
    }
}

impl HttpHost for MockHost {
    type Value = Vec<u8>;

    fn header(&self, map: Map, name: &str) -> Option<Vec<u8>> {
        self.reads
            .borrow_mut()
            .push((map_key(map), name.to_string()));
        let maps = self.headers.borrow();
        let (_, v) = maps.get(&map_key(map))?.iter().find(|(k, _)| k == name)?;
        Some(v.clone())
    }

    fn set_header(&self, map: Map, name: &str, value: &str) -> bool {
        let mut maps = self.headers.borrow_mut();
        let pairs = maps.entry(map_key(map)).or_default();
        match pairs.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value.as_bytes().to_vec(),
            None => pairs.push((name.to_string(), value.as_bytes().to_vec())),
        }
        true
    }

    fn remove_header(&self, map: Map, name: &str) -> bool {
        let mut maps = self.headers.borrow_mut();
        if let Some(pairs) = maps.get_mut(&map_key(map)) {
            pairs.retain(|(k, _)| k != name);
        }
        true
    }

    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> bool {
        if self.fail_local.get() {
            return false;
        }
        self.local.borrow_mut().push(LocalResponse {
            status,
            details: details.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        });
        true
    }
}
