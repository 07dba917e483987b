//! Run history: every run's scenario, commit, versions, status, verdicts and key figures in an
//! embedded SQLite database (`STATE/history.sqlite`), and what is read back from it: the
//! `history` table, the `trend` page and the regression gate.
//!
//! What a run contributes is derived from its [`RunRecord`](crate::report::RunRecord) alone
//! ([`RunEntry::from_record`]): the figures are the report's own ([`key_figures`]
//! (crate::report::key_figures), `report.json`'s `timing`, the `notify` checks' per-channel
//! timings), flattened into named numbers so runs of a scenario can be compared figure by figure.
//! This module never reads the clock, the environment or Docker; the CLI passes in what only it
//! knows (the git commit) and decides when to record.

mod entry;
mod gate;
mod store;
mod trend;

pub use entry::{Better, Figure, Origin, RunEntry, Unit, VerdictEntry, figures_of, versions_of};
pub use gate::{GateOutcome, Regression, RegressionPolicy, regressions};
pub use store::{History, HistoryError, Recorded, RunFilter, SCHEMA_VERSION};
pub use trend::{
    FigureSeries, Point, ScenarioTrend, Trend, TrendRun, render_history_table, render_trend_html,
    render_trend_text,
};
