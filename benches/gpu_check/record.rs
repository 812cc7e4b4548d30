//! Results as JSON lines (the format of `benches/torch_reference.py`), printed and optionally appended
//! to a file, and kept for the summary.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// Where results go.
pub struct Recorder {
    file: Option<File>,
    rows: Vec<Value>,
}

impl Recorder {
    /// Prints to stdout, and appends to `out` when given.
    pub fn new(out: Option<&Path>) -> Result<Self> {
        let file = out
            .map(|path| {
                File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))
            })
            .transpose()?;
        Ok(Self {
            file,
            rows: Vec::new(),
        })
    }

    /// Records one result.
    pub fn emit(&mut self, row: Value) -> Result<()> {
        let line = row.to_string();
        println!("{line}");
        if let Some(file) = &mut self.file {
            writeln!(file, "{line}").context("writing the results file")?;
        }
        self.rows.push(row);
        Ok(())
    }

    /// Everything recorded so far.
    pub fn rows(&self) -> &[Value] {
        &self.rows
    }
}
