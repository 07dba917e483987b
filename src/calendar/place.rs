//! Placing weekly windows and blackout days on the calendar: local wall times → instants, with
//! daylight-saving gaps and overlaps resolved by a stated rule and reported in notes.

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::policy::{Blackout, Customer, WeeklyWindow, Zone};
use super::text::local;

/// One window (or the part of it a blackout leaves) placed on the calendar: `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// The first instant inside.
    pub start: Timestamp,
    /// The first instant after it.
    pub end: Timestamp,
    /// How daylight-saving time or blackouts shaped it ("window start 02:30 does not exist …").
    pub notes: Vec<String>,
}

/// Which edge of a window a local time is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    Start,
    End,
}

/// The instant a window edge at local `dt` stands for. A time in a gap (clocks jump forward) is
/// the instant of the jump; a time that occurs twice (clocks go back) is its first occurrence for
/// a start and its second for an end, so a window is never cut short. Either is noted.
fn place_edge(zone: &Zone, dt: DateTime, edge: Edge, notes: &mut Vec<String>) -> Timestamp {
    let tz = zone.tz();
    let what = match edge {
        Edge::Start => "start",
        Edge::End => "end",
    };
    let hhmm = dt.time().strftime("%H:%M");
    match tz.to_ambiguous_zoned(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => {
            offset.to_timestamp(dt).expect("window edges are within jiff's range")
        }
        AmbiguousOffset::Gap { before, after } => {
            // The jump happens at the instant the old offset's clock reaches the gap; `dt` read with
            // the old offset lies at or after it, so the latest transition up to there is it.
            let late = before.to_timestamp(dt).expect("in range");
            let jump = transition_at_or_before(tz, late);
            let jumped_from = before.to_datetime(jump).time().strftime("%H:%M");
            let jumped_to = after.to_datetime(jump).time().strftime("%H:%M");
            notes.push(format!(
                "window {what} {hhmm} does not exist on {} in {} (clocks jump from {jumped_from} \
                 to {jumped_to}); it {}s at {}",
                dt.date(),
                zone.name(),
                if edge == Edge::Start { "start" } else { "end" },
                local(jump, zone),
            ));
            jump
        }
        AmbiguousOffset::Fold { before, after } => {
            let first = before.to_timestamp(dt).expect("in range");
            let second = after.to_timestamp(dt).expect("in range");
            let (first, second) = (first.min(second), first.max(second));
            let (chosen, which) = match edge {
                Edge::Start => (first, "first"),
                Edge::End => (second, "second"),
            };
            notes.push(format!(
                "window {what} {hhmm} occurs twice on {} in {} (clocks go back); it {}s at the \
                 {which}, {}",
                dt.date(),
                zone.name(),
                if edge == Edge::Start { "start" } else { "end" },
                local(chosen, zone),
            ));
            chosen
        }
    }
}

/// The zone's latest transition at or before `at`.
fn transition_at_or_before(tz: &TimeZone, at: Timestamp) -> Timestamp {
    let probe = at.checked_add(SignedDuration::from_nanos(1)).unwrap_or(at);
    tz.preceding(probe)
        .next()
        .map(|transition| transition.timestamp())
        .expect("a gap comes from a transition")
}

/// The instant local day `date` begins in `zone` (midnight, or when the day's first hour
/// exists).
fn start_of_day(zone: &Zone, date: Date) -> Timestamp {
    date.to_zoned(zone.tz().clone())
        .and_then(|z| z.start_of_day())
        .map(|z| z.timestamp())
        .expect("blackout dates are within jiff's range")
}

/// Every instance of `customer`'s windows that overlaps `[from, until)`, sorted by start (not
/// merged, blackouts not applied).
pub fn openings(customer: &Customer, from: Timestamp, until: Timestamp) -> Vec<Opening> {
    let zone = &customer.zone;
    let first_day = from.to_zoned(zone.tz().clone()).date();
    let last_day = until.to_zoned(zone.tz().clone()).date();
    // A window is at most a week long: one that opened up to 8 days before `from` may reach it.
    let monday = |date: Date| {
        date.checked_sub(i64::from(date.weekday().to_monday_zero_offset()).days())
            .expect("in range")
    };
    let mut week = monday(first_day.checked_sub(8.days()).expect("in range"));
    let mut out = Vec::new();
    while week <= last_day {
        for window in &customer.windows {
            if let Some(opening) = instance(zone, window, week) {
                if opening.end > from && opening.start < until {
                    out.push(opening);
                }
            }
        }
        week = week.checked_add(7.days()).expect("in range");
    }
    out.sort_by_key(|o| (o.start, o.end));
    out
}

/// The instance of `window` that opens in the week beginning on Monday `week`.
fn instance(zone: &Zone, window: &WeeklyWindow, week: Date) -> Option<Opening> {
    let open_day =
        week.checked_add(i64::from(window.from.day.to_monday_zero_offset()).days()).ok()?;
    let close_day = open_day.checked_add(window.days().days()).ok()?;
    let mut notes = Vec::new();
    let start = place_edge(zone, open_day.to_datetime(window.from.time), Edge::Start, &mut notes);
    let end = place_edge(zone, close_day.to_datetime(window.to.time), Edge::End, &mut notes);
    // Both edges inside one gap (a window shorter than the jump) leave nothing.
    (end > start).then_some(Opening { start, end, notes })
}

/// The customer's allowed time overlapping `[from, until)`: its windows minus its blackout days,
/// overlapping or touching pieces merged, sorted.
pub fn allowed_openings(customer: &Customer, from: Timestamp, until: Timestamp) -> Vec<Opening> {
    let blocked: Vec<(Timestamp, Timestamp, &Blackout)> = customer
        .blackouts
        .iter()
        .map(|b| {
            let after = b.last.checked_add(1.day()).expect("in range");
            (start_of_day(&customer.zone, b.first), start_of_day(&customer.zone, after), b)
        })
        .collect();
    let mut pieces: Vec<Opening> = Vec::new();
    for opening in openings(customer, from, until) {
        let mut parts = vec![opening];
        for (b_start, b_end, blackout) in &blocked {
            let mut next = Vec::with_capacity(parts.len() + 1);
            for part in parts {
                if *b_end <= part.start || *b_start >= part.end {
                    next.push(part);
                    continue;
                }
                let note = format!(
                    "blackout {blackout} ({}) closes the window {} – {}",
                    customer.zone.name(),
                    local(part.start, &customer.zone),
                    local(part.end, &customer.zone),
                );
                if part.start < *b_start {
                    let mut notes = part.notes.clone();
                    notes.push(note.clone());
                    next.push(Opening { start: part.start, end: *b_start, notes });
                }
                if *b_end < part.end {
                    let mut notes = part.notes.clone();
                    notes.push(note);
                    next.push(Opening { start: *b_end, end: part.end, notes });
                }
            }
            parts = next;
        }
        pieces.extend(parts);
    }
    merge(pieces)
}

/// Merge overlapping or touching openings (sorted by start on return).
pub(super) fn merge(mut pieces: Vec<Opening>) -> Vec<Opening> {
    pieces.sort_by_key(|o| (o.start, o.end));
    let mut out: Vec<Opening> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match out.last_mut() {
            Some(last) if piece.start <= last.end => {
                last.end = last.end.max(piece.end);
                for note in piece.notes {
                    if !last.notes.contains(&note) {
                        last.notes.push(note);
                    }
                }
            }
            _ => out.push(piece),
        }
    }
    out
}
