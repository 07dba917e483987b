//! Reports: a run's journal and verdicts rendered for machines and for people — `report.json`,
//! JUnit XML for CI, a Markdown summary, and a self-contained HTML report with a timeline.
//!
//! Every report is a pure function of journal events and verdicts (and of the scenario's
//! expectations, which the journal carries in `scenario-loaded`): none reads the clock, the
//! environment or Docker. Each renders from any prefix of a journal, so an interrupted or crashed
//! run still gets every report. [`write_all`] writes them all and never gives up on the others
//! when one fails; [`replay_dir`] rebuilds runs from a report folder (`firedrill report`).

mod figures;
#[cfg(test)]
mod fixtures;
mod html;
mod human;
mod json;
mod junit;
mod markdown;
mod record;
mod replay;
mod stability;
mod text;
mod timeline;
mod write;
#[cfg(test)]
mod xsd;

pub use figures::{
    FaultFigures, KeyFigures, OutageFigures, TrafficFigures, WritesFigures, key_figures,
};
pub(crate) use html::STYLE as HTML_STYLE;
pub use html::render_html;
pub use human::{HumanReport, human_reports};
pub use json::{
    CheckReport, Counts, Ending, PhaseReport, REPORT_FORMAT_VERSION, Report, ReportError,
    RunStatus, ScenarioRef, StepReport, Timing, build_report, render_summary_text, write_json,
};
pub use junit::render_junit;
pub use markdown::render_markdown;
pub use record::RunRecord;
pub use replay::{ReplayError, ReplayedRun, replay_dir, status_from_journal};
pub use stability::{
    CheckStability, RunDifference, STABILITY_FORMAT_VERSION, ScenarioStability, Stability,
    StabilityVerdict, render_stability_markdown, render_stability_text, stability,
};
pub use text::html as escape_html;
pub use write::{WriteOptions, Written, write_all};
