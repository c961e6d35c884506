//! The agent's job: poll the broker's `/healthz` and log when its state changes.

use std::time::Duration;

use hyper::Uri;
use tokio::time::MissedTickBehavior;

use crate::probe::Prober;

/// What a probe result means next to the previous one; only these are logged.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// The first probe found the broker up.
    FirstUp,
    /// The first probe found the broker down.
    FirstDown,
    /// Up before, down now.
    WentDown,
    /// Down before, up now.
    CameUp,
}

/// The event for a probe that found the broker `up` after `last` (`None` before the
/// first probe); `None` when nothing changed.
fn event(last: Option<bool>, up: bool) -> Option<Event> {
    match (last, up) {
        (None, true) => Some(Event::FirstUp),
        (None, false) => Some(Event::FirstDown),
        (Some(true), false) => Some(Event::WentDown),
        (Some(false), true) => Some(Event::CameUp),
        (Some(_), _) => None,
    }
}

/// Probes `url` at once and then every `every` (a slow probe delays the next one
/// rather than bunching them), forever; logs the first state and each change only,
/// a down state with its reason.
pub async fn watch(prober: Prober, url: Uri, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        ticker.tick().await;
        let result = prober.check(&url).await;
        let up = result.is_ok();
        let why = result.err().unwrap_or_default();
        match event(last, up) {
            Some(Event::FirstUp) => tracing::info!(%url, "broker is up"),
            Some(Event::CameUp) => tracing::info!(%url, "broker is back up"),
            Some(Event::FirstDown) => tracing::warn!(%url, "broker is down: {why}"),
            Some(Event::WentDown) => tracing::warn!(%url, "broker went down: {why}"),
            None => {}
        }
        last = Some(up);
    }
}

/// Parses a poll interval: whole seconds (`10`) or a number with unit `ms`, `s` or
/// `m` (`500ms`, `2s`, `1m`). Zero is refused: it would busy-loop the broker.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let bad =
        || format!("bad interval {text:?}: expected seconds like `10`, or `500ms`, `2s`, `1m`");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let interval = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if interval.is_zero() {
        return Err(format!("interval {text:?} must be more than zero"));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_first_state_and_changes_only() {
        let cases = [
            (None, true, Some(Event::FirstUp)),
            (None, false, Some(Event::FirstDown)),
            (Some(true), true, None),
            (Some(false), false, None),
            (Some(true), false, Some(Event::WentDown)),
            (Some(false), true, Some(Event::CameUp)),
        ];
        for (last, up, want) in cases {
            assert_eq!(event(last, up), want, "last {last:?}, up {up}");
        }
    }

    #[test]
    fn parses_intervals() {
        let cases = [
            ("10", Ok(Duration::from_secs(10))),
            ("2s", Ok(Duration::from_secs(2))),
            ("500ms", Ok(Duration::from_millis(500))),
            ("1m", Ok(Duration::from_secs(60))),
            (" 3 ", Ok(Duration::from_secs(3))),
            ("0", Err("more than zero")),
            ("0ms", Err("more than zero")),
            ("", Err("bad interval")),
            ("s", Err("bad interval")),
            ("1.5s", Err("bad interval")),
            ("10h", Err("bad interval")),
            ("-1", Err("bad interval")),
        ];
        for (text, want) in cases {
            match (parse_interval(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{text:?}: {got}"),
                (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
