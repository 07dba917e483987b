//! `firedrill gate`: the release gate over a maintenance policy, for CI before a deploy.
//!
//! Reads the policy (and the notices sent) through `scenario`, judges with `calendar`'s pure
//! functions, takes "now" from `clock`, and prints the decision to stdout.

use std::path::Path;

use jiff::Timestamp;

use super::errors::{ExitStatus, ExpectedError};
use crate::calendar::{self, CustomerState, Policy, SentNotice, Zone};
use crate::clock::{Clock, SystemClock};
use crate::scenario::{self, LoadError};

/// Judge a deployment at `at` (default now) under the policy in `policy_file`.
pub(super) fn gate(
    policy_file: &Path,
    at: Option<&str>,
    notices_file: Option<&Path>,
    color: bool,
) -> Result<ExitStatus, ExpectedError> {
    let Some(policy) = loaded(scenario::load_policy(policy_file), color)? else {
        return Ok(ExitStatus::Error);
    };
    let notices = match notices_file {
        Some(file) => match loaded(scenario::load_notices(file), color)? {
            Some(notices) => Some(notices),
            None => return Ok(ExitStatus::Error),
        },
        None => None,
    };
    let at = match at {
        Some(text) => match scenario::parse_instant(text) {
            Ok(at) => at,
            Err((message, hint)) => {
                eprintln!("error: invalid `--at {text}`: {message}\nhint: {hint}");
                return Ok(ExitStatus::Error);
            }
        },
        None => SystemClock::start().wall(),
    };
    // jiff reads `TZ` (then /etc/localtime) for the system zone.
    let user = Zone::from_tz(jiff::tz::TimeZone::system());
    let (allowed, text) = judge(&policy, notices.as_deref(), at, &user);
    print!("{text}");
    Ok(if allowed { ExitStatus::Success } else { ExitStatus::CheckFailed })
}

/// A loaded file, `None` after printing its diagnostics.
fn loaded<T>(result: Result<T, LoadError>, color: bool) -> Result<Option<T>, ExpectedError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(LoadError::Invalid(invalid)) => {
            eprint!("{}", scenario::render(&invalid, color));
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

/// The decision and its explanation: inside the windows, off blackouts, notified in time.
pub(super) fn judge(
    policy: &Policy,
    notices: Option<&[SentNotice]>,
    at: Timestamp,
    user: &Zone,
) -> (bool, String) {
    let decision = calendar::decide(policy, at);
    let mut out = String::new();
    let when = calendar::local_with_zone(at, user);
    if decision.allowed {
        out.push_str(&format!("window: {when} is inside a window of every customer\n"));
    } else {
        out.push_str(&format!("window: {when} is not allowed for every customer\n"));
    }
    for customer in &decision.customers {
        let local = calendar::local(at, &customer.zone);
        let state = match (&customer.state, &customer.current, &customer.next) {
            (CustomerState::Inside, Some(current), _) => {
                format!("inside until {}", calendar::local(current.end, &customer.zone))
            }
            (CustomerState::Blackout(b), _, _) => format!("on blackout {b}"),
            _ => "outside every window".to_owned(),
        };
        let next = match (&customer.state, &customer.next) {
            (CustomerState::Inside, _) => String::new(),
            (_, Some(next)) => {
                format!("; next window {}", calendar::local(next.start, &customer.zone))
            }
            (_, None) => "; no window in the next 800 days".to_owned(),
        };
        out.push_str(&format!(
            "  {} ({}): {local}, {state}{next}\n",
            customer.name,
            customer.zone.name()
        ));
    }

    // The earliest time the notices allow: a notice sent at `at` at the soonest.
    let mut notice_ok = true;
    let mut not_before = at;
    if let Some(rule) = &policy.notice {
        let lead = calendar::format_lead(rule.lead_time);
        let channels = if rule.channels.is_empty() {
            "any channel".to_owned()
        } else {
            rule.channels.join(", ")
        };
        match notices {
            None => {
                notice_ok = false;
                out.push_str(&format!(
                    "notice: the policy requires a notice {lead} ahead on {channels}; none given \
                     (pass --notices FILE)\n"
                ));
            }
            Some(notices) => {
                let check = calendar::check_notices(rule, notices, at);
                notice_ok = check.satisfied;
                if check.satisfied {
                    out.push_str(&format!("notice: sent at least {lead} ahead on {channels}\n"));
                } else {
                    out.push_str(&format!(
                        "notice: no notice {lead} ahead on {}\n",
                        check.missing.join(", ")
                    ));
                }
                if let Some(earliest) = check.earliest {
                    not_before = not_before.max(earliest);
                }
            }
        }
        if !notice_ok && not_before == at {
            // Nothing usable was sent: a notice sent now allows a deployment a lead time later.
            let lead_span = jiff::SignedDuration::try_from(rule.lead_time).unwrap_or_default();
            not_before = at.checked_add(lead_span).unwrap_or(at);
            out.push_str(&format!(
                "  a notice sent now allows a deployment from {}\n",
                calendar::local_with_zone(not_before, user)
            ));
        }
    }

    let allowed = decision.allowed && notice_ok;
    if allowed {
        out.push_str("allowed: deploy\n");
        return (true, out);
    }
    match calendar::next_allowed(policy, not_before) {
        Some(next) => {
            out.push_str(&format!(
                "denied: the next allowed time is {}\n",
                calendar::local_with_zone(next, user)
            ));
            for customer in &policy.customers {
                out.push_str(&format!(
                    "  {} ({}): {}\n",
                    customer.name,
                    customer.zone.name(),
                    calendar::local(next, &customer.zone)
                ));
            }
            if let Some(opening) = calendar::decide(policy, next).next {
                for note in &opening.notes {
                    out.push_str(&format!("  note: {note}\n"));
                }
            }
        }
        None => out.push_str("denied: no time in the next 800 days suits every customer\n"),
    }
    (false, out)
}
