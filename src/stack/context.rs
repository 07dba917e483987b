//! The build context as a tar archive (what `docker build` sends), honouring `.dockerignore`.
//!
//! Written by hand rather than through a tar crate: ustar headers plus GNU long-name records are
//! all the daemon needs, and the crate stays on testcontainers' dependencies.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// A packed build context and the fingerprint of what it holds.
pub(crate) struct Packed {
    /// The tar archive `docker build` gets.
    pub archive: Vec<u8>,
    /// FNV-1a over every entry's name, type, mode, link target and content — not its mtime, so
    /// a rebuilt but identical file does not change it.
    pub fingerprint: u64,
}

/// Tar the context folder, and fingerprint its content. The Dockerfile and `.dockerignore` are
/// always included, as the Docker CLI does, because the daemon needs them whatever the ignore
/// file says.
pub(crate) fn pack_context(context: &Path, dockerfile: &str) -> std::io::Result<Packed> {
    let ignore = match fs_err::read_to_string(context.join(".dockerignore")) {
        Ok(text) => IgnoreRules::parse(&text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => IgnoreRules::default(),
        Err(error) => return Err(error),
    };
    let always = [normalize(dockerfile), ".dockerignore".to_owned()];
    let mut archive = TarWriter::default();
    add_dir(&mut archive, context, "", &ignore, &always)?;
    let fingerprint = archive.fingerprint.0;
    Ok(Packed { archive: archive.finish(), fingerprint })
}

/// 64-bit FNV-1a: stable across Rust versions and machines (`DefaultHasher` promises neither).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Fold `bytes` in, followed by a separator so that ("ab","c") and ("a","bc") differ.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes.iter().chain(&[0xff]) {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn add_dir(
    archive: &mut TarWriter,
    root: &Path,
    relative: &str,
    ignore: &IgnoreRules,
    always: &[String],
) -> std::io::Result<()> {
    let dir = if relative.is_empty() { root.to_path_buf() } else { root.join(relative) };
    let mut entries = fs_err::read_dir(&dir)?.collect::<Result<Vec<_>, _>>()?;
    // A stable order keeps the archive (and so the builder's cache keys) reproducible.
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if relative.is_empty() { name } else { format!("{relative}/{name}") };
        let excluded = ignore.excludes(&path) && !always.contains(&path);
        // An excluded file is never looked at: a `prepare` may be writing or renaming it (its
        // temporary files belong in `.dockerignore`).
        if excluded && !entry.file_type()?.is_dir() {
            continue;
        }
        let metadata = fs_err::symlink_metadata(entry.path())?;
        if metadata.is_dir() {
            // An excluded folder is still walked when an exception (`!pattern`) may bring back
            // something inside it.
            if excluded && !ignore.has_exceptions() {
                continue;
            }
            if !excluded {
                archive.add(&path, &metadata, EntryKind::Dir, &[])?;
            }
            add_dir(archive, root, &path, ignore, always)?;
        } else if !excluded {
            if metadata.file_type().is_symlink() {
                let target = fs_err::read_link(entry.path())?;
                let target = target.to_string_lossy().into_owned();
                archive.add(&path, &metadata, EntryKind::Symlink(target), &[])?;
            } else if metadata.is_file() {
                let data = fs_err::read(entry.path())?;
                archive.add(&path, &metadata, EntryKind::File, &data)?;
            }
            // Sockets, fifos and devices have no place in a build context.
        }
    }
    Ok(())
}

/// `path/./to/../x` → `path/x`, without leading `/` or `./` (how `.dockerignore` patterns and
/// the `dockerfile` option name files).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// The rules of a `.dockerignore` file: the last matching pattern wins, `!` re-includes, a
/// pattern that matches a folder excludes everything under it.
#[derive(Debug, Default)]
struct IgnoreRules {
    patterns: Vec<(bool, Vec<String>)>,
}

impl IgnoreRules {
    fn parse(text: &str) -> Self {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = normalize(pattern);
            if pattern.is_empty() {
                continue;
            }
            patterns.push((exception, pattern.split('/').map(str::to_owned).collect()));
        }
        IgnoreRules { patterns }
    }

    fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|(exception, _)| *exception)
    }

    fn excludes(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for (exception, pattern) in &self.patterns {
            // The path itself or one of its parent folders matches.
            let matched = (1..=segments.len()).any(|n| match_segments(pattern, &segments[..n]));
            if matched {
                excluded = !exception;
            }
        }
        excluded
    }
}

fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((segment, path_rest)) => {
                match_glob(first.as_bytes(), segment.as_bytes()) && match_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

/// `*`, `?`, `[abc]`, `[a-z]`, `[!a]`, `\x` within one path segment.
fn match_glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| match_glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && match_glob(rest, &text[1..]),
        Some((b'[', rest)) => {
            let Some((&c, text_rest)) = text.split_first() else { return false };
            let Some(close) = rest.iter().skip(1).position(|&b| b == b']').map(|p| p + 1) else {
                // No closing bracket: a literal `[`.
                return c == b'[' && match_glob(rest, text_rest);
            };
            let (class, after) = (&rest[..close], &rest[close + 1..]);
            let (negated, class) = match class.split_first() {
                Some((b'!' | b'^', class)) => (true, class),
                _ => (false, class),
            };
            let mut found = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    found |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    found |= class[i] == c;
                    i += 1;
                }
            }
            found != negated && match_glob(after, text_rest)
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            text.first() == Some(&rest[0]) && match_glob(&rest[1..], &text[1..])
        }
        Some((&p, rest)) => text.first() == Some(&p) && match_glob(rest, &text[1..]),
    }
}

enum EntryKind {
    File,
    Dir,
    Symlink(String),
}

/// A tar archive in memory: ustar headers, GNU `L`/`K` records for names over 100 bytes.
#[derive(Default)]
struct TarWriter {
    out: Vec<u8>,
    fingerprint: Fnv,
}

impl TarWriter {
    fn add(
        &mut self,
        path: &str,
        metadata: &std::fs::Metadata,
        kind: EntryKind,
        data: &[u8],
    ) -> std::io::Result<()> {
        let (typeflag, name, link, size) = match &kind {
            EntryKind::File => (b'0', path.to_owned(), String::new(), data.len()),
            EntryKind::Dir => (b'5', format!("{path}/"), String::new(), 0),
            EntryKind::Symlink(target) => (b'2', path.to_owned(), target.clone(), 0),
        };
        if name.len() > 100 {
            self.long_record(b'L', &name);
        }
        if link.len() > 100 {
            self.long_record(b'K', &link);
        }
        let mode = metadata.permissions().mode() & 0o7777;
        let mtime = u64::try_from(metadata.mtime()).unwrap_or(0);
        for part in [&[typeflag][..], name.as_bytes(), link.as_bytes(), &mode.to_le_bytes(), data] {
            self.fingerprint.write(part);
        }
        self.header(&name, &link, typeflag, mode, size as u64, mtime);
        self.data(data);
        Ok(())
    }

    fn long_record(&mut self, typeflag: u8, text: &str) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        self.header("././@LongLink", "", typeflag, 0o644, bytes.len() as u64, 0);
        self.data(&bytes);
    }

    fn header(&mut self, name: &str, link: &str, typeflag: u8, mode: u32, size: u64, mtime: u64) {
        let mut header = [0u8; 512];
        put(&mut header[0..100], name.as_bytes());
        put_octal(&mut header[100..108], u64::from(mode));
        put_octal(&mut header[108..116], 0);
        put_octal(&mut header[116..124], 0);
        put_octal(&mut header[124..136], size);
        put_octal(&mut header[136..148], mtime);
        header[148..156].fill(b' ');
        header[156] = typeflag;
        put(&mut header[157..257], link.as_bytes());
        // GNU magic, so the `L`/`K` records are understood.
        header[257..265].copy_from_slice(b"ustar  \0");
        let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        put(&mut header[148..156], format!("{checksum:06o}\0 ").as_bytes());
        self.out.extend_from_slice(&header);
    }

    fn data(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
        let padding = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, padding));
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

/// Copy as much as fits (long names have their own record; the header keeps a prefix).
fn put(field: &mut [u8], bytes: &[u8]) {
    let n = bytes.len().min(field.len());
    field[..n].copy_from_slice(&bytes[..n]);
}

fn put_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    put(field, text.as_bytes());
    field[width] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_rules_follow_docker_semantics() {
        let rules =
            IgnoreRules::parse("# comment\ntarget\n*.log\n!keep.log\ndocs/**/*.md\n/tmp?\n");
        assert!(rules.excludes("target"));
        assert!(rules.excludes("target/debug/app"));
        assert!(rules.excludes("build.log"));
        assert!(!rules.excludes("keep.log"));
        assert!(!rules.excludes("sub/build.log"), "`*.log` matches the top level only");
        assert!(rules.excludes("docs/a/b/readme.md"));
        assert!(rules.excludes("docs/readme.md"));
        assert!(rules.excludes("tmp1"));
        assert!(!rules.excludes("src/main.rs"));
        assert!(rules.has_exceptions());
    }

    #[test]
    fn globs_handle_classes_and_escapes() {
        assert!(match_glob(b"[a-c]x", b"bx"));
        assert!(!match_glob(b"[!a-c]x", b"bx"));
        assert!(match_glob(b"a\\*", b"a*"));
        assert!(!match_glob(b"a\\*", b"ab"));
        assert!(match_glob(b"*.rs", b"lib.rs"));
    }

    #[test]
    fn normalizes_paths_like_docker() {
        assert_eq!(normalize("./build/../Dockerfile"), "Dockerfile");
        assert_eq!(normalize("/a//b/"), "a/b");
    }

    #[test]
    fn archive_has_headers_long_names_and_padding() {
        let dir = tempfile::tempdir().expect("tempdir");
        let long = "x".repeat(120);
        fs_err::write(dir.path().join("Dockerfile"), "FROM scratch\n").expect("write");
        fs_err::create_dir(dir.path().join("target")).expect("mkdir");
        fs_err::write(dir.path().join("target/big"), "ignored").expect("write");
        fs_err::write(dir.path().join(&long), "hello").expect("write");
        fs_err::write(dir.path().join(".dockerignore"), "target\nDockerfile\n").expect("write");
        let tar = pack_context(dir.path(), "Dockerfile").expect("tar").archive;
        assert_eq!(tar.len() % 512, 0);
        let text = String::from_utf8_lossy(&tar);
        assert!(text.contains("././@LongLink"));
        assert!(text.contains(&long));
        assert!(text.contains("FROM scratch"), "the Dockerfile is always sent");
        assert!(!text.contains("ignored"));
    }

    #[test]
    fn the_fingerprint_follows_content_and_modes_not_mtimes() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY app /app\n").unwrap();
        fs_err::write(dir.path().join("app"), "v1").unwrap();
        let first = pack_context(dir.path(), "Dockerfile").unwrap().fingerprint;
        // Same content with another mtime (as a rebuild writes it): same fingerprint.
        let earlier = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("app"))
            .unwrap()
            .set_modified(earlier)
            .unwrap();
        assert_eq!(pack_context(dir.path(), "Dockerfile").unwrap().fingerprint, first);
        fs_err::write(dir.path().join("app"), "v2").unwrap();
        let second = pack_context(dir.path(), "Dockerfile").unwrap().fingerprint;
        assert_ne!(second, first);
        let mut perms = fs_err::metadata(dir.path().join("app")).unwrap().permissions();
        perms.set_mode(0o755);
        fs_err::set_permissions(dir.path().join("app"), perms).unwrap();
        assert_ne!(pack_context(dir.path(), "Dockerfile").unwrap().fingerprint, second);
    }
}
