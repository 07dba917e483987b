//! Pulling an image from its registry: the Docker client's credentials, progress in layers and
//! bytes (drawn on a terminal only), a stall timeout, and the digest that was pulled.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use testcontainers::bollard;
use testcontainers::bollard::query_parameters::CreateImageOptionsBuilder;

use super::error::docker_error;
use super::{Docker, StackError, credentials};

/// A pull fails when the engine reports nothing for this long (a registry that accepts the
/// connection and then stalls); an unreachable one fails as soon as the engine gives up.
pub const PULL_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What a pull fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// `sha256:…`: the registry's manifest digest (the image id when the engine reports none).
    pub digest: String,
}

/// Progress of a pull, summed over its layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullProgress {
    /// Layers done (downloaded and extracted, or already local).
    pub layers_done: usize,
    /// Layers the image has.
    pub layers: usize,
    /// Bytes downloaded so far.
    pub bytes: u64,
    /// Bytes to download, as far as the engine has told.
    pub bytes_total: u64,
}

#[derive(Default)]
struct Layer {
    done: bool,
    current: u64,
    total: u64,
}

/// `name` → `name:latest` (the engine would otherwise pull every tag); a tag or digest is kept.
pub(crate) fn with_tag(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if reference.contains('@') || last.contains(':') {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    }
}

/// Pull `reference`, honouring the Docker client's credentials for its registry.
pub(crate) async fn pull(
    docker: &Docker,
    reference: &str,
    progress: &mut (dyn FnMut(&PullProgress) + Send),
) -> Result<Pulled, StackError> {
    let pull_error = |reason: String| StackError::Pull { image: reference.to_owned(), reason };
    let registry = credentials::registry_of(reference);
    let credentials = match credentials::config_path() {
        Some(config) => {
            let key = registry.clone();
            tokio::task::spawn_blocking(move || credentials::lookup(&config, &key, None))
                .await
                .map_err(|e| pull_error(format!("reading credentials panicked: {e}")))?
                .map_err(|e| pull_error(format!("credentials for `{registry}`: {e}")))?
        }
        None => None,
    };
    let full = with_tag(reference);
    let options = CreateImageOptionsBuilder::default().from_image(&full).build();
    let mut stream = docker.client().create_image(Some(options), None, credentials);
    let mut layers: BTreeMap<String, Layer> = BTreeMap::new();
    loop {
        let next = tokio::time::timeout(PULL_STALL_TIMEOUT, stream.next()).await.map_err(|_| {
            pull_error(format!(
                "the engine reported no progress for {} s",
                PULL_STALL_TIMEOUT.as_secs()
            ))
        })?;
        let info = match next {
            None => break,
            Some(Ok(info)) => info,
            Some(Err(bollard::errors::Error::DockerStreamError { error })) => {
                return Err(pull_error(error));
            }
            Some(Err(error)) => return Err(pull_error(error.to_string())),
        };
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(pull_error(detail));
        }
        let (Some(id), Some(status)) = (info.id, info.status) else { continue };
        if !is_layer_status(&status) {
            continue;
        }
        let layer = layers.entry(id).or_default();
        match status.as_str() {
            "Pull complete" | "Already exists" => layer.done = true,
            "Download complete" => layer.current = layer.total,
            "Downloading" => {
                if let Some(detail) = info.progress_detail {
                    layer.current = detail.current.unwrap_or(0).max(0) as u64;
                    layer.total = detail.total.unwrap_or(0).max(0) as u64;
                }
            }
            _ => {}
        }
        progress(&PullProgress {
            layers_done: layers.values().filter(|l| l.done).count(),
            layers: layers.len(),
            bytes: layers.values().map(|l| l.current).sum(),
            bytes_total: layers.values().map(|l| l.total).sum(),
        });
    }
    let inspect =
        docker.client().inspect_image(&full).await.map_err(docker_error("inspect image", "-"))?;
    let repository = full.split('@').next().unwrap_or(&full);
    let repository = match repository.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => repository,
    };
    let digest = inspect
        .repo_digests
        .unwrap_or_default()
        .into_iter()
        .find_map(|d| d.strip_prefix(&format!("{repository}@")).map(str::to_owned))
        .or(inspect.id)
        .unwrap_or_default();
    Ok(Pulled { digest })
}

fn is_layer_status(status: &str) -> bool {
    matches!(
        status,
        "Pulling fs layer"
            | "Waiting"
            | "Downloading"
            | "Verifying Checksum"
            | "Download complete"
            | "Extracting"
            | "Pull complete"
            | "Already exists"
    )
}

/// A progress line for a pull on stderr, drawn only when stderr is a terminal.
pub struct PullBar {
    bar: indicatif::ProgressBar,
    image: String,
}

impl PullBar {
    /// A bar for pulling `image` (hidden unless stderr is a terminal).
    pub fn new(image: &str) -> PullBar {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("pulling {image}"));
        PullBar { bar, image: image.to_owned() }
    }

    /// Show `progress`.
    pub fn show(&self, progress: &PullProgress) {
        self.bar.set_message(format!(
            "pulling {}: {}/{} layers, {} / {}",
            self.image,
            progress.layers_done,
            progress.layers,
            indicatif::HumanBytes(progress.bytes),
            indicatif::HumanBytes(progress.bytes_total)
        ));
        self.bar.tick();
    }
}

impl Drop for PullBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_without_tag_pulls_latest_only() {
        assert_eq!(with_tag("redis"), "redis:latest");
        assert_eq!(with_tag("127.0.0.1:5000/team/app"), "127.0.0.1:5000/team/app:latest");
        assert_eq!(with_tag("127.0.0.1:5000/team/app:1"), "127.0.0.1:5000/team/app:1");
        assert_eq!(with_tag("app@sha256:abc"), "app@sha256:abc");
    }
}
