//! `probe` steps and the steady-state probes: one HTTP or TCP observation of a service's
//! published port, recorded as `probe-result`; time spent counts as waiting on services.
//!
//! Example: `- probe: { http: { service: billing, port: 8080, path: /health } }`.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::RunScope;
use crate::engine::run::Context;
use crate::journal::{EventKind, ProbeContext};
use crate::probe::{self, HttpExpectation, ProbeOutcome};
use crate::scenario::model::{Probe, ProbeKind};

/// Run one probe and record its result. Time spent counts as waiting on services.
pub async fn run_probe(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    probe: &Probe,
    context: ProbeContext,
) {
    let service = probe.kind.service().to_string();
    let outcome = ctx.service_wait(observe(ctx, stack, probe)).await;
    ctx.journal.record(EventKind::ProbeResult {
        probe: probe.name.clone(),
        context,
        service,
        ok: outcome.ok,
        status: outcome.status,
        latency_us: outcome.latency.as_micros() as u64,
        error: outcome.error,
    });
}

async fn observe(ctx: &Context, stack: &Arc<dyn RunScope>, probe: &Probe) -> ProbeOutcome {
    let (service, port) = match &probe.kind {
        ProbeKind::Http { service, port, .. } | ProbeKind::Tcp { service, port, .. } => {
            (service, *port)
        }
    };
    let host_port = stack.host_port(service, port).await;
    let host_port = match host_port {
        Ok(host_port) => host_port,
        Err(error) => {
            return ProbeOutcome {
                ok: false,
                status: None,
                latency: Duration::ZERO,
                error: Some(format!("port {port} of `{service}` is not reachable: {error}")),
            };
        }
    };
    match &probe.kind {
        ProbeKind::Http { method, path, status, body_contains, .. } => {
            let expect = HttpExpectation {
                method,
                path,
                status: *status,
                body_contains: body_contains.as_deref(),
            };
            probe::http(&ctx.http, host_port, &expect, probe.timeout).await
        }
        ProbeKind::Tcp { exchange, .. } => {
            let expect = probe::TcpExpectation {
                send: exchange.send.as_deref(),
                expect: exchange.expect.as_deref(),
            };
            probe::tcp(host_port, &expect, probe.timeout).await
        }
    }
}
