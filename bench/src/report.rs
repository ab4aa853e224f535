//! Results: a table for people, JSON (`--json`) for scripts and docs/benchmarks.md.
use serde::Serialize;
use serde_json::{Map, Value};

use crate::stats::Summary;

/// The result of one scenario run.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// Scenario name.
    pub(crate) scenario: &'static str,
    /// What server was measured (`--label`).
    pub(crate) server: String,
    /// The scenario's parameters.
    pub(crate) parameters: Map<String, Value>,
    /// Single figures, in order.
    pub(crate) figures: Vec<Figure>,
    /// Latency distributions, in order.
    pub(crate) latencies: Vec<Latency>,
    /// Things the reader must know to trust the figures (limits hit, errors).
    pub(crate) notes: Vec<String>,
}

/// One named figure.
#[derive(Debug, Serialize)]
pub(crate) struct Figure {
    /// What it measures.
    pub(crate) name: String,
    /// The value.
    pub(crate) value: f64,
    /// Its unit.
    pub(crate) unit: &'static str,
}

/// One named latency distribution.
#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    /// What it measures.
    pub(crate) name: String,
    /// Its summary, or `None` without samples.
    pub(crate) summary: Option<Summary>,
}

impl Report {
    /// An empty report for `scenario` against `server`.
    pub(crate) fn new(scenario: &'static str, server: &str) -> Self {
        Self {
            scenario,
            server: server.to_owned(),
            parameters: Map::new(),
            figures: Vec::new(),
            latencies: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Records a parameter.
    pub(crate) fn parameter(&mut self, name: &str, value: impl Into<Value>) {
        self.parameters.insert(name.to_owned(), value.into());
    }

    /// Adds a figure.
    pub(crate) fn figure(&mut self, name: &str, value: f64, unit: &'static str) {
        self.figures.push(Figure {
            name: name.to_owned(),
            value,
            unit,
        });
    }

    /// Adds a latency distribution.
    pub(crate) fn latency(&mut self, name: &str, summary: Option<Summary>) {
        self.latencies.push(Latency {
            name: name.to_owned(),
            summary,
        });
    }

    /// Adds a note.
    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The report as a plain-text table.
    pub(crate) fn table(&self) -> String {
        let mut out = format!("{} against {}\n", self.scenario, self.server);
        let params: Vec<String> = self
            .parameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("  parameters: {}\n", params.join(" ")));
        for f in &self.figures {
            out.push_str(&format!("  {:<40} {:>14.2} {}\n", f.name, f.value, f.unit));
        }
        if !self.latencies.is_empty() {
            out.push_str(&format!(
                "  {:<28} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
                "latency (ms)", "count", "p50", "p90", "p99", "max", "mean"
            ));
        }
        for l in &self.latencies {
            match &l.summary {
                Some(s) => out.push_str(&format!(
                    "  {:<28} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                    l.name, s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.mean_ms
                )),
                None => out.push_str(&format!("  {:<28} no samples\n", l.name)),
            }
        }
        for n in &self.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::Samples;

    #[test]
    fn table_and_json_carry_every_figure() {
        let mut samples = Samples::default();
        samples.record(Duration::from_millis(3));
        let mut report = Report::new("latency", "test-server");
        report.parameter("rate", 10);
        report.figure("delivered", 42.0, "msgs");
        report.latency("submit → fetched", samples.summary());
        report.latency("empty", None);
        report.note("generator shares the CPU");
        let table = report.table();
        assert!(table.contains("latency against test-server"));
        assert!(table.contains("rate=10"));
        assert!(table.contains("42.00 msgs"));
        assert!(table.contains("3.00"));
        assert!(table.contains("no samples"));
        let json = serde_json::to_value(&report).expect("serialises");
        assert_eq!(json["figures"][0]["value"], 42.0);
        assert_eq!(json["latencies"][0]["summary"]["p50_ms"], 3.0);
        assert_eq!(json["notes"][0], "generator shares the CPU");
    }
}
