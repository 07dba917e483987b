//! [`StackError`]: what went wrong talking to Docker, and a hint for the user when there is a
//! likely fix.

use testcontainers::bollard::errors::Error as BollardError;

/// Errors from Docker, each saying what we were doing. Messages read after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The engine did not answer.
    #[error("cannot reach the Docker engine at {endpoint}: {reason}")]
    Unreachable {
        /// `DOCKER_HOST` or the default socket.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// An `image:` that is not in the local store, and its pull policy is `never`.
    #[error("image `{image}` is not in the local image store (pull policy `never`)")]
    ImageMissing {
        /// The reference.
        image: String,
    },
    /// A pull from a registry failed (refused, unknown image, unreachable, stalled).
    #[error("cannot pull image `{image}`: {reason}")]
    Pull {
        /// The reference.
        image: String,
        /// The engine's or registry's answer.
        reason: String,
    },
    /// A build's `prepare` command failed.
    #[error("prepare command for image `{image}` failed: {reason}")]
    Prepare {
        /// Tag being built.
        image: String,
        /// Exit status or spawn error, with the command's last output lines.
        reason: String,
    },
    /// `docker build` failed.
    #[error("build of image `{image}` failed: {reason}")]
    Build {
        /// Tag being built.
        image: String,
        /// The builder's error and last output lines.
        reason: String,
    },
    /// A host port could not be published or found.
    #[error("publish port {port} of service `{service}`: {reason}")]
    Port {
        /// Service.
        service: String,
        /// Container port.
        port: u16,
        /// Why.
        reason: String,
    },
    /// A service that a `clock-skew` step names cannot be skewed (no libfaketime on the host,
    /// or its process did not load it).
    #[error("`clock-skew` cannot apply to service `{service}`: {reason}")]
    ClockSkew {
        /// The container key.
        service: String,
        /// Why.
        reason: String,
    },
    /// An unknown service name reached the stack (a bug: validation checks names).
    #[error("service `{0}` is not part of this stack")]
    UnknownService(String),
    /// Any other Docker call failed.
    #[error("{operation} (service `{service}`): {source}")]
    Docker {
        /// What we were doing ("create container", "pause", ...).
        operation: &'static str,
        /// Service, or `-` for run-level objects.
        service: String,
        /// bollard's error.
        #[source]
        source: BollardError,
    },
}

/// How a [`StackError::Build`] reason starts when a `FROM` names an image that is not local.
pub(crate) const MISSING_BASE_PREFIX: &str = "base image `";

impl StackError {
    /// A one-line hint for the user, when there is a likely fix.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            StackError::Unreachable { .. } => {
                "is the Docker engine running? check `docker info` or DOCKER_HOST"
            }
            StackError::ImageMissing { .. } => {
                "build or load it (`firedrill images FILE`, a `build:` section), or let firedrill \
                 pull it: drop `--pull never` / `pull: never`"
            }
            StackError::Pull { reason, .. } => return Some(pull_hint(reason).to_owned()),
            StackError::Prepare { .. } => {
                "run the prepare command by hand in the build context to see all of its output"
            }
            StackError::Build { reason, .. } if reason.starts_with(MISSING_BASE_PREFIX) => {
                "firedrill never pulls: create the base image locally first (`docker build`, \
                 `docker load` or `docker import`), or build it with `firedrill images`"
            }
            StackError::Build { .. } => {
                "reproduce with `DOCKER_BUILDKIT=0 docker build` in the build context"
            }
            StackError::Port { .. } => {
                "the container may have exited; look at its logs (`docker logs`)"
            }
            StackError::ClockSkew { .. } => {
                "skew only dynamically linked glibc programs, with `apt-get install libfaketime` \
                 on the host running firedrill"
            }
            StackError::UnknownService(_) => return None,
            StackError::Docker { source, .. } => return docker_hint(source),
        };
        Some(hint.to_owned())
    }

    /// Whether Docker answered "no such object" (the object is already gone).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StackError::Docker { source, .. } if is_status(source, 404))
    }
}

fn pull_hint(reason: &str) -> &'static str {
    let reason = reason.to_ascii_lowercase();
    if ["unauthorized", "authentication required", "denied", "credentials"]
        .iter()
        .any(|word| reason.contains(word))
    {
        "log in to the registry with `docker login REGISTRY` (firedrill uses the Docker client's \
         credentials: ~/.docker/config.json and its credential helpers)"
    } else if ["not found", "manifest unknown", "does not exist"].iter().any(|w| reason.contains(w))
    {
        "check the image's name and tag in the registry; a local-only image needs `pull: never`"
    } else {
        "is the registry reachable from the Docker engine? Offline, build or load the image and \
         run with `--pull never`"
    }
}

fn docker_hint(source: &BollardError) -> Option<String> {
    let hint = match source {
        BollardError::DockerResponseServerError { message, .. }
            if message.contains("active endpoints") =>
        {
            "Docker still counts an endpoint on this network although its containers are gone (a \
             dockerd bookkeeping leftover seen under heavy load): `docker network inspect NAME` \
             shows it; `docker network disconnect -f NAME ENDPOINT` or restarting dockerd \
             releases it, then `firedrill gc`"
        }
        BollardError::DockerResponseServerError { status_code: 409, .. } => {
            "an object with that name is left over: `firedrill gc` removes what dead runs left"
        }
        BollardError::DockerResponseServerError { status_code: 404, .. } => {
            "the container or network was removed while the run used it"
        }
        BollardError::DockerResponseServerError { message, .. }
            if message.contains("address pool") =>
        {
            "Docker ran out of network address pools: `firedrill gc` removes dead runs' networks"
        }
        BollardError::RequestTimeoutError => {
            "the Docker engine is slow to answer; is it overloaded?"
        }
        _ => return None,
    };
    Some(hint.to_owned())
}

/// Whether bollard's error is Docker answering with this HTTP status.
pub(crate) fn is_status(error: &BollardError, status: u16) -> bool {
    matches!(error, BollardError::DockerResponseServerError { status_code, .. } if *status_code == status)
}

/// A closure wrapping a bollard error with what we were doing, for `map_err`.
pub(crate) fn docker_error(
    operation: &'static str,
    service: &str,
) -> impl FnOnce(BollardError) -> StackError {
    move |source| StackError::Docker { operation, service: service.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(status_code: u16, message: &str) -> BollardError {
        BollardError::DockerResponseServerError { status_code, message: message.to_owned() }
    }

    #[test]
    fn a_network_dockerd_still_holds_gets_its_own_hint_whatever_the_status() {
        for status in [403, 409, 500] {
            let error = server_error(
                status,
                "error while removing network: network firedrill-fd-1 id 3f has active endpoints",
            );
            let hint = docker_hint(&error).expect("a hint");
            assert!(hint.contains("docker network disconnect -f"), "{hint}");
        }
        let hint = docker_hint(&server_error(409, "Conflict. The container name is in use"));
        assert!(hint.is_some_and(|h| h.contains("left over")), "other 409s keep theirs");
    }
}
