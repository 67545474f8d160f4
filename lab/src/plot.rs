//! The SVG plot: for each policy (first repeat), per-node CPU utilisation
//! over time (left) and the served per-pod weights over time (right), with
//! the scenario's events marked as grey vertical lines labelled at the top.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::run::PolicyResult;

fn err(e: impl std::fmt::Display) -> Error {
    Error::Results(format!("plot: {e}"))
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Draw `plot.svg` for the first repeat of each policy. Weights are drawn
/// in the colour of the pod's node (`pod_node`), thicker for the entry
/// service; single-pod services (always weight 1) are left out.
pub fn draw(
    path: &Path,
    results: &[PolicyResult],
    pod_node: &BTreeMap<String, String>,
    entry: &str,
) -> Result<()> {
    let first: Vec<&PolicyResult> = results.iter().filter(|r| r.repeat == 1).collect();
    if first.is_empty() {
        return Err(err("no results"));
    }
    let rows = first.len() as u32;
    let root = SVGBackend::new(path, (1200, 320 * rows)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((first.len(), 2));
    for (i, r) in first.iter().enumerate() {
        let t_max = r.samples.last().map(|s| s.t_s).unwrap_or(1.0).max(1.0);
        // Left: node CPU %.
        let mut chart = ChartBuilder::on(&panels[2 * i])
            .caption(
                format!("{}: node CPU % of capacity", r.policy),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..t_max, 0.0..110.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("s")
            .y_desc("%")
            .draw()
            .map_err(err)?;
        mark_events(&mut chart, r, 110.0)?;
        for (k, node) in r.node_util_pct.keys().enumerate() {
            let color = COLORS[k % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    r.samples
                        .iter()
                        .filter_map(|s| s.node_util_pct.get(node).map(|v| (s.t_s, *v))),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(node.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        // Right: weights.
        let mut chart = ChartBuilder::on(&panels[2 * i + 1])
            .caption(
                if r.policy == "even" || r.policy == "cswrr" {
                    format!("{}: weight server's table (unused: no filter)", r.policy)
                } else {
                    format!(
                        "{}: served weights (thick: {entry}, thin: next tier)",
                        r.policy
                    )
                },
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..t_max, 0.0..1.05)
            .map_err(err)?;
        chart.configure_mesh().x_desc("s").draw().map_err(err)?;
        mark_events(&mut chart, r, 1.05)?;
        let pods: Vec<String> = r
            .samples
            .iter()
            .flat_map(|s| s.weights.iter())
            .filter(|(_, w)| **w < 0.999)
            .map(|(p, _)| p.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let nodes: Vec<&String> = r.node_util_pct.keys().collect();
        for pod in &pods {
            let k = pod_node
                .get(pod)
                .and_then(|n| nodes.iter().position(|x| *x == n))
                .unwrap_or(nodes.len());
            let color = COLORS[k % COLORS.len()];
            let width = if pod.starts_with(entry) { 3 } else { 1 };
            chart
                .draw_series(LineSeries::new(
                    r.samples
                        .iter()
                        .filter_map(|s| s.weights.get(pod).map(|v| (s.t_s, *v))),
                    color.stroke_width(width),
                ))
                .map_err(err)?
                .label(pod.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
        }
        if !pods.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A grey vertical line and a label per applied event.
fn mark_events(chart: &mut Chart<'_, '_>, r: &PolicyResult, y_max: f64) -> Result<()> {
    let grey = RGBColor(90, 90, 90);
    for (i, e) in r.events.iter().enumerate() {
        let t = e.applied_s;
        chart
            .draw_series(LineSeries::new(
                [(t, 0.0), (t, y_max)],
                grey.stroke_width(1),
            ))
            .map_err(err)?;
        let y = y_max * (0.97 - 0.06 * (i % 4) as f64);
        chart
            .draw_series([Text::new(
                e.label.clone(),
                (t, y),
                ("sans-serif", 11).into_font().color(&grey),
            )])
            .map_err(err)?;
    }
    Ok(())
}
