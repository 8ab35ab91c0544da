//! A sweep's plots: per node group, its expected profit along the first axis (a line per value
//! of the second axis, its 95% interval shaded), and for two-axis sweeps the frontier where each
//! attack turns profitable. PNG and SVG from the same code, as the report's plots.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::plots::{draw_legend, ensure_font, DrawResult, FAMILY, SIZE};
use crate::sweep::{Crossing, Sweep};

/// Colours of successive lines.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// A file-name-safe form of a group key (`trainer attack:alie:auto` → `trainer-attack-alie-auto`).
pub(crate) fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// Every node group, `role behaviour`, in the order first seen.
fn groups(sweep: &Sweep) -> Vec<String> {
    let mut keys = Vec::new();
    for g in sweep.points.iter().flat_map(|p| &p.groups) {
        let key = format!("{} {}", g.role, g.behaviour);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// The stem of each plot [`render_sweep`] draws, with what it shows.
fn plots(sweep: &Sweep) -> Vec<(String, SweepPlot)> {
    let mut plots: Vec<(String, SweepPlot)> = groups(sweep)
        .into_iter()
        .map(|group| (format!("profit-{}", slug(&group)), SweepPlot::Profit(group)))
        .collect();
    if sweep.axes.len() == 2 {
        plots.push(("frontier".to_owned(), SweepPlot::Frontier));
    }
    plots
}

/// The file names [`render_sweep`] writes (a PNG and an SVG per plot), to check beforehand.
pub fn sweep_plot_files(sweep: &Sweep) -> Vec<String> {
    plots(sweep)
        .into_iter()
        .flat_map(|(stem, _)| [format!("{stem}.png"), format!("{stem}.svg")])
        .collect()
}

/// Draws every plot of `sweep` into `dir`; returns the files written.
pub fn render_sweep(sweep: &Sweep, dir: &Path) -> Result<Vec<PathBuf>, (PathBuf, String)> {
    ensure_font().map_err(|error| (dir.to_path_buf(), error))?;
    let mut files = Vec::new();
    for (stem, kind) in plots(sweep) {
        files.extend(both(dir, &stem, &kind, sweep)?);
    }
    Ok(files)
}

/// The plots of a sweep.
enum SweepPlot {
    /// One group's profit along the first axis.
    Profit(String),
    /// Each attack's frontier against the second axis.
    Frontier,
}

fn draw<DB: DrawingBackend>(
    plot: &SweepPlot,
    root: &DrawingArea<DB, Shift>,
    sweep: &Sweep,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    match plot {
        SweepPlot::Profit(group) => draw_profit(root, sweep, group),
        SweepPlot::Frontier => draw_frontier(root, sweep),
    }
}

/// Draws one plot as `STEM.png` and `STEM.svg`.
fn both(
    dir: &Path,
    stem: &str,
    plot: &SweepPlot,
    sweep: &Sweep,
) -> Result<[PathBuf; 2], (PathBuf, String)> {
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        draw(plot, &root, sweep)
            .and_then(|()| root.present())
            .map_err(|error| (png.clone(), error.to_string()))?;
    }
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        draw(plot, &root, sweep)
            .and_then(|()| root.present())
            .map_err(|error| (svg.clone(), error.to_string()))?;
    }
    Ok([png, svg])
}

/// A padded range around `values` (a single value still gets some width).
fn padded(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        low = low.min(v);
        high = high.max(v);
    }
    if !low.is_finite() {
        return -1.0..1.0;
    }
    let span = (high - low)
        .abs()
        .max(high.abs().max(low.abs()) * 0.1)
        .max(1e-9);
    (low - 0.08 * span)..(high + 0.08 * span)
}

/// A tick label: whole numbers without decimals, others as they are.
fn number_label(value: &f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// One line of a group's profit: `(x, mean, low, high)` per point, in axis order.
type Line = Vec<(f64, f64, f64, f64)>;

fn lines(sweep: &Sweep, group: &str) -> Vec<(Option<f64>, Line)> {
    let seconds: Vec<Option<f64>> = match sweep.axes.get(1) {
        Some(axis) => axis.values.iter().copied().map(Some).collect(),
        None => vec![None],
    };
    seconds
        .into_iter()
        .map(|at| {
            let line = sweep
                .points
                .iter()
                .filter(|p| at.is_none_or(|v| p.values.get(1) == Some(&v)))
                .filter_map(|p| {
                    let g = p
                        .groups
                        .iter()
                        .find(|g| format!("{} {}", g.role, g.behaviour) == group)?;
                    Some((p.values[0], g.profit.mean, g.profit.low, g.profit.high))
                })
                .collect();
            (at, line)
        })
        .collect()
}

fn draw_profit<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    sweep: &Sweep,
    group: &str,
) -> DrawResult<DB> {
    let lines = lines(sweep, group);
    let xs = padded(sweep.axes[0].values.iter().copied());
    let ys = padded(
        lines
            .iter()
            .flat_map(|(_, line)| line.iter().flat_map(|p| [p.1, p.2, p.3]))
            .chain([0.0]),
    );
    let x_name = sweep.axes[0].knob.name();
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Profit per node: {group}"), (FAMILY, 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(xs.clone(), ys)?;
    chart
        .configure_mesh()
        .x_desc(x_name)
        .x_label_formatter(&number_label)
        .y_desc("profit per node over the run (tokens)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(
        [(xs.start, 0.0), (xs.end, 0.0)],
        BLACK.stroke_width(1),
    )))?;
    for (i, (at, line)) in lines.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        if line.len() > 1 {
            let band: Vec<(f64, f64)> = line
                .iter()
                .map(|p| (p.0, p.3))
                .chain(line.iter().rev().map(|p| (p.0, p.2)))
                .filter(|p| p.1.is_finite())
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(band, colour.mix(0.15))))?;
        }
        let label = match (at, sweep.axes.get(1)) {
            (Some(v), Some(axis)) => format!("{}={v}", axis.knob),
            _ => "mean, 95% interval shaded".to_owned(),
        };
        chart
            .draw_series(LineSeries::new(
                line.iter().map(|p| (p.0, p.1)),
                colour.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(3)));
        chart.draw_series(
            line.iter()
                .map(|p| Circle::new((p.0, p.1), 4, colour.filled())),
        )?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn draw_frontier<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    sweep: &Sweep,
) -> DrawResult<DB> {
    let (first, second) = (&sweep.axes[0], &sweep.axes[1]);
    let xs = padded(second.values.iter().copied());
    let ys = padded(first.values.iter().copied());
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Where each attack turns profitable: {} against {}",
                first.knob, second.knob
            ),
            (FAMILY, 24),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(xs, ys)?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "{} (a triangle: profitable at every {} swept)",
            second.knob, first.knob
        ))
        .x_label_formatter(&number_label)
        .y_desc(format!("{} at which mean profit = 0", first.knob))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    let mut attack_groups: Vec<&str> = Vec::new();
    for frontier in &sweep.frontiers {
        if !attack_groups.contains(&frontier.group.as_str()) {
            attack_groups.push(&frontier.group);
        }
    }
    for (i, group) in attack_groups.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        // A crossing at its value; profitable at every value swept, at the top of the range
        // (drawn as a triangle: the attack needs more than the range gave).
        let top = first
            .values
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let points: Vec<(f64, f64)> = sweep
            .frontiers
            .iter()
            .filter(|f| f.group == *group)
            .filter_map(|f| match f.crossing {
                Crossing::Crosses { value, .. } => Some((f.at?, value)),
                Crossing::AlwaysProfitable => Some((f.at?, top)),
                Crossing::NeverProfitable => None,
            })
            .collect();
        let above: Vec<(f64, f64)> = sweep
            .frontiers
            .iter()
            .filter(|f| f.group == *group && f.crossing == Crossing::AlwaysProfitable)
            .filter_map(|f| Some((f.at?, top)))
            .collect();
        let never = sweep
            .frontiers
            .iter()
            .filter(|f| f.group == *group && f.crossing == Crossing::NeverProfitable)
            .count();
        let label = if points.is_empty() {
            format!(
                "{group}: no crossing ({never} of {} never profitable)",
                second.values.len()
            )
        } else {
            (*group).to_owned()
        };
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(3)));
        chart.draw_series(
            points
                .iter()
                .filter(|p| !above.contains(p))
                .map(|p| Circle::new(*p, 4, colour.filled())),
        )?;
        chart.draw_series(
            above
                .iter()
                .map(|p| TriangleMarker::new(*p, 9, colour.filled())),
        )?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn group_names_become_file_names() {
        assert_eq!(slug("trainer attack:alie:auto"), "trainer-attack-alie-auto");
        assert_eq!(slug("validator honest"), "validator-honest");
        assert_eq!(slug("trainer lazy:steps:0.5"), "trainer-lazy-steps-0.5");
    }
}
