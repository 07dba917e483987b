//! The policy's types: customers in their zones, weekly windows, blackouts, the notice rule, and
//! the rehearsal calendar.

use std::time::Duration;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// `maintenance:`: when deployments are allowed and how early customers must be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Policy {
    /// Every customer, each with its own zone, windows and blackouts (defaults already applied).
    pub customers: Vec<Customer>,
    /// `notice`: the minimum lead time of the maintenance notice, when one is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<NoticeRule>,
}

/// One customer: a deployment must suit every customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Customer {
    /// The key under `customers`.
    pub name: String,
    /// The customer's time zone; windows and blackouts are local to it.
    pub zone: Zone,
    /// The customer's windows (the policy's `windows` unless the customer has its own).
    pub windows: Vec<WeeklyWindow>,
    /// The customer's blackout days (the policy's `blackouts` plus the customer's own).
    pub blackouts: Vec<Blackout>,
}

/// A weekly window, `from` (inclusive) to `to` (exclusive) in local time; it may cross midnight
/// and the end of the week (`Sat 22:00` to `Mon 02:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyWindow {
    /// Where it opens.
    pub from: WeekTime,
    /// Where it closes.
    pub to: WeekTime,
}

impl WeeklyWindow {
    /// Whole days from the opening day to the closing day (0 to 7; 7 when `to` is the same
    /// weekday at or before `from`).
    pub fn days(&self) -> i64 {
        let from = i64::from(self.from.day.to_monday_zero_offset());
        let to = i64::from(self.to.day.to_monday_zero_offset());
        let days = (to - from).rem_euclid(7);
        if days == 0 && self.to.time <= self.from.time { 7 } else { days }
    }
}

impl std::fmt::Display for WeeklyWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} – {}", self.from, self.to)
    }
}

/// A weekday and a local time of day: `Sat 22:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct WeekTime {
    /// The weekday.
    pub day: Weekday,
    /// The local time.
    pub time: Time,
}

/// Weekday names as written: three letters, then the full name.
const DAYS: [(&str, &str, Weekday); 7] = [
    ("mon", "monday", Weekday::Monday),
    ("tue", "tuesday", Weekday::Tuesday),
    ("wed", "wednesday", Weekday::Wednesday),
    ("thu", "thursday", Weekday::Thursday),
    ("fri", "friday", Weekday::Friday),
    ("sat", "saturday", Weekday::Saturday),
    ("sun", "sunday", Weekday::Sunday),
];

impl WeekTime {
    /// Parse `Sat 22:00` (weekday in three letters or in full, any case; `HH:MM` 24-hour,
    /// `24:00` is not accepted: write the next day's `00:00`).
    pub fn parse(text: &str) -> Result<WeekTime, String> {
        let mut parts = text.split_whitespace();
        let (Some(day), Some(time), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err("expected a weekday and a time, such as `Sat 22:00`".into());
        };
        let lower = day.to_ascii_lowercase();
        let day = DAYS
            .iter()
            .find(|(short, long, _)| lower == *short || lower == *long)
            .map(|(_, _, day)| *day)
            .ok_or_else(|| format!("`{day}` is not a weekday (use Mon, Tue, … Sun)"))?;
        let time = parse_hh_mm(time)?;
        Ok(WeekTime { day, time })
    }
}

/// `HH:MM` (24-hour).
fn parse_hh_mm(text: &str) -> Result<Time, String> {
    let bad = || format!("`{text}` is not a time of day (use HH:MM, 24-hour, such as 22:00)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

impl std::fmt::Display for WeekTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let day = DAYS.iter().find(|(_, _, d)| *d == self.day).map(|(s, _, _)| *s).unwrap_or("?");
        let mut chars = day.chars();
        let first = chars.next().map(|c| c.to_ascii_uppercase()).unwrap_or('?');
        write!(f, "{first}{} {}", chars.as_str(), self.time.strftime("%H:%M"))
    }
}

impl From<WeekTime> for String {
    fn from(value: WeekTime) -> Self {
        value.to_string()
    }
}

impl TryFrom<String> for WeekTime {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        WeekTime::parse(&value)
    }
}

/// Blackout days, `first` to `last` inclusive, whole days in the customer's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blackout {
    /// The first day.
    pub first: Date,
    /// The last day (the same as `first` for one day).
    pub last: Date,
}

impl std::fmt::Display for Blackout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{} to {}", self.first, self.last)
        }
    }
}

/// `notice`: customers are told at least `lead_time` before a deployment, on `channels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NoticeRule {
    /// The minimum time between the notice and the deployment (calendar time).
    #[serde(with = "secs")]
    pub lead_time: Duration,
    /// Channels every one of which must carry a timely notice; empty: any notice counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
}

/// An IANA time zone, kept with its name (serialized as the name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// The zone named `name` (`Europe/Berlin`) from the system's time zone database.
    pub fn get(name: &str) -> Result<Zone, String> {
        let tz = TimeZone::get(name).map_err(|_| format!("unknown time zone `{name}`"))?;
        Ok(Zone { name: name.to_owned(), tz })
    }

    /// A zone from a `TimeZone` (the system zone); named by its IANA name when it has one.
    pub fn from_tz(tz: TimeZone) -> Zone {
        let name = tz.iana_name().unwrap_or("local").to_owned();
        Zone { name, tz }
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's rules.
    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }
}

impl From<Zone> for String {
    fn from(value: Zone) -> Self {
        value.name
    }
}

impl TryFrom<String> for Zone {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Zone::get(&value)
    }
}

/// `calendar:`: the calendar time a rehearsal stands for. The timeline's first step starts at
/// `start`; every rehearsal second after it stands for `scale` calendar time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Calendar {
    /// When the timeline's first step starts, in the zone it was written in.
    pub start: jiff::Zoned,
    /// How rehearsal time maps to calendar time.
    pub scale: Scale,
}

impl Calendar {
    /// The calendar time at `offset` into the timeline.
    pub fn at(&self, offset: Duration) -> jiff::Zoned {
        let calendar = self.scale.to_calendar(offset);
        let span = jiff::SignedDuration::try_from(calendar).unwrap_or(jiff::SignedDuration::MAX);
        self.start.checked_add(span).unwrap_or_else(|_| self.start.clone())
    }
}

/// `rehearsal` of rehearsal time stands for `calendar` of calendar time (`1s = 10m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Scale {
    /// Rehearsal time.
    #[serde(with = "secs")]
    pub rehearsal: Duration,
    /// The calendar time it stands for.
    #[serde(with = "secs")]
    pub calendar: Duration,
}

impl Scale {
    /// One to one.
    pub const REAL_TIME: Scale =
        Scale { rehearsal: Duration::from_secs(1), calendar: Duration::from_secs(1) };

    /// The calendar time `rehearsal` stands for (exact to the nanosecond, saturating).
    pub fn to_calendar(&self, rehearsal: Duration) -> Duration {
        let value =
            rehearsal.as_nanos() * self.calendar.as_nanos() / self.rehearsal.as_nanos().max(1);
        let secs = u64::try_from(value / 1_000_000_000).unwrap_or(u64::MAX);
        Duration::new(secs, u32::try_from(value % 1_000_000_000).expect("below 1e9"))
    }

    /// The factor, for messages (`600`).
    pub fn factor(&self) -> f64 {
        self.calendar.as_secs_f64() / self.rehearsal.as_secs_f64()
    }
}

/// Durations as seconds (fractional) in JSON.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn week_times_parse_and_print() {
        let t = WeekTime::parse("saturday 22:00").unwrap();
        assert_eq!((t.day, t.time), (Weekday::Saturday, Time::constant(22, 0, 0, 0)));
        assert_eq!(t.to_string(), "Sat 22:00");
        assert_eq!(WeekTime::parse("Mon 7:05").unwrap().to_string(), "Mon 07:05");
        for bad in ["Sat", "Sat 25:00", "Sat 24:00", "Sat 22:0", "Sab 22:00", "Sat 22:00 x"] {
            assert!(WeekTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn window_lengths_in_days() {
        let w = |from: &str, to: &str| WeeklyWindow {
            from: WeekTime::parse(from).unwrap(),
            to: WeekTime::parse(to).unwrap(),
        };
        assert_eq!(w("Sat 22:00", "Sun 06:00").days(), 1);
        assert_eq!(w("Sun 22:00", "Mon 02:00").days(), 1);
        assert_eq!(w("Sat 01:00", "Sat 05:00").days(), 0);
        assert_eq!(w("Sat 05:00", "Sat 01:00").days(), 7);
        assert_eq!(w("Fri 18:00", "Mon 06:00").days(), 3);
    }

    #[test]
    fn scale_is_exact() {
        let scale = Scale { rehearsal: Duration::from_secs(1), calendar: Duration::from_secs(600) };
        assert_eq!(scale.to_calendar(Duration::from_millis(1500)), Duration::from_secs(900));
        let third = Scale { rehearsal: Duration::from_secs(3), calendar: Duration::from_secs(1) };
        assert_eq!(third.to_calendar(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(scale.factor(), 600.0);
    }

    #[test]
    fn policy_round_trips_through_json() {
        let policy = Policy {
            customers: vec![Customer {
                name: "acme".into(),
                zone: Zone::get("Europe/Berlin").unwrap(),
                windows: vec![WeeklyWindow {
                    from: WeekTime::parse("Sat 22:00").unwrap(),
                    to: WeekTime::parse("Sun 06:00").unwrap(),
                }],
                blackouts: vec![Blackout {
                    first: jiff::civil::date(2026, 12, 24),
                    last: jiff::civil::date(2026, 12, 26),
                }],
            }],
            notice: Some(NoticeRule {
                lead_time: Duration::from_secs(72 * 3600),
                channels: vec!["email".into()],
            }),
        };
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(json["customers"][0]["zone"], "Europe/Berlin");
        assert_eq!(json["customers"][0]["windows"][0]["from"], "Sat 22:00");
        let back: Policy = serde_json::from_value(json).unwrap();
        assert_eq!(back, policy);
    }
}
