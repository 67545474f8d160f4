//! A small solver-neutral linear program ([`Lp`]) and its solvers.
//!
//! The `optimal` policy builds its stages as an [`Lp`] (always maximised) and
//! hands it to an [`LpSolver`]: [`Clarabel`] (good_lp with the clarabel
//! interior-point backend) in production; tests plug in other solvers
//! (microlp) to cross-check the objective on the very same model.

use good_lp::{Expression, ProblemVariables, Solution, SolverModel, Variable, variable};

use crate::{Error, Result};

/// How a row compares with its right-hand side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `Σ terms ≤ rhs`
    Le,
    /// `Σ terms ≥ rhs`
    Ge,
    /// `Σ terms = rhs`
    Eq,
}

/// One linear constraint `Σ coef · var  (≤ | ≥ | =)  rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `(variable index, coefficient)`; each variable at most once.
    pub terms: Vec<(usize, f64)>,
    /// How the sum compares with `rhs`.
    pub cmp: Cmp,
    /// The right-hand side.
    pub rhs: f64,
}

/// A linear program to **maximise** `Σ objective`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lp {
    /// Per variable: `(lower, upper)` bounds; infinite = open.
    pub bounds: Vec<(f64, f64)>,
    /// `(variable index, coefficient)` of the objective.
    pub objective: Vec<(usize, f64)>,
    /// The constraints.
    pub rows: Vec<Row>,
}

impl Lp {
    /// Add a variable with bounds; returns its index.
    pub fn var(&mut self, lower: f64, upper: f64) -> usize {
        self.bounds.push((lower, upper));
        self.bounds.len() - 1
    }

    /// Add a row.
    pub fn row(&mut self, terms: Vec<(usize, f64)>, cmp: Cmp, rhs: f64) {
        self.rows.push(Row { terms, cmp, rhs });
    }

    /// The objective value of a point.
    pub fn objective_value(&self, x: &[f64]) -> f64 {
        self.objective
            .iter()
            .map(|&(v, c)| c * x.get(v).copied().unwrap_or(0.0))
            .sum()
    }

    /// The largest violation of a bound or row by a point (0 when feasible).
    pub fn max_violation(&self, x: &[f64]) -> f64 {
        let mut worst: f64 = 0.0;
        for (i, &(lo, hi)) in self.bounds.iter().enumerate() {
            let v = x.get(i).copied().unwrap_or(f64::NAN);
            if !v.is_finite() {
                return f64::INFINITY;
            }
            worst = worst.max(lo - v).max(v - hi);
        }
        for row in &self.rows {
            let lhs: f64 = row
                .terms
                .iter()
                .map(|&(v, c)| c * x.get(v).copied().unwrap_or(0.0))
                .sum();
            let gap = match row.cmp {
                Cmp::Le => lhs - row.rhs,
                Cmp::Ge => row.rhs - lhs,
                Cmp::Eq => (lhs - row.rhs).abs(),
            };
            worst = worst.max(gap);
        }
        worst
    }

    /// Checks that every number of the model is usable (finite coefficients,
    /// no NaN bound, indices in range).
    pub fn validate(&self) -> Result<()> {
        let n = self.bounds.len();
        let bad = |what: &str| Err(Error::Solver(format!("invalid LP: {what}")));
        for &(lo, hi) in &self.bounds {
            if lo.is_nan() || hi.is_nan() || lo > hi || lo == f64::INFINITY {
                return bad("variable bounds");
            }
        }
        let terms_ok = |t: &[(usize, f64)]| t.iter().all(|&(v, c)| v < n && c.is_finite());
        if !terms_ok(&self.objective) {
            return bad("objective");
        }
        for row in &self.rows {
            if !terms_ok(&row.terms) || !row.rhs.is_finite() {
                return bad("row");
            }
        }
        Ok(())
    }
}

/// Solves an [`Lp`]: returns the value of every variable at an optimum.
pub trait LpSolver {
    /// Short name, shown in explain output.
    fn name(&self) -> &'static str;
    /// Maximise `lp`; an error when it is infeasible or the solver fails.
    fn maximise(&self, lp: &Lp) -> Result<Vec<f64>>;
}

/// good_lp + clarabel (interior point, pure Rust). The production solver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clarabel;

impl LpSolver for Clarabel {
    fn name(&self) -> &'static str {
        "clarabel"
    }

    fn maximise(&self, lp: &Lp) -> Result<Vec<f64>> {
        lp.validate()?;
        let mut vars = ProblemVariables::new();
        let handles: Vec<Variable> = lp
            .bounds
            .iter()
            .map(|&(lo, hi)| {
                let mut def = variable();
                if lo.is_finite() {
                    def = def.min(lo);
                }
                if hi.is_finite() {
                    def = def.max(hi);
                }
                vars.add(def)
            })
            .collect();
        let mut objective = Expression::with_capacity(lp.objective.len());
        for &(v, c) in &lp.objective {
            objective.add_mul(c, handles[v]);
        }
        let mut model = vars.maximise(objective).using(good_lp::clarabel);
        model
            .settings()
            .tol_feas(1e-8)
            .tol_gap_abs(1e-8)
            .tol_gap_rel(1e-8)
            .max_iter(200);
        for row in &lp.rows {
            let mut e = Expression::with_capacity(row.terms.len());
            for &(v, c) in &row.terms {
                e.add_mul(c, handles[v]);
            }
            let constraint = match row.cmp {
                Cmp::Le => e.leq(row.rhs),
                Cmp::Ge => e.geq(row.rhs),
                Cmp::Eq => e.eq(row.rhs),
            };
            model.add_constraint(constraint);
        }
        let solution = model
            .solve()
            .map_err(|e| Error::Solver(format!("clarabel: {e}")))?;
        let x: Vec<f64> = handles.iter().map(|&h| solution.value(h)).collect();
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::Solver("clarabel: non-finite solution".into()));
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clarabel_solves_a_small_lp() -> Result<()> {
        // max x + 2y, x + y <= 4, 2x + y >= 2, 0 <= y <= 3, x >= 0.
        let mut lp = Lp::default();
        let x = lp.var(0.0, f64::INFINITY);
        let y = lp.var(0.0, 3.0);
        lp.objective = vec![(x, 1.0), (y, 2.0)];
        lp.row(vec![(x, 1.0), (y, 1.0)], Cmp::Le, 4.0);
        lp.row(vec![(x, 2.0), (y, 1.0)], Cmp::Ge, 2.0);
        let sol = Clarabel.maximise(&lp)?;
        assert!((lp.objective_value(&sol) - 7.0).abs() < 1e-6, "{sol:?}");
        assert!(lp.max_violation(&sol) < 1e-6);
        Ok(())
    }

    #[test]
    fn infeasible_lp_is_an_error_not_a_panic() {
        let mut lp = Lp::default();
        let x = lp.var(0.0, 1.0);
        lp.objective = vec![(x, 1.0)];
        lp.row(vec![(x, 1.0)], Cmp::Ge, 2.0);
        assert!(Clarabel.maximise(&lp).is_err());
    }

    #[test]
    fn nan_in_a_model_is_refused() {
        let mut lp = Lp::default();
        let x = lp.var(0.0, 1.0);
        lp.objective = vec![(x, f64::NAN)];
        assert!(matches!(Clarabel.maximise(&lp), Err(Error::Solver(_))));
    }
}
