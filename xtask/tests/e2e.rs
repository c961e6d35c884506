//! End-to-end tests against the real Docker engine, buildx, QEMU and the
//! loopback registry. They are `#[ignore]`d in a plain `cargo test` (they
//! need root, Docker and minutes) and run by `cargo xtask ci`'s `e2e` stage
//! as `cargo test -p xtask --test e2e -- --ignored --test-threads=1`, after
//! its `setup` stage. A missing prerequisite fails the test with the
//! command that fixes it; nothing is skipped silently.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, Instant},
};

const REGISTRY: &str = "localhost:5000";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Runs the xtask binary (as `cargo xtask` would) with `args`, in `workspace`.
fn xtask_in(workspace: &Path, args: &[&str]) -> Output {
    xtask_env(workspace, args, &[])
}

/// [`xtask_in`] with extra environment variables.
fn xtask_env(workspace: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    eprintln!("$ cargo xtask {}", args.join(" "));
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("BROKKR_WORKSPACE", workspace)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("BROKKR_REGISTRY")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("starting xtask");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn xtask(args: &[&str]) -> Output {
    xtask_in(&root(), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

fn cmd(program: &str, args: &[&str]) -> Output {
    eprintln!("$ {program} {}", args.join(" "));
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

/// Fails loudly (never skips) when the engine does not answer.
fn require_docker() {
    let o = cmd("docker", &["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        o.status.success(),
        "the Docker engine does not answer; run `cargo xtask setup` first (cargo xtask ci does): {}",
        stderr(&o)
    );
}

/// Plain-HTTP GET on the loopback registry: (status code, body).
fn registry_get(path: &str) -> (u16, String) {
    let mut s = TcpStream::connect("127.0.0.1:5000")
        .expect("the loopback registry is not listening on 5000");
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost:5000\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}

/// Every repository and its tags in the loopback registry, sorted.
fn registry_snapshot() -> Vec<String> {
    let (_, catalog) = registry_get("/v2/_catalog?n=1000");
    let v: serde_json::Value = serde_json::from_str(&catalog).unwrap_or_default();
    let mut out = Vec::new();
    for repo in v["repositories"].as_array().cloned().unwrap_or_default() {
        let repo = repo.as_str().unwrap_or_default().to_owned();
        let (_, tags) = registry_get(&format!("/v2/{repo}/tags/list"));
        let t: serde_json::Value = serde_json::from_str(&tags).unwrap_or_default();
        for tag in t["tags"].as_array().cloned().unwrap_or_default() {
            let tag = tag.as_str().unwrap_or_default();
            let digest = cmd(
                "docker",
                &[
                    "buildx",
                    "imagetools",
                    "inspect",
                    "--format",
                    "{{json .Manifest}}",
                    &format!("{REGISTRY}/{repo}:{tag}"),
                ],
            );
            out.push(format!("{repo}:{tag} {}", stdout(&digest).trim()));
        }
    }
    out.sort();
    out
}

/// The full commit of the workspace, and its 7-hex sha tag.
fn sha_tag() -> String {
    let o = ok(cmd("git", &["-C", root().to_str().unwrap(), "rev-parse", "HEAD"]));
    format!("sha-{}", &stdout(&o).trim()[..7])
}

/// All four per-platform images built with the cross strategy, loaded and
/// pushed; once per test process.
fn four_images_pushed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        require_docker();
        ok(xtask(&["registry", "start"]));
        ok(xtask(&["images", "--platform", "all", "--strategy", "cross"]));
        ok(xtask(&["push", "--platform", "all"]));
    });
}

#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn host_setup_engine_buildx_qemu_registry_and_bases() {
    require_docker();
    let again = ok(xtask(&["setup", "--platform", "all"]));
    assert!(
        !stdout(&again).contains("installing"),
        "a second setup must do nothing:\n{}",
        stdout(&again)
    );
    ok(xtask(&["doctor", "--platform", "linux/amd64,linux/arm64"]));
    let info = ok(cmd("docker", &["info", "--format", "{{json .DriverStatus}}"]));
    assert!(
        stdout(&info).contains("io.containerd.snapshotter.v1"),
        "not the containerd image store: {}",
        stdout(&info)
    );
    let ls = ok(cmd("docker", &["buildx", "ls"]));
    assert!(
        stdout(&ls).contains("linux/arm64"),
        "buildx does not list linux/arm64:\n{}",
        stdout(&ls)
    );

    // The registry takes a push; the authenticated one refuses an anonymous push.
    ok(xtask(&["registry", "start"]));
    assert_eq!(registry_get("/v2/").0, 200);
    ok(xtask(&["registry", "start", "--auth"]));
    let status = ok(xtask(&["registry", "status", "--auth"]));
    let port = stdout(&status)
        .split(|c: char| !c.is_ascii_digit() && c != ':' && c != '.' && !c.is_ascii_alphabetic())
        .find_map(|w| {
            w.strip_prefix("localhost:")
                .or_else(|| w.strip_prefix("127.0.0.1:"))
                .filter(|p| *p != "5000")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "5001".to_owned());
    let bases = ok(xtask(&["base-images"]));
    let runtime = stdout(&bases)
        .lines()
        .find_map(|l| {
            l.strip_prefix("runtime (")
                .and_then(|r| r.split_once("): "))
                .map(|(_, img)| img.trim().to_owned())
        })
        .expect("base-images names the runtime image");
    // Both platforms of the runtime base are in the local store: a build FROM
    // it for both resolves locally (a missing one would be looked up remotely
    // and fail, as `brokkr.local` is no registry).
    let ctx = std::env::temp_dir().join(format!("brokkr-e2e-runtime-{}", std::process::id()));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {runtime}\n")).unwrap();
    ok(cmd(
        "docker",
        &[
            "buildx",
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--output",
            "type=cacheonly",
            ctx.to_str().unwrap(),
        ],
    ));
    let _ = std::fs::remove_dir_all(&ctx);
    let anon = format!("localhost:{port}/e2e/anonymous:refused");
    ok(cmd("docker", &["tag", &runtime, &anon]));
    let _ = cmd("docker", &["logout", &format!("localhost:{port}")]);
    let push = cmd("docker", &["push", &anon]);
    assert!(!push.status.success(), "an anonymous push to the auth registry must be refused");
    let e = stderr(&push).to_lowercase();
    assert!(
        e.contains("unauthorized")
            || e.contains("no basic auth")
            || e.contains("authentication required"),
        "{e}"
    );
    ok(cmd("docker", &["image", "rm", &anon]));
    ok(xtask(&["registry", "stop", "--auth"]));
}

#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn images_cross_push_smoke_manifest_and_pull_by_final_tag() {
    four_images_pushed();
    // All four run on their platform (arm64 through QEMU) and talk to each other.
    ok(xtask(&["smoke", "--platform", "all"]));
    let sha = sha_tag();
    for c in ["broker", "agent"] {
        for arch in ["amd64", "arm64"] {
            let record: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(
                    root().join(format!("target/xtask/images/localhost%3A5000/{c}-{arch}.json")),
                )
                .unwrap(),
            )
            .unwrap();
            assert_eq!(record["reference"], format!("{REGISTRY}/brokkr-{c}:{sha}-{arch}"));
            assert_eq!(record["strategy"], "cross");
            let size = record["size_bytes"].as_u64().expect("size recorded");
            assert!(size < 30_000_000, "brokkr-{c} {arch} is {size} bytes, over 30 MB");
            assert!(record["pushed_digest"].as_str().is_some_and(|d| d.starts_with("sha256:")));
        }
        // Both manifests created and verified, then each platform pulled through a final tag.
        let m = ok(xtask(&["manifest", "--component", c, "--json"]));
        let v: serde_json::Value = serde_json::from_str(&stdout(&m)).expect("manifest --json");
        let platforms: Vec<&str> = v["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["platform"].as_str().unwrap())
            .collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
        let final_tag = v["tags"][0].as_str().unwrap().rsplit_once(':').unwrap().1.to_owned();
        for t in v["tags"].as_array().unwrap() {
            ok(xtask(&["manifest", "verify", t.as_str().unwrap()]));
        }
        for arch in ["amd64", "arm64"] {
            let _ = cmd("docker", &["image", "rm", &format!("{REGISTRY}/brokkr-{c}:{final_tag}")]);
            ok(xtask(&["smoke", "--component", c, "--platform", arch, "--tag", &final_tag]));
        }
    }
}

#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn manifest_refuses_when_arm64_is_missing_and_leaves_the_final_tag() {
    four_images_pushed();
    let sha = sha_tag();
    let registry = format!("{REGISTRY}/m4");
    let amd64 = format!("{registry}/brokkr-broker:{sha}-amd64");
    ok(cmd("docker", &["tag", &format!("{REGISTRY}/brokkr-broker:{sha}-amd64"), &amd64]));
    ok(cmd("docker", &["push", &amd64]));
    // The final tags as they were before: an index of the amd64 image alone.
    let tags = ok(xtask(&["tags", "--component", "broker", "--registry", &registry, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&tags)).unwrap();
    let finals: Vec<String> =
        v["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect();
    let mut create = vec!["buildx", "imagetools", "create"];
    for f in &finals {
        create.extend(["--tag", f.as_str()]);
    }
    create.push(&amd64);
    ok(cmd("docker", &create));
    let before = registry_snapshot();

    let o = xtask(&["manifest", "--component", "broker", "--registry", &registry]);
    assert!(!o.status.success(), "manifest must refuse without an arm64 source");
    assert!(stderr(&o).contains("linux/arm64"), "the error names linux/arm64:\n{}", stderr(&o));
    assert_eq!(registry_snapshot(), before, "nothing may be written");
}

#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn a_broker_source_change_reuses_the_cached_dependency_stage() {
    four_images_pushed();
    let dir = std::env::temp_dir().join(format!("brokkr-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    ok(cmd("git", &["clone", "--quiet", root().to_str().unwrap(), dir.to_str().unwrap()]));
    let main_rs = dir.join("broker/src/main.rs");
    let mut text = std::fs::read_to_string(&main_rs).unwrap();
    text.push_str("\n// e2e: a source-only change\n");
    std::fs::write(&main_rs, text).unwrap();
    let d = dir.to_str().unwrap();
    let git = |args: &[&str]| {
        ok(cmd(
            "git",
            &[&["-C", d, "-c", "user.name=e2e", "-c", "user.email=e2e@localhost"], args].concat(),
        ))
    };
    git(&["commit", "--quiet", "-am", "e2e: source-only change"]);
    let o = ok(xtask_in(&dir, &["build-image", "--component", "broker", "--platform", "arm64"]));
    let log = stderr(&o);
    let cook_cached = log.lines().any(|l| l.contains("cargo chef cook --release"))
        && log.lines().filter_map(|l| l.strip_prefix('#')).filter_map(|l| l.split_once(' ')).any(
            |(id, rest)| {
                rest.contains("cargo chef cook --release") && log.contains(&format!("#{id} CACHED"))
            },
        );
    assert!(cook_cached, "buildx did not report the dependency (cook) step as CACHED:\n{log}");
    assert!(log.contains("Compiling brokkr-broker"), "the broker crate must be rebuilt:\n{log}");
    let deps_compiled: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" Compiling ") && !l.contains("Compiling brokkr-"))
        .collect();
    assert!(
        deps_compiled.is_empty(),
        "dependencies recompiled after a source-only change: {deps_compiled:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn workflow_push_flow_publishes_and_pull_request_flow_pushes_nothing() {
    four_images_pushed();
    // push to main: four per-platform builds and pushes, then both manifests, verified.
    ok(xtask(&["workflow", "run", "--event", "push", "--ref", "main"]));
    for c in ["broker", "agent"] {
        let o = ok(xtask(&["manifest", "verify", &format!("{REGISTRY}/brokkr-{c}:main")]));
        assert!(stdout(&o).contains("linux/amd64, linux/arm64"), "{}", stdout(&o));
    }
    // pull_request: the builds run, nothing reaches the registry.
    let before = registry_snapshot();
    let o =
        ok(xtask(&["workflow", "run", "--event", "pull_request", "--ref", "refs/pull/7/merge"]));
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(log.contains("build-image"), "the pull request flow builds:\n{log}");
    assert!(
        log.contains("--cache-from") && !log.contains("--cache-to"),
        "the pull request flow imports the cache and never exports it:\n{log}"
    );
    assert_eq!(registry_snapshot(), before, "a pull request run must not change the registry");
}

#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn a_failing_cache_export_warns_and_the_build_succeeds() {
    four_images_pushed();
    // The password-protected registry refuses the anonymous cache export (B4).
    ok(xtask(&["registry", "start", "--auth"]));
    let status = ok(xtask(&["registry", "status", "--auth"]));
    let host = stdout(&status)
        .split_whitespace()
        .find(|w| w.starts_with("localhost:") && *w != "localhost:5000")
        .map(str::to_owned)
        .unwrap_or_else(|| "localhost:5001".to_owned());
    let o = ok(xtask(&[
        "build-image",
        "--component",
        "broker",
        "--cache",
        "registry",
        "--registry",
        &host,
    ]));
    let log = stderr(&o);
    assert!(
        log.contains("warning: the build cache export failed and was ignored"),
        "the failed export must be reported as a warning:\n{log}"
    );
    ok(xtask(&["registry", "stop", "--auth"]));
}

/// A fault-injecting HTTP proxy on loopback in front of the registry at
/// 127.0.0.1:5000 (case R6): of every `every` connections one is answered
/// `503` and the next one is reset, up to `max_faults` faults; the rest are
/// passed through. `stop` (or drop) closes the listener and cuts every open
/// connection, as a registry that goes away; it also stops by itself after
/// `lifetime`.
struct FaultProxy {
    port: u16,
    connections: Arc<AtomicUsize>,
    faults: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl FaultProxy {
    fn start(every: usize, max_faults: usize, lifetime: Duration) -> FaultProxy {
        FaultProxy::start_on(0, every, max_faults, lifetime)
    }

    /// As [`FaultProxy::start`], on `port` (0: any free one) of every
    /// address of this host, so it is also reached by a name other than localhost.
    fn start_on(port: u16, every: usize, max_faults: usize, lifetime: Duration) -> FaultProxy {
        let listener = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let proxy = FaultProxy {
            port: listener.local_addr().unwrap().port(),
            connections: Arc::default(),
            faults: Arc::default(),
            stop: Arc::default(),
            open: Arc::default(),
        };
        let (n, f, s, open) = (
            proxy.connections.clone(),
            proxy.faults.clone(),
            proxy.stop.clone(),
            proxy.open.clone(),
        );
        std::thread::spawn(move || {
            let deadline = Instant::now() + lifetime;
            while !s.load(SeqCst) && Instant::now() < deadline {
                let Ok((mut client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let k = n.fetch_add(1, SeqCst) % every;
                if f.load(SeqCst) < max_faults && (k == 0 || k == 1) {
                    f.fetch_add(1, SeqCst);
                    if k == 0 {
                        let _ = client.write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    continue; // k == 1: closed unanswered, a reset connection
                }
                let Ok(upstream) = TcpStream::connect("127.0.0.1:5000") else {
                    continue;
                };
                if let Ok(mut open) = open.lock() {
                    open.extend(client.try_clone().ok());
                    open.extend(upstream.try_clone().ok());
                }
                pipe(client, upstream);
            }
        });
        proxy
    }

    fn faults(&self) -> usize {
        self.faults.load(SeqCst)
    }

    fn connections(&self) -> usize {
        self.connections.load(SeqCst)
    }

    fn stop(&self) {
        self.stop.store(true, SeqCst);
        for c in self.open.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        std::thread::sleep(Duration::from_millis(100)); // the listener closes
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies bytes both ways between two connections until either side closes.
fn pipe(client: TcpStream, upstream: TcpStream) {
    for (mut from, mut to) in
        [(client.try_clone().unwrap(), upstream.try_clone().unwrap()), (upstream, client)]
    {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
    }
}

/// The final tags `tags --json` gives for `component` under `registry`.
fn final_tags(component: &str, registry: &str) -> Vec<String> {
    let o = ok(xtask(&["tags", "--component", component, "--registry", registry, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("tags --json");
    v["tags"]
        .as_array()
        .expect("tags --json has `tags`")
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

/// R6: the registry answers 503 or resets connections for some requests
/// during push and index creation: both finish through their retries, each
/// retry printed, and every final tag verifies when read back directly.
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn registry_faults_are_retried_and_final_tags_verify() {
    four_images_pushed();
    let proxy = FaultProxy::start(6, 6, Duration::from_secs(900));
    let registry = format!("localhost:{}/faults", proxy.port);
    let direct = format!("{REGISTRY}/faults");
    ok(xtask(&["images", "--component", "broker", "--platform", "all", "--registry", &registry]));
    let push =
        ok(xtask(&["push", "--component", "broker", "--platform", "all", "--registry", &registry]));
    let manifest = ok(xtask(&["manifest", "--component", "broker", "--registry", &registry]));
    assert!(proxy.faults() > 0, "the proxy injected no fault");
    let printed = format!("{}{}", stderr(&push), stderr(&manifest));
    assert!(printed.contains("retrying"), "retries are printed:\n{printed}");
    for tag in final_tags("broker", &registry) {
        let direct_ref = tag.replacen(&registry, &direct, 1);
        ok(xtask(&["manifest", "verify", &direct_ref]));
    }
}

/// R6: the registry goes away in the middle of a push: the push fails and no
/// final tag is written; once it is back, the rerun completes and publishes.
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn a_registry_stopped_mid_push_leaves_nothing_half_published() {
    four_images_pushed();
    let proxy = FaultProxy::start(usize::MAX, 0, Duration::from_secs(900));
    let port = proxy.port;
    let registry = format!("localhost:{port}/stopped");
    ok(xtask(&["images", "--component", "agent", "--platform", "all", "--registry", &registry]));
    let before = registry_snapshot();
    let mut push = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["push", "--component", "agent", "--platform", "all"])
        .args(["--registry", &registry])
        .env("BROKKR_WORKSPACE", root())
        .env_remove("GITHUB_ACTIONS")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while proxy.connections() < 3 && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(10));
    }
    proxy.stop();
    assert!(!push.wait().unwrap().success(), "a push cut off must fail");
    let refused = xtask(&["manifest", "--component", "agent", "--registry", &registry]);
    assert!(!refused.status.success(), "manifest must refuse without sources");
    let written: Vec<String> = registry_snapshot()
        .into_iter()
        .filter(|l| l.starts_with("stopped/") && !before.contains(l))
        .filter(|l| !l.contains("-amd64 ") && !l.contains("-arm64 "))
        .collect();
    assert!(written.is_empty(), "final tags written: {written:?}");
    // Back on the same port: the rerun completes.
    let proxy = FaultProxy::start_on(port, usize::MAX, 0, Duration::from_secs(900));
    ok(xtask(&["push", "--component", "agent", "--platform", "all", "--registry", &registry]));
    ok(xtask(&["manifest", "--component", "agent", "--registry", &registry]));
    for tag in final_tags("agent", &registry) {
        ok(xtask(&["manifest", "verify", &tag]));
    }
    drop(proxy);
}

/// This host's first IPv4 address that is not loopback (`hostname -I`).
fn host_address() -> String {
    let o = ok(cmd("hostname", &["-I"]));
    stdout(&o)
        .split_whitespace()
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok_and(|a| !a.is_loopback()))
        .expect("a non-loopback IPv4 address")
        .to_owned()
}

/// The leg records kept for images under `registry`, as (file, contents).
fn records_under(registry: &str) -> Vec<(PathBuf, String)> {
    let dir = root().join("target/xtask/images");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(&registry.replace(':', "%3A").replace('/', "%2F")) {
            for f in std::fs::read_dir(entry.path()).unwrap().flatten() {
                out.push((f.path(), std::fs::read_to_string(f.path()).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

/// Issue 15 item 3: `push --platform all` to a plain-HTTP registry reached by
/// a name other than localhost is refused before the first leg is pushed,
/// with the engine's insecure-registries remedy; records stay as they were.
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn a_plain_http_registry_by_another_name_is_refused_before_any_push() {
    four_images_pushed();
    let proxy = FaultProxy::start(usize::MAX, 0, Duration::from_secs(900));
    let registry = format!("{}:{}/plain", host_address(), proxy.port);
    ok(xtask(&["images", "--component", "agent", "--platform", "all", "--registry", &registry]));
    let records = records_under(&registry);
    assert!(!records.is_empty(), "`images` wrote no record under {registry}");
    let before = registry_snapshot();
    let out =
        xtask(&["push", "--component", "agent", "--platform", "all", "--registry", &registry]);
    assert!(!out.status.success(), "a push to a plain-HTTP registry by IP must be refused");
    let err = stderr(&out);
    assert!(err.contains("plain HTTP") && err.contains("insecure-registries"), "{err}");
    assert_eq!(registry_snapshot(), before, "something was pushed");
    assert_eq!(records_under(&registry), records, "the records changed");
}

/// A second engine on its own socket, data root, exec root and bridge
/// (`brn2`: never `--bridge none`, which deletes the first engine's
/// docker0), registered as a docker context; dropping it stops the engine
/// and removes everything it made, also when the test fails.
struct SecondEngine {
    dir: PathBuf,
    context: &'static str,
    dockerd: Option<std::process::Child>,
}

impl SecondEngine {
    const BRIDGE: &'static str = "brn2";
    /// `iptables -t TABLE {-A|-D} RULE...` for the bridge's traffic to the outside.
    const RULES: [&'static [&'static str]; 3] = [
        &["-t", "nat", "POSTROUTING", "-s", "172.29.0.0/24", "!", "-o", "brn2", "-j", "MASQUERADE"],
        &["-t", "filter", "FORWARD", "-i", "brn2", "-j", "ACCEPT"],
        &["-t", "filter", "FORWARD", "-o", "brn2", "-j", "ACCEPT"],
    ];

    fn start(context: &'static str) -> SecondEngine {
        let dir = std::env::temp_dir().join(format!("brokkr-e2e-{context}"));
        let mut e = SecondEngine { dir, context, dockerd: None };
        std::fs::create_dir_all(&e.dir).unwrap();
        for args in [
            &["link", "add", Self::BRIDGE, "type", "bridge"][..],
            &["addr", "add", "172.29.0.1/24", "dev", Self::BRIDGE],
            &["link", "set", Self::BRIDGE, "up"],
        ] {
            ok(cmd("ip", args));
        }
        // RUN steps use the engine's bridge: NAT it (the engine runs with --iptables=false).
        for rule in Self::RULES {
            ok(cmd("iptables", &[&rule[..2], &["-A"], &rule[2..]].concat()));
        }
        let d = |p: &str| e.dir.join(p).display().to_string();
        let log = std::fs::File::create(e.dir.join("dockerd.log")).unwrap();
        let sock = format!("unix://{}", d("docker.sock"));
        e.dockerd = Some(
            Command::new("dockerd")
                .args(["--host", &sock, "--data-root", &d("data"), "--exec-root", &d("exec")])
                .args(["--pidfile", &d("docker.pid"), "--bridge", Self::BRIDGE])
                .args(["--iptables=false", "--ip6tables=false"])
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting a second dockerd"),
        );
        let started = Instant::now();
        while !cmd("docker", &["-H", &sock, "info"]).status.success() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the second engine did not answer"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        ok(cmd("docker", &["context", "create", context, "--docker", &format!("host={sock}")]));
        e
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        let _ = cmd("docker", &["context", "rm", "--force", self.context]);
        if let Some(mut d) = self.dockerd.take() {
            let _ = cmd("kill", &["-TERM", &d.id().to_string()]);
            let started = Instant::now();
            while d.try_wait().ok().flatten().is_none()
                && started.elapsed() < Duration::from_secs(30)
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        let data = self.dir.join("data").display().to_string();
        let _ = cmd("umount", &[&data]);
        for rule in Self::RULES {
            let _ = cmd("iptables", &[&rule[..2], &["-D"], &rule[2..]].concat());
        }
        let _ = cmd("ip", &["link", "del", Self::BRIDGE]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn build_image_with_builder_builds_in_the_second_engine_only() {
    require_docker();
    let ctx = "brokkr-e2e-n2";
    let engine = SecondEngine::start(ctx);
    let registry = "localhost:5000/second-engine";
    let args = ["build-image", "--component", "broker", "--builder", ctx, "--registry", registry];
    // The printed command runs buildx in the context's engine (buildx refuses --builder for it).
    let plan = stdout(&ok(xtask(&[&args[..], &["--dry-run"]].concat())));
    assert!(plan.contains(&format!("docker --context {ctx} buildx build")), "{plan}");
    assert!(!plan.contains("--builder"), "{plan}");
    // The second engine starts empty: give it the local base images the build names.
    for image in plan.split_whitespace().filter_map(|w| w.split_once("_IMAGE=")).map(|(_, i)| i) {
        if image.starts_with("brokkr.local/") {
            let mut save = Command::new("docker")
                .args(["save", image])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let load = Command::new("docker")
                .args(["--context", ctx, "load"])
                .stdin(save.stdout.take().unwrap())
                .output()
                .unwrap();
            assert!(save.wait().unwrap().success() && load.status.success(), "{}", stderr(&load));
        }
    }
    let out = stderr(&ok(xtask(&args)));
    let reference = out
        .lines()
        .find_map(|l| l.strip_prefix("built ")?.split_once(' ').map(|(r, _)| r.to_owned()))
        .expect("a `built REF` line");
    assert!(reference.starts_with(registry), "{reference}");
    let inspect =
        |context: &str| cmd("docker", &["--context", context, "image", "inspect", &reference]);
    assert!(inspect(ctx).status.success(), "{reference} is not in the second engine");
    assert!(!inspect("default").status.success(), "{reference} is in the default engine");
    // Issue 15 item 8: doctor names a default bridge that is gone.
    ok(cmd("ip", &["link", "del", SecondEngine::BRIDGE]));
    let host = format!("unix://{}", engine.dir.join("docker.sock").display());
    let doctor = xtask_env(&root(), &["doctor", "--platform", "amd64"], &[("DOCKER_HOST", host)]);
    let report = format!("{}{}", stdout(&doctor), stderr(&doctor));
    assert!(!doctor.status.success(), "doctor must fail without the bridge:\n{report}");
    assert!(report.contains("default bridge brn2 is missing"), "{report}");
    drop(engine);
    assert!(cmd("ip", &["link", "show", "docker0"]).status.success(), "docker0 must survive");
}

/// Cargo's target directory for the temporary checkouts.
fn checkouts_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), PathBuf::from)
        .join("e2e-checkouts")
}

/// A clone of the workspace's committed HEAD in a temporary directory,
/// removed when dropped, also when the test fails.
struct TempCheckout(PathBuf);

impl TempCheckout {
    fn new(name: &str) -> TempCheckout {
        let dir = std::env::temp_dir().join(format!("brokkr-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        ok(cmd("git", &["clone", "--quiet", root().to_str().unwrap(), dir.to_str().unwrap()]));
        let t = TempCheckout(dir);
        t.git(&["config", "user.email", "e2e@brokkr.invalid"]);
        t.git(&["config", "user.name", "brokkr e2e"]);
        t
    }

    fn git(&self, args: &[&str]) -> String {
        let mut all = vec!["-C", self.0.to_str().unwrap()];
        all.extend(args);
        stdout(&ok(cmd("git", &all))).trim().to_owned()
    }

    /// A new commit that changes no image input (README.md is not in the build context).
    fn commit(&self, message: &str) -> String {
        let readme = self.0.join("README.md");
        let mut text = std::fs::read_to_string(&readme).unwrap();
        text.push_str(&format!("\n<!-- {message} -->\n"));
        std::fs::write(&readme, text).unwrap();
        self.git(&["commit", "--quiet", "-am", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Runs the xtask in this checkout, with cargo's target directory shared
    /// by every temporary checkout (records, caches and the xtask that
    /// `workflow run` compiles stay apart from the main checkout's).
    fn xtask(&self, args: &[&str]) -> Output {
        eprintln!("$ cargo xtask {} (in {})", args.join(" "), self.0.display());
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .env("BROKKR_WORKSPACE", &self.0)
            .env("CARGO_TARGET_DIR", checkouts_target())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("BROKKR_REGISTRY")
            .output()
            .expect("starting xtask");
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// `workflow run --event push --ref REF [--job JOB]` against `registry`.
    fn push_flow(&self, git_ref: &str, job: Option<&str>, registry: &str) -> Output {
        let mut args = vec!["workflow", "run", "--event", "push", "--ref", git_ref];
        args.extend(["--registry", registry]);
        if let Some(job) = job {
            args.extend(["--job", job]);
        }
        self.xtask(&args)
    }
}

impl Drop for TempCheckout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What an index in the registry holds: the platform manifests' digests by
/// platform (attestations left out) and its annotations.
fn index_at(reference: &str) -> (std::collections::BTreeMap<String, String>, serde_json::Value) {
    let raw = ok(cmd("docker", &["buildx", "imagetools", "inspect", "--raw", reference]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&raw)).expect("an index");
    let mut platforms = std::collections::BTreeMap::new();
    for m in v["manifests"].as_array().expect("an index with manifests") {
        let p = &m["platform"];
        if p["os"] == "unknown" {
            continue;
        }
        platforms.insert(
            format!("{}/{}", p["os"].as_str().unwrap(), p["architecture"].as_str().unwrap()),
            m["digest"].as_str().unwrap().to_owned(),
        );
    }
    (platforms, v["annotations"].clone())
}

fn annotation(index: &serde_json::Value, key: &str) -> String {
    index[format!("org.opencontainers.image.{key}")].as_str().unwrap_or_default().to_owned()
}

/// R3: the push flows of `main` and of tag `v1.2.3` for one commit, their
/// legs interleaved, leave `main`, `1.2.3`, `1.2`, `1` and `latest` on
/// indexes with identical per-platform digests, annotated with each run's version.
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn main_and_tag_flows_of_one_commit_publish_the_same_images() {
    four_images_pushed();
    let ws = TempCheckout::new("r3");
    ws.git(&["tag", "v1.2.3"]);
    let registry = format!("{REGISTRY}/r3");
    ok(ws.push_flow("main", Some("build"), &registry));
    ok(ws.push_flow("refs/tags/v1.2.3", Some("build"), &registry));
    ok(ws.push_flow("refs/tags/v1.2.3", Some("manifest"), &registry));
    ok(ws.push_flow("main", Some("manifest"), &registry));
    for c in ["broker", "agent"] {
        let at = |tag: &str| index_at(&format!("{registry}/brokkr-{c}:{tag}"));
        let (main, main_notes) = at("main");
        assert_eq!(main.len(), 2, "{c}:main holds {main:?}");
        assert_eq!(annotation(&main_notes, "version"), "main");
        for tag in ["1.2.3", "1.2", "1", "latest"] {
            let (platforms, notes) = at(tag);
            assert_eq!(platforms, main, "{c}:{tag} and {c}:main list other images");
            assert_eq!(annotation(&notes, "version"), "1.2.3", "{c}:{tag}");
        }
    }
}

/// R4: the agent linux/arm64 leg fails: broker is published, every agent tag
/// stays exactly as it was, and the run fails naming the leg.
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn a_failed_agent_arm64_leg_publishes_broker_and_leaves_agent() {
    four_images_pushed();
    let ws = TempCheckout::new("r4");
    let registry = format!("{REGISTRY}/r4");
    ok(ws.push_flow("main", None, &registry));
    // The agent's final tags (its amd64 leg still pushes its per-commit reference).
    let agent_tags = || -> Vec<String> {
        let snapshot = registry_snapshot().into_iter();
        let agent = snapshot.filter(|l| l.starts_with("r4/brokkr-agent:"));
        agent.filter(|l| !l.contains("-amd64 ") && !l.contains("-arm64 ")).collect()
    };
    let agent_before = agent_tags();
    let child = ws.commit("a newer commit");
    let mut args = vec!["workflow", "run", "--event", "push", "--ref", "main"];
    args.extend(["--registry", &registry, "--fail-leg", "agent linux/arm64"]);
    let o = ws.xtask(&args);
    assert!(!o.status.success(), "the run must fail");
    let log = stderr(&o);
    assert!(log.contains("agent") && log.contains("linux/arm64"), "names the leg:\n{log}");
    let (_, broker) = index_at(&format!("{registry}/brokkr-broker:main"));
    assert_eq!(annotation(&broker, "revision"), child, "broker:main moved to the new commit");
    assert_eq!(agent_tags(), agent_before, "agent tags must stay as they were");
}

/// R1 and R2: a parent commit's flow run after its child's leaves `main` on
/// the child; tag v1.1.0 published after v1.2.0 leaves `latest` (and `1`) on
/// 1.2.0 while `1.1.0` is still published.
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn an_older_run_finishing_last_never_moves_tags_backwards() {
    four_images_pushed();
    let ws = TempCheckout::new("r1");
    let registry = format!("{REGISTRY}/r1");
    let parent = ws.git(&["rev-parse", "HEAD"]);
    ws.git(&["tag", "v1.1.0"]);
    let child = ws.commit("the child");
    ws.git(&["tag", "v1.2.0"]);
    ok(ws.push_flow("main", None, &registry));
    ok(ws.push_flow("refs/tags/v1.2.0", None, &registry));
    ws.git(&["checkout", "--quiet", "--detach", &parent]);
    let late = ok(ws.push_flow("main", None, &registry));
    ok(ws.push_flow("refs/tags/v1.1.0", None, &registry));
    let log = format!("{}{}", stdout(&late), stderr(&late));
    assert!(log.contains("main"), "the skipped tag is named:\n{log}");
    for c in ["broker", "agent"] {
        let at = |tag: &str| index_at(&format!("{registry}/brokkr-{c}:{tag}")).1;
        assert_eq!(annotation(&at("main"), "revision"), child, "{c}:main went back");
        assert_eq!(annotation(&at("latest"), "version"), "1.2.0", "{c}:latest went back");
        assert_eq!(annotation(&at("1"), "version"), "1.2.0", "{c}:1 went back");
        assert_eq!(annotation(&at("1.1.0"), "revision"), parent, "{c}:1.1.0 is published");
        assert_eq!(annotation(&at(&format!("sha-{}", &parent[..7])), "revision"), parent);
    }
}

/// R5: two cold builds of one commit give the same per-platform digests, and
/// `manifest verify --rebuild` says so; an image built with an uncommitted
/// change to a broker source file (published with --allow-dirty) does not
/// verify, and the platforms that differ are named.
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn cold_rebuilds_of_one_commit_are_identical_and_verify_rebuild_proves_it() {
    four_images_pushed();
    let ws = TempCheckout::new("r5");
    let registry = format!("{REGISTRY}/r5");
    let sha = ws.git(&["rev-parse", "--short=7", "HEAD"]);
    let mut digests = Vec::new();
    for epoch in ["r5-cold-a", "r5-cold-b"] {
        ok(ws.xtask(&[
            "build-image",
            "--component",
            "broker",
            "--platform",
            "all",
            "--push",
            "--registry",
            &registry,
            "--cache-epoch",
            epoch,
        ]));
        ok(ws.xtask(&["manifest", "--component", "broker", "--registry", &registry]));
        digests.push(index_at(&format!("{registry}/brokkr-broker:sha-{sha}")).0);
    }
    assert_eq!(digests[0].len(), 2, "{:?}", digests[0]);
    assert_eq!(digests[0], digests[1], "two cold builds of one commit differ");
    let same = ok(ws.xtask(&[
        "manifest",
        "verify",
        &format!("{registry}/brokkr-broker:sha-{sha}"),
        "--rebuild",
    ]));
    let said = stdout(&same);
    assert!(said.contains("linux/amd64: match") && said.contains("linux/arm64: match"), "{said}");

    let main_rs = ws.0.join("broker/src/main.rs");
    // A change the binary shows (a comment or an unused item would compile
    // to the very same binary, and so the same image).
    let text = std::fs::read_to_string(&main_rs).unwrap();
    let changed =
        text.replace("tracing::error!(\"{err:#}\")", "tracing::error!(\"failed: {err:#}\")");
    assert_ne!(changed, text, "the broker's error line moved; pick another change");
    std::fs::write(&main_rs, changed).unwrap();
    ok(ws.xtask(&[
        "build-image",
        "--component",
        "broker",
        "--platform",
        "all",
        "--push",
        "--registry",
        &registry,
    ]));
    ok(ws.xtask(&["manifest", "--component", "broker", "--registry", &registry, "--allow-dirty"]));
    let differs = ws.xtask(&[
        "manifest",
        "verify",
        &format!("{registry}/brokkr-broker:sha-{sha}-dirty"),
        "--rebuild",
    ]);
    assert!(!differs.status.success(), "an image of a changed tree must not verify");
    let said = format!("{}{}", stdout(&differs), stderr(&differs));
    assert!(said.contains("linux/amd64") && said.contains("linux/arm64"), "{said}");
    assert!(said.contains("MISMATCH"), "{said}");
}

/// Issue 15, item 1: the xtask acts on the checkout it runs in, not the one
/// it was compiled in, also when both share one CARGO_TARGET_DIR.
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn the_checkout_is_the_one_the_command_runs_in() {
    require_docker();
    let b = TempCheckout::new("root");
    let commit = b.commit("checkout B");
    let o = ok(Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build-image", "--component", "broker", "--platform", "arm64", "--dry-run"])
        .current_dir(b.0.join("broker"))
        .env("CARGO_TARGET_DIR", checkouts_target())
        .env_remove("BROKKR_WORKSPACE")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap());
    let plan = stdout(&o);
    assert!(plan.contains(b.0.to_str().unwrap()), "builds checkout B:\n{plan}");
    assert!(plan.contains(&commit[..7]), "with B's commit {commit}:\n{plan}");
    let compiled_in = format!("cd {} ", root().display());
    assert!(
        !plan.contains(&compiled_in),
        "never the compiled-in checkout:
{plan}"
    );
}

/// Issue 15, items 2 and 5: a dirty tree is never published as its commit
/// (its reference says so, push refuses it without --allow-dirty), and a
/// corrupt record is set aside and rewritten by the next build.
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn dirty_builds_are_marked_and_corrupt_records_are_set_aside() {
    four_images_pushed();
    let ws = TempCheckout::new("dirty");
    let registry = format!("{REGISTRY}/dirty");
    let build = ["build-image", "--component", "broker", "--platform", "amd64"];
    let main_rs = ws.0.join("broker/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).unwrap();
    std::fs::write(&main_rs, format!("{text}\n// uncommitted\n")).unwrap();
    let o = ok(ws.xtask(&[&build[..], &["--registry", &registry]].concat()));
    assert!(
        format!("{}{}", stdout(&o), stderr(&o)).contains("-dirty-amd64"),
        "the reference says dirty"
    );
    let before = registry_snapshot();
    let refused = ws.xtask(&[
        "push",
        "--component",
        "broker",
        "--platform",
        "amd64",
        "--registry",
        &registry,
    ]);
    assert!(!refused.status.success(), "push must refuse a dirty build");
    assert!(stderr(&refused).contains("--allow-dirty"), "{}", stderr(&refused));
    assert_eq!(registry_snapshot(), before, "nothing pushed");

    let sha = ws.git(&["rev-parse", "--short=7", "HEAD"]);
    std::fs::write(&main_rs, text).unwrap(); // clean again
    let records = checkouts_target().join("xtask/images/localhost%3A5000%2Fdirty");
    let record = records.join("broker-amd64.json");
    std::fs::create_dir_all(&records).unwrap();
    std::fs::write(&record, "").unwrap();
    let o = ok(ws.xtask(&[&build[..], &["--registry", &registry]].concat()));
    assert!(stderr(&o).contains("moved aside"), "the corrupt record is reported:\n{}", stderr(&o));
    let rewritten: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).expect("rewritten");
    assert_eq!(rewritten["reference"], format!("{registry}/brokkr-broker:sha-{sha}-amd64"));
    assert!(std::fs::read_dir(&records)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("broker-amd64.json.corrupt-")));
}

/// Issue 15, item 7: the password-protected registry started from one
/// checkout is found from another, whose `start` names a password file that
/// exists; `registry status` says who started it.
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn the_auth_registry_is_one_per_machine() {
    require_docker();
    ok(xtask(&["registry", "start", "--auth"]));
    let other = TempCheckout::new("registry");
    let o = ok(other.xtask(&["registry", "start", "--auth"]));
    let said = format!("{}{}", stdout(&o), stderr(&o));
    let file = said
        .split_whitespace()
        .find(|w| w.starts_with('/') && w.trim_end_matches([',', ')', '.']).ends_with("password"))
        .map(|w| w.trim_end_matches([',', ')', '.']).to_owned())
        .unwrap_or_else(|| panic!("no password file named:\n{said}"));
    assert!(Path::new(&file).is_file(), "{file} does not exist");
    let status = ok(other.xtask(&["registry", "status", "--auth"]));
    let said = stdout(&status);
    assert!(said.contains("5001") && said.contains("pid"), "who started what:\n{said}");
}

/// Issue 15, item 8: a DOCKER_HOST that does not answer is named as such,
/// not reported as a missing image.
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn a_wrong_docker_host_is_named() {
    require_docker();
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["smoke", "--component", "broker", "--platform", "amd64", "--no-setup"])
        .env("BROKKR_WORKSPACE", root())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let said = stderr(&o);
    assert!(said.contains("/nonexistent/docker.sock"), "names DOCKER_HOST:\n{said}");
    assert!(!said.contains("not in the local image store"), "{said}");
}

/// Issue 14: after an uncommitted one-file change to the broker, only the
/// broker binary is recompiled (from cargo's own output in the build log).
#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn a_one_file_change_recompiles_only_that_binary() {
    four_images_pushed();
    let ws = TempCheckout::new("incremental");
    let build =
        ["build-image", "--component", "broker", "--platform", "arm64", "--progress", "plain"];
    // A first uncommitted change: this build runs cargo (no layer of another
    // tree serves it), so the target cache mount holds exactly this tree.
    let main_rs = ws.0.join("broker/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).unwrap();
    std::fs::write(&main_rs, format!("{text}\n// a first change\n")).unwrap();
    ok(ws.xtask(&build));
    std::fs::write(&main_rs, format!("{text}\n// a one-file change\n")).unwrap();
    let o = ok(ws.xtask(&build));
    let log = format!("{}{}", stdout(&o), stderr(&o));
    let compiled: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("Compiling ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert_eq!(compiled, ["brokkr-broker"], "only the changed binary recompiles:\n{log}");
}

// ---- Issue 15 item 6: records never drift from the engine and the registry ----
// Own namespace (localhost:5000/drift): other tests' images and records stay apart.

const DRIFT: &str = "localhost:5000/drift";

fn drift_record() -> serde_json::Value {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let p = target.join("xtask/images/localhost%3A5000%2Fdrift/broker-arm64.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// What the engine (`docker image inspect`) or the registry holds under `reference`.
fn held(reference: &str, in_registry: bool) -> serde_json::Value {
    let o = if in_registry {
        cmd(
            "docker",
            &["buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", reference],
        )
    } else {
        cmd("docker", &["image", "inspect", "--format", "{{json .Id}}", reference])
    };
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap_or_default();
    if in_registry {
        v["digest"].clone()
    } else {
        v
    }
}

/// The record, the local tag and the registry, or the disagreement in words.
fn drift_agrees() -> Result<(), String> {
    let rec = drift_record();
    let reference = rec["reference"].as_str().unwrap_or_default();
    let (local, remote) = (held(reference, false), held(reference, true));
    if rec["digest"] != local || rec["pushed_digest"] != remote {
        return Err(format!("record {rec}\nlocal tag {local}\nregistry {remote}"));
    }
    Ok(())
}

/// A small LCG (Knuth's MMIX constants), seeded from the clock.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Starts xtask in its own process group with `SOURCE_DATE_EPOCH=epoch`
/// (each round a new image digest).
fn spawn_xtask(args: &[&str], epoch: u64) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    eprintln!("$ SOURCE_DATE_EPOCH={epoch} cargo xtask {}", args.join(" "));
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("BROKKR_WORKSPACE", root())
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env_remove("GITHUB_ACTIONS")
        .env_remove("BROKKR_REGISTRY")
        .process_group(0)
        .spawn()
        .expect("starting xtask")
}

fn drift_args<'a>(command: &'a [&'a str]) -> Vec<&'a str> {
    let mut args = command.to_vec();
    args.extend(["--component", "broker", "--platform", "arm64", "--registry", DRIFT]);
    args
}

#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn interrupted_builds_and_pushes_leave_records_that_agree() {
    require_docker();
    ok(xtask(&["registry", "start"]));
    ok(xtask(&drift_args(&["build-image", "--push", "--no-setup"])));
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let mut rng = Lcg(seed as u64);
    eprintln!("seed {seed}");
    let commands: [&[&str]; 3] = [
        &["build-image", "--no-setup"],
        &["build-image", "--push", "--no-setup"],
        &["push", "--allow-dirty"],
    ];
    for round in 0..10 {
        let command = commands[round % 3];
        let epoch = 1_700_000_000 + rng.below(1_000_000);
        if command[0] == "push" {
            // Something new to push: a build of another epoch, loaded only.
            ok(xtask(&drift_args(&["build-image", "--no-setup"])));
        }
        let mut child = spawn_xtask(&drift_args(command), epoch);
        std::thread::sleep(Duration::from_millis(rng.below(6_000)));
        let pgid = format!("-{}", child.id());
        cmd("kill", &["-INT", "--", &pgid]);
        let status = child.wait().unwrap();
        eprintln!("round {round}: {command:?} interrupted: {status}");
        let before = drift_agrees();
        // The next command reads the record, compares it with the engine and
        // the registry, says what differed and rewrites it.
        let o = ok(xtask(&drift_args(&["push", "--allow-dirty"])));
        if let Err(why) = before {
            assert!(
                stderr(&o).contains("did not say what is there"),
                "round {round}: a record that disagrees went unreported:\n{why}"
            );
        }
        drift_agrees().unwrap_or_else(|why| panic!("round {round} after push:\n{why}"));
    }
}

#[test]
#[ignore = "needs Docker; run by `cargo xtask ci`"]
fn concurrent_image_runs_leave_the_local_tag_in_the_record() {
    require_docker();
    for round in 0..3u64 {
        let args = drift_args(&["images", "--no-setup"]);
        let children: Vec<_> =
            (0..2u64).map(|i| spawn_xtask(&args, 1_700_000_000 + round * 10 + i)).collect();
        for mut c in children {
            assert!(c.wait().unwrap().success(), "round {round}: an images run failed");
        }
        let rec = drift_record();
        let reference = rec["reference"].as_str().unwrap();
        assert_eq!(rec["digest"], held(reference, false), "round {round}: {rec}");
    }
}
