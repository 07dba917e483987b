//! `clock-skew`: a service's clock moved with Debian's `libfaketime`, from the Docker host.
//!
//! A service that a scenario skews is created (at bring-up, and by every later creation: replicas,
//! recreate, blue-green) with the host's `libfaketime.so.1` bind-mounted read-only at
//! [`LIB_IN_CONTAINER`], a host folder of its own mounted read-only at [`DIR_IN_CONTAINER`], and
//! `LD_PRELOAD`, `FAKETIME_TIMESTAMP_FILE` (the folder's `offset` file) and `FAKETIME_NO_CACHE=1`
//! in its environment. The file holds `+0` until the step writes the offset (`+7200`); the
//! revert writes `+0` again. Files are replaced by rename, so a reader never sees half a file.
//! After creation the main process's `/proc/PID/maps` must name libfaketime, or the service is
//! refused by name (a static or musl binary ignores a glibc preload).

use std::path::{Path, PathBuf};

use crate::backend::{BackendError, BackendErrorKind};
use crate::faults::Undo;

/// Where the library appears inside the container.
pub(crate) const LIB_IN_CONTAINER: &str = "/usr/lib/firedrill-faketime/libfaketime.so.1";
/// Where the container's offset folder appears inside it.
pub(crate) const DIR_IN_CONTAINER: &str = "/run/firedrill-faketime";

fn other(message: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Other, message)
}

/// The host's `libfaketime.so.1` (Debian's package `libfaketime`), if installed.
pub(crate) fn host_library() -> Option<PathBuf> {
    let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
    [
        format!("/usr/lib/{triplet}/faketime/libfaketime.so.1"),
        "/usr/lib/faketime/libfaketime.so.1".to_owned(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.is_file())
}

/// Refuse, before anything starts, a clock skew the host cannot carry out.
pub(crate) fn check() -> Result<(), BackendError> {
    if host_library().is_none() {
        return Err(other("`clock-skew` needs libfaketime on the host running firedrill")
            .with_hint("apt-get install libfaketime"));
    }
    Ok(())
}

/// The host folder of a run's offset files.
pub(crate) fn run_dir(run_id: &str) -> PathBuf {
    std::env::temp_dir().join("firedrill-faketime").join(run_id)
}

/// Remove the offset folders of run `run_id` (the sweep, after the run's containers went). A run
/// id read from a label is used as a path component only if it is one (letters, digits, `-`).
pub(crate) fn remove_run_dir(run_id: &str) {
    let plain = !run_id.is_empty() && run_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if plain {
        let _ = std::fs::remove_dir_all(run_dir(run_id));
    }
}

/// Write `text` into `file` by rename (readers see the old or the new content, never a part).
fn write_offset(file: &Path, text: &str) -> std::io::Result<()> {
    let temporary = file.with_extension("new");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, file)
}

/// Environment variables a skewed container's creation adds.
pub(crate) type EnvPairs = Vec<(String, String)>;

/// Prepare the offset folder of container key `key` (`+0`) and return the binds and environment
/// its creation adds; `preload` is the environment's `LD_PRELOAD`, if any.
pub(crate) fn container_setup(
    run_id: &str,
    key: &str,
    preload: Option<&str>,
) -> Result<(Vec<String>, EnvPairs), String> {
    let library = host_library().ok_or("libfaketime is not installed on this host")?;
    let dir = run_dir(run_id).join(key);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    write_offset(&dir.join("offset"), "+0\n").map_err(|e| format!("write offset: {e}"))?;
    let binds = vec![
        format!("{}:{LIB_IN_CONTAINER}:ro", library.display()),
        format!("{}:{DIR_IN_CONTAINER}:ro", dir.display()),
    ];
    let preload = match preload {
        Some(existing) if !existing.is_empty() => format!("{LIB_IN_CONTAINER}:{existing}"),
        _ => LIB_IN_CONTAINER.to_owned(),
    };
    let env = vec![
        ("LD_PRELOAD".to_owned(), preload),
        ("FAKETIME_TIMESTAMP_FILE".to_owned(), format!("{DIR_IN_CONTAINER}/offset")),
        ("FAKETIME_NO_CACHE".to_owned(), "1".to_owned()),
    ];
    Ok((binds, env))
}

/// The glibc dynamic loader's file name on this architecture, and where images keep it (relative
/// to an image's root; merged-`/usr` and classic layouts).
fn glibc_loader() -> (&'static str, [&'static str; 4]) {
    if std::env::consts::ARCH == "aarch64" {
        let name = "ld-linux-aarch64.so.1";
        (name, ["usr/lib", "lib", "usr/lib/aarch64-linux-gnu", "lib/aarch64-linux-gnu"])
    } else {
        let name = "ld-linux-x86-64.so.2";
        (name, ["usr/lib64", "lib64", "usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"])
    }
}

/// Whether one of an image's layer folders holds `dir/name`, following no symlink but the last
/// (a layer's own symlinks may point anywhere on the host).
fn layer_has(layer: &Path, dir: &str, name: &str) -> bool {
    let mut path = layer.to_path_buf();
    for part in dir.split('/') {
        path.push(part);
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            return false;
        }
    }
    std::fs::symlink_metadata(path.join(name)).is_ok()
}

/// Whether any of `layers` (an image's layer folders) has the glibc loader: `None` when there is
/// one, else why the preload cannot apply (pure over the folders, for tests).
fn loader_missing(layers: &[PathBuf]) -> Option<String> {
    let (name, dirs) = glibc_loader();
    let found = layers.iter().any(|layer| dirs.iter().any(|dir| layer_has(layer, dir, name)));
    if found {
        return None;
    }
    let musl = layers.iter().any(|layer| {
        ["lib", "usr/lib"].iter().any(|dir| {
            std::fs::read_dir(layer.join(dir)).is_ok_and(|entries| {
                entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("ld-musl-"))
            })
        })
    });
    let programs = if musl {
        "its programs use musl (it has musl's loader), which ignores a glibc preload"
    } else {
        "its programs are static or use another libc, and ignore LD_PRELOAD"
    };
    Some(format!("its image has no glibc dynamic loader ({name}): {programs}"))
}

/// Refuse, before anything starts, a `clock-skew` of a service whose image has no glibc loader,
/// read from the image's layer folders on this host (the `overlay2` and `fuse-overlayfs` storage
/// drivers; with another driver, or folders this process cannot read, the check after start is
/// the only one).
pub(crate) async fn check_image(
    docker: &super::Docker,
    service: &str,
    image: &str,
) -> Result<(), super::StackError> {
    let refuse =
        |reason: String| super::StackError::ClockSkew { service: service.to_owned(), reason };
    let inspect = docker
        .client()
        .inspect_image(image)
        .await
        .map_err(|e| refuse(format!("cannot inspect image `{image}`: {e}")))?;
    let Some(driver) = inspect.graph_driver else { return Ok(()) };
    if !matches!(driver.name.as_str(), "overlay2" | "fuse-overlayfs") {
        return Ok(());
    }
    let data = driver.data;
    let layers: Vec<PathBuf> = data
        .get("UpperDir")
        .into_iter()
        .chain(data.get("LowerDir"))
        .flat_map(|dirs| dirs.split(':'))
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .collect();
    if layers.is_empty() || !layers.iter().all(|layer| layer.is_dir()) {
        return Ok(());
    }
    match loader_missing(&layers) {
        None => Ok(()),
        Some(why) => Err(refuse(format!("{why} (image `{image}`)"))),
    }
}

/// Whether `/proc/PID/maps` text names libfaketime (pure, for tests).
pub(crate) fn maps_name_faketime(maps: &str) -> bool {
    maps.lines().any(|line| line.contains("libfaketime"))
}

/// Whether process `pid` (on this host) has libfaketime loaded.
pub(crate) fn loaded(pid: i64) -> std::io::Result<bool> {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).map(|maps| maps_name_faketime(&maps))
}

/// The ledger record of a skew of `container`: the host path of its offset file, found from its
/// mounts (a container created without the preload is refused).
pub(crate) async fn capture(docker: &super::Docker, container: &str) -> Result<Undo, BackendError> {
    let inspect = docker
        .client()
        .inspect_container(container, None)
        .await
        .map_err(|e| other(format!("failed to inspect `{container}`: {e}")))?;
    let source = inspect
        .mounts
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.destination.as_deref() == Some(DIR_IN_CONTAINER))
        .and_then(|m| m.source)
        .ok_or_else(|| {
            other(format!(
                "`{container}` was created without libfaketime, so its clock cannot be skewed"
            ))
        })?;
    Ok(Undo::ClockSkew { file: format!("{source}/offset") })
}

/// Write the offset (seconds, signed) into the file; what was done, for the journal.
pub(crate) fn apply(file: &str, offset_secs: i64) -> Result<String, BackendError> {
    let text = format!("{offset_secs:+}\n");
    write_offset(Path::new(file), &text)
        .map_err(|e| other(format!("failed to write the clock offset to {file}: {e}")))?;
    Ok(format!("clock moved {} ({file} holds {})", human(offset_secs), text.trim()))
}

/// Put the clock back: `+0` in the file (a file already gone is a clock already back).
pub(crate) fn revert(file: &str) -> Result<String, BackendError> {
    if !Path::new(file).exists() {
        return Ok(format!("{file} is gone: the clock is not skewed"));
    }
    write_offset(Path::new(file), "+0\n")
        .map_err(|e| other(format!("failed to reset the clock offset in {file}: {e}")))?;
    Ok(format!("clock back ({file} holds +0)"))
}

/// After a dead run (`gc`): remove the offset file and its folder. libfaketime without its file
/// does not skew, so this also puts a still-running container's clock back.
pub(crate) fn recover(file: &str) -> Result<String, BackendError> {
    let path = Path::new(file);
    let dir = path.parent().map(Path::to_path_buf);
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(other(format!("failed to remove {file}: {e}"))),
    }
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir(&dir);
        if let Some(run) = dir.parent()
            && run.parent().and_then(Path::file_name) == Some("firedrill-faketime".as_ref())
        {
            let _ = std::fs::remove_dir(run);
        }
    }
    Ok(format!("{file} removed: the clock is not skewed"))
}

/// "+2h", "-30m", "+1h30m5s".
fn human(secs: i64) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let mut rest = secs.unsigned_abs();
    let mut out = sign.to_string();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_named_and_maps_are_read() {
        assert_eq!(human(7_200), "+2h");
        assert_eq!(human(-1_800), "-30m");
        assert_eq!(human(5_405), "+1h30m5s");
        let maps = "7f00-7f01 r-xp 0 08:01 1 /usr/lib/firedrill-faketime/libfaketime.so.1\n";
        assert!(maps_name_faketime(maps));
        assert!(!maps_name_faketime("7f00-7f01 r-xp 0 08:01 1 /usr/lib/libc.so.6\n"));
    }

    #[test]
    fn an_image_without_the_glibc_loader_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (name, dirs) = glibc_loader();
        let (bare, glibc, musl) =
            (dir.path().join("bare"), dir.path().join("glibc"), dir.path().join("musl"));
        fs_err::create_dir_all(bare.join("bin")).unwrap();
        fs_err::create_dir_all(glibc.join(dirs[2])).unwrap();
        fs_err::write(glibc.join(dirs[2]).join(name), "").unwrap();
        fs_err::create_dir_all(musl.join("lib")).unwrap();
        fs_err::write(musl.join("lib/ld-musl-x86_64.so.1"), "").unwrap();
        assert_eq!(loader_missing(&[bare.clone(), glibc.clone()]), None);
        let missing = loader_missing(std::slice::from_ref(&bare)).unwrap();
        assert!(missing.starts_with("its image has no glibc dynamic loader"), "{missing}");
        assert!(missing.contains("static"), "{missing}");
        assert!(loader_missing(&[musl]).unwrap().contains("musl"));
        // A layer whose `lib64` is a symlink is not followed (it may point at the host's).
        let linked = dir.path().join("linked");
        fs_err::create_dir_all(&linked).unwrap();
        std::os::unix::fs::symlink(glibc.join(dirs[2]), linked.join(dirs[1])).unwrap();
        assert!(loader_missing(&[linked]).is_some());
    }

    #[test]
    fn apply_then_revert_rewrites_the_offset_file() {
        let dir = std::env::temp_dir().join(format!("firedrill-clock-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("offset");
        let file = file.to_str().unwrap();
        apply(file, 7_200).unwrap();
        assert_eq!(std::fs::read_to_string(file).unwrap(), "+7200\n");
        revert(file).unwrap();
        assert_eq!(std::fs::read_to_string(file).unwrap(), "+0\n");
        recover(file).unwrap();
        assert!(!dir.exists());
    }
}
