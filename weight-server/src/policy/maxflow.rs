//! Dinic's maximum flow on `f64` capacities, for the `optimal` policy's flow
//! solver: small, allocation-light, iterative (no recursion, so deep
//! residual paths cannot overflow a worker's stack).
//!
//! Edges come in pairs (`e`, `e ^ 1` its reverse). A residual below `eps`
//! counts as saturated; every augmentation saturates its bottleneck edge
//! exactly, so the algorithm terminates. Flow may be grown in place after
//! capacities are raised ([`FlowNet::raise`]); lowering needs [`FlowNet::clear`].

use std::collections::VecDeque;

/// A flow network.
#[derive(Debug, Clone)]
pub struct FlowNet {
    /// Per node: its edge ids (forward and reverse).
    adj: Vec<Vec<u32>>,
    to: Vec<u32>,
    /// Residual capacity per edge.
    res: Vec<f64>,
    /// Capacity per edge (0 for reverse edges).
    cap: Vec<f64>,
    eps: f64,
    level: Vec<i32>,
    next: Vec<usize>,
}

impl FlowNet {
    /// `nodes` nodes, residuals at or below `eps` count as none.
    pub fn new(nodes: usize, eps: f64) -> FlowNet {
        FlowNet {
            adj: vec![Vec::new(); nodes],
            to: Vec::new(),
            res: Vec::new(),
            cap: Vec::new(),
            eps,
            level: vec![-1; nodes],
            next: vec![0; nodes],
        }
    }

    /// Add an edge `u → v` with capacity `cap` (≥ 0, may be infinite);
    /// returns its id.
    pub fn edge(&mut self, u: usize, v: usize, cap: f64) -> usize {
        let e = self.to.len();
        let cap = if cap > 0.0 { cap } else { 0.0 };
        self.adj[u].push(e as u32);
        self.to.push(v as u32);
        self.res.push(cap);
        self.cap.push(cap);
        self.adj[v].push(e as u32 + 1);
        self.to.push(u as u32);
        self.res.push(0.0);
        self.cap.push(0.0);
        e
    }

    /// The flow on edge `e`.
    pub fn flow(&self, e: usize) -> f64 {
        self.res.get(e ^ 1).copied().unwrap_or(0.0)
    }

    /// Set the capacity of edge `e` to `cap`, keeping its flow; a capacity
    /// below the flow is raised to it (callers only raise, or [`clear`] first).
    ///
    /// [`clear`]: FlowNet::clear
    pub fn raise(&mut self, e: usize, cap: f64) {
        let cap = cap.max(self.flow(e)).max(0.0);
        self.res[e] = cap - self.flow(e);
        self.cap[e] = cap;
    }

    /// Send `amount` more along edge `e` (the caller keeps flows within
    /// capacities and conserved).
    pub fn push(&mut self, e: usize, amount: f64) {
        self.res[e] -= amount;
        self.res[e ^ 1] += amount;
    }

    /// Remove all flow.
    pub fn clear(&mut self) {
        self.res.copy_from_slice(&self.cap);
    }

    fn bfs(&mut self, s: usize, t: usize) -> bool {
        self.level.fill(-1);
        self.level[s] = 0;
        let mut queue = VecDeque::from([s]);
        while let Some(u) = queue.pop_front() {
            for &e in &self.adj[u] {
                let v = self.to[e as usize] as usize;
                if self.level[v] < 0 && self.res[e as usize] > self.eps {
                    self.level[v] = self.level[u] + 1;
                    queue.push_back(v);
                }
            }
        }
        self.level[t] >= 0
    }

    /// One blocking flow of the level graph, found path by path with an
    /// explicit stack.
    fn blocking(&mut self, s: usize, t: usize) -> f64 {
        self.next.fill(0);
        let mut total = 0.0;
        let mut path: Vec<u32> = Vec::new();
        let mut u = s;
        loop {
            if u == t {
                let push = path
                    .iter()
                    .map(|&e| self.res[e as usize])
                    .fold(f64::INFINITY, f64::min);
                if !push.is_finite() {
                    // An all-infinite path: no finite maximum; stop here.
                    return total;
                }
                let mut cut = path.len();
                for (i, &e) in path.iter().enumerate() {
                    let e = e as usize;
                    self.res[e] -= push;
                    self.res[e ^ 1] += push;
                    if self.res[e] <= self.eps && cut == path.len() {
                        cut = i;
                    }
                }
                total += push;
                path.truncate(cut);
                u = path.last().map_or(s, |&e| self.to[e as usize] as usize);
                continue;
            }
            let mut advanced = false;
            while self.next[u] < self.adj[u].len() {
                let e = self.adj[u][self.next[u]];
                let v = self.to[e as usize] as usize;
                if self.res[e as usize] > self.eps && self.level[v] == self.level[u] + 1 {
                    path.push(e);
                    u = v;
                    advanced = true;
                    break;
                }
                self.next[u] += 1;
            }
            if advanced {
                continue;
            }
            // Dead end: retreat.
            self.level[u] = -1;
            match path.pop() {
                Some(e) => {
                    u = self.to[(e ^ 1) as usize] as usize;
                    self.next[u] += 1;
                }
                None => return total,
            }
        }
    }

    /// Grow the current flow to a maximum `s → t` flow; returns the flow
    /// added.
    pub fn augment(&mut self, s: usize, t: usize) -> f64 {
        let mut added = 0.0;
        while self.bfs(s, t) {
            let pushed = self.blocking(s, t);
            if pushed <= 0.0 {
                break;
            }
            added += pushed;
        }
        added
    }

    /// Nodes reachable from `s` in the residual graph (the source side of a
    /// minimum cut once the flow is maximum).
    pub fn reachable_from(&self, s: usize) -> Vec<bool> {
        self.residual_search(s, false)
    }

    /// Nodes from which `t` is reachable in the residual graph.
    pub fn reaching(&self, t: usize) -> Vec<bool> {
        self.residual_search(t, true)
    }

    /// Depth-first search over residual edges from `start`: forwards (edges
    /// leaving a node with room), or backwards (`backwards`: edges entering
    /// it with room, whose pair is `e ^ 1`).
    fn residual_search(&self, start: usize, backwards: bool) -> Vec<bool> {
        let mut seen = vec![false; self.adj.len()];
        seen[start] = true;
        let mut stack = vec![start];
        while let Some(u) = stack.pop() {
            for &e in &self.adj[u] {
                let v = self.to[e as usize] as usize;
                let room = if backwards { e ^ 1 } else { e };
                if !seen[v] && self.res[room as usize] > self.eps {
                    seen[v] = true;
                    stack.push(v);
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_network() {
        // CLRS 26.1: max flow 23.
        let mut n = FlowNet::new(6, 1e-12);
        let caps = [
            (0, 1, 16.0),
            (0, 2, 13.0),
            (2, 1, 4.0),
            (1, 3, 12.0),
            (3, 2, 9.0),
            (2, 4, 14.0),
            (4, 3, 7.0),
            (3, 5, 20.0),
            (4, 5, 4.0),
        ];
        let ids: Vec<usize> = caps.iter().map(|&(u, v, c)| n.edge(u, v, c)).collect();
        assert!((n.augment(0, 5) - 23.0).abs() < 1e-12);
        // Conservation at every inner node, capacities respected.
        for node in 1..5 {
            let net: f64 = caps
                .iter()
                .zip(&ids)
                .map(|(&(u, v, _), &e)| {
                    let f = n.flow(e);
                    if u == node {
                        -f
                    } else if v == node {
                        f
                    } else {
                        0.0
                    }
                })
                .sum();
            assert!(net.abs() < 1e-12, "node {node}: {net}");
        }
        for (&(_, _, c), &e) in caps.iter().zip(&ids) {
            assert!(n.flow(e) <= c + 1e-12 && n.flow(e) >= -1e-12);
        }
        // The min cut separates {0, 1, 2, 4} from {3, 5}: 12 + 7 + 4 = 23.
        let side = n.reachable_from(0);
        assert_eq!(side, vec![true, true, true, false, true, false]);
        assert!(!n.reaching(5)[0]);
    }

    #[test]
    fn raising_a_capacity_grows_the_flow_in_place() {
        let mut n = FlowNet::new(4, 1e-12);
        n.edge(0, 1, 5.0);
        let mid = n.edge(1, 2, f64::INFINITY);
        let out = n.edge(2, 3, 2.0);
        assert!((n.augment(0, 3) - 2.0).abs() < 1e-12);
        n.raise(out, 4.0);
        assert!((n.augment(0, 3) - 2.0).abs() < 1e-12);
        assert!((n.flow(mid) - 4.0).abs() < 1e-12);
        n.clear();
        assert_eq!(n.flow(mid), 0.0);
        assert!((n.augment(0, 3) - 4.0).abs() < 1e-12);
    }

    #[test]
    fn a_long_alternating_path_is_found_without_recursion() {
        // A chain of 100,000 nodes: an iterative search handles it.
        let len = 100_000;
        let mut n = FlowNet::new(len, 1e-12);
        for i in 0..len - 1 {
            n.edge(i, i + 1, 1.0 + (i % 7) as f64);
        }
        assert!((n.augment(0, len - 1) - 1.0).abs() < 1e-12);
    }
}
