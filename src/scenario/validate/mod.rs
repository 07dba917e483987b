//! The scenario walk: node tree → [`Scenario`](super::Scenario), checking shapes, then
//! references (services, ports, traffic, steps), cycles and names, collecting every problem.
//! Cross-reference checks live here, not in the tree or the reader.
//!
//! Reads the file system only to resolve build contexts; never touches Docker.

mod compose;
mod endpoints;
mod expect;
mod explore;
mod faults;
mod human;
mod links;
mod maintenance;
mod metrics;
mod node;
mod notify;
mod services;
mod sink_steps;
mod steps;
mod traffic;
mod upgrade;
mod walk;

pub(crate) use human::responders;
pub(crate) use maintenance::parse_instant;
pub(crate) use walk::{notices, policy, scenario, scenario_and_space};
