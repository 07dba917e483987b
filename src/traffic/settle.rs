//! Waiting for a window's outcomes: every request due in a window of the schedule settles by its
//! due time plus the request timeout, so whoever judges the window (the upgrade's watch gate)
//! waits for them instead of judging only the requests that happened to be quick.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::generator::due_after;
use crate::clock;
use crate::journal::{Event, EventKind, Journal};

/// Slack for the last outcome to be recorded after its deadline.
const RECORD_MARGIN: Duration = Duration::from_millis(250);

/// How many requests of a stream that started at `origin_us` (its `traffic-started` offset) at
/// `rate_per_second` are due in `from_us..to_us` (journal offsets, µs), by the generator's own
/// schedule.
pub fn due_in(rate_per_second: f64, origin_us: u64, from_us: u64, to_us: u64) -> u64 {
    if !(rate_per_second.is_finite() && rate_per_second > 0.0) || to_us <= origin_us {
        return 0;
    }
    let at = |index: u64| origin_us + due_after(index, rate_per_second).as_micros() as u64;
    // Start a little before the first index that can be in the window; the loop skips the rest.
    let mut index = ((from_us.saturating_sub(origin_us) as f64 * rate_per_second / 1e6) as u64)
        .saturating_sub(2);
    let mut count = 0;
    loop {
        let due = at(index);
        if due >= to_us {
            return count;
        }
        count += u64::from(due >= from_us);
        index += 1;
    }
}

/// How many requests of `traffic` are due in `from_us..to_us`, and how many of them have their
/// `traffic-request` event in `events` (by scheduled time).
pub fn window_outcomes(events: &[Event], traffic: &str, from_us: u64, to_us: u64) -> (u64, u64) {
    let mut due = 0;
    let mut settled = 0;
    for event in events {
        match &event.kind {
            EventKind::TrafficStarted { traffic: name, rate_per_second } if name == traffic => {
                due = due_in(*rate_per_second, event.offset_us, from_us, to_us);
            }
            EventKind::TrafficRequest { traffic: name, scheduled_us, .. }
                if name == traffic && (from_us..to_us).contains(scheduled_us) =>
            {
                settled += 1;
            }
            _ => {}
        }
    }
    (due, settled)
}

/// Wait until every request of `traffic` due in `from_us..to_us` has its outcome in `journal`, at
/// most until `to_us` plus the request `timeout` (and a small margin): by then each one has been
/// answered, failed or given up on. Returns whether every one settled.
pub async fn await_window(
    journal: &Journal,
    traffic: &str,
    from_us: u64,
    to_us: u64,
    timeout: Duration,
) -> bool {
    let recorded = Arc::new(Notify::new());
    let wake = Arc::downgrade(&recorded);
    let name = traffic.to_owned();
    journal.subscribe(Box::new(move |event| {
        if let EventKind::TrafficRequest { traffic, .. } = &event.kind
            && *traffic == name
            && let Some(wake) = wake.upgrade()
        {
            wake.notify_one();
        }
    }));
    let until = Duration::from_micros(to_us) + timeout + RECORD_MARGIN;
    loop {
        let (due, settled) = window_outcomes(&journal.snapshot(), traffic, from_us, to_us);
        if settled >= due {
            return true;
        }
        let Some(left) = until.checked_sub(journal.offset()) else { return false };
        tokio::select! {
            () = recorded.notified() => {}
            () = clock::sleep(left) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::test_server::journal;

    fn request(traffic: &str, scheduled_us: u64, ok: bool) -> EventKind {
        EventKind::TrafficRequest {
            traffic: traffic.into(),
            scheduled_us,
            lateness_us: 0,
            ok,
            status: None,
            latency_us: 0,
            harness_lag_us: 0,
            sent: true,
            write_id: None,
            unidentified: false,
            error: None,
        }
    }

    #[test]
    fn counts_the_requests_due_in_a_window_by_the_generators_schedule() {
        // Started at 1 s, 100/s: due at 1.00, 1.01, ... s.
        assert_eq!(due_in(100.0, 1_000_000, 1_000_000, 2_000_000), 100);
        assert_eq!(due_in(100.0, 1_000_000, 1_005_000, 1_025_000), 2);
        assert_eq!(due_in(100.0, 1_000_000, 0, 1_000_001), 1);
        assert_eq!(due_in(3.0, 0, 0, 1_000_000), 3, "0, 333333, 666667");
        assert_eq!(due_in(3.0, 0, 333_334, 1_000_001), 2);
        assert_eq!(due_in(100.0, 5_000_000, 0, 4_000_000), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_watch_window_waits_for_a_request_still_in_flight() {
        let journal = journal();
        journal
            .record(EventKind::TrafficStarted { traffic: "pages".into(), rate_per_second: 10.0 });
        let origin = journal.snapshot()[0].offset_us;
        // The window holds the requests due at +0 and +100 ms; the second hangs and fails at its
        // 2 s timeout, long after the window closed.
        journal.record(request("pages", origin, true));
        let late = journal.clone();
        tokio::spawn(async move {
            clock::sleep(Duration::from_millis(2_100)).await;
            late.record(request("pages", origin + 100_000, false));
        });
        clock::sleep(Duration::from_millis(150)).await;
        let to = journal.offset().as_micros() as u64;
        assert_eq!(window_outcomes(&journal.snapshot(), "pages", origin, to), (2, 1));
        let started = clock::instant_now();
        assert!(await_window(&journal, "pages", origin, to, Duration::from_secs(2)).await);
        assert_eq!(window_outcomes(&journal.snapshot(), "pages", origin, to), (2, 2));
        let waited = clock::instant_now() - started;
        assert!(waited >= Duration::from_millis(1_900) && waited < Duration::from_millis(2_000));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_bounded_by_the_timeout() {
        let journal = journal();
        journal
            .record(EventKind::TrafficStarted { traffic: "pages".into(), rate_per_second: 10.0 });
        clock::sleep(Duration::from_millis(150)).await;
        let to = journal.offset().as_micros() as u64;
        let started = clock::instant_now();
        assert!(!await_window(&journal, "pages", 0, to, Duration::from_secs(1)).await);
        let waited = clock::instant_now() - started;
        assert!(waited <= Duration::from_millis(1_300), "{waited:?}");
    }
}
