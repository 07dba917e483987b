//! `packet`, `dns` and `disk-fill` faults, carried out from the Docker host inside one
//! container's namespaces — never by changing the user's image.
//!
//! - `packet`: `nsenter --net` runs the host's `nft` and `tc` in the container's network
//!   namespace. `loss` is an nftables table of its own (`inet firedrill_…`, an `output` chain that
//!   drops `numgen random mod 1000000 < N` of the packets leaving by any interface but `lo`,
//!   counted, optionally only towards `to`'s addresses); `rate` replaces the root qdisc of the
//!   run network's interface with `tbf`. Reverting deletes the table and the root qdisc (Docker's
//!   default, `noqueue`, comes back), and reports the counters: how many packets left and how
//!   many were dropped. The netem-only keys need `sch_netem`: [`check`] refuses them, before
//!   anything starts, on a kernel without it; where it exists they go into one `netem` qdisc.
//! - `dns`: a UDP responder in the harness, on sockets bound *inside* the container's network
//!   namespace (a short-lived thread `setns(2)`s into it, binds, and leaves), and an `ip` nat
//!   table that redirects the container's queries to Docker's embedded DNS (127.0.0.11:53) to
//!   it. Matching names are failed or held; the rest go on to Docker's DNS from a socket whose
//!   packets carry a mark the redirect skips (see `dns.rs`).
//! - `disk-fill`: one file `.firedrill-fill-N` created under the path inside the container
//!   through `/proc/PID/root` with `openat2(RESOLVE_IN_ROOT)` (so the container's own symlinks
//!   cannot lead outside it), `fallocate`d to the size that brings `df`'s use to the level.
//!
//! All of it needs firedrill on the Docker host as root (as `kill-process`), with `nsenter`,
//! `nft` and (for `rate`) `tc` on `PATH`; [`check`] says which is missing.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::Docker;
use crate::backend::{BackendError, BackendErrorKind};
use crate::faults::Undo;
use crate::scenario::model::{FaultKind, FillAmount, PacketFault};

/// The kernel option netem lives in, as refusals name it.
pub(crate) const NETEM: &str = "CONFIG_NET_SCH_NETEM (the `sch_netem` qdisc)";

/// The loss share is drawn per packet as `numgen random mod LOSS_SCALE < N`.
const LOSS_SCALE: u64 = 1_000_000;

fn other(message: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Other, message)
}

/// Whether this kernel has netem: `Ok` when `/proc/config.gz` says `=y`, or `=m` with the
/// module present; `Err(why)` otherwise. Unreadable configuration: `Ok` (the apply will tell).
pub(crate) fn netem_available() -> Result<(), String> {
    let Ok(compressed) = std::fs::read("/proc/config.gz") else { return Ok(()) };
    let mut text = String::new();
    if gunzip(&compressed, &mut text).is_err() {
        return Ok(());
    }
    netem_in_config(&text, || {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let dir = format!("/lib/modules/{}/kernel/net/sched", release.trim());
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("sch_netem"))
        })
    })
}

/// `/proc/config.gz` through the host's `gzip -dc` (no compression crate for one file).
fn gunzip(compressed: &[u8], out: &mut String) -> std::io::Result<()> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let data = compressed.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let output = child.wait_with_output()?;
    let _ = writer.join();
    *out = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() { Ok(()) } else { Err(std::io::Error::other("gzip failed")) }
}

/// The netem verdict from a kernel configuration's text (pure, for tests).
fn netem_in_config(config: &str, module_present: impl Fn() -> bool) -> Result<(), String> {
    let line = config.lines().find(|line| line.contains("CONFIG_NET_SCH_NETEM"));
    match line.map(str::trim) {
        Some("CONFIG_NET_SCH_NETEM=y") => Ok(()),
        Some("CONFIG_NET_SCH_NETEM=m") if module_present() => Ok(()),
        Some("CONFIG_NET_SCH_NETEM=m") => {
            Err(format!("this kernel builds {NETEM} as a module, and the module is not installed"))
        }
        _ => Err(format!("this kernel lacks {NETEM}")),
    }
}

/// Refuse, before anything starts, the faults this host cannot apply: naming what is missing.
pub(crate) fn check(kinds: &[&FaultKind]) -> Result<(), BackendError> {
    let mut needs: Vec<&str> = Vec::new();
    let mut host_side = false;
    for kind in kinds {
        match kind {
            FaultKind::Packet(packet) => {
                host_side = true;
                needs.extend(["nsenter", "nft", "ip"]);
                if packet.rate_bytes.is_some() || !packet.netem_keys().is_empty() {
                    needs.push("tc");
                }
                let netem = packet.netem_keys();
                if !netem.is_empty()
                    && let Err(why) = netem_available()
                {
                    return Err(other(format!(
                        "`packet` with `{}` needs netem: {why}",
                        netem.join("`, `")
                    ))
                    .with_hint(
                        "`loss` and `rate` work without netem (nftables, tbf); delay, jitter, \
                         reorder, corrupt and duplicate need a kernel with CONFIG_NET_SCH_NETEM",
                    ));
                }
            }
            FaultKind::Dns(_) => {
                host_side = true;
                needs.extend(["nsenter", "nft"]);
            }
            FaultKind::DiskFill(_) => host_side = true,
            FaultKind::ClockSkew { .. } => super::clockskew::check()?,
            FaultKind::IoLimit(_) => {
                host_side = true;
                super::iolimit::check()?;
            }
            FaultKind::Memory { .. } | FaultKind::Cpu { .. } | FaultKind::Partition => {}
        }
    }
    if host_side && effective_uid() != 0 {
        return Err(other(
            "`packet`, `dns`, `disk-fill` and `io-limit` faults need firedrill to run as root",
        )
        .with_hint(
            "they act inside the container's namespaces from the Docker host: run firedrill \
                 there as root",
        ));
    }
    needs.sort_unstable();
    needs.dedup();
    let missing: Vec<&str> = needs.into_iter().filter(|program| !on_path(program)).collect();
    if !missing.is_empty() {
        return Err(other(format!("the host lacks `{}`", missing.join("`, `"))).with_hint(
            "install Debian's `util-linux` (nsenter), `nftables` (nft) and `iproute2` (ip, tc)",
        ));
    }
    Ok(())
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir| dir.join(program).is_file())
}

/// The container's main process (its namespaces' holder), when it runs.
pub(crate) async fn main_pid(
    docker: &Docker,
    container: &str,
) -> Result<Option<i64>, BackendError> {
    let inspect = docker.client().inspect_container(container, None).await.map_err(|e| {
        let not_found = super::error::is_status(&e, 404);
        let kind = if not_found { BackendErrorKind::NotFound } else { BackendErrorKind::Other };
        BackendError::new(kind, format!("failed to inspect `{container}`: {e}"))
    })?;
    Ok(inspect
        .state
        .filter(|state| state.running.unwrap_or(false))
        .and_then(|state| state.pid)
        .filter(|pid| *pid > 0))
}

async fn running_pid(docker: &Docker, container: &str) -> Result<i64, BackendError> {
    main_pid(docker, container).await?.ok_or_else(|| other(format!("`{container}` is not running")))
}

/// Run `program args` in the network namespace of `pid` (`stdin` fed when given); its stdout.
async fn in_netns(
    pid: i64,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, BackendError> {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new("nsenter");
    command
        .args(["--target", &pid.to_string(), "--net", "--", program])
        .args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child =
        command.spawn().map_err(|e| other(format!("failed to run `nsenter … {program}`: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|e| other(format!("failed to feed `{program}`: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| other(format!("failed to run `nsenter … {program}`: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(other(format!(
            "`{program} {}` in the container's network namespace failed: {}",
            args.join(" "),
            stderr.trim().lines().next().unwrap_or("no message")
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Load an nftables script in the network namespace of `pid`.
pub(crate) async fn in_netns_script(pid: i64, script: &str) -> Result<(), BackendError> {
    in_netns(pid, "nft", &["-f", "-"], Some(script)).await.map(drop)
}

/// The interface that holds `address` in the namespace of `pid`.
async fn device_of(pid: i64, address: &str) -> Result<String, BackendError> {
    let text = in_netns(pid, "ip", &["-o", "addr", "show"], None).await?;
    text.lines()
        .find(|line| {
            line.split_whitespace().nth(3).is_some_and(|a| a.split('/').next() == Some(address))
        })
        .and_then(|line| line.split_whitespace().nth(1))
        .map(|device| device.split('@').next().unwrap_or(device).to_owned())
        .ok_or_else(|| other(format!("no interface holds {address} in the container")))
}

/// The container's address on `network`.
pub(crate) async fn address_on(
    docker: &Docker,
    container: &str,
    network: &str,
) -> Result<Option<String>, BackendError> {
    let inspect = docker
        .client()
        .inspect_container(container, None)
        .await
        .map_err(|e| other(format!("failed to inspect `{container}`: {e}")))?;
    Ok(inspect
        .network_settings
        .and_then(|s| s.networks)
        .unwrap_or_default()
        .values()
        .find(|endpoint| endpoint.network_id.as_deref() == Some(network))
        .and_then(|endpoint| endpoint.ip_address.clone())
        .filter(|ip| !ip.is_empty()))
}

/// What restores `container` after `kind` (`packet`, `dns`, `disk-fill`). The names are derived
/// from the container (a service has one fault of a kind at a time, and a container belongs to
/// one run), so [`apply`] finds the same ones, and the ledger holds them before anything is
/// applied. Refuses a `rate` where the interface already has a root qdisc of someone else's.
pub(crate) async fn capture(
    docker: &Docker,
    kind: &FaultKind,
    container: &str,
    network: &str,
) -> Result<Undo, BackendError> {
    undo_for(docker, kind, container, network, true).await
}

async fn undo_for(
    docker: &Docker,
    kind: &FaultKind,
    container: &str,
    network: &str,
    check_qdisc: bool,
) -> Result<Undo, BackendError> {
    match kind {
        FaultKind::ClockSkew { .. } => return super::clockskew::capture(docker, container).await,
        FaultKind::IoLimit(limit) => {
            return super::iolimit::capture(docker, container, limit).await;
        }
        _ => {}
    }
    let pid = running_pid(docker, container).await?;
    let short: String = container.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
    match kind {
        FaultKind::Packet(packet) => {
            let qdisc = packet.rate_bytes.is_some() || !packet.netem_keys().is_empty();
            let device = if qdisc {
                let address = address_on(docker, container, network).await?.ok_or_else(|| {
                    other(format!("`{container}` has no address on the run network"))
                })?;
                let device = device_of(pid, &address).await?;
                if check_qdisc {
                    let show = ["qdisc", "show", "dev", &device, "root"];
                    let root = in_netns(pid, "tc", &show, None).await?;
                    if !root.trim().is_empty() && !root.starts_with("qdisc noqueue") {
                        return Err(other(format!(
                            "`{device}` of `{container}` already has a root qdisc ({})",
                            root.trim()
                        )));
                    }
                }
                Some(device)
            } else {
                None
            };
            let nft = packet.loss.is_some() && packet.netem_keys().is_empty();
            let table = nft.then(|| format!("firedrill_loss_{short}"));
            Ok(Undo::Packet { table, device })
        }
        FaultKind::Dns(_) => Ok(Undo::Dns { table: format!("firedrill_dns_{short}") }),
        FaultKind::DiskFill(fill) => {
            let dir = fill.path.trim_end_matches('/');
            Ok(Undo::DiskFill { file: format!("{dir}/.firedrill-fill-{short}") })
        }
        FaultKind::Memory { .. }
        | FaultKind::Cpu { .. }
        | FaultKind::Partition
        | FaultKind::ClockSkew { .. }
        | FaultKind::IoLimit(_) => Err(other("not a host-side fault")),
    }
}

/// The nftables script of a `loss` fault (pure, for tests).
fn loss_script(table: &str, loss: f64, to: &[IpAddr]) -> String {
    let threshold = ((loss * LOSS_SCALE as f64).round() as u64).min(LOSS_SCALE);
    let set = |addresses: Vec<String>| format!("{{ {} }}", addresses.join(", "));
    let v4: Vec<String> = to.iter().filter(|a| a.is_ipv4()).map(ToString::to_string).collect();
    let v6: Vec<String> = to.iter().filter(|a| a.is_ipv6()).map(ToString::to_string).collect();
    let mut matches = Vec::new();
    if !v4.is_empty() {
        matches.push(format!("ip daddr {} ", set(v4)));
    }
    if !v6.is_empty() {
        matches.push(format!("ip6 daddr {} ", set(v6)));
    }
    if matches.is_empty() {
        matches.push(String::new());
    }
    let mut rules = String::new();
    for prefix in matches {
        rules.push_str(&format!(
            "    oifname != \"lo\" {prefix}counter\n    oifname != \"lo\" {prefix}numgen random mod {LOSS_SCALE} < {threshold} counter drop\n"
        ));
    }
    format!(
        "table inet {table} {{\n  chain egress {{\n    type filter hook output priority 0; policy accept;\n{rules}  }}\n}}\n"
    )
}

/// The `tc` arguments of the qdisc a `packet` fault installs (pure, for tests).
fn qdisc_args(packet: &PacketFault, device: &str) -> Vec<String> {
    let mut args: Vec<String> =
        ["qdisc", "replace", "dev", device, "root"].iter().map(|s| (*s).to_owned()).collect();
    let percent = |share: f64| format!("{:.4}%", share * 100.0);
    if packet.netem_keys().is_empty() {
        let rate = packet.rate_bytes.unwrap_or(u64::MAX / 16);
        // A burst of a tenth of a second's worth, at least a few full frames.
        let burst = (rate / 10).max(16 * 1024);
        args.extend(["tbf", "rate"].map(str::to_owned));
        args.push(format!("{}bit", rate * 8));
        args.extend(["burst".to_owned(), burst.to_string(), "latency".to_owned(), "1s".to_owned()]);
        return args;
    }
    args.push("netem".to_owned());
    if let Some(delay) = packet.delay {
        args.extend(["delay".to_owned(), format!("{}us", delay.as_micros())]);
        if let Some(jitter) = packet.jitter {
            args.push(format!("{}us", jitter.as_micros()));
            if let Some(correlation) = packet.correlation {
                args.push(percent(correlation));
            }
        }
    }
    for (key, value) in [
        ("loss", packet.loss),
        ("corrupt", packet.corrupt),
        ("duplicate", packet.duplicate),
        ("reorder", packet.reorder),
    ] {
        if let Some(share) = value {
            args.extend([key.to_owned(), percent(share)]);
        }
    }
    if let Some(rate) = packet.rate_bytes {
        args.extend(["rate".to_owned(), format!("{}bit", rate * 8)]);
    }
    args
}

/// Apply a host-side fault whose `undo` [`capture`] chose; `to` are the addresses of a `packet`
/// fault's `to` service. Returns what was done, for the journal.
pub(crate) async fn apply(
    docker: &Docker,
    kind: &FaultKind,
    container: &str,
    network: &str,
    to: &[IpAddr],
) -> Result<String, BackendError> {
    let undo = &undo_for(docker, kind, container, network, false).await?;
    if let (FaultKind::IoLimit(limit), Undo::IoLimit { .. }) = (kind, undo) {
        return super::iolimit::apply(undo, limit);
    }
    let pid = running_pid(docker, container).await?;
    match (kind, undo) {
        (FaultKind::Packet(packet), Undo::Packet { table, device }) => {
            let mut done = Vec::new();
            if let (Some(table), Some(loss)) = (table, packet.loss) {
                in_netns(pid, "nft", &["-f", "-"], Some(&loss_script(table, loss, to))).await?;
                let towards = if to.is_empty() {
                    String::new()
                } else {
                    format!(
                        " towards {}",
                        to.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                    )
                };
                done.push(format!(
                    "{:.2}% of egress packets dropped{towards} (nftables table {table})",
                    loss * 100.0
                ));
            }
            if let Some(device) = device {
                let args = qdisc_args(packet, device);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                if let Err(error) = in_netns(pid, "tc", &args, None).await {
                    // Whole or nothing: the loss table goes again.
                    if let Some(table) = table {
                        let _ =
                            in_netns(pid, "nft", &["delete", "table", "inet", table], None).await;
                    }
                    return Err(error);
                }
                done.push(format!("`tc {}`", args[..].join(" ")));
            }
            Ok(done.join("; "))
        }
        (FaultKind::ClockSkew { offset_secs }, Undo::ClockSkew { file }) => {
            super::clockskew::apply(file, *offset_secs)
        }
        (FaultKind::Dns(dns), Undo::Dns { table }) => super::dns::start(pid, table, dns).await,
        (FaultKind::DiskFill(fill), Undo::DiskFill { file }) => {
            let (file, amount) = (file.clone(), fill.amount);
            tokio::task::spawn_blocking(move || disk_fill(pid, &file, amount))
                .await
                .map_err(|e| other(e.to_string()))?
        }
        _ => Err(other("fault and undo record disagree")),
    }
}

/// Undo a host-side fault; what was done (with the counters it read), for the journal. A
/// container that no longer runs has lost its network namespace with the fault in it.
pub(crate) async fn revert(
    docker: &Docker,
    container: &str,
    undo: &Undo,
) -> Result<String, BackendError> {
    match undo {
        Undo::ClockSkew { file } => return super::clockskew::revert(file),
        Undo::IoLimit { .. } => return super::iolimit::revert(undo),
        _ => {}
    }
    let Some(pid) = main_pid(docker, container).await? else {
        if let Undo::Dns { table } = undo {
            super::dns::stop(table);
        }
        return Ok(
            "the container no longer runs: its namespace and the fault went with it".to_owned()
        );
    };
    match undo {
        Undo::Packet { table, device } => {
            let mut done = Vec::new();
            if let Some(device) = device {
                match in_netns(pid, "tc", &["qdisc", "del", "dev", device, "root"], None).await {
                    Ok(_) => done.push(format!("root qdisc of {device} removed")),
                    // Already Docker's default: nothing to delete.
                    Err(error) if error.message.contains("handle of zero") => {
                        done.push(format!("{device} had its default qdisc"))
                    }
                    Err(error) => return Err(error),
                }
            }
            if let Some(table) = table {
                let listing = in_netns(pid, "nft", &["list", "table", "inet", table], None).await;
                match listing {
                    Ok(text) => {
                        in_netns(pid, "nft", &["delete", "table", "inet", table], None).await?;
                        done.push(format!("table {table} deleted: {}", loss_counters(&text)));
                    }
                    Err(error) if error.message.contains("No such file") => {
                        done.push(format!("table {table} was not there"))
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(done.join("; "))
        }
        Undo::Dns { table } => {
            let deleted = in_netns(pid, "nft", &["delete", "table", "ip", table], None).await;
            let counted = super::dns::stop(table);
            match deleted {
                Ok(_) => {}
                Err(error) if error.message.contains("No such file") => {}
                Err(error) => return Err(error),
            }
            Ok(format!(
                "redirect table {table} deleted{}",
                counted.map(|c| format!("; {c}")).unwrap_or_default()
            ))
        }
        Undo::DiskFill { file } => {
            let file = file.clone();
            tokio::task::spawn_blocking(move || remove_fill(pid, &file))
                .await
                .map_err(|e| other(e.to_string()))?
        }
        Undo::Unpause
        | Undo::Memory { .. }
        | Undo::Cpu { .. }
        | Undo::Reconnect { .. }
        | Undo::NodeAvailability { .. }
        | Undo::ClockSkew { .. }
        | Undo::IoLimit { .. } => Err(other("not a host-side fault")),
    }
}

/// "N of M egress packets dropped (P%)" from `nft list table` (pure, for tests).
fn loss_counters(listing: &str) -> String {
    let packets = |line: &str| -> Option<u64> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == "packets")?;
        words.next()?.parse().ok()
    };
    let (mut sent, mut dropped) = (0, 0);
    for line in listing.lines().filter(|l| l.contains("counter")) {
        let Some(count) = packets(line) else { continue };
        if line.trim_end().ends_with("drop") {
            dropped += count;
        } else {
            sent += count;
        }
    }
    let share = if sent == 0 { 0.0 } else { dropped as f64 * 100.0 / sent as f64 };
    format!("{dropped} of {sent} egress packets dropped ({share:.2}%)")
}

/// `openat2(dir, path, RESOLVE_IN_ROOT)`: `path` resolved as if `dir` were `/`.
pub(super) fn open_in_root(
    root: &OwnedFd,
    path: &str,
    flags: i32,
    mode: u32,
) -> std::io::Result<OwnedFd> {
    let c_path = std::ffi::CString::new(path.trim_start_matches('/'))
        .map_err(|_| std::io::Error::other("a path with a NUL byte"))?;
    let c_path = if c_path.as_bytes().is_empty() { c".".to_owned() } else { c_path };
    // SAFETY: `open_how` is plain data; all zeroes is its "nothing asked" value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = u64::from(mode);
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid fd, NUL-terminated path, `how` lives across the call and its size is given.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c_path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

pub(super) fn container_root(pid: i64) -> std::io::Result<OwnedFd> {
    let file = std::fs::File::open(format!("/proc/{pid}/root"))?;
    Ok(file.into())
}

/// Space of the file system holding `fd`: (used + available to users, used), bytes.
fn space(fd: &OwnedFd) -> std::io::Result<(u64, u64)> {
    // SAFETY: statvfs is plain data; fstatvfs writes it for a valid descriptor.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let block = stat.f_frsize;
    let used = (stat.f_blocks - stat.f_bfree) * block;
    Ok((used + stat.f_bavail * block, used))
}

/// How many bytes bring `df`'s use (used / (used + available)) to `level` (pure, for tests).
pub(crate) fn fill_bytes(level: f64, usable: u64, used: u64) -> u64 {
    ((level * usable as f64).ceil() as u64).saturating_sub(used)
}

fn disk_fill(pid: i64, file: &str, amount: FillAmount) -> Result<String, BackendError> {
    let (dir, name) = file.rsplit_once('/').expect("an absolute path");
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: std::io::Error| other(format!("failed to {what} in the container: {e}"))
    };
    let root = container_root(pid).map_err(io("open the root"))?;
    let folder = open_in_root(&root, dir, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(io(&format!("open `{}`", if dir.is_empty() { "/" } else { dir })))?;
    let (usable, used) = space(&folder).map_err(io("read the free space"))?;
    let bytes = match amount {
        FillAmount::Bytes(bytes) => bytes,
        FillAmount::Level(level) => fill_bytes(level, usable, used),
    };
    let fd = open_in_root(&folder, name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)
        .map_err(io(&format!("create `{file}`")))?;
    if bytes > 0 {
        // SAFETY: a valid descriptor and a byte range.
        let result = unsafe { libc::fallocate(fd.as_raw_fd(), 0, 0, bytes as libc::off_t) };
        if result != 0 {
            let error = std::io::Error::last_os_error();
            // What did not fit is the point of the fault only when a level was asked for.
            drop(fd);
            // SAFETY: a valid directory descriptor and a NUL-terminated name.
            let c_name = std::ffi::CString::new(name).expect("no NUL");
            unsafe { libc::unlinkat(folder.as_raw_fd(), c_name.as_ptr(), 0) };
            return Err(other(format!("failed to allocate {bytes} bytes for `{file}`: {error}")));
        }
    }
    let (after_usable, after_used) = space(&folder).map_err(io("read the free space"))?;
    let percent = after_used as f64 * 100.0 / after_usable.max(1) as f64;
    Ok(format!(
        "{bytes} bytes in `{file}`; the file system is {percent:.1}% used ({} of {} bytes free)",
        after_usable - after_used,
        after_usable
    ))
}

fn remove_fill(pid: i64, file: &str) -> Result<String, BackendError> {
    let (dir, name) = file.rsplit_once('/').expect("an absolute path");
    let root = container_root(pid).map_err(|e| other(format!("failed to open the root: {e}")))?;
    let folder = match open_in_root(&root, dir, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
        Ok(folder) => folder,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            return Ok(format!("`{dir}` is gone, and the fill file with it"));
        }
        Err(e) => return Err(other(format!("failed to open `{dir}` in the container: {e}"))),
    };
    let c_name = std::ffi::CString::new(name).expect("no NUL");
    // SAFETY: a valid directory descriptor and a NUL-terminated name.
    if unsafe { libc::unlinkat(folder.as_raw_fd(), c_name.as_ptr(), 0) } != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::ENOENT) {
            return Ok(format!("`{file}` was not there"));
        }
        return Err(other(format!("failed to remove `{file}`: {error}")));
    }
    let (usable, used) = space(&folder).map_err(|e| other(e.to_string()))?;
    let percent = used as f64 * 100.0 / usable.max(1) as f64;
    Ok(format!("`{file}` removed; the file system is {percent:.1}% used"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn netem_is_judged_from_the_kernel_configuration() {
        assert!(netem_in_config("CONFIG_NET_SCH_NETEM=y\n", || false).is_ok());
        assert!(netem_in_config("CONFIG_NET_SCH_NETEM=m\n", || true).is_ok());
        let missing = netem_in_config("# CONFIG_NET_SCH_NETEM is not set\n", || true).unwrap_err();
        assert!(missing.contains("lacks CONFIG_NET_SCH_NETEM"), "{missing}");
        let module = netem_in_config("CONFIG_NET_SCH_NETEM=m\n", || false).unwrap_err();
        assert!(module.contains("module is not installed"), "{module}");
    }

    #[test]
    fn the_loss_script_drops_a_share_of_egress_and_counts_both() {
        let script = loss_script("t1", 0.1, &[]);
        assert!(script.contains("table inet t1"), "{script}");
        assert!(script.contains("type filter hook output priority 0"), "{script}");
        assert!(
            script.contains("oifname != \"lo\" numgen random mod 1000000 < 100000 counter drop"),
            "{script}"
        );
        let to: Vec<IpAddr> = vec!["172.18.0.3".parse().unwrap()];
        let script = loss_script("t1", 0.025, &to);
        assert!(
            script.contains("ip daddr { 172.18.0.3 } numgen random mod 1000000 < 25000"),
            "{script}"
        );
    }

    #[test]
    fn counters_give_the_realised_share() {
        let listing = "table inet t {\n chain egress {\n  oifname != \"lo\" counter packets 1000 bytes 9\n  oifname != \"lo\" numgen random mod 1000000 < 100000 counter packets 97 bytes 1 drop\n }\n}\n";
        assert_eq!(loss_counters(listing), "97 of 1000 egress packets dropped (9.70%)");
    }

    #[test]
    fn qdiscs_are_tbf_for_a_rate_and_netem_for_the_rest() {
        let rate = PacketFault { rate_bytes: Some(128 * 1024), ..Default::default() };
        assert_eq!(
            qdisc_args(&rate, "eth0").join(" "),
            "qdisc replace dev eth0 root tbf rate 1048576bit burst 16384 latency 1s"
        );
        let netem = PacketFault {
            delay: Some(Duration::from_millis(100)),
            jitter: Some(Duration::from_millis(10)),
            correlation: Some(0.25),
            loss: Some(0.1),
            ..Default::default()
        };
        assert_eq!(
            qdisc_args(&netem, "eth0").join(" "),
            "qdisc replace dev eth0 root netem delay 100000us 10000us 25.0000% loss 10.0000%"
        );
    }

    #[test]
    fn fill_bytes_reach_the_level_as_df_counts_it() {
        assert_eq!(fill_bytes(0.95, 1000, 100), 850);
        assert_eq!(fill_bytes(0.5, 1000, 900), 0);
    }
}
