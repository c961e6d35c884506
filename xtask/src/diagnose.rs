//! Diagnosis of docker, buildx, registry and cargo failures from their
//! captured standard error: which ones are worth retrying, and what a
//! person should do about the others.
//!
//! Pure functions over `&str` (matching is case-insensitive); the only side
//! effects are in [`retry`], and [`retry_with`] takes them as a parameter.

use std::{fmt, net::IpAddr, time::Duration};

use crate::project::PLATFORMS;

/// Total attempts [`retry`] makes at most (one try plus three retries).
pub const MAX_ATTEMPTS: u32 = 4;
/// Delay before the first retry; each next one doubles.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);

/// Phrases (lower-case) of failures that retrying cannot fix: authentication,
/// missing references, configuration. They win over transient phrases.
const PERMANENT: &[&str] = &[
    "401 unauthorized",
    "unauthorized: ",
    "authentication required",
    "403 forbidden",
    "denied: ",
    "requested access to the resource is denied",
    "insufficient_scope",
    "manifest unknown",
    "manifest_unknown",
    "name unknown",
    "name_unknown",
    "404 not found",
    "x509: ",
    "server gave http response to https client",
    "no space left on device",
    "exec format error",
];

/// Phrases (lower-case) of failures that usually pass on their own: registry
/// overload and network blips (Go's `net`/`net/http` wording, as docker and
/// buildx print it).
const TRANSIENT: &[&str] = &[
    "500 internal server error",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
    "504 gateway time-out",
    "429 too many requests",
    "toomanyrequests",
    "i/o timeout",
    "tls handshake timeout",
    "connection reset by peer",
    "broken pipe",
    "context deadline exceeded",
    "client.timeout exceeded",
];

/// Whether a failed docker/buildx/registry command is worth retrying with
/// backoff: HTTP 5xx and 429 answers, timeouts (`i/o timeout`, `TLS handshake
/// timeout`, `context deadline exceeded`), `connection reset by peer`, and an
/// `EOF` / `unexpected EOF` on a registry request.
///
/// Never transient, even next to those: 401/403, `denied:`, `manifest
/// unknown`, `name unknown`, 404, certificate (`x509:`) and plain-HTTP
/// errors, a full disk, `exec format error`. `connection refused` and DNS
/// failures are not retried either (a registry that is not running or a host
/// that is offline stays so).
pub fn is_transient(stderr: &str) -> bool {
    let lower = stderr.to_ascii_lowercase();
    let statuses = http_statuses(&lower);
    if PERMANENT.iter().any(|p| lower.contains(p))
        || statuses.iter().any(|s| [401, 403, 404].contains(s))
    {
        return false;
    }
    TRANSIENT.iter().any(|p| lower.contains(p))
        || statuses
            .iter()
            .any(|s| *s == 429 || (500..=599).contains(s))
        || lower.lines().any(is_registry_eof)
}

/// HTTP status codes mentioned as `status: 503`, `status code 503`,
/// `status 503`, `statuscode=503` or `http 503` in lower-cased text.
fn http_statuses(lower: &str) -> Vec<u16> {
    let mut found = Vec::new();
    for prefix in [
        "status: ",
        "status code: ",
        "status code ",
        "status ",
        "statuscode=",
        "http ",
    ] {
        let mut rest = lower;
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i + prefix.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if digits.len() == 3 {
                if let Ok(code) = digits.parse() {
                    found.push(code);
                }
            }
        }
    }
    found
}

/// A line that ends a registry request with `EOF` (Go's `io.EOF` /
/// `io.ErrUnexpectedEOF`), e.g. `failed to do request: Head "https://...": EOF`.
fn is_registry_eof(line: &str) -> bool {
    let line = line.trim();
    let eof = line.ends_with(": eof") || line.contains("unexpected eof");
    let request = ["http://", "https://", "request", "registry", "/v2/"]
        .iter()
        .any(|p| line.contains(p));
    eof && request
}

/// The kind of failure a [`Hint`] explains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// QEMU crashed running a foreign binary (case B6).
    EmulatorCrash,
    /// No binfmt handler for a foreign architecture (case B2).
    NoBinfmt,
    /// Several platforms exported to the docker image store (case B1).
    MultiPlatformLoad,
    /// A registry answered plain HTTP to HTTPS (case M5).
    PlainHttpRegistry,
    /// The registry's TLS certificate is not trusted.
    UnknownCa,
    /// Disk full.
    DiskFull,
    /// Authentication missing or refused.
    AuthRequired,
    /// The reference does not exist in the registry.
    NotFound,
    /// A loopback registry cannot be reached (not running, or the builder
    /// runs in a container with its own `localhost`).
    LoopbackUnreachable,
    /// Docker Hub (upstream base images) cannot be reached.
    UpstreamUnreachable,
    /// Cross-compiled objects linked with the host linker (case B8).
    CrossLinkerMissing,
    /// The configured linker program does not exist.
    LinkerNotFound,
}

/// What went wrong, in one line, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    /// The kind of failure.
    pub cause: Cause,
    /// One line: what happened.
    pub what: String,
    /// What to do next (may name commands and files).
    pub fix: String,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\nfix: {}", self.what, self.fix)
    }
}

fn hint(cause: Cause, what: impl Into<String>, fix: impl Into<String>) -> Option<Hint> {
    Some(Hint {
        cause,
        what: what.into(),
        fix: fix.into(),
    })
}

/// Explains a failure from its standard error, or `None` when it is not one
/// we know. The rules are tried in order, most specific first: emulator crash
/// (B6), `exec format error` (B2), multi-platform `--load` on the docker
/// driver (B1), plain HTTP registry (M5), untrusted certificate, full disk,
/// 401/denied, unknown reference, unreachable loopback registry, Docker Hub
/// unreachable, cross linker not configured (B8), linker not found.
pub fn explain(stderr: &str) -> Option<Hint> {
    let lower = stderr.to_ascii_lowercase();
    let has = |p: &str| lower.contains(p);

    if has("qemu: uncaught target signal")
        || (has("qemu") && (has("sigsegv") || has("segmentation fault")))
    {
        return hint(
            Cause::EmulatorCrash,
            "the emulator (QEMU) crashed running a foreign binary",
            "use the default cross strategy (`--strategy cross`) or a newer QEMU (`cargo xtask setup`)",
        );
    }
    if has("exec format error") {
        return hint(
            Cause::NoBinfmt,
            "a foreign-architecture binary could not run: no binfmt (QEMU) handler is registered for it",
            "run `cargo xtask setup` (registers QEMU), or build with `--strategy cross`",
        );
    }
    if has("docker exporter does not currently support exporting manifest lists")
        || has("multi-platform build is not supported for the docker driver")
        || has("multiple platforms feature is currently not supported for docker driver")
    {
        return hint(
            Cause::MultiPlatformLoad,
            "the `docker` driver without the containerd image store cannot load a multi-platform image",
            "build one platform with `--load`, or `--push` to a registry, or enable the containerd \
             image store / use a docker-container builder (`docker buildx create --use`)",
        );
    }
    if has("server gave http response to https client") {
        let host = url_host(stderr).unwrap_or_else(|| "<host:port>".to_owned());
        let what = if registry_is_loopback(&host) {
            format!("the registry {host} speaks plain HTTP but was contacted over HTTPS")
        } else {
            format!(
                "the registry {host} speaks plain HTTP; only a loopback registry (localhost, \
                 127.0.0.1) is used over plain HTTP without configuration"
            )
        };
        return hint(
            Cause::PlainHttpRegistry,
            what,
            format!(
                "add \"{host}\" to `insecure-registries` in /etc/docker/daemon.json and restart \
                 dockerd (docker driver), or give the builder a buildkitd.toml with \
                 `[registry.\"{host}\"] http = true` (`docker buildx create --buildkitd-config FILE`); \
                 or serve it with TLS"
            ),
        );
    }
    if has("certificate signed by unknown authority")
        || has("self-signed certificate in certificate chain")
        || has("unable to get local issuer certificate")
    {
        // cargo/curl inside a build (crates.io behind a TLS-intercepting proxy)
        // reports "SSL certificate problem"; the engine talking to a registry
        // reports Go's x509 error with the registry's URL.
        if has("ssl certificate problem") || has("crates.io") || has("npm err") || !has("x509") {
            return hint(
                Cause::UnknownCa,
                "a download inside the build met a TLS certificate from an authority the builder image does not trust \
                 (a TLS-intercepting proxy?)",
                "pass the CA bundle that trusts it: `--ca-bundle FILE` (default: $SSL_CERT_FILE, else the \
                 host's /etc/ssl/certs/ca-certificates.crt)",
            );
        }
        let host = url_host(stderr).unwrap_or_else(|| "the registry".to_owned());
        return hint(
            Cause::UnknownCa,
            format!("the TLS certificate of {host} is signed by an authority the Docker engine does not trust"),
            format!(
                "install the registry's CA as /etc/docker/certs.d/{host}/ca.crt (docker driver), or give the builder \
                 a buildkitd.toml with `[registry.\"{host}\"] ca = [\"/path/ca.pem\"]`"
            ),
        );
    }
    if has("no space left on device") {
        return hint(
            Cause::DiskFull,
            "the disk holding Docker's data (or the build cache) is full",
            "free space: `docker builder prune` and `docker image prune`; `docker system df` shows usage",
        );
    }
    if has("401 unauthorized")
        || has("unauthorized: ")
        || has("authentication required")
        || has("denied: ")
        || has("requested access to the resource is denied")
        || has("insufficient_scope")
        || has("403 forbidden")
    {
        let host = url_host(stderr).unwrap_or_else(|| "<registry>".to_owned());
        return hint(
            Cause::AuthRequired,
            format!("the registry {host} refused the request: not logged in, or not allowed to push there"),
            format!(
                "`docker login {host}` (in GitHub Actions: docker/login-action, and `packages: write` for ghcr.io)"
            ),
        );
    }
    if has("manifest unknown")
        || has("manifest_unknown")
        || has("name unknown")
        || has("name_unknown")
    {
        return hint(
            Cause::NotFound,
            "the image reference does not exist in the registry",
            "push the per-platform images first (`cargo xtask build-image --push` or `cargo xtask images --push`), \
             and check registry, name and tag",
        );
    }
    if has("connection refused") {
        if let Some(host) = refused_loopback(&lower) {
            return hint(
                Cause::LoopbackUnreachable,
                format!("nothing answers at {host}: the local registry is not running, or the builder runs in a container whose localhost is not this host's"),
                "`cargo xtask registry start`; a docker-container builder needs `--driver-opt network=host` to reach it",
            );
        }
    }
    if has("failed to resolve source metadata for docker.io/")
        || has("failed to resolve source metadata for gcr.io/")
        || has("lookup registry-1.docker.io")
        || has("lookup gcr.io")
        || has("lookup auth.docker.io")
        || has("lookup production.cloudflare.docker.com")
    {
        return hint(
            Cause::UpstreamUnreachable,
            "the upstream base images (Docker Hub, gcr.io) cannot be reached",
            "use the local substitutes built from Debian's archive: `--bases local` (see `cargo xtask base-images`)",
        );
    }
    if has("relocations in generic elf") {
        let p = elf_machine(&lower).and_then(|m| PLATFORMS.iter().find(|p| p.machine == m));
        let (target, linker) = match p {
            Some(p) => (p.rust_target.to_owned(), format!("{}-gcc", p.gnu_prefix)),
            None => ("<target>".to_owned(), "<prefix>-gcc".to_owned()),
        };
        let var = format!(
            "CARGO_TARGET_{}_LINKER",
            target.to_ascii_uppercase().replace('-', "_")
        );
        return hint(
            Cause::CrossLinkerMissing,
            format!("objects compiled for {target} were linked by the host linker: no cross linker is configured"),
            format!("set {var}={linker} (the default `--strategy cross` does), and install {linker}"),
        );
    }
    if has("error: linker `") && has("` not found") {
        let linker = between(stderr, "linker `", "`").unwrap_or("<linker>");
        let install = match linker.strip_suffix("-gcc") {
            Some(prefix) if !prefix.is_empty() => {
                format!("install it (Debian/Ubuntu: `apt-get install gcc-{prefix}`)")
            }
            _ => "install it".to_owned(),
        };
        return hint(
            Cause::LinkerNotFound,
            format!("the linker `{linker}` is not installed"),
            format!("{install}; `cargo xtask doctor` lists what is missing"),
        );
    }
    None
}

/// The text between the first `start` and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// The host (with port) of the first `http://` or `https://` URL in `s`.
fn url_host(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let start = ["https://", "http://"]
        .iter()
        .filter_map(|p| lower.find(p).map(|i| i + p.len()))
        .min()?;
    let host: String = lower[start..]
        .chars()
        .take_while(|c| !matches!(c, '/' | '"' | '\'' | ' ' | '?' | '#'))
        .collect();
    if host.is_empty() {
        None
    } else {
        Some(host)
    }
}

/// In a `connection refused` message, the loopback `host:port` dialled
/// (`dial tcp 127.0.0.1:5000: connect: connection refused`).
fn refused_loopback(lower: &str) -> Option<String> {
    let line = lower.lines().find(|l| l.contains("connection refused"))?;
    let addr = between(line, "dial tcp ", ": connect")
        .map(str::to_owned)
        .or_else(|| url_host(line))?;
    if registry_is_loopback(&addr) {
        Some(addr)
    } else {
        None
    }
}

/// The `uname -m` machine of an `EM: <n>` ELF machine number in a linker
/// message (62 is x86_64, 183 is aarch64, per the ELF `e_machine` table).
fn elf_machine(lower: &str) -> Option<&'static str> {
    let n = between(lower, "(em: ", ")")?;
    match n.trim() {
        "62" => Some("x86_64"),
        "183" => Some("aarch64"),
        _ => None,
    }
}

/// Whether a registry (`host[:port][/path]`, optionally with a scheme) is on
/// the loopback interface: `localhost`, `127.0.0.0/8` or `::1` (`[::1]:5000`),
/// as containerd's `docker.MatchLocalhost` decides which registries BuildKit
/// may use over plain HTTP; dockerd likewise trusts `127.0.0.0/8` without
/// configuration. Any other host over plain HTTP needs explicit
/// configuration (case M5).
pub fn registry_is_loopback(registry: &str) -> bool {
    let r = registry.trim().to_ascii_lowercase();
    let r = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))
        .unwrap_or(&r);
    let hostport = r.split('/').next().unwrap_or("");
    let host = if let Some(rest) = hostport.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, _)) => h,
            None => return false,
        }
    } else if hostport.matches(':').count() == 1 {
        hostport.split(':').next().unwrap_or("")
    } else {
        hostport
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The delays before each retry, for `attempts` total attempts: bounded
/// exponential backoff of 1s, 2s, 4s. `attempts` is clamped to
/// 1..=[`MAX_ATTEMPTS`], so there are at most three retries (`retry_delays(4)`
/// and `retry_delays(9)` both give `[1s, 2s, 4s]`; `retry_delays(1)` none).
pub fn retry_delays(attempts: u32) -> Vec<Duration> {
    let attempts = attempts.clamp(1, MAX_ATTEMPTS);
    (0..attempts - 1)
        .map(|i| FIRST_DELAY * 2u32.pow(i))
        .collect()
}

/// The line of a failure's output worth quoting: the last one mentioning
/// `error`, else the last non-empty one, cut to 160 characters.
pub fn reason(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines
        .iter()
        .rev()
        .find(|l| l.to_ascii_lowercase().contains("error"))
        .or_else(|| lines.last())
        .copied()
        .unwrap_or("(no output)");
    match line.char_indices().nth(160) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_owned(),
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Runs `f` up to `attempts` times (clamped as [`retry_delays`]), retrying
/// only failures [`is_transient`] accepts. Before each retry it calls
/// `wait(line, delay)` with `line` like
/// `retrying push in 2s (attempt 3/4): <reason>`; [`retry`] prints the line
/// and sleeps. `f` returns the command's standard error on failure.
///
/// Errors: the last standard error, unchanged (pass it to [`explain`]).
pub fn retry_with<T>(
    what: &str,
    attempts: u32,
    mut wait: impl FnMut(&str, Duration),
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let delays = retry_delays(attempts);
    let total = delays.len() + 1;
    let mut attempt = 1;
    loop {
        let err = match f() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if attempt == total || !is_transient(&err) {
            return Err(err);
        }
        let delay = delays[attempt - 1];
        attempt += 1;
        let line = format!(
            "retrying {what} in {} (attempt {attempt}/{total}): {}",
            seconds(delay),
            reason(&err)
        );
        wait(&line, delay);
    }
}

/// [`retry_with`] that prints each retry line to standard error and sleeps.
pub fn retry<T>(
    what: &str,
    attempts: u32,
    f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    retry_with(
        what,
        attempts,
        |line, delay| {
            eprintln!("{line}");
            std::thread::sleep(delay);
        },
        f,
    )
}

/// Echoes and runs `cmd` (a registry operation), retrying transient
/// failures as [`retry`] does; its output is shown. A final failure is an
/// error naming `what`, the reason and, when known, the fix ([`explain`]).
pub fn run_retrying(sh: &xshell::Shell, cmd: &crate::plan::Cmd, what: &str) -> anyhow::Result<()> {
    retry(what, MAX_ATTEMPTS, || {
        cmd.echo();
        let out = cmd.capture(sh).map_err(|e| e.to_string())?;
        eprint!("{}{}", out.stdout, out.stderr);
        if out.ok {
            Ok(())
        } else {
            Err(out.stderr)
        }
    })
    .map_err(|stderr| {
        let hint = explain(&stderr)
            .map(|h| format!("\n{h}"))
            .unwrap_or_default();
        anyhow::anyhow!("{what} failed: {}{hint}", reason(&stderr))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded messages that should be retried.
    const TRANSIENT_CASES: &[&str] = &[
        "ERROR: failed to push localhost:5000/brokkr-broker:sha-1a2b3c4-amd64: failed to copy: unexpected status from PUT request to https://ghcr.io/v2/acme/brokkr-broker/blobs/uploads/abc: 500 Internal Server Error",
        "error: failed to solve: failed to do request: Head \"https://ghcr.io/v2/acme/brokkr-agent/manifests/sha-1a2b3c4-arm64\": 502 Bad Gateway",
        "ERROR: failed to push ghcr.io/acme/brokkr-agent:sha-1a2b3c4-arm64: unexpected status: 503 Service Unavailable",
        "received unexpected HTTP status: 504 Gateway Time-out",
        "ERROR: unexpected status code 502",
        "failed to copy: httpReadSeeker: failed open: unexpected status code https://ghcr.io/v2/acme/brokkr-broker/blobs/sha256:dc14: 429 Too Many Requests - Server message: toomanyrequests: retry-after: 1.2ms",
        "ERROR: failed to solve: DeadlineExceeded: failed to fetch oauth token: Post \"https://auth.docker.io/token\": dial tcp 54.227.20.253:443: i/o timeout",
        "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": net/http: TLS handshake timeout",
        "failed to do request: Put \"https://ghcr.io/v2/acme/brokkr-broker/manifests/sha-1a2b3c4-amd64\": read tcp 10.1.0.4:51422->140.82.112.34:443: read: connection reset by peer",
        "ERROR: failed to solve: failed to do request: Head \"https://ghcr.io/v2/acme/brokkr-broker/blobs/sha256:dc14934a\": EOF",
        "error: failed to copy: read tcp: unexpected EOF while reading from registry https://ghcr.io",
        "ERROR: failed to solve: failed to compute cache key: failed to copy: context deadline exceeded",
        "Get \"https://ghcr.io/v2/\": net/http: request canceled (Client.Timeout exceeded while awaiting headers)",
    ];

    /// Recorded messages that must not be retried.
    const PERMANENT_CASES: &[&str] = &[
        "ERROR: failed to push ghcr.io/acme/brokkr-broker:sha-1a2b3c4-amd64: failed to authorize: failed to fetch oauth token: unexpected status from GET request to https://ghcr.io/token?scope=repository: 401 Unauthorized",
        "denied: requested access to the resource is denied",
        "ERROR: failed to push ghcr.io/acme/brokkr-broker:1.0: denied: permission_denied: write_package",
        "ERROR: localhost:5000/brokkr-broker:sha-1a2b3c4-arm64: manifest unknown: manifest unknown",
        "Error response from daemon: manifest for ghcr.io/acme/brokkr-agent:nope not found: manifest unknown: manifest unknown",
        "name unknown: repository name not known to registry",
        "ERROR: unexpected status code 404",
        "ERROR: failed to solve: failed to do request: Head \"https://10.0.0.5:5000/v2/brokkr-broker/blobs/sha256:dc14\": http: server gave HTTP response to HTTPS client",
        "tls: failed to verify certificate: x509: certificate signed by unknown authority",
        "ERROR: failed to solve: failed to copy: write /var/lib/buildkit/x: no space left on device",
        "exec /bin/sh: exec format error",
        "dial tcp 127.0.0.1:5000: connect: connection refused",
        // 503 with a 401 still needs a login first.
        "unexpected status: 401 Unauthorized\nretry later: 503 Service Unavailable",
        // EOF but not a registry call.
        "error: unexpected end of file: EOF",
        "",
    ];

    #[test]
    fn transient_errors() {
        for s in TRANSIENT_CASES {
            assert!(is_transient(s), "should retry: {s}");
        }
        for s in PERMANENT_CASES {
            assert!(!is_transient(s), "should not retry: {s}");
        }
    }

    #[test]
    fn explanations() {
        // (stderr, cause, words the what+fix must contain)
        let cases: &[(&str, Cause, &[&str])] = &[
            (
                "#12 112.3 qemu: uncaught target signal 11 (Segmentation fault) - core dumped\n#12 ERROR: process \"/bin/sh -c cargo build --release\" did not complete successfully: exit code: 139",
                Cause::EmulatorCrash,
                &["QEMU", "--strategy cross", "cargo xtask setup"],
            ),
            (
                "error: could not compile `serde` (lib)\nCaused by:\n  process didn't exit successfully: `rustc ...` (signal: 11, SIGSEGV: invalid memory reference)\nqemu-aarch64: emulation failed",
                Cause::EmulatorCrash,
                &["--strategy cross"],
            ),
            (
                "#8 [linux/arm64 build 3/7] RUN apt-get update\n#8 0.101 exec /bin/sh: exec format error\nERROR: failed to solve: process \"/bin/sh -c apt-get update\" did not complete successfully: exit code: 1",
                Cause::NoBinfmt,
                &["cargo xtask setup", "QEMU"],
            ),
            (
                "ERROR: docker exporter does not currently support exporting manifest lists",
                Cause::MultiPlatformLoad,
                &["one platform", "--push", "containerd image store", "docker-container"],
            ),
            (
                "ERROR: Multi-platform build is not supported for the docker driver.\nSwitch to a different driver, or turn on the containerd image store, and try again.",
                Cause::MultiPlatformLoad,
                &["--load"],
            ),
            (
                "ERROR: failed to solve: failed to push 10.0.0.5:5000/brokkr-broker:sha-1a2b3c4-amd64: failed to do request: Head \"https://10.0.0.5:5000/v2/brokkr-broker/blobs/sha256:dc14\": http: server gave HTTP response to HTTPS client",
                Cause::PlainHttpRegistry,
                &["10.0.0.5:5000 speaks plain HTTP", "only a loopback registry", "insecure-registries", "/etc/docker/daemon.json", "[registry.\"10.0.0.5:5000\"] http = true"],
            ),
            (
                "Error response from daemon: Get \"https://registry.lan:5000/v2/\": tls: failed to verify certificate: x509: certificate signed by unknown authority",
                Cause::UnknownCa,
                &["registry.lan:5000", "/etc/docker/certs.d/registry.lan:5000/ca.crt"],
            ),
            (
                "npm ERR! self-signed certificate in certificate chain",
                Cause::UnknownCa,
                &["--ca-bundle"],
            ),
            (
                "#14 0.9 warning: spurious network error: [60] SSL peer certificate or SSH remote key was not OK (SSL certificate problem: self-signed certificate in certificate chain)",
                Cause::UnknownCa,
                &["--ca-bundle", "proxy"],
            ),
            (
                "ERROR: failed to solve: failed to copy: write /var/lib/docker/buildkit/content/ingest/x/data: no space left on device",
                Cause::DiskFull,
                &["docker builder prune"],
            ),
            (
                "ERROR: failed to solve: failed to resolve source metadata for docker.io/library/rust:1.85-bookworm: failed to do request: Head \"https://registry-1.docker.io/v2/library/rust/manifests/1.85-bookworm\": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: server misbehaving",
                Cause::UpstreamUnreachable,
                &["--bases local"],
            ),
            (
                "error: linking with `cc` failed: exit status: 1\n  = note: /usr/bin/ld: /work/target/aarch64-unknown-linux-gnu/release/deps/brokkr_broker-1.o: Relocations in generic ELF (EM: 183)\n          /usr/bin/ld: error adding symbols: file in wrong format",
                Cause::CrossLinkerMissing,
                &["aarch64-unknown-linux-gnu", "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc", "--strategy cross"],
            ),
            (
                "/usr/bin/ld: main.o: Relocations in generic ELF (EM: 62)",
                Cause::CrossLinkerMissing,
                &["CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc"],
            ),
            (
                "error: linker `aarch64-linux-gnu-gcc` not found\n  |\n  = note: No such file or directory (os error 2)",
                Cause::LinkerNotFound,
                &["`aarch64-linux-gnu-gcc`", "apt-get install gcc-aarch64-linux-gnu"],
            ),
            (
                "ERROR: failed to push ghcr.io/acme/brokkr-broker:sha-1a2b3c4-amd64: unexpected status from HEAD request to https://ghcr.io/v2/acme/brokkr-broker/blobs/sha256:dc14: 401 Unauthorized",
                Cause::AuthRequired,
                &["docker login ghcr.io"],
            ),
            (
                "denied: requested access to the resource is denied",
                Cause::AuthRequired,
                &["docker login <registry>"],
            ),
            (
                "ERROR: localhost:5000/brokkr-broker:sha-1a2b3c4-arm64: manifest unknown: manifest unknown",
                Cause::NotFound,
                &["--push"],
            ),
            (
                "ERROR: failed to solve: failed to do request: Head \"http://localhost:5000/v2/brokkr-broker/manifests/x\": dial tcp 127.0.0.1:5000: connect: connection refused",
                Cause::LoopbackUnreachable,
                &["127.0.0.1:5000", "cargo xtask registry start", "network=host"],
            ),
        ];
        for (stderr, cause, words) in cases {
            let h = explain(stderr).unwrap_or_else(|| panic!("no hint for: {stderr}"));
            assert_eq!(h.cause, *cause, "{stderr}");
            assert!(!h.what.contains('\n'), "what must be one line: {}", h.what);
            let text = h.to_string();
            for w in *words {
                assert!(text.contains(w), "hint for {stderr:?} lacks {w:?}:\n{text}");
            }
        }
    }

    #[test]
    fn loopback_plain_http_says_so() {
        let h = explain(
            "Get \"https://localhost:5000/v2/\": http: server gave HTTP response to HTTPS client",
        )
        .unwrap();
        assert_eq!(
            h.what,
            "the registry localhost:5000 speaks plain HTTP but was contacted over HTTPS"
        );
    }

    #[test]
    fn unknown_failures_have_no_hint() {
        for s in [
            "",
            "error[E0425]: cannot find value `x` in this scope",
            "dial tcp 10.0.0.5:5000: connect: connection refused",
        ] {
            assert_eq!(explain(s), None, "{s}");
        }
    }

    #[test]
    fn loopback_registries() {
        let cases: &[(&str, bool)] = &[
            ("localhost", true),
            ("localhost:5000", true),
            ("LOCALHOST:5000/brokkr", true),
            ("127.0.0.1:5000", true),
            ("127.1.2.3", true),
            ("[::1]:5000", true),
            ("::1", true),
            ("http://localhost:5000", true),
            ("10.0.0.5:5000", false),
            ("ghcr.io/acme", false),
            ("localhost.example.com:5000", false),
            ("128.0.0.1:5000", false),
            ("[::2]:5000", false),
            ("[::1", false),
            ("", false),
        ];
        for (r, want) in cases {
            assert_eq!(registry_is_loopback(r), *want, "{r}");
        }
    }

    #[test]
    fn delays() {
        let s = Duration::from_secs;
        assert_eq!(retry_delays(0), []);
        assert_eq!(retry_delays(1), []);
        assert_eq!(retry_delays(2), [s(1)]);
        assert_eq!(retry_delays(4), [s(1), s(2), s(4)]);
        assert_eq!(retry_delays(100), [s(1), s(2), s(4)]);
    }

    #[test]
    fn retries_transient_then_succeeds() {
        let mut calls = 0;
        let mut waits = Vec::new();
        let got = retry_with(
            "push",
            4,
            |line, d| waits.push((line.to_owned(), d)),
            || {
                calls += 1;
                if calls < 3 {
                    Err(
                        "#14 exporting to image\nERROR: failed to push: 502 Bad Gateway\n"
                            .to_owned(),
                    )
                } else {
                    Ok(calls)
                }
            },
        );
        assert_eq!(got, Ok(3));
        assert_eq!(
            waits,
            [
                (
                    "retrying push in 1s (attempt 2/4): ERROR: failed to push: 502 Bad Gateway"
                        .to_owned(),
                    Duration::from_secs(1)
                ),
                (
                    "retrying push in 2s (attempt 3/4): ERROR: failed to push: 502 Bad Gateway"
                        .to_owned(),
                    Duration::from_secs(2)
                ),
            ]
        );
    }

    #[test]
    fn gives_up_after_the_last_attempt() {
        let mut calls = 0;
        let mut waits = 0;
        let got: Result<(), String> = retry_with(
            "inspect",
            4,
            |_, _| waits += 1,
            || {
                calls += 1;
                Err(format!("i/o timeout #{calls}"))
            },
        );
        assert_eq!(got, Err("i/o timeout #4".to_owned()));
        assert_eq!((calls, waits), (4, 3));
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let mut calls = 0;
        let got: Result<(), String> = retry_with(
            "push",
            4,
            |_, _| panic!("must not wait"),
            || {
                calls += 1;
                Err("denied: requested access to the resource is denied".to_owned())
            },
        );
        assert!(got.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn reason_picks_the_error_line() {
        assert_eq!(reason("#1 building\nERROR: boom\n#2 done\n"), "ERROR: boom");
        assert_eq!(reason("a\n\nb\n"), "b");
        assert_eq!(reason(""), "(no output)");
        assert_eq!(reason(&"é".repeat(200)).chars().count(), 163);
    }
}
