//! Live edits: the scenario file is re-read when it changes. An edit that keeps the
//! constellation's shape (nodes, grid, addresses, tick) replaces the plan at the next tick
//! (new faults, link classes, ground-link rules, routing); anything else is reported and
//! ignored (`Plan::incompatibility`), and the emulation goes on.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct SpecWatch {
    path: PathBuf,
    seen: Option<(SystemTime, u64)>,
}

impl SpecWatch {
    pub fn new(path: &Path) -> Self {
        let mut w = Self { path: path.to_owned(), seen: None };
        w.seen = w.stamp();
        w
    }

    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let m = std::fs::metadata(&self.path).ok()?;
        Some((m.modified().ok()?, m.len()))
    }

    /// The file's new text, if it changed since the last call.
    pub fn changed(&mut self) -> Option<String> {
        let now = self.stamp();
        if now == self.seen {
            return None;
        }
        self.seen = now;
        std::fs::read_to_string(&self.path).ok()
    }
}
