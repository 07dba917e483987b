//! Maintenance windows, blackout dates, notice lead times and the rehearsal calendar: pure
//! functions of a [`Policy`] and an instant. No I/O, no clock (callers pass "now"), no async.
//!
//! A leaf: it depends on `jiff` only, so `scenario` (validation places upgrade steps on the
//! calendar), `checks` (places the actual upgrades) and `cli` (`firedrill gate`) all use it without
//! an arrow between them. DESIGN.md put this policy under `clock`; it lives beside it because
//! `scenario`, which depends on nothing else, needs it too.
//!
//! Semantics (README, "Choices made"):
//! - A window is weekly, in a customer's own time zone: `Sat 22:00` to `Sun 06:00` local time.
//! - A deployment at `t` is allowed when, for **every** customer, `t` is inside one of that
//!   customer's windows and not on one of that customer's blackout days (whole local days).
//! - Daylight-saving time: a window edge at a local time that does not exist (spring forward)
//!   is placed at the instant the clocks jump; an edge at a local time that occurs twice (fall
//!   back) opens at the first occurrence and closes at the second, so a window is never cut
//!   short. Every such placement carries a note saying so.

mod decide;
mod notice;
mod place;
mod policy;
mod text;

pub use decide::{CustomerDecision, CustomerState, Decision, decide, is_allowed, next_allowed};
pub use notice::{NoticeDecision, SentNotice, check_lead_time, check_notices, format_lead};
pub use place::{Opening, allowed_openings, openings};
pub use policy::{
    Blackout, Calendar, Customer, NoticeRule, Policy, Scale, WeekTime, WeeklyWindow, Zone,
};
pub use text::{local, local_with_zone};

/// How far ahead the next window is looked for: blackouts may cover months.
pub const HORIZON_DAYS: i64 = 800;
