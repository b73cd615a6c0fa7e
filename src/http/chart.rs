//! Charts as inline SVG, drawn here so that the page needs no script: a line over time,
//! outages shaded, restarts marked on the time axis; and the 24-hour availability strip of the
//! main table. Long series are downsampled to at most [`BUCKETS`] buckets keeping each
//! bucket's lowest and highest point, so a one-sample spike is still drawn.

use std::fmt::Write;

use chrono::NaiveDateTime;

/// Buckets of a downsampled series: two points each, at most 2 × this drawn.
pub const BUCKETS: usize = 240;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// A point of a series: seconds since the chart's start, and the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: f64,
    pub v: f64,
}

/// A restart on the time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub t: f64,
    /// `None` while it runs.
    pub success: Option<bool>,
    /// What its tooltip says (already escaped).
    pub label: String,
}

/// One chart: a series over `[0, span]` seconds.
pub struct Chart<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub unit: &'a str,
    pub span: f64,
    pub points: &'a [Point],
    pub marks: &'a [Mark],
    /// Outages as `[from, to]` seconds.
    pub outages: &'a [(f64, f64)],
    /// The axis's labels at `0` and `span`, and the middle (already escaped).
    pub axis: [&'a str; 3],
}

/// `points` (in time order) in at most `buckets` buckets of equal time over `[0, span]`, each
/// bucket giving its lowest and highest point in their own order; a series that fits is
/// returned as it is.
pub fn downsample(points: &[Point], span: f64, buckets: usize) -> Vec<Point> {
    if points.len() <= buckets.saturating_mul(2) || buckets == 0 || span <= 0.0 {
        return points.to_vec();
    }
    let mut kept = Vec::with_capacity(buckets * 2);
    let mut bucket: Option<(usize, Point, Point)> = None;
    let flush = |kept: &mut Vec<Point>, (_, low, high): (usize, Point, Point)| {
        let (first, second) = if low.t <= high.t {
            (low, high)
        } else {
            (high, low)
        };
        kept.push(first);
        if second != first {
            kept.push(second);
        }
    };
    for &point in points {
        let index = ((point.t / span) * buckets as f64).clamp(0.0, (buckets - 1) as f64) as usize;
        bucket = match bucket {
            Some((at, low, high)) if at == index => Some((
                at,
                if point.v < low.v { point } else { low },
                if point.v > high.v { point } else { high },
            )),
            Some(done) => {
                flush(&mut kept, done);
                Some((index, point, point))
            }
            None => Some((index, point, point)),
        };
    }
    if let Some(done) = bucket {
        flush(&mut kept, done);
    }
    kept
}

/// The chart as an `<svg>` element.
pub fn svg(chart: &Chart<'_>) -> String {
    let highest = chart.points.iter().map(|p| p.v).fold(0.0_f64, f64::max);
    let top = nice_ceiling(highest);
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let span = chart.span.max(1.0);
    let x = |t: f64| LEFT + (t / span).clamp(0.0, 1.0) * plot_width;
    let y = |v: f64| TOP + plot_height - (v / top).clamp(0.0, 1.0) * plot_height;
    let mut out = String::with_capacity(1024 + chart.points.len() * 16);
    let _ = write!(
        out,
        "<svg id=\"{id}\" class=\"chart\" role=\"img\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         data-points=\"{n}\" data-max=\"{highest}\"><title>{title} ({unit}), highest {highest}</title>\
         <rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_width}\" height=\"{plot_height}\" \
         fill=\"#fafafa\" stroke=\"#ccc\"/>",
        id = chart.id,
        title = chart.title,
        unit = chart.unit,
        n = chart.points.len(),
    );
    for &(from, to) in chart.outages {
        let (left, right) = (x(from), x(to));
        let _ = write!(
            out,
            "<rect class=\"outage\" x=\"{left:.1}\" y=\"{TOP}\" width=\"{:.1}\" \
             height=\"{plot_height}\" fill=\"#f4b6b6\"><title>down</title></rect>",
            (right - left).max(1.0)
        );
    }
    for (value, label) in [
        (0.0, "0".to_owned()),
        (top / 2.0, short(top / 2.0)),
        (top, short(top)),
    ] {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" \
             fill=\"#555\">{label}</text>",
            LEFT - 4.0,
            y(value) + 4.0
        );
    }
    let axis_y = HEIGHT - 8.0;
    for (label, at, anchor) in [
        (chart.axis[0], LEFT, "start"),
        (chart.axis[1], LEFT + plot_width / 2.0, "middle"),
        (chart.axis[2], WIDTH - RIGHT, "end"),
    ] {
        let _ = write!(
            out,
            "<text x=\"{at:.1}\" y=\"{axis_y}\" font-size=\"11\" text-anchor=\"{anchor}\" \
             fill=\"#555\">{label}</text>"
        );
    }
    if !chart.points.is_empty() {
        out.push_str("<polyline class=\"series\" fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"1.5\" points=\"");
        for point in chart.points {
            let _ = write!(out, "{:.1},{:.1} ", x(point.t), y(point.v));
        }
        out.push_str("\"/>");
    } else {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\" \
             fill=\"#777\">no samples in this time</text>",
            LEFT + plot_width / 2.0,
            TOP + plot_height / 2.0
        );
    }
    restart_lines(&mut out, chart.marks, x, TOP + plot_height);
    out.push_str("</svg>");
    out
}

/// The restarts as dashed lines across the plot, green, red or amber by outcome.
fn restart_lines(out: &mut String, marks: &[Mark], x: impl Fn(f64) -> f64, bottom: f64) {
    for mark in marks {
        let colour = match mark.success {
            Some(true) => "#2e7d32",
            Some(false) => "#c62828",
            None => "#8a5a00",
        };
        let at = x(mark.t);
        let _ = write!(
            out,
            "<line class=\"restart\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{TOP}\" y2=\"{bottom:.1}\" \
             stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"4 2\">\
             <title>{}</title></line>",
            mark.label
        );
    }
}

/// The words for a restart's outcome.
pub fn outcome(success: Option<bool>) -> &'static str {
    match success {
        Some(true) => "succeeded",
        Some(false) => "failed",
        None => "running",
    }
}

/// Outages as seconds within `[since, now]`; one still going lasts until now.
pub fn outages_within(
    outages: &[crate::report::history::Outage],
    since: NaiveDateTime,
    now: NaiveDateTime,
) -> Vec<(f64, f64)> {
    let span = seconds_between(since, now);
    outages
        .iter()
        .map(|outage| {
            let from = seconds_between(since, outage.down_at).max(0.0);
            let to = outage.up_at.map_or(span, |up| seconds_between(since, up));
            (from, to.min(span))
        })
        .filter(|(from, to)| to >= from)
        .collect()
}

pub fn seconds_between(from: NaiveDateTime, to: NaiveDateTime) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// The 24-hour strip of the main table: grey before monitoring began, green up, red down.
/// `known_from` and the outages are seconds within `[0, span]`.
pub fn strip(span: f64, known_from: Option<f64>, outages: &[(f64, f64)]) -> String {
    const W: f64 = 144.0;
    const H: f64 = 12.0;
    let span = span.max(1.0);
    let x = |t: f64| (t / span).clamp(0.0, 1.0) * W;
    let mut out = format!(
        "<svg class=\"strip\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" \
         role=\"img\"><title>last 24 hours: {} outage(s)</title>\
         <rect width=\"{W}\" height=\"{H}\" fill=\"#ddd\"/>",
        outages.len()
    );
    if let Some(from) = known_from {
        let left = x(from);
        let _ = write!(
            out,
            "<rect class=\"up\" x=\"{left:.1}\" width=\"{:.1}\" height=\"{H}\" fill=\"#7cc48a\"/>",
            W - left
        );
    }
    for &(from, to) in outages {
        let left = x(from);
        let _ = write!(
            out,
            "<rect class=\"down\" x=\"{left:.1}\" width=\"{:.1}\" height=\"{H}\" fill=\"#d9534f\"/>",
            (x(to) - left).max(1.0)
        );
    }
    out.push_str("</svg>");
    out
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `value` (1 for nothing to show).
fn nice_ceiling(value: f64) -> f64 {
    if !value.is_finite() || value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * magnitude)
}

fn short(value: f64) -> String {
    if value >= 10.0 || value == value.trunc() {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Vec<Point> {
        let step = 3600.0 / values.len() as f64;
        let points = values.iter().enumerate();
        points
            .map(|(i, &v)| Point {
                t: i as f64 * step,
                v,
            })
            .collect()
    }

    #[test]
    fn a_short_series_is_kept_as_it_is() {
        let points = series(&[1.0, 2.0, 3.0]);
        assert_eq!(downsample(&points, 3600.0, 10), points);
    }

    #[test]
    fn downsampling_bounds_the_points_and_keeps_a_spike() {
        let mut values = vec![1.0; 10_000];
        values[4321] = 97.5;
        values[8000] = -3.0;
        let points = series(&values);
        let kept = downsample(&points, 3600.0, BUCKETS);
        assert!(kept.len() <= 2 * BUCKETS, "{} points", kept.len());
        assert!(kept.iter().any(|p| p.v == 97.5), "the spike survives");
        assert!(kept.iter().any(|p| p.v == -3.0), "the dip survives");
        assert!(
            kept.windows(2).all(|w| w[0].t <= w[1].t),
            "still in time order"
        );
    }

    #[test]
    fn the_chart_has_its_points_marks_and_outages() {
        let points = series(&[1.0, 50.0, 3.0]);
        let marks = [Mark {
            t: 100.0,
            success: Some(false),
            label: "failed".into(),
        }];
        let chart = Chart {
            id: "chart-cpu",
            title: "CPU",
            unit: "%",
            span: 3600.0,
            points: &points,
            marks: &marks,
            outages: &[(200.0, 300.0)],
            axis: ["a", "b", "c"],
        };
        let svg = svg(&chart);
        assert!(svg.starts_with("<svg id=\"chart-cpu\""), "{svg}");
        assert!(
            svg.contains("data-points=\"3\"") && svg.contains("data-max=\"50\""),
            "{svg}"
        );
        assert!(svg.contains("class=\"outage\"") && svg.contains("class=\"restart\""));
        let line = svg
            .split(" points=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next());
        assert_eq!(line.map(|l| l.split_whitespace().count()), Some(3), "{svg}");
    }

    #[test]
    fn ceilings_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(87.0), 100.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
    }
}
