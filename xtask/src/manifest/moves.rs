//! Which final tags a `manifest` run may move: never backwards, whatever order CI runs finish in
//! (cases R1 and R2 of `shared/cases/releases.md`), judged by the `org.opencontainers.image.*`
//! annotations of the index each tag holds.

use std::collections::BTreeMap;

use xshell::Shell;

use crate::plan::Cmd;

/// What an index says about itself, from its OCI annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// The commit (40 hex digits).
    pub revision: Option<String>,
    /// metadata-action's `version` output for the run that wrote it (`1.2.3`, `main`, `pr-7`).
    pub version: Option<String>,
    /// RFC 3339 commit time.
    pub created: Option<String>,
}

impl Stamp {
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Stamp {
        let get = |k: &str| annotations.get(&format!("org.opencontainers.image.{k}")).cloned();
        Stamp { revision: get("revision"), version: get("version"), created: get("created") }
    }
}

/// Why `ours` may not replace what `tag` holds, or `None`: write. Nothing held or the same commit:
/// write; both versions semver (`latest`, `1.2`): only to an equal or higher one; else (branch
/// tags) not to an ancestor of the held commit (`history(a, b)`: is a an ancestor of b, `None`
/// when unknown: [`is_ancestor`]), and when the history cannot tell, the newer commit time wins.
pub fn decide(
    tag: &str,
    ours: &Stamp,
    held: Option<&Stamp>,
    history: &dyn Fn(&str, &str) -> Option<bool>,
) -> Option<String> {
    let held = held?;
    if held.revision.is_some() && held.revision == ours.revision {
        return None;
    }
    let semver = |v: &Option<String>| crate::metadata::parse_version(v.as_deref()?);
    if let (Some(o), Some(h)) = (semver(&ours.version), semver(&held.version)) {
        let lower = o.cmp_precedence(&h).is_lt();
        return lower.then(|| format!("{tag} holds version {h}, higher than this run's {o}"));
    }
    let (o, h) = (ours.revision.as_deref()?, held.revision.as_deref()?);
    let (o7, h7) = (o.get(..7).unwrap_or(o), h.get(..7).unwrap_or(h));
    if history(h, o) == Some(true) {
        return None;
    }
    if history(o, h) == Some(true) {
        return Some(format!(
            "{tag} holds commit {h7}, which is newer than {o7} (it descends from it)"
        ));
    }
    let time = |t: &Option<String>| t.as_deref()?.parse::<jiff::Timestamp>().ok();
    let (o_t, h_t) = (time(&ours.created)?, time(&held.created)?);
    (o_t < h_t).then(|| format!("{tag} holds commit {h7} from {h_t}, newer than {o7} from {o_t}"))
}

/// The tags of `finals` (full references) to write, and the skipped ones with their reason;
/// `held[i]` is what `finals[i]` holds now.
pub fn plan(
    finals: &[String],
    ours: &Stamp,
    held: &[Option<Stamp>],
    force: bool,
    history: &dyn Fn(&str, &str) -> Option<bool>,
) -> (Vec<String>, Vec<(String, String)>) {
    let (mut write, mut skip) = (Vec::new(), Vec::new());
    for (tag, held) in finals.iter().zip(held) {
        let name = tag.rsplit_once(':').map_or(tag.as_str(), |(_, t)| t);
        match decide(name, ours, held.as_ref(), history) {
            Some(why) if !force => skip.push((tag.clone(), why)),
            _ => write.push(tag.clone()),
        }
    }
    (write, skip)
}

/// `git merge-base --is-ancestor a b`: yes, no (exit 1, silent), or unknown (an error).
pub fn is_ancestor(sh: &Shell, a: &str, b: &str) -> Option<bool> {
    let git = Cmd::new("git").args(["merge-base", "--is-ancestor", a, b]);
    let out = git.capture(sh).ok()?;
    (out.ok || out.stderr.trim().is_empty()).then_some(out.ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; // parent
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"; // child of A
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc"; // unknown to history

    fn stamp(rev: &str, version: &str, created: &str) -> Stamp {
        Stamp {
            revision: Some(rev.to_owned()),
            version: Some(version.to_owned()),
            created: Some(created.to_owned()),
        }
    }

    fn history(a: &str, b: &str) -> Option<bool> {
        match (a, b) {
            (A, B) | (A, A) | (B, B) => Some(true),
            (B, A) => Some(false),
            _ => None,
        }
    }

    #[test]
    fn decisions() {
        let t1 = "2026-01-01T00:00:00Z";
        let t2 = "2026-01-02T00:00:00Z";
        // (case, tag, ours, held, write?)
        let cases: Vec<(&str, &str, Stamp, Option<Stamp>, bool)> = vec![
            ("nothing held", "main", stamp(A, "main", t1), None, true),
            ("same commit", "main", stamp(A, "main", t1), Some(stamp(A, "main", t1)), true),
            (
                "R1: parent after child",
                "main",
                stamp(A, "main", t1),
                Some(stamp(B, "main", t2)),
                false,
            ),
            ("child after parent", "main", stamp(B, "main", t2), Some(stamp(A, "main", t1)), true),
            (
                "R2: 1.18 after 1.19",
                "latest",
                stamp(A, "1.18.0", t1),
                Some(stamp(B, "1.19.0", t2)),
                false,
            ),
            (
                "R2: 1.18 keeps 1.18",
                "1.18",
                stamp(A, "1.18.0", t1),
                Some(stamp(C, "1.18.0", t1)),
                true,
            ),
            (
                "higher version, older commit",
                "latest",
                stamp(A, "1.2.0", t1),
                Some(stamp(B, "1.1.0", t2)),
                true,
            ),
            ("v prefix", "1", stamp(A, "v1.1.0", t1), Some(stamp(B, "v1.2.0", t2)), false),
            (
                "pre-release below release",
                "2",
                stamp(A, "2.0.0-rc.1", t2),
                Some(stamp(B, "2.0.0", t1)),
                false,
            ),
            (
                "unknown history, older time",
                "main",
                stamp(C, "main", t1),
                Some(stamp(B, "main", t2)),
                false,
            ),
            (
                "unknown history, newer time",
                "main",
                stamp(C, "main", t2),
                Some(stamp(B, "main", t1)),
                true,
            ),
            (
                "held without annotations",
                "main",
                stamp(A, "main", t1),
                Some(Stamp::default()),
                true,
            ),
        ];
        for (name, tag, ours, held, write) in cases {
            let got = decide(tag, &ours, held.as_ref(), &history);
            assert_eq!(got.is_none(), write, "{name}: {got:?}");
            if let Some(why) = got {
                assert!(why.starts_with(tag), "{name}: {why}");
            }
        }
    }

    #[test]
    fn moves_skip_backwards_unless_forced() {
        let (parent, child) = ("a".repeat(40), "b".repeat(40));
        let st = |rev: &str, v: &str| Stamp {
            revision: Some(rev.to_owned()),
            version: Some(v.to_owned()),
            created: None,
        };
        let history = |a: &str, b: &str| Some(a == "a".repeat(40) && b == "b".repeat(40));
        let finals = ["r:sha-aaaaaaa", "r:main", "r:latest", "r:new"].map(String::from);
        let held = [None, Some(st(&child, "main")), Some(st(&child, "1.2.0")), None];
        let ours = st(&parent, "1.1.0");
        let (write, skip) = plan(&finals, &ours, &held, false, &history);
        assert_eq!(write, ["r:sha-aaaaaaa", "r:new"]);
        let skipped: Vec<&str> = skip.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(skipped, ["r:main", "r:latest"]);
        assert!(skip[0].1.starts_with("main holds commit bbbbbbb"), "{skip:?}");
        assert!(skip[1].1.contains("1.2.0"), "{skip:?}");
        let (write, skip) = plan(&finals, &ours, &held, true, &history);
        assert_eq!((write.len(), skip.len()), (4, 0));
    }
}
