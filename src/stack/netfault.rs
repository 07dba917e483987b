//! `packet`, `dns` and `disk-fill` faults, carried out from the Docker host inside one
//! container's namespaces — never by changing the user's image.
//!
//! - `packet`: `nsenter --net` runs the host's `nft` and `tc` in the container's network
//!   namespace. `loss` is an nftables table of its own (`inet firedrill_…`, an `output` chain that
//!   drops `numgen random mod 1000000 < N` of the packets leaving by any interface but `lo`,
//!   counted, optionally only towards `to`'s addresses); `rate` replaces the root qdisc of the
//!   run network's interface with `tbf`. Reverting deletes the table and the root qdisc (Docker's
//!   default, `noqueue`, comes back), and reports the counters: how many packets left and how
//!   many were dropped. The queued keys (`delay`, `jitter`, `correlation`, `reorder`, `corrupt`,
//!   `duplicate`) need no netem: an iptables `NFQUEUE` chain hands the packets leaving by the run
//!   network's interface to a thread of the harness that holds, mangles or copies them (see
//!   `nfqueue.rs`); [`check`] refuses them, before anything starts, on a kernel without NFQUEUE.
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
//! `nft`, (for `rate`) `tc` and (for the queued keys) `iptables`/`ip6tables` on `PATH`; [`check`]
//! says which is missing.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::Docker;
use crate::backend::{BackendError, BackendErrorKind};
use crate::faults::Undo;
use crate::scenario::model::{FaultKind, FillAmount, PacketFault};

/// The kernel options the queued keys need, as refusals name them, with their modules' names.
const NFQUEUE: [(&str, &str); 2] = [
    ("CONFIG_NETFILTER_NETLINK_QUEUE", "nfnetlink_queue"),
    ("CONFIG_NETFILTER_XT_TARGET_NFQUEUE", "xt_NFQUEUE"),
];

/// The loss share is drawn per packet as `numgen random mod LOSS_SCALE < N`.
const LOSS_SCALE: u64 = 1_000_000;

fn other(message: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Other, message)
}

/// Whether this kernel can queue packets to userspace with iptables' NFQUEUE target: `Ok` when
/// `/proc/config.gz` has both options `=y`, or `=m` with the module present; `Err(why)`
/// otherwise. Unreadable configuration: `Ok` (the apply will tell).
pub(crate) fn nfqueue_available() -> Result<(), String> {
    let Ok(compressed) = std::fs::read("/proc/config.gz") else { return Ok(()) };
    let mut text = String::new();
    if gunzip(&compressed, &mut text).is_err() {
        return Ok(());
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    for (option, module) in NFQUEUE {
        options_in_config(&text, option, || {
            let dir = format!("/lib/modules/{}/kernel/net/netfilter", release.trim());
            std::fs::read_dir(dir).is_ok_and(|entries| {
                entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with(module))
            })
        })?;
    }
    Ok(())
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

/// Whether a kernel configuration's text has `option` built in, or as a module that is present
/// (pure, for tests).
fn options_in_config(
    config: &str,
    option: &str,
    module_present: impl Fn() -> bool,
) -> Result<(), String> {
    let value = config
        .lines()
        .filter_map(|line| line.trim().strip_prefix(option))
        .find(|rest| rest.starts_with('='));
    match value {
        Some("=y") => Ok(()),
        Some("=m") if module_present() => Ok(()),
        Some("=m") => {
            Err(format!("this kernel builds {option} as a module, and the module is not installed"))
        }
        _ => Err(format!("this kernel lacks {option}")),
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
                if packet.rate_bytes.is_some() {
                    needs.push("tc");
                }
                let queued = packet.queue_keys();
                if !queued.is_empty() {
                    needs.extend([
                        "iptables",
                        "ip6tables",
                        "iptables-restore",
                        "ip6tables-restore",
                    ]);
                    if let Err(why) = nfqueue_available() {
                        return Err(other(format!(
                            "`packet` with `{}` needs NFQUEUE: {why}",
                            queued.join("`, `")
                        ))
                        .with_hint(
                            "`loss` and `rate` work without it (nftables, tbf); delay, jitter, \
                             reorder, corrupt and duplicate need a kernel with \
                             CONFIG_NETFILTER_NETLINK_QUEUE and CONFIG_NETFILTER_XT_TARGET_NFQUEUE",
                        ));
                    }
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
            "install Debian's `util-linux` (nsenter), `nftables` (nft), `iproute2` (ip, tc) and \
             `iptables`",
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
            let device = if packet.rate_bytes.is_some() {
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
            let table = packet.loss.is_some().then(|| format!("firedrill_loss_{short}"));
            let queue = (!packet.queue_keys().is_empty()).then(|| format!("FIREDRILL_Q_{short}"));
            Ok(Undo::Packet { table, device, queue })
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

/// The `tc` arguments of the `tbf` qdisc a `packet` fault's `rate` installs (pure, for tests).
fn qdisc_args(rate: u64, device: &str) -> Vec<String> {
    let mut args: Vec<String> =
        ["qdisc", "replace", "dev", device, "root"].iter().map(|s| (*s).to_owned()).collect();
    // A burst of a tenth of a second's worth, at least a few full frames.
    let burst = (rate / 10).max(16 * 1024);
    args.extend(["tbf", "rate"].map(str::to_owned));
    args.push(format!("{}bit", rate * 8));
    args.extend(["burst".to_owned(), burst.to_string(), "latency".to_owned(), "1s".to_owned()]);
    args
}

/// The `iptables-restore` / `ip6tables-restore` scripts that send the packets leaving by
/// `device` (to `to`'s addresses of the family, when given) to the harness's queue, except the
/// queue's own duplicates (pure, for tests). A family with no address in a non-empty `to` gets
/// no script.
fn queue_scripts(chain: &str, device: &str, to: &[IpAddr]) -> Vec<(&'static str, String)> {
    let mut scripts = Vec::new();
    for (program, v4) in [("iptables-restore", true), ("ip6tables-restore", false)] {
        let addresses: Vec<String> =
            to.iter().filter(|a| a.is_ipv4() == v4).map(|a| format!(" -d {a}")).collect();
        if !to.is_empty() && addresses.is_empty() {
            continue;
        }
        let targets = if addresses.is_empty() { vec![String::new()] } else { addresses };
        let mut script = format!("*mangle\n:{chain} - [0:0]\n");
        for destination in targets {
            script.push_str(&format!(
                "-A {chain} -o {device}{destination} -m mark ! --mark {:#x} -j NFQUEUE --queue-num {} --queue-bypass\n",
                super::nfqueue::MARK,
                super::nfqueue::QUEUE
            ));
        }
        script.push_str(&format!("-I OUTPUT 1 -j {chain}\nCOMMIT\n"));
        scripts.push((program, script));
    }
    scripts
}

/// What the queue does for `packet` (its queued keys).
fn queue_shape(packet: &PacketFault) -> super::nfqueue::Shape {
    super::nfqueue::Shape {
        delay: packet.delay.unwrap_or_default(),
        jitter: packet.jitter.unwrap_or_default(),
        correlation: packet.correlation.unwrap_or_default(),
        reorder: packet.reorder.unwrap_or_default(),
        corrupt: packet.corrupt.unwrap_or_default(),
        duplicate: packet.duplicate.unwrap_or_default(),
    }
}

/// The queued keys as the journal says them (pure, for tests).
fn describe_queue(packet: &PacketFault) -> String {
    let percent = |share: f64| format!("{:.2}%", share * 100.0);
    let mut parts = Vec::new();
    if let Some(delay) = packet.delay {
        let mut held = format!("held {delay:?}");
        if let Some(jitter) = packet.jitter {
            held.push_str(&format!(" ± {jitter:?} (uniform"));
            if let Some(correlation) = packet.correlation {
                held.push_str(&format!(", {} correlated", percent(correlation)));
            }
            held.push(')');
        }
        parts.push(held);
    }
    for (key, value) in [
        ("sent at once (reorder)", packet.reorder),
        ("corrupted", packet.corrupt),
        ("duplicated", packet.duplicate),
    ] {
        if let Some(share) = value {
            parts.push(format!("{} {key}", percent(share)));
        }
    }
    parts.join(", ")
}

/// Delete the queue chain `chain` of both families in the namespace of `pid`; the packets it sent
/// to the queue, or `None` when it was not there.
async fn delete_queue_chain(pid: i64, chain: &str) -> Result<Option<u64>, BackendError> {
    let mut found = None;
    for (list, restore) in [("iptables", "iptables-restore"), ("ip6tables", "ip6tables-restore")] {
        let args = ["-w", "-t", "mangle", "-L", chain, "-v", "-x", "-n"];
        let listing = match in_netns(pid, list, &args, None).await {
            Ok(listing) => listing,
            // iptables-nft says "incompatible", legacy "No chain/target/match by that name".
            Err(error)
                if error.message.contains("No chain")
                    || error.message.contains("incompatible")
                    || error.message.contains("does not exist") =>
            {
                continue;
            }
            Err(error) => return Err(error),
        };
        let script = format!("*mangle\n-D OUTPUT -j {chain}\n-F {chain}\n-X {chain}\nCOMMIT\n");
        in_netns(pid, restore, &["--noflush"], Some(&script)).await?;
        *found.get_or_insert(0) += chain_packets(&listing);
    }
    Ok(found)
}

/// The packets counted by the rules of an `iptables -L CHAIN -v -x -n` listing (pure, for tests).
fn chain_packets(listing: &str) -> u64 {
    listing
        .lines()
        .skip(2)
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
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
        (FaultKind::Packet(packet), Undo::Packet { table, device, queue }) => {
            let mut done = Vec::new();
            let towards = if to.is_empty() {
                String::new()
            } else {
                format!(
                    " towards {}",
                    to.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                )
            };
            if let (Some(table), Some(loss)) = (table, packet.loss) {
                in_netns(pid, "nft", &["-f", "-"], Some(&loss_script(table, loss, to))).await?;
                done.push(format!(
                    "{:.2}% of egress packets dropped{towards} (nftables table {table})",
                    loss * 100.0
                ));
            }
            // Whole or nothing: what went before goes again when a later part fails.
            let undo_loss = || async {
                if let Some(table) = table {
                    let _ = in_netns(pid, "nft", &["delete", "table", "inet", table], None).await;
                }
            };
            if let (Some(device), Some(rate)) = (device, packet.rate_bytes) {
                let args = qdisc_args(rate, device);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                if let Err(error) = in_netns(pid, "tc", &args, None).await {
                    undo_loss().await;
                    return Err(error);
                }
                done.push(format!("`tc {}`", args[..].join(" ")));
            }
            if let Some(chain) = queue {
                if let Err(error) =
                    start_queue(docker, container, network, pid, chain, packet, to).await
                {
                    if let Some(device) = device {
                        let _ = in_netns(pid, "tc", &["qdisc", "del", "dev", device, "root"], None)
                            .await;
                    }
                    undo_loss().await;
                    return Err(error);
                }
                done.push(format!(
                    "egress packets{towards} queued to the harness (NFQUEUE {}, chain {chain}): {}",
                    super::nfqueue::QUEUE,
                    describe_queue(packet)
                ));
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

/// Bind the harness's queue in the namespace of `pid`, then add the chain that feeds it on the
/// run network's interface. Nothing is left when it fails.
async fn start_queue(
    docker: &Docker,
    container: &str,
    network: &str,
    pid: i64,
    chain: &str,
    packet: &PacketFault,
    to: &[IpAddr],
) -> Result<(), BackendError> {
    let address = address_on(docker, container, network)
        .await?
        .ok_or_else(|| other(format!("`{container}` has no address on the run network")))?;
    let device = device_of(pid, &address).await?;
    let (name, shape) = (chain.to_owned(), queue_shape(packet));
    tokio::task::spawn_blocking(move || super::nfqueue::start(pid, &name, shape))
        .await
        .map_err(|e| other(e.to_string()))?
        .map_err(|e| other(format!("failed to open the packet queue in `{container}`: {e}")))?;
    for (program, script) in queue_scripts(chain, &device, to) {
        if let Err(error) = in_netns(pid, program, &["--noflush"], Some(&script)).await {
            let _ = delete_queue_chain(pid, chain).await;
            super::nfqueue::stop(chain);
            return Err(error);
        }
    }
    Ok(())
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
        if let Undo::Packet { queue: Some(chain), .. } = undo {
            super::nfqueue::stop(chain);
        }
        return Ok(
            "the container no longer runs: its namespace and the fault went with it".to_owned()
        );
    };
    match undo {
        Undo::Packet { table, device, queue } => {
            let mut done = Vec::new();
            if let Some(chain) = queue {
                // The chain first, so nothing new is queued; then the held packets go at once.
                let queued = delete_queue_chain(pid, chain).await?;
                let counts = super::nfqueue::stop(chain);
                done.push(match (queued, counts) {
                    (Some(queued), Some(counts)) => format!(
                        "chain {chain} deleted ({queued} packets sent to the queue); {}",
                        counts.describe()
                    ),
                    (Some(queued), None) => {
                        format!("chain {chain} deleted ({queued} packets sent to the queue)")
                    }
                    (None, _) => format!("chain {chain} was not there"),
                });
            }
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
    fn nfqueue_is_judged_from_the_kernel_configuration() {
        let option = "CONFIG_NETFILTER_NETLINK_QUEUE";
        let config = "CONFIG_NETFILTER_NETLINK_QUEUE_CT=y\nCONFIG_NETFILTER_NETLINK_QUEUE=y\n";
        assert!(options_in_config(config, option, || false).is_ok());
        assert!(options_in_config(&format!("{option}=m\n"), option, || true).is_ok());
        let missing =
            options_in_config(&format!("# {option} is not set\n"), option, || true).unwrap_err();
        assert_eq!(missing, "this kernel lacks CONFIG_NETFILTER_NETLINK_QUEUE");
        // A longer option with the same prefix is not the option.
        let other = options_in_config("CONFIG_NETFILTER_NETLINK_QUEUE_CT=y\n", option, || true);
        assert!(other.is_err());
        let module = options_in_config(&format!("{option}=m\n"), option, || false).unwrap_err();
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
    fn a_rate_is_a_tbf_qdisc() {
        assert_eq!(
            qdisc_args(128 * 1024, "eth0").join(" "),
            "qdisc replace dev eth0 root tbf rate 1048576bit burst 16384 latency 1s"
        );
    }

    #[test]
    fn queue_chains_send_the_interface_s_egress_to_the_queue_per_family() {
        let scripts = queue_scripts("FIREDRILL_Q_abc", "eth0", &[]);
        assert_eq!(scripts.len(), 2);
        assert_eq!(scripts[0].0, "iptables-restore");
        assert_eq!(
            scripts[0].1,
            "*mangle\n:FIREDRILL_Q_abc - [0:0]\n-A FIREDRILL_Q_abc -o eth0 -m mark ! --mark 0xfd18 -j NFQUEUE --queue-num 64791 --queue-bypass\n-I OUTPUT 1 -j FIREDRILL_Q_abc\nCOMMIT\n"
        );
        assert_eq!(scripts[1].0, "ip6tables-restore");
        let to: Vec<IpAddr> = vec!["172.18.0.3".parse().unwrap(), "172.18.0.4".parse().unwrap()];
        let scripts = queue_scripts("Q", "eth1", &to);
        assert_eq!(scripts.len(), 1, "no IPv6 address: no IPv6 chain");
        assert!(scripts[0].1.contains("-A Q -o eth1 -d 172.18.0.3 -m mark"), "{}", scripts[0].1);
        assert!(scripts[0].1.contains("-A Q -o eth1 -d 172.18.0.4 -m mark"), "{}", scripts[0].1);
    }

    #[test]
    fn chain_listings_give_the_packets_queued() {
        let listing = "Chain Q (1 references)\n    pkts      bytes target     prot opt in     out     source               destination\n    1200   100800 NFQUEUE    0    --  *      eth0    0.0.0.0/0            172.18.0.3           mark match ! 0xfd18 NFQUEUE num 64791 bypass\n      34     2856 NFQUEUE    0    --  *      eth0    0.0.0.0/0            172.18.0.4\n";
        assert_eq!(chain_packets(listing), 1234);
    }

    #[test]
    fn the_journal_names_the_queued_keys() {
        let packet = PacketFault {
            delay: Some(Duration::from_millis(100)),
            jitter: Some(Duration::from_millis(10)),
            correlation: Some(0.25),
            duplicate: Some(0.2),
            ..Default::default()
        };
        assert_eq!(
            describe_queue(&packet),
            "held 100ms ± 10ms (uniform, 25.00% correlated), 20.00% duplicated"
        );
        let shape = queue_shape(&packet);
        assert_eq!((shape.delay, shape.reorder), (Duration::from_millis(100), 0.0));
    }

    #[test]
    fn fill_bytes_reach_the_level_as_df_counts_it() {
        assert_eq!(fill_bytes(0.95, 1000, 100), 850);
        assert_eq!(fill_bytes(0.5, 1000, 900), 0);
    }
}
