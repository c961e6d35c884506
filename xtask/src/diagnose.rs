//! Diagnosis of docker, buildx, registry and cargo failures from their standard error: which ones
//! are worth retrying ([`is_transient`]), and what to do about the others ([`explain`], a table of
//! pattern -> cause and remedy). Pure functions over `&str`, matched case-insensitively.

use std::{fmt, net::IpAddr, time::Duration};

use anyhow::{anyhow, ensure, Result};
use xshell::Shell;

use crate::{
    plan::{Captured, Cmd},
    project::{AUTH_PORT, LOCAL_REGISTRY, PLATFORMS},
};

/// [`retry_with`]: one try and three retries, 1 s before the first, doubling.
pub const MAX_ATTEMPTS: u32 = 4;

/// Failures retrying cannot fix (with [`AUTH`] and [`NOT_FOUND`]); they win over [`TRANSIENT`].
const PERMANENT: &[&str] = &[
    "404 not found",
    "x509: ",
    "server gave http response to https client",
    "no space left on device",
    "exec format error",
];

/// Failures that usually pass, in Go's `net/http` wording as docker and buildx print it.
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

/// Whether a failed registry command is worth retrying: HTTP 5xx and 429, timeouts, resets, an
/// `EOF` on a registry request; never with a [`PERMANENT`] phrase or a 401/403/404 status.
pub fn is_transient(stderr: &str) -> bool {
    let lower = &stderr.to_ascii_lowercase();
    // HTTP status codes: `status: 503`, `status code 503`, `status 503`, `statuscode=503`, `http 503`.
    let prefixes = ["status: ", "status code: ", "status code ", "status ", "statuscode=", "http "];
    let after = |p: &'static str| lower.match_indices(p).map(move |(i, _)| &lower[i + p.len()..]);
    let code = |rest: &str| {
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        rest[..n].parse().ok().filter(|_| n == 3)
    };
    let statuses: Vec<u16> = prefixes.into_iter().flat_map(after).filter_map(code).collect();
    // A line ending a registry request with Go's `EOF` / `unexpected EOF`.
    let registry_eof = |l: &str| {
        (l.trim_end().ends_with(": eof") || l.contains("unexpected eof"))
            && ["http://", "https://", "request", "registry", "/v2/"].iter().any(|p| l.contains(p))
    };
    let permanent = PERMANENT.iter().chain(AUTH).chain(NOT_FOUND).any(|p| lower.contains(p))
        || statuses.iter().any(|s| [401, 403, 404].contains(s));
    !permanent
        && (TRANSIENT.iter().any(|p| lower.contains(p))
            || statuses.iter().any(|s| *s == 429 || (500..=599).contains(s))
            || lower.lines().any(registry_eof))
}

/// The kind of failure a [`Hint`] explains (the cases B1, B2, B6, B8, M5 among them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    EmulatorCrash,
    NoBinfmt,
    MultiPlatformLoad,
    PlainHttpRegistry,
    UnknownCa,
    DiskFull,
    AuthRequired,
    NotFound,
    LoopbackUnreachable,
    UpstreamUnreachable,
    UnknownHost,
    CrossLinkerMissing,
    LinkerNotFound,
}

/// What went wrong (one line) and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    pub cause: Cause,
    pub what: String,
    pub fix: String,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\nfix: {}", self.what, self.fix)
    }
}

/// An extra condition on a [`Rule`]: (whether the host the message names is on loopback, whether
/// it is a download inside a build (cargo/curl/npm), not the engine's x509 error).
type Guard = fn(bool, bool) -> bool;
const ALWAYS: Guard = |_, _| true;

/// One diagnosis: every group of `all` must have a phrase in the message. `what` and `fix` may
/// hold `{host}`, `{start}`, `{target}`, `{var}`, `{linker}`, `{install}`, filled by [`facts`].
struct Rule {
    cause: Cause,
    all: &'static [&'static [&'static str]],
    guard: Guard,
    what: &'static str,
    fix: &'static str,
}

const PLAIN_HTTP_FIX: &str = "add \"{host}\" to `insecure-registries` in /etc/docker/daemon.json and restart \
     dockerd (docker driver), or give the builder a buildkitd.toml with `[registry.\"{host}\"] http = true` \
     (`docker buildx create --buildkitd-config FILE`); or serve it with TLS";
const UNTRUSTED: &[&str] = &[
    "certificate signed by unknown authority",
    "self-signed certificate in certificate chain",
    "unable to get local issuer certificate",
];
const NOT_FOUND: &[&str] =
    &["manifest unknown", "manifest_unknown", "name unknown", "name_unknown"];
const AUTH: &[&str] = &[
    "401 unauthorized",
    "unauthorized: ",
    "authentication required",
    "denied: ",
    "requested access to the resource is denied",
    "insufficient_scope",
    "403 forbidden",
];

/// Most specific first; the first that matches wins.
const RULES: &[Rule] = &[
    Rule { cause: Cause::EmulatorCrash, all: &[&["qemu"], &["uncaught target signal", "sigsegv", "segmentation fault"]],
        guard: ALWAYS,
        what: "the emulator (QEMU) crashed running a foreign binary",
        fix: "use the default cross strategy (`--strategy cross`) or a newer QEMU (`cargo xtask setup`)" },
    Rule { cause: Cause::NoBinfmt, all: &[&["exec format error"]], guard: ALWAYS,
        what: "a foreign-architecture binary could not run: no binfmt (QEMU) handler is registered for it",
        fix: "run `cargo xtask setup` (registers QEMU), or build with `--strategy cross`" },
    Rule { cause: Cause::MultiPlatformLoad, all: &[&[
            "docker exporter does not currently support exporting manifest lists",
            "multi-platform build is not supported for the docker driver",
            "multiple platforms feature is currently not supported for docker driver"]], guard: ALWAYS,
        what: "the `docker` driver without the containerd image store cannot load a multi-platform image",
        fix: "build one platform with `--load`, or `--push` to a registry, or enable the containerd image store / \
              use a docker-container builder (`docker buildx create --use`)" },
    Rule { cause: Cause::PlainHttpRegistry, all: &[&["server gave http response to https client"]], guard: |loopback, _| loopback,
        what: "the registry {host} speaks plain HTTP but was contacted over HTTPS", fix: PLAIN_HTTP_FIX },
    Rule { cause: Cause::PlainHttpRegistry, all: &[&["server gave http response to https client"]], guard: |loopback, _| !loopback,
        what: "the registry {host} speaks plain HTTP; only a loopback registry (localhost, 127.0.0.1) is used \
               over plain HTTP without configuration", fix: PLAIN_HTTP_FIX },
    Rule { cause: Cause::UnknownCa, all: &[UNTRUSTED], guard: |_, in_build| in_build,
        what: "a download inside the build met a TLS certificate from an authority the builder image does not \
               trust (a TLS-intercepting proxy?)",
        fix: "pass the CA bundle that trusts it: `--ca-bundle FILE` (default: $SSL_CERT_FILE, else the host's \
              /etc/ssl/certs/ca-certificates.crt)" },
    Rule { cause: Cause::UnknownCa, all: &[UNTRUSTED], guard: ALWAYS,
        what: "the TLS certificate of {host} is signed by an authority the Docker engine does not trust",
        fix: "install the registry's CA as /etc/docker/certs.d/{host}/ca.crt (docker driver), or give the builder \
              a buildkitd.toml with `[registry.\"{host}\"] ca = [\"/path/ca.pem\"]`" },
    Rule { cause: Cause::DiskFull, all: &[&["no space left on device"]], guard: ALWAYS,
        what: "the disk holding Docker's data (or the build cache) is full",
        fix: "free space: `docker builder prune` and `docker image prune`; `docker system df` shows usage" },
    Rule { cause: Cause::AuthRequired, all: &[AUTH], guard: ALWAYS,
        what: "the registry {host} refused the request: not logged in, or not allowed to push there",
        fix: "`docker login {host}` (in GitHub Actions: docker/login-action, and `packages: write` for ghcr.io)" },
    Rule { cause: Cause::NotFound, all: &[NOT_FOUND], guard: ALWAYS,
        what: "the image reference does not exist in the registry",
        fix: "push the per-platform images first (`cargo xtask build-image --push` or `cargo xtask images --push`), \
              and check registry, name and tag" },
    Rule { cause: Cause::LoopbackUnreachable, all: &[&["connection refused"]], guard: |loopback, _| loopback,
        what: "nothing answers at {host}: the local registry is not running, or the builder runs in a container \
               whose localhost is not this host's",
        fix: "{start}; a docker-container builder needs `--driver-opt network=host` to reach it" },
    Rule { cause: Cause::UpstreamUnreachable, all: &[&[
            "failed to resolve source metadata for docker.io/", "failed to resolve source metadata for gcr.io/",
            "lookup registry-1.docker.io", "lookup gcr.io", "lookup auth.docker.io",
            "lookup production.cloudflare.docker.com"]], guard: ALWAYS,
        what: "the upstream base images (Docker Hub, gcr.io) cannot be reached",
        fix: "use the local substitutes built from Debian's archive: `--bases local` (see `cargo xtask base-images`)" },
    Rule { cause: Cause::UnknownHost, all: &[&["no such host"]], guard: ALWAYS,
        what: "the host name of {host} does not resolve",
        fix: "check the registry name you gave (--registry / BROKKR_REGISTRY) and this host's DNS" },
    Rule { cause: Cause::CrossLinkerMissing, all: &[&["relocations in generic elf"]], guard: ALWAYS,
        what: "objects compiled for {target} were linked by the host linker: no cross linker is configured",
        fix: "set {var}={linker} (the default `--strategy cross` does), and install {linker}" },
    Rule { cause: Cause::LinkerNotFound, all: &[&["error: linker `"], &["` not found"]], guard: ALWAYS,
        what: "the linker `{linker}` is not installed",
        fix: "{install}; `cargo xtask doctor` lists what is missing" },
];

/// The first rule of [`RULES`] matching a failure's standard error.
pub fn explain(stderr: &str) -> Option<Hint> {
    let lower = stderr.to_ascii_lowercase();
    let dialled = between(&lower, "dial tcp ", ": connect").map(str::to_owned);
    let host = match lower.contains("connection refused") {
        true => dialled.or_else(|| url_host(&lower)),
        false => url_host(&lower).or(dialled),
    };
    let loopback = host.as_deref().is_some_and(registry_is_loopback);
    let in_build =
        ["ssl certificate problem", "crates.io", "npm err"].iter().any(|p| lower.contains(p))
            || !lower.contains("x509");
    let rule = RULES.iter().find(|r| {
        r.all.iter().all(|any| any.iter().any(|p| lower.contains(p)))
            && (r.guard)(loopback, in_build)
    })?;
    let facts = facts(stderr, &lower, host.as_deref());
    let fill = |s: &str| facts.iter().fold(s.to_owned(), |s, (k, v)| s.replace(k, v));
    Some(Hint { cause: rule.cause, what: fill(rule.what), fix: fill(rule.fix) })
}

/// The `{placeholder}` values of [`RULES`], read from the message.
fn facts(stderr: &str, lower: &str, host: Option<&str>) -> [(&'static str, String); 6] {
    // The ELF machine of "Relocations in generic ELF (EM: 183)".
    let em = between(lower, "(em: ", ")").map(str::trim);
    let machine = [("62", "x86_64"), ("183", "aarch64")].into_iter().find(|m| em == Some(m.0));
    let platform = PLATFORMS.iter().find(|p| machine.is_some_and(|m| m.1 == p.machine));
    let target = platform.map_or("<target>", |p| p.rust_target);
    let var = format!("CARGO_TARGET_{}_LINKER", target.to_ascii_uppercase().replace('-', "_"));
    let missing = between(stderr, "linker `", "`").unwrap_or("<linker>");
    let prefix = missing.strip_suffix("-gcc").filter(|p| !p.is_empty());
    let apt = prefix.map(|p| format!(" (Debian/Ubuntu: `apt-get install gcc-{p}`)"));
    let install = format!("install it{}", apt.unwrap_or_default());
    let linker = match lower.contains("relocations in generic elf") {
        true => platform.map_or("<prefix>-gcc".into(), |p| format!("{}-gcc", p.gnu_prefix)),
        false => missing.to_owned(),
    };
    let host = host.unwrap_or("<registry>");
    // `cargo xtask registry start` serves :5000 (`--auth`: :5001); for another port, one's own.
    let port = |h: &str| h.rsplit_once(':').map(|(_, p)| p.to_owned());
    let start = match port(host) {
        p if p == port(LOCAL_REGISTRY) => "`cargo xtask registry start`".to_owned(),
        Some(p) if p == AUTH_PORT.to_string() => "`cargo xtask registry start --auth`".to_owned(),
        _ => format!(
            "start a registry listening on {host} (e.g. `docker-registry serve CONFIG` with `http.addr` on that port), \
             or use `--registry {LOCAL_REGISTRY}`, where `cargo xtask registry start` runs one"
        ),
    };
    [
        ("{host}", host.into()),
        ("{start}", start),
        ("{target}", target.into()),
        ("{var}", var),
        ("{linker}", linker),
        ("{install}", install),
    ]
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    Some(s.split_once(start)?.1.split_once(end)?.0)
}

/// host:port of the first URL.
fn url_host(lower: &str) -> Option<String> {
    let start =
        ["https://", "http://"].iter().filter_map(|p| lower.find(p).map(|i| i + p.len())).min()?;
    let host = lower[start..].split(['/', '"', '\'', ' ', '?', '#']).next()?;
    (!host.is_empty()).then(|| host.to_owned())
}

/// Whether a registry (`host[:port][/path]`, maybe with a scheme) is on loopback, as containerd's
/// `docker.MatchLocalhost` decides where BuildKit may use plain HTTP (case M5).
pub fn registry_is_loopback(registry: &str) -> bool {
    let r = registry.trim().to_ascii_lowercase();
    let r = r.strip_prefix("https://").or_else(|| r.strip_prefix("http://")).unwrap_or(&r);
    let hostport = r.split('/').next().unwrap_or("");
    let host = match hostport.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map(|(h, _)| h),
        None if hostport.matches(':').count() == 1 => hostport.split(':').next(),
        None => Some(hostport),
    };
    host.is_some_and(|h| h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
}

/// Backoff before each retry (1s, 2s, 4s) for `attempts` in all, clamped to 1..=[`MAX_ATTEMPTS`].
pub fn retry_delays(attempts: u32) -> Vec<Duration> {
    let attempts = attempts.clamp(1, MAX_ATTEMPTS);
    (0..attempts - 1).map(|i| Duration::from_secs(1 << i)).collect()
}

/// The line of a failure's output worth quoting: the last one mentioning `error`, else the last
/// non-empty one, cut to 160 characters.
pub fn reason(stderr: &str) -> String {
    let lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let error = lines.clone().rfind(|l| l.to_ascii_lowercase().contains("error"));
    cut(error.or_else(|| lines.clone().next_back()).unwrap_or("(no output)"), 160)
}

/// The first `max` characters of `s`, `...` marking a cut.
pub fn cut(s: &str, max: usize) -> String {
    s.char_indices().nth(max).map_or_else(|| s.to_owned(), |(i, _)| format!("{}...", &s[..i]))
}

/// Runs `f` (failing with the standard error) up to `attempts` times, retrying what
/// [`is_transient`] accepts after `wait("retrying push in 2s (attempt 3/4): <reason>", delay)`.
pub fn retry_with<T>(
    what: &str,
    attempts: u32,
    mut wait: impl FnMut(&str, Duration),
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let delays = retry_delays(attempts);
    for (attempt, delay) in (2..).zip(&delays) {
        match f() {
            Err(e) if is_transient(&e) => {
                let (total, why) = (delays.len() + 1, reason(&e));
                let line =
                    format!("retrying {what} in {delay:?} (attempt {attempt}/{total}): {why}");
                wait(&line, *delay);
            }
            done => return done,
        }
    }
    f()
}

impl Cmd {
    /// Echoes and runs a registry operation, its output shown, retrying transient failures
    /// ([`retry_with`]); a final failure names `what`, the reason and the fix ([`explain`]).
    pub fn run_retrying(&self, sh: &Shell, what: &str) -> Result<()> {
        let out = self.capture_retrying(sh, what, true)?;
        let hint = explain(&out.stderr).map(|h| format!("\n{h}")).unwrap_or_default();
        ensure!(out.ok, "{what} failed: {}{hint}", reason(&out.stderr));
        Ok(())
    }

    /// [`Cmd::capture`], retried while it fails transiently; `show`: echo the command and print its
    /// output. The last output, failed or not, is for the caller to judge.
    pub fn capture_retrying(&self, sh: &Shell, what: &str, show: bool) -> Result<Captured> {
        let wait = |line: &str, delay| {
            eprintln!("{line}");
            std::thread::sleep(delay);
        };
        let mut last = None;
        let done = retry_with(what, MAX_ATTEMPTS, wait, || {
            last = None;
            if show {
                self.echo();
            }
            let out = last.insert(self.capture(sh).map_err(|e| e.to_string())?);
            if show {
                eprint!("{}{}", out.stdout, out.stderr);
            }
            out.ok.then_some(()).ok_or_else(|| out.stderr.clone())
        });
        last.ok_or_else(|| anyhow!("{what} failed: {}", done.err().unwrap_or_default()))
    }
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
                    Err("#14 exporting to image\nERROR: failed to push: 502 Bad Gateway\n"
                        .to_owned())
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
