//! The `packet` fault's queue: `delay`, `jitter`, `correlation`, `reorder`, `corrupt` and
//! `duplicate` without netem. An `NFQUEUE` rule (iptables, `mangle` `OUTPUT`, chain
//! `FIREDRILL_Q_<container>`) in the container's network namespace hands every packet leaving by
//! the run network's interface to queue [`QUEUE`]; a thread of the harness, holding a netfilter
//! netlink socket opened *inside* that namespace, decides each packet's fate and gives its verdict
//! when the packet is due.
//!
//! ```text
//! container process ─► [mangle OUTPUT ─► FIREDRILL_Q_…: -o eth0 (! mark 0xfd18) ─► NFQUEUE 64791 --queue-bypass]
//!      ─► this thread: hold `delay ± jitter` (correlated), or 0 for a `reorder` share,
//!           then NF_ACCEPT — as given, or with one bit flipped past the IP header (`corrupt`),
//!           after a copy sent from a raw socket marked 0xfd18, which the rule lets by (`duplicate`)
//! ```
//!
//! Verdicts are given when due, not in arrival order: jitter reorders packets as netem's does, and
//! a `reorder` share overtakes the delayed rest. If the harness dies the socket closes with it and
//! `--queue-bypass` lets packets through unheld until `firedrill gc` deletes the rule.

use std::collections::{BinaryHeap, HashMap};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::faults::SeededRng;

/// The queue number the rule sends packets to (queues are per network namespace).
pub(crate) const QUEUE: u16 = 0xfd17;

/// The mark of the duplicates this module sends, which the rule lets by.
pub(crate) const MARK: u32 = 0xfd18;

/// Packets the kernel holds for the queue before it drops new ones (netem's default is 1000).
const QUEUE_MAXLEN: u32 = 10_000;

const NETLINK_NETFILTER: i32 = 12;
const SOL_NETLINK: i32 = 270;
const NETLINK_NO_ENOBUFS: i32 = 5;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_PACKET: u8 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NF_ACCEPT: u32 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;

/// What the queue does to packets: the queued keys of a `packet` fault.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Shape {
    /// Hold of every packet not sent early.
    pub delay: Duration,
    /// The hold varies uniformly within `delay ± jitter`.
    pub jitter: Duration,
    /// Weight of the previous draw in the next one (netem's `correlation`), 0 to 1.
    pub correlation: f64,
    /// Share of packets sent at once (overtaking the held ones).
    pub reorder: f64,
    /// Share of packets with one bit flipped past the IP header.
    pub corrupt: f64,
    /// Share of packets sent twice.
    pub duplicate: f64,
}

/// What happens to one packet (pure, from the draws).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Plan {
    /// How long it is held.
    pub hold: Duration,
    /// Sent at once by the `reorder` share.
    pub early: bool,
    /// The byte and bit flipped, when corrupted.
    pub flip: Option<(usize, u8)>,
    /// Sent twice.
    pub duplicate: bool,
}

/// The draws of one queue: a SplitMix64 stream and netem's correlated uniform.
pub(crate) struct Planner {
    shape: Shape,
    rng: SeededRng,
    last: f64,
}

impl Planner {
    pub(crate) fn new(shape: Shape, seed: u64) -> Self {
        Planner { shape, rng: SeededRng::new(seed), last: 0.5 }
    }

    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, share: f64) -> bool {
        share > 0.0 && self.uniform() < share
    }

    /// The fate of a packet of `len` bytes whose transport part starts at `header`.
    pub(crate) fn plan(&mut self, header: usize, len: usize) -> Plan {
        let shape = self.shape;
        let early = self.chance(shape.reorder);
        let hold = if early {
            Duration::ZERO
        } else if shape.jitter.is_zero() {
            shape.delay
        } else {
            // netem's get_crandom: the new draw weighted against the last one.
            let drawn = self.uniform();
            let value = drawn * (1.0 - shape.correlation) + self.last * shape.correlation;
            self.last = value;
            let offset = shape.jitter.as_secs_f64() * (2.0 * value - 1.0);
            Duration::from_secs_f64((shape.delay.as_secs_f64() + offset).max(0.0))
        };
        let flip = (self.chance(shape.corrupt) && len > header).then(|| {
            let byte = header + (self.rng.next_u64() % (len - header) as u64) as usize;
            (byte, (self.rng.next_u64() % 8) as u8)
        });
        let duplicate = self.chance(shape.duplicate);
        Plan { hold, early, flip, duplicate }
    }
}

/// Where the transport part of an IP packet starts: the IPv4 header's length, or IPv6's fixed 40
/// bytes (extension headers count as transport). `None`: not IP.
pub(crate) fn transport_offset(packet: &[u8]) -> Option<usize> {
    match packet.first()? >> 4 {
        4 => Some(usize::from(packet[0] & 0x0f) * 4),
        6 => Some(40),
        _ => None,
    }
}

/// One netfilter-queue netlink message (pure, for tests).
fn message(kind: u16, flags: u16, seq: u32, attributes: &[(u16, &[u8])]) -> Vec<u8> {
    let mut buffer = vec![0u8; 16];
    // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, the queue number (big-endian).
    buffer.extend([0u8, 0]);
    buffer.extend(QUEUE.to_be_bytes());
    for (kind, data) in attributes {
        buffer.extend(((4 + data.len()) as u16).to_ne_bytes());
        buffer.extend(kind.to_ne_bytes());
        buffer.extend(*data);
        while buffer.len() % 4 != 0 {
            buffer.push(0);
        }
    }
    let length = buffer.len() as u32;
    buffer[0..4].copy_from_slice(&length.to_ne_bytes());
    buffer[4..6].copy_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | kind).to_ne_bytes());
    buffer[6..8].copy_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    buffer[8..12].copy_from_slice(&seq.to_ne_bytes());
    buffer
}

/// The verdict `NF_ACCEPT` for packet `id`, with the packet's new bytes when mangled.
fn accept(id: u32, payload: Option<&[u8]>) -> Vec<u8> {
    let mut header = NF_ACCEPT.to_be_bytes().to_vec();
    header.extend(id.to_be_bytes());
    match payload {
        Some(bytes) => {
            message(NFQNL_MSG_VERDICT, 0, 0, &[(NFQA_VERDICT_HDR, &header), (NFQA_PAYLOAD, bytes)])
        }
        None => message(NFQNL_MSG_VERDICT, 0, 0, &[(NFQA_VERDICT_HDR, &header)]),
    }
}

/// What a received datagram holds (pure, for tests).
#[derive(Debug, PartialEq)]
enum Received<'a> {
    /// A queued packet: its id and bytes.
    Packet(u32, &'a [u8]),
    /// An acknowledgement (0) or an error (a negative errno) for request `seq`.
    Error {
        seq: u32,
        errno: i32,
    },
    Other,
}

/// Split a datagram into its netlink messages (pure, for tests).
fn parse(datagram: &[u8]) -> Vec<Received<'_>> {
    let mut found = Vec::new();
    let mut rest = datagram;
    while rest.len() >= 16 {
        let length = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        if length < 16 || length > rest.len() {
            break;
        }
        let kind = u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes"));
        let seq = u32::from_ne_bytes(rest[8..12].try_into().expect("4 bytes"));
        let body = &rest[16..length];
        found.push(if kind == NLMSG_ERROR && body.len() >= 4 {
            Received::Error { seq, errno: i32::from_ne_bytes(body[0..4].try_into().expect("4")) }
        } else if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET && body.len() >= 4 {
            packet(&body[4..])
        } else {
            Received::Other
        });
        rest = rest.get((length + 3) & !3..).unwrap_or(&[]);
    }
    found
}

fn packet(mut attributes: &[u8]) -> Received<'_> {
    let (mut id, mut payload) = (None, None);
    while attributes.len() >= 4 {
        let length = usize::from(u16::from_ne_bytes([attributes[0], attributes[1]]));
        let kind = u16::from_ne_bytes([attributes[2], attributes[3]]) & 0x3fff;
        if length < 4 || length > attributes.len() {
            break;
        }
        let data = &attributes[4..length];
        match kind {
            NFQA_PACKET_HDR if data.len() >= 4 => {
                id = Some(u32::from_be_bytes(data[0..4].try_into().expect("4 bytes")));
            }
            NFQA_PAYLOAD => payload = Some(data),
            _ => {}
        }
        attributes = attributes.get((length + 3) & !3..).unwrap_or(&[]);
    }
    match id {
        Some(id) => Received::Packet(id, payload.unwrap_or(&[])),
        None => Received::Other,
    }
}

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn set_option(fd: &OwnedFd, level: i32, name: i32, value: i32) -> std::io::Result<()> {
    // SAFETY: a valid socket and an int option value of the size given.
    let result = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if result == 0 { Ok(()) } else { Err(last_error()) }
}

fn socket(family: i32, kind: i32, protocol: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the descriptor is owned from here.
    let fd = unsafe { libc::socket(family, kind | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn send(fd: &OwnedFd, bytes: &[u8]) -> std::io::Result<()> {
    // SAFETY: a valid socket and a buffer of the length given.
    let sent = unsafe { libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
    if sent < 0 { Err(last_error()) } else { Ok(()) }
}

fn receive(fd: &OwnedFd, buffer: &mut [u8], wait: bool) -> std::io::Result<usize> {
    let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
    // SAFETY: a valid socket and a writable buffer of the length given.
    let got =
        unsafe { libc::recv(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len(), flags) };
    if got < 0 { Err(last_error()) } else { Ok(got as usize) }
}

/// Send a configuration request and wait for its acknowledgement.
fn configure(fd: &OwnedFd, seq: u32, attributes: &[(u16, &[u8])]) -> std::io::Result<()> {
    send(fd, &message(NFQNL_MSG_CONFIG, NLM_F_ACK, seq, attributes))?;
    let mut buffer = vec![0u8; 8192];
    loop {
        let got = receive(fd, &mut buffer, true)?;
        for received in parse(&buffer[..got]) {
            if let Received::Error { seq: answered, errno } = received
                && answered == seq
            {
                return if errno == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::from_raw_os_error(-errno))
                };
            }
        }
    }
}

/// The sockets of one queue, opened in the container's network namespace.
struct Sockets {
    netlink: OwnedFd,
    raw4: OwnedFd,
    raw6: Option<OwnedFd>,
}

/// Open and bind the queue's netlink socket and the duplicates' raw sockets in the current
/// thread's network namespace.
fn open() -> std::io::Result<Sockets> {
    let netlink = socket(libc::AF_NETLINK, libc::SOCK_RAW, NETLINK_NETFILTER)?;
    // SAFETY: sockaddr_nl is plain data; all zeroes binds to a port the kernel picks.
    let mut address: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: a valid socket and an address of the size given.
    let bound = unsafe {
        libc::bind(
            netlink.as_raw_fd(),
            (&address as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if bound != 0 {
        return Err(last_error());
    }
    // Room for bursts; past it the kernel drops, and says so without failing our reads.
    set_option(&netlink, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 8 << 20)?;
    set_option(&netlink, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)?;
    let bind = [NFQNL_CFG_CMD_BIND, 0, 0, 0];
    configure(&netlink, 1, &[(NFQA_CFG_CMD, &bind)]).map_err(|e| {
        if e.raw_os_error() == Some(libc::EBUSY) {
            std::io::Error::other(format!("queue {QUEUE} is taken by another program"))
        } else {
            e
        }
    })?;
    let mut params = 0xffffu32.to_be_bytes().to_vec();
    params.push(NFQNL_COPY_PACKET);
    let maxlen = QUEUE_MAXLEN.to_be_bytes();
    configure(&netlink, 2, &[(NFQA_CFG_PARAMS, &params), (NFQA_CFG_QUEUE_MAXLEN, &maxlen)])?;
    let raw4 = socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW)?;
    set_option(&raw4, libc::SOL_SOCKET, libc::SO_MARK, MARK as i32)?;
    // A namespace without IPv6 has no IPv6 packets to duplicate.
    let raw6 = socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_RAW).ok();
    if let Some(raw6) = &raw6 {
        set_option(raw6, libc::SOL_SOCKET, libc::SO_MARK, MARK as i32)?;
    }
    Ok(Sockets { netlink, raw4, raw6 })
}

/// Send `packet` (IP header included) again from the raw socket of its family.
fn resend(sockets: &Sockets, packet: &[u8]) -> std::io::Result<()> {
    // SAFETY (both arms): sockaddr_in / sockaddr_in6 are plain data, and sendto(2) gets a valid
    // socket, a buffer and an address of the sizes given.
    let sent = match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => {
            let mut to: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            to.sin_family = libc::AF_INET as libc::sa_family_t;
            to.sin_addr.s_addr = u32::from_ne_bytes(packet[16..20].try_into().expect("4 bytes"));
            unsafe {
                libc::sendto(
                    sockets.raw4.as_raw_fd(),
                    packet.as_ptr().cast(),
                    packet.len(),
                    0,
                    (&to as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        Some(6) if packet.len() >= 40 => {
            let Some(raw6) = &sockets.raw6 else { return Ok(()) };
            let mut to: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            to.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            to.sin6_addr.s6_addr.copy_from_slice(&packet[24..40]);
            unsafe {
                libc::sendto(
                    raw6.as_raw_fd(),
                    packet.as_ptr().cast(),
                    packet.len(),
                    0,
                    (&to as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
        _ => return Ok(()),
    };
    if sent < 0 { Err(last_error()) } else { Ok(()) }
}

/// A packet waiting for its verdict.
struct Held {
    due: Instant,
    arrived: Instant,
    order: u64,
    id: u32,
    /// Its bytes, kept when it is corrupted or duplicated.
    bytes: Option<Vec<u8>>,
    /// The byte and bit to flip.
    flip: Option<(usize, u8)>,
    duplicate: bool,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// Reversed: the max-heap pops the earliest due (then the earliest arrived).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.order).cmp(&(self.due, self.order))
    }
}

/// What the queue did, for the journal.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts {
    /// Packets queued.
    pub packets: u64,
    /// Sent at once (`reorder`).
    pub early: u64,
    /// Sent with a bit flipped.
    pub corrupted: u64,
    /// Sent twice.
    pub duplicated: u64,
    /// Sum and sum of squares of the holds of packets not sent early, seconds.
    held_sum: f64,
    held_squares: f64,
    /// Sum of how late verdicts came after the packet was due, seconds.
    late_sum: f64,
    /// Failures to give a verdict or send a duplicate (the packet then leaves unheld or once).
    pub failures: u64,
}

impl Counts {
    /// "N packets queued: held 100.1 ms on average (σ 5.8 ms), 0.05 ms late; R sent at once,
    /// C corrupted, D duplicated" (pure, for tests).
    pub(crate) fn describe(&self) -> String {
        let held = self.packets - self.early;
        let mut text = format!("{} packets queued", self.packets);
        if held > 0 {
            let mean = self.held_sum / held as f64;
            let variance = (self.held_squares / held as f64 - mean * mean).max(0.0);
            text.push_str(&format!(
                ": {held} held {:.1} ms on average (σ {:.1} ms), verdicts {:.3} ms late on average",
                mean * 1e3,
                variance.sqrt() * 1e3,
                self.late_sum / self.packets.max(1) as f64 * 1e3
            ));
        }
        text.push_str(&format!(
            "; {} sent at once (reorder), {} corrupted, {} duplicated",
            self.early, self.corrupted, self.duplicated
        ));
        if self.failures > 0 {
            text.push_str(&format!(", {} verdicts or copies failed", self.failures));
        }
        text
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "packets are held in real time: the kernel's monotonic clock is the point"
)]
fn now() -> Instant {
    Instant::now()
}

/// Wait until `fd` or `wake` is readable or `timeout` passes (nanosecond resolution).
fn wait(fd: &OwnedFd, wake: &OwnedFd, timeout: Duration) {
    let mut fds = [
        libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: wake.as_raw_fd(), events: libc::POLLIN, revents: 0 },
    ];
    let spec = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: two valid pollfds, a timespec, no signal mask change.
    unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &spec, std::ptr::null()) };
}

/// The thread's loop: take packets, hold them, give verdicts when due; on `stop`, let every held
/// packet go at once and return what was done.
fn serve(sockets: Sockets, wake: OwnedFd, mut planner: Planner, stop: Arc<AtomicBool>) -> Counts {
    let mut counts = Counts::default();
    let mut heap: BinaryHeap<Held> = BinaryHeap::new();
    let mut buffer = vec![0u8; 0x10000 + 4096];
    let mut out: Vec<u8> = Vec::new();
    let mut order = 0u64;
    loop {
        // When stopping, what the kernel queued before the chain went is still read: it is let go
        // with the rest rather than dropped with the socket.
        let stopping = stop.load(Ordering::Relaxed);
        loop {
            let got = match receive(&sockets.netlink, &mut buffer, false) {
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let at = now();
            for received in parse(&buffer[..got]) {
                match received {
                    Received::Packet(id, bytes) => {
                        counts.packets += 1;
                        let header = transport_offset(bytes).unwrap_or(bytes.len());
                        let plan = planner.plan(header, bytes.len());
                        counts.early += u64::from(plan.early);
                        let keep = plan.flip.is_some() || plan.duplicate;
                        order += 1;
                        heap.push(Held {
                            due: at + plan.hold,
                            arrived: at,
                            order,
                            id,
                            bytes: keep.then(|| bytes.to_vec()),
                            flip: plan.flip,
                            duplicate: plan.duplicate,
                        });
                    }
                    Received::Error { errno, .. } if errno != 0 => counts.failures += 1,
                    _ => {}
                }
            }
        }
        // Give every due verdict (every verdict, when stopping) in as few sends as fit.
        let released = now();
        while heap.peek().is_some_and(|held| stopping || held.due <= released) {
            let mut held = heap.pop().expect("peeked");
            if held.duplicate
                && let Some(bytes) = &held.bytes
            {
                // The copy goes first, as the packet was sent (netem also corrupts one of the two).
                match resend(&sockets, bytes) {
                    Ok(()) => counts.duplicated += 1,
                    Err(_) => counts.failures += 1,
                }
            }
            let mangled = match (held.flip, held.bytes.as_mut()) {
                (Some((byte, bit)), Some(bytes)) => {
                    bytes[byte] ^= 1 << bit;
                    counts.corrupted += 1;
                    Some(bytes.as_slice())
                }
                _ => None,
            };
            out.extend(accept(held.id, mangled));
            let hold = released.saturating_duration_since(held.arrived).as_secs_f64();
            if held.due > held.arrived {
                counts.held_sum += hold;
                counts.held_squares += hold * hold;
            }
            counts.late_sum += released.saturating_duration_since(held.due).as_secs_f64();
            if out.len() > 0x8000 {
                if send(&sockets.netlink, &out).is_err() {
                    counts.failures += 1;
                }
                out.clear();
            }
        }
        if !out.is_empty() {
            if send(&sockets.netlink, &out).is_err() {
                counts.failures += 1;
            }
            out.clear();
        }
        if stopping {
            return counts;
        }
        let timeout = heap
            .peek()
            .map(|held| held.due.saturating_duration_since(now()))
            .unwrap_or(Duration::from_millis(250));
        wait(&sockets.netlink, &wake, timeout);
    }
}

struct Running {
    stop: Arc<AtomicBool>,
    wake: OwnedFd,
    thread: std::thread::JoinHandle<Counts>,
}

/// Queues by chain name (one per faulted container).
fn running() -> &'static Mutex<HashMap<String, Running>> {
    static RUNNING: std::sync::OnceLock<Mutex<HashMap<String, Running>>> =
        std::sync::OnceLock::new();
    RUNNING.get_or_init(Mutex::default)
}

fn random_seed() -> u64 {
    let mut seed = [0u8; 8];
    // SAFETY: a writable buffer of the length given.
    unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) };
    u64::from_ne_bytes(seed)
}

/// Start the queue's thread in the network namespace of `pid`, registered as `name`; returns once
/// the queue is bound (or why it could not be).
pub(crate) fn start(pid: i64, name: &str, shape: Shape) -> std::io::Result<()> {
    let namespace = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    let mut pipe = [0i32; 2];
    // SAFETY: a two-int array for pipe2(2) to fill.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(last_error());
    }
    // SAFETY: pipe2 just returned these descriptors to us.
    let (wake_read, wake_write) =
        unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let planner = Planner::new(shape, random_seed());
    let stopping = stop.clone();
    let thread = std::thread::Builder::new().name(format!("nfqueue-{name}")).spawn(move || {
        // SAFETY: a valid namespace descriptor; only this thread, which runs nothing else,
        // changes namespace.
        if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            let _ = ready_tx.send(Err(last_error()));
            return Counts::default();
        }
        match open() {
            Ok(sockets) => {
                let _ = ready_tx.send(Ok(()));
                serve(sockets, wake_read, planner, stopping)
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                Counts::default()
            }
        }
    })?;
    let ready = ready_rx.recv().map_err(|_| std::io::Error::other("the queue thread ended"))?;
    if let Err(e) = ready {
        let _ = thread.join();
        return Err(e);
    }
    running()
        .lock()
        .expect("queues lock")
        .insert(name.to_owned(), Running { stop, wake: wake_write, thread });
    Ok(())
}

/// Stop the queue `name` when this process runs it: every held packet is let go at once. What it
/// did.
pub(crate) fn stop(name: &str) -> Option<Counts> {
    let running = running().lock().expect("queues lock").remove(name)?;
    running.stop.store(true, Ordering::Relaxed);
    // SAFETY: a valid pipe descriptor and one byte.
    unsafe { libc::write(running.wake.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    running.thread.join().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_netlink_framed_with_the_queue_number() {
        let bind = message(NFQNL_MSG_CONFIG, NLM_F_ACK, 7, &[(NFQA_CFG_CMD, &[1, 0, 0, 0])]);
        assert_eq!(bind.len(), 16 + 4 + 8);
        assert_eq!(u32::from_ne_bytes(bind[0..4].try_into().unwrap()), 28);
        assert_eq!(u16::from_ne_bytes(bind[4..6].try_into().unwrap()), 0x0302);
        assert_eq!(u16::from_ne_bytes(bind[6..8].try_into().unwrap()), 5);
        assert_eq!(u32::from_ne_bytes(bind[8..12].try_into().unwrap()), 7);
        assert_eq!(&bind[16..20], &[0, 0, 0xfd, 0x17]);
        assert_eq!(&bind[20..28], &[8, 0, 1, 0, 1, 0, 0, 0]);
        // A 5-byte attribute is padded to 8.
        let verdict = accept(0x01020304, Some(&[9, 9, 9, 9, 9]));
        assert_eq!(verdict.len(), 16 + 4 + 12 + 12);
        assert_eq!(&verdict[24..32], &[0, 0, 0, 1, 1, 2, 3, 4]);
        assert_eq!(u16::from_ne_bytes(verdict[32..34].try_into().unwrap()), 9);
        assert_eq!(u16::from_ne_bytes(verdict[34..36].try_into().unwrap()), NFQA_PAYLOAD);
    }

    #[test]
    fn received_packets_and_acknowledgements_are_parsed() {
        let mut header = 42u32.to_be_bytes().to_vec();
        header.extend([0x08, 0x00, 3]);
        let payload = [0x45u8, 0, 0, 20];
        let mut datagram = message(
            NFQNL_MSG_PACKET,
            0,
            0,
            &[(NFQA_PACKET_HDR, &header), (NFQA_PAYLOAD, &payload)],
        );
        let mut ack = vec![0u8; 16];
        ack[0..4].copy_from_slice(&36u32.to_ne_bytes());
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack[8..12].copy_from_slice(&2u32.to_ne_bytes());
        ack.extend((-16i32).to_ne_bytes());
        ack.extend([0u8; 16]);
        datagram.extend(&ack);
        assert_eq!(
            parse(&datagram),
            vec![Received::Packet(42, &payload), Received::Error { seq: 2, errno: -16 }]
        );
        assert_eq!(parse(&[1, 2, 3]), vec![]);
    }

    #[test]
    fn the_transport_part_starts_after_the_ip_header() {
        assert_eq!(transport_offset(&[0x45, 0]), Some(20));
        assert_eq!(transport_offset(&[0x46, 0]), Some(24));
        assert_eq!(transport_offset(&[0x60, 0]), Some(40));
        assert_eq!(transport_offset(&[0x10]), None);
    }

    fn draws(shape: Shape, n: usize) -> Vec<Plan> {
        let mut planner = Planner::new(shape, 17);
        (0..n).map(|_| planner.plan(20, 84)).collect()
    }

    #[test]
    fn jitter_spreads_holds_uniformly_around_the_delay() {
        let shape = Shape {
            delay: Duration::from_millis(100),
            jitter: Duration::from_millis(10),
            ..Shape::default()
        };
        let holds: Vec<f64> = draws(shape, 100_000).iter().map(|p| p.hold.as_secs_f64()).collect();
        let mean = holds.iter().sum::<f64>() / holds.len() as f64;
        let sd =
            (holds.iter().map(|h| (h - mean).powi(2)).sum::<f64>() / holds.len() as f64).sqrt();
        assert!((mean - 0.100).abs() < 0.0002, "{mean}");
        // Uniform over ±10 ms: σ = 10 / √3 ms.
        assert!((sd - 0.010 / 3f64.sqrt()).abs() < 0.0002, "{sd}");
        assert!(holds.iter().all(|h| (0.090..=0.110).contains(h)));
        let fixed = Shape { jitter: Duration::ZERO, ..shape };
        assert!(draws(fixed, 100).iter().all(|p| p.hold == Duration::from_millis(100)));
    }

    #[test]
    fn correlation_makes_successive_holds_alike() {
        let base = Shape {
            delay: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
            ..Shape::default()
        };
        let step = |shape: Shape| {
            let holds: Vec<f64> =
                draws(shape, 10_000).iter().map(|p| p.hold.as_secs_f64()).collect();
            holds.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / holds.len() as f64
        };
        let free = step(base);
        let tied = step(Shape { correlation: 0.75, ..base });
        assert!(tied < free / 2.0, "{tied} vs {free}");
    }

    #[test]
    fn shares_are_drawn_per_packet() {
        let shape = Shape {
            delay: Duration::from_millis(50),
            reorder: 0.25,
            corrupt: 0.1,
            duplicate: 0.2,
            ..Shape::default()
        };
        let plans = draws(shape, 100_000);
        let share = |f: fn(&Plan) -> bool| plans.iter().filter(|p| f(p)).count() as f64 / 1e5;
        assert!((share(|p| p.early) - 0.25).abs() < 0.01);
        assert!((share(|p| p.flip.is_some()) - 0.1).abs() < 0.01);
        assert!((share(|p| p.duplicate) - 0.2).abs() < 0.01);
        assert!(plans.iter().filter(|p| p.early).all(|p| p.hold.is_zero()));
        assert!(plans.iter().filter(|p| !p.early).all(|p| p.hold == Duration::from_millis(50)));
        // Flips land past the 20-byte header, inside the 84-byte packet.
        assert!(
            plans
                .iter()
                .filter_map(|p| p.flip)
                .all(|(byte, bit)| (20..84).contains(&byte) && bit < 8)
        );
        // Nothing to flip in a packet that is all header.
        let mut planner = Planner::new(Shape { corrupt: 1.0, ..shape }, 1);
        assert_eq!(planner.plan(20, 20).flip, None);
    }

    #[test]
    fn the_heap_pops_the_earliest_due_first() {
        let at = now();
        let held = |ms: u64, order: u64| Held {
            due: at + Duration::from_millis(ms),
            arrived: at,
            order,
            id: order as u32,
            bytes: None,
            flip: None,
            duplicate: false,
        };
        let mut heap = BinaryHeap::from(vec![held(30, 1), held(10, 2), held(10, 3), held(0, 4)]);
        let ids: Vec<u32> = std::iter::from_fn(|| heap.pop().map(|h| h.id)).collect();
        assert_eq!(ids, vec![4, 2, 3, 1]);
    }

    #[test]
    fn counts_describe_the_realised_holds() {
        let counts = Counts {
            packets: 4,
            early: 1,
            corrupted: 1,
            duplicated: 2,
            held_sum: 0.3,
            held_squares: 0.03 + 0.0000002,
            late_sum: 0.0002,
            failures: 0,
        };
        let text = counts.describe();
        assert!(text.starts_with("4 packets queued: 3 held 100.0 ms on average"), "{text}");
        assert!(text.ends_with("1 sent at once (reorder), 1 corrupted, 2 duplicated"), "{text}");
    }
}
