//! The `watch` gate of an upgrade: after the switch, the named traffic's success rate over the
//! period, once the requests due in it settled (`traffic::await_window`, at most the traffic's
//! timeout), must reach `availability`, or the upgrade has failed.
//!
//! Example: `upgrade: { ..., watch: { for: 30s, traffic: checkout, availability: 99% } }`.

use std::time::Duration;

use super::{Attempt, UpgradeCtx};
use crate::engine::run::Context;
use crate::journal::{EventKind, UpgradeStage};
use crate::scenario::model::Watch;

/// Watch the traffic for the gate's period and judge it, recording the `watch` stage.
pub(super) async fn gate(cx: &UpgradeCtx<'_>, watch: &Watch) -> Result<(), Attempt> {
    let ctx = cx.ctx;
    let from_us = ctx.journal.offset().as_micros() as u64;
    if !ctx.declared_wait(watch.duration).await {
        return Err(Attempt::Interrupted);
    }
    let to_us = ctx.journal.offset().as_micros() as u64;
    // The requests of the window still in flight are part of it: a slow or hanging one
    // settles by its deadline (due time + the traffic's timeout), and is counted then.
    let timeout = cx.scenario.traffic.get(&watch.traffic).map_or(Duration::ZERO, |t| t.timeout);
    let settling =
        crate::traffic::await_window(&ctx.journal, &watch.traffic, from_us, to_us, timeout);
    if ctx.interruptible(settling).await.is_none() {
        return Err(Attempt::Interrupted);
    }
    let (ok, total) = traffic_outcomes(ctx, &watch.traffic, from_us, to_us);
    let availability = if total == 0 { 100.0 } else { 100.0 * ok as f64 / total as f64 };
    let detail = format!(
        "`{}`: {ok}/{total} requests succeeded ({availability:.1}%), gate {}%",
        watch.traffic, watch.availability
    );
    if total == 0 || availability < watch.availability {
        let detail = if total == 0 {
            format!("`{}` sent no request during the watch period", watch.traffic)
        } else {
            detail
        };
        cx.record(UpgradeStage::Watch, false, Some(detail.clone()));
        return Err(Attempt::Failed(format!("SLO gate breached: {detail}")));
    }
    cx.record(UpgradeStage::Watch, true, Some(detail));
    Ok(())
}

/// Successful and total requests of `traffic` scheduled in `[from_us, to_us)`.
fn traffic_outcomes(ctx: &Context, traffic: &str, from_us: u64, to_us: u64) -> (u64, u64) {
    let mut ok = 0;
    let mut total = 0;
    for event in ctx.journal.snapshot() {
        if let EventKind::TrafficRequest { traffic: name, scheduled_us, ok: success, .. } =
            &event.kind
            && name == traffic
            && (from_us..to_us).contains(scheduled_us)
        {
            total += 1;
            ok += u64::from(*success);
        }
    }
    (ok, total)
}
