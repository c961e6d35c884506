//! `cargo xtask tags`: detects the build context (GitHub Actions environment
//! or local git checkout) and prints the final image references and OCI
//! labels computed by [`crate::metadata`].

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use serde_json::json;
use xshell::Shell;

use crate::{
    cli::TagsArgs,
    metadata::{self, Context, PackageInfo},
    plan::Cmd,
    project::ComponentList,
};

/// The build context: the GitHub Actions environment when
/// `GITHUB_ACTIONS=true` ([`Context::from_github_env`]), otherwise the git
/// checkout at the shell's directory ([`detect_git`]).
pub fn detect(sh: &Shell) -> Result<Context> {
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        Context::from_github_env(|k| std::env::var(k).ok())
            .context("reading the GitHub Actions context (GITHUB_ACTIONS=true)")
    } else {
        detect_git(sh)
    }
}

/// The context of the local checkout: `git rev-parse HEAD` (commit),
/// `git symbolic-ref -q --short HEAD` (branch; fails when detached) and
/// `git tag --points-at HEAD`, combined by [`Context::from_git`]. Errors
/// when git is not installed or the directory is not a checkout with a commit.
pub fn detect_git(sh: &Shell) -> Result<Context> {
    let head = Cmd::new("git")
        .args(["rev-parse", "HEAD"])
        .capture(sh)
        .context("outside GitHub Actions the tags come from git, which is needed")?;
    if !head.ok {
        bail!(
            "`git rev-parse HEAD` failed in {}: {}\nrun inside the brokkr git checkout (with at least \
             one commit), or set GITHUB_ACTIONS=true with the GITHUB_* variables",
            sh.current_dir().display(),
            head.stderr.trim()
        );
    }
    let branch = Cmd::new("git")
        .args(["symbolic-ref", "-q", "--short", "HEAD"])
        .capture(sh)?;
    let branch = branch.ok.then(|| branch.stdout.trim().to_owned());
    let tags = Cmd::new("git")
        .args(["tag", "--points-at", "HEAD"])
        .capture(sh)?;
    if !tags.ok {
        bail!("`git tag --points-at HEAD` failed: {}", tags.stderr.trim());
    }
    let tags: Vec<String> = tags.stdout.lines().map(str::to_owned).collect();
    Context::from_git(&head.stdout, branch.as_deref(), &tags)
}

/// `cargo metadata --format-version 1 --no-deps` (with the cargo running
/// this xtask, `$CARGO`), as JSON text.
pub fn cargo_metadata(sh: &Shell) -> Result<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    Cmd::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .read_quiet(sh)
        .context("reading Cargo.toml data with `cargo metadata`")
}

/// The `created` label for now: `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else the system clock; RFC 3339 UTC.
pub fn created_now() -> Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    metadata::created(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref(), now)
}

/// Runs `cargo xtask tags`: for each selected component (all by default),
/// the full references one per line, then the labels as `key=value`; a blank
/// line between components. With `--json`, one object
/// `{"component": C, "tags": [full refs], "labels": {..}}` for one component,
/// an array of them for several. Warnings go to stderr; exit status 0.
pub fn run(sh: &Shell, args: &TagsArgs) -> Result<()> {
    let ctx = detect(sh)?;
    let (tags, warnings) = metadata::final_tags(&ctx, &args.tag)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let registry = metadata::resolve_registry(&ctx, args.registry.as_deref())?;
    let created = created_now()?;
    let cargo_json = cargo_metadata(sh)?;
    let components = ComponentList::or_all(args.component.clone());
    let mut objects = Vec::new();
    for (i, component) in components.iter().enumerate() {
        let mut package: PackageInfo = metadata::package_info(&cargo_json, component.package)?;
        if package.repository.is_empty() {
            package.repository = origin_web_url(sh).unwrap_or_default();
        }
        let refs = metadata::references(&metadata::image_repository(&registry, component), &tags);
        let labels = metadata::labels(&ctx, component, &package, &created);
        if args.json {
            objects.push(json!({ "component": component.name, "tags": refs, "labels": labels }));
        } else {
            if i > 0 {
                println!();
            }
            for r in &refs {
                println!("{r}");
            }
            for (k, v) in &labels {
                println!("{k}={v}");
            }
        }
    }
    if args.json {
        let out = if objects.len() == 1 {
            objects.remove(0)
        } else {
            serde_json::Value::Array(objects)
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// The web address of the `origin` remote (`git@github.com:o/r.git` and
/// `https://github.com/o/r.git` give `https://github.com/o/r`), for the
/// source label when Cargo.toml has no `repository`. `None` when unknown.
fn origin_web_url(sh: &Shell) -> Option<String> {
    let out = Cmd::new("git")
        .args(["config", "--get", "remote.origin.url"])
        .capture(sh)
        .ok()?;
    if !out.ok {
        return None;
    }
    web_url(out.stdout.trim())
}

/// A git remote address as a web address, when it is one GitHub-style hosts
/// serve: `git@host:o/r(.git)`, `ssh://git@host/o/r`, `https://host/o/r(.git)`.
fn web_url(remote: &str) -> Option<String> {
    let (host, path) = if let Some(rest) = remote.strip_prefix("git@") {
        rest.split_once(':')?
    } else if let Some(rest) = remote
        .strip_prefix("ssh://git@")
        .or_else(|| remote.strip_prefix("https://"))
    {
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        rest.split_once('/')?
    } else {
        return None;
    };
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("https://{host}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_web_urls() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "git@github.com:brokkr-dev/brokkr.git",
                Some("https://github.com/brokkr-dev/brokkr"),
            ),
            (
                "https://github.com/brokkr-dev/brokkr.git",
                Some("https://github.com/brokkr-dev/brokkr"),
            ),
            (
                "https://github.com/brokkr-dev/brokkr",
                Some("https://github.com/brokkr-dev/brokkr"),
            ),
            (
                "https://token@github.com/o/r.git",
                Some("https://github.com/o/r"),
            ),
            (
                "ssh://git@github.com/o/r.git",
                Some("https://github.com/o/r"),
            ),
            ("/srv/git/brokkr.git", None),
            ("", None),
        ];
        for (remote, want) in cases {
            assert_eq!(web_url(remote).as_deref(), *want, "{remote}");
        }
    }

    /// A throw-away repository: commit, branch, tag, detached HEAD, as git
    /// really reports them.
    #[test]
    fn detects_local_checkouts() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-tags-git-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let sh = Shell::new()?;
        sh.change_dir(&dir);
        let git = |args: &[&str]| {
            Cmd::new("git")
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@example.com",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args.iter().copied())
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .read_quiet(&sh)
        };

        git(&["init", "-q", "-b", "feature/x"])?;
        assert!(detect_git(&sh).is_err(), "no commit yet");
        git(&["commit", "-q", "--allow-empty", "-m", "one"])?;
        let sha = git(&["rev-parse", "HEAD"])?;
        let on_branch = detect_git(&sh)?;
        assert_eq!(on_branch.git_ref.as_deref(), Some("refs/heads/feature/x"));
        assert_eq!(on_branch.sha, sha);
        assert_eq!(
            metadata::final_tags(&on_branch, &[])?.0,
            ["feature-x".to_owned(), format!("sha-{}", &sha[..7])]
        );

        git(&["commit", "-q", "--allow-empty", "-m", "two"])?;
        git(&["checkout", "-q", "--detach", "HEAD~1"])?;
        let detached = detect_git(&sh)?;
        let (tags, warnings) = metadata::final_tags(&detached, &[])?;
        assert_eq!(tags, [format!("sha-{}", &sha[..7])]);
        assert_eq!(warnings.len(), 1);

        git(&["tag", "v1.2.3"])?;
        git(&["tag", "v1.2.3-rc.1"])?;
        let tagged = detect_git(&sh)?;
        assert_eq!(tagged.git_ref.as_deref(), Some("refs/tags/v1.2.3"));
        assert_eq!(
            metadata::final_tags(&tagged, &[])?.0[..4],
            ["1.2.3", "1.2", "1", format!("sha-{}", &sha[..7]).as_str()]
        );

        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
