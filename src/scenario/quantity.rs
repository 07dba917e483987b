//! Rates (`20/s`, `600/m`, `0.5/s`) and percentages (`99%`, `99.5%`, `99.5`).
//!
//! Pure text → number conversions; no YAML, no spans (the caller points at the value). Errors are
//! lowercase fragments saying what is wrong with the text, like [`super::duration`]'s.

/// Parse a request rate, `N/s` or `N/m` with `N > 0` (decimals allowed: `0.5/s`), into requests per
/// second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let Some((number, unit)) = text.split_once('/') else {
        return Err(if decimal(text).is_some() {
            "a rate needs a unit: `/s` or `/m`".to_owned()
        } else {
            "expected a number, `/` and a unit".to_owned()
        });
    };
    let per = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "" => return Err("a rate needs a unit after `/`: `s` or `m`".to_owned()),
        _ => return Err(format!("unknown unit `/{unit}`")),
    };
    if number.trim() != number {
        return Err("a rate has no spaces".to_owned());
    }
    let Some(value) = decimal(number) else {
        return Err(format!("expected a number before `/`, found `{number}`"));
    };
    if value <= 0.0 {
        return Err("a rate must be greater than zero".to_owned());
    }
    let rate = value / per;
    if !rate.is_finite() || rate <= 0.0 {
        return Err("the rate is out of range".to_owned());
    }
    Ok(rate)
}

/// Parse a percentage from 0 to 100, written `99%`, `99.5%` or as a bare number (`99.5`).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let number = text.strip_suffix('%').unwrap_or(text);
    if number.trim() != number {
        return Err("a percentage has no spaces".to_owned());
    }
    let Some(value) = decimal(number) else {
        return Err("expected a number".to_owned());
    };
    if value > 100.0 {
        return Err("more than 100%".to_owned());
    }
    Ok(value)
}

/// A non-negative decimal number: digits, optionally a `.` and more digits (`20`, `0.5`). No sign,
/// no exponent, nothing YAML would read as something else.
fn decimal(text: &str) -> Option<f64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("20/s"), Ok(20.0));
        assert_eq!(parse_rate("600/m"), Ok(10.0));
        assert_eq!(parse_rate("0.5/s"), Ok(0.5));
        assert_eq!(parse_rate("30/m"), Ok(0.5));
        assert_eq!(parse_rate(" 1.25/s "), Ok(1.25));
    }

    #[test]
    fn rejects_bad_rates() {
        let err = |text: &str| parse_rate(text).unwrap_err();
        assert_eq!(err("20"), "a rate needs a unit: `/s` or `/m`");
        assert_eq!(err("20/"), "a rate needs a unit after `/`: `s` or `m`");
        assert_eq!(err("20/h"), "unknown unit `/h`");
        assert_eq!(err("20/sec"), "unknown unit `/sec`");
        assert_eq!(err("0/s"), "a rate must be greater than zero");
        assert_eq!(err("0.0/m"), "a rate must be greater than zero");
        assert_eq!(err("-5/s"), "expected a number before `/`, found `-5`");
        assert_eq!(err("fast/s"), "expected a number before `/`, found `fast`");
        assert_eq!(err("1e3/s"), "expected a number before `/`, found `1e3`");
        assert_eq!(err(".5/s"), "expected a number before `/`, found `.5`");
        assert_eq!(err("20 /s"), "a rate has no spaces");
        assert_eq!(err("fast"), "expected a number, `/` and a unit");
        assert_eq!(err(""), "expected a number, `/` and a unit");
    }

    #[test]
    fn parses_percentages() {
        assert_eq!(parse_percent("99%"), Ok(99.0));
        assert_eq!(parse_percent("99.5%"), Ok(99.5));
        assert_eq!(parse_percent("99.5"), Ok(99.5));
        assert_eq!(parse_percent("100"), Ok(100.0));
        assert_eq!(parse_percent("0%"), Ok(0.0));
    }

    #[test]
    fn rejects_bad_percentages() {
        let err = |text: &str| parse_percent(text).unwrap_err();
        assert_eq!(err("101%"), "more than 100%");
        assert_eq!(err("100.5"), "more than 100%");
        assert_eq!(err("-1%"), "expected a number");
        assert_eq!(err("high"), "expected a number");
        assert_eq!(err("%"), "expected a number");
        assert_eq!(err("99 %"), "a percentage has no spaces");
        assert_eq!(err("99%%"), "expected a number");
    }

    proptest! {
        #[test]
        fn rates_round_trip(whole in 0u32..100_000, fraction in 0u32..1000, per_minute: bool) {
            prop_assume!(whole > 0 || fraction > 0);
            let number = format!("{whole}.{fraction:03}");
            let unit = if per_minute { "m" } else { "s" };
            let expected = number.parse::<f64>().unwrap() / if per_minute { 60.0 } else { 1.0 };
            prop_assert_eq!(parse_rate(&format!("{number}/{unit}")), Ok(expected));
            if fraction == 0 {
                prop_assert_eq!(parse_rate(&format!("{whole}/{unit}")), Ok(expected));
            }
        }

        #[test]
        fn percentages_round_trip(tenths in 0u32..=1000, sign: bool) {
            let value = f64::from(tenths) / 10.0;
            let text = format!("{value}{}", if sign { "%" } else { "" });
            prop_assert_eq!(parse_percent(&text), Ok(value));
        }

        #[test]
        fn never_panic(text in "\\PC{0,12}") {
            let _ = parse_rate(&text);
            let _ = parse_percent(&text);
        }
    }
}
