//! The `dns` fault's responder: UDP sockets bound inside a container's network namespace, served
//! by a task of the harness, and the nat table that sends the container's queries to them.
//!
//! ```text
//! container process ─► 127.0.0.11:53 ─► [ip firedrill_dns_… nat output, prio -110: redirect]
//!        ─► 127.0.0.1:P (the responder, in the container's namespace, served by the harness)
//!             name matches: held `delay`, then NXDOMAIN / SERVFAIL / no answer / forwarded
//!             otherwise:    forwarded at once from a socket marked 0xfd17, which the redirect
//!                           skips, so Docker's own DNAT to its embedded DNS applies
//! ```
//!
//! Limits: only UDP queries to Docker's embedded DNS (127.0.0.11, user-defined networks) are
//! seen; TCP queries, other resolvers in `resolv.conf` and `/etc/hosts` are not faulted. Names are
//! matched exactly (case-insensitively, without the trailing dot); a resolver that appends search
//! domains asks for other names. If the harness dies the redirect stays until `firedrill gc`
//! (from the ledger) deletes it: queries meanwhile are refused (nothing listens), so they fail.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

use crate::backend::{BackendError, BackendErrorKind};
use crate::scenario::model::{DnsError, DnsFault};

/// The mark of the responder's own forwarded queries, which the redirect lets through.
const MARK: u32 = 0xfd17;

/// Docker's embedded DNS, as containers on user-defined networks are told to ask it.
const EMBEDDED: &str = "127.0.0.11:53";

fn other(message: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Other, message)
}

#[derive(Default)]
struct Counters {
    faulted: AtomicU64,
    forwarded: AtomicU64,
}

struct Running {
    task: tokio::task::AbortHandle,
    counters: Arc<Counters>,
    fault: DnsFault,
}

/// Responders by table name (one per faulted container).
fn running() -> &'static Mutex<HashMap<String, Running>> {
    static RUNNING: std::sync::OnceLock<Mutex<HashMap<String, Running>>> =
        std::sync::OnceLock::new();
    RUNNING.get_or_init(Mutex::default)
}

/// Bind the responder's sockets in the network namespace of `pid`: a listener on 127.0.0.1 and
/// a marked socket for forwarding. A thread of its own enters the namespace and ends after.
fn bind_in_netns(pid: i64) -> std::io::Result<(StdUdpSocket, StdUdpSocket)> {
    let namespace = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || {
        // SAFETY: a valid namespace descriptor; only this short-lived thread changes namespace.
        if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let listener = StdUdpSocket::bind("127.0.0.1:0")?;
        let upstream = StdUdpSocket::bind("0.0.0.0:0")?;
        let mark = MARK;
        // SAFETY: a valid socket and a u32 option value of the size given.
        let set = unsafe {
            libc::setsockopt(
                upstream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_MARK,
                (&mark as *const u32).cast(),
                std::mem::size_of::<u32>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(std::io::Error::last_os_error());
        }
        listener.set_nonblocking(true)?;
        upstream.set_nonblocking(true)?;
        Ok((listener, upstream))
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
}

/// The nat table that redirects the container's UDP queries to the responder (pure, for tests).
fn redirect_script(table: &str, port: u16) -> String {
    format!(
        "table ip {table} {{\n  chain queries {{\n    type nat hook output priority -110; policy accept;\n    meta mark {MARK:#x} return\n    ip daddr 127.0.0.11 udp dport 53 counter redirect to :{port}\n  }}\n}}\n"
    )
}

/// Start the responder for `fault` in the namespace of `pid` and redirect queries to it.
pub(crate) async fn start(pid: i64, table: &str, fault: &DnsFault) -> Result<String, BackendError> {
    let (listener, upstream) = tokio::task::spawn_blocking(move || bind_in_netns(pid))
        .await
        .map_err(|e| other(e.to_string()))?
        .map_err(|e| other(format!("failed to open the DNS responder in the container: {e}")))?;
    let port = listener.local_addr().map_err(|e| other(e.to_string()))?.port();
    let listener = Arc::new(UdpSocket::from_std(listener).map_err(|e| other(e.to_string()))?);
    let upstream = Arc::new(UdpSocket::from_std(upstream).map_err(|e| other(e.to_string()))?);
    let counters = Arc::new(Counters::default());
    let task = tokio::spawn(serve(listener, upstream, fault.clone(), counters.clone()));
    running().lock().expect("responders lock").insert(
        table.to_owned(),
        Running { task: task.abort_handle(), counters, fault: fault.clone() },
    );
    let script = redirect_script(table, port);
    if let Err(error) = super::netfault::in_netns_script(pid, &script).await {
        stop(table);
        return Err(error);
    }
    Ok(format!(
        "queries for {} {}; the rest forwarded to Docker's DNS (responder on 127.0.0.1:{port} in the container, table {table})",
        fault.names.join(", "),
        describe(fault)
    ))
}

fn describe(fault: &DnsFault) -> String {
    let delay = fault.delay.map(|d| format!("held {d:?}"));
    let error = fault.error.map(|e| match e {
        DnsError::Nxdomain => "answered NXDOMAIN",
        DnsError::Servfail => "answered SERVFAIL",
        DnsError::Drop => "dropped",
    });
    match (delay, error) {
        (Some(delay), Some(error)) => format!("{delay}, then {error}"),
        (Some(delay), None) => format!("{delay}, then answered"),
        (None, Some(error)) => error.to_owned(),
        (None, None) => "answered".to_owned(),
    }
}

/// Stop the responder of `table` when this process runs it; what it did.
pub(crate) fn stop(table: &str) -> Option<String> {
    let running = running().lock().expect("responders lock").remove(table)?;
    running.task.abort();
    let faulted = running.counters.faulted.load(Ordering::Relaxed);
    let forwarded = running.counters.forwarded.load(Ordering::Relaxed);
    Some(format!(
        "{faulted} queries for {} {}, {forwarded} others forwarded",
        running.fault.names.join(", "),
        describe(&running.fault)
    ))
}

/// The question's name of a DNS message, lower case without the trailing dot; `None` when it is
/// not a query this responder understands.
fn question_name(message: &[u8]) -> Option<(String, usize)> {
    if message.len() < 12
        || message[2] & 0x80 != 0
        || u16::from_be_bytes([message[4], message[5]]) != 1
    {
        return None;
    }
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let length = usize::from(*message.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        if length & 0xc0 != 0 {
            return None;
        }
        let label = message.get(at..at + length)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += length;
    }
    // Type and class follow the name.
    let end = at + 4;
    (message.len() >= end).then(|| (labels.join("."), end))
}

/// An answer to `query` (whose question ends at `end`) with `rcode` and no records.
fn error_answer(query: &[u8], end: usize, rcode: u8) -> Vec<u8> {
    let mut answer = query[..end].to_vec();
    answer[2] = 0x80 | (query[2] & 0x79); // QR, the query's opcode and RD.
    answer[3] = 0x80 | rcode; // RA.
    answer[6..12].fill(0); // No answer, authority or additional records.
    answer
}

/// Forwarded queries by the id they were sent upstream with: (client, the client's id).
type Pending = HashMap<u16, (SocketAddr, [u8; 2])>;

async fn serve(
    listener: Arc<UdpSocket>,
    upstream: Arc<UdpSocket>,
    fault: DnsFault,
    counters: Arc<Counters>,
) {
    let pending: Arc<Mutex<Pending>> = Arc::default();
    let next_id = Arc::new(AtomicU64::new(1));
    // Aborted with `serve` itself (the revert aborts it): its sockets must not outlive the fault.
    let _answers = AbortOnDrop(tokio::spawn({
        let (listener, upstream, pending) = (listener.clone(), upstream.clone(), pending.clone());
        async move {
            let mut buffer = vec![0u8; 4096];
            while let Ok((length, _)) = upstream.recv_from(&mut buffer).await {
                let message = &mut buffer[..length];
                if length < 12 {
                    continue;
                }
                let id = u16::from_be_bytes([message[0], message[1]]);
                let Some((client, original)) = pending.lock().expect("pending").remove(&id) else {
                    continue;
                };
                message[..2].copy_from_slice(&original);
                let _ = listener.send_to(message, client).await;
            }
        }
    }));
    let forward = {
        let (upstream, pending, next_id) = (upstream.clone(), pending.clone(), next_id.clone());
        move |mut query: Vec<u8>, client: SocketAddr| {
            let (upstream, pending, next_id) = (upstream.clone(), pending.clone(), next_id.clone());
            async move {
                let id = (next_id.fetch_add(1, Ordering::Relaxed) & 0xffff) as u16;
                let original = [query[0], query[1]];
                pending.lock().expect("pending").insert(id, (client, original));
                query[..2].copy_from_slice(&id.to_be_bytes());
                let embedded: SocketAddr = EMBEDDED.parse().expect("an address");
                let _ = upstream.send_to(&query, embedded).await;
            }
        }
    };
    let mut buffer = vec![0u8; 4096];
    let mut held = tokio::task::JoinSet::new();
    loop {
        let Ok((length, client)) = listener.recv_from(&mut buffer).await else { break };
        let query = buffer[..length].to_vec();
        let question = question_name(&query);
        let matched = question.as_ref().filter(|(name, _)| fault.names.iter().any(|n| n == name));
        let Some((_, end)) = matched else {
            counters.forwarded.fetch_add(1, Ordering::Relaxed);
            forward(query, client).await;
            continue;
        };
        counters.faulted.fetch_add(1, Ordering::Relaxed);
        let (end, error, delay) = (*end, fault.error, fault.delay);
        let (listener, forward) = (listener.clone(), forward.clone());
        held.spawn(async move {
            if let Some(delay) = delay {
                crate::clock::sleep(delay).await;
            }
            match error {
                None => forward(query, client).await,
                Some(DnsError::Drop) => {}
                Some(DnsError::Nxdomain) => {
                    let _ = listener.send_to(&error_answer(&query, end, 3), client).await;
                }
                Some(DnsError::Servfail) => {
                    let _ = listener.send_to(&error_answer(&query, end, 2), client).await;
                }
            }
        });
        // Reap what finished, so a long fault does not keep every query's task.
        while held.try_join_next().is_some() {}
    }
}

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name`, type A, with EDNS's OPT record in the additional section.
    fn query(name: &str) -> Vec<u8> {
        let mut message = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        for label in name.split('.') {
            message.push(label.len() as u8);
            message.extend_from_slice(label.as_bytes());
        }
        message.extend_from_slice(&[0, 0, 1, 0, 1]);
        message.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
        message
    }

    #[test]
    fn names_are_read_from_queries_and_answers_carry_the_question() {
        let q = query("Redis.Example");
        let (name, end) = question_name(&q).unwrap();
        assert_eq!(name, "redis.example");
        assert_eq!(end, 12 + 15 + 4);
        let answer = error_answer(&q, end, 3);
        assert_eq!(&answer[..2], &[0x12, 0x34], "the query's id");
        assert_eq!(answer[2], 0x81, "a response, recursion desired kept");
        assert_eq!(answer[3] & 0x0f, 3, "NXDOMAIN");
        assert_eq!(u16::from_be_bytes([answer[4], answer[5]]), 1);
        assert_eq!(&answer[6..12], &[0; 6]);
        assert_eq!(answer.len(), end, "no additional records");
        // An answer is no query.
        assert!(question_name(&answer).is_none());
    }

    #[test]
    fn the_redirect_skips_the_responder_s_own_queries() {
        let script = redirect_script("firedrill_dns_1_2", 40000);
        assert!(script.contains("type nat hook output priority -110"), "{script}");
        assert!(script.contains("meta mark 0xfd17 return"), "{script}");
        assert!(script.contains("ip daddr 127.0.0.11 udp dport 53 counter redirect to :40000"));
    }
}
