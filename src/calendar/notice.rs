//! The notice rule: customers are told at least the lead time before a deployment.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::policy::NoticeRule;

/// A notice that went out (`firedrill gate --notices`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentNotice {
    /// When it was sent.
    pub sent: Timestamp,
    /// The channels it went out on (`email`, `sms`, `status`, …).
    pub channels: Vec<String>,
}

/// Whether the notices given suit a deployment at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeDecision {
    /// Every required channel (or, with none required, some channel) carried a notice at least
    /// the lead time before the deployment.
    pub satisfied: bool,
    /// The required channels without a notice early enough (`["any"]` when none is required and
    /// no notice is early enough).
    pub missing: Vec<String>,
    /// The earliest deployment the notices given allow (`None`: some channel has no notice).
    pub earliest: Option<Timestamp>,
}

/// Judge `notices` for a deployment at `at` under `rule`.
pub fn check_notices(rule: &NoticeRule, notices: &[SentNotice], at: Timestamp) -> NoticeDecision {
    let lead = SignedDuration::try_from(rule.lead_time).unwrap_or(SignedDuration::MAX);
    let any = ["any".to_owned()];
    let channels: &[String] = if rule.channels.is_empty() { &any } else { &rule.channels };
    let mut missing = Vec::new();
    let mut earliest: Option<Timestamp> = Some(Timestamp::MIN);
    for channel in channels {
        let carries = |n: &&SentNotice| channel == "any" || n.channels.contains(channel);
        let first = notices.iter().filter(carries).map(|n| n.sent).min();
        let allows = first.and_then(|sent| sent.checked_add(lead).ok());
        match allows {
            Some(allows) if allows <= at => {}
            _ => missing.push(channel.clone()),
        }
        earliest = match (earliest, allows) {
            (Some(so_far), Some(allows)) => Some(so_far.max(allows)),
            _ => None,
        };
    }
    NoticeDecision { satisfied: missing.is_empty(), missing, earliest }
}

/// Validation's side of a `maintenance-notice` expectation: a notice `lead_time` (calendar time,
/// after scaling) ahead of the upgrade must meet the policy's minimum. `Err` says by how much it
/// falls short.
pub fn check_lead_time(rule: &NoticeRule, lead_time: Duration) -> Result<(), String> {
    if lead_time >= rule.lead_time {
        return Ok(());
    }
    Err(format!(
        "the notice's lead time stands for {} of calendar time, short of the policy's {} by {}",
        format_lead(lead_time),
        format_lead(rule.lead_time),
        format_lead(rule.lead_time - lead_time)
    ))
}

/// `72h`, `1h30m`, `45m`, `20s`: calendar durations in the largest units.
pub fn format_lead(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn rule(channels: &[&str]) -> NoticeRule {
        NoticeRule {
            lead_time: Duration::from_secs(72 * 3600),
            channels: channels.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn notice(sent: &str, channels: &[&str]) -> SentNotice {
        SentNotice { sent: ts(sent), channels: channels.iter().map(|c| c.to_string()).collect() }
    }

    #[test]
    fn every_required_channel_needs_an_early_notice() {
        let at = ts("2026-12-05T21:00:00Z");
        let notices = [
            notice("2026-12-01T09:00:00Z", &["email"]),
            notice("2026-12-03T09:00:00Z", &["status"]),
        ];
        let decision = check_notices(&rule(&["email", "status"]), &notices, at);
        assert!(!decision.satisfied);
        assert_eq!(decision.missing, ["status"]);
        assert_eq!(decision.earliest, Some(ts("2026-12-06T09:00:00Z")));

        let decision = check_notices(&rule(&["email"]), &notices, at);
        assert!(decision.satisfied);
        assert_eq!(decision.earliest, Some(ts("2026-12-04T09:00:00Z")));
    }

    #[test]
    fn without_channels_any_notice_counts_and_none_is_missing() {
        let at = ts("2026-12-05T21:00:00Z");
        let none = check_notices(&rule(&[]), &[], at);
        assert_eq!(
            (none.satisfied, none.missing, none.earliest),
            (false, vec!["any".into()], None)
        );
        let exactly = check_notices(&rule(&[]), &[notice("2026-12-02T21:00:00Z", &["sms"])], at);
        assert!(exactly.satisfied, "exactly the lead time is enough");
        let late = check_notices(&rule(&[]), &[notice("2026-12-02T21:00:01Z", &["sms"])], at);
        assert!(!late.satisfied);
    }

    #[test]
    fn lead_time_of_a_rehearsal_notice() {
        let rule = rule(&[]);
        assert!(check_lead_time(&rule, Duration::from_secs(72 * 3600)).is_ok());
        let short = check_lead_time(&rule, Duration::from_secs(48 * 3600)).unwrap_err();
        assert!(short.contains("short of the policy's 72h by 24h"), "{short}");
        assert_eq!(format_lead(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_lead(Duration::ZERO), "0s");
    }
}
