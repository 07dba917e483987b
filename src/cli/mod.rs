//! The command line: arguments, rendering diagnostics and progress, signals, exit codes.
//!
//! The only module that reads the environment, prints to the terminal or decides the process's
//! exit code. Data (verdict summaries, validation results) goes to stdout; progress, logs and
//! errors go to stderr.

mod app;
pub mod args;
mod errors;
mod gate;
pub mod history;
mod init;
mod progress;
mod repeat;

pub use app::main;
pub use errors::{ExitStatus, ExpectedError};
