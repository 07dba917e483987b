//! The console's HTTP server: hyper on `127.0.0.1:0` (a random port), one token for every
//! request. Routes (each needs `?token=`; anything without the right token gets 403, HTML, SSE
//! and POST alike):
//!
//! - `GET /` — the page, with the state so far;
//! - `GET /events?after=N` — Server-Sent Events from frame N on (or after `Last-Event-ID`);
//! - `POST /answer` (form: `step`, `answer` = `acknowledge` | `roll-back`) — an answer at the
//!   desk; JSON back for the page's script (`Accept: application/json`), else a redirect to the
//!   page.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use indexmap::IndexMap;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::page;
use super::view::{Frame, View};
use crate::clock::{Clock, SystemClock};
use crate::engine::gameday::{Answer, Desk};

/// A console serving one desk.
pub(in crate::cli) struct Console {
    desk: Desk,
    token: String,
    clock: SystemClock,
    state: Mutex<State>,
    /// How many frames there are; SSE streams wait on it.
    frames_len: watch::Sender<usize>,
}

struct State {
    view: View,
    frames: Vec<String>,
}

/// Longest form body taken.
const MAX_BODY: usize = 16 * 1024;
/// A comment line this often keeps an idle event stream open through proxies and shows a dead
/// client.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

impl Console {
    /// Bind `127.0.0.1:0`, watch the desk's runs and serve until the process ends; the URL with
    /// its token.
    pub(in crate::cli) async fn start(
        desk: Desk,
        steps: IndexMap<String, usize>,
    ) -> std::io::Result<String> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let token = new_token()?;
        let console = Arc::new(Console {
            desk: desk.clone(),
            token,
            clock: SystemClock::start(),
            state: Mutex::new(State { view: View::new(steps), frames: Vec::new() }),
            frames_len: watch::channel(0).0,
        });
        let watcher = console.clone();
        desk.watch(Arc::new(move |event| watcher.take(event)));
        let url = console.url(addr);
        tokio::spawn(serve(listener, console));
        Ok(url)
    }

    fn url(&self, addr: SocketAddr) -> String {
        format!("http://{addr}/?token={}", self.token)
    }

    /// A journal event: into the view, its frames onto the log (quick: under the journal's lock).
    fn take(&self, event: &crate::journal::Event) {
        let mut state = self.lock();
        let frames = state.view.apply(event);
        if frames.is_empty() {
            return;
        }
        for frame in frames {
            let frame = self.finish(frame, &state.view);
            let id = state.frames.len();
            state.frames.push(frame.sse(id));
        }
        self.frames_len.send_replace(state.frames.len());
    }

    /// The `prompts` frame carries its cards rendered here (escaped, with the token in the forms).
    fn finish(&self, frame: Frame, view: &View) -> Frame {
        if frame.name != "prompts" {
            return frame;
        }
        let html = page::prompts_html(&view.prompts, &self.token);
        Frame { name: frame.name, data: serde_json::json!({ "prompts": frame.data, "html": html }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("console lock poisoned")
    }
}

async fn serve(listener: TcpListener, console: Arc<Console>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let console = console.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let console = console.clone();
                async move { Ok::<_, Infallible>(handle(&console, request.map(Body::new)).await) }
            });
            // A client gone mid-request ends only its connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(console: &Arc<Console>, request: Request<Body>) -> Response<Body> {
    if !token_matches(request.uri().query(), &console.token) {
        return text(StatusCode::FORBIDDEN, "forbidden: this console needs the token of its URL\n");
    }
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => {
            let state = console.lock();
            let now = console.clock.wall().as_millisecond();
            let html = page::page(&state.view, &console.token, state.frames.len(), now);
            let mut response = Response::new(Body::from(html));
            set(&mut response, header::CONTENT_TYPE, "text/html; charset=utf-8");
            set(&mut response, header::CACHE_CONTROL, "no-store");
            response
        }
        (&Method::GET, "/events") => {
            let after = last_event_id(&request)
                .map(|id| id + 1)
                .or_else(|| query_value(request.uri().query(), "after")?.parse().ok())
                .unwrap_or(0);
            events(console.clone(), after)
        }
        (&Method::POST, "/answer") => answer(console, request).await,
        (_, "/" | "/events" | "/answer") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The event stream from frame `after` on, live until the client goes.
fn events(console: Arc<Console>, after: usize) -> Response<Body> {
    let changes = console.frames_len.subscribe();
    // The first chunk goes out at once (a reconnection hint), so the client sees the stream open.
    let first = Bytes::from_static(b"retry: 1000\n\n");
    let stream = futures_util::stream::unfold(
        (console, changes, after, Some(first)),
        |(console, mut changes, mut next, first)| async move {
            if let Some(first) = first {
                return Some((Ok::<_, Infallible>(first), (console, changes, next, None)));
            }
            loop {
                let pending = {
                    let state = console.lock();
                    let pending = state.frames.get(next..).unwrap_or_default().concat();
                    next = next.max(state.frames.len());
                    pending
                };
                if !pending.is_empty() {
                    return Some((Ok(Bytes::from(pending)), (console, changes, next, None)));
                }
                tokio::select! {
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                    () = crate::clock::sleep(KEEP_ALIVE) => {
                        let alive = Bytes::from_static(b": keep-alive\n\n");
                        return Some((Ok(alive), (console, changes, next, None)));
                    }
                }
            }
        },
    );
    let mut response = Response::new(Body::from_stream(stream));
    set(&mut response, header::CONTENT_TYPE, "text/event-stream");
    set(&mut response, header::CACHE_CONTROL, "no-store");
    response
}

async fn answer(console: &Arc<Console>, request: Request<Body>) -> Response<Body> {
    let json = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_BODY).await else {
        return reply(
            console,
            json,
            StatusCode::PAYLOAD_TOO_LARGE,
            Err("the form is too large".into()),
        );
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let (Some(step), Some(answer)) = (field("step"), field("answer")) else {
        return reply(
            console,
            json,
            StatusCode::BAD_REQUEST,
            Err("the form needs `step` and `answer`".into()),
        );
    };
    let (answer, done) = match answer {
        "acknowledge" => (Answer::Acknowledge, "acknowledged"),
        "roll-back" => (Answer::RollBack, "decided to roll back at"),
        other => {
            let error = format!("unknown answer `{other}` (acknowledge, roll-back)");
            return reply(console, json, StatusCode::BAD_REQUEST, Err(error));
        }
    };
    match console.desk.answer(step, answer, "console") {
        Ok(()) => reply(console, json, StatusCode::OK, Ok(format!("{done} `{step}`"))),
        Err(error) => reply(console, json, StatusCode::CONFLICT, Err(error.to_string())),
    }
}

/// JSON for the page's script, a redirect to the page for a plain form post.
fn reply(
    console: &Console,
    json: bool,
    status: StatusCode,
    outcome: Result<String, String>,
) -> Response<Body> {
    if !json {
        if let Err(error) = outcome {
            return text(status, &format!("{error}\n"));
        }
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SEE_OTHER;
        let location = format!("/?token={}", console.token);
        response
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_str(&location).expect("a hex token"));
        return response;
    }
    let body = match outcome {
        Ok(message) => serde_json::json!({ "ok": true, "message": message }),
        Err(error) => serde_json::json!({ "ok": false, "error": error }),
    };
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    set(&mut response, header::CONTENT_TYPE, "application/json");
    response
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_owned()));
    *response.status_mut() = status;
    set(&mut response, header::CONTENT_TYPE, "text/plain; charset=utf-8");
    response
}

fn set(response: &mut Response<Body>, name: header::HeaderName, value: &'static str) {
    response.headers_mut().insert(name, HeaderValue::from_static(value));
}

fn last_event_id(request: &Request<Body>) -> Option<usize> {
    request.headers().get("last-event-id")?.to_str().ok()?.trim().parse().ok()
}

/// The first value of `name` in a query string.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Whether the query carries exactly this token (compared in constant time for its length).
pub(super) fn token_matches(query: Option<&str>, token: &str) -> bool {
    let Some(given) = query_value(query, "token") else { return false };
    given.len() == token.len()
        && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// 128 random bits from the kernel, as hex.
fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    fs_err::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let token = "0123456789abcdef0123456789abcdef";
        assert!(token_matches(Some(&format!("token={token}")), token));
        assert!(token_matches(Some(&format!("after=3&token={token}")), token));
        assert!(!token_matches(None, token));
        assert!(!token_matches(Some(""), token));
        assert!(!token_matches(Some("token="), token));
        assert!(!token_matches(Some(&format!("token={}", &token[1..])), token), "a prefix");
        assert!(!token_matches(Some(&format!("token={token}0")), token), "longer");
        assert!(!token_matches(Some("token=0123456789abcdef0123456789abcdeF"), token), "one byte");
        assert!(!token_matches(Some(&format!("tok={token}")), token));
        // Only the first `token` counts.
        assert!(!token_matches(Some(&format!("token=x&token={token}")), token));
    }

    #[test]
    fn tokens_are_128_random_bits_in_hex() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
