//! Carrying out one step of the timeline, and the probes of steps and steady state.

use std::sync::Arc;
use std::time::Duration;

use super::run::{Accounting, Context};
use super::upgrade::{ServiceState, run_rollback, run_upgrade};
use crate::backend::{BackendError, RunScope};
use crate::clock;
use crate::journal::{EventKind, Outcome, ProbeContext};
use crate::probe::{self, HttpExpectation, ProbeOutcome};
use crate::scenario::model::{
    Action, Call, ContainerAction, ContainerOp, Probe, ProbeKind, Scenario, SinkOutage, Step,
};

/// How a step ended.
pub enum StepEnd {
    /// Carried out.
    Done,
    /// Carried out, and the timeline stops here on purpose (`on-failure: abort`).
    Abort,
    /// The backend refused an action: the timeline stops.
    Failed(String),
    /// A signal arrived while it ran.
    Interrupted,
}

/// Run one step, recording its start, its actions and its end.
pub async fn run_step(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    scenario: &Scenario,
    state: &mut ServiceState,
    step: &Step,
) -> StepEnd {
    let action = match &step.action {
        Action::Wait(_) => "wait",
        Action::Probe(_) => "probe",
        Action::Container(container) => container.op.key(),
        Action::Upgrade(_) => "upgrade",
        Action::Rollback { .. } => "rollback",
        Action::Fault(fault) => fault.kind.key(),
        Action::LinkFault(fault) => fault.kind.key(),
        Action::Parallel(_) => "parallel",
        Action::SinkOutage(_) => "sink-outage",
        Action::Call(_) => "call",
        Action::Mark => "mark",
        Action::KillProcess(_) => "kill-process",
    };
    ctx.journal.record(EventKind::StepStarted {
        index: step.index,
        step: step.name.clone(),
        action: action.to_string(),
    });
    let end = match &step.action {
        Action::Wait(duration) => {
            if ctx.declared_wait(*duration).await {
                StepEnd::Done
            } else {
                StepEnd::Interrupted
            }
        }
        Action::Probe(probe) => {
            let context = ProbeContext::Step { step: step.name.clone() };
            match ctx.interruptible(run_probe(ctx, stack, probe, context)).await {
                Some(()) => StepEnd::Done,
                None => StepEnd::Interrupted,
            }
        }
        Action::Container(container) => run_container_action(ctx, stack, container).await,
        Action::Upgrade(upgrade) => {
            run_upgrade(ctx, stack, scenario, state, &step.name, upgrade).await
        }
        Action::Rollback { service } => run_rollback(ctx, stack, scenario, state, service).await,
        Action::Fault(fault) => super::faults::run_fault(ctx, stack, step, fault).await,
        Action::LinkFault(fault) => super::links::run_link_fault(ctx, scenario, step, fault).await,
        Action::Parallel(children) => {
            super::faults::run_parallel(ctx, stack, scenario, state, children).await
        }
        Action::SinkOutage(outage) => run_sink_outage(ctx, outage).await,
        Action::Call(call) => match ctx.interruptible(run_call(ctx, stack, &step.name, call)).await
        {
            Some(()) => StepEnd::Done,
            None => StepEnd::Interrupted,
        },
        // The step's own start and end are the marker.
        Action::Mark => StepEnd::Done,
        Action::KillProcess(kill) => super::faults::run_kill_process(ctx, stack, step, kill).await,
    };
    let (outcome, error) = match &end {
        StepEnd::Done => (Outcome::Ok, None),
        StepEnd::Abort => {
            (Outcome::Failed, Some("the upgrade failed and `on-failure` is `abort`".into()))
        }
        StepEnd::Failed(reason) => (Outcome::Failed, Some(reason.clone())),
        StepEnd::Interrupted => (Outcome::Interrupted, None),
    };
    ctx.journal.record(EventKind::StepEnded {
        index: step.index,
        step: step.name.clone(),
        outcome,
        error,
    });
    end
}

async fn run_container_action(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    action: &ContainerAction,
) -> StepEnd {
    // A pause to be undone is ledgered first, so a `firedrill gc` after a crash thaws it.
    let ledgered = if action.op == ContainerOp::Pause && action.undo_after.is_some() {
        match super::faults::ledger_pause(ctx, stack, &action.service).await {
            Ok(id) => id,
            Err(reason) => return StepEnd::Failed(reason),
        }
    } else {
        None
    };
    let applied = ctx.interruptible(apply(ctx, stack, &action.service, &action.op, false)).await;
    match applied {
        None => return StepEnd::Interrupted,
        Some(Err(reason)) => return StepEnd::Failed(reason),
        Some(Ok(())) => {}
    }
    let Some(undo_after) = action.undo_after else {
        return StepEnd::Done;
    };
    let waited = ctx.declared_wait(undo_after).await;
    // Undo even when interrupted, so a `--keep` stack is not left paused; a second signal skips it.
    if ctx.signals.kill_fast.is_cancelled() {
        return StepEnd::Interrupted;
    }
    let undo = match action.op {
        ContainerOp::Kill { .. } | ContainerOp::Stop { .. } => ContainerOp::Start,
        ContainerOp::Pause => ContainerOp::Unpause,
        ContainerOp::Start | ContainerOp::Restart | ContainerOp::Unpause => {
            unreachable!("validation allows `for` only on kill, stop and pause")
        }
    };
    let undone = tokio::select! {
        result = apply(ctx, stack, &action.service, &undo, true) => result,
        () = ctx.signals.kill_fast.cancelled() => return StepEnd::Interrupted,
    };
    if undone.is_ok() {
        super::faults::pause_reverted(ctx, ledgered);
    }
    match (waited, undone) {
        (_, Err(reason)) => StepEnd::Failed(reason),
        (false, Ok(())) => StepEnd::Interrupted,
        (true, Ok(())) => StepEnd::Done,
    }
}

async fn apply(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    service: &str,
    op: &ContainerOp,
    undo: bool,
) -> Result<(), String> {
    let result: Result<(), BackendError> = ctx
        .backend_call(async {
            match op {
                ContainerOp::Kill { signal } => stack.kill(service, signal).await,
                ContainerOp::Stop { timeout } => stack.stop(service, *timeout).await,
                ContainerOp::Start => stack.start(service).await,
                ContainerOp::Restart => stack.restart(service).await,
                ContainerOp::Pause => stack.pause(service).await,
                ContainerOp::Unpause => stack.unpause(service).await,
            }
        })
        .await;
    let signal = match op {
        ContainerOp::Kill { signal } => Some(signal.clone()),
        _ => None,
    };
    let error = result.as_ref().err().map(|e| e.to_string());
    ctx.journal.record(EventKind::ContainerAction {
        service: service.to_string(),
        action: op.key().to_string(),
        signal,
        undo,
        ok: error.is_none(),
        error: error.clone(),
    });
    match error {
        None => Ok(()),
        Some(error) => Err(error),
    }
}

/// Run one probe and record its result. Time spent counts as waiting on services.
pub async fn run_probe(
    ctx: &Context,
    stack: &Arc<dyn RunScope>,
    probe: &Probe,
    context: ProbeContext,
) {
    let started = clock::instant_now();
    let service = probe.kind.service().to_string();
    let outcome = observe(ctx, stack, probe).await;
    Accounting::add(
        &ctx.accounting.service_wait,
        clock::instant_now().saturating_duration_since(started),
    );
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

/// A sink outage: on now; with `for`, off again after it (also when interrupted, so a held request
/// is not left hanging through teardown; teardown ends an outage without `for`).
async fn run_sink_outage(ctx: &Context, outage: &SinkOutage) -> StepEnd {
    let on = Some(super::sinks::Outage::of(outage));
    if !ctx.sinks.set_outage(&outage.sink, on, &ctx.journal) {
        return StepEnd::Failed(format!("sink `{}` is not running", outage.sink));
    }
    let Some(duration) = outage.duration else {
        return StepEnd::Done;
    };
    let waited = ctx.declared_wait(duration).await;
    ctx.sinks.set_outage(&outage.sink, None, &ctx.journal);
    if waited { StepEnd::Done } else { StepEnd::Interrupted }
}

/// One HTTP request to a service's published port, recorded as `call-result`. A refused or
/// unexpected answer is recorded, not a step failure: what the call should have caused is for
/// the checks to judge.
async fn run_call(ctx: &Context, stack: &Arc<dyn RunScope>, step: &str, call: &Call) {
    let started = clock::instant_now();
    let request = format!("{} {}", call.method, call.path);
    let host_port = stack.host_port(&call.service, call.port).await;
    let (status, body, error) = match host_port {
        Err(error) => {
            (None, String::new(), Some(format!("port {} is not reachable: {error}", call.port)))
        }
        Ok(host_port) => send_call(&ctx.http, host_port, call).await,
    };
    let latency = clock::instant_now().saturating_duration_since(started);
    Accounting::add(&ctx.accounting.service_wait, latency);
    let expected = match call.status {
        Some(expected) => status == Some(expected),
        None => status.is_some_and(|status| (200..300).contains(&status)),
    };
    let error = error.or_else(|| {
        (!expected).then(|| match call.status {
            Some(expected) => format!("expected status {expected}"),
            None => "expected a 2xx status".to_owned(),
        })
    });
    ctx.journal.record(EventKind::CallResult {
        step: step.to_owned(),
        service: call.service.clone(),
        request,
        ok: error.is_none(),
        status,
        latency_us: latency.as_micros() as u64,
        body,
        error,
    });
}

/// Send `call` to `127.0.0.1:host_port`: the status, the start of the body, or what failed.
async fn send_call(
    http: &reqwest::Client,
    host_port: u16,
    call: &Call,
) -> (Option<u16>, String, Option<String>) {
    const BODY_CHARS: usize = 200;
    let url = format!("http://127.0.0.1:{host_port}{}", call.path);
    let method = reqwest::Method::from_bytes(call.method.as_bytes()).expect("validated method");
    let mut request = http.request(method, url).timeout(call.timeout);
    if let Some(body) = &call.body {
        request = request.header("content-type", "application/json").body(body.clone());
    }
    match request.send().await {
        Err(error) => (None, String::new(), Some(error.to_string())),
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(text) => (Some(status), text.chars().take(BODY_CHARS).collect(), None),
                Err(error) => (Some(status), String::new(), Some(error.to_string())),
            }
        }
    }
}
