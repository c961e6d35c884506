//! `brokkr-broker healthcheck`: one HTTP/1.1 GET over a std `TcpStream`.
//!
//! Std-only on purpose: it is the image's Docker `HEALTHCHECK` (no shell in the image)
//! and runs every few seconds, so it starts no async runtime. Plain `http://` only.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Limit for each of connect, send and receive.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Probes `url` and prints one line: to stdout and exit 0 on HTTP 200, to stderr and
/// exit 1 otherwise (bad URL, unreachable, timeout, other status). Never exits 2,
/// which Docker reserves.
pub fn run(url: &str) -> ExitCode {
    match get_status(url) {
        Ok(200) => {
            println!("healthy: {url} answered 200");
            ExitCode::SUCCESS
        }
        Ok(code) => fail(url, &format!("HTTP {code}")),
        Err(why) => fail(url, &why),
    }
}

fn fail(url: &str, why: &str) -> ExitCode {
    eprintln!("unhealthy: {url}: {why}");
    ExitCode::FAILURE
}

/// GETs `url` and returns the response's status code. Errors are one-line reasons.
fn get_status(url: &str) -> Result<u16, String> {
    let (authority, host, port, path) = split_url(url)?;
    let addrs = (host, port).to_socket_addrs();
    let addrs = addrs.map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} resolved to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(stream) => return exchange(stream, authority, path),
            Err(e) => last = format!("connect {addr}: {e}"),
        }
    }
    Err(last)
}

fn exchange(mut stream: TcpStream, authority: &str, path: &str) -> Result<u16, String> {
    let io = |e: std::io::Error| e.to_string();
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).map_err(io)?;
    status_code(&line).ok_or_else(|| format!("not an HTTP response: {:?}", line.trim_end()))
}

/// Splits `http://host[:port][/path]` into (authority, host, port, path); the port
/// defaults to 80, the path to `/`; an IPv6 host is bracketed (`http://[::1]:3000/`)
/// and returned without brackets. Errors name what is wrong and the expected form.
fn split_url(url: &str) -> Result<(&str, &str, u16, &str), String> {
    let form = "expected http://HOST[:PORT][/PATH] (no TLS)";
    let rest = url.strip_prefix("http://").ok_or(format!("unsupported URL {url:?}: {form}"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().map_err(|_| format!("bad port {p:?}"))?),
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("no host in {url:?}: {form}"));
    }
    Ok((authority, host, port, if path.is_empty() { "/" } else { path }))
}

/// The code in an HTTP/1.x status line (`HTTP/1.1 200 OK`), if it is one.
fn status_code(line: &str) -> Option<u16> {
    let mut words = line.split_whitespace();
    let version = words.next()?;
    let code = words.next()?;
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let cases = [
            ("http://127.0.0.1:3000/healthz", ("127.0.0.1:3000", "127.0.0.1", 3000, "/healthz")),
            ("http://broker:3000", ("broker:3000", "broker", 3000, "/")),
            ("http://broker/a/b?c=d", ("broker", "broker", 80, "/a/b?c=d")),
            ("http://[::1]:8080/healthz", ("[::1]:8080", "::1", 8080, "/healthz")),
            ("http://[::1]/", ("[::1]", "::1", 80, "/")),
        ];
        for (url, want) in cases {
            assert_eq!(split_url(url), Ok(want), "{url}");
        }
    }

    #[test]
    fn rejects_bad_urls() {
        let cases = [
            ("https://broker/healthz", "unsupported URL"),
            ("broker:3000", "unsupported URL"),
            ("http://broker:http/", "bad port"),
            ("http://broker:70000/", "bad port"),
            ("http:///healthz", "no host"),
        ];
        for (url, want) in cases {
            let err = split_url(url).unwrap_err();
            assert!(err.contains(want), "{url}: {err}");
        }
    }

    #[test]
    fn reads_status_lines() {
        let cases = [
            ("HTTP/1.1 200 OK\r\n", Some(200)),
            ("HTTP/1.0 503 Service Unavailable\r\n", Some(503)),
            ("HTTP/1.1 204\r\n", Some(204)),
            ("SSH-2.0-OpenSSH_9.6\r\n", None),
            ("HTTP/1.1 2000 OK\r\n", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(status_code(line), want, "{line:?}");
        }
    }
}
