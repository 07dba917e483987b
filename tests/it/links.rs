//! Links through the fault proxy against the real engine: `scenarios/db-latency.yaml` passes
//! through the CLI and billing's own requests show the 300 ms (from inside the stack: billing →
//! proxy → db) only while the fault is in force; a `cut` makes connections from inside the stack
//! hang (accepted, never answered) and they are answered once it heals; an `http-error` on an
//! http link answers some requests itself; the same `--seed` replays the same decisions; nothing
//! is left behind.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{
    demo_images, describe, firedrill, leftovers, report, run_id_of, stack_lock,
    wait_for_journal_line,
};

/// Plenty for any event of these scenarios to show up.
const EVENT_LIMIT: Duration = Duration::from_secs(120);

fn journal(dir: &Path) -> Vec<serde_json::Value> {
    let text = fs_err::read_to_string(dir.join("journal.jsonl")).expect("journal.jsonl");
    text.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect()
}

/// `bash -c SCRIPT` in a container.
fn exec_bash(container: &str, script: &str) -> Output {
    Command::new("docker")
        .args(["exec", container, "bash", "-c", script])
        .output()
        .expect("failed to run docker exec")
}

#[test]
fn db_latency_is_felt_through_the_link_and_removed() {
    let _serial = stack_lock();
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let output = firedrill()
        .args(["run", "--report"])
        .arg(dir.path())
        .arg("scenarios/db-latency.yaml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = report(dir.path());
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 8);
    for check in checks {
        assert_eq!(check["status"], "passed", "{check}");
    }
    let breached = &checks[2];
    assert!(
        breached["summary"].as_str().unwrap().starts_with("breached as expected: p99 "),
        "{breached}"
    );

    // From the journal: billing's requests (which query the database through the link) take the
    // latency while the fault is in force, and only then.
    let events = journal(dir.path());
    let offset = |event: &str| {
        events
            .iter()
            .find(|e| e["event"] == event && e["link"] == "db")
            .and_then(|e| e["offset-us"].as_u64())
            .unwrap_or_else(|| panic!("no `{event}` for link `db`"))
    };
    let (applied, reverted) = (offset("fault-applied"), offset("fault-reverted"));
    let requests: Vec<(u64, u64, bool)> = events
        .iter()
        .filter(|e| e["event"] == "traffic-request")
        .map(|e| {
            let at = |key: &str| e[key].as_u64().unwrap_or_else(|| panic!("{key} in {e}"));
            (at("scheduled-us"), at("latency-us"), e["ok"] == true)
        })
        .collect();
    assert!(requests.iter().all(|(_, _, ok)| *ok), "no request fails from latency alone");
    // A request due in the fault's last second may see it removed while in flight: only those
    // that ran wholly inside it are held to the 300 ms.
    let during: Vec<u64> = requests
        .iter()
        .filter(|(at, _, _)| (applied..reverted - 1_000_000).contains(at))
        .map(|(_, latency, _)| *latency)
        .collect();
    let after: Vec<u64> = requests
        .iter()
        .filter(|(at, _, _)| *at > reverted)
        .map(|(_, latency, _)| *latency)
        .collect();
    assert!(
        during.len() >= 40 && after.len() >= 30,
        "{} during, {} after",
        during.len(),
        after.len()
    );
    // Every answer from the database is 300 ms late: no request during the fault is faster.
    assert!(during.iter().all(|latency| *latency >= 300_000), "{during:?}");
    // Once removed (what the proxy held is delivered at once), nothing is that slow any more.
    assert!(after.iter().all(|latency| *latency < 300_000), "{after:?}");

    // The proxy's own account: one toxic added on the `db` link, applied to billing's
    // connection, removed; the link closed at teardown.
    let activity: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "link-activity")
        .map(|e| e["detail"]["event"].as_str().unwrap())
        .collect();
    for kind in ["accepted", "connected", "toxic-added", "toxic-applied", "toxic-removed", "closed"]
    {
        assert!(activity.contains(&kind), "no `{kind}` in {activity:?}");
    }
    let run_id = report["run-id"].as_str().unwrap();
    assert_eq!(leftovers(run_id), Vec::<String>::new());
}

#[test]
fn link_cut_scenario_passes() {
    let _serial = stack_lock();
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let output = firedrill()
        .args(["run", "--report"])
        .arg(dir.path())
        .arg("scenarios/link-cut.yaml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let applied = wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| {
        v["event"] == "fault-applied" && v["link"] == "db"
    });
    assert_eq!(applied["detail"], "bytes held until healed, both (toxic-1, toxic-2)");
    let run_id = report(dir.path())["run-id"].as_str().unwrap().to_owned();
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}

/// What one run of `links-observed.yaml` showed from inside the stack.
#[derive(Debug, PartialEq)]
struct Observed {
    /// Statuses the `api` link answered while `http-error` was in force, in order.
    statuses: Vec<String>,
    /// The proxy's decisions on the `api` link: (connection, what), by connection. Within one
    /// connection the toxic's `toxic-applied` (recorded once its stage is in place) and an
    /// `http-injected` may be journaled in either order: which decisions were taken is what the
    /// seed fixes, not how two tasks' events interleave.
    decisions: Vec<(u64, String)>,
}

fn observe_links(seed: &str) -> Observed {
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let child = firedrill()
        .args(["run", "--seed", seed, "--report"])
        .arg(dir.path())
        .arg("tests/scenarios/slow/links-observed.yaml")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run_id = run_id_of(dir.path());
    let db = format!("{run_id}-db");
    let port = |link: &str| {
        let started = wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| {
            v["event"] == "link-started" && v["link"] == link
        });
        // The first address is the gateway's: the one containers reach as host.docker.internal.
        let addr = started["addrs"][0].as_str().unwrap().to_owned();
        addr.rsplit(':').next().unwrap().to_owned()
    };
    let (db_port, api_port) = (port("db"), port("api"));
    let step_event = |event: &str, step: &str| {
        let line = wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| {
            v["event"] == event && v["step"] == step
        });
        assert_eq!(line["ok"], true, "{line}");
    };
    // PostgreSQL answers an SSLRequest with one byte, `N`, at once.
    let ssl_request = format!(
        "timeout 2 bash -c 'exec 3<>/dev/tcp/host.docker.internal/{db_port}; \
         printf \"\\x00\\x00\\x00\\x08\\x04\\xd2\\x16\\x2f\" >&3; head -c1 <&3'"
    );

    step_event("fault-applied", "cut db");
    let cut = exec_bash(&db, &ssl_request);
    // Accepted (a refused connect would fail at once with 1), then no answer: `timeout` ends it.
    assert_eq!(cut.status.code(), Some(124), "the connection hangs: {}", describe(&cut));
    step_event("fault-reverted", "cut db");
    let healed = exec_bash(&db, &ssl_request);
    assert_eq!(String::from_utf8_lossy(&healed.stdout), "N", "{}", describe(&healed));

    let requests = |count: u32| {
        let script = format!(
            "for i in $(seq {count}); do exec 3<>/dev/tcp/host.docker.internal/{api_port}; \
             printf 'GET /health HTTP/1.1\\r\\nHost: billing\\r\\nConnection: close\\r\\n\\r\\n' >&3; \
             head -n1 <&3 | cut -d' ' -f2; exec 3<&-; done"
        );
        let output = exec_bash(&db, &script);
        assert!(output.status.success(), "{}", describe(&output));
        String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    step_event("fault-applied", "api errors");
    let statuses = requests(16);
    step_event("fault-reverted", "api errors");
    let after = requests(3);
    assert_eq!(after, ["200", "200", "200"], "removed: every request reaches billing");

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    let decisions = journal(dir.path())
        .into_iter()
        .filter(|e| e["event"] == "link-activity" && e["link"] == "api")
        .filter_map(|e| {
            let detail = &e["detail"];
            let conn = detail["conn"].as_u64()?;
            match detail["event"].as_str()? {
                "toxic-applied" => Some((conn, "applied".to_owned())),
                "http-injected" => Some((conn, detail["injection"].to_string())),
                _ => None,
            }
        })
        .collect::<Vec<_>>();
    let mut decisions = decisions;
    decisions.sort();
    Observed { statuses, decisions }
}

#[test]
fn cut_and_http_error_are_seen_from_inside_the_stack_and_replay_with_the_seed() {
    let _serial = stack_lock();
    let first = observe_links("7");
    assert_eq!(first.statuses.len(), 16, "{first:?}");
    let errors = first.statuses.iter().filter(|s| *s == "503").count();
    let served = first.statuses.iter().filter(|s| *s == "200").count();
    // Toxicity 75% (per connection) and probability 0.5 (per request) over 16 one-request
    // connections, decided by seed 7: some of each, nothing else.
    assert!(errors > 0 && served > 0 && errors + served == 16, "{first:?}");
    let applied = first.decisions.iter().filter(|(_, what)| what == "applied").count();
    assert!(applied > errors && applied < 16, "toxicity spared some connections: {first:?}");
    let injected = first.decisions.iter().filter(|(_, what)| what.contains("error")).count();
    assert_eq!(injected, errors, "each 503 is journaled: {first:?}");
    // Only connections the toxicity roll picked got an error.
    for (conn, what) in &first.decisions {
        if what.contains("error") {
            assert!(first.decisions.contains(&(*conn, "applied".to_owned())), "{first:?}");
        }
    }

    let second = observe_links("7");
    assert_eq!(second, first, "the same seed replays the same decisions");
}

/// One answer as a client inside the stack read it.
#[derive(Debug)]
struct RawAnswer {
    status: String,
    head: String,
    body: String,
}

/// Send each `(method, path, extra header lines)` from `container` through the proxy at
/// `host.docker.internal:PORT`, one connection each, and read each answer to its end (the close).
fn ask_from(container: &str, port: &str, requests: &[(&str, &str, &str)]) -> Vec<RawAnswer> {
    let mut script = String::new();
    for (method, path, headers) in requests {
        script.push_str(&format!(
            "exec 3<>/dev/tcp/host.docker.internal/{port}; \
             printf '{method} {path} HTTP/1.1\\r\\nHost: web\\r\\nContent-Length: 0\\r\\n\
             Connection: close\\r\\n{headers}\\r\\n' >&3; timeout 5 cat <&3; exec 3<&-; \
             printf '\\n=====\\n'; "
        ));
    }
    let output = exec_bash(container, &script);
    assert!(output.status.success(), "{}", describe(&output));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let answers: Vec<RawAnswer> = text
        .split("\n=====\n")
        .filter(|raw| !raw.is_empty())
        .map(|raw| {
            let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
            let status = head.split(' ').nth(1).unwrap_or_default().to_owned();
            RawAnswer { status, head: head.to_owned(), body: body.to_owned() }
        })
        .collect();
    assert_eq!(answers.len(), requests.len(), "{text}");
    answers
}

#[test]
fn http_faults_by_route_are_seen_from_inside_the_webcache_stack_and_removed() {
    let _serial = stack_lock();
    demo_images();
    let dir = tempfile::tempdir().unwrap();
    let child = firedrill()
        .args(["run", "--report"])
        .arg(dir.path())
        .arg("tests/scenarios/webcache/http-routes.yaml")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run_id = run_id_of(dir.path());
    let cache = format!("{run_id}-cache");
    let started = wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| {
        v["event"] == "link-started" && v["link"] == "site"
    });
    let addr = started["addrs"][0].as_str().unwrap().to_owned();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let step_event = |event: &str, step: &str| {
        let line = wait_for_journal_line(dir.path(), EVENT_LIMIT, |v| {
            v["event"] == event && v["step"] == step
        });
        assert_eq!(line["ok"], true, "{line}");
    };
    let full = "webcache 1.0\n";

    // `POST /invoices` fails; the same path with another method, and another path, do not.
    step_event("fault-applied", "invoices fail");
    let during = ask_from(
        &cache,
        &port,
        &[("GET", "/health", ""), ("POST", "/invoices", ""), ("GET", "/invoices", "")],
    );
    let statuses: Vec<&str> = during.iter().map(|a| a.status.as_str()).collect();
    assert_eq!(statuses, ["200", "503", "200"], "{during:?}");
    assert_eq!(during[0].body, "ok\n");
    step_event("fault-reverted", "invoices fail");
    let after = ask_from(&cache, &port, &[("POST", "/invoices", "")]);
    assert_eq!((after[0].status.as_str(), after[0].body.as_str()), ("200", full));

    // Answers to `POST`/`PUT /invoices` end after 3 body bytes; `GET /health` is whole.
    step_event("fault-applied", "invoices cut");
    let during = ask_from(
        &cache,
        &port,
        &[("GET", "/health", ""), ("POST", "/invoices", ""), ("PUT", "/invoices", "")],
    );
    assert_eq!(during[0].body, "ok\n", "{during:?}");
    for cut in &during[1..] {
        assert_eq!(cut.status, "200", "{cut:?}");
        assert!(cut.head.to_lowercase().contains("content-length: 13"), "{cut:?}");
        assert_eq!(cut.body, "web", "the body ends after 3 of its 13 bytes: {cut:?}");
    }
    step_event("fault-reverted", "invoices cut");
    let after = ask_from(&cache, &port, &[("PUT", "/invoices", "")]);
    assert_eq!(after[0].body, full);

    // Tenant acme's reports come back well-formed and 7 bytes long; others, and deeper paths
    // (`*` stays within one segment), are whole.
    step_event("fault-applied", "reports truncated");
    let acme = "x-tenant: acme\\r\\n";
    let during = ask_from(
        &cache,
        &port,
        &[("GET", "/reports/q1", acme), ("GET", "/reports/q1", ""), ("GET", "/reports/q1/x", acme)],
    );
    assert!(during[0].head.contains("Content-Length: 7"), "{during:?}");
    assert_eq!(during[0].body, "webcach", "{during:?}");
    assert_eq!((during[1].body.as_str(), during[2].body.as_str()), (full, full), "{during:?}");
    step_event("fault-reverted", "reports truncated");
    let after = ask_from(&cache, &port, &[("GET", "/reports/q1", acme)]);
    assert_eq!(after[0].body, full);

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    // The journal has each decision the proxy took.
    let injections: Vec<String> = journal(dir.path())
        .into_iter()
        .filter(|e| e["event"] == "link-activity" && e["detail"]["event"] == "http-injected")
        .map(|e| e["detail"]["injection"]["kind"].to_string())
        .collect();
    assert_eq!(injections.len(), 4, "{injections:?}");
}
