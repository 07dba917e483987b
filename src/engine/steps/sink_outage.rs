//! `sink-outage` steps: a notification sink fails like a provider outage (`sink-chaos` on), and
//! with `for` recovers after it (`sink-chaos` off). The sinks' lifecycle is `engine/sinks.rs`.
//!
//! Example: `- sink-outage: { sink: sms, status: 503, for: 30s }`.

use super::StepEnd;
use crate::engine::run::Context;
use crate::engine::sinks::Outage;
use crate::scenario::model::SinkOutage;

/// A sink outage: on now; with `for`, off again after it (also when interrupted, so a held request
/// is not left hanging through teardown; teardown ends an outage without `for`).
pub(super) async fn run_sink_outage(ctx: &Context, outage: &SinkOutage) -> StepEnd {
    let on = Some(Outage::of(outage));
    if !ctx.sinks.set_outage(&outage.sink, on, &ctx.journal) {
        return StepEnd::Failed(format!("sink `{}` is not running", outage.sink));
    }
    let Some(duration) = outage.duration else {
        return StepEnd::Done;
    };
    let waited = ctx.declared_wait(duration).await;
    ctx.sinks.set_outage(&outage.sink, None, &ctx.journal);
    if waited { StepEnd::Done } else { StepEnd::Interrupted }
}
