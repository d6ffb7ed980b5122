//! SVG charts of the benchmark's figures, drawn with `plotters` (its SVG
//! backend and its built-in text metrics, so no system font is needed),
//! written next to the report for BENCHMARKS.md to embed.

use crate::report::{count_label, size_label, Cell, FanoutRow, ScaleRow};
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One bar: its group (a cell or a target), its series and its value.
struct Bar {
    group: usize,
    series: usize,
    value: f64,
}

/// A grouped bar chart: one group per label on the x axis, one bar per
/// series in each group, a legend of the series.
struct Bars<'a> {
    title: &'a str,
    y_label: &'a str,
    groups: Vec<String>,
    series: Vec<String>,
    bars: Vec<Bar>,
    /// Where the legend goes: a corner the tallest bars leave free.
    legend: SeriesLabelPosition,
}

/// Colours of the series, in order; targets keep theirs across charts.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
];

impl Bars<'_> {
    /// The chart as an SVG document.
    fn svg(&self) -> Result<String> {
        let mut svg = String::new();
        {
            let width = (160 + 90 * self.groups.len() as u32).max(640);
            let root = SVGBackend::with_string(&mut svg, (width, 420)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
            let top = self.bars.iter().map(|b| b.value).fold(0.0, f64::max) * 1.15;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0f64..self.groups.len() as f64, 0f64..top.max(1.0))
                .map_err(|e| anyhow!("{e}"))?;
            let groups = self.groups.clone();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(self.groups.len() * 2 + 1)
                .x_label_formatter(&|x| {
                    let i = x.floor() as usize;
                    if (x - x.floor() - 0.5).abs() < 0.01 && i < groups.len() {
                        groups[i].clone()
                    } else {
                        String::new()
                    }
                })
                .y_desc(self.y_label)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            let width = 0.8 / self.series.len().max(1) as f64;
            for (s, name) in self.series.iter().enumerate() {
                let colour = PALETTE[s % PALETTE.len()];
                let rects = self.bars.iter().filter(|b| b.series == s).map(|b| {
                    let x0 = b.group as f64 + 0.1 + width * s as f64;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.9, b.value)], colour.filled())
                });
                chart
                    .draw_series(rects)
                    .map_err(|e| anyhow!("{e}"))?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(self.legend.clone())
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            root.present().map_err(|e| anyhow!("{e}"))?;
        }
        Ok(svg)
    }
}

/// The targets of `cells`, in their first order of appearance.
fn targets(cells: &[Cell]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for m in cells.iter().flat_map(|c| &c.measured) {
        if !names.contains(&m.target) {
            names.push(m.target.clone());
        }
    }
    names
}

/// Messages per second by cell (connections × size), a bar per target.
fn throughput(cells: &[Cell]) -> Bars<'static> {
    let series = targets(cells);
    let mut bars = Vec::new();
    for (group, cell) in cells.iter().enumerate() {
        for m in &cell.measured {
            if let (Ok(r), Some(s)) = (&m.result, series.iter().position(|t| *t == m.target)) {
                bars.push(Bar {
                    group,
                    series: s,
                    value: r.per_second(),
                });
            }
        }
    }
    Bars {
        title: "Echo throughput (messages/s), by connections × size",
        y_label: "messages/s",
        groups: cells
            .iter()
            .map(|c| format!("{} × {}", c.connections, size_label(c.size)))
            .collect(),
        series,
        bars,
        legend: SeriesLabelPosition::UpperRight,
    }
}

/// Round-trip latency p50 and p99 by cell, a bar per target and
/// percentile.
fn latency(cells: &[Cell]) -> Bars<'static> {
    let names = targets(cells);
    let series: Vec<String> = names
        .iter()
        .flat_map(|t| [format!("{t} p50"), format!("{t} p99")])
        .collect();
    let mut bars = Vec::new();
    for (group, cell) in cells.iter().enumerate() {
        for m in &cell.measured {
            let (Ok(r), Some(t)) = (&m.result, names.iter().position(|n| *n == m.target)) else {
                continue;
            };
            for (k, value) in [r.p50_us, r.p99_us].into_iter().enumerate() {
                bars.push(Bar {
                    group,
                    series: 2 * t + k,
                    value: value as f64 / 1000.0,
                });
            }
        }
    }
    Bars {
        title: "Round-trip latency (ms), p50 and p99, by connections × size",
        y_label: "ms",
        groups: cells
            .iter()
            .map(|c| format!("{} × {}", c.connections, size_label(c.size)))
            .collect(),
        series,
        bars,
        legend: SeriesLabelPosition::UpperRight,
    }
}

/// Resident memory per held connection, a bar per target.
fn memory(rows: &[ScaleRow]) -> Bars<'static> {
    let mut groups = Vec::new();
    let mut bars = Vec::new();
    for row in rows {
        let (Ok(result), Some(idle), Some(held)) =
            (&row.result, row.idle_rss_kib, row.held_rss_kib)
        else {
            continue;
        };
        if result.connections == 0 {
            continue;
        }
        bars.push(Bar {
            group: groups.len(),
            series: 0,
            value: held.saturating_sub(idle) as f64 / result.connections as f64,
        });
        groups.push(row.target.clone());
    }
    Bars {
        title: "Memory per held connection (KiB of resident memory)",
        y_label: "KiB per connection",
        groups,
        series: vec!["KiB per connection".into()],
        bars,
        legend: SeriesLabelPosition::UpperRight,
    }
}

/// The receiver counts and targets of `rows`, in their first order of
/// appearance.
fn fanout_axes(rows: &[FanoutRow]) -> (Vec<usize>, Vec<String>) {
    let mut counts: Vec<usize> = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    for row in rows {
        if !counts.contains(&row.receivers) {
            counts.push(row.receivers);
        }
        if !targets.contains(&row.target) {
            targets.push(row.target.clone());
        }
    }
    (counts, targets)
}

/// `1,000 receivers`, for each count.
fn receiver_groups(counts: &[usize]) -> Vec<String> {
    counts
        .iter()
        .map(|&c| format!("{} receivers", count_label(c)))
        .collect()
}

/// Fan-out deliveries per second by receiver count, a bar per target.
fn fanout(rows: &[FanoutRow]) -> Bars<'static> {
    let (counts, series) = fanout_axes(rows);
    let bars = rows
        .iter()
        .filter_map(|row| {
            Some(Bar {
                group: counts.iter().position(|c| *c == row.receivers)?,
                series: series.iter().position(|t| *t == row.target)?,
                value: row.result.as_ref().ok()?.per_second(),
            })
        })
        .collect();
    Bars {
        title: "Fan-out deliveries/s (one publisher, 1 KiB), by receivers",
        y_label: "deliveries/s",
        groups: receiver_groups(&counts),
        series,
        bars,
        legend: SeriesLabelPosition::UpperRight,
    }
}

/// Fan-out publish-to-receive latency p50 and p99 by receiver count, a bar
/// per target and percentile.
fn fanout_latency(rows: &[FanoutRow]) -> Bars<'static> {
    let (counts, targets) = fanout_axes(rows);
    let series = targets
        .iter()
        .flat_map(|t| [format!("{t} p50"), format!("{t} p99")])
        .collect();
    let mut bars = Vec::new();
    for row in rows {
        let (Ok(r), Some(group), Some(t)) = (
            &row.result,
            counts.iter().position(|c| *c == row.receivers),
            targets.iter().position(|t| *t == row.target),
        ) else {
            continue;
        };
        for (k, value) in [r.p50_us, r.p99_us].into_iter().enumerate() {
            bars.push(Bar {
                group,
                series: 2 * t + k,
                value: value as f64 / 1000.0,
            });
        }
    }
    Bars {
        title: "Fan-out publish-to-receive latency (ms), p50 and p99, by receivers",
        y_label: "ms",
        groups: receiver_groups(&counts),
        series,
        bars,
        legend: SeriesLabelPosition::UpperLeft,
    }
}

/// Writes the charts of what was measured into `dir`, as
/// `throughput.svg`, `latency.svg`, `memory.svg`, `fanout.svg` and
/// `fanout-latency.svg`; returns the files written (a figure that did not
/// run has no chart).
pub fn write_all(
    dir: &Path,
    cells: &[Cell],
    scale: &[ScaleRow],
    fanout_rows: &[FanoutRow],
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut charts = Vec::new();
    if !cells.is_empty() {
        charts.push(("throughput.svg", throughput(cells)));
        charts.push(("latency.svg", latency(cells)));
    }
    let memory = memory(scale);
    if !memory.bars.is_empty() {
        charts.push(("memory.svg", memory));
    }
    let fanout = fanout(fanout_rows);
    if !fanout.bars.is_empty() {
        charts.push(("fanout.svg", fanout));
        charts.push(("fanout-latency.svg", fanout_latency(fanout_rows)));
    }
    for (name, chart) in charts {
        let path = dir.join(name);
        std::fs::write(&path, chart.svg()?)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LoadResult;
    use crate::report::Measured;

    fn measured(target: &str, per_second: f64) -> Measured {
        Measured {
            target: target.into(),
            result: Ok(LoadResult {
                messages: (per_second * 2.0) as u64,
                total_messages: (per_second * 3.0) as u64,
                seconds: 2.0,
                p50_us: 100,
                p99_us: 900,
                connect_seconds: 0.1,
            }),
            server_cpu_us: None,
        }
    }

    #[test]
    fn a_chart_has_a_bar_per_target_and_cell_and_a_legend() {
        let cells = vec![
            Cell {
                connections: 1,
                size: 32,
                measured: vec![measured("wsbox", 1000.0), measured("native", 1200.0)],
            },
            Cell {
                connections: 100,
                size: 1024,
                measured: vec![measured("wsbox", 9000.0), measured("native", 10000.0)],
            },
        ];
        let svg = throughput(&cells).svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
        assert!(svg.contains("100 × 1 KiB") && svg.contains("native"));
        let latency = latency(&cells).svg().unwrap();
        assert!(latency.contains("wsbox p99"));
    }
}
