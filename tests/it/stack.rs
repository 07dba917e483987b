//! The Docker backend against the real engine: connecting, images (never pulled), containers and
//! their actions, events, shutdown, the `Drop` safety net and the sweep.
//!
//! Every test uses its own run ids and removes only what it created: other tests share the engine.
//! Images come from the local base `firedrill-demo/base:bookworm` (made once by
//! `demo/images/base/ensure-base.sh`); most tests run it directly with a command.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use firedrill::clock::{instant_now, sleep};
use firedrill::scenario::model::{BuildSpec, ImageSource, PullPolicy, Service};
use firedrill::stack::{
    ContainerEvent, Docker, HARNESS_HOST, ImageStatus, RunIdentity, StackError, StackHandle,
    SweepScope, container_name, labels, network_name,
};
use futures_util::StreamExt;
use indexmap::IndexMap;
use testcontainers::bollard;
use testcontainers::bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    RemoveImageOptionsBuilder,
};
use tokio::io::AsyncReadExt;

const BASE: &str = "firedrill-demo/base:bookworm";

/// A TCP server on port 7000 that greets each connection, and exits on SIGTERM.
const GREETER: &str = r#"$SIG{TERM} = sub { exit 0 };
$s = IO::Socket::INET->new(LocalPort => 7000, Listen => 5, ReuseAddr => 1) or die "listen: $!";
print "listening\n"; STDOUT->flush;
while (1) { $c = $s->accept or next; print $c "hello\n"; close $c }"#;

/// Make sure the local base image exists, once per test binary.
fn base_image() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/images/base/ensure-base.sh");
        let output = std::process::Command::new("sh")
            .arg(script)
            .output()
            .expect("failed to run ensure-base.sh");
        assert!(
            output.status.success(),
            "ensure-base.sh failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

async fn docker() -> Docker {
    base_image();
    Docker::connect().await.expect("the Docker engine is reachable")
}

/// A run id unique to this test and process.
fn run_id(test: &str) -> String {
    format!("fdtest-{test}-{}", std::process::id())
}

fn identity(run_id: &str, keep: bool) -> RunIdentity {
    RunIdentity { run_id: run_id.to_owned(), scenario: "stack-tests".to_owned(), keep }
}

fn service(name: &str, command: &[&str], ports: &[u16]) -> Service {
    Service {
        name: name.to_owned(),
        image: ImageSource::Image(BASE.to_owned()),
        env: IndexMap::new(),
        command: Some(command.iter().map(|s| s.to_string()).collect()),
        ports: ports.to_vec(),
        health: None,
        depends_on: Vec::new(),
        startup_timeout: Duration::from_secs(60),
        backup: None,
        restore: None,
        replicas: 1,
        pull: PullPolicy::Never,
        container: Default::default(),
    }
}

fn sleeper(name: &str) -> Service {
    service(name, &["sleep", "infinity"], &[])
}

fn greeter(name: &str) -> Service {
    service(name, &["perl", "-MIO::Socket::INET", "-e", GREETER], &[7000])
}

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

fn raw_client() -> bollard::Docker {
    bollard::Docker::connect_with_defaults().expect("bollard client")
}

/// Names of containers (any state) and networks labelled with this run.
async fn leftovers(run_id: &str) -> Vec<String> {
    let client = raw_client();
    let filters = HashMap::from([("label", vec![format!("{}={run_id}", labels::RUN)])]);
    let containers = client
        .list_containers(Some(
            ListContainersOptionsBuilder::new().all(true).filters(&filters).build(),
        ))
        .await
        .expect("list containers");
    let networks = client
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .expect("list networks");
    let mut names: Vec<String> = containers
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .map(|n| n.trim_start_matches('/').to_owned())
        .collect();
    names.extend(networks.into_iter().filter_map(|n| n.name));
    names
}

/// Wait (bounded) until `check` holds, polling: for states Docker reaches asynchronously.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = instant_now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        sleep(Duration::from_millis(50)).await;
    }
}

/// Connect to 127.0.0.1:port and read the greeting, retrying until the server listens.
async fn greeting(port: u16) -> String {
    let start = instant_now();
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            let mut text = String::new();
            if stream.read_to_string(&mut text).await.is_ok() && !text.is_empty() {
                return text;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no greeting on 127.0.0.1:{port}");
        sleep(Duration::from_millis(50)).await;
    }
}

/// Removes objects a test created behind the stack's back, even when the test fails.
struct RawCleanup {
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Drop for RawCleanup {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = std::process::Command::new("docker").args(["rm", "-f", container]).output();
        }
        for network in &self.networks {
            let _ = std::process::Command::new("docker").args(["network", "rm", network]).output();
        }
    }
}

/// A run's network and one paused container, created by hand with a dead owner.
async fn fake_dead_run(run_id: &str, keep: bool) -> (String, String) {
    let client = raw_client();
    let owner = "999999999:1"; // above any Linux pid_max: that process cannot exist
    let mut object_labels = HashMap::from([
        (labels::RUN.to_owned(), run_id.to_owned()),
        (labels::SCENARIO.to_owned(), "stack-tests".to_owned()),
        (labels::OWNER.to_owned(), owner.to_owned()),
        (labels::KEEP.to_owned(), keep.to_string()),
    ]);
    let network = network_name(run_id);
    client
        .create_network(NetworkCreateRequest {
            name: network.clone(),
            labels: Some(object_labels.clone()),
            ..Default::default()
        })
        .await
        .expect("create fake network");
    object_labels.insert(labels::SERVICE.to_owned(), "app".to_owned());
    let container = container_name(run_id, "app");
    client
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&container).build()),
            ContainerCreateBody {
                image: Some(BASE.to_owned()),
                cmd: Some(argv(&["sleep", "infinity"])),
                labels: Some(object_labels),
                host_config: Some(HostConfig {
                    network_mode: Some(network.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("create fake container");
    client.start_container(&container, None).await.expect("start fake container");
    client.pause_container(&container).await.expect("pause fake container");
    (container, network)
}

/// With `FIREDRILL_STACK_CHILD` set (by the test below, in a child process), connect through
/// `DOCKER_HOST`; otherwise nothing to do.
#[tokio::test(flavor = "multi_thread")]
async fn connect_child_with_docker_host() {
    if std::env::var_os("FIREDRILL_STACK_CHILD").is_none() {
        return;
    }
    let start = instant_now();
    let error = Docker::connect().await.expect_err("nothing listens there");
    let elapsed = start.elapsed();
    match &error {
        StackError::Unreachable { endpoint, .. } => {
            assert_eq!(endpoint, "unix:///nonexistent.sock")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
    println!("CHILD-OK {elapsed:?} {error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_fails_fast_with_a_bad_docker_host() {
    // In-process, without touching the environment other tests read.
    let start = instant_now();
    let error = Docker::connect_to("unix:///nonexistent.sock").await.expect_err("no engine there");
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
    assert!(matches!(error, StackError::Unreachable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("unix:///nonexistent.sock"), "{message}");
    assert!(error.hint().expect("a hint").contains("docker info"));

    // Through `DOCKER_HOST`, in a child process so no other test sees the variable.
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "stack::connect_child_with_docker_host", "--nocapture"])
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .env("FIREDRILL_STACK_CHILD", "1")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("CHILD-OK"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_images_fail_clearly_without_pulling() {
    let docker = docker().await;
    let missing = "firedrill-test/no-such-image:1";
    let mut lines = Vec::new();
    let error = docker
        .ensure_image(&ImageSource::Image(missing.to_owned()), &mut |l: &str| {
            lines.push(l.to_owned())
        })
        .await
        .expect_err("absent");
    assert!(matches!(&error, StackError::ImageMissing { image } if image == missing), "{error:?}");
    assert!(error.hint().expect("hint").contains("firedrill images"));

    // Creating a container does not pull either.
    let id = run_id("missing");
    let stack = StackHandle::create(&docker, identity(&id, false)).await.expect("network");
    let mut absent = sleeper("app");
    absent.image = ImageSource::Image(missing.to_owned());
    let error = stack.start_service(&absent, &no_env()).await.expect_err("absent");
    assert!(matches!(error, StackError::ImageMissing { .. }), "{error:?}");
    stack.shutdown(false).await.expect("shutdown");

    // A build whose base is missing fails before the daemon's builder (which would pull) runs.
    let context = tempfile::tempdir().expect("tempdir");
    fs_err::write(context.path().join("Dockerfile"), "FROM firedrill-test/no-such-base:1\n")
        .unwrap();
    let spec = BuildSpec {
        context: context.path().to_path_buf(),
        dockerfile: "Dockerfile".to_owned(),
        tag: "firedrill-test/never-built:1".to_owned(),
        args: IndexMap::new(),
        prepare: None,
        target: None,
    };
    let start = instant_now();
    let error = docker
        .ensure_image(&ImageSource::Build(spec), &mut |l: &str| lines.push(l.to_owned()))
        .await
        .expect_err("missing base");
    let message = error.to_string();
    assert!(message.contains("`firedrill-test/no-such-base:1`"), "{message}");
    assert!(message.contains("never pulls"), "{message}");
    assert!(error.hint().expect("hint").contains("never pulls"));
    assert!(lines.is_empty(), "the builder never ran: {lines:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(!docker.image_exists("firedrill-test/never-built:1").await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_run_prepare_and_honour_dockerfile_args_and_dockerignore() {
    let docker = docker().await;
    let tag = format!("firedrill-test/stack-build:{}", std::process::id());
    let context = tempfile::tempdir().expect("tempdir");
    let dir = context.path();
    fs_err::create_dir(dir.join("docker")).unwrap();
    fs_err::write(
        dir.join("docker/App.dockerfile"),
        format!(
            "ARG BASE={BASE}\nFROM $BASE\nARG GREETING=unset\nCOPY . /ctx\n\
             RUN echo \"$GREETING\" > /greeting\nCMD [\"sleep\", \"infinity\"]\n"
        ),
    )
    .unwrap();
    fs_err::write(dir.join(".dockerignore"), "secret.txt\n").unwrap();
    fs_err::write(dir.join("secret.txt"), "do not send").unwrap();
    let spec = BuildSpec {
        context: dir.to_path_buf(),
        dockerfile: "docker/App.dockerfile".to_owned(),
        tag: tag.clone(),
        args: IndexMap::from([("GREETING".to_owned(), "hello-arg".to_owned())]),
        prepare: Some(argv(&[
            "sh",
            "-c",
            "echo prepared > generated.txt && echo prepare says hi && echo to-stderr >&2",
        ])),
        target: None,
    };

    let mut lines: Vec<String> = Vec::new();
    let start = instant_now();
    let status = docker
        .ensure_image(&ImageSource::Build(spec.clone()), &mut |l: &str| lines.push(l.to_owned()))
        .await
        .expect("build");
    let build_time = start.elapsed();
    assert_eq!(status, ImageStatus::Built);
    let all = lines.join("\n");
    assert!(all.contains("prepare says hi") && all.contains("to-stderr"), "{all}");
    assert!(all.contains("Step 1/"), "builder output is streamed: {all}");

    // Present now: prepare runs (its output is part of the context) but the context is the
    // same, so the builder does not.
    lines.clear();
    let status = docker
        .ensure_image(&ImageSource::Build(spec.clone()), &mut |l: &str| lines.push(l.to_owned()))
        .await
        .expect("present");
    assert_eq!(status, ImageStatus::Present);
    assert!(!lines.iter().any(|l| l.starts_with("Step ")), "{lines:?}");

    // A changed context (an edited file) is rebuilt, not rehearsed stale.
    fs_err::write(dir.join("edited.txt"), "edited").unwrap();
    lines.clear();
    let status = docker
        .ensure_image(&ImageSource::Build(spec.clone()), &mut |l: &str| lines.push(l.to_owned()))
        .await
        .expect("rebuilt");
    assert_eq!(status, ImageStatus::Built, "{lines:?}");
    // An ignored file is not part of the context.
    fs_err::write(dir.join("secret.txt"), "changed but ignored").unwrap();
    let status = docker
        .ensure_image(&ImageSource::Build(spec.clone()), &mut |_: &str| {})
        .await
        .expect("present again");
    assert_eq!(status, ImageStatus::Present);

    let id = run_id("build");
    let stack = StackHandle::create(&docker, identity(&id, false)).await.expect("network");
    let mut app = sleeper("app");
    app.image = ImageSource::Build(spec.clone());
    app.command = None;
    stack.start_service(&app, &no_env()).await.expect("start");
    let outcome = stack
        .exec(
            "app",
            &argv(&["sh", "-c", "cat /ctx/generated.txt /greeting; test ! -e /ctx/secret.txt"]),
            Duration::from_secs(10),
        )
        .await
        .expect("exec");
    assert_eq!(outcome.exit_code, Some(0), "{outcome:?}");
    assert_eq!(outcome.output, "prepared\nhello-arg\n");
    stack.shutdown(false).await.expect("shutdown");
    println!("build with prepare: {build_time:?}");

    // A failing prepare: the error carries its exit status and last lines.
    let mut failing = spec.clone();
    failing.tag = format!("{tag}-prepare-fails");
    failing.prepare = Some(argv(&["sh", "-c", "echo line1; echo boom >&2; exit 3"]));
    let error = docker
        .build_image(&failing, PullPolicy::Never, &mut |_: &str| {})
        .await
        .expect_err("prepare fails");
    let message = error.to_string();
    assert!(matches!(error, StackError::Prepare { .. }), "{error:?}");
    assert!(message.contains("exit status: 3") && message.contains("boom"), "{message}");

    // A failing build step: the builder's error and last lines.
    let broken = tempfile::tempdir().expect("tempdir");
    fs_err::write(
        broken.path().join("Dockerfile"),
        format!("FROM {BASE}\nRUN echo about-to-fail && false\n"),
    )
    .unwrap();
    let broken_spec = BuildSpec {
        context: broken.path().to_path_buf(),
        dockerfile: "Dockerfile".to_owned(),
        tag: format!("{tag}-broken"),
        args: IndexMap::new(),
        prepare: None,
        target: None,
    };
    let error = docker
        .build_image(&broken_spec, PullPolicy::Never, &mut |_: &str| {})
        .await
        .expect_err("RUN false");
    let message = error.to_string();
    assert!(matches!(error, StackError::Build { .. }), "{error:?}");
    assert!(message.contains("non-zero code") && message.contains("about-to-fail"), "{message}");

    let _ = raw_client()
        .remove_image(&tag, Some(RemoveImageOptionsBuilder::new().force(true).build()), None)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn services_are_labelled_published_on_loopback_and_reach_each_other() {
    let docker = docker().await;
    let id = run_id("labels");
    let stack = StackHandle::create(&docker, identity(&id, false)).await.expect("network");
    assert_eq!(stack.network(), network_name(&id));
    let gateway = stack.gateway().expect("the run network has a gateway");

    let mut env = BTreeMap::new();
    env.insert("GREETING".to_owned(), "hi there".to_owned());
    let start = instant_now();
    let container = stack.start_service(&greeter("server"), &env).await.expect("start server");
    let start_time = start.elapsed();
    stack.start_service(&sleeper("client"), &no_env()).await.expect("start client");

    let inspect = raw_client().inspect_container(&container, None).await.expect("inspect");
    assert_eq!(
        inspect.name.as_deref(),
        Some(format!("/{}", container_name(&id, "server")).as_str())
    );
    let config = inspect.config.expect("config");
    let container_labels = config.labels.expect("labels");
    assert_eq!(container_labels[labels::RUN], id);
    assert_eq!(container_labels[labels::SCENARIO], "stack-tests");
    assert_eq!(container_labels[labels::SERVICE], "server");
    assert_eq!(container_labels[labels::KEEP], "false");
    let owner = &container_labels[labels::OWNER];
    assert!(owner.starts_with(&format!("{}:", std::process::id())), "{owner}");
    assert!(config.env.expect("env").contains(&"GREETING=hi there".to_owned()));

    let host_config = inspect.host_config.expect("host config");
    assert_eq!(host_config.publish_all_ports, Some(false));
    let bindings = host_config.port_bindings.expect("bindings")["7000/tcp"].clone().expect("7000");
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(host_config.extra_hosts, Some(vec![format!("host.docker.internal:{gateway}")]));
    let settings = inspect.network_settings.expect("network settings");
    let published = settings.ports.expect("ports")["7000/tcp"].clone().expect("published");
    assert!(published.iter().all(|b| b.host_ip.as_deref() == Some("127.0.0.1")), "{published:?}");
    let endpoint = &settings.networks.expect("networks")[stack.network()];
    assert!(endpoint.aliases.as_ref().expect("aliases").contains(&"server".to_owned()));

    let network = raw_client().inspect_network(stack.network(), None).await.expect("network");
    assert_eq!(network.labels.expect("labels")[labels::RUN], id);

    let port = stack.host_port("server", 7000).await.expect("host port");
    assert_eq!(greeting(port).await, "hello\n");

    // By alias on the run network, and the harness's name resolves to the gateway.
    let outcome = stack
        .exec(
            "client",
            &argv(&["getent", "hosts", "server", "host.docker.internal"]),
            Duration::from_secs(5),
        )
        .await
        .expect("exec");
    assert_eq!(outcome.exit_code, Some(0), "{outcome:?}");
    assert!(outcome.output.contains(&gateway.to_string()), "{outcome:?}");

    // Container → harness: a listener on the run network's gateway is reachable by that name.
    let listener = tokio::net::TcpListener::bind((gateway, 0)).await.expect("bind the gateway");
    let harness_port = listener.local_addr().expect("addr").port();
    let script = format!("echo ping-from-container > /dev/tcp/{HARNESS_HOST}/{harness_port}");
    let accepted = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut text = String::new();
        socket.read_to_string(&mut text).await.expect("read");
        text
    });
    let outcome = stack
        .exec("client", &argv(&["bash", "-c", &script]), Duration::from_secs(5))
        .await
        .expect("exec");
    assert_eq!(outcome.exit_code, Some(0), "{outcome:?}");
    let text = tokio::time::timeout(Duration::from_secs(5), accepted)
        .await
        .expect("the container connected")
        .expect("accept task");
    assert_eq!(text, "ping-from-container\n");

    let error = stack.host_port("client", 7000).await.expect_err("not published");
    assert!(matches!(error, StackError::Port { .. }), "{error:?}");
    assert!(matches!(stack.state("nope").await, Err(StackError::UnknownService(_))));

    stack.shutdown(true).await.expect("shutdown");
    println!("start_service (create + start): {start_time:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_signals_give_their_exit_codes_and_events_report_them() {
    let docker = docker().await;
    let id = run_id("kill");
    let stack = StackHandle::create(&docker, identity(&id, false)).await.expect("network");
    let trapping = ["bash", "-c", "trap 'exit 42' TERM; echo ready; sleep infinity & wait"];
    stack.start_service(&service("term", &trapping, &[]), &no_env()).await.expect("start");
    stack.start_service(&service("kill", &trapping, &[]), &no_env()).await.expect("start");
    for name in ["term", "kill"] {
        eventually("the trap is set", Duration::from_secs(10), || async {
            stack.logs_contain(name, "ready").await.expect("logs")
        })
        .await;
    }
    assert!(!stack.logs_contain("term", "never printed").await.expect("logs"));

    let mut events = stack.events();
    // Exec noise stays out of the event stream.
    stack.exec("term", &argv(&["true"]), Duration::from_secs(5)).await.expect("exec");
    stack.kill("term", "SIGTERM").await.expect("kill TERM");
    stack.kill("kill", "SIGKILL").await.expect("kill KILL");

    let mut exits: HashMap<String, i64> = HashMap::new();
    let mut seen: Vec<ContainerEvent> = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        while exits.len() < 2 {
            let event = events.next().await.expect("stream open").expect("event");
            assert!(!event.action.starts_with("exec_"), "{event:?}");
            if event.action == "die" {
                exits.insert(event.service.clone(), event.exit_code.expect("die has an exit code"));
            }
            seen.push(event);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no die events; saw {seen:?}"));
    assert_eq!(exits["term"], 42, "the TERM trap ran");
    assert_eq!(exits["kill"], 137, "128 + SIGKILL");
    assert!(seen.iter().any(|e| e.action == "kill" && e.service == "term"), "{seen:?}");

    let state = stack.state("kill").await.expect("state");
    assert!(!state.running && !state.paused && !state.oom_killed);
    assert_eq!(state.exit_code, Some(137));
    drop(events);
    stack.shutdown(false).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_and_unpause_show_in_state() {
    let docker = docker().await;
    let id = run_id("pause");
    let stack = StackHandle::create(&docker, identity(&id, false)).await.expect("network");
    stack.start_service(&sleeper("app"), &no_env()).await.expect("start");

    stack.pause("app").await.expect("pause");
    let state = stack.state("app").await.expect("state");
    assert!(state.running && state.paused, "{state:?}");
    // Docker refuses to exec in a paused container.
    let error =
        stack.exec("app", &argv(&["true"]), Duration::from_secs(5)).await.expect_err("paused");
    assert!(error.to_string().contains("paused"), "{error}");

    stack.unpause("app").await.expect("unpause");
    let state = stack.state("app").await.expect("state");
    assert!(state.running && !state.paused, "{state:?}");
    // Shutdown copes with a paused container too.
    stack.pause("app").await.expect("pause again");
    stack.shutdown(true).await.expect("shutdown");
    assert!(leftovers(&id).await.is_empty());
}

/// A pause never freezes a container while an exec into it runs: on this engine (Docker 20.10,
/// cgroup v1) a freeze that lands while an exec is starting wedges the container in the daemon
/// (unpause, inspect and removal hang). The pause waits for the exec; an exec after the pause is
/// refused by Docker at once. Without the gate the pause returns at once and freezes the exec.
#[tokio::test(flavor = "multi_thread")]
async fn a_pause_waits_for_a_running_exec_and_never_freezes_one() {
    let docker = docker().await;
    let id = run_id("pausegate");
    let stack = std::sync::Arc::new(
        StackHandle::create(&docker, identity(&id, false)).await.expect("network"),
    );
    stack.start_service(&sleeper("app"), &no_env()).await.expect("start");

    let exec_stack = std::sync::Arc::clone(&stack);
    let exec = tokio::spawn(async move {
        exec_stack.exec("app", &argv(&["sleep", "2"]), Duration::from_secs(20)).await.expect("exec")
    });
    // Readiness is data: the exec's process is running inside the container.
    eventually("the exec's sleep runs", Duration::from_secs(10), || {
        let stack = std::sync::Arc::clone(&stack);
        async move {
            stack
                .exec(
                    "app",
                    // PID 1 is `sleep infinity`; the exec's `sleep 2` makes two.
                    &argv(&["sh", "-c", "[ \"$(cat /proc/[0-9]*/comm | grep -cx sleep)\" -ge 2 ]"]),
                    Duration::from_secs(5),
                )
                .await
                .is_ok_and(|outcome| outcome.exit_code == Some(0))
        }
    })
    .await;
    stack.pause("app").await.expect("pause");
    // Still paused: had the pause frozen the exec's `sleep`, it would never end and the exec
    // would time out (exit code None) after 20 s.
    let outcome = exec.await.expect("exec task");
    assert_eq!(
        outcome.exit_code,
        Some(0),
        "the exec ran to its end before the freeze: {outcome:?}"
    );
    let state = stack.state("app").await.expect("state");
    assert!(state.paused, "{state:?}");

    stack.unpause("app").await.expect("unpause");
    let stack = std::sync::Arc::into_inner(stack).expect("one owner left");
    stack.shutdown(false).await.expect("shutdown");
    assert!(leftovers(&id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_reports_exit_codes_output_and_timeouts() {
    let docker = docker().await;
    let id = run_id("exec");
    let stack = StackHandle::create(&docker, identity(&id, false)).await.expect("network");
    stack.start_service(&sleeper("app"), &no_env()).await.expect("start");
    let timeout = Duration::from_secs(10);

    let outcome = stack.exec("app", &argv(&["true"]), timeout).await.expect("exec");
    assert_eq!(outcome.exit_code, Some(0));
    let outcome = stack
        .exec("app", &argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]), timeout)
        .await
        .expect("exec");
    assert_eq!(outcome.exit_code, Some(3));
    assert!(outcome.output.contains("out") && outcome.output.contains("err"), "{outcome:?}");
    let outcome = stack.exec("app", &argv(&["no-such-program"]), timeout).await.expect("exec");
    assert!(outcome.exit_code.is_some_and(|code| code != 0), "{outcome:?}");

    // Only the last 4 KiB are kept.
    let outcome = stack
        .exec(
            "app",
            &argv(&["sh", "-c", "head -c 20000 /dev/zero | tr '\\0' x; echo END"]),
            timeout,
        )
        .await
        .expect("exec");
    assert!(
        outcome.output.len() <= 4096 && outcome.output.ends_with("END\n"),
        "{}",
        outcome.output.len()
    );

    let start = instant_now();
    let outcome =
        stack.exec("app", &argv(&["sleep", "5"]), Duration::from_millis(300)).await.expect("exec");
    assert_eq!(outcome.exit_code, None, "timed out");
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    stack.shutdown(false).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn host_ports_are_looked_up_again_after_restarts() {
    let docker = docker().await;
    let id = run_id("restart");
    let stack = StackHandle::create(&docker, identity(&id, false)).await.expect("network");
    stack.start_service(&greeter("server"), &no_env()).await.expect("start");
    let first = stack.host_port("server", 7000).await.expect("port");
    assert_eq!(greeting(first).await, "hello\n");

    let start = instant_now();
    stack.restart("server").await.expect("restart");
    let restart_time = start.elapsed();
    let second = stack.host_port("server", 7000).await.expect("port after restart");
    assert_eq!(greeting(second).await, "hello\n");

    stack.stop("server", Duration::from_secs(5)).await.expect("stop");
    let state = stack.state("server").await.expect("state");
    assert!(!state.running);
    assert_eq!(state.exit_code, Some(0), "the TERM handler exits 0");
    let error = stack.host_port("server", 7000).await.expect_err("stopped");
    assert!(matches!(error, StackError::Port { .. }), "{error:?}");
    // Stopping a stopped container is not an error.
    stack.stop("server", Duration::from_secs(1)).await.expect("stop again");
    stack.start("server").await.expect("start");
    let third = stack.host_port("server", 7000).await.expect("port after start");
    assert_eq!(greeting(third).await, "hello\n");

    let logs = stack.logs_tail("server", 2).await.expect("logs");
    assert_eq!(logs, "listening\nlistening\n", "the last two of three starts");
    stack.shutdown(true).await.expect("shutdown");
    println!("host ports: {first} → restart ({restart_time:?}) → {second} → stop/start → {third}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_removes_everything_and_keep_leaves_it_up() {
    let docker = docker().await;
    for graceful in [true, false] {
        let id = run_id(if graceful { "shutdown-graceful" } else { "shutdown-force" });
        let stack = StackHandle::create(&docker, identity(&id, false)).await.expect("network");
        stack.start_service(&greeter("server"), &no_env()).await.expect("start");
        stack.start_service(&sleeper("worker"), &no_env()).await.expect("start");
        stack.pause("worker").await.expect("pause");
        assert_eq!(leftovers(&id).await.len(), 3);
        let start = instant_now();
        stack.shutdown(graceful).await.expect("shutdown");
        let elapsed = start.elapsed();
        assert!(leftovers(&id).await.is_empty(), "{:?}", leftovers(&id).await);
        println!("shutdown(graceful: {graceful}) of 2 containers + network: {elapsed:?}");
    }

    // Kept: shutdown leaves it up, the dead-owner sweep would too; a run sweep removes it.
    let id = run_id("keep");
    let stack = StackHandle::create(&docker, identity(&id, true)).await.expect("network");
    stack.start_service(&sleeper("app"), &no_env()).await.expect("start");
    stack.shutdown(true).await.expect("kept");
    assert_eq!(leftovers(&id).await.len(), 2);
    let mine = |run: &str| run == id;
    let report = docker.sweep_runs(SweepScope::Run(id.clone()), &mine).await.expect("sweep");
    assert_eq!(report.containers, [container_name(&id, "app")]);
    assert_eq!(report.networks, [network_name(&id)]);
    assert!(leftovers(&id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_stack_removes_it_while_panicking_and_during_runtime_shutdown() {
    let docker = docker().await;

    // A panic in a task, with the stack alive.
    let id = run_id("drop-panic");
    let (docker_clone, id_clone) = (docker.clone(), id.clone());
    let task = tokio::spawn(async move {
        let stack =
            StackHandle::create(&docker_clone, identity(&id_clone, false)).await.expect("net");
        stack.start_service(&sleeper("app"), &no_env()).await.expect("start");
        assert_eq!(leftovers(&id_clone).await.len(), 2);
        panic!("a step blew up with the stack up");
    });
    let start = instant_now();
    assert!(task.await.expect_err("panicked").is_panic());
    println!("drop while panicking: {:?} after the panic", start.elapsed());
    assert!(leftovers(&id).await.is_empty(), "{:?}", leftovers(&id).await);

    // A runtime shut down under a task that holds the stack.
    let id = run_id("drop-shutdown");
    let id_clone = id.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("rt");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let docker = Docker::connect().await.expect("docker");
            let stack =
                StackHandle::create(&docker, identity(&id_clone, false)).await.expect("net");
            stack.start_service(&sleeper("app"), &no_env()).await.expect("start");
            ready_tx.send(()).expect("send");
            std::future::pending::<()>().await;
            drop(stack);
        });
        ready_rx.recv().expect("stack up");
        drop(runtime);
    })
    .join()
    .expect("runtime thread");
    assert!(leftovers(&id).await.is_empty(), "{:?}", leftovers(&id).await);

    // A kept stack survives its drop.
    let id = run_id("drop-keep");
    {
        let stack = StackHandle::create(&docker, identity(&id, true)).await.expect("network");
        stack.start_service(&sleeper("app"), &no_env()).await.expect("start");
    }
    assert_eq!(leftovers(&id).await.len(), 2);
    let mine = |run: &str| run == id;
    docker.sweep_runs(SweepScope::Run(id.clone()), &mine).await.expect("sweep");
    assert!(leftovers(&id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn sweep_removes_dead_runs_and_keeps_live_and_kept_ones() {
    let docker = docker().await;
    let (dead, kept, live) = (run_id("sweep-dead"), run_id("sweep-kept"), run_id("sweep-live"));
    let (dead_container, dead_network) = fake_dead_run(&dead, false).await;
    let (kept_container, kept_network) = fake_dead_run(&kept, true).await;
    let _cleanup = RawCleanup {
        containers: vec![dead_container.clone(), kept_container.clone()],
        networks: vec![dead_network.clone(), kept_network.clone()],
    };
    let stack = StackHandle::create(&docker, identity(&live, false)).await.expect("network");
    stack.start_service(&sleeper("app"), &no_env()).await.expect("start");

    let mine = |run: &str| [&dead, &kept, &live].iter().any(|id| *id == run);
    let start = instant_now();
    let report = docker.sweep_runs(SweepScope::Dead, &mine).await.expect("sweep dead");
    let sweep_time = start.elapsed();
    assert_eq!(report.containers, [dead_container.as_str()], "the paused dead container goes");
    assert_eq!(report.networks, [dead_network.as_str()]);
    assert!(leftovers(&dead).await.is_empty());
    assert_eq!(leftovers(&kept).await.len(), 2, "kept runs survive a dead sweep");
    assert_eq!(leftovers(&live).await.len(), 2, "live runs survive");

    let report = docker.sweep_runs(SweepScope::AllButLive, &mine).await.expect("sweep all");
    assert_eq!(report.containers, [kept_container]);
    assert_eq!(report.networks, [kept_network]);
    assert_eq!(leftovers(&live).await.len(), 2, "live runs survive");

    // Sweeping a live run by id, then shutting it down: both tolerate the other.
    let report = docker.sweep_runs(SweepScope::Run(live.clone()), &mine).await.expect("sweep run");
    assert_eq!(report.containers.len(), 1);
    stack.shutdown(true).await.expect("idempotent shutdown");
    assert!(leftovers(&live).await.is_empty());
    println!("sweep of one dead run (paused container + network): {sweep_time:?}");
}
