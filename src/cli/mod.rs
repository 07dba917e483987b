//! The command line: arguments, rendering diagnostics and progress, signals, exit codes.
//!
//! The only module that reads the environment, prints to the terminal or decides the process's
//! exit code. Data (verdict summaries, validation results) goes to stdout; progress, logs and
//! errors go to stderr.

mod annotate;
mod app;
pub(crate) mod args;
mod console;
mod errors;
mod explore;
mod gameday;
mod gate;
mod generate;
mod history;
mod init;
mod plan;
mod progress;
mod repeat;
mod validate;

pub use annotate::Format;
pub use app::main;
