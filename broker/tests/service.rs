//! Runs the real `brokkr-broker` binary on free loopback ports and talks HTTP to it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_brokkr-broker");

/// A port nothing listens on (bound by the OS, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running broker, killed when dropped (so a failing test leaves no process).
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    /// Starts a broker on a free port and waits (up to 10 s) until `/healthz` answers.
    fn start() -> Broker {
        let port = free_port();
        let child = Command::new(BIN)
            .env("BROKKR_BROKER_PORT", port.to_string())
            .env("BROKKR_BROKER_BIND", "127.0.0.1")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let broker = Broker { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(port, "/healthz").is_none() {
            assert!(Instant::now() < deadline, "broker did not come up on port {port}");
            sleep(Duration::from_millis(50));
        }
        broker
    }

    /// Sends `signal` (`TERM`, `INT`) with kill(1) and waits up to 5 s for the exit.
    fn signal(&mut self, signal: &str) -> (ExitStatus, Duration) {
        let pid = self.child.id().to_string();
        let sent = Instant::now();
        assert!(Command::new("kill").args(["-s", signal, &pid]).status().unwrap().success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            assert!(sent.elapsed() < Duration::from_secs(5), "no exit 5 s after SIG{signal}");
            sleep(Duration::from_millis(20));
        }
    }

    /// Everything the broker logged, once it has exited.
    fn logs(&mut self) -> String {
        let mut logs = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
        logs
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on the loopback port: `(status, body)`, or `None` if nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn run(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("BROKKR_BROKER_PORT");
    command.envs(env.iter().map(|(k, v)| (k, v))).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn serves_health_readiness_and_version() {
    let broker = Broker::start();
    assert_eq!(get(broker.port, "/healthz"), Some((200, "ok".into())));
    assert_eq!(get(broker.port, "/readyz"), Some((200, "ready".into())));
    assert_eq!(get(broker.port, "/nope").map(|r| r.0), Some(404));

    let (status, body) = get(broker.port, "/version").unwrap();
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["name"], "brokkr-broker");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["arch"], std::env::consts::ARCH);
    assert_eq!(json["target"], env!("BROKKR_TARGET"));
    let target = json["target"].as_str().unwrap();
    assert!(target.starts_with(std::env::consts::ARCH), "{target}");
    let commit = option_env!("BROKKR_GIT_COMMIT").filter(|c| !c.is_empty());
    assert_eq!(json["commit"].as_str(), commit, "{json}");
}

#[test]
fn version_flag_names_the_compiled_target() {
    let out = run(&["--version"], &[]);
    assert!(out.status.success());
    let line = text(&out.stdout);
    let commit = option_env!("BROKKR_GIT_COMMIT").filter(|c| !c.is_empty());
    let commit = commit.map(|c| format!(", commit {c}")).unwrap_or_default();
    let (version, target) = (env!("CARGO_PKG_VERSION"), env!("BROKKR_TARGET"));
    let arch = std::env::consts::ARCH;
    let want = format!("brokkr-broker {version} (target {target}, arch {arch}{commit})\n");
    assert_eq!(line, want);
    assert!(line.contains(&format!("arch {arch}")), "{line}");
}

#[test]
fn healthcheck_exits_0_when_up_and_1_when_down() {
    let broker = Broker::start();
    let port = broker.port.to_string();

    let up = run(&["healthcheck"], &[("BROKKR_BROKER_PORT", port.clone())]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up.stderr));
    let want = format!("healthy: http://127.0.0.1:{port}/healthz answered 200\n");
    assert_eq!(text(&up.stdout), want);
    let url = format!("http://localhost:{port}/readyz");
    assert_eq!(run(&["healthcheck", "--url", &url], &[]).status.code(), Some(0));
    assert_eq!(run(&["--port", &port, "healthcheck"], &[]).status.code(), Some(0));

    let closed = free_port();
    let url = format!("http://127.0.0.1:{closed}/healthz");
    let down = run(&["healthcheck", "--url", &url], &[]);
    assert_eq!(down.status.code(), Some(1));
    let message = text(&down.stderr);
    assert!(message.starts_with(&format!("unhealthy: {url}: connect ")), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");

    let missing = format!("http://127.0.0.1:{port}/missing");
    let not_found = run(&["healthcheck", "--url", &missing], &[]);
    assert_eq!(not_found.status.code(), Some(1));
    assert_eq!(text(&not_found.stderr), format!("unhealthy: {missing}: HTTP 404\n"));
}

#[test]
fn sigterm_and_sigint_stop_it_gracefully() {
    for signal in ["TERM", "INT"] {
        let mut broker = Broker::start();
        let (status, took) = broker.signal(signal);
        assert!(status.success(), "SIG{signal}: {status}");
        assert!(took < Duration::from_secs(2), "SIG{signal} took {took:?}");
        let logs = broker.logs();
        assert!(logs.contains(&format!("signal=\"SIG{signal}\"")), "{logs}");
        assert!(logs.contains("stopped"), "{logs}");
    }
}

#[test]
fn busy_port_is_an_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(&["--bind", "127.0.0.1", "--port", &port], &[]);
    assert_eq!(out.status.code(), Some(1));
    let logs = text(&out.stderr);
    assert!(logs.contains(&format!("binding 127.0.0.1:{port}")), "{logs}");
}
