//! Carrying out one step of the timeline: [`run_step`] records its start, hands it to its
//! family's file, and records its end. One file per step family, as `proxy/toxic/`:
//!
//! | file | step keys |
//! |---|---|
//! | `timeline.rs` | `wait`, `mark` |
//! | `probe.rs` | `probe` (and the steady-state probes) |
//! | `container.rs` | `kill`, `stop`, `start`, `restart`, `pause`, `unpause` |
//! | `fault.rs` | `memory`, `cpu`, `partition` |
//! | `link_fault.rs` | `latency`, `bandwidth`, `timeout`, `reset-peer`, `slow-close`, `slicer`, `limit-data`, `down`, `http-error`, `http-delay`, `cut` |
//! | `parallel.rs` | `parallel` |
//! | `sink_outage.rs` | `sink-outage` |
//! | `call.rs` | `call` |
//! | `human.rs` | `human` (gameday) |
//! | `node.rs` | `node-availability` |
//! | `engine/upgrade/` | `upgrade`, `rollback` |

mod call;
mod container;
mod fault;
mod human;
mod link_fault;
mod node;
mod parallel;
mod probe;
mod process;
mod sink_outage;
mod timeline;

use std::sync::Arc;

pub use probe::run_probe;

use super::run::Context;
use super::upgrade::{ServiceState, run_rollback, run_upgrade};
use crate::backend::RunScope;
use crate::journal::{EventKind, Outcome, ProbeContext};
use crate::scenario::model::{Action, Scenario, Step};

/// How a step ended.
pub enum StepEnd {
    /// Carried out.
    Done,
    /// Carried out, and the timeline stops here on purpose (`on-failure: abort`).
    Abort,
    /// The backend refused an action: the timeline stops.
    Failed(String),
    /// A signal arrived while it ran.
    Interrupted,
}

/// Run one step, recording its start, its actions and its end.
pub async fn run_step(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    state: &mut ServiceState,
    step: &Step,
) -> StepEnd {
    ctx.journal.record(EventKind::StepStarted {
        index: step.index,
        step: step.name.clone(),
        action: step.action.key().to_owned(),
    });
    let end = match &step.action {
        Action::Wait(duration) => timeline::run_wait(ctx, *duration).await,
        Action::Probe(probe) => {
            let context = ProbeContext::Step { step: step.name.clone() };
            match ctx.interruptible(probe::run_probe(ctx, stack, probe, context)).await {
                Some(()) => StepEnd::Done,
                None => StepEnd::Interrupted,
            }
        }
        Action::Container(container) => {
            container::run_container_action(ctx, stack, container).await
        }
        Action::Upgrade(upgrade) => {
            run_upgrade(ctx, stack, scenario, state, &step.name, upgrade).await
        }
        Action::Rollback { service } => run_rollback(ctx, stack, scenario, state, service).await,
        Action::Fault(fault) => fault::run_fault(ctx, stack, step, fault).await,
        Action::LinkFault(fault) => link_fault::run_link_fault(ctx, scenario, step, fault).await,
        Action::Parallel(children) => {
            parallel::run_parallel(ctx, stack, scenario, state, children).await
        }
        Action::SinkOutage(outage) => sink_outage::run_sink_outage(ctx, outage).await,
        Action::Call(call) => {
            match ctx.interruptible(call::run_call(ctx, stack, &step.name, call)).await {
                Some(()) => StepEnd::Done,
                None => StepEnd::Interrupted,
            }
        }
        Action::Mark => timeline::run_mark(),
        Action::KillProcess(kill) => process::run_kill_process(ctx, stack, step, kill).await,
        Action::Human(human) => human::run_human(ctx, stack, (scenario, state), step, human).await,
        Action::NodeAvailability(node) => node::run_node_availability(ctx, stack, step, node).await,
    };
    let (outcome, error) = match &end {
        StepEnd::Done => (Outcome::Ok, None),
        StepEnd::Abort => {
            (Outcome::Failed, Some("the upgrade failed and `on-failure` is `abort`".into()))
        }
        StepEnd::Failed(reason) => (Outcome::Failed, Some(reason.clone())),
        StepEnd::Interrupted => (Outcome::Interrupted, None),
    };
    ctx.journal.record(EventKind::StepEnded {
        index: step.index,
        step: step.name.clone(),
        outcome,
        error,
    });
    end
}
