//! Runs the real `brokkr-agent` binary against a stand-in broker on loopback ports.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_brokkr-agent");

/// A port nothing listens on (bound by the OS, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A stand-in broker: answers every request with the status in `status` (body `ok`),
/// on a thread that lives as long as the test process.
fn fake_broker(status: u16) -> (String, Arc<AtomicU16>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(status));
    let answer = Arc::clone(&status);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = [0; 4096];
            let _ = stream.read(&mut head);
            let code = answer.load(Ordering::SeqCst);
            let response =
                format!("HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (url, status)
}

/// Runs the agent with `args` to completion, the broker URL variable cleared.
fn run(args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("BROKKR_AGENT_BROKER_URL").env_remove("BROKKR_AGENT_PORT");
    command.output().unwrap()
}

/// Runs the agent with `args` and `BROKKR_AGENT_PORT=port`.
fn run_with_port(args: &[&str], port: u16) -> Output {
    Command::new(BIN).args(args).env("BROKKR_AGENT_PORT", port.to_string()).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An agent serving on a free port; its log lines arrive on `logs`. Killed on drop.
struct Agent {
    child: Child,
    port: u16,
    logs: mpsc::Receiver<String>,
}

impl Agent {
    /// Starts watching `broker_url` every 100 ms; returns once it logs that it listens.
    fn start(broker_url: &str) -> Agent {
        let port = free_port();
        let mut child = Command::new(BIN)
            .args(["--broker-url", broker_url, "--interval", "100ms", "--bind", "127.0.0.1"])
            .env("BROKKR_AGENT_PORT", port.to_string())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, logs) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            stderr.lines().map_while(Result::ok).try_for_each(|l| send.send(l))
        });
        let mut agent = Agent { child, port, logs };
        agent.expect_log("brokkr-agent listening");
        agent
    }

    /// Waits up to 5 s for a log line containing `needle`; returns the lines up to it.
    fn expect_log(&mut self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while let Ok(line) =
            self.logs.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return seen;
            }
        }
        panic!("no log line with {needle:?} within 5 s; got:\n{}", seen.join("\n"));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn check_exits_0_when_the_broker_is_up_and_1_otherwise() {
    let (up, _) = fake_broker(200);
    let ok = run(&["check", "--broker-url", &up]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok), format!("broker {up}/healthz is up (HTTP 200)\n"));

    let (unavailable, _) = fake_broker(503);
    let bad = run(&["check", "--broker-url", &format!("{unavailable}/")]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        stderr(&bad),
        format!("broker {unavailable}/healthz is down: HTTP 503 Service Unavailable\n")
    );

    let down = format!("http://127.0.0.1:{}", free_port());
    let refused = run(&["check", "--broker-url", &down]);
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(message.starts_with(&format!("broker {down}/healthz is down: ")), "{message}");
    assert!(message.contains("onnection refused"), "{message}");

    let from_env =
        Command::new(BIN).arg("check").env("BROKKR_AGENT_BROKER_URL", &up).output().unwrap();
    assert_eq!(from_env.status.code(), Some(0), "{}", stderr(&from_env));
}

#[test]
fn version_flag_names_the_compiled_target() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    let commit = option_env!("BROKKR_GIT_COMMIT").filter(|c| !c.is_empty());
    let commit = commit.map(|c| format!(", commit {c}")).unwrap_or_default();
    let (target, arch) = (env!("BROKKR_TARGET"), std::env::consts::ARCH);
    let want = format!(
        "brokkr-agent {} (target {target}, arch {arch}{commit})\n",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(stdout(&out), want);
}

#[test]
fn serves_healthz_and_logs_broker_state_changes_only() {
    let (broker, status) = fake_broker(200);
    let mut agent = Agent::start(&broker);
    agent.expect_log("broker is up");

    let own = format!("http://127.0.0.1:{}/healthz", agent.port);
    let healthy = run_with_port(&["healthcheck"], agent.port);
    assert_eq!(healthy.status.code(), Some(0), "{}", stderr(&healthy));
    assert_eq!(stdout(&healthy), format!("agent {own} is up (HTTP 200)\n"));
    // The agent's /healthz, read as a broker would be: `check` GETs <base>/healthz.
    let base = format!("http://127.0.0.1:{}", agent.port);
    assert_eq!(run(&["check", "--broker-url", &base]).status.code(), Some(0));

    status.store(503, Ordering::SeqCst);
    let between = agent.expect_log("broker went down: HTTP 503");
    assert_eq!(between.len(), 1, "logged more than the change: {between:?}");
    status.store(200, Ordering::SeqCst);
    let between = agent.expect_log("broker is back up");
    assert_eq!(between.len(), 1, "logged more than the change: {between:?}");

    // Several polls later, still nothing new to say.
    std::thread::sleep(Duration::from_millis(400));
    let quiet: Vec<String> = agent.logs.try_iter().collect();
    assert!(quiet.is_empty(), "logged without a change: {quiet:?}");
}

#[test]
fn first_state_down_is_logged() {
    let mut agent = Agent::start(&format!("http://127.0.0.1:{}", free_port()));
    let lines = agent.expect_log("broker is down: ");
    assert!(lines.last().unwrap().contains("onnection refused"), "{lines:?}");
}

#[test]
fn healthcheck_exits_1_when_nothing_listens() {
    let url = format!("http://127.0.0.1:{}/healthz", free_port());
    let out = run(&["healthcheck", "--url", &url]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.starts_with(&format!("agent {url} is down: ")), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
}

#[test]
fn sigterm_and_sigint_stop_it_gracefully() {
    let (broker, _) = fake_broker(200);
    for signal in ["TERM", "INT"] {
        let mut agent = Agent::start(&broker);
        let sent = Instant::now();
        let pid = agent.child.id().to_string();
        assert!(Command::new("kill").args(["-s", signal, &pid]).status().unwrap().success());
        agent.expect_log(&format!("signal=\"SIG{signal}\""));
        agent.expect_log("stopped");
        let status = agent.child.wait().unwrap();
        assert!(status.success(), "SIG{signal}: {status}");
        assert!(sent.elapsed() < Duration::from_secs(2), "SIG{signal} took {:?}", sent.elapsed());
    }
}
