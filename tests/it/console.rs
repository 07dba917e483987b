//! The gameday console (`firedrill run --gameday`) through the CLI:
//!
//! - in headless Chromium (DevTools protocol over `--remote-debugging-pipe`), against the real
//!   stack of `scenarios/gameday-go-no-go.yaml`: the page shows the prompt and the live timeline,
//!   a notification posted to the status sink appears under its sink, a real mouse click on
//!   "Acknowledge" is journaled as the console's acknowledgement between the prompt and its
//!   deadline, and a click on "We decided to roll back" rolls billing back to 1.0 (the version the
//!   real container reports afterwards);
//! - without the token (or with a wrong one) every route answers 403, and the listener is bound
//!   on 127.0.0.1 only (the fake backend: no Docker needed for this one).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    demo_images, describe, ensure_tool, firedrill, leftovers, report, stack_lock,
};

const SCENARIO: &str = "scenarios/gameday-go-no-go.yaml";
const ACK_STEP: &str = "on-call acknowledges the rollout";
const DECISION_STEP: &str = "go or no-go";

/// A `firedrill run --gameday` in the background: its stderr lines as they come.
struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Run {
    fn start(extra: &[&str], report_dir: &std::path::Path) -> Run {
        let mut child = firedrill()
            .env("CI", "true")
            .args(["run", "--gameday", "--report"])
            .arg(report_dir)
            .args(extra)
            .arg(SCENARIO)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("failed to start firedrill");
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = send.send(line);
            }
        });
        Run { child, lines, seen }
    }

    /// The first stderr line `pick` accepts, waiting at most `limit` for it.
    fn line<T>(&self, limit: Duration, pick: impl Fn(&str) -> Option<T>) -> T {
        loop {
            match self.lines.recv_timeout(limit) {
                Ok(line) => {
                    if let Some(value) = pick(&line) {
                        return value;
                    }
                }
                Err(_) => {
                    panic!("no such line within {limit:?}; stderr so far:\n{}", self.stderr())
                }
            }
        }
    }

    /// The console's URL, port and token from `gameday console: URL`.
    fn console(&self) -> (String, u16, String) {
        self.line(Duration::from_secs(120), |line| {
            let url = line.strip_prefix("gameday console: ")?.to_owned();
            let rest = url.strip_prefix("http://127.0.0.1:")?;
            let (port, query) = rest.split_once("/?token=")?;
            Some((url.clone(), port.parse().ok()?, query.to_owned()))
        })
    }

    fn stderr(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }

    /// Wait for the exit (bounded: every prompt has a deadline); its code.
    fn finish(mut self, limit: Duration) -> (Option<i32>, String) {
        let attempts = limit.as_millis() / 100;
        for _ in 0..attempts {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stdout = String::new();
                self.child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
                return (status.code(), format!("{stdout}\n{}", self.stderr()));
            }
            pause();
        }
        let _ = self.child.kill();
        panic!("the run did not end within {limit:?}:\n{}", self.stderr());
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "a poll interval between looks at a page or a process, not a readiness sleep"
)]
fn pause() {
    std::thread::sleep(Duration::from_millis(100));
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; the status and the body.
fn http(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    // An event stream does not end: read what came within the timeout.
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// A form post as the page's script sends it.
fn post_answer(port: u16, token: &str, step: &str, answer: &str) -> (u16, String) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("step", step)
        .append_pair("answer", answer)
        .finish();
    let headers =
        [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")];
    http(port, "POST", &format!("/answer?token={token}"), &headers, &body)
}

/// Headless Chromium driven over the DevTools protocol on a pipe (fd 3 in, fd 4 out: the shell
/// maps them to our stdin/stdout pipes), one page attached.
struct Browser {
    child: Child,
    input: ChildStdin,
    messages: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(url: &str) -> Browser {
        ensure_tool("chromium-headless-shell", "chromium-headless-shell");
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(
                "exec chromium-headless-shell --headless --no-sandbox --disable-gpu --no-first-run \
                 --disable-background-networking --hide-scrollbars --remote-debugging-pipe \
                 --user-data-dir=\"$1\" about:blank 3<&0 4>&1 0</dev/null 1>/dev/null",
            )
            .arg("sh")
            .arg(profile.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium-headless-shell");
        let input = child.stdin.take().unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let (send, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut message = Vec::new();
            while output.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop();
                if let Ok(value) = serde_json::from_slice::<Value>(&message) {
                    let _ = send.send(value);
                }
                message.clear();
            }
        });
        let mut browser = Browser {
            child,
            input,
            messages,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }), false);
        let target = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
            false,
        );
        browser.session = attached["sessionId"].as_str().expect("a session").to_owned();
        // A phone-sized screen.
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 390, "height": 1100, "deviceScaleFactor": 1, "mobile": true }),
            true,
        );
        browser.call("Page.navigate", json!({ "url": url }), true);
        browser
    }

    /// Send a command (to the page's session when `page`) and wait for its answer.
    fn call(&mut self, method: &str, params: Value, page: bool) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if page {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.input.write_all(&bytes).expect("write to chromium");
        loop {
            let answer =
                self.messages.recv_timeout(Duration::from_secs(30)).expect("chromium answers");
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Evaluate `expression` in the page; its value (JSON).
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
            true,
        );
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    /// Poll `expression` until it is truthy (not null/false/empty); its value.
    fn wait_for(&mut self, what: &str, limit: Duration, expression: &str) -> Value {
        for _ in 0..limit.as_millis() / 100 {
            let value = self.eval(expression);
            if !(value.is_null() || value == false || value == "") {
                return value;
            }
            pause();
        }
        let text = self.eval("document.body ? document.body.innerText : ''");
        panic!("the page did not show {what} within {limit:?}; it shows:\n{text}");
    }

    /// A real click (mouse pressed and released through the input pipeline) on the centre of the
    /// element `selector` selects.
    fn click(&mut self, selector: &str) {
        let rect = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); e.scrollIntoView({{block: 'center'}}); \
             const r = e.getBoundingClientRect(); return {{ x: r.x + r.width / 2, y: r.y + r.height / 2 }}; }})()"
        ));
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": rect["x"], "y": rect["y"], "button": "left", "clickCount": 1 }),
                true,
            );
        }
    }

    fn screenshot(&mut self) -> Vec<u8> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }), true);
        decode_base64(shot["data"].as_str().expect("png data"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| *c != b'=').map(value).collect();
    bytes
        .chunks(4)
        .flat_map(|chunk| {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, v)| n | (u32::from(*v) << (18 - 6 * i)));
            let out = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.into_iter().take(chunk.len() - 1).collect::<Vec<_>>()
        })
        .collect()
}

fn card(step: &str) -> String {
    format!(".prompt[data-step=\"{step}\"]")
}

/// The journal event `event` for `step`.
fn journal_event<'j>(journal: &'j [Value], event: &str, step: &str) -> &'j Value {
    journal
        .iter()
        .find(|e| e["event"] == event && e["step"] == step)
        .unwrap_or_else(|| panic!("no `{event}` for `{step}` in the journal"))
}

#[test]
fn the_console_in_a_browser_shows_the_run_and_its_clicks_acknowledge_and_roll_back() {
    let _serial = stack_lock();
    demo_images();
    let built = firedrill().args(["images", SCENARIO]).output().expect("firedrill images");
    assert!(built.status.success(), "{}", describe(&built));
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(&[], dir.path());
    let (url, _, _) = run.console();
    let status_sink: u16 = run.line(Duration::from_secs(60), |line| {
        let rest = line.split("sink `status` (statuspage) listening on 127.0.0.1:").nth(1)?;
        rest.split(',').next()?.trim().parse().ok()
    });
    let mut browser = Browser::open(&url);

    // The prompt, its countdown and the live timeline.
    browser.wait_for(
        "the on-call's prompt",
        Duration::from_secs(90),
        &format!("document.querySelector('{} button.ack')", card(ACK_STEP).replace('\'', "\\'")),
    );
    let text = browser.eval(&format!(
        "document.querySelector('{}').innerText",
        card(ACK_STEP).replace('\'', "\\'")
    ));
    let text = text.as_str().unwrap();
    assert!(text.contains("on-call") && text.contains("billing 2.0 is live"), "{text}");
    assert!(text.contains("s left"), "a countdown to the deadline: {text}");
    let timeline = browser.eval("document.getElementById('timeline').innerText");
    let timeline = timeline.as_str().unwrap();
    assert!(timeline.contains("upgrade `billing` completed"), "{timeline}");
    assert!(timeline.contains("PROMPT on-call"), "{timeline}");
    assert_eq!(browser.eval("document.getElementById('live').textContent"), "live");
    // Nothing overflows a phone's width.
    let width = browser.eval("document.documentElement.scrollWidth");
    assert!(width.as_u64().unwrap() <= 390, "the page is {width} px wide on a 390 px screen");

    // A notification the on-call's tooling posts shows under its sink, live.
    let incident = r#"{"incident":{"name":"Billing 2.0 rollout","status":"investigating","body":"Rolling out billing 2.0."}}"#;
    let (code, body) = http(
        status_sink,
        "POST",
        "/v1/pages/page1/incidents",
        &[("Content-Type", "application/json")],
        incident,
    );
    assert_eq!(code, 201, "{body}");
    browser.wait_for(
        "the status page's incident",
        Duration::from_secs(10),
        "(document.querySelector('.sink[data-sink=\"status\"] li') || {}).innerText",
    );
    let receipt =
        browser.eval("document.querySelector('.sink[data-sink=\"status\"] li').innerText");
    assert!(receipt.as_str().unwrap().contains("Billing 2.0 rollout"), "{receipt}");

    // A click on Acknowledge.
    browser.click(&format!("{} button.ack", card(ACK_STEP)));
    browser.wait_for(
        "the acknowledgement",
        Duration::from_secs(10),
        "document.getElementById('status').textContent.startsWith('acknowledged')",
    );
    // The decision.
    browser.wait_for(
        "the incident lead's decision",
        Duration::from_secs(30),
        &format!("document.querySelector('{} button.rollback')", card(DECISION_STEP)),
    );
    let shot = browser.screenshot();
    assert_eq!(&shot[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(shot[16..20].try_into().unwrap()), 390, "a phone-wide shot");
    if let Ok(path) = std::env::var("FIREDRILL_CONSOLE_SCREENSHOT") {
        fs_err::write(path, &shot).unwrap();
    }
    browser.click(&format!("{} button.rollback", card(DECISION_STEP)));
    browser.wait_for(
        "the decision taken",
        Duration::from_secs(10),
        "document.getElementById('status').textContent.startsWith('decided to roll back')",
    );
    browser.wait_for(
        "the rollback on the timeline",
        Duration::from_secs(60),
        "document.getElementById('timeline').innerText.includes('rolled-back')",
    );
    drop(browser);

    let (code, output) = run.finish(Duration::from_secs(120));
    assert_eq!(code, Some(0), "{output}");
    let report = report(dir.path());
    let run_id = report["run-id"].as_str().unwrap();
    assert_eq!(leftovers(run_id), Vec::<String>::new(), "the run left objects behind");
    let journal: Vec<Value> = fs_err::read_to_string(dir.path().join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // The acknowledgement is the console's, after the prompt and before its deadline.
    let prompt = journal_event(&journal, "human-prompted", ACK_STEP);
    let ack = journal_event(&journal, "human-acknowledged", ACK_STEP);
    assert_eq!(ack["by"], "console");
    let (shown, acked) =
        (prompt["offset-us"].as_u64().unwrap(), ack["offset-us"].as_u64().unwrap());
    assert!(shown < acked && acked < shown + prompt["deadline-us"].as_u64().unwrap());
    // The decision, then the rollback of the real container, which reports 1.0 again.
    let decided = journal_event(&journal, "human-decided", DECISION_STEP);
    assert_eq!(
        (&decided["by"], &decided["decision"], &decided["service"]),
        (&json!("console"), &json!("roll-back"), &json!("billing"))
    );
    let rolled_back = journal
        .iter()
        .find(|e| e["event"] == "upgrade" && e["stage"] == "rolled-back")
        .expect("the rollback ran");
    assert_eq!(rolled_back["ok"], true, "{rolled_back}");
    assert!(rolled_back["seq"].as_u64() > decided["seq"].as_u64());
    let version = journal
        .iter()
        .find(|e| e["event"] == "version-observed" && e["moment"] == "after-rollback")
        .expect("the version after the rollback");
    assert!(version.to_string().contains("1.0"), "{version}");
    // The report's human lane has both answers.
    let humans = report["humans"].as_array().unwrap();
    let decision = humans.iter().find(|h| h["step"] == DECISION_STEP).unwrap();
    assert_eq!(
        (&decision["decided"], &decision["decided-by"]),
        (&json!("roll-back billing"), &json!("console"))
    );
    assert_eq!(decision["outcome"], "done");
}

#[test]
fn the_console_refuses_requests_without_its_token_and_listens_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(&["--backend", "fake", "--no-history"], dir.path());
    let (_, port, token) = run.console();
    for target in
        ["/", "/events", "/answer", "/nowhere", "/?token=", "/?token=0000", "/events?after=0"]
    {
        for method in ["GET", "POST"] {
            let (code, body) = http(port, method, target, &[], "");
            assert_eq!(code, 403, "{method} {target}: {body}");
        }
    }
    let wrong: String = token.chars().rev().collect();
    assert_ne!(wrong, token);
    assert_eq!(http(port, "GET", &format!("/?token={wrong}"), &[], "").0, 403);
    assert_eq!(http(port, "GET", &format!("/events?token={wrong}"), &[], "").0, 403);
    assert_eq!(post_answer(port, &wrong, ACK_STEP, "acknowledge").0, 403);
    // With it: the page, and the stream (its first events arrive at once).
    let (code, page) = http(port, "GET", &format!("/?token={token}"), &[], "");
    assert_eq!(code, 200);
    assert!(page.contains("name=\"viewport\""), "{page}");
    // Bound to 127.0.0.1 only: the kernel's socket table lists the port on 0100007F (127.0.0.1),
    // never on 0.0.0.0 or an IPv6 address.
    let listening = |file: &str| -> Vec<String> {
        fs_err::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| {
                let local = line.split_whitespace().nth(1)?;
                let state = line.split_whitespace().nth(3)?;
                let (addr, hex_port) = local.rsplit_once(':')?;
                (state == "0A" && u16::from_str_radix(hex_port, 16).ok()? == port)
                    .then(|| addr.to_owned())
            })
            .collect()
    };
    assert_eq!(listening("/proc/net/tcp"), ["0100007F"]);
    assert_eq!(listening("/proc/net/tcp6"), Vec::<String>::new());

    // Answers: an unknown step is a conflict; then a plain form post (no script) acknowledges
    // and redirects to the page, and the decision ends the run.
    let (code, body) = post_answer(port, &token, "no such step", "acknowledge");
    assert_eq!(code, 409, "{body}");
    let ack = loop {
        let (code, body) = http(
            port,
            "POST",
            &format!("/answer?token={token}"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &format!("step={}&answer=acknowledge", ACK_STEP.replace(' ', "+")),
        );
        if code != 409 {
            break (code, body);
        }
        pause();
    };
    assert_eq!(ack.0, 303, "{}", ack.1);
    loop {
        let (code, body) = post_answer(port, &token, DECISION_STEP, "roll-back");
        if code == 200 {
            assert!(body.contains("decided to roll back"), "{body}");
            break;
        }
        assert_eq!(code, 409, "{body}");
        pause();
    }
    let (code, output) = run.finish(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{output}");
    let journal = fs_err::read_to_string(dir.path().join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"event\":\"human-decided\""), "{journal}");
}
