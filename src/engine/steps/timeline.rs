//! Steps that only shape the timeline: `wait` (a declared, interruptible pause) and `mark` (a
//! named moment: the step's own `step-started` and `step-ended` are the marker, for triggers).
//!
//! Example: `- wait: 5s`, `- mark: announced`.

use std::time::Duration;

use super::StepEnd;
use crate::engine::run::Context;

/// Carry out a `wait` step.
pub(super) async fn run_wait(ctx: &Context, duration: Duration) -> StepEnd {
    if ctx.declared_wait(duration).await { StepEnd::Done } else { StepEnd::Interrupted }
}

/// Carry out a `mark` step: nothing beyond its own start and end.
pub(super) fn run_mark() -> StepEnd {
    StepEnd::Done
}
