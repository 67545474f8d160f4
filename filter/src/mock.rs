//! A test host: a settable clock, shared data common to several mock VMs
//! (with real CAS semantics, as Envoy implements them), recorded HTTP calls
//! and log lines.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::host::{Host, Level, SharedError};

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
}
