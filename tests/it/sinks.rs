//! The notification sinks over loopback with real clients: `lettre` and Python's `smtplib` for
//! SMTP, a raw TCP client for protocol errors, `reqwest` with each provider's request shapes.
//! No Docker.

use std::net::SocketAddr;
use std::sync::Arc;

use firedrill::clock::{Clock, SystemClock};
use firedrill::sinks::{
    Chaos, ChaosMode, Limits, MAX_CONNECTIONS, Notification, RejectReason, Sink, SinkConfig,
    SinkEvent, SinkKind, Timeouts,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A started sink and what it reported.
struct Harness {
    sink: Sink,
    events: mpsc::UnboundedReceiver<SinkEvent>,
}

impl Harness {
    async fn start(kind: SinkKind, limits: Limits) -> Harness {
        Harness::start_on(kind, limits, vec!["127.0.0.1:0".parse().unwrap()]).await
    }

    async fn start_on(kind: SinkKind, limits: Limits, listen: Vec<SocketAddr>) -> Harness {
        Harness::start_with(kind, limits, listen, Timeouts::default()).await
    }

    async fn start_with(
        kind: SinkKind,
        limits: Limits,
        listen: Vec<SocketAddr>,
        timeouts: Timeouts,
    ) -> Harness {
        let (tx, events) = mpsc::unbounded_channel();
        let clock = Arc::new(SystemClock::start());
        let config =
            SinkConfig { name: format!("{kind}-sink"), kind, listen, limits, timeouts, seed: 7 };
        let sink = Sink::start(
            config,
            Arc::new(move || clock.offset()),
            Arc::new(move |event| drop(tx.send(event))),
        )
        .await
        .expect("sink starts");
        Harness { sink, events }
    }

    fn addr(&self) -> SocketAddr {
        self.sink.local_addrs()[0]
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    async fn next(&mut self) -> SinkEvent {
        self.events.recv().await.expect("the sink reports")
    }

    async fn received(&mut self) -> Notification {
        match self.next().await {
            SinkEvent::Received(notification) => notification,
            other => panic!("expected a received message, got {other:?}"),
        }
    }

    async fn rejected(&mut self) -> (RejectReason, String) {
        match self.next().await {
            SinkEvent::Rejected { reason, detail, sink } => {
                assert_eq!(sink, self.sink.name());
                (reason, detail)
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    /// Nothing more was reported (events are sent before the answer, so after an answer this is
    /// exact).
    fn quiet(&mut self) {
        if let Ok(event) = self.events.try_recv() {
            panic!("unexpected event {event:?}");
        }
    }
}

fn small() -> Limits {
    Limits { max_message_bytes: 4096, max_messages: 100 }
}

// ---------------------------------------------------------------------------------------------
// SMTP

/// A raw SMTP client: send lines, read (multi-line) replies.
struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let mut raw = Raw { reader: BufReader::new(TcpStream::connect(addr).await.unwrap()) };
        assert_eq!(raw.reply().await.0, 220);
        raw
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).await.unwrap();
    }

    /// The code and the text of every line of one reply.
    async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).await.unwrap() > 0,
                "connection closed before a reply"
            );
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return (line[..3].parse().unwrap(), text);
            }
        }
    }

    async fn command(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    async fn closed(&mut self) -> bool {
        let mut rest = String::new();
        self.reader.read_line(&mut rest).await.unwrap() == 0
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lettre_multipart_mail_with_non_ascii_subject_is_recorded_exactly() {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let mut h = Harness::start(SinkKind::Smtp, Limits::default()).await;
    let subject = "Störung: Abrechnung ist ausgefallen — billing outage ⚠";
    let text = "Billing is down since 21:04 UTC.\nWe are working on it; next update in 30 minutes.\nÜbersetzung folgt.";
    let html = "<p>Billing is <b>down</b> since 21:04 UTC.</p>";
    let message = Message::builder()
        .from("Acme Status <status@acme.example>".parse::<Mailbox>().unwrap())
        .to("Ann <ann@customer.example>".parse().unwrap())
        .to("bob@customer.example".parse().unwrap())
        .cc("ops@acme.example".parse().unwrap())
        .bcc("audit@acme.example".parse().unwrap())
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(text.to_string(), html.to_string()))
        .unwrap();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(h.addr().port())
        .build();
    transport.send(message).await.expect("the sink accepts lettre's mail");

    let mail = h.received().await;
    assert_eq!(mail.kind, SinkKind::Smtp);
    assert_eq!(mail.from.as_deref(), Some("status@acme.example"));
    let mut recipients = mail.recipients.clone();
    recipients.sort();
    assert_eq!(
        recipients,
        ["ann@customer.example", "audit@acme.example", "bob@customer.example", "ops@acme.example"]
    );
    assert_eq!(mail.subject.as_deref(), Some(subject));
    assert_eq!(mail.body.trim_end(), text);
    assert_eq!(mail.channel_detail["html"], true);
    assert_eq!(mail.channel_detail["to"], json!(["ann@customer.example", "bob@customer.example"]));
    assert_eq!(mail.channel_detail["cc"], json!(["ops@acme.example"]));
    h.quiet();
    h.sink.shutdown().await;
}

const SMTPLIB_SCRIPT: &str = r#"
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "Alerts <alerts@acme.example>"
m["To"] = "carol@customer.example, dave@customer.example"
m["Subject"] = "Panne de facturation à 21 h — résolu"
m.set_content("Billing is back.\n.leading dot line\n..two dots\n.\nend\n")
m.add_alternative("<p>Billing is <i>back</i>.</p>", subtype="html")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.ehlo("python.test")
    assert "size" in s.esmtp_features and "8bitmime" in s.esmtp_features, s.esmtp_features
    s.send_message(m, to_addrs=["carol@customer.example", "dave@customer.example", "eve@customer.example"])
print("sent")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn python_smtplib_mail_is_recorded_with_dot_lines_intact() {
    let mut h = Harness::start(SinkKind::Smtp, Limits::default()).await;
    let port = h.addr().port().to_string();
    let output = tokio::process::Command::new("python3")
        .args(["-c", SMTPLIB_SCRIPT, &port])
        .output()
        .await
        .expect("python3 runs");
    assert!(output.status.success(), "smtplib failed: {}", String::from_utf8_lossy(&output.stderr));
    let mail = h.received().await;
    assert_eq!(mail.from.as_deref(), Some("alerts@acme.example"));
    assert_eq!(
        mail.recipients,
        ["carol@customer.example", "dave@customer.example", "eve@customer.example"]
    );
    assert_eq!(mail.subject.as_deref(), Some("Panne de facturation à 21 h — résolu"));
    assert_eq!(mail.body, "Billing is back.\n.leading dot line\n..two dots\n.\nend\n");
    h.quiet();
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_protocol_errors_get_rfc_answers_and_rejections() {
    let mut h = Harness::start(SinkKind::Smtp, small()).await;
    let mut c = Raw::connect(h.addr()).await;
    // Out of sequence before the greeting.
    assert_eq!(c.command("MAIL FROM:<a@acme.example>").await.0, 503);
    assert_eq!(h.rejected().await.0, RejectReason::Protocol);
    let (code, ehlo) = c.command("EHLO client.test").await;
    assert_eq!(code, 250);
    assert!(ehlo.contains("250-SIZE 4096\r\n") && ehlo.contains("8BITMIME"), "{ehlo}");
    assert_eq!(c.command("RCPT TO:<x@acme.example>").await.0, 503);
    assert_eq!(c.command("DATA").await.0, 503);
    assert_eq!(c.command("HELO").await.0, 501);
    assert_eq!(c.command("FROBNICATE now").await.0, 500);
    assert_eq!(c.command("MAIL FROM:a@acme.example").await.0, 501);
    assert_eq!(c.command("MAIL FROM:<a@acme.example> SIZE=5000").await.0, 552);
    assert_eq!(c.command("MAIL FROM:<a@acme.example> FOO=1").await.0, 555);
    for _ in 0..5 {
        assert_eq!(h.rejected().await.0, RejectReason::Protocol);
    }
    assert_eq!(h.rejected().await.0, RejectReason::TooLarge);
    assert_eq!(h.rejected().await.0, RejectReason::Protocol);
    assert_eq!(c.command("MAIL FROM:<a@acme.example> SIZE=100 BODY=8BITMIME").await.0, 250);
    assert_eq!(c.command("MAIL FROM:<b@acme.example>").await.0, 503);
    assert_eq!(c.command("RCPT TO:<no address>").await.0, 501);
    assert_eq!(c.command("DATA").await.0, 503);
    assert_eq!(h.rejected().await.0, RejectReason::Protocol);
    assert_eq!(h.rejected().await.0, RejectReason::Protocol);
    assert_eq!(h.rejected().await.0, RejectReason::Protocol);
    assert_eq!(c.command("VRFY ann").await.0, 252);
    assert_eq!(c.command("NOOP").await.0, 250);
    assert_eq!(c.command("RSET").await.0, 250);
    // The transaction is gone after RSET.
    assert_eq!(c.command("RCPT TO:<x@acme.example>").await.0, 503);
    assert_eq!(h.rejected().await.0, RejectReason::Protocol);
    // Garbage: not UTF-8, then a line over the command cap.
    c.send(b"\xff\xfe\x00garbage\r\n").await;
    assert_eq!(c.reply().await.0, 500);
    c.send(format!("NOOP {}\r\n", "x".repeat(5000)).as_bytes()).await;
    assert_eq!(c.reply().await.0, 500);
    assert_eq!(h.rejected().await, (RejectReason::Protocol, "command line is not UTF-8".into()));
    assert_eq!(h.rejected().await, (RejectReason::Protocol, "command line too long".into()));
    // Still serving after all that.
    assert_eq!(c.command("STARTTLS").await.0, 502);
    assert_eq!(h.rejected().await.0, RejectReason::Protocol);
    assert_eq!(c.command("QUIT").await.0, 221);
    assert!(c.closed().await);
    h.quiet();
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_data_is_refused_with_552_and_the_session_goes_on() {
    let mut h = Harness::start(SinkKind::Smtp, small()).await;
    let mut c = Raw::connect(h.addr()).await;
    c.command("EHLO client.test").await;
    c.command("MAIL FROM:<a@acme.example>").await;
    assert_eq!(c.command("RCPT TO:<b@customer.example>").await.0, 250);
    assert_eq!(c.command("DATA").await.0, 354);
    // 10 KB against a 4 KB limit, one long line then many short ones.
    c.send(format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(6000)).as_bytes()).await;
    for _ in 0..100 {
        c.send(b"a short line of forty characters.......\r\n").await;
    }
    c.send(b".\r\n").await;
    assert_eq!(c.reply().await.0, 552);
    assert_eq!(h.rejected().await.0, RejectReason::TooLarge);
    // The next transaction works.
    c.command("MAIL FROM:<a@acme.example>").await;
    c.command("RCPT TO:<b@customer.example>").await;
    c.command("DATA").await;
    c.send(b"Subject: small\r\n\r\nfits\r\n.\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    let mail = h.received().await;
    assert_eq!((mail.subject.as_deref(), mail.body.as_str()), (Some("small"), "fits\n"));
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_commands_and_bare_lf_lines_work() {
    let mut h = Harness::start(SinkKind::Smtp, small()).await;
    let mut c = Raw::connect(h.addr()).await;
    c.command("EHLO client.test").await;
    c.send(b"MAIL FROM:<>\r\nRCPT TO:<a@customer.example>\r\nRCPT TO:<Postmaster>\r\nDATA\r\n")
        .await;
    for code in [250, 250, 250, 354] {
        assert_eq!(c.reply().await.0, code);
    }
    c.send(b"From: bounce@acme.example\nSubject: lf\n\n..stuffed\nbody\n.\n").await;
    assert_eq!(c.reply().await.0, 250);
    let mail = h.received().await;
    assert_eq!(
        mail.from.as_deref(),
        Some("bounce@acme.example"),
        "null sender falls back to the header"
    );
    assert_eq!(mail.recipients, ["a@customer.example", "Postmaster"]);
    assert_eq!(mail.body, ".stuffed\nbody\n");
    h.sink.shutdown().await;
}

async fn one_mail(c: &mut Raw) -> u16 {
    c.command("MAIL FROM:<a@acme.example>").await;
    c.command("RCPT TO:<b@customer.example>").await;
    c.command("DATA").await;
    c.send(b"Subject: s\r\n\r\nbody\r\n.\r\n").await;
    c.reply().await.0
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_chaos_answers_451_554_or_holds_the_final_dot() {
    let mut h = Harness::start(SinkKind::Smtp, small()).await;
    let mut c = Raw::connect(h.addr()).await;
    c.command("EHLO client.test").await;
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Status(500), probability: 1.0, only: None }));
    assert_eq!(one_mail(&mut c).await, 554);
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Status(429), probability: 1.0, only: None }));
    assert_eq!(one_mail(&mut c).await, 451);
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    h.quiet();

    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Hang, probability: 1.0, only: None }));
    let held = tokio::spawn(async move { (one_mail(&mut c).await, c) });
    let (reason, detail) = h.rejected().await;
    assert_eq!(reason, RejectReason::Chaos);
    assert!(detail.starts_with("held open"), "{detail}");
    assert!(!held.is_finished());
    h.sink.set_chaos(None);
    let (code, mut c) = held.await.unwrap();
    assert_eq!(code, 250);
    assert_eq!(h.received().await.subject.as_deref(), Some("s"));

    // A client that hangs up while its mail is held ends the hold.
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Hang, probability: 1.0, only: None }));
    c.command("MAIL FROM:<a@acme.example>").await;
    c.command("RCPT TO:<b@customer.example>").await;
    c.command("DATA").await;
    c.send(b"Subject: gone\r\n\r\nbody\r\n.\r\n").await;
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    assert_eq!(h.sink.held_requests(), 1);
    drop(c);
    while h.sink.held_requests() > 0 {
        tokio::task::yield_now().await;
    }
    h.sink.set_chaos(None);
    h.quiet();
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_message_budget_and_error_budget_are_enforced() {
    let mut h =
        Harness::start(SinkKind::Smtp, Limits { max_message_bytes: 4096, max_messages: 1 }).await;
    let mut c = Raw::connect(h.addr()).await;
    c.command("EHLO client.test").await;
    assert_eq!(one_mail(&mut c).await, 250);
    h.received().await;
    assert_eq!(c.command("MAIL FROM:<a@acme.example>").await.0, 452);
    assert_eq!(h.rejected().await.0, RejectReason::LimitReached);
    // Twenty bad commands close the connection with 421.
    for _ in 0..18 {
        assert_eq!(c.command("BOGUS").await.0, 500);
    }
    assert_eq!(c.command("BOGUS").await.0, 500);
    assert_eq!(c.reply().await.0, 421);
    assert!(c.closed().await);
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_auth_is_accepted_without_checking() {
    let mut h = Harness::start(SinkKind::Smtp, small()).await;
    let mut c = Raw::connect(h.addr()).await;
    c.command("EHLO client.test").await;
    assert_eq!(c.command("AUTH PLAIN AGFsZXJ0cwBzZWNyZXQ=").await.0, 235);
    assert_eq!(c.command("AUTH PLAIN AGFsZXJ0cwBzZWNyZXQ=").await.0, 503);
    let mut d = Raw::connect(h.addr()).await;
    d.command("EHLO client.test").await;
    assert_eq!(d.command("AUTH LOGIN").await.0, 334);
    assert_eq!(d.command("YWxlcnRz").await.0, 334);
    assert_eq!(d.command("c2VjcmV0").await.0, 235);
    assert_eq!(one_mail(&mut d).await, 250);
    assert_eq!(h.rejected().await.0, RejectReason::Protocol);
    h.received().await;
    h.sink.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// HTTP providers

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

const ACCOUNT: &str = "AC00000000000000000000000000000001";

#[tokio::test(flavor = "multi_thread")]
async fn twilio_sms_and_calls_answer_like_twilio() {
    let mut h = Harness::start(SinkKind::Twilio, small()).await;
    let http = client();
    let messages = h.url(&format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json"));
    let (status, sms) = json_of(
        http.post(&messages)
            .basic_auth(ACCOUNT, Some("token"))
            .form(&[
                ("To", "+15550001111"),
                ("From", "+15559990000"),
                ("Body", "Billing is down. We are on it."),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert!(
        sms["sid"].as_str().unwrap().starts_with("SM") && sms["sid"].as_str().unwrap().len() == 34
    );
    assert_eq!(
        (sms["status"].as_str(), sms["to"].as_str(), sms["num_segments"].as_str()),
        (Some("queued"), Some("+15550001111"), Some("1"))
    );
    assert_eq!(sms["account_sid"], ACCOUNT);
    let n = h.received().await;
    assert_eq!(n.recipients, ["+15550001111"]);
    assert_eq!(n.from.as_deref(), Some("+15559990000"));
    assert_eq!(n.body, "Billing is down. We are on it.");
    assert_eq!(n.channel_detail["resource"], "messages");
    assert_eq!(n.channel_detail["sid"], sms["sid"]);

    let calls = h.url(&format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json"));
    let twiml = "<Response><Say voice=\"alice\">Billing is down.</Say></Response>";
    let (status, call) = json_of(
        http.post(&calls)
            .form(&[("To", "+15550001111"), ("From", "+15559990000"), ("Twiml", twiml)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert!(call["sid"].as_str().unwrap().starts_with("CA"));
    assert_eq!(call["status"], "queued");
    let n = h.received().await;
    assert_eq!(n.channel_detail["resource"], "calls");
    assert_eq!(n.body, "Billing is down.");

    // Missing parameters: Twilio's codes.
    let (status, e) =
        json_of(http.post(&messages).form(&[("From", "+1"), ("Body", "x")]).send().await.unwrap())
            .await;
    assert_eq!((status, e["code"].as_u64(), e["status"].as_u64()), (400, Some(21604), Some(400)));
    assert_eq!(e["more_info"], "https://www.twilio.com/docs/errors/21604");
    let (status, e) =
        json_of(http.post(&messages).form(&[("To", "+1"), ("From", "+2")]).send().await.unwrap())
            .await;
    assert_eq!((status, e["code"].as_u64()), (400, Some(21602)));
    let (status, e) =
        json_of(http.post(&calls).form(&[("To", "+1"), ("From", "+2")]).send().await.unwrap())
            .await;
    assert_eq!((status, e["code"].as_u64()), (400, Some(21205)));
    for _ in 0..3 {
        assert_eq!(h.rejected().await.0, RejectReason::InvalidPayload);
    }
    // Unknown path and wrong method.
    let (status, e) =
        json_of(http.post(h.url("/2010-04-01/Accounts/AC1/Faxes.json")).send().await.unwrap())
            .await;
    assert_eq!((status, e["code"].as_u64()), (404, Some(20404)));
    assert_eq!(
        h.rejected().await,
        (RejectReason::UnknownPath, "POST /2010-04-01/Accounts/AC1/Faxes.json".into())
    );
    let (status, _) = json_of(http.get(&messages).send().await.unwrap()).await;
    assert_eq!(status, 405);
    assert_eq!(h.rejected().await.0, RejectReason::UnknownPath);
    // Over the body limit.
    let big = "x".repeat(5000);
    let response = http
        .post(&messages)
        .form(&[("To", "+1"), ("From", "+2"), ("Body", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(h.rejected().await.0, RejectReason::TooLarge);
    h.quiet();
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn twilio_chaos_answers_twilio_errors_or_holds_until_cleared() {
    let mut h = Harness::start(SinkKind::Twilio, small()).await;
    let http = client();
    let messages = h.url(&format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json"));
    let form = [("To", "+15550001111"), ("From", "+15559990000"), ("Body", "down")];
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Status(500), probability: 1.0, only: None }));
    let (status, e) = json_of(http.post(&messages).form(&form).send().await.unwrap()).await;
    assert_eq!((status, e["code"].as_u64(), e["status"].as_u64()), (500, Some(20500), Some(500)));
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Status(429), probability: 1.0, only: None }));
    let (status, e) = json_of(http.post(&messages).form(&form).send().await.unwrap()).await;
    assert_eq!((status, e["code"].as_u64()), (429, Some(20429)));
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    h.quiet();

    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Hang, probability: 1.0, only: None }));
    let held = tokio::spawn({
        let request = http.post(&messages).form(&form);
        async move { request.send().await.unwrap().status().as_u16() }
    });
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    assert!(!held.is_finished());
    h.sink.set_chaos(None);
    assert_eq!(held.await.unwrap(), 201);
    assert_eq!(h.received().await.body, "down");

    // A request held when the sink shuts down ends with the connection.
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Hang, probability: 1.0, only: None }));
    let held = tokio::spawn({
        let request = http.post(&messages).form(&form);
        async move { request.send().await }
    });
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    h.sink.shutdown().await;
    // Either the connection ends or the provider answered 503 on its way down.
    if let Ok(response) = held.await.unwrap() {
        assert_eq!(response.status().as_u16(), 503);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sinch_fax_json_and_multipart() {
    let mut h = Harness::start(SinkKind::Sinch, small()).await;
    let http = client();
    let faxes = h.url("/v3/projects/proj-1/faxes");
    let (status, fax) = json_of(
        http.post(&faxes)
            .json(&json!({"to": "+15550002222", "from": "+15559990000", "contentUrl": "https://files.acme.example/outage.pdf"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (fax["status"].as_str(), fax["direction"].as_str(), fax["projectId"].as_str()),
        (Some("QUEUED"), Some("OUTBOUND"), Some("proj-1"))
    );
    assert_eq!(fax["id"].as_str().unwrap().len(), 26);
    assert_eq!(fax["contentUrl"], json!(["https://files.acme.example/outage.pdf"]));
    let n = h.received().await;
    assert_eq!(n.recipients, ["+15550002222"]);
    assert_eq!(n.channel_detail["content_url"], json!(["https://files.acme.example/outage.pdf"]));

    let body = "--b0undary\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\n+15550003333\r\n\
                --b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notice.txt\"\r\n\
                Content-Type: text/plain\r\n\r\nBilling is down until 22:00 UTC.\r\n--b0undary--\r\n";
    let response = http
        .post(&faxes)
        .header("content-type", "multipart/form-data; boundary=b0undary")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, fax) = json_of(response).await;
    assert_eq!((status, fax["hasFile"].as_bool()), (200, Some(true)));
    let n = h.received().await;
    assert_eq!(n.recipients, ["+15550003333"]);
    assert_eq!(n.body, "Billing is down until 22:00 UTC.");
    assert_eq!(n.channel_detail["files"][0]["name"], "notice.txt");

    let (status, e) =
        json_of(http.post(&faxes).json(&json!({"contentUrl": "u"})).send().await.unwrap()).await;
    assert_eq!(
        (status, e["status"].as_str(), e["code"].as_u64()),
        (400, Some("INVALID_ARGUMENT"), Some(400))
    );
    let (status, _) = json_of(
        http.post(&faxes)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(h.rejected().await.0, RejectReason::InvalidPayload);
    assert_eq!(h.rejected().await.0, RejectReason::InvalidPayload);
    let (status, e) = json_of(http.post(h.url("/v1/projects/p/faxes")).send().await.unwrap()).await;
    assert_eq!((status, e["status"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!(h.rejected().await.0, RejectReason::UnknownPath);
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Status(503), probability: 1.0, only: None }));
    let (status, e) = json_of(
        http.post(&faxes).json(&json!({"to": "+1", "contentUrl": "u"})).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, e["status"].as_str()), (503, Some("UNAVAILABLE")));
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    h.quiet();
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn statuspage_incidents_updates_and_maintenances() {
    let mut h = Harness::start(SinkKind::Statuspage, small()).await;
    let http = client();
    let incidents = h.url("/v1/pages/pg1/incidents");
    let (status, incident) = json_of(
        http.post(&incidents)
            .header("authorization", "OAuth anything")
            .json(&json!({"incident": {"name": "Billing outage", "status": "investigating", "body": "Billing is down.",
                                       "impact_override": "major", "components": {"cmp1": "major_outage"}}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let id = incident["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 12);
    assert_eq!(
        (incident["status"].as_str(), incident["impact"].as_str(), incident["page_id"].as_str()),
        (Some("investigating"), Some("major"), Some("pg1"))
    );
    assert_eq!(incident["incident_updates"][0]["body"], "Billing is down.");
    assert_eq!(incident["shortlink"], format!("http://stspg.io/{id}"));
    let n = h.received().await;
    assert_eq!(
        (n.recipients.as_slice(), n.subject.as_deref(), n.body.as_str()),
        (&["pg1".to_string()][..], Some("Billing outage"), "Billing is down.")
    );
    assert_eq!(
        (n.channel_detail["action"].as_str(), n.channel_detail["status"].as_str()),
        (Some("create"), Some("investigating"))
    );

    let one = h.url(&format!("/v1/pages/pg1/incidents/{id}"));
    let (status, updated) = json_of(
        http.patch(&one)
            .json(&json!({"incident": {"status": "resolved", "body": "Billing is back."}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["status"], "resolved");
    assert_eq!(updated["incident_updates"].as_array().unwrap().len(), 2);
    assert_eq!(updated["incident_updates"][0]["status"], "resolved");
    let n = h.received().await;
    assert_eq!(
        (
            n.channel_detail["action"].as_str(),
            n.channel_detail["status"].as_str(),
            n.channel_detail["previous_status"].as_str()
        ),
        (Some("update"), Some("resolved"), Some("investigating"))
    );
    assert_eq!(n.body, "Billing is back.");
    let (status, shown) = json_of(http.get(&one).send().await.unwrap()).await;
    assert_eq!((status, shown["status"].as_str()), (200, Some("resolved")));

    // A scheduled maintenance.
    let (status, maintenance) = json_of(
        http.post(&incidents)
            .json(&json!({"incident": {"name": "Billing upgrade", "status": "scheduled", "body": "Billing 2.0 on Saturday.",
                                       "scheduled_for": "2026-12-05T22:00:00Z", "scheduled_until": "2026-12-05T23:00:00Z"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, maintenance["status"].as_str(), maintenance["impact"].as_str()),
        (201, Some("scheduled"), Some("maintenance"))
    );
    let n = h.received().await;
    assert_eq!(
        (n.channel_detail["status"].as_str(), n.channel_detail["scheduled_for"].as_str()),
        (Some("scheduled"), Some("2026-12-05T22:00:00Z"))
    );
    let mid = maintenance["id"].as_str().unwrap();
    let (status, _) = json_of(
        http.patch(h.url(&format!("/v1/pages/pg1/incidents/{mid}")))
            .json(&json!({"incident": {"status": "in_progress"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    h.received().await;

    // Invalid: unknown incident, other page, wrong status kind, missing schedule, bad JSON.
    let (status, e) = json_of(
        http.patch(h.url("/v1/pages/pg1/incidents/nope"))
            .json(&json!({"incident": {"status": "resolved"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, e["error"].is_string()), (404, true));
    assert_eq!(h.rejected().await.0, RejectReason::UnknownResource);
    let (status, _) = json_of(
        http.patch(h.url(&format!("/v1/pages/pg2/incidents/{id}")))
            .json(&json!({"incident": {}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(h.rejected().await.0, RejectReason::UnknownResource);
    let (status, e) = json_of(
        http.patch(&one)
            .json(&json!({"incident": {"status": "in_progress"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, e["error"][0].as_str()),
        (422, Some("Status 'in_progress' is not valid for a realtime incident"))
    );
    let (status, e) = json_of(
        http.post(&incidents).json(&json!({"incident": {"name": "m", "status": "scheduled", "scheduled_for": "2026-12-05T22:00:00Z"}})).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, e["error"][0].as_str()), (422, Some("Scheduled until can't be blank")));
    let (status, e) = json_of(
        http.post(&incidents).json(&json!({"incident": {"status": "down"}})).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, e["error"].as_array().unwrap().len()), (422, 2));
    let (status, _) = json_of(
        http.post(&incidents)
            .header("content-type", "application/json")
            .body("[")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    for _ in 0..4 {
        assert_eq!(h.rejected().await.0, RejectReason::InvalidPayload);
    }
    let (status, list) = json_of(http.get(&incidents).send().await.unwrap()).await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 2));
    h.quiet();
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_webhook_answers_ok_or_slack_errors() {
    let mut h = Harness::start(SinkKind::Slack, small()).await;
    let http = client();
    let hook = h.url("/services/T0001/B0002/XXXXsecret");
    let response = http
        .post(&hook)
        .json(&json!({"text": "Billing is down", "channel": "#status"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.text().await.unwrap(), "ok");
    let n = h.received().await;
    assert_eq!(
        (n.recipients.as_slice(), n.body.as_str()),
        (&["slack-sink".to_string()][..], "Billing is down")
    );
    let blocks = json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Billing* is back"}}]});
    assert_eq!(http.post(&hook).json(&blocks).send().await.unwrap().text().await.unwrap(), "ok");
    assert_eq!(h.received().await.body, "*Billing* is back");
    let payload = [("payload", r#"{"text": "legacy form"}"#)];
    assert_eq!(http.post(&hook).form(&payload).send().await.unwrap().text().await.unwrap(), "ok");
    assert_eq!(h.received().await.body, "legacy form");

    for (body, expected) in
        [("{nope", "invalid_payload"), ("{}", "no_text"), ("[1]", "invalid_payload")]
    {
        let response = http
            .post(&hook)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.text().await.unwrap(), expected);
        assert_eq!(h.rejected().await.0, RejectReason::InvalidPayload);
    }
    let response =
        http.post(h.url("/services/T0001")).json(&json!({"text": "x"})).send().await.unwrap();
    assert_eq!(
        (response.status().as_u16(), response.text().await.unwrap().as_str()),
        (404, "no_service")
    );
    assert_eq!(h.rejected().await.0, RejectReason::UnknownPath);
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Status(429), probability: 1.0, only: None }));
    let response = http.post(&hook).json(&json!({"text": "x"})).send().await.unwrap();
    assert_eq!(
        (response.status().as_u16(), response.text().await.unwrap().as_str()),
        (429, "rate_limited")
    );
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    h.quiet();
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pagerduty_events_v2_trigger_resolve_and_invalid_events() {
    let mut h = Harness::start(SinkKind::Pagerduty, small()).await;
    let http = client();
    let enqueue = h.url("/v2/enqueue");
    let trigger = json!({"routing_key": "R0UT1NGKEY", "event_action": "trigger", "dedup_key": "billing-down",
                         "payload": {"summary": "Billing is down", "source": "billing", "severity": "critical"}});
    let (status, answer) = json_of(http.post(&enqueue).json(&trigger).send().await.unwrap()).await;
    assert_eq!(status, 202);
    assert_eq!(
        answer,
        json!({"status": "success", "message": "Event processed", "dedup_key": "billing-down"})
    );
    let n = h.received().await;
    assert_eq!(
        (n.recipients.as_slice(), n.subject.as_deref()),
        (&["R0UT1NGKEY".to_string()][..], Some("Billing is down"))
    );
    assert_eq!(
        (n.channel_detail["event_action"].as_str(), n.channel_detail["dedup_key"].as_str()),
        (Some("trigger"), Some("billing-down"))
    );
    let resolve = json!({"routing_key": "R0UT1NGKEY", "event_action": "resolve", "dedup_key": "billing-down"});
    let (status, _) = json_of(http.post(&enqueue).json(&resolve).send().await.unwrap()).await;
    assert_eq!(status, 202);
    assert_eq!(h.received().await.channel_detail["event_action"], "resolve");
    // Without a dedup key, one is made up.
    let mut fresh = trigger.clone();
    fresh.as_object_mut().unwrap().remove("dedup_key");
    let (_, answer) = json_of(http.post(&enqueue).json(&fresh).send().await.unwrap()).await;
    assert_eq!(answer["dedup_key"].as_str().unwrap().len(), 32);
    h.received().await;

    let (status, e) = json_of(
        http.post(&enqueue)
            .json(&json!({"event_action": "trigger", "payload": {}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, e["status"].as_str(), e["message"].as_str()),
        (400, Some("invalid event"), Some("Event object is invalid"))
    );
    assert_eq!(e["errors"].as_array().unwrap().len(), 4);
    let (status, _) = json_of(
        http.post(&enqueue)
            .header("content-type", "application/json")
            .body("nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(h.rejected().await.0, RejectReason::InvalidPayload);
    assert_eq!(h.rejected().await.0, RejectReason::InvalidPayload);
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Status(429), probability: 1.0, only: None }));
    let (status, e) = json_of(http.post(&enqueue).json(&trigger).send().await.unwrap()).await;
    assert_eq!((status, e["status"].as_str()), (429, Some("throttle event")));
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    h.quiet();
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_records_any_json_and_the_run_budget_answers_429() {
    let limits = Limits { max_message_bytes: 4096, max_messages: 2 };
    let mut h = Harness::start(SinkKind::Webhook, limits).await;
    let http = client();
    let alert = json!({"status": "firing", "title": "BillingDown", "alerts": [{"labels": {"service": "billing"}}]});
    let (status, answer) =
        json_of(http.post(h.url("/alertmanager/hook")).json(&alert).send().await.unwrap()).await;
    assert_eq!((status, answer), (200, json!({"ok": true})));
    let n = h.received().await;
    assert_eq!(
        (n.subject.as_deref(), n.channel_detail["path"].as_str()),
        (Some("BillingDown"), Some("/alertmanager/hook"))
    );
    assert_eq!(n.channel_detail["json"], alert);
    assert!(n.body.contains("\"service\":\"billing\""));
    assert_eq!(json_of(http.post(h.url("/")).json(&json!(42)).send().await.unwrap()).await.0, 200);
    h.received().await;
    let (status, _) = json_of(http.post(h.url("/x")).json(&json!(1)).send().await.unwrap()).await;
    assert_eq!(status, 429);
    assert_eq!(h.rejected().await.0, RejectReason::LimitReached);
    let (status, _) = json_of(
        http.post(h.url("/x"))
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(h.rejected().await.0, RejectReason::InvalidPayload);
    let (status, _) = json_of(http.get(h.url("/x")).send().await.unwrap()).await;
    assert_eq!(status, 405);
    assert_eq!(h.rejected().await.0, RejectReason::UnknownPath);
    h.quiet();
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_sink_serves_on_every_address_it_is_given() {
    let listen = vec!["127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()];
    let mut h = Harness::start_on(SinkKind::Webhook, small(), listen).await;
    let addrs = h.sink.local_addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    assert_ne!(addrs[0].port(), addrs[1].port());
    let http = client();
    for (i, addr) in addrs.iter().enumerate() {
        let response =
            http.post(format!("http://{addr}/n")).json(&json!({"n": i})).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(h.received().await.channel_detail["json"]["n"], i);
    }
    h.sink.shutdown().await;
    assert!(TcpStream::connect(addrs[0]).await.is_err(), "nothing listens after shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn receive_times_come_from_the_given_clock() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let config = SinkConfig {
        name: "hook".into(),
        kind: SinkKind::Webhook,
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        limits: small(),
        timeouts: Timeouts::default(),
        seed: 1,
    };
    let sink = Sink::start(
        config,
        Arc::new(|| std::time::Duration::from_secs(4242)),
        Arc::new(move |e| drop(tx.send(e))),
    )
    .await
    .unwrap();
    let url = format!("http://{}/", sink.local_addrs()[0]);
    client().post(url).json(&json!({})).send().await.unwrap();
    match events.recv().await.unwrap() {
        SinkEvent::Received(n) => assert_eq!(n.received, std::time::Duration::from_secs(4242)),
        other => panic!("{other:?}"),
    }
    sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_request_whose_client_gave_up_is_dropped_not_recorded() {
    let mut h = Harness::start(SinkKind::Webhook, small()).await;
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Hang, probability: 1.0, only: None }));
    // A raw HTTP client sends a whole request, and hangs up once the sink reports the hold.
    let mut abandoned = TcpStream::connect(h.addr()).await.unwrap();
    let body = r#"{"n":"abandoned"}"#;
    let request = format!(
        "POST /a HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    abandoned.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    assert_eq!(h.sink.held_requests(), 1);
    drop(abandoned);
    // hyper notices the hang-up on its own and drops the held request (data, not a sleep).
    while h.sink.held_requests() > 0 {
        tokio::task::yield_now().await;
    }
    h.sink.set_chaos(None);
    let response = client().post(h.url("/b")).json(&json!({"n": "fresh"})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Only the request that stayed is recorded.
    assert_eq!(h.received().await.channel_detail["json"]["n"], "fresh");
    h.quiet();
    h.sink.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Starvation: idle connections, timeouts, eviction at the cap

/// A rejection the sink must report well within this (a sink without timeouts never does).
async fn rejected_soon(h: &mut Harness) -> (RejectReason, String) {
    let patience = std::time::Duration::from_secs(10);
    tokio::time::timeout(patience, h.rejected()).await.expect("a rejection within 10 s")
}

/// Connections the starvation tests leave idle: more than the cap.
const IDLE: usize = 300;

/// The peers named by the `evicted` rejections, in order (every event must be one).
async fn evictions(h: &mut Harness, count: usize) -> Vec<String> {
    let mut peers = Vec::with_capacity(count);
    for _ in 0..count {
        let (reason, detail) = rejected_soon(h).await;
        assert_eq!(reason, RejectReason::Evicted, "{detail}");
        let from = detail.split("from ").nth(1).and_then(|rest| rest.split(',').next());
        peers.push(from.expect("the evicted peer is named").to_owned());
    }
    peers
}

const SMTPLIB_QUICK: &str = r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
    s.sendmail("alerts@acme.example", ["carol@customer.example"],
               "Subject: still here\r\n\r\nBilling is down.\r\n")
print("sent")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn smtp_sink_with_300_idle_connections_still_takes_a_real_clients_mail() {
    let mut h = Harness::start(SinkKind::Smtp, Limits::default()).await;
    // A leaky service: 300 connections that got their greeting and then say nothing.
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(Raw::connect(h.addr()).await);
    }
    let port = h.addr().port().to_string();
    let smtplib =
        tokio::process::Command::new("python3").args(["-c", SMTPLIB_QUICK, &port]).output();
    // Within the sink's idle (greeting) timeout, not after the idle connections time out.
    let output = tokio::time::timeout(Timeouts::default().greeting, smtplib)
        .await
        .expect("smtplib finishes within the greeting timeout")
        .expect("python3 runs");
    assert!(output.status.success(), "smtplib failed: {}", String::from_utf8_lossy(&output.stderr));
    // The 44 idle connections over the cap, then smtplib's, each evicted the one idle longest.
    let evicted = IDLE + 1 - MAX_CONNECTIONS;
    let peers = evictions(&mut h, evicted).await;
    let oldest: Vec<String> = idle[..evicted]
        .iter()
        .map(|raw| raw.reader.get_ref().local_addr().unwrap().to_string())
        .collect();
    assert_eq!(peers, oldest, "oldest idle first");
    let mail = h.received().await;
    assert_eq!(mail.subject.as_deref(), Some("still here"));
    h.quiet();
    // An evicted client is told why, then closed; the others still hold their greeting.
    let (code, text) = idle[0].reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(idle[0].closed().await);
    assert_eq!(idle[evicted].command("NOOP").await.0, 250);
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_sink_with_300_idle_connections_still_answers_a_real_request() {
    let mut h = Harness::start(SinkKind::Webhook, small()).await;
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(h.addr()).await.unwrap());
    }
    let request = client().post(h.url("/alerts")).json(&json!({"text": "still here"})).send();
    let response = tokio::time::timeout(Timeouts::default().idle, request)
        .await
        .expect("answered within the idle timeout")
        .expect("the request reaches the sink");
    assert_eq!(response.status().as_u16(), 200);
    // Connections are accepted in the order they were made, so the first ones went first.
    let evicted = IDLE + 1 - MAX_CONNECTIONS;
    let peers = evictions(&mut h, evicted).await;
    let oldest: Vec<String> =
        idle[..evicted].iter().map(|s| s.local_addr().unwrap().to_string()).collect();
    assert_eq!(peers, oldest, "oldest idle first");
    assert_eq!(h.received().await.channel_detail["json"]["text"], "still here");
    h.quiet();
    let mut rest = Vec::new();
    assert_eq!(idle[0].read_to_end(&mut rest).await.unwrap(), 0, "evicted: closed");
    h.sink.shutdown().await;
}

/// Every timeout 30 s but the ones a test shortens.
fn patient() -> Timeouts {
    let long = std::time::Duration::from_secs(30);
    Timeouts {
        greeting: long,
        mail: long,
        rcpt: long,
        data_init: long,
        data_block: long,
        data_termination: long,
        server: long,
        idle: long,
        header_read: long,
        body_read: long,
    }
}

const SHORT: std::time::Duration = std::time::Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread")]
async fn smtp_waits_are_bounded_by_the_rfc_5321_timeouts() {
    // Each case: the one timeout shortened, and the conversation that leaves the client's turn
    // open where that timeout applies.
    type Shorten = fn(&mut Timeouts);
    let cases: [(&str, Shorten, &[&str]); 7] = [
        ("greeting", |t| t.greeting = SHORT, &[]),
        ("server", |t| t.server = SHORT, &["EHLO a"]),
        ("mail", |t| t.mail = SHORT, &["EHLO a", "MAIL FROM:<a@b.example>"]),
        (
            "rcpt",
            |t| t.rcpt = SHORT,
            &["EHLO a", "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>"],
        ),
        (
            "data-init",
            |t| t.data_init = SHORT,
            &["EHLO a", "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA"],
        ),
        (
            "data-block",
            |t| t.data_block = SHORT,
            &["EHLO a", "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA", "Subject: x"],
        ),
        (
            "data-termination",
            |t| t.data_termination = SHORT,
            &["EHLO a", "MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA", "Subject: x"],
        ),
    ];
    for (key, shorten, conversation) in cases {
        let mut timeouts = patient();
        shorten(&mut timeouts);
        let mut h = Harness::start_with(
            SinkKind::Smtp,
            small(),
            vec!["127.0.0.1:0".parse().unwrap()],
            timeouts,
        )
        .await;
        let mut c = Raw::connect(h.addr()).await;
        for line in conversation {
            c.send(format!("{line}\r\n").as_bytes()).await;
            // Data lines get no reply; commands do.
            if !line.starts_with("Subject") {
                let (code, text) = c.reply().await;
                assert!(code < 400, "{key}: {line} → {text}");
            }
        }
        let (reason, detail) = rejected_soon(&mut h).await;
        assert_eq!(reason, RejectReason::Timeout, "{key}: {detail}");
        assert!(detail.contains(&format!("`{key}` timeout")), "{key}: {detail}");
        let (code, text) = c.reply().await;
        assert_eq!(code, 421, "{key}: {text}");
        assert!(text.contains(key), "{key}: {text}");
        assert!(c.closed().await, "{key}: closed after 421");
        h.quiet();
        h.sink.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mail_held_by_chaos_is_not_timed_out() {
    let mut timeouts = patient();
    timeouts.server = SHORT;
    timeouts.data_termination = SHORT;
    let mut h = Harness::start_with(
        SinkKind::Smtp,
        small(),
        vec!["127.0.0.1:0".parse().unwrap()],
        timeouts,
    )
    .await;
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Hang, probability: 1.0, only: None }));
    let mut c = Raw::connect(h.addr()).await;
    c.command("EHLO a").await;
    c.command("MAIL FROM:<a@b.example>").await;
    c.command("RCPT TO:<c@d.example>").await;
    c.command("DATA").await;
    c.send(b"Subject: held\r\n\r\nbody\r\n.\r\n").await;
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    // The sink's turn: well past every shortened timeout, nothing ends it.
    let quiet = tokio::time::timeout(SHORT * 3, h.next()).await;
    assert!(quiet.is_err(), "held mail was cut: {quiet:?}");
    h.sink.set_chaos(None);
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(h.received().await.subject.as_deref(), Some("held"));
    h.sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_idle_and_header_read_timeouts_close_connections_but_not_requests_in_progress() {
    let mut timeouts = patient();
    // `idle` the longest, so a connection that is about to send its head is not cut first.
    timeouts.idle = SHORT * 3;
    timeouts.header_read = SHORT;
    timeouts.body_read = SHORT;
    let mut h = Harness::start_with(
        SinkKind::Webhook,
        small(),
        vec!["127.0.0.1:0".parse().unwrap()],
        timeouts,
    )
    .await;
    // Idle: a connection that never sends a request.
    let mut silent = TcpStream::connect(h.addr()).await.unwrap();
    let (reason, detail) = rejected_soon(&mut h).await;
    assert_eq!(
        (reason, detail.contains("`idle` timeout")),
        (RejectReason::Timeout, true),
        "{detail}"
    );
    assert_eq!(silent.read_to_end(&mut Vec::new()).await.unwrap(), 0);
    // Header read: half a request head.
    let mut slow = TcpStream::connect(h.addr()).await.unwrap();
    slow.write_all(b"POST /a HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let (reason, detail) = rejected_soon(&mut h).await;
    assert_eq!(
        (reason, detail.contains("`header-read` timeout")),
        (RejectReason::Timeout, true),
        "{detail}"
    );
    assert_eq!(slow.read_to_end(&mut Vec::new()).await.unwrap(), 0);
    // Body read: a whole head, then part of the body: 408 from the sink, not a hang.
    let mut stalled = TcpStream::connect(h.addr()).await.unwrap();
    stalled
        .write_all(b"POST /c HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n{\"n\"")
        .await
        .unwrap();
    let (reason, detail) = rejected_soon(&mut h).await;
    assert_eq!(
        (reason, detail.contains("`body-read` timeout")),
        (RejectReason::Timeout, true),
        "{detail}"
    );
    let mut answer = String::new();
    stalled.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A request being handled (held by chaos) outlasts all three.
    h.sink.set_chaos(Some(Chaos { mode: ChaosMode::Hang, probability: 1.0, only: None }));
    let held = tokio::spawn(client().post(h.url("/b")).json(&json!({"n": 1})).send());
    assert_eq!(h.rejected().await.0, RejectReason::Chaos);
    let quiet = tokio::time::timeout(SHORT * 4, h.next()).await;
    assert!(quiet.is_err(), "held request was cut: {quiet:?}");
    h.sink.set_chaos(None);
    assert_eq!(held.await.unwrap().unwrap().status().as_u16(), 200);
    assert_eq!(h.received().await.channel_detail["json"]["n"], 1);
    h.sink.shutdown().await;
}
