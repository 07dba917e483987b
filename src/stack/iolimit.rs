//! `io-limit`: a container's reads and writes to the disk under a path throttled with the cgroup
//! v1 blkio throttle, from the Docker host — the mechanism behind `docker run --device-read-bps`,
//! applied to a running container by writing its cgroup's files.
//!
//! The path is opened inside the container (`/proc/PID/root`, `openat2(RESOLVE_IN_ROOT)`, as
//! `disk-fill` does); the block device of its file system (`st_dev`, a partition mapped to its
//! whole disk, since the throttle takes disks only) gets `MAJOR:MINOR VALUE` lines in the
//! container's `blkio.throttle.{read,write}_{bps,iops}_device`, in the blkio hierarchy at the
//! path `/proc/PID/cgroup` names. The revert writes back what was there (0 when nothing was,
//! which deletes the rule) and journals the bytes the container moved on the disk.
//!
//! Refused before anything starts where the host has no v1 blkio throttle (cgroup v2 only, no
//! blkio controller, a kernel without `CONFIG_BLK_DEV_THROTTLING`); refused when the step starts
//! for a path whose file system has no block device (tmpfs, the FUSE or overlay writable layer).
//! Limits the README states: v1 throttles direct and synchronous I/O only.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use crate::backend::{BackendError, BackendErrorKind};
use crate::faults::Undo;
use crate::scenario::model::IoLimit;

/// Where the cgroup v1 hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The throttle files, in the order of [`Limits`]'s fields.
const FILES: [&str; 4] = [
    "blkio.throttle.read_bps_device",
    "blkio.throttle.write_bps_device",
    "blkio.throttle.read_iops_device",
    "blkio.throttle.write_iops_device",
];

/// Four optional limits: read B/s, write B/s, read IO/s, write IO/s.
type Limits = [Option<u64>; 4];

fn other(message: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Other, message)
}

/// Refuse, before anything starts, an `io-limit` this host cannot apply.
pub(crate) fn check() -> Result<(), BackendError> {
    blkio_support(Path::new(CGROUP_ROOT)).map_err(|why| {
        other(format!("`io-limit` needs the cgroup v1 blkio throttle: {why}")).with_hint(
            "run firedrill on a Docker host with cgroup v1 and the blkio controller (Docker's \
             `--device-read-bps` works there)",
        )
    })
}

/// Whether the cgroup mount at `root` has the v1 blkio throttle; why not otherwise.
fn blkio_support(root: &Path) -> Result<(), String> {
    if root.join("cgroup.controllers").exists() {
        return Err(format!(
            "{} is a cgroup v2 (unified) hierarchy, and firedrill writes only v1's \
             blkio.throttle files (not v2's io.max)",
            root.display()
        ));
    }
    let blkio = root.join("blkio");
    if !blkio.is_dir() {
        return Err(format!("no blkio controller is mounted at {}", blkio.display()));
    }
    if !blkio.join(FILES[0]).exists() {
        return Err(format!(
            "{} is missing: the kernel lacks CONFIG_BLK_DEV_THROTTLING",
            blkio.join(FILES[0]).display()
        ));
    }
    Ok(())
}

/// What restores `container` after `limit`: its blkio cgroup folder, the disk under the path,
/// and the throttle values that disk has now.
pub(crate) async fn capture(
    docker: &super::Docker,
    container: &str,
    limit: &IoLimit,
) -> Result<Undo, BackendError> {
    let pid = super::netfault::main_pid(docker, container)
        .await?
        .ok_or_else(|| other(format!("`{container}` is not running")))?;
    let path = limit.path.clone();
    let container = container.to_owned();
    tokio::task::spawn_blocking(move || {
        // The step's name carries the service; the message says what to do, as no hint follows
        // a step's error into the journal.
        let disk = disk_under(pid, &path).map_err(|why| {
            other(format!(
                "`io-limit` cannot throttle `{path}`: {why}; name a path on a named volume or a \
                 bind mount (a block device's file system)"
            ))
        })?;
        let cgroup = blkio_cgroup(pid).map_err(|why| {
            other(format!("cannot find the blkio cgroup of `{container}`: {why}"))
        })?;
        let previous = read_limits(Path::new(&cgroup), &disk.device)
            .map_err(|e| other(format!("cannot read the throttle of `{container}`: {e}")))?;
        let [read_bps, write_bps, read_iops, write_iops] = previous;
        Ok(Undo::IoLimit {
            cgroup,
            device: disk.device,
            read_bps,
            write_bps,
            read_iops,
            write_iops,
        })
    })
    .await
    .map_err(|e| other(e.to_string()))?
}

/// The limits of `undo` (`None`: no rule), in [`FILES`] order.
fn previous_of(undo: &Undo) -> Option<(&str, &str, Limits)> {
    match undo {
        Undo::IoLimit { cgroup, device, read_bps, write_bps, read_iops, write_iops } => {
            Some((cgroup, device, [*read_bps, *write_bps, *read_iops, *write_iops]))
        }
        _ => None,
    }
}

/// Write the limits into the container's cgroup, whole or not at all; what was done, for the
/// journal.
pub(crate) fn apply(undo: &Undo, limit: &IoLimit) -> Result<String, BackendError> {
    let (cgroup, device, previous) =
        previous_of(undo).ok_or_else(|| other("fault and undo record disagree"))?;
    let asked: Limits = [limit.read_bps, limit.write_bps, limit.read_iops, limit.write_iops];
    let dir = Path::new(cgroup);
    for (index, value) in asked.iter().enumerate() {
        let Some(value) = value else { continue };
        if let Err(error) = write_rule(dir, FILES[index], device, *value) {
            // Whole or nothing: the rules written before this one go back.
            for done in (0..index).filter(|i| asked[*i].is_some()) {
                let _ = write_rule(dir, FILES[done], device, previous[done].unwrap_or(0));
            }
            return Err(other(format!("failed to write {}/{}: {error}", cgroup, FILES[index])));
        }
    }
    Ok(format!(
        "blkio throttle on {} under `{}`: {} (cgroup v1 throttles direct and synchronous I/O; \
         buffered writes reach the disk later, unthrottled)",
        describe_device(device),
        limit.path,
        describe_limits(&asked)
    ))
}

/// Put the throttle back; what was done (with the bytes the container moved on the disk), for
/// the journal. A cgroup that is gone took the rules with it.
pub(crate) fn revert(undo: &Undo) -> Result<String, BackendError> {
    let (cgroup, device, previous) =
        previous_of(undo).ok_or_else(|| other("not an io-limit record"))?;
    let dir = Path::new(cgroup);
    if !dir.is_dir() {
        return Ok(format!("{cgroup} is gone: its container stopped, and the limits with it"));
    }
    let moved = fs_err::read_to_string(dir.join("blkio.throttle.io_service_bytes"))
        .map(|text| service_bytes(&text, device))
        .unwrap_or_default();
    for (file, value) in FILES.iter().zip(previous) {
        if let Err(error) = write_rule(dir, file, device, value.unwrap_or(0)) {
            if !dir.is_dir() {
                return Ok(format!(
                    "{cgroup} is gone: its container stopped, and the limits with it"
                ));
            }
            return Err(other(format!("failed to write {cgroup}/{file}: {error}")));
        }
    }
    let back = if previous.iter().all(Option::is_none) {
        "no limits".to_owned()
    } else {
        describe_limits(&previous)
    };
    Ok(format!("throttle on {device} back to {back}{moved}"))
}

/// `MAJOR:MINOR VALUE` into one throttle file (0 deletes the rule), in one `write(2)`.
fn write_rule(dir: &Path, file: &str, device: &str, value: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut handle = fs_err::OpenOptions::new().write(true).open(dir.join(file))?;
    handle.write_all(format!("{device} {value}\n").as_bytes())
}

/// The value for `device` in a throttle file's text (pure, for tests).
fn rule_for(text: &str, device: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(device)).then(|| words.next()?.parse().ok()).flatten()
    })
}

fn read_limits(dir: &Path, device: &str) -> std::io::Result<Limits> {
    let mut limits = [None; 4];
    for (slot, file) in limits.iter_mut().zip(FILES) {
        *slot = rule_for(&fs_err::read_to_string(dir.join(file))?, device);
    }
    Ok(limits)
}

/// "; the container read N and wrote M bytes on it" from `blkio.throttle.io_service_bytes`
/// (pure, for tests; empty when the device has no line).
fn service_bytes(text: &str, device: &str) -> String {
    let count = |operation: &str| {
        text.lines().find_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                [dev, op, n] if dev == device && op == operation => n.parse::<u64>().ok(),
                _ => None,
            }
        })
    };
    match (count("Read"), count("Write")) {
        (Some(read), Some(written)) => {
            format!("; the container read {read} and wrote {written} bytes on it since it started")
        }
        _ => String::new(),
    }
}

/// "write 1048576 B/s, read 100 IO/s" (pure, for tests).
fn describe_limits(limits: &Limits) -> String {
    let names = ["read {} B/s", "write {} B/s", "read {} IO/s", "write {} IO/s"];
    names
        .iter()
        .zip(limits)
        .filter_map(|(name, value)| value.map(|v| name.replace("{}", &v.to_string())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "254:0 (vda)", the kernel's name for a disk when it has one.
fn describe_device(device: &str) -> String {
    let uevent =
        fs_err::read_to_string(format!("/sys/dev/block/{device}/uevent")).unwrap_or_default();
    match uevent.lines().find_map(|line| line.strip_prefix("DEVNAME=")) {
        Some(name) => format!("{device} ({name})"),
        None => device.to_owned(),
    }
}

/// The disk a path inside a container sits on.
struct Disk {
    /// `MAJOR:MINOR` of the whole disk.
    device: String,
}

/// The whole disk under `path` in the mount namespace of `pid`; why there is none otherwise.
fn disk_under(pid: i64, path: &str) -> Result<Disk, String> {
    let root = super::netfault::container_root(pid).map_err(|e| format!("open its root: {e}"))?;
    let fd = super::netfault::open_in_root(&root, path, libc::O_PATH, 0)
        .map_err(|e| format!("open `{path}` in the container: {e}"))?;
    let (major, minor) = device_of(&fd).map_err(|e| format!("stat `{path}`: {e}"))?;
    if major == 0 {
        let kind = file_system_type(&fd).map_err(|e| format!("statfs `{path}`: {e}"))?;
        return Err(no_block_device(kind));
    }
    let device = whole_disk(Path::new("/sys/dev/block"), &format!("{major}:{minor}"))?;
    Ok(Disk { device })
}

fn device_of(fd: &OwnedFd) -> std::io::Result<(u32, u32)> {
    // SAFETY: `stat` is plain data; fstat writes it for a valid descriptor (O_PATH is allowed).
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((libc::major(stat.st_dev), libc::minor(stat.st_dev)))
}

fn file_system_type(fd: &OwnedFd) -> std::io::Result<i64> {
    // SAFETY: `statfs` is plain data; fstatfs writes it for a valid descriptor.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_type as i64)
}

/// Why a file system with an anonymous device cannot be throttled (pure, for tests).
fn no_block_device(kind: i64) -> String {
    const TMPFS: i64 = 0x0102_1994;
    const FUSE: i64 = 0x6573_5546;
    const OVERLAY: i64 = 0x794c_7630;
    match kind {
        TMPFS => "it is on a tmpfs (memory): there is no disk to throttle".to_owned(),
        FUSE => "it is on a FUSE file system (the container's writable layer under Docker's \
                 fuse-overlayfs storage driver): the FUSE daemon does its disk I/O outside the \
                 container's cgroup, where the throttle does not apply"
            .to_owned(),
        OVERLAY => "it is on overlayfs (the container's writable layer), which has no block \
                    device of its own"
            .to_owned(),
        other => format!("its file system (type {other:#x}) has no block device"),
    }
}

/// `MAJOR:MINOR` of the disk holding block device `device` (itself, or a partition's parent),
/// from the sysfs folder `sys_block` (`/sys/dev/block`).
fn whole_disk(sys_block: &Path, device: &str) -> Result<String, String> {
    let entry = sys_block.join(device);
    let resolved = fs_err::canonicalize(&entry)
        .map_err(|_| format!("{device} is not a block device this host knows"))?;
    if !resolved.join("partition").exists() {
        return Ok(device.to_owned());
    }
    let parent = resolved.parent().ok_or("a partition without a disk")?;
    let text = fs_err::read_to_string(parent.join("dev")).map_err(|e| e.to_string())?;
    Ok(text.trim().to_owned())
}

/// The host path of `pid`'s blkio cgroup folder (v1: the `blkio` line of `/proc/PID/cgroup`).
fn blkio_cgroup(pid: i64) -> Result<String, String> {
    let text = fs_err::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
    let relative = blkio_line(&text).ok_or("no blkio line in /proc/PID/cgroup")?;
    let dir = format!("{CGROUP_ROOT}/blkio{}", relative.trim_end_matches('/'));
    if !Path::new(&dir).is_dir() {
        return Err(format!("{dir} does not exist"));
    }
    Ok(dir)
}

/// The path of the hierarchy whose controllers include `blkio` (pure, for tests).
fn blkio_line(text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        controllers.split(',').any(|c| c == "blkio").then_some(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v1_blkio_throttle_is_found_or_named_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let missing = blkio_support(root).unwrap_err();
        assert!(missing.starts_with("no blkio controller is mounted at"), "{missing}");
        fs_err::create_dir(root.join("blkio")).unwrap();
        let no_throttle = blkio_support(root).unwrap_err();
        assert!(
            no_throttle.ends_with("the kernel lacks CONFIG_BLK_DEV_THROTTLING"),
            "{no_throttle}"
        );
        fs_err::write(root.join("blkio").join(FILES[0]), "").unwrap();
        assert_eq!(blkio_support(root), Ok(()));
        fs_err::write(root.join("cgroup.controllers"), "io memory\n").unwrap();
        let v2 = blkio_support(root).unwrap_err();
        assert!(v2.contains("cgroup v2 (unified)"), "{v2}");
    }

    #[test]
    fn throttle_files_and_cgroup_lines_are_read() {
        let text = "8:0 1048576\n254:0 2097152\n";
        assert_eq!(rule_for(text, "254:0"), Some(2_097_152));
        assert_eq!(rule_for(text, "254:1"), None);
        assert_eq!(rule_for("", "254:0"), None);
        let cgroup = "9:name=systemd:/docker/abc\n7:blkio:/docker/abc\n2:cpu,cpuacct:/docker/abc\n";
        assert_eq!(blkio_line(cgroup), Some("/docker/abc"));
        assert_eq!(blkio_line("4:cpu,blkio:/x\n"), Some("/x"));
        assert_eq!(blkio_line("0::/system.slice/docker-abc.scope\n"), None);
        let bytes = "254:0 Read 4096\n254:0 Write 8388608\n254:0 Sync 8392704\nTotal 8392704\n";
        assert_eq!(
            service_bytes(bytes, "254:0"),
            "; the container read 4096 and wrote 8388608 bytes on it since it started"
        );
        assert_eq!(service_bytes("Total 0\n", "254:0"), "");
    }

    #[test]
    fn limits_and_refusals_are_described() {
        let limits = [None, Some(1_048_576), Some(100), None];
        assert_eq!(describe_limits(&limits), "write 1048576 B/s, read 100 IO/s");
        assert!(no_block_device(0x0102_1994).contains("tmpfs"));
        assert!(no_block_device(0x6573_5546).contains("outside the container's cgroup"));
        assert_eq!(no_block_device(0x42), "its file system (type 0x42) has no block device");
    }

    #[test]
    fn a_partition_maps_to_its_whole_disk() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path();
        let disk = sys.join("devices/vda");
        fs_err::create_dir_all(disk.join("vda1")).unwrap();
        fs_err::write(disk.join("dev"), "254:0\n").unwrap();
        fs_err::write(disk.join("vda1/partition"), "1\n").unwrap();
        let block = sys.join("block");
        fs_err::create_dir(&block).unwrap();
        std::os::unix::fs::symlink(&disk, block.join("254:0")).unwrap();
        std::os::unix::fs::symlink(disk.join("vda1"), block.join("254:1")).unwrap();
        assert_eq!(whole_disk(&block, "254:1"), Ok("254:0".to_owned()));
        assert_eq!(whole_disk(&block, "254:0"), Ok("254:0".to_owned()));
        assert!(whole_disk(&block, "7:0").unwrap_err().contains("not a block device"));
    }
}
