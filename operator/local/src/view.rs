//! The live terminal view: a status block redrawn in place every tick (on a terminal), or
//! one line per tick (in a pipe), and messages scrolling above it. `--quiet` keeps only
//! messages; `--json` leaves standard output to telemetry.

use std::io::{IsTerminal, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    Quiet,
    Json,
}

/// What the status block shows.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub header: String,
    pub lines: Vec<String>,
    /// One line for logs and pipes.
    pub line: String,
}

pub struct View {
    mode: Mode,
    tty: bool,
    drawn: usize,
    last_progress: Option<(String, usize)>,
}

impl View {
    pub fn new(mode: Mode) -> Self {
        Self { mode, tty: std::io::stdout().is_terminal(), drawn: 0, last_progress: None }
    }

    fn clear(&mut self, out: &mut impl Write) {
        for _ in 0..self.drawn {
            let _ = write!(out, "\x1b[1A\x1b[2K");
        }
        self.drawn = 0;
    }

    /// A message that stays: errors, edits, notices. Goes to stderr in JSON mode.
    pub fn message(&mut self, text: &str) {
        if self.mode == Mode::Json {
            eprintln!("{text}");
            return;
        }
        let mut out = std::io::stdout().lock();
        self.clear(&mut out);
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// Build progress, e.g. "namespaces 1200/1684".
    pub fn progress(&mut self, what: &str, done: usize, total: usize) {
        if self.mode != Mode::Live {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.tty {
            self.clear(&mut out);
            let width = 30;
            let filled = (done * width).checked_div(total).unwrap_or(width);
            let pct = (done * 100).checked_div(total).unwrap_or(100);
            let _ = writeln!(
                out,
                "building {what:<12} [{}{}] {done}/{total} ({pct}%)",
                "#".repeat(filled),
                ".".repeat(width - filled)
            );
            self.drawn = 1;
        } else {
            // In a pipe: a line per 10 % per stage.
            let decile = (done * 10).checked_div(total).unwrap_or(10);
            if self.last_progress.as_ref() != Some(&(what.to_owned(), decile)) {
                let _ = writeln!(out, "building {what}: {done}/{total}");
                self.last_progress = Some((what.to_owned(), decile));
            }
        }
        let _ = out.flush();
    }

    /// Redraws the status block (or prints its one-line form).
    pub fn status(&mut self, s: &Status) {
        if self.mode != Mode::Live {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.tty {
            self.clear(&mut out);
            let _ = writeln!(out, "{}", s.header);
            for l in &s.lines {
                let _ = writeln!(out, "  {l}");
            }
            self.drawn = 1 + s.lines.len();
        } else {
            let _ = writeln!(out, "{}", s.line);
        }
        let _ = out.flush();
    }

    /// Leaves the last status on screen and moves below it.
    pub fn finish(&mut self) {
        self.drawn = 0;
    }
}
