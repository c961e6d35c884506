//! HTTP GET probes through hyper-util's legacy client: plain HTTP/1.1, no TLS,
//! host names resolved by the system resolver (so Docker network aliases work).

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::Uri;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// Limit on one whole probe: resolve, connect, send, receive the response head.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// A client for repeated probes. It keeps no idle connection, so every probe
/// resolves and connects afresh, as a new client of the broker would.
pub struct Prober(Client<HttpConnector, Empty<Bytes>>);

impl Prober {
    /// A client with a [`TIMEOUT`] connect limit; needs a running tokio runtime.
    pub fn new() -> Prober {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(TIMEOUT));
        let builder = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(http);
        Prober(builder)
    }

    /// GETs `url`: `Ok(())` on HTTP 200, else a one-line reason (`HTTP 503`, the
    /// connect error and its causes, or the timeout).
    pub async fn check(&self, url: &Uri) -> Result<(), String> {
        match tokio::time::timeout(TIMEOUT, self.0.get(url.clone())).await {
            Ok(Ok(response)) if response.status() == 200 => Ok(()),
            Ok(Ok(response)) => Err(format!("HTTP {}", response.status())),
            Ok(Err(err)) => Err(causes(&err)),
            Err(_) => Err(format!("no response within {TIMEOUT:?}")),
        }
    }
}

/// `err` and its sources joined by `: ` (hyper's own message alone is just `client error (Connect)`).
fn causes(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// Probes `url` once on a fresh single-thread runtime and prints one line, naming
/// `what` and the URL: on stdout and exit 0 on HTTP 200, on stderr and exit 1
/// otherwise (never 2, which Docker's `HEALTHCHECK` reserves).
pub fn once(what: &str, url: &Uri) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(async { Prober::new().check(url).await }),
        Err(err) => Err(format!("cannot start the async runtime: {err}")),
    };
    match result {
        Ok(()) => println!("{what} {url} is up (HTTP 200)"),
        Err(why) => {
            eprintln!("{what} {url} is down: {why}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Parses an absolute `http://host[:port][/path]` URL. Errors say what form is expected;
/// `https` is refused (this client has no TLS).
pub fn http_url(text: &str) -> Result<Uri, String> {
    let form = "expected http://HOST[:PORT][/PATH] (plain HTTP, no TLS)";
    let uri: Uri = text.parse().map_err(|e| format!("bad URL {text:?} ({e}): {form}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(host)) if !host.is_empty() => Ok(uri),
        _ => Err(format!("unsupported URL {text:?}: {form}")),
    }
}

/// The broker's health endpoint under base URL `base`: its path with `/healthz`
/// appended (`http://broker:3000` and `http://broker:3000/` give
/// `http://broker:3000/healthz`). Errors as [`http_url`]; a query is refused.
pub fn healthz_url(base: &str) -> Result<Uri, String> {
    if base.contains('?') {
        return Err(format!("broker URL {base:?} must not have a query; give the base URL"));
    }
    http_url(&format!("{}/healthz", base.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_healthz_urls() {
        let cases = [
            ("http://127.0.0.1:3000", Ok("http://127.0.0.1:3000/healthz")),
            ("http://broker:3000/", Ok("http://broker:3000/healthz")),
            ("http://proxy/broker", Ok("http://proxy/broker/healthz")),
            ("http://[::1]:3000", Ok("http://[::1]:3000/healthz")),
            ("https://broker:3000", Err("unsupported URL")),
            ("broker:3000", Err("bad URL")),
            ("/healthz", Err("unsupported URL")),
            ("http://broker/?x=1", Err("must not have a query")),
            ("http://bro ker", Err("bad URL")),
        ];
        for (base, want) in cases {
            let got = healthz_url(base).map(|u| u.to_string());
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{base}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{base}: {got}"),
                (got, want) => panic!("{base}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// An error with an optional source, as hyper nests them.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn joins_error_causes() {
        let refused = Layer("Connection refused (os error 111)", None);
        let connect = Layer("tcp connect error", Some(Box::new(refused)));
        let client = Layer("client error (Connect)", Some(Box::new(connect)));
        let want = "client error (Connect): tcp connect error: Connection refused (os error 111)";
        assert_eq!(causes(&client), want);
        assert_eq!(causes(&Layer("plain", None)), "plain");
    }
}
