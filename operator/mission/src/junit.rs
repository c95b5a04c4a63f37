//! Verdicts as JUnit XML, the report format CI systems (GitLab, Jenkins, GitHub actions'
//! reporters) display: one test suite per constellation, one test case per objective; a
//! failed objective is a `failure`, one that could not be judged an `error`, both with the
//! numbers in the message.

use crate::verdict::{Outcome, Verdict};

/// The JUnit XML document of `verdicts` for constellation `name`; `time_s` is the run's
/// wall-clock duration, `timestamp` its start in UTC as ISO 8601 without a zone
/// (`2026-11-30T17:30:48`, as Ant writes it).
pub fn junit(name: &str, verdicts: &[Verdict], time_s: f64, timestamp: &str) -> String {
    let count = |o| verdicts.iter().filter(|v| v.outcome() == o).count();
    let (failures, errors) = (count(Outcome::Fail), count(Outcome::Inconclusive));
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites name=\"orbitnet\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time_s:.3}\">\n",
        verdicts.len()
    ));
    x.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time_s:.3}\" timestamp=\"{}\">\n",
        escape(name),
        verdicts.len(),
        escape(timestamp)
    ));
    for v in verdicts {
        x.push_str(&format!(
            "    <testcase classname=\"{}.{}\" name=\"{}\" time=\"0\">\n",
            escape(name),
            escape(&v.flow),
            escape(&format!("{}: {} ({})", v.objective, v.requirement, v.window))
        ));
        let j = v.measured.as_ref().unwrap_or(&v.predicted);
        let model = format!("model: {}", v.predicted.detail);
        match v.outcome() {
            Outcome::Pass => {}
            Outcome::Fail => x.push_str(&format!(
                "      <failure message=\"{}\" type=\"objective\">{}</failure>\n",
                escape(&j.detail),
                escape(&model)
            )),
            Outcome::Inconclusive => x.push_str(&format!(
                "      <error message=\"inconclusive: {}\" type=\"inconclusive\">{}</error>\n",
                escape(&j.detail),
                escape(&model)
            )),
        }
        x.push_str(&format!(
            "      <system-out>{}</system-out>\n",
            escape(&format!("{}; {model}", j.detail))
        ));
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Text as XML character data or an attribute value.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newline are not XML 1.0 characters.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
