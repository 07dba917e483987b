//! Registry credentials the way the Docker client finds them, so `docker login` is all a private
//! registry needs: `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), its
//! `credHelpers` (per registry) and `credsStore` (for all) run as `docker-credential-NAME get`,
//! and its `auths` (`auth`: base64 of `user:password`, or `identitytoken`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use testcontainers::bollard::auth::DockerCredentials;

/// The key Docker Hub's credentials are stored under.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// What a credential helper prints for `get`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// The Docker client's configuration file.
pub(crate) fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The registry an image reference lives in, as the Docker client names it: the first path
/// component when it looks like a host (has a `.` or a `:`, or is `localhost`), else Docker Hub.
pub(crate) fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_owned(),
        _ => DOCKER_HUB.to_owned(),
    }
}

/// `https://host/v1/` → `host`, so `auths` keys written either way match.
fn host_of(key: &str) -> &str {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// Credentials for `registry` from the config file at `config` (none when the file, or an
/// entry for the registry, is missing). `path` is the `PATH` the helpers are looked up in (the
/// process's own when `None`). An unreadable file or a failing helper is an error.
pub(crate) fn lookup(
    config: &Path,
    registry: &str,
    path: Option<&std::ffi::OsStr>,
) -> Result<Option<DockerCredentials>, String> {
    let text = match fs_err::read_to_string(config) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    let file: ConfigFile = serde_json::from_str(&text)
        .map_err(|e| format!("`{}` is not a Docker client configuration: {e}", config.display()))?;
    let host = host_of(registry);
    let helper = file
        .cred_helpers
        .iter()
        .find(|(key, _)| host_of(key) == host)
        .map(|(_, helper)| helper.clone())
        .or(file.creds_store.clone());
    if let Some(helper) = helper {
        if let Some(credentials) = run_helper(&helper, registry, path)? {
            return Ok(Some(credentials));
        }
    }
    let Some(entry) = file.auths.iter().find(|(key, _)| host_of(key) == host).map(|(_, e)| e)
    else {
        return Ok(None);
    };
    let (username, password) = match (&entry.auth, &entry.username, &entry.password) {
        (Some(auth), _, _) if !auth.is_empty() => {
            let decoded = decode_base64(auth)
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    format!("the `auth` of `{registry}` in `{}` is not base64", config.display())
                })?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| format!("the `auth` of `{registry}` is not `user:password`"))?;
            (Some(user.to_owned()), Some(password.to_owned()))
        }
        (_, user, password) => (user.clone(), password.clone()),
    };
    Ok(Some(DockerCredentials {
        username,
        password,
        identitytoken: entry.identitytoken.clone().filter(|t| !t.is_empty()),
        serveraddress: Some(registry.to_owned()),
        ..Default::default()
    }))
}

/// `docker-credential-NAME get` with the registry on stdin; `None` when it has nothing for it.
fn run_helper(
    name: &str,
    registry: &str,
    path: Option<&std::ffi::OsStr>,
) -> Result<Option<DockerCredentials>, String> {
    let program = format!("docker-credential-{name}");
    let mut command = Command::new(&program);
    command.arg("get").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let mut child = command.spawn().map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(registry.as_bytes()).map_err(|e| format!("`{program}`: {e}"))?;
    }
    let output = child.wait_with_output().map_err(|e| format!("`{program}`: {e}"))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        // What helpers print when they hold nothing for a registry (the Docker client's rule).
        if said.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(format!("`{program} get` failed ({}): {said} {stderr}", output.status));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("`{program} get` printed no credentials: {e}"))?;
    // `<token>` as the user name means the secret is an identity token.
    let credentials = if answer.username == "<token>" {
        DockerCredentials { identitytoken: Some(answer.secret), ..Default::default() }
    } else {
        DockerCredentials {
            username: Some(answer.username),
            password: Some(answer.secret),
            ..Default::default()
        }
    };
    Ok(Some(DockerCredentials { serveraddress: Some(registry.to_owned()), ..credentials }))
}

/// Standard base64 (with or without padding); `None` for anything else.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn registries_are_named_like_the_docker_client_names_them() {
        assert_eq!(registry_of("127.0.0.1:5000/team/app:1"), "127.0.0.1:5000");
        assert_eq!(registry_of("registry.example.com/app"), "registry.example.com");
        assert_eq!(registry_of("localhost/app:1"), "localhost");
        assert_eq!(registry_of("team/app:1"), DOCKER_HUB);
        assert_eq!(registry_of("redis"), DOCKER_HUB);
    }

    #[test]
    fn auths_give_user_and_password_from_base64() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        // base64("ci:s3cr:et") — a password may hold a colon.
        fs_err::write(
            &config,
            r#"{"auths":{"https://127.0.0.1:5000/v1/":{"auth":"Y2k6czNjcjpldA=="},
                "other:1":{"identitytoken":"tok"}}}"#,
        )
        .unwrap();
        let found = lookup(&config, "127.0.0.1:5000", None).unwrap().expect("credentials");
        assert_eq!(found.username.as_deref(), Some("ci"));
        assert_eq!(found.password.as_deref(), Some("s3cr:et"));
        assert_eq!(found.serveraddress.as_deref(), Some("127.0.0.1:5000"));
        let token = lookup(&config, "other:1", None).unwrap().expect("credentials");
        assert_eq!(token.identitytoken.as_deref(), Some("tok"));
        assert!(lookup(&config, "elsewhere:2", None).unwrap().is_none());
        assert!(lookup(&dir.path().join("absent.json"), "x", None).unwrap().is_none());
        fs_err::write(&config, r#"{"auths":{"a:1":{"auth":"%%%"}}}"#).unwrap();
        assert!(lookup(&config, "a:1", None).is_err(), "a broken entry is an error, not anonymous");
    }

    #[test]
    fn credential_helpers_are_asked_before_auths() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fdtest");
        // A real helper's protocol: the registry on stdin, JSON on stdout.
        fs_err::write(
            &helper,
            "#!/bin/sh\nread host\n[ \"$1\" = get ] || exit 3\n\
             if [ \"$host\" = 127.0.0.1:5000 ]; then\n\
             printf '{\"ServerURL\":\"%s\",\"Username\":\"helper-user\",\"Secret\":\"helper-secret\"}' \"$host\"\n\
             else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        fs_err::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = dir.path().join("config.json");
        fs_err::write(
            &config,
            r#"{"credHelpers":{"127.0.0.1:5000":"fdtest"},"credsStore":"fdtest",
                "auths":{"127.0.0.1:5000":{"auth":"YTpi"},"other:1":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        let path = std::ffi::OsString::from(format!("{}:/usr/bin:/bin", dir.path().display()));
        let found = lookup(&config, "127.0.0.1:5000", Some(&path)).unwrap().expect("credentials");
        assert_eq!(found.username.as_deref(), Some("helper-user"));
        assert_eq!(found.password.as_deref(), Some("helper-secret"));
        // The store has nothing for `other:1`: the `auths` entry answers.
        let other = lookup(&config, "other:1", Some(&path)).unwrap().expect("credentials");
        assert_eq!((other.username.as_deref(), other.password.as_deref()), (Some("a"), Some("b")));
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("YTpi").unwrap(), b"a:b");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YQ").unwrap(), b"a");
        assert!(decode_base64("a b").is_none());
    }
}
