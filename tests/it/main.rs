//! Integration tests: one binary, one module per area. Tests that need Docker use the real
//! engine on this machine; the demo images are built once, locally, by `firedrill images`.

mod blue_green;
mod compose;
mod concurrent;
mod faults;
mod links;
mod notify;
mod pull;
mod report;
mod rolling;
mod run;
mod sinks;
mod stack;
mod support;
mod swarm;
mod truth_checks;
mod truth_traffic;
mod upgrade;
mod validate;
mod windows;
