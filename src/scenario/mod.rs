//! Scenario files: YAML → raw structs with spans → validated, immutable [`model::Scenario`], or every
//! mistake at once as [`Diagnostic`]s with file:line:col.
//!
//! Depends on nothing else in the crate; everyone else reads it.
//!
//! The pipeline: [`tree`] turns YAML into nodes that keep their byte spans (syntax errors and
//! duplicate keys stop here), [`validate`] walks the nodes into the [`model`] with the typed reads
//! of [`read`], collecting problems, and [`report`] turns problems into diagnostics.

pub mod compose;
mod duration;
pub mod gameday;
mod keys;
pub mod metrics;
pub mod model;
mod quantity;
mod read;
mod report;
mod schema;
pub mod space;
mod suggest;
mod template;
mod tree;
mod validate;

use std::path::Path;
use std::time::Duration;

pub use model::Scenario;
pub use report::render;
pub use schema::scenario_schema;

/// Read and validate a scenario file.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    let source = std::fs::read_to_string(path)
        .map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    Ok(parse(&source, path)?)
}

/// Validate scenario text that came from `path` (used in messages and to resolve relative paths).
///
/// Build contexts are resolved against `path`'s folder and must exist.
pub fn parse(source: &str, path: &Path) -> Result<Scenario, Invalid> {
    let file = path.display().to_string();
    let root = tree::parse(source).map_err(|problems| problems.into_invalid(source, &file))?;
    validate::scenario(root.as_ref(), source, path)
        .map_err(|problems| problems.into_invalid(source, &file))
}

/// Read and validate a scenario file with its `explore:` space (`None` when it has none), and
/// the text it was read from (`firedrill explore` writes each schedule into it).
pub fn load_with_space(path: &Path) -> Result<(Scenario, Option<space::Space>, String), LoadError> {
    let source = read(path)?;
    let (scenario, space) = parse_with_space(&source, path)?;
    Ok((scenario, space, source))
}

/// [`parse`], with the scenario's `explore:` space (`None` when it has none).
pub fn parse_with_space(
    source: &str,
    path: &Path,
) -> Result<(Scenario, Option<space::Space>), Invalid> {
    let file = path.display().to_string();
    let root = tree::parse(source).map_err(|problems| problems.into_invalid(source, &file))?;
    validate::scenario_and_space(root.as_ref(), source, path)
        .map_err(|problems| problems.into_invalid(source, &file))
}

/// Read and validate a policy file for `firedrill gate`: the `maintenance` section of a YAML file
/// (a scenario file works too).
pub fn load_policy(path: &Path) -> Result<crate::calendar::Policy, LoadError> {
    let source = read(path)?;
    let file = path.display().to_string();
    let root = tree::parse(&source).map_err(|problems| problems.into_invalid(&source, &file))?;
    Ok(validate::policy(root.as_ref(), &source, path)
        .map_err(|problems| problems.into_invalid(&source, &file))?)
}

/// Read a notices file for `firedrill gate --notices`: a YAML list of `{ sent, channels }`.
pub fn load_notices(path: &Path) -> Result<Vec<crate::calendar::SentNotice>, LoadError> {
    let source = read(path)?;
    let file = path.display().to_string();
    let root = tree::parse(&source).map_err(|problems| problems.into_invalid(&source, &file))?;
    Ok(validate::notices(root.as_ref(), &source, path)
        .map_err(|problems| problems.into_invalid(&source, &file))?)
}

/// Read and validate a responders file for `firedrill run --responders` (gameday): per role, a
/// delay and what the scripted person does.
pub fn load_responders(path: &Path) -> Result<gameday::Responders, LoadError> {
    let source = read(path)?;
    let file = path.display().to_string();
    let root = tree::parse(&source).map_err(|problems| problems.into_invalid(&source, &file))?;
    Ok(validate::responders(root.as_ref(), &source, path)
        .map_err(|problems| problems.into_invalid(&source, &file))?)
}

/// An instant written as RFC 3339 (`2026-12-05T21:00:00Z`) or as a local time and zone
/// (`2026-12-05T22:00 Europe/Berlin`); `Err` carries a message and a hint.
pub fn parse_instant(text: &str) -> Result<jiff::Timestamp, (String, String)> {
    validate::parse_instant(text)
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path)
        .map_err(|source| LoadError::Read { path: path.to_path_buf(), source })
}

/// Parse a positive duration: `250ms`, `30s`, `5m`, `1h`, `1m30s` (units largest first, each once;
/// `us` and `ns` are read too). Zero is an error.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    duration::parse(text)
}

/// Write a duration the way `parse_duration` reads it (`1.5s` → `1500ms`, `90s` → `1m30s`).
pub fn format_duration(duration: Duration) -> String {
    duration::format(duration)
}

/// Why a scenario file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("failed to read scenario `{}`", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read and has mistakes.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// Every mistake found in one scenario file.
#[derive(Debug, thiserror::Error)]
#[error("{} has {} problem(s)", file, diagnostics.len())]
pub struct Invalid {
    /// The file, as given.
    pub file: String,
    /// Each mistake, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

/// One mistake, at a place in the file.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct Diagnostic {
    /// Lowercase message, e.g. "unknown service `biling`".
    pub message: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The file's text, named, for rendering.
    #[source_code]
    pub source_code: miette::NamedSource<std::sync::Arc<str>>,
    /// The span the label points at.
    #[label("{label}")]
    pub span: miette::SourceSpan,
    /// Short label at the span.
    pub label: String,
    /// A hint ("did you mean `billing`?"), when one helps.
    #[help]
    pub help: Option<String>,
}
