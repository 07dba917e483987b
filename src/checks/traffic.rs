//! Traffic checks — `slo` and `no-lost-writes` — and the request statistics `restored` shares.
//!
//! Requests are placed in time by when they were **scheduled** (`scheduled-us`), not by when their
//! answer was recorded: the load generator is open-loop, so the schedule is the customers' clock,
//! and a request that waited on a stuck server still belongs to the moment it was due.

use super::{CheckStatus, Evidence, Judged, Span, Timeline, count, format_duration_us};
use crate::journal::{Event, EventKind, Outcome};

/// One `traffic-request` event.
#[derive(Clone, Copy)]
pub(super) struct RequestView<'a> {
    pub(super) event: &'a Event,
    pub(super) scheduled_us: u64,
    pub(super) ok: bool,
    status: Option<u16>,
    /// From the due time to the answer, less the harness's own lag (`harness-lag-us`).
    latency_us: u64,
    /// How late the harness itself was to start it.
    harness_lag_us: u64,
    write_id: Option<&'a str>,
    /// A write answered without a readable id.
    unidentified: bool,
    error: Option<&'a str>,
}

impl RequestView<'_> {
    /// `status 503`, the error, or `ok`.
    fn outcome(&self) -> String {
        match (self.ok, self.error, self.status) {
            (true, _, Some(status)) => format!("status {status}"),
            (true, _, None) => "ok".to_owned(),
            (false, Some(error), _) => error.to_owned(),
            (false, None, Some(status)) => format!("status {status}"),
            (false, None, None) => "failed".to_owned(),
        }
    }
}

/// What a `writes-verified` event says.
struct WritesView<'a> {
    event: &'a Event,
    acknowledged: u64,
    found: u64,
    lost: &'a [String],
    unknown: &'a [String],
    unverifiable: u64,
}

impl<'a> Timeline<'a> {
    /// The requests of `traffic`, ordered by scheduled time (ties in journal order).
    pub(super) fn requests(&self, traffic: &str) -> Vec<RequestView<'a>> {
        let mut requests: Vec<RequestView<'a>> = self
            .events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::TrafficRequest {
                    traffic: name,
                    scheduled_us,
                    ok,
                    status,
                    latency_us,
                    harness_lag_us,
                    write_id,
                    unidentified,
                    error,
                    ..
                } if name == traffic => Some(RequestView {
                    event,
                    scheduled_us: *scheduled_us,
                    ok: *ok,
                    status: *status,
                    // The service's part: the harness's own lateness is never held against it.
                    latency_us: latency_us.saturating_sub(*harness_lag_us),
                    harness_lag_us: *harness_lag_us,
                    unidentified: *unidentified,
                    write_id: write_id.as_deref(),
                    error: error.as_deref(),
                }),
                _ => None,
            })
            .collect();
        requests.sort_by_key(|r| (r.scheduled_us, r.event.seq));
        requests
    }

    /// The `traffic-started` event of `traffic`.
    pub(super) fn traffic_started(&self, traffic: &str) -> Option<&'a Event> {
        self.events.iter().find(
            |e| matches!(&e.kind, EventKind::TrafficStarted { traffic: t, .. } if t == traffic),
        )
    }

    /// The `traffic-stopped` event of `traffic`.
    pub(super) fn traffic_stopped(&self, traffic: &str) -> Option<&'a Event> {
        self.events.iter().find(
            |e| matches!(&e.kind, EventKind::TrafficStopped { traffic: t, .. } if t == traffic),
        )
    }

    /// Every traffic name, in the order the journal first mentions it.
    pub(super) fn traffic_names(&self) -> Vec<&'a str> {
        let mut names: Vec<&'a str> = Vec::new();
        for event in self.events {
            let name = match &event.kind {
                EventKind::TrafficStarted { traffic, .. }
                | EventKind::TrafficRequest { traffic, .. } => traffic.as_str(),
                _ => continue,
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The last `writes-verified` event of `traffic`.
    fn writes_verified(&self, traffic: &str) -> Option<WritesView<'a>> {
        self.events.iter().rev().find_map(|event| match &event.kind {
            EventKind::WritesVerified {
                traffic: t,
                acknowledged,
                found,
                lost,
                unknown,
                unverifiable,
            } if t == traffic => Some(WritesView {
                event,
                acknowledged: *acknowledged,
                found: *found,
                lost,
                unknown,
                unverifiable: *unverifiable,
            }),
            _ => None,
        })
    }
}

/// Successful requests out of all requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rate {
    pub(super) ok: u64,
    pub(super) total: u64,
}

impl Rate {
    pub(super) fn of(requests: &[RequestView<'_>]) -> Rate {
        Rate { ok: requests.iter().filter(|r| r.ok).count() as u64, total: requests.len() as u64 }
    }

    /// The success rate in percent (0 without requests).
    pub(super) fn percent(self) -> f64 {
        if self.total == 0 { 0.0 } else { self.ok as f64 * 100.0 / self.total as f64 }
    }

    /// Whether the rate is at least `percent`. A margin of 1e-9 points absorbs binary rounding
    /// (99.9 is not exactly representable), so 999 of 1000 meets 99.9%.
    pub(super) fn at_least(self, percent: f64) -> bool {
        self.percent() + 1e-9 >= percent
    }

    /// `99.5% (199/200)`.
    pub(super) fn describe(self) -> String {
        format!("{} ({}/{})", format_percent(self.percent()), self.ok, self.total)
    }
}

/// A percentage for people, **truncated** to two decimals so that a figure just below a limit
/// never reads as the limit: `100%`, `99.5%`, `33.33%`, `99.99%` for 99.999.
pub(super) fn format_percent(percent: f64) -> String {
    let hundredths = (percent.max(0.0) * 100.0 + 1e-6).floor() as u64;
    let (whole, fraction) = (hundredths / 100, hundredths % 100);
    if fraction == 0 {
        format!("{whole}%")
    } else {
        let digits = format!("{fraction:02}");
        format!("{whole}.{}%", digits.trim_end_matches('0'))
    }
}

/// The nearest-rank percentile `p` (1..=100) of `sorted` (ascending): the smallest value such
/// that at least `p`% of the values are at or below it, i.e. the value of rank ⌈p/100 · n⌉.
/// `None` without values. With one value, every percentile is that value.
pub(super) fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).clamp(1, n);
    Some(sorted[(rank - 1) as usize])
}

/// One run of consecutive failed requests (by scheduled time).
#[derive(Clone, Copy)]
pub(super) struct Outage<'a> {
    /// The run's first failed request.
    pub(super) first: RequestView<'a>,
    /// The success that ended it; `None` when the window ended first.
    pub(super) ended_by: Option<RequestView<'a>>,
    /// How many requests failed in a row.
    pub(super) failures: usize,
    /// From the first failure's scheduled time to the ending success's, or to the window's end.
    pub(super) length_us: u64,
}

/// The longest run of consecutive failures in `requests` (ordered by scheduled time), measured
/// from its first failure's scheduled time to the scheduled time of the success that ended it, or
/// to `window_end_us` when none did. Ties go to the earliest. `None` when nothing failed.
pub(super) fn longest_outage<'a>(
    requests: &[RequestView<'a>],
    window_end_us: u64,
) -> Option<Outage<'a>> {
    let mut longest: Option<Outage<'a>> = None;
    let mut current: Option<(RequestView<'a>, usize)> = None;
    let mut close = |first: RequestView<'a>, failures, ended_by: Option<RequestView<'a>>| {
        let until = ended_by.map_or(window_end_us.max(first.scheduled_us), |r| r.scheduled_us);
        let outage = Outage {
            first,
            ended_by,
            failures,
            length_us: until.saturating_sub(first.scheduled_us),
        };
        if longest.is_none_or(|l| outage.length_us > l.length_us) {
            longest = Some(outage);
        }
    };
    for request in requests {
        match (&mut current, request.ok) {
            (None, false) => current = Some((*request, 1)),
            (Some((_, failures)), false) => *failures += 1,
            (Some((first, failures)), true) => {
                close(*first, *failures, Some(*request));
                current = None;
            }
            (None, true) => {}
        }
    }
    if let Some((first, failures)) = current {
        close(first, failures, None);
    }
    longest
}

/// The limits of an `slo` entry, durations in µs.
pub(super) struct SloSpec<'s> {
    pub(super) traffic: &'s str,
    pub(super) availability: Option<f64>,
    pub(super) p50_us: Option<u64>,
    pub(super) p95_us: Option<u64>,
    pub(super) p99_us: Option<u64>,
    pub(super) max_outage_us: Option<u64>,
    pub(super) during: Option<&'s str>,
}

/// `slo: { traffic, availability, p50, p95, p99, max-outage, during }`.
///
/// The window is the requests of `traffic` **scheduled** while step `during` ran (from its
/// `step-started` offset, inclusive, to its `step-ended` offset, exclusive), or every request of
/// the traffic without `during`. Over that window:
/// - **availability** = successful requests / all requests, in percent; it meets the limit when
///   at least equal to it;
/// - **p50 / p95 / p99**: latency percentiles of the **successful** requests only (a failure's
///   latency is often a timeout or an instant refusal, which says nothing about service speed),
///   each request's latency measured from its **due** time (the generator's rule: a wait for a
///   free slot counts), by the nearest-rank method (the value of rank ⌈p/100 · n⌉ among the
///   sorted latencies); each meets its limit when at most equal to it. A latency limit with no
///   successful request at all is **not measured**: neither met nor breached. The availability
///   and outage limits speak for a total outage; a verdict resting on an unmeasured latency
///   limit alone is not evaluated (so `expect: breached` on a latency limit alone does not pass
///   on a total outage: what it expected to see, slow answers, was not seen);
/// - **longest outage**: over runs of consecutive failed requests (ordered by scheduled time),
///   the longest span from the run's first failure's scheduled time to the scheduled time of the
///   success that ended it, or to the end of the window (the step's end, or the
///   `traffic-stopped` event) when none did; it meets the limit when at most equal to it.
///
/// Failed when any limit is breached (each breach is listed); passed otherwise. Not evaluated
/// when the window holds no request or the `during` step never ran. An incomplete window — the
/// `during` step never ended or was interrupted, or the whole traffic never stopped (the journal
/// ends first) or some request due at its stop has no outcome (`traffic-stopped`'s `due`) —
/// settles only an outage already longer than its limit (failed; a run of failures still going
/// counts up to the last request seen); otherwise it is not evaluated, since availability and
/// percentiles could still move. Every measured figure is reported either way.
/// Harness lag below this is the timer's ordinary jitter and not worth a word in a verdict.
const HARNESS_LAG_WORTH_SAYING_US: u64 = 10_000;

pub(super) fn slo(journal: &Timeline<'_>, spec: &SloSpec<'_>) -> Judged {
    let traffic = spec.traffic;
    let scope = match spec.during {
        Some(step) => format!("over requests scheduled while `{step}` runs"),
        None => "over the whole traffic".to_owned(),
    };
    let limits = limit_list(spec);
    let expected = if limits.is_empty() {
        format!("`{traffic}` measured {scope} (no limit set)")
    } else {
        format!("`{traffic}` keeps {} {scope}", limits.join(", "))
    };
    let all = journal.requests(traffic);
    let window = match spec.during {
        Some(step) => match journal.step_span(step) {
            Err((summary, evidence)) => {
                return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
                    .with_evidence(evidence);
            }
            Ok(span) => step_window(span, step, &all),
        },
        None => traffic_window(journal, traffic, &all),
    };
    let Window { requests, end_us, evidence: mut window_evidence, incomplete, origin_us, label } =
        window;
    if requests.is_empty() {
        let summary = match (spec.during, incomplete.as_deref()) {
            (Some(step), Some(why)) => {
                format!("no request of `{traffic}` was scheduled while `{step}` ran ({why})")
            }
            (Some(step), None) => {
                format!("no request of `{traffic}` was scheduled while `{step}` ran")
            }
            (None, _) if journal.traffic_started(traffic).is_none() => {
                format!("traffic `{traffic}` never ran")
            }
            (None, _) => format!("traffic `{traffic}` sent no request"),
        };
        return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
            .with_evidence(window_evidence);
    }
    let at = |us: u64| label(us.saturating_sub(origin_us));
    let rate = Rate::of(&requests);
    let mut latencies: Vec<u64> = requests.iter().filter(|r| r.ok).map(|r| r.latency_us).collect();
    latencies.sort_unstable();
    let p = |q| percentile(&latencies, q);
    let outage = longest_outage(&requests, end_us);

    let mut figures = vec![format!("availability {}", rate.describe())];
    if latencies.is_empty() {
        figures.push("no successful request to measure latency".to_owned());
    } else {
        figures.push(format!(
            "latency of the {} successful: p50 {}, p95 {}, p99 {}",
            latencies.len(),
            format_duration_us(p(50).unwrap_or(0)),
            format_duration_us(p(95).unwrap_or(0)),
            format_duration_us(p(99).unwrap_or(0)),
        ));
    }
    figures.push(match outage {
        None => "no failed request".to_owned(),
        Some(outage) => format!(
            "longest outage {} from {} ({} failed in a row{})",
            format_duration_us(outage.length_us),
            at(outage.first.scheduled_us),
            outage.failures,
            if outage.ended_by.is_none() { ", until the window's end" } else { "" }
        ),
    });

    // Each limit set, judged. Only the outage limit can be settled by an incomplete window: an
    // outage already longer than the limit stays so, while availability and percentiles could
    // still move.
    let mut checked: Vec<Judgement> = Vec::new();
    // Latency limits with no successful request to measure: neither met nor breached.
    let mut unmeasured: Vec<String> = Vec::new();
    if let Some(limit) = spec.availability {
        let met = rate.at_least(limit);
        let op = if met { "≥" } else { "<" };
        checked.push(Judgement::new(
            Limit::Availability,
            met,
            format!(
                "availability {} {op} {}",
                format_percent(rate.percent()),
                format_percent(limit)
            ),
        ));
    }
    for (name, q, limit) in
        [("p50", 50, spec.p50_us), ("p95", 95, spec.p95_us), ("p99", 99, spec.p99_us)]
    {
        let Some(limit) = limit else { continue };
        checked.push(match p(q) {
            None => {
                unmeasured.push(format!("{name} not measured: no request succeeded"));
                continue;
            }
            Some(value) => {
                let met = value <= limit;
                let op = if met { "≤" } else { ">" };
                let text = format!(
                    "{name} {} {op} {}",
                    format_duration_us(value),
                    format_duration_us(limit)
                );
                Judgement::new(Limit::Latency, met, text)
            }
        });
    }
    if let Some(limit) = spec.max_outage_us {
        let length = outage.map_or(0, |o| o.length_us);
        let met = length <= limit;
        let op = if met { "≤" } else { ">" };
        checked.push(Judgement::new(
            Limit::Outage,
            met,
            match outage {
                None => "no outage".to_owned(),
                Some(_) => format!(
                    "longest outage {} {op} {}",
                    format_duration_us(length),
                    format_duration_us(limit)
                ),
            },
        ));
    }

    let mut evidence = Vec::new();
    evidence.append(&mut window_evidence);
    if let Some(outage) = outage {
        evidence.push(Evidence::at(
            outage.first.event,
            format!(
                "longest outage starts: request scheduled at {} failed: {}",
                at(outage.first.scheduled_us),
                outage.first.outcome()
            ),
        ));
        if let Some(success) = outage.ended_by {
            evidence.push(Evidence::at(
                success.event,
                format!(
                    "longest outage ends: request scheduled at {} ok",
                    at(success.scheduled_us)
                ),
            ));
        }
    }
    let breached = |limit: Limit| checked.iter().any(|j| j.limit == limit && !j.met);
    if breached(Limit::Latency)
        && let Some(slowest) =
            requests.iter().filter(|r| r.ok).max_by_key(|r| (r.latency_us, u64::MAX - r.event.seq))
    {
        evidence.push(Evidence::at(
            slowest.event,
            format!(
                "slowest successful request: {} (scheduled at {})",
                format_duration_us(slowest.latency_us),
                at(slowest.scheduled_us)
            ),
        ));
    }

    let outage_breached = breached(Limit::Outage);
    let breached: Vec<&str> = checked.iter().filter(|j| !j.met).map(|j| j.text.as_str()).collect();
    let scope_seen = match spec.during {
        Some(step) => format!(
            "{} scheduled while `{step}` ran ({})",
            count(requests.len(), "request"),
            format_duration_us(end_us.saturating_sub(origin_us))
        ),
        None => format!("{} of `{traffic}`", count(requests.len(), "request")),
    };
    let mut observed = format!("{scope_seen}: {}", figures.join("; "));
    // Said out loud: a loaded machine made the harness late, and the figures exclude it.
    let lagged: Vec<u64> = requests
        .iter()
        .map(|r| r.harness_lag_us)
        .filter(|&lag| lag > HARNESS_LAG_WORTH_SAYING_US)
        .collect();
    if let Some(worst) = lagged.iter().max() {
        observed.push_str(&format!(
            "; the harness itself started {} up to {} late (a loaded machine; not counted against \
             the service)",
            count(lagged.len(), "request"),
            format_duration_us(*worst)
        ));
    }
    if !unmeasured.is_empty() {
        observed.push_str(&format!("; {}", unmeasured.join(", ")));
    }
    if let Some(why) = &incomplete {
        if !breached.is_empty() {
            observed.push_str(&format!("; breached so far: {}", breached.join(", ")));
        }
        observed.push_str(&format!(" ({why})"));
    } else if !breached.is_empty() {
        observed.push_str(&format!("; breached: {}", breached.join(", ")));
    }
    let (status, summary) = if let Some(why) = incomplete {
        if outage_breached {
            let outage = breached.last().copied().unwrap_or_default();
            (CheckStatus::Failed, format!("breached: {outage} ({why})"))
        } else {
            (CheckStatus::NotEvaluated, why)
        }
    } else if !breached.is_empty() {
        (CheckStatus::Failed, format!("breached: {}", breached.join(", ")))
    } else if !unmeasured.is_empty() {
        (CheckStatus::NotEvaluated, unmeasured.join(", "))
    } else if checked.is_empty() {
        (CheckStatus::Passed, figures.join("; "))
    } else {
        let met: Vec<&str> = checked.iter().map(|j| j.text.as_str()).collect();
        (CheckStatus::Passed, met.join(", "))
    };
    Judged::new(status, expected, summary, observed).with_evidence(evidence)
}

/// `slo: { ..., expect: breached }`: the same measurement as [`slo`], with the verdict turned
/// around, for a fault the customers' traffic must feel (300 ms of database latency must show
/// in the p99). Passed when at least one limit is breached over a complete window (or an outage
/// already longer than its limit over an incomplete one); failed when every limit held; not
/// evaluated when [`slo`] could not judge. The measured figures are reported either way.
pub(super) fn slo_breached(journal: &Timeline<'_>, spec: &SloSpec<'_>) -> Judged {
    let judged = slo(journal, spec);
    let expected = match judged.expected.strip_prefix(&format!("`{}` keeps ", spec.traffic)) {
        Some(rest) => format!("`{}` breaks at least one of {rest}", spec.traffic),
        None => judged.expected.clone(),
    };
    let (status, summary) = match judged.status {
        CheckStatus::Failed => {
            (CheckStatus::Passed, format!("breached as expected: {}", judged.summary_tail()))
        }
        CheckStatus::Passed => (
            CheckStatus::Failed,
            format!("expected a breach, but every limit held: {}", judged.summary),
        ),
        CheckStatus::NotEvaluated => (CheckStatus::NotEvaluated, judged.summary.clone()),
    };
    Judged { status, summary, expected, ..judged }
}

/// The kinds of `slo` limit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Limit {
    Availability,
    Latency,
    Outage,
}

/// One limit of an `slo`, judged: whether it was met, and how that reads
/// (`availability 97.5% < 99%`).
struct Judgement {
    limit: Limit,
    met: bool,
    text: String,
}

impl Judgement {
    fn new(limit: Limit, met: bool, text: String) -> Self {
        Judgement { limit, met, text }
    }
}

/// `availability ≥ 99.9%`, `p99 ≤ 250ms`, `longest outage ≤ 2s`.
fn limit_list(spec: &SloSpec<'_>) -> Vec<String> {
    let mut limits = Vec::new();
    if let Some(limit) = spec.availability {
        limits.push(format!("availability ≥ {}", format_percent(limit)));
    }
    for (name, limit) in [("p50", spec.p50_us), ("p95", spec.p95_us), ("p99", spec.p99_us)] {
        if let Some(limit) = limit {
            limits.push(format!("{name} ≤ {}", format_duration_us(limit)));
        }
    }
    if let Some(limit) = spec.max_outage_us {
        limits.push(format!("longest outage ≤ {}", format_duration_us(limit)));
    }
    limits
}

/// The requests an `slo` judges, and what bounds them.
struct Window<'a> {
    requests: Vec<RequestView<'a>>,
    /// Where an outage still running at the end stops counting.
    end_us: u64,
    evidence: Vec<Evidence>,
    /// Why the window cannot settle the check, when it cannot.
    incomplete: Option<String>,
    /// Times in texts are relative to this offset.
    origin_us: u64,
    /// How a relative time reads: `+3.2s`, `3.2s into `upgrade``.
    label: Box<dyn Fn(u64) -> String + 'a>,
}

fn step_window<'a>(span: Span<'a>, step: &str, all: &[RequestView<'a>]) -> Window<'a> {
    let from = span.start.offset_us;
    let (end_us, incomplete) = match &span.end {
        Some(end) if end.outcome != Outcome::Interrupted => (end.event.offset_us, None),
        Some(end) => (end.event.offset_us, Some(format!("`{step}` was interrupted"))),
        None => (u64::MAX, Some(format!("`{step}` never ended"))),
    };
    let requests: Vec<RequestView<'a>> =
        all.iter().filter(|r| (from..end_us).contains(&r.scheduled_us)).copied().collect();
    // A step that never ended: an outage still running counts up to the last request seen.
    let end_us =
        if span.end.is_none() { requests.last().map_or(from, |r| r.scheduled_us) } else { end_us };
    let owned = step.to_owned();
    Window {
        requests,
        end_us,
        evidence: span.evidence(step),
        incomplete,
        origin_us: from,
        label: Box::new(move |us| format!("{} into `{owned}`", format_duration_us(us))),
    }
}

fn traffic_window<'a>(
    journal: &Timeline<'a>,
    traffic: &str,
    all: &[RequestView<'a>],
) -> Window<'a> {
    let mut evidence = Vec::new();
    if let Some(started) = journal.traffic_started(traffic) {
        evidence.push(Evidence::at(started, format!("`{traffic}` started")));
    }
    let stopped = journal.traffic_stopped(traffic);
    let (end_us, incomplete) = match stopped {
        Some(stopped) => {
            evidence.push(Evidence::at(stopped, format!("`{traffic}` stopped")));
            let due = match &stopped.kind {
                EventKind::TrafficStopped { due, .. } => *due,
                _ => 0,
            };
            // `traffic-stopped` is recorded when scheduling stops; the requests due by then
            // settle after it. A journal that ends first misses some of their outcomes.
            let missing = due.saturating_sub(all.len() as u64);
            let incomplete = (missing > 0).then(|| {
                format!(
                    "{missing} of the {due} requests due before `{traffic}` stopped have no \
                     outcome in the journal"
                )
            });
            (stopped.offset_us, incomplete)
        }
        None => (
            all.last().map_or(0, |r| r.scheduled_us),
            Some(format!("`{traffic}` never stopped: the journal ends before the traffic did")),
        ),
    };
    Window {
        requests: all.to_vec(),
        end_us,
        evidence,
        incomplete,
        origin_us: 0,
        label: Box::new(|us| format!("+{}", format_duration_us(us))),
    }
}

/// How many lost ids a verdict names.
const LISTED_IDS: usize = 10;

/// `no-lost-writes: { traffic }`.
///
/// Judged on the traffic's `writes-verified` event (the last one, should there be several): every
/// write the service acknowledged was read back at the end of the run. Failed when any id is
/// **lost** (the read-back said it is gone), and also when any is **unknown** (its read-back
/// failed for another reason, e.g. a timeout) or unaccounted for (`found` + lost + unknown falls
/// short of `acknowledged`): an acknowledged write that cannot be shown to exist is not proven
/// kept, and the rehearsal's point is the proof. Failed too when any write was **unverifiable**:
/// answered with the expected status but without a readable id (no JSON, no id field), so it
/// cannot be read back at all; nothing shows the service kept it, so it is never counted as
/// verified. The summary names lost ids before unknown ones, at most ten of each. Not evaluated
/// without a `writes-verified` event (the run ended before the read-back) or when no write was
/// answered at all (nothing was put to the test).
///
/// Evidence: the `writes-verified` event, the requests that acknowledged the first ten lost ids
/// and the first ten unverifiable writes, so the report shows when in the run they were made.
pub(super) fn no_lost_writes(journal: &Timeline<'_>, traffic: &str) -> Judged {
    let expected = format!("every write `{traffic}` acknowledged is read back at the end");
    let Some(verified) = journal.writes_verified(traffic) else {
        let summary = format!("the writes of `{traffic}` were never verified");
        let observed = format!(
            "{summary}: no `writes-verified` event (the run ended before the read-back, or the \
             traffic has no `verify-writes`)"
        );
        return Judged::new(CheckStatus::NotEvaluated, expected, summary, observed);
    };
    let acknowledged = verified.acknowledged;
    let unverifiable = verified.unverifiable;
    if acknowledged == 0 && unverifiable == 0 {
        let summary = format!("`{traffic}` had no acknowledged write to verify");
        let evidence = vec![Evidence::at(verified.event, "0 writes acknowledged")];
        return Judged::new(CheckStatus::NotEvaluated, expected, summary.clone(), summary)
            .with_evidence(evidence);
    }
    let lost = verified.lost;
    let unknown = verified.unknown;
    let accounted = verified.found + lost.len() as u64 + unknown.len() as u64;
    let unaccounted = acknowledged.saturating_sub(accounted);
    let mut problems = Vec::new();
    if !lost.is_empty() {
        problems.push(format!(
            "{} of {acknowledged} acknowledged writes lost: {}",
            lost.len(),
            list_ids(lost)
        ));
    }
    if !unknown.is_empty() {
        problems.push(format!(
            "{} of {acknowledged} could not be read back (unverifiable): {}",
            unknown.len(),
            list_ids(unknown)
        ));
    }
    if unaccounted > 0 {
        problems.push(format!("{unaccounted} of {acknowledged} unaccounted for"));
    }
    if unverifiable > 0 {
        problems.push(format!(
            "{} unverifiable: answered without a readable id, so never read back",
            count(unverifiable as usize, "write")
        ));
    }
    let mut note = format!("{acknowledged} acknowledged, {} found", verified.found);
    if !lost.is_empty() {
        note.push_str(&format!(", lost: {}", list_ids(lost)));
    }
    if !unknown.is_empty() {
        note.push_str(&format!(", unknown: {}", list_ids(unknown)));
    }
    if unverifiable > 0 {
        note.push_str(&format!(", {unverifiable} without an id"));
    }
    let mut evidence = vec![Evidence::at(verified.event, note)];
    if problems.is_empty() {
        let summary = format!("all {acknowledged} acknowledged writes read back");
        return Judged::new(CheckStatus::Passed, expected, summary.clone(), summary)
            .with_evidence(evidence);
    }
    let requests = journal.requests(traffic);
    for id in lost.iter().take(LISTED_IDS) {
        if let Some(request) = requests.iter().find(|r| r.write_id == Some(id.as_str())) {
            evidence.push(Evidence::at(
                request.event,
                format!(
                    "write `{id}` acknowledged (request scheduled at +{})",
                    format_duration_us(request.scheduled_us)
                ),
            ));
        }
    }
    for request in requests.iter().filter(|r| r.unidentified).take(LISTED_IDS) {
        evidence.push(Evidence::at(
            request.event,
            format!(
                "unverifiable write (request scheduled at +{}): {}",
                format_duration_us(request.scheduled_us),
                request.error.unwrap_or("no readable id")
            ),
        ));
    }
    let summary = problems[0].clone();
    let observed = format!("{}; {} found", problems.join("; "), verified.found);
    Judged::new(CheckStatus::Failed, expected, summary, observed).with_evidence(evidence)
}

/// `` `a`, `b`, `c` `` — at most ten, then `and N more`.
fn list_ids(ids: &[String]) -> String {
    let mut listed: Vec<String> = ids.iter().take(LISTED_IDS).map(|id| format!("`{id}`")).collect();
    if ids.len() > LISTED_IDS {
        listed.push(format!("and {} more", ids.len() - LISTED_IDS));
    }
    listed.join(", ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fixtures::*;
    use super::*;
    use crate::checks::CheckStatus::{Failed, NotEvaluated, Passed};
    use crate::checks::evaluate;
    use crate::scenario::model::ExpectationKind;

    const STEP: &str = "upgrade billing";

    fn slo(
        availability: Option<f64>,
        p95_ms: Option<u64>,
        max_outage_ms: Option<u64>,
        during: Option<&str>,
    ) -> ExpectationKind {
        ExpectationKind::Slo {
            traffic: "orders".into(),
            availability,
            p50: None,
            p95: p95_ms.map(Duration::from_millis),
            p99: None,
            max_outage: max_outage_ms.map(Duration::from_millis),
            during: during.map(Into::into),
            expect_breach: false,
        }
    }

    /// 100 requests of `orders`, one every 100 ms from 1 s, the i-th taking i+1 ms; started at
    /// 900 ms, stopped at 11 s.
    fn hundred(ok: impl Fn(u64) -> bool) -> Vec<(u64, EventKind)> {
        hundred_with(ok, |i| i + 1)
    }

    fn hundred_with(
        ok: impl Fn(u64) -> bool,
        latency: impl Fn(u64) -> u64,
    ) -> Vec<(u64, EventKind)> {
        let mut timeline = vec![(900, traffic_started("orders"))];
        timeline.extend(requests("orders", 1_000, 11_000, 100, ok, latency));
        timeline.push((11_000, traffic_stopped("orders")));
        timeline
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        for p in [1, 50, 95, 99, 100] {
            assert_eq!(percentile(&[7], p), Some(7), "p{p} of one value");
        }
        let hundred: Vec<u64> = (1..=100).collect();
        let at = |p| percentile(&hundred, p);
        assert_eq!(
            (at(1), at(50), at(95), at(99), at(100)),
            (Some(1), Some(50), Some(95), Some(99), Some(100))
        );
        let ten: Vec<u64> = (1..=10).collect();
        assert_eq!(
            (percentile(&ten, 50), percentile(&ten, 95), percentile(&ten, 99)),
            (Some(5), Some(10), Some(10))
        );
        assert_eq!((percentile(&[1, 2], 50), percentile(&[1, 2], 51)), (Some(1), Some(2)));
    }

    #[test]
    fn percentages_are_truncated_never_rounded_up() {
        let cases = [
            (100.0, "100%"),
            (99.5, "99.5%"),
            (99.999, "99.99%"),
            (100.0 / 3.0, "33.33%"),
            (200.0 / 3.0, "66.66%"),
            (99.9, "99.9%"),
            (0.0, "0%"),
            (-0.5, "0%"),
        ];
        for (percent, text) in cases {
            assert_eq!(format_percent(percent), text, "{percent}");
        }
        assert!(Rate { ok: 999, total: 1000 }.at_least(99.9));
        assert!(!Rate { ok: 998, total: 1000 }.at_least(99.9));
    }

    #[test]
    fn slo_over_the_whole_traffic() {
        check_cases(
            slo(Some(99.0), Some(100), Some(1_000), None),
            vec![
                case(
                    "every request ok and fast",
                    Passed,
                    "availability 100% ≥ 99%, p95 95ms ≤ 100ms, no outage",
                    hundred(|_| true),
                )
                .observed(
                    "100 requests of `orders`: availability 100% (100/100); latency of the 100 \
                     successful: p50 50ms, p95 95ms, p99 99ms; no failed request",
                ),
                case(
                    "one failure in a hundred meets 99%",
                    Passed,
                    "availability 99% ≥ 99%, p95 96ms ≤ 100ms, longest outage 100ms ≤ 1s",
                    hundred(|i| i != 30),
                ),
                case(
                    "two failures in a hundred breach 99%",
                    Failed,
                    "breached: availability 98% < 99%",
                    hundred(|i| i != 30 && i != 60),
                ),
                case(
                    "slow requests breach p95",
                    Failed,
                    "breached: p95 190ms > 100ms",
                    hundred_with(|_| true, |i| (i + 1) * 2),
                ),
                case(
                    "the harness's own lag is not the service's latency",
                    Passed,
                    "availability 100% ≥ 99%, p95 95ms ≤ 100ms, no outage",
                    hundred(|_| true)
                        .into_iter()
                        .map(|(at, mut kind)| {
                            // Every request held 400 ms by a starved harness before it went out.
                            if let EventKind::TrafficRequest {
                                latency_us, harness_lag_us, ..
                            } = &mut kind
                            {
                                *latency_us += 400_000;
                                *harness_lag_us = 400_000;
                            }
                            (at, kind)
                        })
                        .collect(),
                ),
                case(
                    "failed requests' latency does not count",
                    Passed,
                    "availability 99% ≥ 99%, p95 95ms ≤ 100ms, longest outage 100ms ≤ 1s",
                    hundred_with(|i| i != 99, |i| if i == 99 { 2_000 } else { i + 1 }),
                ),
                case(
                    "an outage in the middle, from the first failure to the next success",
                    Failed,
                    "breached: availability 85% < 99%, longest outage 1.5s > 1s",
                    hundred(|i| !(40..55).contains(&i)),
                )
                .observed(
                    "100 requests of `orders`: availability 85% (85/100); latency of the 85 \
                     successful: p50 58ms, p95 96ms, p99 100ms; longest outage 1.5s from +5s (15 \
                     failed in a row); breached: availability 85% < 99%, longest outage 1.5s > 1s",
                ),
                case(
                    "an outage at the window's end lasts until the traffic stopped",
                    Failed,
                    "breached: availability 88% < 99%, longest outage 1.2s > 1s",
                    hundred(|i| i < 88),
                )
                .observed(
                    "100 requests of `orders`: availability 88% (88/100); latency of the 88 \
                     successful: p50 44ms, p95 84ms, p99 88ms; longest outage 1.2s from +9.8s (12 \
                     failed in a row, until the window's end); breached: availability 88% < 99%, \
                     longest outage 1.2s > 1s",
                ),
                case(
                    "nothing succeeded",
                    Failed,
                    "breached: availability 0% < 99%, longest outage 10s > 1s",
                    hundred(|_| false),
                ),
                case(
                    "a single request",
                    Passed,
                    "availability 100% ≥ 99%, p95 40ms ≤ 100ms, no outage",
                    vec![
                        (900, traffic_started("orders")),
                        (1_000, request("orders", 1_000, true, 40)),
                        (2_000, traffic_stopped("orders")),
                    ],
                )
                .observed(
                    "1 request of `orders`: availability 100% (1/1); latency of the 1 successful: \
                     p50 40ms, p95 40ms, p99 40ms; no failed request",
                ),
                case(
                    "other traffic does not count",
                    Passed,
                    "availability 100% ≥ 99%, p95 95ms ≤ 100ms, no outage",
                    {
                        let mut timeline = hundred(|_| true);
                        timeline.push((11_000, request("reports", 10_950, false, 1)));
                        timeline
                    },
                ),
                case(
                    "no request",
                    NotEvaluated,
                    "traffic `orders` sent no request",
                    vec![(900, traffic_started("orders")), (2_000, traffic_stopped("orders"))],
                ),
                case("the traffic never ran", NotEvaluated, "traffic `orders` never ran", vec![]),
                case(
                    "the journal ends before every request due at the stop settled",
                    NotEvaluated,
                    "2 of the 100 requests due before `orders` stopped have no outcome in the \
                     journal",
                    {
                        let mut timeline = hundred(|i| i != 30);
                        timeline.pop();
                        timeline.truncate(timeline.len() - 2);
                        timeline.push((
                            11_000,
                            EventKind::TrafficStopped { traffic: "orders".into(), due: 100 },
                        ));
                        timeline
                    },
                ),
                case(
                    "the traffic never stopped",
                    NotEvaluated,
                    "`orders` never stopped: the journal ends before the traffic did",
                    {
                        let mut timeline = hundred(|i| i != 30 && i != 60);
                        timeline.pop();
                        timeline
                    },
                )
                .observed(
                    "100 requests of `orders`: availability 98% (98/100); latency of the 98 \
                     successful: p50 50ms, p95 96ms, p99 100ms; longest outage 100ms from +4s (1 \
                     failed in a row); breached so far: availability 98% < 99% (`orders` never \
                     stopped: the journal ends before the traffic did)",
                ),
                case(
                    "the traffic never stopped, but an outage already breached its limit",
                    Failed,
                    "breached: longest outage 1.1s > 1s (`orders` never stopped: the journal ends \
                     before the traffic did)",
                    {
                        let mut timeline = hundred(|i| i < 88);
                        timeline.pop();
                        timeline
                    },
                ),
            ],
        );
    }

    #[test]
    fn slo_during_a_step() {
        // The step runs from 3 s to 6 s: requests scheduled at 3.0 s .. 5.9 s count.
        let with_step = |ok: fn(u64) -> bool, end: Option<EventKind>| {
            let mut timeline = hundred(ok);
            timeline.push((3_000, started(1, STEP)));
            if let Some(end) = end {
                timeline.push((6_000, end));
            }
            sorted(timeline)
        };
        check_cases(
            slo(Some(99.0), None, Some(400), Some(STEP)),
            vec![
                case(
                    "failures outside the step do not count",
                    Passed,
                    "availability 100% ≥ 99%, no outage",
                    with_step(
                        |i| (20..50).contains(&i) || !(10..70).contains(&i) && i % 2 == 0,
                        Some(ended(1, STEP)),
                    ),
                )
                .observed(
                    "30 requests scheduled while `upgrade billing` ran (3s): availability 100% \
                     (30/30); latency of the 30 successful: p50 35ms, p95 49ms, p99 50ms; no \
                     failed request",
                ),
                case(
                    "the request due at the step's start counts",
                    Failed,
                    "breached: availability 96.66% < 99%",
                    with_step(|i| 1_000 + i * 100 != 3_000, Some(ended(1, STEP))),
                ),
                case(
                    "the request due at the step's end does not",
                    Passed,
                    "availability 100% ≥ 99%, no outage",
                    with_step(|i| 1_000 + i * 100 != 6_000, Some(ended(1, STEP))),
                ),
                case(
                    "an outage still running at the step's end stops there",
                    Failed,
                    "breached: availability 83.33% < 99%, longest outage 500ms > 400ms",
                    with_step(|i| 1_000 + i * 100 < 5_500, Some(ended(1, STEP))),
                )
                .observed(
                    "30 requests scheduled while `upgrade billing` ran (3s): availability 83.33% \
                     (25/30); latency of the 25 successful: p50 33ms, p95 44ms, p99 45ms; longest \
                     outage 500ms from 2.5s into `upgrade billing` (5 failed in a row, until the \
                     window's end); breached: availability 83.33% < 99%, longest outage 500ms > \
                     400ms",
                ),
                case(
                    "the step never ran",
                    NotEvaluated,
                    "`upgrade billing` never ran",
                    hundred(|_| true),
                ),
                case(
                    "the step never ended",
                    NotEvaluated,
                    "`upgrade billing` never ended",
                    with_step(|i| i != 40, None),
                ),
                case(
                    "the step was interrupted",
                    NotEvaluated,
                    "`upgrade billing` was interrupted",
                    with_step(
                        |_| true,
                        Some(ended_with(1, STEP, crate::journal::Outcome::Interrupted, None)),
                    ),
                ),
                case(
                    "no request while the step ran",
                    NotEvaluated,
                    "no request of `orders` was scheduled while `upgrade billing` ran",
                    vec![(3_000, started(1, STEP)), (6_000, ended(1, STEP))],
                ),
            ],
        );
    }

    #[test]
    fn slo_expected_to_be_breached() {
        // The i-th request takes (i+1) ms; the step covers requests 20..50 (21..50 ms).
        let with_step = |end: Option<EventKind>| {
            let mut timeline = hundred(|_| true);
            timeline.push((3_000, started(1, STEP)));
            if let Some(end) = end {
                timeline.push((6_000, end));
            }
            sorted(timeline)
        };
        let breached = |p95_ms: u64| {
            let ExpectationKind::Slo { traffic, p95, during, .. } =
                slo(None, Some(p95_ms), None, Some(STEP))
            else {
                unreachable!()
            };
            ExpectationKind::Slo {
                traffic,
                availability: None,
                p50: None,
                p95,
                p99: None,
                max_outage: None,
                during,
                expect_breach: true,
            }
        };
        check_cases(
            breached(40),
            vec![case(
                "a breach is what was asked for",
                Passed,
                "breached as expected: p95 49ms > 40ms",
                with_step(Some(ended(1, STEP))),
            )],
        );
        check_cases(
            breached(60),
            vec![
                case(
                    "every limit held",
                    Failed,
                    "expected a breach, but every limit held: p95 49ms ≤ 60ms",
                    with_step(Some(ended(1, STEP))),
                ),
                case(
                    "an unfinished window settles nothing",
                    NotEvaluated,
                    "`upgrade billing` never ended",
                    with_step(None),
                ),
            ],
        );
        let verdict =
            evaluate(&scenario(vec![breached(40)]), &journal(&with_step(Some(ended(1, STEP)))))
                .remove(0);
        assert_eq!(
            verdict.expected,
            "`orders` breaks at least one of p95 ≤ 40ms over requests scheduled while `upgrade billing` runs"
        );
    }

    #[test]
    fn a_latency_limit_is_not_measured_during_a_total_outage() {
        // Nothing succeeds while the step runs: there is no latency to compare with 40 ms.
        let outage = || {
            let mut timeline = hundred(|i| !(20..50).contains(&i));
            timeline.push((3_000, started(1, STEP)));
            timeline.push((6_000, ended(1, STEP)));
            sorted(timeline)
        };
        let latency_only = |expect_breach: bool| ExpectationKind::Slo {
            traffic: "orders".into(),
            availability: None,
            p50: None,
            p95: Some(Duration::from_millis(40)),
            p99: None,
            max_outage: None,
            during: Some(STEP.into()),
            expect_breach,
        };
        // Before, "no successful request" counted as a breach: `expect: breached` passed on an
        // outage that showed no slow answer at all.
        check_cases(
            latency_only(true),
            vec![case(
                "expect: breached does not pass on an unmeasured latency",
                NotEvaluated,
                "p95 not measured: no request succeeded",
                outage(),
            )],
        );
        check_cases(
            latency_only(false),
            vec![case(
                "nor does the limit hold",
                NotEvaluated,
                "p95 not measured: no request succeeded",
                outage(),
            )
            .observed(
                "30 requests scheduled while `upgrade billing` ran (3s): availability 0% (0/30); \
                 no successful request to measure latency; longest outage 3s from 0ms into \
                 `upgrade billing` (30 failed in a row, until the window's end); p95 not measured: \
                 no request succeeded",
            )],
        );
        // With an availability limit too, the outage itself is the breach.
        let ExpectationKind::Slo { p95, during, .. } = latency_only(true) else { unreachable!() };
        check_cases(
            ExpectationKind::Slo {
                traffic: "orders".into(),
                availability: Some(99.0),
                p50: None,
                p95,
                p99: None,
                max_outage: None,
                during,
                expect_breach: true,
            },
            vec![case(
                "another limit breached",
                Passed,
                "breached as expected: availability 0% < 99%",
                outage(),
            )],
        );
    }

    #[test]
    fn slo_evidence_points_at_the_longest_outage() {
        let events = journal(&hundred(|i| !(40..55).contains(&i) && i != 70));
        let verdict =
            evaluate(&scenario(vec![slo(None, None, Some(1_000), None)]), &events).remove(0);
        let notes: Vec<&str> = verdict.evidence.iter().map(|e| e.note.as_str()).collect();
        assert_eq!(
            notes,
            vec![
                "`orders` started",
                "longest outage starts: request scheduled at +5s failed: status 503",
                "longest outage ends: request scheduled at +6.5s ok",
                "`orders` stopped",
            ]
        );
        assert_eq!(verdict.expected, "`orders` keeps longest outage ≤ 1s over the whole traffic");
    }

    fn verified(acknowledged: u64, found: u64, lost: &[&str], unknown: &[&str]) -> EventKind {
        EventKind::WritesVerified {
            traffic: "orders".into(),
            acknowledged,
            found,
            lost: lost.iter().map(|s| (*s).to_owned()).collect(),
            unknown: unknown.iter().map(|s| (*s).to_owned()).collect(),
            unverifiable: 0,
        }
    }

    #[test]
    fn no_lost_writes() {
        let many: Vec<String> = (1..=12).map(|i| format!("inv-{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        check_cases(
            ExpectationKind::NoLostWrites { traffic: "orders".into() },
            vec![
                case(
                    "every write read back",
                    Passed,
                    "all 120 acknowledged writes read back",
                    vec![(20_000, verified(120, 120, &[], &[]))],
                ),
                case(
                    "lost writes",
                    Failed,
                    "2 of 120 acknowledged writes lost: `inv-7`, `inv-9`",
                    vec![(20_000, verified(120, 118, &["inv-7", "inv-9"], &[]))],
                )
                .observed("2 of 120 acknowledged writes lost: `inv-7`, `inv-9`; 118 found"),
                case(
                    "at most ten ids are named",
                    Failed,
                    "12 of 120 acknowledged writes lost: `inv-1`, `inv-2`, `inv-3`, `inv-4`, \
                     `inv-5`, `inv-6`, `inv-7`, `inv-8`, `inv-9`, `inv-10`, and 2 more",
                    vec![(20_000, verified(120, 108, &many, &[]))],
                ),
                case(
                    "unverifiable writes fail too",
                    Failed,
                    "1 of 120 could not be read back (unverifiable): `inv-3`",
                    vec![(20_000, verified(120, 119, &[], &["inv-3"]))],
                ),
                case(
                    "lost ones come first",
                    Failed,
                    "1 of 120 acknowledged writes lost: `inv-7`",
                    vec![(20_000, verified(120, 118, &["inv-7"], &["inv-3"]))],
                )
                .observed(
                    "1 of 120 acknowledged writes lost: `inv-7`; 1 of 120 could not be read back \
                     (unverifiable): `inv-3`; 118 found",
                ),
                case(
                    "writes answered without an id are unverifiable and fail",
                    Failed,
                    "3 writes unverifiable: answered without a readable id, so never read back",
                    vec![(
                        20_000,
                        EventKind::WritesVerified {
                            traffic: "orders".into(),
                            acknowledged: 120,
                            found: 120,
                            lost: vec![],
                            unknown: vec![],
                            unverifiable: 3,
                        },
                    )],
                )
                .observed(
                    "3 writes unverifiable: answered without a readable id, so never read back; 120 \
                     found",
                ),
                case(
                    "every write unverifiable",
                    Failed,
                    "5 writes unverifiable: answered without a readable id, so never read back",
                    vec![(
                        20_000,
                        EventKind::WritesVerified {
                            traffic: "orders".into(),
                            acknowledged: 0,
                            found: 0,
                            lost: vec![],
                            unknown: vec![],
                            unverifiable: 5,
                        },
                    )],
                ),
                case(
                    "writes unaccounted for",
                    Failed,
                    "2 of 120 unaccounted for",
                    vec![(20_000, verified(120, 118, &[], &[]))],
                ),
                case(
                    "never verified",
                    NotEvaluated,
                    "the writes of `orders` were never verified",
                    vec![(1_000, request("orders", 1_000, true, 5))],
                ),
                case(
                    "another traffic's verification does not count",
                    NotEvaluated,
                    "the writes of `orders` were never verified",
                    vec![(
                        20_000,
                        EventKind::WritesVerified {
                            traffic: "reports".into(),
                            acknowledged: 3,
                            found: 0,
                            lost: vec!["a".into(), "b".into(), "c".into()],
                            unknown: vec![],
                            unverifiable: 0,
                        },
                    )],
                ),
                case(
                    "nothing acknowledged",
                    NotEvaluated,
                    "`orders` had no acknowledged write to verify",
                    vec![(20_000, verified(0, 0, &[], &[]))],
                ),
            ],
        );
    }

    #[test]
    fn lost_writes_point_at_the_requests_that_made_them() {
        let write = |ms: u64, id: &str| EventKind::TrafficRequest {
            traffic: "orders".into(),
            scheduled_us: ms * 1_000,
            lateness_us: 0,
            ok: true,
            status: Some(201),
            latency_us: 4_000,
            harness_lag_us: 0,
            sent: true,
            unidentified: false,
            write_id: Some(id.into()),
            error: None,
        };
        let events = journal(&[
            (1_000, write(1_000, "inv-1")),
            (3_200, write(3_200, "inv-2")),
            (20_000, verified(2, 1, &["inv-2"], &[])),
        ]);
        let kind = ExpectationKind::NoLostWrites { traffic: "orders".into() };
        let verdict = evaluate(&scenario(vec![kind]), &events).remove(0);
        let notes: Vec<(u64, &str)> =
            verdict.evidence.iter().map(|e| (e.seq, e.note.as_str())).collect();
        assert_eq!(
            notes,
            vec![
                (1, "write `inv-2` acknowledged (request scheduled at +3.2s)"),
                (2, "2 acknowledged, 1 found, lost: `inv-2`"),
            ]
        );
    }
}
