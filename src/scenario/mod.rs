//! Scenario files: YAML → raw structs with spans → validated, immutable [`model::Scenario`], or every
//! mistake at once as [`Diagnostic`]s with file:line:col.
//!
//! Depends on nothing else in the crate; everyone else reads it.

pub mod model;

use std::path::Path;
use std::time::Duration;

pub use model::Scenario;

/// Read and validate a scenario file.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    todo!("scenario helper: {path:?}")
}

/// Validate scenario text that came from `path` (used in messages and to resolve relative paths).
pub fn parse(source: &str, path: &Path) -> Result<Scenario, Invalid> {
    todo!("scenario helper: {source} {path:?}")
}

/// Parse `250ms`, `30s`, `5m`, `1h`, `1m30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    todo!("scenario helper: {text}")
}

/// Write a duration the way `parse_duration` reads it (`1.5s` → `1500ms`, `90s` → `1m30s`).
pub fn format_duration(duration: Duration) -> String {
    todo!("scenario helper: {duration:?}")
}

/// Why a scenario file could not be loaded.
#[derive(Debug, thiserror::Error)]
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
