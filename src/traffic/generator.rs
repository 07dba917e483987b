//! The open-loop generator: one scheduler task per stream hands each request to a task of its
//! own the moment it is due; the task waits for one of the `concurrency` slots, then sends.
//!
//! Everything is judged from the **due time**, never from the send (measuring from the send is
//! coordinated omission: a stuck service holds every slot, the requests behind them wait, go
//! out late once it recovers, succeed at once, and the outage vanishes from the figures).
//! Request `i` is due at `origin + i / rate` on tokio's clock; its deadline is the due time plus
//! the request timeout, whether it spent that time waiting for a slot or for an answer; its
//! latency runs from the due time to the answer. A request still waiting for a slot at its
//! deadline is never sent and is recorded as failed. The scheduler never waits for a slot, so a
//! stuck service cannot slow the schedule down. Stopping ends the schedule: every request due
//! by then still gets its slot, its answer or its deadline, and its event. The journal offset of
//! each due time is computed from the `traffic-started` event's offset, so `scheduled-us` is
//! exact and request 0 is due when the stream started.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ports::{PortCache, PortResolver};
use super::request::{self, Failure};
use crate::clock;
use crate::journal::{EventKind, Journal};
use crate::scenario::model::Traffic;

/// A request sent more than this long after it was due counts as late.
const LATE_AFTER: Duration = Duration::from_millis(1);

/// How long before a due time the scheduler's timer is set; it yields through whatever is left
/// when the timer fires. Tokio rounds a deadline up to the next millisecond tick and the OS wakes
/// the runtime a whole number of milliseconds after it went idle, so a timer set for the due
/// time itself fires 1-2 ms late. Set 1 ms earlier, it fires within the time the runtime took to
/// go idle after the previous request (~0.3 ms at 200/s on loopback) or, when that phase wraps
/// around, early, and then the yield loop burns the rest (under 1 ms) on one core.
const SPIN_WINDOW: Duration = Duration::from_millis(1);

/// What a stream did, returned by [`TrafficHandle::stop`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficStats {
    /// Requests sent (each one a `traffic-request` event).
    pub sent: u64,
    /// Of those, sent more than 1 ms after they were due.
    pub late: u64,
    /// Of those, answered completely with the expected status.
    pub ok: u64,
    /// Requests that were due but never sent: no slot came free before their timeout. Each is
    /// a failed `traffic-request` event, not part of `sent`.
    pub unsent: u64,
    /// Writes answered with the expected status but without a readable id (`verify-writes`):
    /// they cannot be read back.
    pub unverifiable: u64,
    /// Ids of the writes the service acknowledged (`verify-writes`), in schedule order.
    pub writes: Vec<String>,
    /// Every acknowledged write with the record the service answered (its JSON object), in
    /// schedule order, several per id when the service reused an id: a read-back can then tell
    /// the acknowledged record from another one under the same id.
    pub records: Vec<(String, Option<serde_json::Value>)>,
}

/// A running traffic stream. [`stop`](TrafficHandle::stop) it to finish in-flight requests and
/// record `traffic-stopped`; dropping it aborts every request at once and records nothing more.
#[must_use = "dropping a TrafficHandle aborts its requests at once; call `stop` to finish them and record `traffic-stopped`"]
pub struct TrafficHandle {
    stream: Arc<Stream>,
    cancel: CancellationToken,
    scheduler: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TrafficHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrafficHandle").field("traffic", &self.stream.name).finish()
    }
}

/// What the scheduler and the request tasks share.
struct Stream {
    name: String,
    method: String,
    path: String,
    body: Option<String>,
    expected: u16,
    id_field: Option<String>,
    timeout: Duration,
    concurrency: usize,
    /// Journal offset (µs) at which request 0 was due.
    origin_us: u64,
    http: reqwest::Client,
    journal: Journal,
    ports: PortCache,
    tally: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    late: u64,
    ok: u64,
    unsent: u64,
    unverifiable: u64,
    /// (request index, id): requests complete out of order.
    writes: Vec<(u64, String)>,
    /// (request index, id, the record acknowledged: the answer's JSON object).
    records: Vec<(u64, String, Option<serde_json::Value>)>,
}

impl Tally {
    fn writes(&self) -> Vec<String> {
        let mut writes = self.writes.clone();
        writes.sort_by_key(|(index, _)| *index);
        writes.into_iter().map(|(_, id)| id).collect()
    }
}

/// Start a stream: record `traffic-started` and send request `i` at `i / rate` seconds from now
/// until [`TrafficHandle::stop`].
///
/// Requests go to `http://127.0.0.1:{port}{path}` where `resolve` says the port is (looked up
/// before the first request and again after connection failures, at most every 250 ms). Must be
/// called within a tokio runtime.
pub fn start(
    spec: &Traffic,
    resolve: PortResolver,
    journal: Journal,
    http: reqwest::Client,
) -> TrafficHandle {
    let started = journal.record(EventKind::TrafficStarted {
        traffic: spec.name.clone(),
        rate_per_second: spec.rate_per_second,
    });
    let origin = clock::instant_now();
    let stream = Arc::new(Stream {
        name: spec.name.clone(),
        method: spec.request.method.clone(),
        path: spec.request.path.clone(),
        body: spec.request.body.clone(),
        expected: spec.request.status,
        id_field: spec.verify_writes.as_ref().map(|verify| verify.id_field.clone()),
        timeout: spec.timeout,
        concurrency: spec.concurrency.max(1),
        origin_us: started.offset_us,
        http,
        journal,
        ports: PortCache::new(resolve, spec.timeout),
        tally: Mutex::new(Tally::default()),
    });
    let cancel = CancellationToken::new();
    let scheduler = tokio::spawn(schedule(
        stream.clone(),
        spec.rate_per_second,
        spec.concurrency.max(1),
        origin,
        cancel.clone(),
    ));
    TrafficHandle { stream, cancel, scheduler: Some(scheduler) }
}

impl TrafficHandle {
    /// Stop scheduling (recorded as `traffic-stopped` at once), let every request due by then
    /// settle (each bounded by its deadline: due time plus the request timeout), record
    /// `traffic-drained`, and return what the stream did.
    ///
    /// Dropping this future before it completes aborts the requests still in flight.
    pub async fn stop(mut self) -> TrafficStats {
        self.cancel.cancel();
        if let Some(scheduler) = self.scheduler.take() {
            let mut scheduler = AbortOnDrop(scheduler);
            if let Err(error) = (&mut scheduler.0).await
                && error.is_panic()
            {
                std::panic::resume_unwind(error.into_panic());
            }
        }
        let stats = {
            let tally = self.stream.tally.lock().expect("traffic tally lock poisoned");
            TrafficStats {
                sent: tally.sent,
                late: tally.late,
                ok: tally.ok,
                unsent: tally.unsent,
                unverifiable: tally.unverifiable,
                writes: tally.writes(),
                records: {
                    let mut records = tally.records.clone();
                    records.sort_by_key(|(index, ..)| *index);
                    records.into_iter().map(|(_, id, record)| (id, record)).collect()
                },
            }
        };
        self.stream.journal.record(EventKind::TrafficDrained {
            traffic: self.stream.name.clone(),
            sent: stats.sent,
            late: stats.late,
            unsent: stats.unsent,
            ok: stats.ok,
        });
        stats
    }

    /// Ids of the writes acknowledged so far, in schedule order.
    pub fn acknowledged_writes(&self) -> Vec<String> {
        self.stream.tally.lock().expect("traffic tally lock poisoned").writes()
    }
}

impl Drop for TrafficHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        // Aborting the scheduler drops its `JoinSet`, which aborts every request task.
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.abort();
        }
    }
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// When request `index` is due, from the stream's origin. Integer nanoseconds, so due times do
/// not drift and `scheduled-us` is exact for rates that divide a second.
pub(super) fn due_after(index: u64, rate_per_second: f64) -> Duration {
    Duration::from_nanos((index as f64 * 1e9 / rate_per_second).round() as u64)
}

/// The scheduler: spawns each request's task when it is due, until cancelled; then spawns the
/// requests that fell due meanwhile, records `traffic-stopped` and waits for every task.
async fn schedule(
    stream: Arc<Stream>,
    rate_per_second: f64,
    concurrency: usize,
    origin: Instant,
    cancel: CancellationToken,
) {
    let mut in_flight = JoinSet::new();
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut index = 0u64;
    if rate_per_second.is_finite() && rate_per_second > 0.0 {
        loop {
            let scheduled = due_after(index, rate_per_second);
            let due = origin + scheduled;
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                () = sleep_until(due) => {}
            }
            in_flight.spawn(request(stream.clone(), index, scheduled, due, slots.clone()));
            index += 1;
            while let Some(done) = in_flight.try_join_next() {
                propagate_panic(done);
            }
        }
        // Requests that fell due while this task waited for the CPU are due all the same.
        let elapsed = clock::instant_now().saturating_duration_since(origin);
        loop {
            let scheduled = due_after(index, rate_per_second);
            if scheduled > elapsed {
                break;
            }
            in_flight.spawn(request(
                stream.clone(),
                index,
                scheduled,
                origin + scheduled,
                slots.clone(),
            ));
            index += 1;
        }
    } else {
        // Validation rejects such a rate; a stream with one sends nothing.
        cancel.cancelled().await;
    }
    stream.journal.record(EventKind::TrafficStopped { traffic: stream.name.clone(), due: index });
    while let Some(done) = in_flight.join_next().await {
        propagate_panic(done);
    }
}

fn propagate_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done
        && error.is_panic()
    {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Sleep until `due` as precisely as is cheap: tokio's timer for all but the last
/// [`SPIN_WINDOW`], then yield until the time has come.
async fn sleep_until(due: Instant) {
    let now = clock::instant_now();
    if let Some(coarse) = due.saturating_duration_since(now).checked_sub(SPIN_WINDOW)
        && !coarse.is_zero()
    {
        clock::sleep(coarse).await;
    }
    let mut last = clock::instant_now();
    while last < due {
        tokio::task::yield_now().await;
        let now = clock::instant_now();
        if now == last {
            // The clock did not move across a yield: it is paused (tests), and only a timer
            // moves it.
            clock::sleep(due.saturating_duration_since(now)).await;
            return;
        }
        last = now;
    }
}

/// One request (due `scheduled` after the origin, at `due`): wait for a slot until its deadline
/// (the due time plus the request timeout), then send; record one `traffic-request` event
/// either way.
async fn request(
    stream: Arc<Stream>,
    index: u64,
    scheduled: Duration,
    due: Instant,
    slots: Arc<Semaphore>,
) {
    // The task was spawned when due; any delay before it runs is the harness's own (a starved
    // scheduler or runtime), never the service's. It moves the deadline and is recorded, so a
    // loaded machine does not turn into a breach the service is blamed for.
    let harness_lag = clock::instant_now().saturating_duration_since(due);
    let deadline = due + harness_lag + stream.timeout;
    match tokio::time::timeout_at(deadline, slots.acquire_owned()).await {
        Ok(permit) => {
            let permit = permit.expect("the slots are never closed");
            send(stream, index, (scheduled, harness_lag), due, deadline, permit).await;
        }
        Err(_) => {
            let waited = clock::instant_now().saturating_duration_since(due);
            {
                let mut tally = stream.tally.lock().expect("traffic tally lock poisoned");
                tally.unsent += 1;
            }
            stream.journal.record(EventKind::TrafficRequest {
                traffic: stream.name.clone(),
                scheduled_us: stream.origin_us + scheduled.as_micros() as u64,
                lateness_us: waited.as_micros() as u64,
                ok: false,
                status: None,
                latency_us: waited.as_micros() as u64,
                harness_lag_us: harness_lag.as_micros() as u64,
                sent: false,
                write_id: None,
                unidentified: false,
                error: Some(format!(
                    "not sent: no free slot within {} (all {} in use)",
                    crate::scenario::format_duration(stream.timeout),
                    stream.concurrency
                )),
            });
        }
    }
}

/// Send one request that got its slot: wait for a port, send, judge, record one
/// `traffic-request` event. Everything until `deadline` (due + timeout) counts.
async fn send(
    stream: Arc<Stream>,
    index: u64,
    (scheduled, harness_lag): (Duration, Duration),
    due: Instant,
    deadline: Instant,
    slot: OwnedSemaphorePermit,
) {
    let lease = tokio::time::timeout_at(deadline, stream.ports.get()).await;
    let sent_at = clock::instant_now();
    let lateness = sent_at.saturating_duration_since(due);
    let timeout = crate::scenario::format_duration(stream.timeout);
    let result = match &lease {
        Ok(Ok(lease)) => {
            request::fetch(
                &stream.http,
                &stream.method,
                lease.port,
                &stream.path,
                stream.body.as_deref(),
                deadline,
                stream.timeout,
            )
            .await
        }
        Ok(Err(error)) => Err(Failure {
            status: None,
            message: format!("no port for the service: {error}"),
            connection: false,
        }),
        Err(_) => Err(Failure {
            status: None,
            message: format!("no port for the service within {timeout}"),
            connection: false,
        }),
    };
    let latency = clock::instant_now().saturating_duration_since(due);
    if let (Ok(Ok(lease)), Err(Failure { connection: true, .. })) = (&lease, &result) {
        stream.ports.connection_failed(*lease).await;
    }
    drop(slot);

    let acknowledged_record = match &result {
        Ok(answer) if answer.status == stream.expected && stream.id_field.is_some() => {
            serde_json::from_slice::<serde_json::Value>(&answer.body).ok().filter(|v| v.is_object())
        }
        _ => None,
    };
    let mut unidentified = false;
    let (ok, status, write_id, mut error) = match result {
        Ok(answer) if answer.status == stream.expected => match &stream.id_field {
            Some(field) => match request::write_id(&answer.body, field) {
                Ok(id) => (true, Some(answer.status), Some(id), None),
                Err(error) => {
                    unidentified = true;
                    (true, Some(answer.status), None, Some(format!("unverifiable write: {error}")))
                }
            },
            None => (true, Some(answer.status), None, None),
        },
        Ok(answer) => {
            let excerpt: String = String::from_utf8_lossy(&answer.body).chars().take(120).collect();
            let excerpt = excerpt.trim();
            let error = if excerpt.is_empty() {
                format!("status {}, expected {}", answer.status, stream.expected)
            } else {
                format!("status {}, expected {}: {excerpt}", answer.status, stream.expected)
            };
            (false, Some(answer.status), None, Some(error))
        }
        Err(failure) => (false, failure.status, None, Some(failure.message)),
    };
    let late = lateness > LATE_AFTER;
    if late
        && !ok
        && let Some(error) = &mut error
    {
        error.push_str(&format!(
            " (sent {} late)",
            crate::scenario::format_duration(Duration::from_millis(lateness.as_millis() as u64))
        ));
    }
    {
        let mut tally = stream.tally.lock().expect("traffic tally lock poisoned");
        tally.sent += 1;
        tally.late += u64::from(late);
        tally.ok += u64::from(ok);
        tally.unverifiable += u64::from(unidentified);
        if let Some(id) = &write_id {
            tally.writes.push((index, id.clone()));
            tally.records.push((index, id.clone(), acknowledged_record));
        }
    }
    stream.journal.record(EventKind::TrafficRequest {
        traffic: stream.name.clone(),
        scheduled_us: stream.origin_us + scheduled.as_micros() as u64,
        lateness_us: lateness.as_micros() as u64,
        ok,
        status,
        latency_us: latency.as_micros() as u64,
        harness_lag_us: harness_lag.as_micros() as u64,
        sent: true,
        write_id,
        unidentified,
        error,
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

    use super::*;
    use crate::journal::Event;
    use crate::traffic::test_server::{
        Sent, TestServer, fixed_port, handler, journal, keep_time_moving, sent, traffic,
    };

    fn ok_server() -> crate::traffic::test_server::Handler {
        handler(|_| async { (200, r#"{"ok":true}"#.to_owned()) })
    }

    fn started_offset(events: &[Event]) -> u64 {
        let first = events.first().expect("traffic-started");
        assert!(matches!(first.kind, EventKind::TrafficStarted { .. }), "{first:?}");
        first.offset_us
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_the_schedule_and_sends_every_due_request() {
        let _ticker = keep_time_moving();
        let server = TestServer::start(ok_server()).await;
        let journal = journal();
        let handle = start(
            &traffic(100.0, 64),
            fixed_port(server.port),
            journal.clone(),
            request::http_client(),
        );
        clock::sleep(Duration::from_millis(995)).await;
        let stats = handle.stop().await;

        assert_eq!(
            stats,
            TrafficStats {
                sent: 100,
                late: 0,
                ok: 100,
                unsent: 0,
                unverifiable: 0,
                writes: Vec::new(),
                records: Default::default()
            }
        );
        assert_eq!(server.requests(), 100);
        let events = journal.snapshot();
        let origin = started_offset(&events);
        let scheduled: Vec<u64> = sent(&journal).iter().map(|sent| sent.scheduled_us).collect();
        let expected: Vec<u64> = (0..100).map(|i| origin + i * 10_000).collect();
        assert_eq!(scheduled, expected, "one request every 10 ms, none skipped or doubled");
        assert!(sent(&journal).iter().all(|sent| sent.ok && sent.status == Some(200)));
        assert!(matches!(
            events.last().unwrap().kind,
            EventKind::TrafficDrained { sent: 100, late: 0, unsent: 0, ok: 100, .. }
        ));
    }

    /// The harness's own stall (here: its only thread blocked, as a starved CPU would) is
    /// recorded as harness lag and never counted as the service's latency.
    #[tokio::test(flavor = "current_thread")]
    async fn a_stalled_harness_records_its_own_lag_and_the_service_is_not_blamed() {
        let server = TestServer::start(ok_server()).await;
        let journal = journal();
        let handle = start(
            &traffic(100.0, 64),
            fixed_port(server.port),
            journal.clone(),
            request::http_client(),
        );
        clock::sleep(Duration::from_millis(100)).await;
        #[expect(
            clippy::disallowed_methods,
            reason = "the stall under test, not a readiness wait"
        )]
        std::thread::sleep(Duration::from_millis(150));
        clock::sleep(Duration::from_millis(100)).await;
        handle.stop().await;

        let sent = sent(&journal);
        assert!(sent.iter().all(|s| s.ok), "{sent:?}");
        let lagged: Vec<&Sent> = sent.iter().filter(|s| s.harness_lag_us >= 100_000).collect();
        assert!(!lagged.is_empty(), "the stall shows as harness lag: {sent:?}");
        for s in &lagged {
            assert!(s.latency_us >= s.harness_lag_us, "{s:?}");
            // What is left is the service's answer time, on loopback: far below the stall.
            assert!(s.latency_us - s.harness_lag_us < 100_000, "{s:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_server_with_one_slot_makes_requests_late_but_none_skipped() {
        let _ticker = keep_time_moving();
        // The first five requests take 30 ms each; at 100/s with one slot, the requests behind
        // them queue up, go out late, and the backlog drains once answers are quick again.
        let count = Arc::new(AtomicUsize::new(0));
        let server = TestServer::start(handler(move |_| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 5 {
                    clock::sleep(Duration::from_millis(30)).await;
                }
                (200, "{}".to_owned())
            }
        }))
        .await;
        let journal = journal();
        let handle = start(
            &traffic(100.0, 1),
            fixed_port(server.port),
            journal.clone(),
            request::http_client(),
        );
        clock::sleep(Duration::from_millis(395)).await;
        let stats = handle.stop().await;

        let sent = sent(&journal);
        let origin = started_offset(&journal.snapshot());
        let scheduled: Vec<u64> = sent.iter().map(|sent| sent.scheduled_us).collect();
        assert_eq!(scheduled, (0..40).map(|i| origin + i * 10_000).collect::<Vec<_>>());
        assert_eq!((stats.sent, stats.ok, stats.unsent), (40, 40, 0));
        // Request k (k < 5) cannot go out before the k slow answers before it: k × 30 ms, so
        // it is at least k × 20 ms late.
        for (k, sent) in sent.iter().enumerate().take(5) {
            assert!(sent.lateness_us >= k as u64 * 20_000, "request {k}: {sent:?}");
        }
        assert!(sent[5].lateness_us >= 100_000, "{:?}", sent[5]);
        // Once the backlog is gone, requests are on time again.
        assert!(sent[30..].iter().all(|sent| sent.lateness_us <= 1_000), "{:?}", &sent[30..]);
        let late = sent.iter().filter(|sent| sent.lateness_us > 1_000).count() as u64;
        assert!(late >= 14, "{late} late");
        assert_eq!(stats.late, late);
        assert!(matches!(
            journal.snapshot().last().unwrap().kind,
            EventKind::TrafficDrained { sent: 40, late: l, .. } if l == late
        ));
        // Latency runs from the due time: a request that waited for the slot carries its wait.
        for sent in &sent {
            assert!(sent.latency_us >= sent.lateness_us, "{sent:?}");
        }
        assert!(sent[5].latency_us >= 100_000, "{:?}", sent[5]);
    }

    #[tokio::test(start_paused = true)]
    async fn every_request_due_before_the_stop_gets_an_outcome() {
        let _ticker = keep_time_moving();
        let server = TestServer::start(handler(|_| async {
            clock::sleep(Duration::from_millis(95)).await;
            (200, "{}".to_owned())
        }))
        .await;
        let journal = journal();
        let mut spec = traffic(100.0, 1);
        spec.timeout = Duration::from_secs(1);
        let handle = start(&spec, fixed_port(server.port), journal.clone(), request::http_client());
        clock::sleep(Duration::from_millis(255)).await;
        let stats = handle.stop().await;
        // Due: 0, 10, ..., 250 ms (26), each with a deadline 1 s after its due time. One at a
        // time, 95 ms each: request k goes out at ~95k ms, so 0..=10 are answered in time; from
        // 11 on, each gets the slot when the one before gives up at its deadline, 10 ms before
        // its own, and gives up in turn. Before, 23 of these were dropped at the stop.
        let sent = sent(&journal);
        assert_eq!(sent.len(), 26, "one event per due request: {sent:?}");
        assert_eq!((stats.sent, stats.ok, stats.unsent), (26, 11, 0), "{stats:?}");
        assert!(sent[..11].iter().all(|sent| sent.ok && sent.sent));
        for late in &sent[11..] {
            assert!(!late.ok && late.sent, "{late:?}");
            assert!(late.error.as_deref().unwrap().starts_with("no answer within 1s (sent "));
            assert!((1_000_000..1_050_000).contains(&late.latency_us), "{late:?}");
        }
        let kinds: Vec<&str> = journal
            .snapshot()
            .iter()
            .filter_map(|event| match event.kind {
                EventKind::TrafficStopped { due: 26, .. } => Some("stopped"),
                EventKind::TrafficDrained { .. } => Some("drained"),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["stopped", "drained"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_gets_no_slot_before_its_deadline_fails_unsent() {
        let _ticker = keep_time_moving();
        let journal = journal();
        let mut spec = traffic(10.0, 1);
        spec.timeout = Duration::from_millis(300);
        let handle = start(&spec, fixed_port(1), journal.clone(), request::http_client());
        let stream = handle.stream.clone();
        drop(handle);
        // Every slot held past the request's deadline.
        let slots = Arc::new(Semaphore::new(0));
        request(stream.clone(), 7, Duration::from_millis(700), clock::instant_now(), slots).await;
        let sent = sent(&journal);
        assert_eq!(sent.len(), 1);
        assert!(!sent[0].ok && !sent[0].sent && sent[0].status.is_none(), "{:?}", sent[0]);
        assert_eq!(
            sent[0].error.as_deref(),
            Some("not sent: no free slot within 300ms (all 1 in use)")
        );
        assert_eq!((sent[0].latency_us, sent[0].lateness_us), (300_000, 300_000));
        assert_eq!(stream.tally.lock().unwrap().unsent, 1);
    }

    /// A service that stops answering for a while (a frozen process: connections are accepted,
    /// answers come when it thaws), as `pause` makes it.
    fn freezable(
        frozen: Arc<tokio::sync::watch::Sender<bool>>,
    ) -> crate::traffic::test_server::Handler {
        handler(move |_| {
            let mut thawed = frozen.subscribe();
            async move {
                let _ = thawed.wait_for(|frozen| !frozen).await;
                (200, "{}".to_owned())
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_frozen_service_is_an_outage_from_the_due_times_not_hidden_by_busy_slots() {
        let _ticker = keep_time_moving();
        let frozen = Arc::new(tokio::sync::watch::channel(false).0);
        let server = TestServer::start(freezable(frozen.clone())).await;
        let journal = journal();
        let mut spec = traffic(100.0, 2);
        spec.timeout = Duration::from_millis(200);
        let handle = start(&spec, fixed_port(server.port), journal.clone(), request::http_client());
        clock::sleep(Duration::from_millis(300)).await;
        frozen.send_replace(true);
        clock::sleep(Duration::from_millis(1_000)).await;
        frozen.send_replace(false);
        clock::sleep(Duration::from_millis(500)).await;
        let _ = handle.stop().await;

        let sent = sent(&journal);
        let origin = started_offset(&journal.snapshot());
        let at = |sent: &crate::traffic::test_server::Sent| (sent.scheduled_us - origin) / 1_000;
        // Customers arriving while it is frozen, up to 200 ms (their timeout) before it thaws,
        // get nothing in time: every one of them failed. Measured from the send, the requests
        // that waited behind the two stuck slots went out after the thaw and "succeeded".
        let frozen_out: Vec<_> = sent.iter().filter(|s| (310..1_090).contains(&at(s))).collect();
        assert_eq!(frozen_out.len(), 78);
        assert!(frozen_out.iter().all(|s| !s.ok), "{:?}", frozen_out.iter().find(|s| s.ok));
        // Before the freeze and well after the thaw, everything succeeds on time.
        assert!(sent.iter().filter(|s| at(s) < 290 || at(s) >= 1_400).all(|s| s.ok));
        assert_eq!(sent.len(), 181, "every due request, 0 to 1.8 s, has an outcome");
    }

    #[tokio::test(start_paused = true)]
    async fn stop_waits_for_requests_in_flight() {
        let _ticker = keep_time_moving();
        let server = TestServer::start(handler(|_| async {
            clock::sleep(Duration::from_millis(300)).await;
            (200, "{}".to_owned())
        }))
        .await;
        let journal = journal();
        let handle = start(
            &traffic(10.0, 8),
            fixed_port(server.port),
            journal.clone(),
            request::http_client(),
        );
        clock::sleep(Duration::from_millis(150)).await;
        let stopping = clock::instant_now();
        let stats = handle.stop().await;

        // Requests at 0 and 100 ms: the second answers at ~400 ms.
        assert!(clock::instant_now() - stopping >= Duration::from_millis(250));
        assert_eq!((stats.sent, stats.ok), (2, 2));
        let events = journal.snapshot();
        let kinds: Vec<&str> = events
            .iter()
            .map(|event| match event.kind {
                EventKind::TrafficStarted { .. } => "started",
                EventKind::TrafficRequest { .. } => "request",
                EventKind::TrafficStopped { .. } => "stopped",
                EventKind::TrafficDrained { .. } => "drained",
                _ => "other",
            })
            .collect();
        // `traffic-stopped` when scheduling stopped; the requests in flight settle after it.
        assert_eq!(kinds, ["started", "stopped", "request", "request", "drained"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_costs_one_timeout_per_request_and_stop_is_bounded() {
        let _ticker = keep_time_moving();
        let server = TestServer::start(handler(|_| std::future::pending())).await;
        let journal = journal();
        let mut spec = traffic(10.0, 8);
        spec.timeout = Duration::from_millis(200);
        let handle = start(&spec, fixed_port(server.port), journal.clone(), request::http_client());
        clock::sleep(Duration::from_millis(150)).await;
        let stats = handle.stop().await;
        assert_eq!((stats.sent, stats.ok), (2, 0));
        for sent in sent(&journal) {
            assert_eq!(sent.error.as_deref(), Some("no answer within 200ms"));
            assert_eq!(sent.status, None);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_status_and_refused_connections_are_failures_with_reasons() {
        let _ticker = keep_time_moving();
        let server = TestServer::start(handler(|_| async { (503, "db down".to_owned()) })).await;
        let journal = journal();
        let handle = start(
            &traffic(10.0, 8),
            fixed_port(server.port),
            journal.clone(),
            request::http_client(),
        );
        clock::sleep(Duration::from_millis(50)).await;
        assert_eq!(handle.stop().await.ok, 0);
        let failed = sent(&journal).remove(0);
        assert_eq!(failed.status, Some(503));
        assert_eq!(failed.error.as_deref(), Some("status 503, expected 200: db down"));

        let port = server.port;
        server.shutdown().await;
        let journal = crate::traffic::test_server::journal();
        let handle =
            start(&traffic(10.0, 8), fixed_port(port), journal.clone(), request::http_client());
        clock::sleep(Duration::from_millis(50)).await;
        let _ = handle.stop().await;
        let failed = sent(&journal).remove(0);
        assert_eq!(failed.status, None);
        let error = failed.error.unwrap();
        assert!(error.starts_with("connect: ") && error.contains("refused"), "{error}");
    }

    fn movable(port: Arc<AtomicU16>, lookups: Arc<AtomicUsize>) -> PortResolver {
        PortResolver::new(move || {
            let port = port.load(Ordering::SeqCst);
            lookups.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if port == 0 {
                    Err("service `billing` is not running".to_owned())
                } else {
                    Ok(port)
                }
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn follows_the_service_to_its_new_port_with_one_lookup() {
        let _ticker = keep_time_moving();
        let old = TestServer::start(ok_server()).await;
        let port = Arc::new(AtomicU16::new(old.port));
        let lookups = Arc::new(AtomicUsize::new(0));
        let journal = journal();
        let handle = start(
            &traffic(100.0, 4),
            movable(port.clone(), lookups.clone()),
            journal.clone(),
            request::http_client(),
        );
        clock::sleep(Duration::from_millis(300)).await;
        // The container is replaced: the old port closes, the new one is published elsewhere.
        old.shutdown().await;
        let new = TestServer::start(ok_server()).await;
        port.store(new.port, Ordering::SeqCst);
        clock::sleep(Duration::from_millis(500)).await;
        let stats = handle.stop().await;

        assert_eq!(
            lookups.load(Ordering::SeqCst),
            2,
            "one lookup at the start, one after the move"
        );
        let failed = stats.sent - stats.ok;
        assert!((1..=2).contains(&failed), "{failed} failed: {:?}", sent(&journal));
        assert!(new.requests() >= 45, "{}", new.requests());
        let sent = sent(&journal);
        let first_failure = sent.iter().position(|sent| !sent.ok).unwrap();
        assert!(sent[first_failure + 2..].iter().all(|sent| sent.ok));
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_costs_at_most_one_lookup_per_250ms() {
        let _ticker = keep_time_moving();
        let server = TestServer::start(ok_server()).await;
        let port = Arc::new(AtomicU16::new(server.port));
        let lookups = Arc::new(AtomicUsize::new(0));
        let journal = journal();
        let handle = start(
            &traffic(100.0, 4),
            movable(port.clone(), lookups.clone()),
            journal.clone(),
            request::http_client(),
        );
        clock::sleep(Duration::from_millis(100)).await;
        // Stopped for a second: no port at all, then back on a new one.
        server.shutdown().await;
        port.store(0, Ordering::SeqCst);
        clock::sleep(Duration::from_millis(1000)).await;
        let back = TestServer::start(ok_server()).await;
        port.store(back.port, Ordering::SeqCst);
        clock::sleep(Duration::from_millis(500)).await;
        let stats = handle.stop().await;

        let lookups = lookups.load(Ordering::SeqCst);
        // 1 at the start, then at most one per 250 ms of the ~1.25 s until a lookup finds the
        // new port.
        assert!((3..=7).contains(&lookups), "{lookups} lookups");
        let sent = sent(&journal);
        assert!(sent.iter().any(|sent| {
            sent.error.as_deref()
                == Some("no port for the service: service `billing` is not running")
        }));
        assert!(sent[sent.len() - 20..].iter().all(|sent| sent.ok));
        assert_eq!(stats.sent, sent.len() as u64);
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_on_the_same_port_does_not_poison_pooled_connections() {
        let _ticker = keep_time_moving();
        let first = TestServer::start(ok_server()).await;
        let port = first.port;
        let lookups = Arc::new(AtomicUsize::new(0));
        let journal = journal();
        let handle = start(
            &traffic(100.0, 4),
            movable(Arc::new(AtomicU16::new(port)), lookups.clone()),
            journal.clone(),
            request::http_client(),
        );
        clock::sleep(Duration::from_millis(300)).await;
        first.shutdown().await;
        let second = TestServer::start_on(port, ok_server()).await;
        clock::sleep(Duration::from_millis(500)).await;
        let stats = handle.stop().await;

        let failed = stats.sent - stats.ok;
        assert!(failed <= 2, "{failed} failed: {:?}", sent(&journal));
        assert!(second.requests() >= 45, "{}", second.requests());
        let sent = sent(&journal);
        assert!(sent[sent.len() - 40..].iter().all(|sent| sent.ok));
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_handle_aborts_every_task() {
        let _ticker = keep_time_moving();
        let server = TestServer::start(handler(|_| async {
            clock::sleep(Duration::from_secs(1)).await;
            (200, "{}".to_owned())
        }))
        .await;
        let journal = journal();
        let witness = Arc::new(());
        let held = witness.clone();
        let resolve = PortResolver::new(move || {
            let _ = &held;
            let port = server.port;
            Box::pin(async move { Ok(port) })
        });
        let handle = start(&traffic(100.0, 8), resolve, journal.clone(), request::http_client());
        clock::sleep(Duration::from_millis(50)).await;
        drop(handle);
        clock::sleep(Duration::from_millis(20)).await;
        assert_eq!(Arc::strong_count(&witness), 1, "no task holds the stream any more");
        let recorded = journal.len();
        clock::sleep(Duration::from_secs(2)).await;
        assert_eq!(journal.len(), recorded, "{:?}", journal.snapshot());
        assert_eq!(recorded, 1, "only traffic-started");
    }

    #[test]
    fn due_times_do_not_drift() {
        assert_eq!(due_after(29, 100.0), Duration::from_millis(290));
        assert_eq!(due_after(1_000_000, 200.0), Duration::from_secs(5000));
        assert_eq!(due_after(1, 3.0), Duration::from_nanos(333_333_333));
        assert_eq!(due_after(3, 3.0), Duration::from_secs(1));
    }
}
