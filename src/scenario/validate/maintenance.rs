//! `maintenance:` (the policy: customers in their zones, weekly windows, blackout days, the notice
//! lead time) and `calendar:` (the calendar time a rehearsal stands for), and placing every
//! `upgrade` step on that calendar.
//!
//! Placement is the earliest the timeline allows: `calendar.start` (the first step's start) plus
//! `scale` × the declared durations of the steps before it — `wait`, the `for` of container
//! actions and faults, an upgrade's `watch.for`, a `parallel` group's longest child (`delay` +
//! its declared duration), a child's own `delay`. Everything else (bring-up, probes, Docker,
//! health waits) counts as zero, so a run can only place an upgrade later, never earlier.

use std::time::Duration;

use jiff::civil::{Date, DateTime};
use jiff::tz::AmbiguousOffset;

use super::walk::Walk;
use crate::calendar::{
    self, Blackout, Calendar, Customer, CustomerState, NoticeRule, Policy, Scale, SentNotice,
    WeekTime, WeeklyWindow, Zone,
};
use crate::scenario::duration;
use crate::scenario::model::{Action, Step};
use crate::scenario::report::Span;
use crate::scenario::tree::{Node, Value};

/// Keys of `maintenance`.
pub(super) const MAINTENANCE_KEYS: &[&str] = &["customers", "windows", "blackouts", "notice"];
/// Keys of a customer.
const CUSTOMER_KEYS: &[&str] = &["zone", "windows", "blackouts"];
/// Keys of `calendar`.
pub(super) const CALENDAR_KEYS: &[&str] = &["start", "scale"];
const WINDOW_HINT: &str = "write a window as `{ from: Sat 22:00, to: Sun 06:00 }`";
const BLACKOUT_HINT: &str =
    "write a day as `2026-12-24` or a range as `{ from: 2026-12-24, to: 2026-12-26 }`";

impl Walk<'_> {
    /// `maintenance:`, every customer with the policy's defaults applied.
    pub(super) fn maintenance(&mut self, node: &Node) -> Option<Policy> {
        let at = self.r.head(node);
        let fields = self.r.fields(
            node,
            at,
            "`maintenance`",
            "a mapping with `customers`, `windows`, `blackouts` and `notice`",
            MAINTENANCE_KEYS,
        )?;
        let windows = fields.get("windows").map(|node| self.windows(node));
        let blackouts = match fields.get("blackouts") {
            Some(node) => self.blackouts(node),
            None => Some(Vec::new()),
        };
        let notice = fields.get("notice").map(|node| self.notice(node));
        let customers = self.r.require(&fields, "customers").and_then(|node| {
            let Value::Map(entries) = &node.value else {
                self.r
                    .wrong_type(node, "a mapping of customer names to `{ zone: … }`")
                    .help("customers: { acme: { zone: Europe/Berlin } }");
                return None;
            };
            if entries.is_empty() {
                self.r.error(node.span, "`customers` is empty", "no customer").help(
                    "name at least one customer and its zone: `acme: { zone: Europe/Berlin }`",
                );
                return None;
            }
            let mut customers = Some(Vec::with_capacity(entries.len()));
            for entry in entries {
                let customer = self.customer(&entry.key, &entry.value, windows.as_ref());
                match (&mut customers, customer) {
                    (Some(list), Some(customer)) => list.push(customer),
                    _ => customers = None,
                }
            }
            customers
        });
        let mut customers = customers?;
        let defaults = blackouts?;
        for customer in &mut customers {
            customer.blackouts.extend(defaults.iter().copied());
        }
        let notice = match notice {
            Some(notice) => Some(notice?),
            None => None,
        };
        if let Some(Some(_)) | None = windows { Some(Policy { customers, notice }) } else { None }
    }

    fn customer(
        &mut self,
        key: &Node,
        value: &Node,
        defaults: Option<&Option<Vec<WeeklyWindow>>>,
    ) -> Option<Customer> {
        let name = match key.scalar() {
            Some(scalar) if !scalar.text.trim().is_empty() => Some(scalar.text.clone()),
            _ => {
                let span = self.r.head(key);
                self.r.error(span, "expected a customer name", "not a name");
                None
            }
        };
        let label = format!("customer `{}`", name.as_deref().unwrap_or("?"));
        let at = self.r.head(value);
        let fields = self.r.fields(
            value,
            at,
            &label,
            "a mapping such as `{ zone: Europe/Berlin }`",
            CUSTOMER_KEYS,
        )?;
        let zone = self.r.require(&fields, "zone").and_then(|node| self.zone(node));
        let windows = match (fields.get("windows"), defaults) {
            (Some(node), _) => self.windows(node),
            (None, Some(defaults)) => defaults.clone(),
            (None, None) => {
                self.r.error(at, format!("{label} has no maintenance window"), "no window").help(
                    format!(
                        "give `maintenance.windows` (for every customer) or the customer's own \
                         `windows`; {WINDOW_HINT}"
                    ),
                );
                None
            }
        };
        let blackouts = match fields.get("blackouts") {
            Some(node) => self.blackouts(node),
            None => Some(Vec::new()),
        };
        Some(Customer { name: name?, zone: zone?, windows: windows?, blackouts: blackouts? })
    }

    fn zone(&mut self, node: &Node) -> Option<Zone> {
        let text = self.r.non_empty_text(node, "a time zone such as `Europe/Berlin`")?;
        match Zone::get(text.trim()) {
            Ok(zone) => Some(zone),
            Err(why) => {
                self.r
                    .error(node.span, why, "not a time zone")
                    .help("use an IANA zone name such as `Europe/Berlin` or `America/New_York`");
                None
            }
        }
    }

    fn windows(&mut self, node: &Node) -> Option<Vec<WeeklyWindow>> {
        let items = self.r.list(node, "a list of windows")?;
        if items.is_empty() {
            self.r.error(node.span, "`windows` is empty", "no window").help(WINDOW_HINT);
            return None;
        }
        let mut out = Some(Vec::with_capacity(items.len()));
        for item in items {
            let at = self.r.head(item);
            let window = self
                .r
                .fields(item, at, "a window", "a window `{ from: Sat 22:00, to: Sun 06:00 }`", &["from", "to"])
                .and_then(|fields| {
                    let from = self.r.require(&fields, "from").and_then(|n| self.week_time(n));
                    let to = self.r.require(&fields, "to").and_then(|n| self.week_time(n));
                    let window = WeeklyWindow { from: from?, to: to? };
                    if window.from == window.to {
                        self.r
                            .error(at, format!("the window opens and closes at {}", window.from), "empty window")
                            .help("a window needs a length; to allow any time, leave `maintenance` out");
                        return None;
                    }
                    Some(window)
                });
            match (&mut out, window) {
                (Some(out), Some(window)) => out.push(window),
                _ => out = None,
            }
        }
        out
    }

    fn week_time(&mut self, node: &Node) -> Option<WeekTime> {
        let text = self.r.text(node, "a weekday and a time such as `Sat 22:00`")?;
        match WeekTime::parse(&text) {
            Ok(time) => Some(time),
            Err(why) => {
                self.r
                    .error(node.span, format!("invalid window time `{text}`"), why)
                    .help(WINDOW_HINT);
                None
            }
        }
    }

    fn blackouts(&mut self, node: &Node) -> Option<Vec<Blackout>> {
        let items = self.r.list(node, "a list of blackout days")?;
        let mut out = Some(Vec::with_capacity(items.len()));
        for item in items {
            let blackout = if let Value::Map(_) = &item.value {
                let at = self.r.head(item);
                self.r
                    .fields(
                        item,
                        at,
                        "a blackout range",
                        "a range `{ from: DAY, to: DAY }`",
                        &["from", "to"],
                    )
                    .and_then(|fields| {
                        let first = self.r.require(&fields, "from").and_then(|n| self.date(n));
                        let last = self.r.require(&fields, "to").and_then(|n| self.date(n));
                        let (first, last) = (first?, last?);
                        if last < first {
                            self.r
                                .error(
                                    at,
                                    format!(
                                        "the blackout ends ({last}) before it begins ({first})"
                                    ),
                                    "reversed range",
                                )
                                .help(BLACKOUT_HINT);
                            return None;
                        }
                        Some(Blackout { first, last })
                    })
            } else {
                self.date(item).map(|day| Blackout { first: day, last: day })
            };
            match (&mut out, blackout) {
                (Some(out), Some(blackout)) => out.push(blackout),
                _ => out = None,
            }
        }
        out
    }

    fn date(&mut self, node: &Node) -> Option<Date> {
        let text = self.r.text(node, "a date such as `2026-12-24`")?;
        match text.trim().parse::<Date>() {
            Ok(date) if text.trim().len() == 10 => match supported_year(date.year()) {
                Ok(()) => Some(date),
                Err(why) => {
                    self.r
                        .error(node.span, format!("date `{text}` is out of range"), why)
                        .help(BLACKOUT_HINT);
                    None
                }
            },
            _ => {
                self.r
                    .error(node.span, format!("invalid date `{text}`"), "expected YYYY-MM-DD")
                    .help(BLACKOUT_HINT);
                None
            }
        }
    }

    /// `notice: 72h` or `notice: { lead-time: 72h, channels: [email, status] }`.
    fn notice(&mut self, node: &Node) -> Option<NoticeRule> {
        if node.scalar().is_some() {
            return self
                .r
                .duration(node)
                .map(|lead_time| NoticeRule { lead_time, channels: Vec::new() });
        }
        let at = self.r.head(node);
        let fields = self.r.fields(
            node,
            at,
            "`notice`",
            "a lead time (`72h`) or `{ lead-time: 72h, channels: [email] }`",
            &["lead-time", "channels"],
        )?;
        let lead_time = self.r.require(&fields, "lead-time").and_then(|n| self.r.duration(n));
        let channels = match fields.get("channels") {
            Some(node) => self.r.list(node, "a list of channel names").and_then(|items| {
                let names: Vec<_> = items
                    .iter()
                    .map(|item| self.r.non_empty_text(item, "a channel name"))
                    .collect();
                names.into_iter().collect::<Option<Vec<_>>>()
            }),
            None => Some(Vec::new()),
        };
        Some(NoticeRule { lead_time: lead_time?, channels: channels? })
    }

    /// `calendar: { start: 2026-12-05T21:50 Europe/Berlin, scale: 1s = 10m }`.
    pub(super) fn calendar(&mut self, node: &Node) -> Option<Calendar> {
        let at = self.r.head(node);
        let fields = self.r.fields(
            node,
            at,
            "`calendar`",
            "a mapping such as `{ start: 2026-12-05T21:50 Europe/Berlin, scale: 1s = 10m }`",
            CALENDAR_KEYS,
        )?;
        let start = self.r.require(&fields, "start").and_then(|n| self.calendar_start(n));
        let scale = match fields.get("scale") {
            Some(node) => self.scale(node),
            None => Some(Scale::REAL_TIME),
        };
        Some(Calendar { start: start?, scale: scale? })
    }

    fn calendar_start(&mut self, node: &Node) -> Option<jiff::Zoned> {
        let text =
            self.r.text(node, "a local time and zone such as `2026-12-05T21:50 Europe/Berlin`")?;
        match parse_start(&text) {
            Ok(start) => Some(start),
            Err((message, help)) => {
                self.r.error(node.span, message, "not a calendar time").help(help);
                None
            }
        }
    }

    /// `scale: 600` or `scale: 1s = 10m`.
    fn scale(&mut self, node: &Node) -> Option<Scale> {
        let text = self.r.text(node, "a scale such as `1s = 10m` or `600`")?;
        match parse_scale(&text) {
            Ok(scale) => Some(scale),
            Err(why) => {
                self.r
                    .error(node.span, format!("invalid scale `{text}`"), why)
                    .help("write how much calendar time one rehearsal second stands for: `1s = 10m`, or the factor: `600`");
                None
            }
        }
    }

    /// `[{ sent: 2026-12-02T09:00:00Z, channels: [email, status] }, …]`.
    pub(super) fn notices(&mut self, node: &Node) -> Option<Vec<SentNotice>> {
        let items = self.r.list(node, "a list of notices `{ sent: TIME, channels: [...] }`")?;
        let mut out = Some(Vec::with_capacity(items.len()));
        for item in items {
            let at = self.r.head(item);
            let notice = self
                .r
                .fields(
                    item,
                    at,
                    "a notice",
                    "a notice `{ sent: TIME, channels: [email] }`",
                    &["sent", "channels"],
                )
                .and_then(|fields| {
                    let sent = self.r.require(&fields, "sent").and_then(|node| {
                        let text = self.r.text(node, "a time such as `2026-12-02T09:00:00Z`")?;
                        match parse_instant(&text) {
                            Ok(sent) => Some(sent),
                            Err((message, help)) => {
                                self.r.error(node.span, message, "not a time").help(help);
                                None
                            }
                        }
                    });
                    let channels = self.r.require(&fields, "channels").and_then(|node| {
                        let items = self.r.list(node, "a list of channel names")?;
                        let names: Vec<_> = items
                            .iter()
                            .map(|i| self.r.non_empty_text(i, "a channel name"))
                            .collect();
                        names.into_iter().collect::<Option<Vec<_>>>()
                    });
                    Some(SentNotice { sent: sent?, channels: channels? })
                });
            match (&mut out, notice) {
                (Some(out), Some(notice)) => out.push(notice),
                _ => out = None,
            }
        }
        out
    }

    /// Fail every upgrade step that the timeline places outside the policy's windows.
    pub(super) fn place_upgrades(
        &mut self,
        policy: &Policy,
        calendar: &Calendar,
        steps: &[Step],
        spans: &[Span],
        calendar_span: Span,
    ) {
        for placed in placements(steps) {
            let span = spans.get(placed.top).copied().unwrap_or(calendar_span);
            let at = calendar.at(placed.offset);
            let decision = calendar::decide(policy, at.timestamp());
            if decision.allowed {
                continue;
            }
            let start_zone = Zone::from_tz(at.time_zone().clone());
            let when = calendar::local_with_zone(at.timestamp(), &start_zone);
            let mut help = vec![format!(
                "the timeline starts it at {when} at the earliest: {} after `calendar.start`, \
                 {} of calendar time at {} (waits, `for` durations and upgrade watches count)",
                duration::format(placed.offset),
                calendar_duration(calendar.scale.to_calendar(placed.offset)),
                scale_text(&calendar.scale),
            )];
            for customer in &decision.customers {
                let local = calendar::local(at.timestamp(), &customer.zone);
                let state = match customer.state {
                    CustomerState::Inside => "inside a window".to_owned(),
                    CustomerState::Outside => "outside every window".to_owned(),
                    CustomerState::Blackout(b) => format!("on blackout {b}"),
                };
                let next = match &customer.next {
                    Some(next) => {
                        format!("next window {}", calendar::local(next.start, &customer.zone))
                    }
                    None => "no window in the next 800 days".to_owned(),
                };
                help.push(format!(
                    "{} ({}): {local} is {state}; {next}",
                    customer.name,
                    customer.zone.name()
                ));
            }
            match &decision.next {
                Some(next) => {
                    let moved = next.start.duration_since(at.timestamp());
                    help.push(format!(
                        "the next time allowed for every customer is {}: move `calendar.start` \
                         {} later",
                        calendar::local_with_zone(next.start, &start_zone),
                        calendar_duration(Duration::try_from(moved).unwrap_or_default()),
                    ));
                    help.extend(next.notes.iter().cloned());
                }
                None => help.push("no time within the next 800 days suits every customer".into()),
            }
            self.r
                .error(
                    span,
                    format!("upgrade `{}` falls outside the maintenance windows", placed.name),
                    format!("starts {}", calendar::local(at.timestamp(), &start_zone)),
                )
                .help(help.join("\n"));
        }
    }
}

/// An upgrade step placed on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placed {
    /// The step's name.
    pub name: String,
    /// Index of the top-level step it is (or is in).
    pub top: usize,
    /// The earliest offset from the timeline's start.
    pub offset: Duration,
}

/// Every upgrade step with the earliest offset the timeline allows (module docs: what counts).
pub(crate) fn placements(steps: &[Step]) -> Vec<Placed> {
    let mut out = Vec::new();
    let mut offset = Duration::ZERO;
    for (top, step) in steps.iter().enumerate() {
        collect(step, top, offset, &mut out);
        offset += declared(&step.action);
    }
    out
}

fn collect(step: &Step, top: usize, offset: Duration, out: &mut Vec<Placed>) {
    match &step.action {
        Action::Upgrade(_) => out.push(Placed { name: step.name.clone(), top, offset }),
        Action::Parallel(children) => {
            for child in children {
                collect(&child.step, top, offset + child.delay, out);
            }
        }
        _ => {}
    }
}

/// The time a step takes at the least, by what it declares.
fn declared(action: &Action) -> Duration {
    match action {
        Action::Wait(wait) => *wait,
        Action::Container(container) => container.undo_after.unwrap_or_default(),
        Action::Fault(fault) => fault.duration,
        Action::Upgrade(upgrade) => upgrade.watch.as_ref().map(|w| w.duration).unwrap_or_default(),
        Action::Parallel(children) => children
            .iter()
            .map(|child| child.delay + declared(&child.step.action))
            .max()
            .unwrap_or_default(),
        // An outage with `for` ends when its step ends; calls and markers take no declared time.
        Action::SinkOutage(outage) => outage.duration.unwrap_or_default(),
        Action::LinkFault(fault) => fault.duration,
        Action::Probe(_)
        | Action::Rollback { .. }
        | Action::Call(_)
        | Action::Mark
        | Action::KillProcess(_) => Duration::ZERO,
    }
}

/// `2026-12-05T21:50 Europe/Berlin`, `2026-10-25T02:30+01:00 Europe/Berlin`, or RFC 9557
/// `2026-12-05T21:50[Europe/Berlin]`. A local time that does not exist or occurs twice in the
/// zone is an error (with an offset, an ambiguous time is settled).
pub(crate) fn parse_start(text: &str) -> Result<jiff::Zoned, (String, String)> {
    let zoned = parse_start_anywhen(text)?;
    supported_year(zoned.year()).map_err(|why| {
        (format!("`{}` is out of range: {why}", text.trim()), "use a date in that range".into())
    })?;
    Ok(zoned)
}

/// The years calendar times and dates may fall in: the policy arithmetic (weeks before and after,
/// a year of windows ahead) stays far inside jiff's range (years -9999 to 9999).
pub(crate) const SUPPORTED_YEARS: std::ops::RangeInclusive<i16> = 1900..=2999;

/// `Ok` for a year in [`SUPPORTED_YEARS`], else why not.
fn supported_year(year: i16) -> Result<(), String> {
    if SUPPORTED_YEARS.contains(&year) {
        Ok(())
    } else {
        Err(format!("years {} to {} are supported", SUPPORTED_YEARS.start(), SUPPORTED_YEARS.end()))
    }
}

fn parse_start_anywhen(text: &str) -> Result<jiff::Zoned, (String, String)> {
    let hint = "write a local time and an IANA zone: `2026-12-05T21:50 Europe/Berlin`".to_owned();
    let text = text.trim();
    let (datetime, zone) = if let Some((datetime, rest)) = text.split_once('[') {
        (datetime.trim(), rest.trim_end_matches(']').trim())
    } else if let Some((datetime, zone)) = text.split_once(char::is_whitespace) {
        (datetime.trim(), zone.trim())
    } else {
        return Err((format!("`{text}` has no time zone"), hint));
    };
    let zone = Zone::get(zone).map_err(|why| (why, hint.clone()))?;
    // jiff's civil parser skips an offset; one written settles a repeated local time.
    let has_offset =
        datetime.rfind('T').is_some_and(|t| datetime[t..].contains(['+', '-', 'Z', 'z']));
    if let Ok(civil) = datetime.parse::<DateTime>().ok().filter(|_| !has_offset).ok_or(()) {
        let ambiguous = zone.tz().to_ambiguous_zoned(civil);
        return match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { .. } => {
                ambiguous.unambiguous().map_err(|e| (e.to_string(), hint))
            }
            AmbiguousOffset::Gap { .. } => Err((
                format!("{datetime} does not exist in {} (the clocks jump over it)", zone.name()),
                "pick a time outside the daylight-saving gap".to_owned(),
            )),
            AmbiguousOffset::Fold { before, after } => Err((
                format!("{datetime} occurs twice in {} (the clocks go back)", zone.name()),
                format!(
                    "say which with its offset: `{datetime}{before} {name}` or \
                     `{datetime}{after} {name}`",
                    name = zone.name()
                ),
            )),
        };
    }
    format!("{datetime}[{}]", zone.name())
        .parse::<jiff::Zoned>()
        .map_err(|e| (format!("invalid calendar time `{text}`: {e}"), hint))
}

/// An instant: RFC 3339 (`2026-12-02T09:00:00Z`, `2026-12-02T10:00:00+01:00`) or a local time
/// and zone as [`parse_start`] reads it.
pub(crate) fn parse_instant(text: &str) -> Result<jiff::Timestamp, (String, String)> {
    match text.trim().parse::<jiff::Timestamp>() {
        Ok(at) => {
            let year = at.to_zoned(jiff::tz::TimeZone::UTC).year();
            supported_year(year).map_err(|why| {
                (
                    format!("`{}` is out of range: {why}", text.trim()),
                    "use a time in that range".into(),
                )
            })?;
            Ok(at)
        }
        Err(_) => parse_start(text).map(|zoned| zoned.timestamp()).map_err(|(message, help)| {
            (message, format!("{help}, or an RFC 3339 time such as `2026-12-02T09:00:00Z`"))
        }),
    }
}

/// `600` (one rehearsal second stands for 600) or `1s = 10m`.
pub(crate) fn parse_scale(text: &str) -> Result<Scale, String> {
    let text = text.trim();
    if let Ok(factor) = text.parse::<u64>() {
        if factor == 0 {
            return Err("the factor must be at least 1".into());
        }
        if factor > MAX_SCALE {
            return Err(format!("the factor must be at most {MAX_SCALE}"));
        }
        return Ok(Scale {
            rehearsal: Duration::from_secs(1),
            calendar: Duration::from_secs(factor),
        });
    }
    let Some((rehearsal, calendar)) = text.split_once('=') else {
        return Err("expected `REHEARSAL = CALENDAR` or a factor".into());
    };
    let rehearsal = duration::parse(rehearsal.trim())?;
    let calendar = duration::parse(calendar.trim())?;
    if calendar.as_nanos() > rehearsal.as_nanos().saturating_mul(u128::from(MAX_SCALE)) {
        return Err(format!("one rehearsal second may stand for at most {MAX_SCALE} s"));
    }
    Ok(Scale { rehearsal, calendar })
}

/// The largest calendar scale (1 s of rehearsal = about 11.6 days): beyond it a short rehearsal
/// lands years away and the placement arithmetic leaves any useful range.
const MAX_SCALE: u64 = 1_000_000;

/// `1s = 10m`.
fn scale_text(scale: &Scale) -> String {
    format!("{} = {}", duration::format(scale.rehearsal), calendar_duration(scale.calendar))
}

/// Calendar durations in days, hours and minutes: `4d 11h 30m`.
fn calendar_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let parts =
        [(secs / 86_400, "d"), (secs / 3600 % 24, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")];
    let text: Vec<String> =
        parts.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}{unit}")).collect();
    if text.is_empty() { "0s".into() } else { text.join(" ") }
}

impl Walk<'_> {
    /// With a notice rule and a calendar: every upgrade needs a `maintenance-notice` check, and its
    /// `lead-time` (rehearsal time, scaled to calendar time) must meet the rule.
    pub(super) fn check_notices(
        &mut self,
        rule: &crate::calendar::NoticeRule,
        calendar: &crate::calendar::Calendar,
        upgrades: &[String],
        expect: &[crate::scenario::model::Expectation],
        expect_spans: &[Span],
        calendar_span: Span,
    ) {
        use crate::scenario::model::ExpectationKind;
        for step in upgrades {
            let notices: Vec<(usize, &crate::scenario::model::MaintenanceNotice)> = expect
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match &e.kind {
                    ExpectationKind::MaintenanceNotice(n) if n.before == *step => Some((i, n)),
                    _ => None,
                })
                .collect();
            if notices.is_empty() {
                self.r
                    .error(
                        calendar_span,
                        format!(
                            "the policy requires {} of notice, and no `maintenance-notice` checks \
                             the upgrade `{step}`",
                            crate::calendar::format_lead(rule.lead_time)
                        ),
                        "notice not rehearsed",
                    )
                    .help(format!(
                        "add `- maintenance-notice: {{ before: {step}, channels: [...], lead-time: \
                         ... }}` to `expect`"
                    ));
            }
            for (index, notice) in notices {
                let lead = calendar.scale.to_calendar(notice.lead_time);
                if let Err(reason) = crate::calendar::check_lead_time(rule, lead) {
                    let span = expect_spans.get(index).copied().unwrap_or(calendar_span);
                    self.r.error(span, reason, "lead time too short").help(
                        "raise `lead-time` (rehearsal time; the calendar's scale turns it into \
                         calendar time) and leave that long between the notice and the upgrade",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn calendar_starts_parse_and_refuse_dst_trouble() {
        let start = parse_start("2026-12-05T21:50 Europe/Berlin").unwrap();
        assert_eq!(start.timestamp().to_string(), "2026-12-05T20:50:00Z");
        let bracket = parse_start("2026-12-05T21:50[Europe/Berlin]").unwrap();
        assert_eq!(bracket, start);
        let (gap, _) = parse_start("2026-03-29T02:30 Europe/Berlin").unwrap_err();
        assert_eq!(
            gap,
            "2026-03-29T02:30 does not exist in Europe/Berlin (the clocks jump over it)"
        );
        let (fold, hint) = parse_start("2026-10-25T02:30 Europe/Berlin").unwrap_err();
        assert!(fold.contains("occurs twice"), "{fold}");
        assert!(hint.contains("`2026-10-25T02:30+02 Europe/Berlin`"), "{hint}");
        let second = parse_start("2026-10-25T02:30+01:00 Europe/Berlin").unwrap();
        assert_eq!(second.timestamp().to_string(), "2026-10-25T01:30:00Z");
        assert!(parse_start("2026-10-25T02:30+05:00 Europe/Berlin").is_err());
        assert!(parse_start("2026-12-05T21:50").is_err());
        assert!(parse_start("2026-12-05T21:50 Mars/Olympus").is_err());
    }

    #[test]
    fn scales_read_both_ways() {
        assert_eq!(
            parse_scale("600").unwrap().to_calendar(Duration::from_secs(2)),
            Duration::from_secs(1200)
        );
        assert_eq!(parse_scale("1s = 10m").unwrap(), parse_scale("600").unwrap());
        assert_eq!(parse_scale("100ms=1m").unwrap().factor(), 600.0);
        assert!(parse_scale("0").is_err());
        assert!(parse_scale("1s = soon").is_err());
        assert_eq!(
            calendar_duration(Duration::from_secs(4 * 86_400 + 11 * 3600 + 1800)),
            "4d 11h 30m"
        );
    }

    fn parse(rest: &str) -> Result<crate::scenario::Scenario, Vec<(String, Option<String>)>> {
        let source = format!(
            "name: t\nstack:\n  services:\n    billing: {{ image: \"b:1\", ports: [8080] }}\n{rest}"
        );
        crate::scenario::parse(&source, Path::new("t.yaml")).map_err(|invalid| {
            invalid.diagnostics.into_iter().map(|d| (d.message, d.help)).collect()
        })
    }

    const POLICY: &str = "maintenance:
  windows: [{ from: Sat 22:00, to: Sun 06:00 }]
  notice: { lead-time: 72h, channels: [email] }
  blackouts: [2026-12-24, { from: 2026-12-31, to: 2027-01-01 }]
  customers:
    acme: { zone: Europe/Berlin }
    globex:
      zone: America/New_York
      windows: [{ from: Sat 14:00, to: Sun 02:00 }]
      blackouts: [2026-11-26]
";

    #[test]
    fn a_policy_without_a_calendar_is_rejected() {
        let problems = parse(POLICY).unwrap_err();
        assert_eq!(
            problems.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(),
            ["`maintenance:` without `calendar:` would never be checked"]
        );
    }

    #[test]
    fn policies_get_their_defaults() {
        let scenario =
            parse(&format!("{POLICY}calendar: {{ start: 2026-12-05T21:50 Europe/Berlin }}\n"))
                .unwrap();
        let policy = scenario.maintenance.unwrap();
        let acme = &policy.customers[0];
        assert_eq!(acme.windows[0].to_string(), "Sat 22:00 – Sun 06:00");
        assert_eq!(acme.blackouts.len(), 2);
        let globex = &policy.customers[1];
        assert_eq!(globex.windows[0].to_string(), "Sat 14:00 – Sun 02:00");
        assert_eq!(globex.blackouts.len(), 3, "its own and the policy's");
        assert_eq!(policy.notice.unwrap().lead_time, Duration::from_secs(72 * 3600));
    }

    #[test]
    fn upgrades_are_placed_after_declared_durations() {
        let steps = "steps:
  - wait: 10s
  - kill: { service: billing, for: 5s }
  - parallel:
      - wait: 3s
      - { delay: 2s, upgrade: { service: billing, image: \"b:2\" } }
  - name: second
    upgrade: { service: billing, image: \"b:3\", watch: { for: 4s, traffic: t, availability: 99% } }
  - name: third
    upgrade: { service: billing, image: \"b:4\" }
";
        let traffic = "traffic:\n  t: { http: { service: billing, port: 8080 }, rate: 1/s }\n";
        let scenario = parse(&format!("{traffic}{steps}")).unwrap();
        let placed: Vec<_> = placements(&scenario.steps)
            .into_iter()
            .map(|p| (p.name, p.top, p.offset.as_secs()))
            .collect();
        assert_eq!(
            placed,
            [("upgrade billing".into(), 2, 17), ("second".into(), 3, 18), ("third".into(), 4, 22)]
        );
    }

    #[test]
    fn an_upgrade_outside_the_windows_names_every_customer_and_the_next_window() {
        // Tue 2026-12-08 09:50 in Berlin; the upgrade comes 10 calendar minutes later.
        let source = format!(
            "{POLICY}calendar: {{ start: 2026-12-08T09:50 Europe/Berlin, scale: 1s = 10m }}
steps:
  - wait: 1s
  - upgrade: {{ service: billing, image: \"b:2\" }}
"
        );
        let problems = parse(&source).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        // The policy's 72 h notice is not rehearsed: no `maintenance-notice` for the upgrade.
        assert!(problems[0].0.starts_with("the policy requires 72h of notice"), "{problems:?}");
        let (message, help) = &problems[1];
        assert_eq!(message, "upgrade `upgrade billing` falls outside the maintenance windows");
        let help = help.as_deref().unwrap();
        for line in [
            "acme (Europe/Berlin): Tue 2026-12-08 10:00 CET is outside every window; next window Sat 2026-12-12 22:00 CET",
            "globex (America/New_York): Tue 2026-12-08 04:00 EST is outside every window; next window Sat 2026-12-12 14:00 EST",
            "the next time allowed for every customer is Sat 2026-12-12 22:00 CET (Europe/Berlin): move `calendar.start` 4d 12h later",
        ] {
            assert!(help.lines().any(|l| l == line), "missing {line:?} in\n{help}");
        }
    }

    #[test]
    fn mistakes_are_all_reported() {
        let problems = parse(
            "maintenance:
  windows: [{ from: Sat 22:00, to: Saturday 22:00 }, { from: Sat 25:00, to: Sun 06:00 }]
  blackouts: [2026-13-01, { from: 2026-12-31, to: 2026-12-01 }]
  customers:
    acme: { zone: Europe/Berln }
calendar: { start: 2026-03-29T02:30 Europe/Berlin, scale: fast }
",
        )
        .unwrap_err();
        let messages: Vec<_> = problems.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "the window opens and closes at Sat 22:00",
                "invalid window time `Sat 25:00`",
                "invalid date `2026-13-01`",
                "the blackout ends (2026-12-01) before it begins (2026-12-31)",
                "unknown time zone `Europe/Berln`",
                "2026-03-29T02:30 does not exist in Europe/Berlin (the clocks jump over it)",
                "invalid scale `fast`",
            ]
        );
    }
}
