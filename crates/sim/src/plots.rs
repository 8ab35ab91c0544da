//! The report's plots, drawn once per backend (PNG and SVG) by the same code.
//!
//! Text goes through plotters' `ab_glyph` backend with DejaVu Sans compiled into the crate, so
//! plots render identically on machines with no system fonts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::result::{NodeRecord, NodeRole, RunResult};

/// DejaVu Sans 2.37 (licence in `assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// The font family every text of the plots uses.
pub(crate) const FAMILY: &str = "sans-serif";
/// Pixel size of every plot.
pub(crate) const SIZE: (u32, u32) = (1024, 640);
/// Most node names written under the stake bars (beyond it, some are skipped).
const MAX_NODE_LABELS: usize = 40;

const HONEST_TRAINER: RGBColor = RGBColor(31, 119, 180);
const ATTACKER: RGBColor = RGBColor(214, 39, 40);
const HONEST_VALIDATOR: RGBColor = RGBColor(44, 160, 44);
const BYZANTINE_VALIDATOR: RGBColor = RGBColor(255, 127, 14);

/// The three plots of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plot {
    /// Test accuracy per round.
    Accuracy,
    /// Cumulative reward per node, honest and attackers in different colours.
    Rewards,
    /// Final stake per node.
    Stake,
}

impl Plot {
    /// Every plot, in the order they are written.
    pub(crate) const ALL: [Plot; 3] = [Plot::Accuracy, Plot::Rewards, Plot::Stake];

    /// File stem (`accuracy`, `rewards`, `stake`).
    pub(crate) fn stem(self) -> &'static str {
        match self {
            Plot::Accuracy => "accuracy",
            Plot::Rewards => "rewards",
            Plot::Stake => "stake",
        }
    }
}

/// Registers the embedded font once per process; the error says the font did not load.
pub(crate) fn ensure_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded DejaVu Sans font does not parse".to_owned())
        })
        .clone()
}

/// Draws `plot` as `dir/STEM.png` and `dir/STEM.svg`; returns both paths, or the failing path
/// and the plotting error.
pub(crate) fn render(
    plot: Plot,
    result: &RunResult,
    dir: &Path,
) -> Result<[PathBuf; 2], (PathBuf, String)> {
    let png = dir.join(format!("{}.png", plot.stem()));
    let svg = dir.join(format!("{}.svg", plot.stem()));
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        draw(plot, &root, result)
            .and_then(|()| root.present())
            .map_err(|error| (png.clone(), error.to_string()))?;
    }
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        draw(plot, &root, result)
            .and_then(|()| root.present())
            .map_err(|error| (svg.clone(), error.to_string()))?;
    }
    Ok([png, svg])
}

pub(crate) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(
    plot: Plot,
    root: &DrawingArea<DB, Shift>,
    result: &RunResult,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    match plot {
        Plot::Accuracy => draw_accuracy(root, result),
        Plot::Rewards => draw_rewards(root, result),
        Plot::Stake => draw_stake(root, result),
    }
}

/// Writes whole rounds only (the axis is continuous, rounds are not).
fn round_label(value: &f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        String::new()
    }
}

/// The x range covering every round, padded so one round still spans some width.
fn round_range(result: &RunResult) -> std::ops::Range<f64> {
    let first = result.rounds.first().map_or(0.0, |r| f64::from(r.round));
    let last = result.rounds.last().map_or(1.0, |r| f64::from(r.round));
    (first - 0.5)..(last.max(first) + 0.5)
}

fn draw_accuracy<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    result: &RunResult,
) -> DrawResult<DB> {
    let mut chart = ChartBuilder::on(root)
        .caption("Test accuracy per round", (FAMILY, 28))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(round_range(result), 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("round")
        .x_label_formatter(&round_label)
        .y_desc("test accuracy (%)")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    let points: Vec<(f64, f64)> = result
        .rounds
        .iter()
        .filter(|r| r.accuracy.is_finite())
        .map(|r| (f64::from(r.round), 100.0 * r.accuracy))
        .collect();
    chart
        .draw_series(LineSeries::new(
            points.clone(),
            HONEST_TRAINER.stroke_width(3),
        ))?
        .label(format!("Cairn, rule {}", result.scenario.rule))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], HONEST_TRAINER.stroke_width(3)));
    chart.draw_series(
        points
            .iter()
            .map(|&p| Circle::new(p, 3, HONEST_TRAINER.filled())),
    )?;
    let missed: Vec<(f64, f64)> = result
        .rounds
        .iter()
        .filter(|r| !r.finalized && r.accuracy.is_finite())
        .map(|r| (f64::from(r.round), 100.0 * r.accuracy))
        .collect();
    if !missed.is_empty() {
        chart
            .draw_series(
                missed
                    .iter()
                    .map(|&p| Cross::new(p, 7, ATTACKER.stroke_width(3))),
            )?
            .label("round not finalized")
            .legend(|(x, y)| Cross::new((x + 10, y), 6, ATTACKER.stroke_width(3)));
    }
    if let Some(reference) = result.centralized_accuracy.filter(|a| a.is_finite()) {
        let range = round_range(result);
        let line = [
            (range.start, 100.0 * reference),
            (range.end, 100.0 * reference),
        ];
        chart
            .draw_series(DashedLineSeries::new(line, 10, 6, BLACK.stroke_width(2)))?
            .label("centralized training")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// Draws the series' legend at `position`, in the style every plot shares.
pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

/// Colour and legend label of a node's category.
fn category(node: &NodeRecord) -> (RGBColor, &'static str) {
    match (node.role, node.is_honest()) {
        (NodeRole::Trainer, true) => (HONEST_TRAINER, "honest trainer"),
        (NodeRole::Trainer, false) => (ATTACKER, "attacking trainer"),
        (NodeRole::Validator, true) => (HONEST_VALIDATOR, "honest validator"),
        (NodeRole::Validator, false) => (BYZANTINE_VALIDATOR, "Byzantine validator"),
    }
}

fn draw_rewards<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    result: &RunResult,
) -> DrawResult<DB> {
    let x_of = |i: usize| {
        result
            .rounds
            .get(i)
            .map_or(i as f64 + 1.0, |r| f64::from(r.round))
    };
    let curves: Vec<(&NodeRecord, Vec<(f64, f64)>)> = result
        .nodes
        .iter()
        .map(|node| {
            let points = node
                .cumulative_rewards()
                .into_iter()
                .enumerate()
                .map(|(i, total)| (x_of(i), total as f64))
                .collect();
            (node, points)
        })
        .collect();
    let top = curves
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(root)
        .caption("Cumulative reward per node", (FAMILY, 28))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(round_range(result), 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("round")
        .x_label_formatter(&round_label)
        .y_desc("cumulative reward (tokens)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    let mut labelled = Vec::new();
    for (node, points) in &curves {
        let (colour, label) = category(node);
        let series = chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?;
        if !labelled.contains(&label) {
            labelled.push(label);
            series.label(label).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(3))
            });
        }
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

fn draw_stake<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    result: &RunResult,
) -> DrawResult<DB> {
    let nodes = &result.nodes;
    let count = nodes.len().max(1);
    let top = nodes
        .iter()
        .map(|n| n.stake_initial.max(n.stake_final) as f64)
        .fold(1.0f64, f64::max)
        * 1.3;
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let label_every = count.div_ceil(MAX_NODE_LABELS);
    let formatter = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if i % label_every == 0 => {
            names.get(*i).map_or(String::new(), |n| (*n).to_owned())
        }
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Final stake per node (outline: initial stake)",
            (FAMILY, 28),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d((0..count - 1).into_segmented(), 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(count.min(MAX_NODE_LABELS))
        .x_label_formatter(&formatter)
        .x_desc("node")
        .y_desc("stake (tokens)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 18))
        .draw()?;
    let bar = |i: usize, value: u128, style: ShapeStyle| {
        let mut rect = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), value as f64),
            ],
            style,
        );
        rect.set_margin(0, 0, 3, 3);
        rect
    };
    let mut labelled = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let (colour, label) = category(node);
        let series =
            chart.draw_series(std::iter::once(bar(i, node.stake_final, colour.filled())))?;
        if !labelled.contains(&label) {
            labelled.push(label);
            series.label(label).legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
            });
        }
    }
    chart.draw_series(
        nodes
            .iter()
            .enumerate()
            .map(|(i, node)| bar(i, node.stake_initial, BLACK.stroke_width(1))),
    )?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}
