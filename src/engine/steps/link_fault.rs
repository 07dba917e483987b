//! Link fault steps (`latency`, `bandwidth`, `timeout`, `reset-peer`, `slow-close`, `slicer`,
//! `limit-data`, `down`, `http-error`, `http-delay`, `cut`): proxy faults ("toxics") on a link's
//! fault proxy, removed after `for`. The proxies' lifecycle is `engine/links.rs`.
//!
//! Link faults are not written to the fault ledger: a proxy lives inside the harness process, so
//! whatever kills the harness also removes every fault it holds.
//!
//! Example: `- latency: { link: db, latency: 300ms, jitter: 20ms, for: 10s }`.

use std::sync::atomic::Ordering;

use super::StepEnd;
use crate::engine::run::Context;
use crate::journal::EventKind;
use crate::proxy::{Direction, HeaderMatch, RequestMatch, ToxicKind, ToxicSpec};
use crate::scenario::format_duration;
use crate::scenario::model::{HttpRoute, LinkDirection, LinkFault, LinkFaultKind, Scenario, Step};

/// The proxy faults a link fault stands for: one per direction it acts on.
pub(super) fn toxic_specs(fault: &LinkFault) -> Vec<ToxicSpec> {
    let kind = match &fault.kind {
        LinkFaultKind::Latency { latency, jitter } => {
            ToxicKind::Latency { latency: *latency, jitter: *jitter }
        }
        LinkFaultKind::Bandwidth { bytes_per_sec } => {
            ToxicKind::Bandwidth { bytes_per_sec: *bytes_per_sec }
        }
        LinkFaultKind::Timeout { after } => ToxicKind::Timeout { after: *after },
        LinkFaultKind::ResetPeer { after } => ToxicKind::ResetPeer { after: *after },
        LinkFaultKind::SlowClose { delay } => ToxicKind::SlowClose { delay: *delay },
        LinkFaultKind::Slicer { average, variation, delay } => ToxicKind::Slicer {
            average: usize::try_from(*average).unwrap_or(usize::MAX),
            variation: usize::try_from(*variation).unwrap_or(usize::MAX),
            delay: *delay,
        },
        LinkFaultKind::LimitData { bytes } => ToxicKind::LimitData { bytes: *bytes },
        // `down` and the http faults act on the whole link or on requests: one toxic.
        LinkFaultKind::Down => {
            return vec![
                ToxicSpec::new(ToxicKind::Down, Direction::Upstream).with_toxicity(fault.toxicity),
            ];
        }
        LinkFaultKind::HttpError { status, probability, route } => {
            let kind = ToxicKind::HttpError {
                status: *status,
                probability: *probability,
                route: request_match(route),
            };
            return vec![ToxicSpec::new(kind, Direction::Upstream).with_toxicity(fault.toxicity)];
        }
        LinkFaultKind::HttpDelay { delay, probability, route } => {
            let kind = ToxicKind::HttpDelay {
                delay: *delay,
                probability: *probability,
                route: request_match(route),
            };
            return vec![ToxicSpec::new(kind, Direction::Upstream).with_toxicity(fault.toxicity)];
        }
        LinkFaultKind::HttpAbort { after, probability, route } => {
            let kind = ToxicKind::HttpAbort {
                after: *after,
                probability: *probability,
                route: request_match(route),
            };
            return vec![ToxicSpec::new(kind, Direction::Upstream).with_toxicity(fault.toxicity)];
        }
        LinkFaultKind::HttpTruncate { bytes, probability, route } => {
            let kind = ToxicKind::HttpTruncate {
                bytes: *bytes,
                probability: *probability,
                route: request_match(route),
            };
            return vec![ToxicSpec::new(kind, Direction::Upstream).with_toxicity(fault.toxicity)];
        }
        // A blackhole that never closes: bytes wait in the proxy until the cut heals.
        LinkFaultKind::Cut => ToxicKind::Timeout { after: std::time::Duration::ZERO },
    };
    let directions: &[Direction] = match fault.direction {
        LinkDirection::Upstream => &[Direction::Upstream],
        LinkDirection::Downstream => &[Direction::Downstream],
        LinkDirection::Both => &[Direction::Upstream, Direction::Downstream],
    };
    directions
        .iter()
        .map(|direction| ToxicSpec::new(kind.clone(), *direction).with_toxicity(fault.toxicity))
        .collect()
}

/// The proxy's form of a scenario route.
fn request_match(route: &HttpRoute) -> RequestMatch {
    RequestMatch {
        methods: route.methods.clone(),
        path: route.path.clone(),
        headers: route
            .headers
            .iter()
            .map(|(name, value)| HeaderMatch { name: name.clone(), value: value.clone() })
            .collect(),
    }
}

/// `POST, PUT /invoices/* x-tenant=acme`, or `` for every request.
fn describe_route(route: &HttpRoute) -> String {
    let mut parts = Vec::new();
    if !route.methods.is_empty() {
        parts.push(route.methods.join(", "));
    }
    if let Some(path) = &route.path {
        parts.push(path.clone());
    }
    for (name, value) in &route.headers {
        parts.push(format!("{name}={value}"));
    }
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(" ")) }
}

/// How a link fault reads in the journal and the progress lines: `300ms ± 20ms, downstream`.
pub(super) fn describe(fault: &LinkFault) -> String {
    let what = match &fault.kind {
        LinkFaultKind::Latency { latency, jitter } if jitter.is_zero() => {
            format!("+{}", format_duration(*latency))
        }
        LinkFaultKind::Latency { latency, jitter } => {
            format!("+{} ± {}", format_duration(*latency), format_duration(*jitter))
        }
        LinkFaultKind::Bandwidth { bytes_per_sec } => format!("{bytes_per_sec} B/s"),
        LinkFaultKind::Timeout { after } => {
            format!("blackholed, closed after {}", format_duration(*after))
        }
        LinkFaultKind::ResetPeer { after } => {
            format!("reset {} after the first data", format_duration(*after))
        }
        LinkFaultKind::SlowClose { delay } => format!("close held {}", format_duration(*delay)),
        LinkFaultKind::Slicer { average, variation, delay } => format!(
            "sliced into {average} ± {variation} B pieces {} apart",
            format_duration(*delay)
        ),
        LinkFaultKind::LimitData { bytes } => format!("closed after {bytes} B"),
        LinkFaultKind::Down => "down: connections refused".to_owned(),
        LinkFaultKind::HttpError { status, probability, route } => format!(
            "HTTP {status} for {} of requests{}",
            share(*probability),
            describe_route(route)
        ),
        LinkFaultKind::HttpDelay { delay, probability, route } => format!(
            "requests held {} for {} of them{}",
            format_duration(*delay),
            share(*probability),
            describe_route(route)
        ),
        LinkFaultKind::HttpAbort { after, probability, route } => format!(
            "answers closed after {after} B of body for {} of requests{}",
            share(*probability),
            describe_route(route)
        ),
        LinkFaultKind::HttpTruncate { bytes, probability, route } => format!(
            "answer bodies cut to {bytes} B for {} of requests{}",
            share(*probability),
            describe_route(route)
        ),
        LinkFaultKind::Cut => "bytes held until healed".to_owned(),
    };
    let direction = match fault.kind {
        LinkFaultKind::Down
        | LinkFaultKind::HttpError { .. }
        | LinkFaultKind::HttpDelay { .. }
        | LinkFaultKind::HttpAbort { .. }
        | LinkFaultKind::HttpTruncate { .. } => String::new(),
        _ => format!(", {}", fault.direction.key()),
    };
    let toxicity = if fault.toxicity < 1.0 {
        format!(", on {} of connections", share(fault.toxicity))
    } else {
        String::new()
    };
    format!("{what}{direction}{toxicity}")
}

fn share(fraction: f64) -> String {
    let percent = fraction * 100.0;
    if percent.fract() == 0.0 { format!("{percent:.0}%") } else { format!("{percent}%") }
}

/// Carry out a link fault step: add its proxy faults, wait `for` (interruptible), remove them.
pub(super) async fn run_link_fault(
    ctx: &Context,
    scenario: &Scenario,
    step: &Step,
    fault: &LinkFault,
) -> StepEnd {
    let to = scenario.stack.links.get(&fault.link).map(|link| link.to.clone()).unwrap_or_default();
    let id = ctx.fault_ids.fetch_add(1, Ordering::Relaxed) + 1;
    let specs = toxic_specs(fault);
    let mut added = Vec::with_capacity(specs.len());
    for spec in specs {
        match ctx.links.add(&fault.link, spec) {
            Some(toxic) => added.push(toxic),
            None => break,
        }
    }
    let ok = !added.is_empty();
    let toxics: Vec<String> = added.iter().map(ToString::to_string).collect();
    let detail = if ok {
        format!("{} ({})", describe(fault), toxics.join(", "))
    } else {
        format!("link `{}` has no proxy running", fault.link)
    };
    ctx.journal.record(EventKind::FaultApplied {
        step: step.name.clone(),
        fault: id,
        kind: fault.kind.key().to_owned(),
        service: to.clone(),
        replica: fault.link.clone(),
        ok,
        detail: detail.clone(),
        previous: serde_json::Value::Null,
        link: Some(fault.link.clone()),
    });
    if !ok {
        return StepEnd::Failed(detail);
    }
    let waited = ctx.declared_wait(fault.duration).await;
    // Removing is immediate and loses nothing, so it runs after a second signal too.
    for toxic in added.iter().rev() {
        ctx.links.remove(&fault.link, *toxic);
    }
    ctx.journal.record(EventKind::FaultReverted {
        step: step.name.clone(),
        fault: id,
        kind: fault.kind.key().to_owned(),
        service: to,
        replica: fault.link.clone(),
        ok: true,
        detail: format!("removed {}", toxics.join(", ")),
        link: Some(fault.link.clone()),
    });
    if waited { StepEnd::Done } else { StepEnd::Interrupted }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn fault(kind: LinkFaultKind, direction: LinkDirection) -> LinkFault {
        LinkFault {
            link: "db".into(),
            kind,
            direction,
            toxicity: 1.0,
            duration: Duration::from_secs(5),
        }
    }

    #[test]
    fn both_directions_make_one_toxic_each_and_cut_is_a_timeout_that_never_closes() {
        let specs = toxic_specs(&fault(LinkFaultKind::Cut, LinkDirection::Both));
        let expected: Vec<ToxicSpec> = [Direction::Upstream, Direction::Downstream]
            .into_iter()
            .map(|d| ToxicSpec::new(ToxicKind::Timeout { after: Duration::ZERO }, d))
            .collect();
        assert_eq!(specs, expected);
        let latency = LinkFaultKind::Latency {
            latency: Duration::from_millis(300),
            jitter: Duration::from_millis(20),
        };
        let mut one = fault(latency, LinkDirection::Downstream);
        one.toxicity = 0.5;
        let specs = toxic_specs(&one);
        assert_eq!(specs.len(), 1);
        assert_eq!((specs[0].direction, specs[0].toxicity), (Direction::Downstream, 0.5));
        assert_eq!(describe(&one), "+300ms ± 20ms, downstream, on 50% of connections");
    }

    #[test]
    fn down_and_http_faults_are_one_toxic_whatever_the_direction() {
        let any = HttpRoute::default();
        for kind in [
            LinkFaultKind::Down,
            LinkFaultKind::HttpError { status: 503, probability: 0.25, route: any.clone() },
            LinkFaultKind::HttpDelay {
                delay: Duration::from_secs(1),
                probability: 1.0,
                route: any.clone(),
            },
            LinkFaultKind::HttpAbort { after: 0, probability: 1.0, route: any.clone() },
            LinkFaultKind::HttpTruncate { bytes: 5, probability: 1.0, route: any.clone() },
        ] {
            assert_eq!(toxic_specs(&fault(kind, LinkDirection::Both)).len(), 1);
        }
        let error = fault(
            LinkFaultKind::HttpError { status: 503, probability: 0.25, route: any },
            LinkDirection::Upstream,
        );
        assert_eq!(describe(&error), "HTTP 503 for 25% of requests");
        let route = HttpRoute {
            methods: vec!["POST".into()],
            path: Some("/invoices".into()),
            headers: vec![("x-tenant".into(), "acme".into())],
        };
        let abort = fault(
            LinkFaultKind::HttpAbort { after: 0, probability: 1.0, route: route.clone() },
            LinkDirection::Upstream,
        );
        assert_eq!(
            describe(&abort),
            "answers closed after 0 B of body for 100% of requests (POST /invoices x-tenant=acme)"
        );
        let ToxicKind::HttpAbort { route: matcher, .. } = &toxic_specs(&abort)[0].kind else {
            panic!("an abort");
        };
        assert!(matcher.matches("POST", "/invoices", &[("X-Tenant", b"acme")]));
        assert!(!matcher.matches("GET", "/invoices", &[("X-Tenant", b"acme")]));
    }
}
