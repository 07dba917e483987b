//! The run's fault ledger: `STATE/ledger/RUNID.jsonl`, one JSON record per line, each line
//! fsync'd before the call returns. A fault is written *before* it is applied and marked reverted
//! after it is undone, so after a SIGKILL the ledger names every fault that may still be in force
//! and what restores it. The first line names the run and its owner process (`PID:STARTTIME`, the
//! same owner label the stack's sweep judges liveness by).

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// What restores a container after a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum Undo {
    /// Thaw a paused container.
    Unpause,
    /// Put the memory limits back (0: there was no limit).
    Memory {
        /// Previous `Memory`, bytes.
        memory: i64,
        /// Previous `MemorySwap`, bytes (-1 unlimited, 0 unset).
        memory_swap: i64,
    },
    /// Put the CFS quota back (0: there was none).
    Cpu {
        /// Previous `CpuQuota`, µs.
        cpu_quota: i64,
        /// Previous `CpuPeriod`, µs.
        cpu_period: i64,
    },
    /// Connect the container to the network again under its aliases.
    Reconnect {
        /// Network id.
        network: String,
        /// Its aliases on that network (the service name).
        aliases: Vec<String>,
    },
    /// Delete what a `packet` fault added in the container's network namespace: its nftables
    /// table (loss), the root qdisc of `device` (rate) and the NFQUEUE chain (the queued keys).
    Packet {
        /// `inet` table name, when loss was applied with nftables.
        table: Option<String>,
        /// The interface whose root qdisc was replaced.
        device: Option<String>,
        /// iptables `mangle` chain (IPv4 and IPv6) sending packets to the harness's queue.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
    },
    /// Delete the `ip` nat table that redirects the container's DNS queries to the harness's
    /// responder (the responder ends with it, or with the harness).
    Dns {
        /// Table name.
        table: String,
    },
    /// Remove the fill file (a path inside the container).
    DiskFill {
        /// Absolute path inside the container.
        file: String,
    },
    /// Give a swarm node its availability back (the ledger's `container` is the node id).
    NodeAvailability {
        /// The availability it had (`active`, `pause`, `drain`).
        availability: String,
    },
    /// Write `+0` into the libfaketime offset file (a host path), or remove it when its
    /// container is gone.
    ClockSkew {
        /// Host path of the offset file the container reads.
        file: String,
    },
    /// Put the container's blkio throttle for `device` back to what it was (`None`: no rule,
    /// written as 0, which deletes it).
    IoLimit {
        /// Host path of the container's blkio cgroup folder.
        cgroup: String,
        /// `MAJOR:MINOR` of the whole disk throttled.
        device: String,
        /// Previous `blkio.throttle.read_bps_device` value for the device.
        read_bps: Option<u64>,
        /// Previous `blkio.throttle.write_bps_device` value.
        write_bps: Option<u64>,
        /// Previous `blkio.throttle.read_iops_device` value.
        read_iops: Option<u64>,
        /// Previous `blkio.throttle.write_iops_device` value.
        write_iops: Option<u64>,
    },
}

impl Undo {
    /// Whether it undoes a host-side fault (`packet`, `dns`, `disk-fill`, `clock-skew`,
    /// `io-limit`).
    pub fn host_side(&self) -> bool {
        matches!(
            self,
            Undo::Packet { .. }
                | Undo::Dns { .. }
                | Undo::DiskFill { .. }
                | Undo::ClockSkew { .. }
                | Undo::IoLimit { .. }
        )
    }

    /// The fault this undoes, as the scenario names it.
    pub fn fault_kind(&self) -> &'static str {
        match self {
            Undo::Unpause => "pause",
            Undo::Memory { .. } => "memory",
            Undo::Cpu { .. } => "cpu",
            Undo::Reconnect { .. } => "partition",
            Undo::Packet { .. } => "packet",
            Undo::Dns { .. } => "dns",
            Undo::DiskFill { .. } => "disk-fill",
            Undo::NodeAvailability { .. } => "node-availability",
            Undo::ClockSkew { .. } => "clock-skew",
            Undo::IoLimit { .. } => "io-limit",
        }
    }
}

/// One line of a ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum LedgerRecord {
    /// First line: whose ledger this is.
    Run {
        /// Run id.
        run_id: String,
        /// `PID:STARTTIME` of the harness process.
        owner: String,
    },
    /// A fault about to be applied.
    Applied {
        /// Id within the run.
        fault: u64,
        /// Service.
        service: String,
        /// Container id.
        container: String,
        /// Container name (for messages).
        name: String,
        /// How to restore it.
        #[serde(flatten)]
        undo: Undo,
    },
    /// A fault undone.
    Reverted {
        /// Id of the `applied` record.
        fault: u64,
    },
}

/// The ledger of the current run. The file is created with the first fault.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    run_id: String,
    owner: String,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    file: Option<fs_err::File>,
    next: u64,
    outstanding: BTreeSet<u64>,
}

impl Ledger {
    /// The ledger of run `run_id` in `dir` (`STATE/ledger`), owned by `owner`.
    pub fn new(dir: &Path, run_id: &str, owner: &str) -> Self {
        Ledger {
            path: dir.join(format!("{run_id}.jsonl")),
            run_id: run_id.to_owned(),
            owner: owner.to_owned(),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record a fault about to be applied; returns its id. Durable when this returns.
    pub fn applied(
        &self,
        service: &str,
        container: &str,
        name: &str,
        undo: Undo,
    ) -> std::io::Result<u64> {
        let mut inner = self.inner.lock().expect("ledger lock poisoned");
        inner.next += 1;
        let fault = inner.next;
        let mut lines = Vec::new();
        if inner.file.is_none() {
            if let Some(parent) = self.path.parent() {
                fs_err::create_dir_all(parent)?;
            }
            inner.file = Some(fs_err::File::create(&self.path)?);
            lines
                .push(LedgerRecord::Run { run_id: self.run_id.clone(), owner: self.owner.clone() });
            // The folder entry too: a file that exists only in a lost directory block is no ledger.
            if let Some(parent) = self.path.parent() {
                fs_err::File::open(parent)?.sync_all()?;
            }
        }
        lines.push(LedgerRecord::Applied {
            fault,
            service: service.to_owned(),
            container: container.to_owned(),
            name: name.to_owned(),
            undo,
        });
        let file = inner.file.as_mut().expect("opened above");
        append(file, &lines)?;
        inner.outstanding.insert(fault);
        Ok(fault)
    }

    /// Record that fault `fault` is undone. Durable when this returns.
    pub fn reverted(&self, fault: u64) -> std::io::Result<()> {
        let mut inner = self.inner.lock().expect("ledger lock poisoned");
        let Some(file) = inner.file.as_mut() else { return Ok(()) };
        append(file, &[LedgerRecord::Reverted { fault }])?;
        inner.outstanding.remove(&fault);
        Ok(())
    }

    /// Faults applied and not (yet) reverted.
    pub fn outstanding(&self) -> usize {
        self.inner.lock().expect("ledger lock poisoned").outstanding.len()
    }

    /// Delete the file: the run is over and its objects are gone or restored.
    pub fn remove(&self) -> std::io::Result<()> {
        let mut inner = self.inner.lock().expect("ledger lock poisoned");
        if inner.file.take().is_some() {
            match fs_err::remove_file(&self.path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        Ok(())
    }
}

fn append(file: &mut fs_err::File, records: &[LedgerRecord]) -> std::io::Result<()> {
    let mut text = String::new();
    for record in records {
        text.push_str(&serde_json::to_string(record).expect("records serialize"));
        text.push('\n');
    }
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// Read a ledger back. A torn last line (a crash mid-write: the fault it announced was never
/// applied) is ignored, and so is any line that does not parse.
pub fn read_ledger(path: &Path) -> std::io::Result<Vec<LedgerRecord>> {
    let file = std::io::BufReader::new(fs_err::File::open(path)?);
    let mut records = Vec::new();
    for line in file.lines() {
        if let Ok(record) = serde_json::from_str(&line?) {
            records.push(record);
        }
    }
    Ok(records)
}

/// Where firedrill keeps state across runs: `$FIREDRILL_STATE_DIR`, else
/// `$XDG_STATE_HOME/firedrill`, else `$HOME/.local/state/firedrill` (empty values count as
/// unset; `None` when none is set). The caller reads the environment.
pub fn state_dir(
    firedrill_state_dir: Option<PathBuf>,
    xdg_state_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    let set = |path: Option<PathBuf>| path.filter(|p| !p.as_os_str().is_empty());
    set(firedrill_state_dir)
        .or_else(|| set(xdg_state_home).map(|p| p.join("firedrill")))
        .or_else(|| set(home).map(|p| p.join(".local/state/firedrill")))
}

/// The ledger folder inside the state folder.
pub fn ledger_dir(state: &Path) -> PathBuf {
    state.join("ledger")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_prefers_firedrill_then_xdg_then_home() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(state_dir(p("/s"), p("/x"), p("/h")), p("/s"));
        assert_eq!(state_dir(None, p("/x"), p("/h")), p("/x/firedrill"));
        assert_eq!(state_dir(p(""), p(""), p("/h")), p("/h/.local/state/firedrill"));
        assert_eq!(state_dir(None, None, None), None);
    }

    #[test]
    fn records_round_trip_and_outstanding_faults_are_tracked() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(&dir.path().join("ledger"), "fd-00000001", "1:2");
        assert!(!ledger.path().exists(), "created with the first fault only");
        let first = ledger.applied("db", "abc", "fd-00000001-db", Undo::Unpause).unwrap();
        let undo = Undo::Reconnect { network: "n1".into(), aliases: vec!["billing".into()] };
        let second = ledger.applied("billing", "def", "fd-00000001-billing", undo.clone()).unwrap();
        ledger.reverted(first).unwrap();
        assert_eq!(ledger.outstanding(), 1);
        let records = read_ledger(ledger.path()).unwrap();
        assert_eq!(
            records,
            [
                LedgerRecord::Run { run_id: "fd-00000001".into(), owner: "1:2".into() },
                LedgerRecord::Applied {
                    fault: first,
                    service: "db".into(),
                    container: "abc".into(),
                    name: "fd-00000001-db".into(),
                    undo: Undo::Unpause,
                },
                LedgerRecord::Applied {
                    fault: second,
                    service: "billing".into(),
                    container: "def".into(),
                    name: "fd-00000001-billing".into(),
                    undo,
                },
                LedgerRecord::Reverted { fault: first },
            ]
        );
        ledger.remove().unwrap();
        assert!(!ledger.path().exists());
    }

    #[test]
    fn a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path(), "fd-00000002", "1:2");
        ledger.applied("db", "abc", "x", Undo::Memory { memory: 0, memory_swap: 0 }).unwrap();
        let mut text = fs_err::read_to_string(ledger.path()).unwrap();
        text.push_str("{\"record\":\"applied\",\"fau");
        fs_err::write(ledger.path(), text).unwrap();
        assert_eq!(read_ledger(ledger.path()).unwrap().len(), 2);
    }
}
