//! The open-loop generator: one scheduler task per stream hands each due request to a task of
//! its own, bounded by `concurrency` slots.
//!
//! Lateness is measured, not hidden: request `i` is due at `origin + i / rate` on tokio's clock,
//! and its lateness is the time from then to the moment it is handed to the HTTP client (after a
//! free slot and a known port). The scheduler never skips: when every slot is busy it waits for
//! one, sends the overdue request, and immediately looks at the next due time, which may also
//! have passed. The journal offset of each due time is computed from the `traffic-started`
//! event's offset, so `scheduled-us` is exact and request 0 is due when the stream started.

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
    /// Requests that were due before the stop but were still waiting for a free slot when it
    /// came: not sent, and not part of `sent`.
    pub unsent: u64,
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
    scheduler: Option<JoinHandle<u64>>,
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
    /// Stop scheduling, wait for the requests in flight (each bounded by the request timeout),
    /// record `traffic-stopped`, and return what the stream did.
    ///
    /// Dropping this future before it completes aborts the requests still in flight.
    pub async fn stop(mut self) -> TrafficStats {
        self.cancel.cancel();
        let unsent = match self.scheduler.take() {
            Some(scheduler) => {
                let mut scheduler = AbortOnDrop(scheduler);
                match (&mut scheduler.0).await {
                    Ok(unsent) => unsent,
                    Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                    Err(_) => 0,
                }
            }
            None => 0,
        };
        let stats = {
            let tally = self.stream.tally.lock().expect("traffic tally lock poisoned");
            TrafficStats {
                sent: tally.sent,
                late: tally.late,
                ok: tally.ok,
                unsent,
                writes: tally.writes(),
                records: {
                    let mut records = tally.records.clone();
                    records.sort_by_key(|(index, ..)| *index);
                    records.into_iter().map(|(_, id, record)| (id, record)).collect()
                },
            }
        };
        self.stream.journal.record(EventKind::TrafficStopped {
            traffic: self.stream.name.clone(),
            sent: stats.sent,
            late: stats.late,
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
fn due_after(index: u64, rate_per_second: f64) -> Duration {
    Duration::from_nanos((index as f64 * 1e9 / rate_per_second).round() as u64)
}

/// The scheduler: hands each request to its own task when it is due (or, when every slot is
/// busy, as soon as one frees), until cancelled; then waits for the requests in flight. Returns
/// how many requests were due but not sent when it was cancelled.
async fn schedule(
    stream: Arc<Stream>,
    rate_per_second: f64,
    concurrency: usize,
    origin: Instant,
    cancel: CancellationToken,
) -> u64 {
    let mut in_flight = JoinSet::new();
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut index = 0u64;
    if !(rate_per_second.is_finite() && rate_per_second > 0.0) {
        // Validation rejects such a rate; a stream with one sends nothing.
        cancel.cancelled().await;
        return 0;
    }
    loop {
        let scheduled = due_after(index, rate_per_second);
        let due = origin + scheduled;
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            () = sleep_until(due) => {}
        }
        let permit = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            permit = slots.clone().acquire_owned() => permit.expect("the slots are never closed"),
        };
        in_flight.spawn(send(stream.clone(), index, scheduled, due, permit));
        index += 1;
        while let Some(done) = in_flight.try_join_next() {
            propagate_panic(done);
        }
    }
    let elapsed = clock::instant_now().saturating_duration_since(origin);
    let mut unsent = 0;
    while due_after(index + unsent, rate_per_second) <= elapsed {
        unsent += 1;
    }
    while let Some(done) = in_flight.join_next().await {
        propagate_panic(done);
    }
    unsent
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

/// One request (due `scheduled` after the origin, at `due`): wait for a port, send, judge,
/// record one `traffic-request` event.
async fn send(
    stream: Arc<Stream>,
    index: u64,
    scheduled: Duration,
    due: Instant,
    slot: OwnedSemaphorePermit,
) {
    let deadline = clock::instant_now() + stream.timeout;
    let lease = tokio::time::timeout_at(deadline, stream.ports.get()).await;
    let sent_at = clock::instant_now();
    let lateness = sent_at.saturating_duration_since(due);
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
            message: format!(
                "no port for the service within {}",
                crate::scenario::format_duration(stream.timeout)
            ),
            connection: false,
        }),
    };
    let latency = clock::instant_now().saturating_duration_since(sent_at);
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
    let (ok, status, write_id, error) = match result {
        Ok(answer) if answer.status == stream.expected => match &stream.id_field {
            Some(field) => match request::write_id(&answer.body, field) {
                Ok(id) => (true, Some(answer.status), Some(id), None),
                Err(error) => (true, Some(answer.status), None, Some(error)),
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
    {
        let mut tally = stream.tally.lock().expect("traffic tally lock poisoned");
        tally.sent += 1;
        tally.late += u64::from(late);
        tally.ok += u64::from(ok);
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
        write_id,
        error,
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

    use super::*;
    use crate::journal::Event;
    use crate::traffic::test_server::{
        TestServer, fixed_port, handler, journal, keep_time_moving, sent, traffic,
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
            EventKind::TrafficStopped { sent: 100, late: 0, .. }
        ));
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
            EventKind::TrafficStopped { sent: 40, late: l, .. } if l == late
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_still_waiting_for_a_slot_at_stop_are_counted_unsent() {
        let _ticker = keep_time_moving();
        let server = TestServer::start(handler(|_| async {
            clock::sleep(Duration::from_millis(100)).await;
            (200, "{}".to_owned())
        }))
        .await;
        let journal = journal();
        let handle = start(
            &traffic(100.0, 1),
            fixed_port(server.port),
            journal.clone(),
            request::http_client(),
        );
        clock::sleep(Duration::from_millis(255)).await;
        let stats = handle.stop().await;
        // Due: 0, 10, ..., 250 ms (26). Sent one at a time, 100 ms each: at 0, ~100, ~200.
        assert_eq!(stats.sent, 3, "{stats:?}");
        assert_eq!(stats.unsent, 23);
        assert_eq!(stats.late, 2);
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
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["started", "request", "request", "stopped"]);
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
