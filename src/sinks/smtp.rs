//! The SMTP sink: a small RFC 5321 server that records every accepted mail.
//!
//! One task per connection runs a state machine (greeting → `EHLO`/`HELO` → `MAIL` → `RCPT`… →
//! `DATA` → `MAIL`…). It answers the RFC's codes with enhanced status codes: 503 for a bad
//! sequence, 500/501 for syntax, 552 for a message over the `SIZE` it advertises (enforced while
//! `DATA` is read, never buffering past it), 452 when the run's message budget is used up, 252 for
//! `VRFY`, 502 for commands it recognises but does not implement. It advertises `SIZE`, `8BITMIME`,
//! `PIPELINING`, `ENHANCEDSTATUSCODES` and `AUTH PLAIN LOGIN` (any credentials are accepted; no
//! TLS). Lines may end in CRLF or a bare LF. After [`MAX_ERRORS`] rejected commands the connection
//! is closed with 421.
//!
//! Every wait for the client is bounded by the sink's [`Timeouts`] (RFC 5321 §4.5.3.2 from the
//! server's side): the first command within `greeting`; the next command within `mail` after a
//! `MAIL`, `rcpt` after a `RCPT`, `server` otherwise (and every reply must be written within
//! `server`); the mail after `354` arrives first within `data-init`, then each read within
//! `data-block`, the whole of it within `data-termination`. Out of time, the sink answers
//! `421 4.4.2` (without waiting for the client to read it), closes the connection and reports a
//! `timeout` rejection. While it waits for a command the connection is idle and may be evicted
//! (with `421 4.7.0`) to admit a new one at the connection cap.
//!
//! The mail is parsed with `mail-parser` (RFC 2047 words, multipart, quoted-printable, base64,
//! HTML-only bodies turned into text). A notification's `from` and `recipients` are the envelope's
//! (`MAIL FROM`, every accepted `RCPT TO`); header addresses go to `channel_detail`. The body is
//! every text part (HTML stripped when there is no text part) with CRLF line ends turned into LF.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

use super::connections::{Connections, Slot};
use super::{ChaosVerdict, RejectReason, Shared, Timeouts};

/// The longest command line accepted, in bytes (RFC 5321 asks for 512; extensions add to it).
pub const MAX_COMMAND_LINE: usize = 2048;
/// Recipients per transaction (RFC 5321's minimum that a server must accept).
pub const MAX_RECIPIENTS: usize = 100;
/// Rejected commands on one connection before it is closed with 421.
pub const MAX_ERRORS: usize = 20;
/// The longest address accepted (RFC 5321's path limit).
const MAX_PATH: usize = 256;
/// The name the server gives itself.
const HOSTNAME: &str = "firedrill.sink";

/// Serve SMTP on `listener` until the sink stops.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    connections: Arc<Connections>,
) {
    let per_connection = shared.clone();
    super::accept_loop(listener, shared, connections, move |stream, peer, slot| {
        let shared = per_connection.clone();
        async move { session(stream, peer, &shared, slot).await }
    })
    .await;
}

/// Which wait for the client ran out, named by its key in [`Timeouts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Greeting,
    Mail,
    Rcpt,
    DataInit,
    DataBlock,
    DataTermination,
    Server,
}

impl Wait {
    fn limit(self, timeouts: &Timeouts) -> Duration {
        match self {
            Wait::Greeting => timeouts.greeting,
            Wait::Mail => timeouts.mail,
            Wait::Rcpt => timeouts.rcpt,
            Wait::DataInit => timeouts.data_init,
            Wait::DataBlock => timeouts.data_block,
            Wait::DataTermination => timeouts.data_termination,
            Wait::Server => timeouts.server,
        }
    }

    /// The key, as in scenario files.
    fn key(self) -> &'static str {
        match self {
            Wait::Greeting => "greeting",
            Wait::Mail => "mail",
            Wait::Rcpt => "rcpt",
            Wait::DataInit => "data-init",
            Wait::DataBlock => "data-block",
            Wait::DataTermination => "data-termination",
            Wait::Server => "server",
        }
    }

    /// What the client did not do in time.
    fn missed(self) -> &'static str {
        match self {
            Wait::Greeting => "no command after the greeting",
            Wait::Mail => "no command after MAIL",
            Wait::Rcpt => "no command after RCPT",
            Wait::DataInit => "no mail data after 354",
            Wait::DataBlock => "mail data stalled",
            Wait::DataTermination => "mail data not ended with `.`",
            Wait::Server => "no command (or reply not read)",
        }
    }
}

/// Why the sink ended a session itself; carried inside an `io::Error` so that `?` reaches the top.
#[derive(Debug)]
enum Cut {
    Timeout(Wait, Duration),
    Evicted,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cut::Timeout(wait, after) => write!(f, "{} within {after:?}", wait.missed()),
            Cut::Evicted => f.write_str("evicted"),
        }
    }
}

impl std::error::Error for Cut {}

fn cut(cut: Cut) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, cut)
}

/// `future` within the wait's limit, or a [`Cut::Timeout`].
async fn within<T>(
    wait: Wait,
    timeouts: &Timeouts,
    future: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    let limit = wait.limit(timeouts);
    tokio::time::timeout(limit, future).await.map_err(|_| cut(Cut::Timeout(wait, limit)))?
}

/// Write a reply within the `server` timeout.
async fn send<W: tokio::io::AsyncWrite + Unpin>(
    write: &mut W,
    text: &[u8],
    timeouts: &Timeouts,
) -> std::io::Result<()> {
    within(Wait::Server, timeouts, write.write_all(text)).await
}

/// One line as read from the client.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A whole line (without its CR LF) that fit in the limit, in the caller's buffer.
    Complete,
    /// A line longer than the limit; it was read to its end and discarded.
    TooLong,
    /// The client closed the connection (a partial last line is dropped).
    Eof,
}

/// Read one line into `buf` (cleared first), never holding more than `max` bytes of it.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    read_line_paced(reader, buf, max, None).await
}

/// [`read_line`], where each read must bring bytes within `pace` (the wait and its limit).
async fn read_line_paced<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
    pace: Option<(Wait, &Timeouts)>,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        // A timer only when the read would wait: most lines of a mail are buffered already.
        let waits = pace.filter(|_| reader.fill_buf().now_or_never().is_none());
        let available = match waits {
            Some((wait, timeouts)) => within(wait, timeouts, reader.fill_buf()).await?,
            None => reader.fill_buf().await?,
        };
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, consumed, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], end + 1, true),
            None => (available, available.len(), false),
        };
        if !too_long && buf.len() + chunk.len() <= max {
            buf.extend_from_slice(chunk);
        } else {
            too_long = true;
            buf.clear();
        }
        reader.consume(consumed);
        if done {
            if too_long {
                return Ok(Line::TooLong);
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Line::Complete);
        }
    }
}

/// The state of one connection.
#[derive(Debug, Default)]
struct Session {
    /// The `EHLO`/`HELO` argument, once greeted.
    helo: Option<String>,
    /// Whether `AUTH` succeeded (it always does, once).
    authenticated: bool,
    /// The envelope sender of the open transaction (`Some("")` for the null sender).
    mail_from: Option<String>,
    /// The envelope recipients of the open transaction.
    recipients: Vec<String>,
    /// Rejected commands so far.
    errors: usize,
    /// Whether any command line arrived yet.
    spoken: bool,
}

impl Session {
    fn reset(&mut self) {
        self.mail_from = None;
        self.recipients.clear();
    }

    /// Which timeout bounds the wait for the next command.
    fn waiting_for_command(&self) -> Wait {
        match (self.spoken, &self.mail_from, self.recipients.is_empty()) {
            (false, _, _) => Wait::Greeting,
            (true, Some(_), true) => Wait::Mail,
            (true, Some(_), false) => Wait::Rcpt,
            (true, None, _) => Wait::Server,
        }
    }
}

/// What the session loop does after a command.
enum Next {
    Continue,
    Close,
}

/// One connection: the conversation, then what ended it, reported when the sink ended it.
async fn session(stream: TcpStream, peer: SocketAddr, shared: &Shared, slot: Slot) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let ended = converse(&mut reader, &mut write, shared, &slot).await;
    // Other I/O errors end the session silently: the client is gone.
    let Err(error) = ended else { return };
    let Some(cut) = error.get_ref().and_then(|inner| inner.downcast_ref::<Cut>()) else { return };
    match cut {
        Cut::Timeout(wait, after) => {
            let key = wait.key();
            // Best effort, without waiting: the client may be the one not reading.
            let _ = write.try_write(
                format!("421 4.4.2 {HOSTNAME} Timeout ({key}), closing connection\r\n").as_bytes(),
            );
            shared.rejected(
                RejectReason::Timeout,
                format!("{peer}: {cut} (`{key}` timeout, {after:?}); answered 421 and closed"),
            );
        }
        // Reported by the accept loop, which knows whom it was evicted for.
        Cut::Evicted => evicted(&mut write),
    }
}

/// Tell an evicted client why, without waiting for it.
fn evicted(write: &mut OwnedWriteHalf) {
    let _ = write.try_write(
        format!("421 4.7.0 {HOSTNAME} Too many connections, closing the idle one\r\n").as_bytes(),
    );
}

async fn converse<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    write: &mut OwnedWriteHalf,
    shared: &Shared,
    slot: &Slot,
) -> std::io::Result<()> {
    let timeouts = &shared.timeouts;
    send(write, format!("220 {HOSTNAME} ESMTP firedrill sink ready\r\n").as_bytes(), timeouts)
        .await?;
    let mut session = Session::default();
    let mut line = Vec::new();
    loop {
        let wait = session.waiting_for_command();
        slot.idle();
        let read = tokio::select! {
            read = within(wait, timeouts, read_line(reader, &mut line, MAX_COMMAND_LINE)) => read?,
            () = slot.evicted() => return Err(cut(Cut::Evicted)),
        };
        if !slot.busy() {
            return Err(cut(Cut::Evicted));
        }
        session.spoken = true;
        let reply = match read {
            Line::Eof => return Ok(()),
            Line::TooLong => Err(reject(
                shared,
                "500 5.5.2 Line too long",
                RejectReason::Protocol,
                "command line too long",
            )),
            Line::Complete => command(&mut session, &line, reader, write, shared).await?,
        };
        match reply {
            Ok((text, Next::Continue)) => send(write, text.as_bytes(), timeouts).await?,
            Ok((text, Next::Close)) => {
                send(write, text.as_bytes(), timeouts).await?;
                return Ok(());
            }
            Err(text) => {
                session.errors += 1;
                if session.errors >= MAX_ERRORS {
                    let text = format!("{text}421 4.7.0 Too many errors, closing connection\r\n");
                    send(write, text.as_bytes(), timeouts).await?;
                    return Ok(());
                }
                send(write, text.as_bytes(), timeouts).await?;
            }
        }
    }
}

/// A reply for an accepted command, or the reply for a rejected one (already reported).
type Reply = Result<(String, Next), String>;

fn ok(text: impl Into<String>) -> Reply {
    let mut text = text.into();
    text.push_str("\r\n");
    Ok((text, Next::Continue))
}

/// Report a rejection and build its reply line.
fn reject(shared: &Shared, reply: &str, reason: RejectReason, detail: impl Into<String>) -> String {
    shared.rejected(reason, detail);
    format!("{reply}\r\n")
}

/// Handle one command line. `DATA` and `AUTH` read further lines from `reader` and may write
/// intermediate replies to `write`.
async fn command<R, W>(
    session: &mut Session,
    line: &[u8],
    reader: &mut R,
    write: &mut W,
    shared: &Shared,
) -> std::io::Result<Reply>
where
    R: AsyncBufRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let Ok(text) = std::str::from_utf8(line) else {
        return Ok(Err(reject(
            shared,
            "500 5.5.2 Syntax error, command unrecognized",
            RejectReason::Protocol,
            "command line is not UTF-8",
        )));
    };
    let (verb, argument) = match text.split_once(' ') {
        Some((verb, argument)) => (verb, argument.trim()),
        None => (text.trim(), ""),
    };
    let shown: String = text.chars().take(80).collect();
    let verb = verb.to_ascii_uppercase();
    let reply = match verb.as_str() {
        "EHLO" | "HELO" => {
            if argument.is_empty() {
                return Ok(Err(reject(
                    shared,
                    &format!("501 5.5.4 Syntax: {verb} hostname"),
                    RejectReason::Protocol,
                    shown,
                )));
            }
            session.reset();
            session.helo = Some(argument.to_string());
            if verb == "EHLO" {
                ok(format!(
                    "250-{HOSTNAME} greets {argument}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-PIPELINING\r\n\
                     250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n250 HELP",
                    shared.limits.max_message_bytes
                ))
            } else {
                ok(format!("250 {HOSTNAME} greets {argument}"))
            }
        }
        "MAIL" => mail(session, argument, shared, shown),
        "RCPT" => rcpt(session, argument, shared, shown),
        "DATA" => {
            if session.mail_from.is_none() || session.recipients.is_empty() {
                return Ok(Err(reject(
                    shared,
                    "503 5.5.1 Bad sequence of commands: need MAIL and RCPT first",
                    RejectReason::Protocol,
                    shown,
                )));
            }
            if !argument.is_empty() {
                return Ok(Err(reject(
                    shared,
                    "501 5.5.4 Syntax: DATA takes no arguments",
                    RejectReason::Protocol,
                    shown,
                )));
            }
            send(write, b"354 Start mail input; end with <CRLF>.<CRLF>\r\n", &shared.timeouts)
                .await?;
            let reply = data(session, reader, shared).await?;
            session.reset();
            reply
        }
        "RSET" => {
            session.reset();
            ok("250 2.0.0 OK")
        }
        "NOOP" => ok("250 2.0.0 OK"),
        "QUIT" => Ok((format!("221 2.0.0 {HOSTNAME} closing connection\r\n"), Next::Close)),
        "VRFY" => ok("252 2.1.5 Cannot VRFY user, but will accept message and attempt delivery"),
        "HELP" => ok("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY AUTH HELP"),
        "AUTH" => return auth(session, argument, reader, write, shared, shown).await,
        "EXPN" | "STARTTLS" | "BDAT" | "TURN" | "ETRN" | "ATRN" => {
            Err(reject(shared, "502 5.5.1 Command not implemented", RejectReason::Protocol, shown))
        }
        _ => Err(reject(
            shared,
            "500 5.5.2 Syntax error, command unrecognized",
            RejectReason::Protocol,
            shown,
        )),
    };
    Ok(reply)
}

/// `MAIL FROM:<path> [SIZE=n] [BODY=7BIT|8BITMIME] [AUTH=...]`.
fn mail(session: &mut Session, argument: &str, shared: &Shared, shown: String) -> Reply {
    if session.helo.is_none() {
        return Err(reject(
            shared,
            "503 5.5.1 Bad sequence of commands: send EHLO or HELO first",
            RejectReason::Protocol,
            shown,
        ));
    }
    if session.mail_from.is_some() {
        return Err(reject(
            shared,
            "503 5.5.1 Bad sequence of commands: nested MAIL command",
            RejectReason::Protocol,
            shown,
        ));
    }
    let Some((path, parameters)) = parse_path(argument, "FROM:") else {
        return Err(reject(
            shared,
            "501 5.5.4 Syntax: MAIL FROM:<address>",
            RejectReason::Protocol,
            shown,
        ));
    };
    if !path.is_empty() && !valid_address(path) {
        return Err(reject(
            shared,
            "501 5.1.7 Bad sender address syntax",
            RejectReason::Protocol,
            shown,
        ));
    }
    for parameter in parameters.split_whitespace() {
        let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => {
                let Ok(size) = value.parse::<u64>() else {
                    return Err(reject(
                        shared,
                        "501 5.5.4 Syntax: SIZE=<digits>",
                        RejectReason::Protocol,
                        shown,
                    ));
                };
                if size > shared.limits.max_message_bytes as u64 {
                    return Err(reject(
                        shared,
                        &format!(
                            "552 5.3.4 Message size exceeds fixed maximum message size ({})",
                            shared.limits.max_message_bytes
                        ),
                        RejectReason::TooLarge,
                        format!("declared SIZE={size}"),
                    ));
                }
            }
            "BODY"
                if value.eq_ignore_ascii_case("7BIT") || value.eq_ignore_ascii_case("8BITMIME") => {
            }
            "BODY" => {
                return Err(reject(
                    shared,
                    "501 5.5.4 Syntax: BODY=7BIT|8BITMIME",
                    RejectReason::Protocol,
                    shown,
                ));
            }
            "AUTH" => {}
            _ => {
                return Err(reject(
                    shared,
                    "555 5.5.4 MAIL FROM parameter not recognized",
                    RejectReason::Protocol,
                    shown,
                ));
            }
        }
    }
    if !shared.has_room() {
        return Err(reject(
            shared,
            "452 4.3.1 Insufficient system storage: message limit of this run reached",
            RejectReason::LimitReached,
            format!("{} messages already accepted in this run", shared.limits.max_messages),
        ));
    }
    session.mail_from = Some(path.to_string());
    ok("250 2.1.0 Sender OK")
}

/// `RCPT TO:<path>`.
fn rcpt(session: &mut Session, argument: &str, shared: &Shared, shown: String) -> Reply {
    if session.mail_from.is_none() {
        return Err(reject(
            shared,
            "503 5.5.1 Bad sequence of commands: need MAIL first",
            RejectReason::Protocol,
            shown,
        ));
    }
    let Some((path, parameters)) = parse_path(argument, "TO:") else {
        return Err(reject(
            shared,
            "501 5.5.4 Syntax: RCPT TO:<address>",
            RejectReason::Protocol,
            shown,
        ));
    };
    if !(valid_address(path) && (path.contains('@') || path.eq_ignore_ascii_case("postmaster"))) {
        return Err(reject(
            shared,
            "501 5.1.3 Bad recipient address syntax",
            RejectReason::Protocol,
            shown,
        ));
    }
    if !parameters.trim().is_empty() {
        return Err(reject(
            shared,
            "555 5.5.4 RCPT TO parameters not recognized",
            RejectReason::Protocol,
            shown,
        ));
    }
    if session.recipients.len() >= MAX_RECIPIENTS {
        return Err(reject(shared, "452 4.5.3 Too many recipients", RejectReason::Protocol, shown));
    }
    session.recipients.push(path.to_string());
    ok("250 2.1.5 Recipient OK")
}

/// Split `FROM:<path> params` (prefix case-insensitive, spaces after the colon tolerated) into the
/// path without brackets and the rest.
fn parse_path<'a>(argument: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let head = argument.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = argument[prefix.len()..].trim_start().strip_prefix('<')?;
    let end = rest.find('>')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// A mailbox as RFC 5321 allows it, loosely: printable, no spaces or brackets, not too long.
fn valid_address(address: &str) -> bool {
    !address.is_empty()
        && address.len() <= MAX_PATH
        && !address.chars().any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
}

/// `AUTH PLAIN [initial]` or `AUTH LOGIN [user]`: any credentials are accepted.
async fn auth<R, W>(
    session: &mut Session,
    argument: &str,
    reader: &mut R,
    write: &mut W,
    shared: &Shared,
    shown: String,
) -> std::io::Result<Reply>
where
    R: AsyncBufRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    if session.helo.is_none() || session.mail_from.is_some() || session.authenticated {
        return Ok(Err(reject(
            shared,
            "503 5.5.1 Bad sequence of commands",
            RejectReason::Protocol,
            shown,
        )));
    }
    let mut words = argument.split_whitespace();
    let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
    let initial = words.next();
    // Challenges: PLAIN wants one response unless given inline; LOGIN wants user then password.
    let challenges: &[&str] = match (mechanism.as_str(), initial) {
        ("PLAIN", Some(_)) => &[],
        ("PLAIN", None) => &["334 "],
        ("LOGIN", Some(_)) => &["334 UGFzc3dvcmQ6"],
        ("LOGIN", None) => &["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"],
        _ => {
            return Ok(Err(reject(
                shared,
                "504 5.5.4 Unrecognized authentication type",
                RejectReason::Protocol,
                shown,
            )));
        }
    };
    let mut line = Vec::new();
    let timeouts = &shared.timeouts;
    for challenge in challenges {
        send(write, format!("{challenge}\r\n").as_bytes(), timeouts).await?;
        match within(Wait::Server, timeouts, read_line(reader, &mut line, MAX_COMMAND_LINE)).await?
        {
            Line::Eof => return Ok(Ok((String::new(), Next::Close))),
            Line::TooLong => {
                return Ok(Err(reject(
                    shared,
                    "500 5.5.6 Authentication exchange line is too long",
                    RejectReason::Protocol,
                    "AUTH line too long",
                )));
            }
            Line::Complete if line == b"*" => {
                return Ok(Err(reject(
                    shared,
                    "501 5.0.0 Authentication cancelled",
                    RejectReason::Protocol,
                    "AUTH cancelled",
                )));
            }
            Line::Complete => {}
        }
    }
    session.authenticated = true;
    Ok(ok("235 2.7.0 Authentication successful"))
}

/// Read the mail after 354 up to the final `.`, unstuffing dots, never holding more than the size
/// limit; then accept, reject or hold it.
async fn data<R: AsyncBufRead + Unpin>(
    session: &mut Session,
    reader: &mut R,
    shared: &Shared,
) -> std::io::Result<Reply> {
    let max = shared.limits.max_message_bytes;
    let timeouts = &shared.timeouts;
    let transfer = async {
        let mut message: Vec<u8> = Vec::new();
        let mut line = Vec::new();
        let mut too_large = false;
        // The first line is due within `data-init`, each later read within `data-block`.
        let mut pace = Wait::DataInit;
        loop {
            // While within the limit, a line may use the rest of it (plus its CR); past it, lines
            // are only looked at for the final dot.
            let budget = if too_large { 2 } else { max - message.len() + 1 };
            let read = read_line_paced(reader, &mut line, budget, Some((pace, timeouts))).await?;
            pace = Wait::DataBlock;
            match read {
                Line::Eof => return Ok(None),
                Line::TooLong => too_large = true,
                Line::Complete if line == b"." => return Ok(Some((message, too_large))),
                Line::Complete => {
                    if too_large {
                        continue;
                    }
                    let text = line.strip_prefix(b".").unwrap_or(&line);
                    if message.len() + text.len() + 2 > max {
                        too_large = true;
                        continue;
                    }
                    message.extend_from_slice(text);
                    message.extend_from_slice(b"\r\n");
                }
            }
        }
    };
    let Some((message, too_large)) = within(Wait::DataTermination, timeouts, transfer).await?
    else {
        return Ok(Ok((String::new(), Next::Close)));
    };
    if too_large {
        return Ok(Err(reject(
            shared,
            &format!("552 5.3.4 Message size exceeds fixed maximum message size ({max})"),
            RejectReason::TooLarge,
            format!("DATA over {max} bytes"),
        )));
    }
    let from = session.mail_from.clone().unwrap_or_default();
    let what = format!("mail from <{from}> to {} recipient(s)", session.recipients.len());
    let verdict = tokio::select! {
        verdict = shared.chaos(&what) => verdict,
        // A client that hangs up while its mail is held ends the hold.
        () = hung_up(reader) => return Ok(Ok((String::new(), Next::Close))),
    };
    match verdict {
        None => return Ok(Ok(("421 4.3.0 Service shutting down\r\n".into(), Next::Close))),
        Some(ChaosVerdict::Status(status)) if status >= 500 => {
            return Ok(Ok((
                "554 5.3.0 Transaction failed (provider outage rehearsal)\r\n".into(),
                Next::Continue,
            )));
        }
        Some(ChaosVerdict::Status(_)) => {
            return Ok(Ok((
                "451 4.3.0 Requested action aborted: local error in processing\r\n".into(),
                Next::Continue,
            )));
        }
        Some(ChaosVerdict::Pass) => {}
    }
    let received = shared.now();
    if !shared.try_accept() {
        return Ok(Err(
            "452 4.3.1 Insufficient system storage: message limit of this run reached\r\n".into(),
        ));
    }
    let queue_id = format!("{:016X}", shared.next_u64());
    let mut notification = shared.notification(received);
    notification.recipients = session.recipients.clone();
    let helo = session.helo.clone();
    fill_from_mime(&mut notification, &message, from, helo, &queue_id);
    shared.received(notification);
    Ok(ok(format!("250 2.0.0 OK queued as {queue_id}")))
}

/// Resolves once the client has closed the connection; pending while it is open (bytes it sends
/// meanwhile stay buffered for the session).
async fn hung_up<R: AsyncBufRead + Unpin>(reader: &mut R) {
    match reader.fill_buf().await {
        Ok([]) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// Parse the mail and fill subject, body, sender and details.
fn fill_from_mime(
    notification: &mut super::Notification,
    raw: &[u8],
    envelope_from: String,
    helo: Option<String>,
    queue_id: &str,
) {
    let addresses = |address: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        address
            .map(|a| a.iter().filter_map(|a| a.address().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let Some(message) = MessageParser::default().parse(raw) else {
        notification.from = (!envelope_from.is_empty()).then_some(envelope_from);
        notification.body = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        notification.channel_detail =
            json!({ "helo": helo, "queue_id": queue_id, "size": raw.len(), "parse_error": true });
        return;
    };
    let header_from =
        message.from().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_string);
    notification.from =
        if envelope_from.is_empty() { header_from.clone() } else { Some(envelope_from) };
    notification.subject = message.subject().map(str::to_string);
    let texts: Vec<String> = (0..message.text_body_count())
        .filter_map(|i| message.body_text(i))
        .map(|t| t.into_owned())
        .collect();
    // Mail text travels with CRLF line ends; record it with LF, as it was written.
    notification.body = texts.join("\n").replace("\r\n", "\n");
    let attachments: Vec<serde_json::Value> = message
        .attachments()
        .map(|part| json!({ "name": part.attachment_name(), "bytes": part.len() }))
        .collect();
    notification.channel_detail = json!({
        "helo": helo,
        "queue_id": queue_id,
        "message_id": message.message_id(),
        "header_from": header_from,
        "to": addresses(message.to()),
        "cc": addresses(message.cc()),
        "html": message.html_body_count() > 0 && message.html_part(0).is_some_and(|p| p.is_text_html()),
        "attachments": attachments,
        "size": raw.len(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<(Line, Vec<u8>)> {
        // A 3-byte buffer makes lines span several fills.
        let mut reader = BufReader::with_capacity(3, input);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            let line = read_line(&mut reader, &mut buf, max).await.unwrap();
            if line == Line::Eof {
                return out;
            }
            out.push((line, buf.clone()));
        }
    }

    #[tokio::test]
    async fn lines_end_in_crlf_or_lf_and_long_ones_are_dropped_whole() {
        let got = lines(b"EHLO a\r\nNOOP\nthis line is long\r\nQUIT\r\npartial", 8).await;
        assert_eq!(
            got,
            vec![
                (Line::Complete, b"EHLO a".to_vec()),
                (Line::Complete, b"NOOP".to_vec()),
                (Line::TooLong, Vec::new()),
                (Line::Complete, b"QUIT".to_vec()),
            ]
        );
    }

    #[test]
    fn paths_parse_loosely_but_need_brackets() {
        assert_eq!(parse_path("FROM:<a@b>", "FROM:"), Some(("a@b", "")));
        assert_eq!(parse_path("from: <a@b> SIZE=10", "FROM:"), Some(("a@b", " SIZE=10")));
        assert_eq!(parse_path("FROM:<>", "FROM:"), Some(("", "")));
        assert_eq!(parse_path("FROM:a@b", "FROM:"), None);
        assert_eq!(parse_path("TO:<a@b", "TO:"), None);
        assert_eq!(parse_path("FR", "FROM:"), None);
        assert!(valid_address("ops@example.com"));
        assert!(!valid_address("a b@c"));
        assert!(!valid_address(&"a".repeat(300)));
    }

    #[test]
    fn html_only_mail_becomes_text_and_qp_subjects_decode() {
        let raw = b"From: Ops <ops@example.com>\r\nTo: a@example.com\r\nSubject: =?ISO-8859-1?Q?Panne_=E0_Z=FCrich?=\r\n\
                    Content-Type: text/html; charset=utf-8\r\n\r\n<p>Billing is <b>down</b>.</p>\r\n";
        let mut n = crate::sinks::Notification {
            sink: "email".into(),
            kind: crate::sinks::SinkKind::Smtp,
            received: std::time::Duration::ZERO,
            from: None,
            recipients: vec![],
            subject: None,
            body: String::new(),
            channel_detail: serde_json::Value::Null,
        };
        fill_from_mime(&mut n, raw, String::new(), None, "Q");
        assert_eq!(n.subject.as_deref(), Some("Panne à Zürich"));
        assert_eq!(n.from.as_deref(), Some("ops@example.com"));
        assert_eq!(n.body.trim(), "Billing is down.");
        assert_eq!(n.channel_detail["html"], true);
    }
}
