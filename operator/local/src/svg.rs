//! A small SVG chart: lines and points over shaded time bands, enough for links-up,
//! path-delay and flow plots, with no dependency.

use std::fmt::Write;

const W: f64 = 900.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

pub struct Series {
    pub name: String,
    /// (x, y) points; a `None` y breaks the line (no value there).
    pub points: Vec<(f64, Option<f64>)>,
    /// Dots instead of a line.
    pub dots: bool,
}

impl Series {
    pub fn line(name: impl Into<String>, points: Vec<(f64, Option<f64>)>) -> Self {
        Self { name: name.into(), points, dots: false }
    }

    pub fn dots(name: impl Into<String>, points: Vec<(f64, Option<f64>)>) -> Self {
        Self { name: name.into(), points, dots: true }
    }
}

/// A shaded span of x (e.g. a fault's window), labelled at its top.
#[derive(Clone)]
pub struct Band {
    pub from: f64,
    pub to: f64,
    pub label: String,
    pub colour: &'static str,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// "Nice" tick spacing for a range.
fn step_for(span: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    mag * if norm < 1.5 {
        1.0
    } else if norm < 3.5 {
        2.0
    } else if norm < 7.5 {
        5.0
    } else {
        10.0
    }
}

pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    chart(title, x_label, y_label, series, &[])
}

/// Series over shaded bands; the legend names both.
pub fn chart(title: &str, x_label: &str, y_label: &str, series: &[Series], bands: &[Band]) -> String {
    let all = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|&(x, y)| Some((x, y?))))
            .chain(bands.iter().flat_map(|b| [(b.from, 0.0), (b.to, 0.0)]))
    };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0f64, f64::MIN);
    for (x, y) in all() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y1) = (0.0, 1.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    y1 += (y1 - y0) * 0.05;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let py = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        LEFT,
        escape(title)
    );
    let (xs, ys) = (step_for(x1 - x0), step_for(y1 - y0));
    let mut v = (x0 / xs).ceil() * xs;
    while v <= x1 + 1e-9 {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#ddd"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
            px(v),
            TOP,
            TOP + ph,
            TOP + ph + 16.0,
            trim(v)
        );
        v += xs;
    }
    let mut v = (y0 / ys).ceil() * ys;
    while v <= y1 + 1e-9 {
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="{1:.1}" x2="{2}" y2="{1:.1}" stroke="#ddd"/><text x="{3}" y="{4:.1}" text-anchor="end">{5}</text>"##,
            LEFT,
            py(v),
            LEFT + pw,
            LEFT - 6.0,
            py(v) + 4.0,
            trim(v)
        );
        v += ys;
    }
    for (i, b) in bands.iter().enumerate() {
        let (a, z) = (px(b.from.max(x0)), px(b.to.min(x1)));
        let _ = writeln!(
            s,
            r#"<rect x="{a:.1}" y="{TOP}" width="{:.1}" height="{ph}" fill="{}" fill-opacity="0.18"/>"#,
            (z - a).max(1.0),
            b.colour,
        );
        if !b.label.is_empty() {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" fill="{}">{}</text>"#,
                a + 2.0,
                TOP + 11.0 + 11.0 * (i % 3) as f64,
                b.colour,
                escape(&b.label)
            );
        }
    }
    let _ =
        writeln!(s, r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 12.0,
        escape(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        escape(y_label)
    );
    for (i, series) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let ly = TOP + 14.0 + 18.0 * i as f64;
        if series.dots {
            for &(x, y) in &series.points {
                if let Some(y) = y {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="1.8" fill="{colour}"/>"#,
                        px(x),
                        py(y)
                    );
                }
            }
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{ly:.1}" r="3" fill="{colour}"/><text x="{}" y="{:.1}">{}</text>"#,
                LEFT + pw + 22.0,
                LEFT + pw + 38.0,
                ly + 4.0,
                escape(&series.name)
            );
            continue;
        }
        let mut d = String::new();
        let mut pen_down = false;
        for &(x, y) in &series.points {
            match y {
                Some(y) => {
                    let _ = write!(d, "{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, px(x), py(y));
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ =
            writeln!(s, r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#, d.trim_end());
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{1:.1}" x2="{2}" y2="{1:.1}" stroke="{colour}" stroke-width="3"/><text x="{3}" y="{4:.1}">{5}</text>"#,
            LEFT + pw + 12.0,
            ly,
            LEFT + pw + 32.0,
            LEFT + pw + 38.0,
            ly + 4.0,
            escape(&series.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_one_path_per_series_and_breaks_on_gaps() {
        let svg = line_chart(
            "t <test>",
            "x",
            "y",
            &[
                Series::line("a", vec![(0.0, Some(1.0)), (1.0, Some(2.0))]),
                Series::line("b & c", vec![(0.0, Some(3.0)), (0.5, None), (1.0, Some(1.0))]),
            ],
        );
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg.contains("b &amp; c") && svg.contains("t &lt;test&gt;"));
        let b = svg.lines().filter(|l| l.starts_with("<path")).nth(1).unwrap();
        assert_eq!(b.matches('M').count(), 2, "the gap starts a new segment: {b}");
    }

    #[test]
    fn dots_and_bands_are_drawn_and_named() {
        let svg = chart(
            "flow",
            "x",
            "y",
            &[Series::dots("measured", vec![(0.0, Some(1.0)), (1.0, None), (2.0, Some(2.0))])],
            &[Band { from: 0.5, to: 1.5, label: "[0] nodeDown".into(), colour: "#888" }],
        );
        assert_eq!(svg.matches("<circle").count(), 3, "two points and the legend's");
        assert!(svg.contains("[0] nodeDown") && svg.contains("fill-opacity"), "{svg}");
    }
}
