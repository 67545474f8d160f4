//! The semantic rules of a scenario file ([`ScenarioFile::validate`]): names
//! unique and well formed, references resolved, numbers in range, schedules
//! and events in order; each error names the field.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn field(path: String, reason: impl Into<String>) -> WireError {
    WireError::Field {
        field: format!("scenario {path}"),
        reason: reason.into(),
    }
}

fn name_ok(path: String, name: &str) -> Result<(), WireError> {
    crate::check_name("name", name).map_err(|e| field(path, e.to_string()))
}

fn unique<'a>(
    what: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<BTreeSet<&'a str>, WireError> {
    let mut seen = BTreeSet::new();
    for (i, n) in names.enumerate() {
        name_ok(format!("{what}[{i}].name"), n)?;
        if !seen.insert(n) {
            return Err(field(format!("{what}[{i}].name"), format!("{n:?} repeats")));
        }
    }
    Ok(seen)
}

fn seconds(path: String, v: f64, max: f64) -> Result<(), WireError> {
    if !v.is_finite() || v < 0.0 || v > max {
        return Err(field(
            path,
            format!("{v} is not a number of seconds in 0..={max}"),
        ));
    }
    Ok(())
}

impl ScenarioFile {
    /// Check every semantic rule (see the module docs).
    pub fn validate(&self) -> Result<(), WireError> {
        name_ok("name".into(), &self.name)?;
        if self.nodes.is_empty() {
            return Err(field("nodes".into(), "at least one node is needed"));
        }
        let nodes = unique("nodes", self.nodes.iter().map(|n| n.name.as_str()))?;
        for (i, n) in self.nodes.iter().enumerate() {
            if !(1..=64_000).contains(&n.capacity_millicores) {
                return Err(field(
                    format!("nodes[{i}].capacity_millicores"),
                    format!("{} is not in 1..=64000", n.capacity_millicores),
                ));
            }
        }
        let tenants = unique("tenants", self.tenants.iter().map(|t| t.name.as_str()))?;
        let services = unique("services", self.services.iter().map(|s| s.name.as_str()))?;
        let mut ports = BTreeSet::new();
        let mut pods = BTreeSet::new();
        for (i, s) in self.services.iter().enumerate() {
            let at = |f: &str| format!("services[{i}].{f}");
            if !tenants.contains(s.tenant.as_str()) {
                return Err(field(
                    at("tenant"),
                    format!("unknown tenant {:?}", s.tenant),
                ));
            }
            if s.port == 0 || !ports.insert(s.port) {
                return Err(field(at("port"), format!("{} is 0 or repeats", s.port)));
            }
            if s.cost_us > 1_000_000 {
                return Err(field(
                    at("cost_us"),
                    format!("{} exceeds 1000000", s.cost_us),
                ));
            }
            if let Some(c) = &s.calls
                && (!services.contains(c.as_str()) || *c == s.name)
            {
                return Err(field(at("calls"), format!("unknown service {c:?}")));
            }
            if !(1..=64_000).contains(&s.request_millicores) || s.hog_millicores > 64_000 {
                return Err(field(
                    at("request_millicores"),
                    "request must be in 1..=64000 and hog at most 64000",
                ));
            }
            for (j, n) in s.pods_on.iter().enumerate() {
                if !nodes.contains(n.as_str()) {
                    return Err(field(
                        at(&format!("pods_on[{j}]")),
                        format!("unknown node {n:?}"),
                    ));
                }
            }
            if s.pods_on.is_empty() {
                return Err(field(at("pods_on"), "a service needs at least one pod"));
            }
            pods.extend(s.pod_names());
        }
        self.check_calls_acyclic()?;
        self.check_load(&services)?;
        self.check_events(&nodes, &pods)?;
        self.check_run()
    }

    fn check_calls_acyclic(&self) -> Result<(), WireError> {
        let calls: BTreeMap<&str, &str> = self
            .services
            .iter()
            .filter_map(|s| s.calls.as_deref().map(|c| (s.name.as_str(), c)))
            .collect();
        for (i, s) in self.services.iter().enumerate() {
            let mut at = s.name.as_str();
            for _ in 0..=self.services.len() {
                match calls.get(at) {
                    Some(next) => at = next,
                    None => break,
                }
                if at == s.name {
                    return Err(field(format!("services[{i}].calls"), "calls form a cycle"));
                }
            }
        }
        Ok(())
    }

    fn check_load(&self, services: &BTreeSet<&str>) -> Result<(), WireError> {
        let mut loaded = BTreeSet::new();
        for (i, l) in self.load.iter().enumerate() {
            let entry = self.services.iter().any(|s| s.name == l.service && s.entry);
            if !services.contains(l.service.as_str()) || !entry {
                return Err(field(
                    format!("load[{i}].service"),
                    format!("{:?} is not an entry service", l.service),
                ));
            }
            if !loaded.insert(l.service.as_str()) {
                return Err(field(format!("load[{i}].service"), "has two schedules"));
            }
            if l.steps.is_empty() || l.steps.len() > 100 {
                return Err(field(format!("load[{i}].steps"), "needs 1..=100 steps"));
            }
            for (j, s) in l.steps.iter().enumerate() {
                let at = |f: &str| format!("load[{i}].steps[{j}].{f}");
                seconds(at("at_s"), s.at_s, self.run.duration_s)?;
                if j == 0 && s.at_s != 0.0 {
                    return Err(field(at("at_s"), "the first step starts at 0"));
                }
                if j > 0 && s.at_s <= l.steps[j - 1].at_s {
                    return Err(field(at("at_s"), "steps must be in increasing time"));
                }
                match (s.rps, s.cpu_fraction) {
                    (Some(r), None) if r.is_finite() && r > 0.0 && r <= 100_000.0 => {}
                    (None, Some(f)) if f.is_finite() && f > 0.0 && f <= 10.0 => {}
                    _ => {
                        return Err(field(
                            at("rps"),
                            "give exactly one of rps (0..=100000) and cpu_fraction (0..=10), above 0",
                        ));
                    }
                }
            }
        }
        for (i, s) in self.services.iter().enumerate() {
            if s.entry && !loaded.contains(s.name.as_str()) {
                return Err(field(
                    format!("services[{i}].entry"),
                    "an entry service needs a load schedule",
                ));
            }
        }
        if loaded.is_empty() {
            return Err(field(
                "load".into(),
                "at least one entry service needs load",
            ));
        }
        Ok(())
    }

    fn check_events(
        &self,
        nodes: &BTreeSet<&str>,
        pods: &BTreeSet<String>,
    ) -> Result<(), WireError> {
        let mut hog: BTreeSet<&str> = BTreeSet::new();
        let mut agent_down: BTreeSet<&str> = BTreeSet::new();
        let mut server_down = false;
        // Pods whose first event is pod_add start absent.
        let mut present: BTreeMap<&str, bool> = BTreeMap::new();
        let mut ready: BTreeSet<&str> = BTreeSet::new();
        for e in &self.events {
            if let Event::PodAdd { pod, .. } = e {
                present.entry(pod.as_str()).or_insert(false);
            }
            if let Event::PodRemove { pod, .. }
            | Event::PodNotReady { pod, .. }
            | Event::PodReady { pod, .. } = e
            {
                present.entry(pod.as_str()).or_insert(true);
            }
        }
        for p in pods {
            if present.get(p.as_str()).copied().unwrap_or(true) {
                ready.insert(p.as_str());
            }
        }
        let mut last = 0.0;
        for (i, e) in self.events.iter().enumerate() {
            let at = |f: &str| format!("events[{i}].{f}");
            seconds(at("at_s"), e.at_s(), self.run.duration_s)?;
            if e.at_s() < last {
                return Err(field(at("at_s"), "events must be in time order"));
            }
            last = e.at_s();
            let bad = |f: &str, why: String| Err(field(at(f), why));
            match e {
                Event::HogStart { node, .. }
                | Event::HogStop { node, .. }
                | Event::AgentKill { node, .. }
                | Event::AgentRestart { node, .. }
                    if !nodes.contains(node.as_str()) =>
                {
                    return bad("node", format!("unknown node {node:?}"));
                }
                Event::PodAdd { pod, .. }
                | Event::PodRemove { pod, .. }
                | Event::PodNotReady { pod, .. }
                | Event::PodReady { pod, .. }
                    if !pods.contains(pod) =>
                {
                    return bad("pod", format!("unknown pod {pod:?}"));
                }
                _ => {}
            }
            let ok = match e {
                Event::HogStart {
                    node, millicores, ..
                } => {
                    if *millicores == 0 || *millicores > 64_000 {
                        return bad("millicores", format!("{millicores} is not in 1..=64000"));
                    }
                    hog.insert(node)
                }
                Event::HogStop { node, .. } => hog.remove(node.as_str()),
                Event::AgentKill { node, .. } => agent_down.insert(node),
                Event::AgentRestart { node, .. } => agent_down.remove(node.as_str()),
                Event::ServerKill { .. } => !std::mem::replace(&mut server_down, true),
                Event::ServerRestart { .. } => std::mem::replace(&mut server_down, false),
                Event::PodAdd { pod, .. } => {
                    let was = present.insert(pod, true) == Some(false);
                    ready.insert(pod);
                    was
                }
                Event::PodRemove { pod, .. } => {
                    ready.remove(pod.as_str());
                    present.insert(pod, false) != Some(false)
                }
                Event::PodNotReady { pod, .. } => {
                    present.get(pod.as_str()) != Some(&false) && ready.remove(pod.as_str())
                }
                Event::PodReady { pod, .. } => {
                    present.get(pod.as_str()) != Some(&false) && ready.insert(pod)
                }
            };
            if !ok {
                return bad(
                    "kind",
                    format!("{} does not follow from the events before it", e.label()),
                );
            }
        }
        Ok(())
    }

    fn check_run(&self) -> Result<(), WireError> {
        if self.run.policies.is_empty() {
            return Err(field("run.policies".into(), "name at least one policy"));
        }
        for (i, p) in self.run.policies.iter().enumerate() {
            if !POLICIES.contains(&p.as_str()) {
                return Err(field(
                    format!("run.policies[{i}]"),
                    format!("unknown policy {p:?} (known: {})", POLICIES.join(", ")),
                ));
            }
        }
        if !(1..=20).contains(&self.run.repeat) {
            return Err(field("run.repeat".into(), "must be in 1..=20"));
        }
        seconds("run.warmup_s".into(), self.run.warmup_s, 3600.0)?;
        seconds("run.duration_s".into(), self.run.duration_s, 3600.0)?;
        if let Some(a) = self.run.admission_target
            && !(a > 0.0 && a <= 1.0)
        {
            return Err(field(
                "run.admission_target".into(),
                format!("{a} is not a fraction of capacity in (0, 1]"),
            ));
        }
        if self.run.duration_s < 1.0 {
            return Err(field("run.duration_s".into(), "must be at least 1 s"));
        }
        Ok(())
    }
}
