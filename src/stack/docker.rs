//! [`Docker`]: the connection to the engine, and the entry points for images and the sweep.

use std::time::Duration;

use testcontainers::bollard;

use super::error::{docker_error, is_status};
use super::{ImageStatus, PullProgress, StackError, SweepReport, SweepScope, image, sweep};
use crate::scenario::model::{BuildSpec, ImageSource, PullPolicy};

/// Where bollard connects when `DOCKER_HOST` is unset.
const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// How long the first ping may take before the engine counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to the Docker engine.
#[derive(Debug, Clone)]
pub struct Docker {
    client: bollard::Docker,
    endpoint: String,
}

impl Docker {
    /// Connect (honouring `DOCKER_HOST`) and ping, giving up after 2 s.
    pub async fn connect() -> Result<Docker, StackError> {
        let endpoint = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        Docker::connect_to(&endpoint).await
    }

    /// Connect to an explicit endpoint (`unix:///path`, `tcp://host:port`) and ping, giving up
    /// after 2 s. [`Docker::connect`] is this with `DOCKER_HOST`.
    pub async fn connect_to(endpoint: &str) -> Result<Docker, StackError> {
        let unreachable =
            |reason: String| StackError::Unreachable { endpoint: endpoint.to_owned(), reason };
        let client = client_for(endpoint).map_err(|e| unreachable(e.to_string()))?;
        match tokio::time::timeout(PING_TIMEOUT, client.ping()).await {
            Ok(Ok(_)) => Ok(Docker { client, endpoint: endpoint.to_owned() }),
            Ok(Err(error)) => Err(unreachable(describe_connect_error(&error))),
            Err(_) => {
                Err(unreachable(format!("no answer to a ping within {} s", PING_TIMEOUT.as_secs())))
            }
        }
    }

    /// The endpoint this connection talks to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bollard client, for the rest of the module.
    pub(crate) fn client(&self) -> &bollard::Docker {
        &self.client
    }

    /// Whether an image is in the local store.
    pub async fn image_exists(&self, reference: &str) -> Result<bool, StackError> {
        match self.client.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(error) if is_status(&error, 404) => Ok(false),
            Err(error) => Err(docker_error("inspect image", "-")(error)),
        }
    }

    /// A label of a local image (`None` when the image or the label is missing).
    pub async fn image_label(
        &self,
        reference: &str,
        label: &str,
    ) -> Result<Option<String>, StackError> {
        match self.client.inspect_image(reference).await {
            Ok(inspect) => {
                Ok(inspect.config.and_then(|c| c.labels).and_then(|mut l| l.remove(label)))
            }
            Err(error) if is_status(&error, 404) => Ok(None),
            Err(error) => Err(docker_error("inspect image", "-")(error)),
        }
    }

    /// [`Docker::ensure_image_with`] with pull policy `never`: `image:` must be present (else
    /// `ImageMissing`), a `build:` whose base is missing fails.
    pub async fn ensure_image(
        &self,
        source: &ImageSource,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ImageStatus, StackError> {
        self.ensure_image_with(source, PullPolicy::Never, progress, &mut |_| {}).await
    }

    /// Make sure a service's image exists. `image:` follows `pull`: `never` requires it locally
    /// (else `ImageMissing`), `missing` pulls it when it is not local, `always` pulls it. `build:`
    /// is built when its tag is missing or its context changed (running `prepare` first), its
    /// missing base images pulled unless `pull` is `never`. `progress` gets the builder's output
    /// lines, `pulling` a pull's progress.
    pub async fn ensure_image_with(
        &self,
        source: &ImageSource,
        pull: PullPolicy,
        progress: &mut (dyn FnMut(&str) + Send),
        pulling: &mut (dyn FnMut(&PullProgress) + Send),
    ) -> Result<ImageStatus, StackError> {
        match source {
            ImageSource::Image(reference) => {
                let present = pull != PullPolicy::Always && self.image_exists(reference).await?;
                match (present, pull) {
                    (true, _) => Ok(ImageStatus::Present),
                    (false, PullPolicy::Never) => {
                        Err(StackError::ImageMissing { image: reference.clone() })
                    }
                    (false, _) => {
                        Ok(ImageStatus::Pulled(super::pull::pull(self, reference, pulling).await?))
                    }
                }
            }
            // `prepare` runs every time and the context is fingerprinted: an image built from
            // another version of its context (edited code, another checkout sharing the engine)
            // is rebuilt, never rehearsed by mistake.
            ImageSource::Build(spec) => {
                // Held until the build is done: another process's `prepare` must not rewrite the
                // context between its fingerprint and the build.
                let _lock = image::lock_context(spec, progress).await?;
                let prepared = image::prepare_context(self, spec, pull, progress).await?;
                if self.image_label(&spec.tag, image::FINGERPRINT_LABEL).await?.as_deref()
                    == Some(prepared.fingerprint.as_str())
                {
                    Ok(ImageStatus::Present)
                } else {
                    image::build_prepared(self, spec, prepared, progress).await?;
                    Ok(ImageStatus::Built)
                }
            }
        }
    }

    /// Build unconditionally (for `firedrill images --rebuild`), pulling missing base images
    /// unless `pull` is `never`.
    pub async fn build_image(
        &self,
        spec: &BuildSpec,
        pull: PullPolicy,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), StackError> {
        image::build(self, spec, pull, progress).await
    }

    /// Remove leftovers according to `scope`.
    pub async fn sweep(&self, scope: SweepScope) -> Result<SweepReport, StackError> {
        sweep::sweep(self.client(), &scope, &|_| true).await
    }

    /// [`Docker::sweep`] restricted to runs whose id passes `only` (tests that share an engine
    /// with other test processes sweep only their own runs).
    pub async fn sweep_runs(
        &self,
        scope: SweepScope,
        only: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<SweepReport, StackError> {
        sweep::sweep(self.client(), &scope, only).await
    }
}

fn client_for(endpoint: &str) -> Result<bollard::Docker, bollard::errors::Error> {
    bollard::Docker::connect_with_host(endpoint)
}

/// bollard's connection errors nest the reason (no such file, refused) a few sources deep.
fn describe_connect_error(error: &bollard::errors::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text = format!("{text}: {inner_text}");
        }
        source = inner.source();
    }
    text
}
