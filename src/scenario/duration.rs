//! Humane durations: `250ms`, `30s`, `5m`, `1h`, and combinations such as `1m30s`.
//!
//! Pure text ↔ [`Duration`] conversions; no YAML, no spans (the caller points at the value).

use std::time::Duration;

/// Units from largest to smallest; a combination must use them in this order, each at most once.
/// `us` and `ns` exist so that [`format`] can write any duration in a form [`parse`] reads back.
const UNITS: [(&str, u128); 6] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// The longest duration a scenario may write: 366 days. Longer is a mistake in a rehearsal (a step,
/// deadline, lead time or scale), and it keeps every `Instant + duration` and every calendar
/// product far from overflowing.
pub const MAX: Duration = Duration::from_secs(366 * 24 * 3_600);

/// Parse a positive duration such as `250ms`, `30s`, `5m`, `1h` or `1m30s`.
///
/// The error is a lowercase fragment saying what is wrong with the text.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration needs a number and a unit".to_owned());
    }
    let mut rest = text;
    let mut total: u128 = 0;
    // Index into `UNITS` of the last unit seen, so units only ever get smaller.
    let mut previous: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let (number, after) = rest.split_at(digits);
        let letters = after.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let (unit, after) = after.split_at(letters);
        if unit.trim().is_empty() {
            return Err(format!("`{number}` has no unit"));
        }
        if unit.starts_with(['.', ',']) {
            return Err("fractions are not supported, use a smaller unit".to_owned());
        }
        if unit.trim() != unit {
            return Err("a duration has no spaces".to_owned());
        }
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(format!("unknown unit `{unit}`"));
        };
        if previous.is_some_and(|p| index <= p) {
            return Err(format!("unit `{unit}` out of order"));
        }
        previous = Some(index);
        let value: u128 = number.parse().map_err(|_| format!("`{number}` is too large"))?;
        total = value
            .checked_mul(UNITS[index].1)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| "the duration is too long".to_owned())?;
        rest = after;
    }
    if total == 0 {
        return Err("a duration must be greater than zero".to_owned());
    }
    if total > MAX.as_nanos() {
        return Err(format!("a duration is at most {} (366 days)", format(MAX)));
    }
    let seconds =
        u64::try_from(total / 1_000_000_000).map_err(|_| "the duration is too long".to_owned())?;
    let nanos = u32::try_from(total % 1_000_000_000).expect("remainder is below one second");
    Ok(Duration::new(seconds, nanos))
}

/// Write a duration the way [`parse`] reads it: hours and minutes, then whole seconds (`1m30s`), or
/// milliseconds when the seconds have a fraction (`1.5s` → `1500ms`); zero is `0s`.
pub fn format(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let seconds = duration.as_secs();
    let nanos = duration.subsec_nanos();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if nanos == 0 {
        if seconds > 0 {
            out.push_str(&format!("{seconds}s"));
        }
    } else {
        let millis = u64::from(nanos / 1_000_000) + seconds * 1000;
        let micros = nanos / 1_000 % 1_000;
        let rest = nanos % 1_000;
        if millis > 0 {
            out.push_str(&format!("{millis}ms"));
        }
        if micros > 0 {
            out.push_str(&format!("{micros}us"));
        }
        if rest > 0 {
            out.push_str(&format!("{rest}ns"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse("8784h"), Ok(MAX));
        assert!(parse("8785h").unwrap_err().contains("at most 8784h"));
        assert!(parse("10000000000000000000s").is_err());
        assert!(parse("340282366920938463463374607431768211455ns").is_err());
    }

    proptest::proptest! {
        #[test]
        fn no_text_panics_and_every_duration_is_bounded(text in "[0-9]{1,25}(h|m|s|ms|us|ns)([0-9]{1,25}(m|s|ms))?") {
            if let Ok(duration) = parse(&text) {
                proptest::prop_assert!(duration <= MAX);
            }
        }
    }

    #[test]
    fn parses_single_units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn parses_combinations() {
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h2m3s4ms"), Ok(Duration::from_millis(3_723_004)));
        assert_eq!(parse(" 2s "), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn rejects_mistakes() {
        assert_eq!(parse("5 seconds"), Err("a duration has no spaces".to_owned()));
        assert_eq!(parse("5seconds"), Err("unknown unit `seconds`".to_owned()));
        assert_eq!(parse("5"), Err("`5` has no unit".to_owned()));
        assert_eq!(parse("5d"), Err("unknown unit `d`".to_owned()));
        assert_eq!(parse("30s1m"), Err("unit `m` out of order".to_owned()));
        assert_eq!(parse("1s1s"), Err("unit `s` out of order".to_owned()));
        assert_eq!(
            parse("1.5s"),
            Err("fractions are not supported, use a smaller unit".to_owned())
        );
        assert_eq!(parse("0s"), Err("a duration must be greater than zero".to_owned()));
        assert_eq!(parse(""), Err("a duration needs a number and a unit".to_owned()));
        assert_eq!(parse("-1s"), Err("expected a number at `-1s`".to_owned()));
        assert!(parse("99999999999999999999999999999999999999999h").is_err());
    }

    #[test]
    fn formats_humanely() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_secs(3600)), "1h");
        assert_eq!(format(Duration::from_secs(3605)), "1h5s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::from_micros(1500)), "1ms500us");
        assert_eq!(format(Duration::from_nanos(7)), "7ns");
    }

    proptest! {
        #[test]
        fn round_trips_milliseconds(ms in 1u64..=31_622_400_000) {
            let duration = Duration::from_millis(ms);
            prop_assert_eq!(parse(&format(duration)), Ok(duration));
        }

        #[test]
        fn round_trips_nanoseconds(ns in 1u64..=31_622_400_000_000_000) {
            let duration = Duration::from_nanos(ns);
            prop_assert_eq!(parse(&format(duration)), Ok(duration));
        }
    }
}
