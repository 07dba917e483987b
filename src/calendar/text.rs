//! Instants as people read them in a zone.

use jiff::Timestamp;

use super::policy::Zone;

/// `Sat 2026-12-05 22:00 CET`: weekday, date, minutes and the zone's abbreviation.
pub fn local(at: Timestamp, zone: &Zone) -> String {
    let zoned = at.to_zoned(zone.tz().clone());
    let seconds = if zoned.second() != 0 || zoned.subsec_nanosecond() != 0 { ":%S" } else { "" };
    zoned.strftime(&format!("%a %Y-%m-%d %H:%M{seconds} %Z")).to_string()
}

/// [`local`] followed by the zone's name: `Sat 2026-12-05 22:00 CET (Europe/Berlin)`.
pub fn local_with_zone(at: Timestamp, zone: &Zone) -> String {
    format!("{} ({})", local(at, zone), zone.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_a_calendar() {
        let berlin = Zone::get("Europe/Berlin").unwrap();
        let at: Timestamp = "2026-12-05T21:00:00Z".parse().unwrap();
        assert_eq!(local(at, &berlin), "Sat 2026-12-05 22:00 CET");
        let kolkata = Zone::get("Asia/Kolkata").unwrap();
        assert_eq!(local_with_zone(at, &kolkata), "Sun 2026-12-06 02:30 IST (Asia/Kolkata)");
        let odd: Timestamp = "2026-12-05T21:00:05Z".parse().unwrap();
        assert_eq!(local(odd, &berlin), "Sat 2026-12-05 22:00:05 CET");
    }
}
