//! `cargo xtask tags`: the build context (GitHub Actions or git) and the declared rules give
//! image references, labels and annotations ([`crate::metadata`]), and step outputs.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use clap::Args;
use jiff::Timestamp;
use serde::Serialize;
use xshell::Shell;

use crate::{
    gha,
    metadata::{self, CargoMetadata, Context, Rules},
    plan::Cmd,
    project::{parse_component_list, ComponentList},
};

#[derive(Debug, Args)]
pub struct TagsArgs {
    /// Components to print (`broker`, `agent`, a comma-separated list or `all`); default: all.
    #[arg(long, value_parser = parse_component_list)]
    pub component: Option<ComponentList>,
    /// Registry prefix of the image names; default: `ghcr.io/<owner>` in CI, else `localhost:5000`.
    #[arg(long, env = "BROKKR_REGISTRY")]
    pub registry: Option<String>,
    /// Extra tag (repeatable); must match Docker's grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[arg(long)]
    pub tag: Vec<String>,
    /// Tag rules instead of `.github/image-tags.yml`'s, one a line (`type=ref,event=branch`).
    #[arg(long, value_name = "TEXT")]
    pub rules: Option<String>,
    /// Flavor for this call instead of the file's `flavor:` (`latest=false`, `prefix=x-`).
    #[arg(long, value_name = "TEXT")]
    pub flavor: Option<String>,
    /// Print JSON: per component `tags`, `tag-names`, `labels`, `annotations`, `version`.
    #[arg(long)]
    pub json: bool,
}

/// GitHub Actions' context, else the checkout's, with `SOURCE_DATE_EPOCH` and
/// `DOCKER_METADATA_SHORT_SHA_LENGTH`; the commit date from git unless the payload said.
pub fn detect(sh: &Shell) -> Result<Context> {
    let env = |k: &str| std::env::var(k).ok();
    let at = "reading the GitHub Actions context (GITHUB_ACTIONS=true)";
    let mut ctx =
        if gha::active() { Context::from_github_env(env).context(at)? } else { detect_git(sh)? };
    let short = env("DOCKER_METADATA_SHORT_SHA_LENGTH");
    ctx.short_sha_len = metadata::short_sha_len(short.as_deref())?;
    ctx.now = metadata::now(env("SOURCE_DATE_EPOCH").as_deref(), Timestamp::now())?;
    let git_date = || git_line(sh, &["show", "-s", "--format=%cI", &ctx.sha])?.parse().ok();
    ctx.commit_date = ctx.commit_date.or_else(git_date);
    Ok(ctx)
}

/// One line git prints, `None` when git fails or prints nothing.
fn git_line(sh: &Shell, args: &[&str]) -> Option<String> {
    Cmd::new("git").args(args.to_vec()).read_quiet(sh).ok().filter(|l| !l.is_empty())
}

/// The checkout's ([`Context::from_git`]), the default branch from `origin/HEAD`; errors
/// without git or a commit.
pub fn detect_git(sh: &Shell) -> Result<Context> {
    let git = |args: &[&str]| Cmd::new("git").args(args.to_vec()).read_quiet(sh);
    let head = git(&["rev-parse", "HEAD"]).with_context(|| {
        format!(
            "outside GitHub Actions the tags come from git, in {}: run inside the brokkr git \
             checkout (with at least one commit), or set GITHUB_ACTIONS=true with the GITHUB_* \
             variables",
            sh.current_dir().display()
        )
    })?;
    let tags: Vec<String> = git(&["tag", "--points-at", "HEAD"])?.lines().map(Into::into).collect();
    let branch = git_line(sh, &["symbolic-ref", "-q", "--short", "HEAD"]);
    let origin_head = git_line(sh, &["symbolic-ref", "--short", "refs/remotes/origin/HEAD"]);
    let default_branch = origin_head.map(|b| b.trim_start_matches("origin/").to_owned());
    Ok(Context { default_branch, ..Context::from_git(&head, branch.as_deref(), &tags)? })
}

/// `cargo metadata --format-version 1 --no-deps` with `$CARGO`: the one typed reading.
pub fn cargo_metadata(sh: &Shell) -> Result<CargoMetadata> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let cmd = Cmd::new(cargo).args(["metadata", "--format-version", "1", "--no-deps"]);
    let json = cmd.read_quiet(sh).context("reading Cargo.toml data with `cargo metadata`")?;
    serde_json::from_str(&json).context("parsing `cargo metadata` output")
}

/// `tags --json` for one component (`tags`: full references); the `json` step output.
#[derive(Serialize)]
struct Output {
    component: &'static str,
    tags: Vec<String>,
    #[serde(rename = "tag-names")]
    tag_names: Vec<String>,
    labels: BTreeMap<String, String>,
    annotations: Vec<String>,
    version: String,
}

fn label_lines(labels: &BTreeMap<String, String>) -> Vec<String> {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Per component the references, then the labels as `key=value`, a blank line between.
pub fn run(sh: &Shell, args: &TagsArgs) -> Result<()> {
    let ctx = detect(sh)?;
    let rules = Rules::load(&sh.current_dir(), args.rules.as_deref(), args.flavor.as_deref())?;
    let computed = metadata::eval::evaluate(&rules, &ctx, &args.tag)?;
    computed.warnings.iter().for_each(|w| eprintln!("warning: {w}"));
    let registry = metadata::resolve_registry(&ctx, args.registry.as_deref())?;
    let created = metadata::rfc3339_utc(ctx.now.as_second());
    let (cargo, version) = (cargo_metadata(sh)?, computed.version.as_str());
    let levels = std::env::var("DOCKER_METADATA_ANNOTATIONS_LEVELS").ok();
    let mut outputs = Vec::new();
    for component in ComponentList::or_all(args.component.clone()) {
        let mut package = metadata::package_info(&cargo, component.package)?;
        if package.repository.as_deref().is_none_or(str::is_empty) {
            let origin = git_line(sh, &["config", "--get", "remote.origin.url"]);
            package.repository = origin.and_then(|r| web_url(&r));
        }
        let labels = metadata::labels(&ctx, component, &package, &created, Some(version));
        let repository = metadata::image_repository(&registry, component);
        outputs.push(Output {
            component: component.name,
            tags: metadata::references(&repository, &computed.tags),
            tag_names: computed.tags.clone(),
            annotations: metadata::annotations(&labels, levels.as_deref()),
            labels,
            version: version.to_owned(),
        });
    }
    let text = |o: &Output| [o.tags.clone(), label_lines(&o.labels)].concat().join("\n");
    match outputs.as_slice() {
        [one] if args.json => println!("{}", serde_json::to_string_pretty(one)?),
        many if args.json => println!("{}", serde_json::to_string_pretty(many)?),
        many => println!("{}", many.iter().map(text).collect::<Vec<_>>().join("\n\n")),
    }
    match outputs.as_slice() {
        _ if !gha::active() => {}
        [one] => step_outputs(one)?,
        _ => eprintln!("notice: step outputs are written for one --component only"),
    }
    Ok(())
}

/// metadata-action's step outputs, also as `DOCKER_METADATA_OUTPUT_<NAME>` variables unless
/// `DOCKER_METADATA_SET_OUTPUT_ENV` is false.
fn step_outputs(o: &Output) -> Result<()> {
    let mut json = serde_json::to_value(o)?;
    json.as_object_mut().map(|m| m.remove("component"));
    let values = [
        ("version", o.version.clone()),
        ("tags", o.tags.join("\n")),
        ("tag-names", o.tag_names.join("\n")),
        ("labels", label_lines(&o.labels).join("\n")),
        ("annotations", o.annotations.join("\n")),
        ("json", json.to_string()),
    ];
    let set_env = std::env::var("DOCKER_METADATA_SET_OUTPUT_ENV").unwrap_or_default();
    let set_env = !matches!(set_env.trim().to_ascii_lowercase().as_str(), "false" | "0");
    for (name, value) in values {
        gha::output(name, &value, false)?;
        if set_env {
            let var = name.replace('-', "_").to_ascii_uppercase();
            gha::output(&format!("DOCKER_METADATA_OUTPUT_{var}"), &value, true)?;
        }
    }
    Ok(())
}

/// A git remote as a web address: `git@host:o/r(.git)`, `ssh://git@host/o/r`, `https://host/o/r(.git)`.
fn web_url(remote: &str) -> Option<String> {
    let (ssh, https) = (remote.strip_prefix("ssh://git@"), remote.strip_prefix("https://"));
    let (host, path) = match remote.strip_prefix("git@") {
        Some(rest) => rest.split_once(':')?,
        None => ssh.or(https)?.rsplit('@').next()?.split_once('/')?,
    };
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    (!host.is_empty() && !path.is_empty()).then(|| format!("https://{host}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_web_urls() {
        let cases: &[(&str, Option<&str>)] = &[
            ("git@github.com:brokkr-dev/brokkr.git", Some("https://github.com/brokkr-dev/brokkr")),
            (
                "https://github.com/brokkr-dev/brokkr.git",
                Some("https://github.com/brokkr-dev/brokkr"),
            ),
            ("https://github.com/brokkr-dev/brokkr", Some("https://github.com/brokkr-dev/brokkr")),
            ("https://token@github.com/o/r.git", Some("https://github.com/o/r")),
            ("ssh://git@github.com/o/r.git", Some("https://github.com/o/r")),
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
            crate::metadata::tests::final_tags_with(
                &on_branch,
                &crate::metadata::tests::brokkr(),
                &[]
            )?
            .0,
            ["feature-x".to_owned(), format!("sha-{}", &sha[..7])]
        );

        git(&["commit", "-q", "--allow-empty", "-m", "two"])?;
        git(&["checkout", "-q", "--detach", "HEAD~1"])?;
        let detached = detect_git(&sh)?;
        let (tags, warnings) = crate::metadata::tests::final_tags_with(
            &detached,
            &crate::metadata::tests::brokkr(),
            &[],
        )?;
        assert_eq!(tags, [format!("sha-{}", &sha[..7])]);
        assert_eq!(warnings.len(), 1);

        git(&["tag", "v1.2.3"])?;
        git(&["tag", "v1.2.3-rc.1"])?;
        let tagged = detect_git(&sh)?;
        assert_eq!(tagged.git_ref.as_deref(), Some("refs/tags/v1.2.3"));
        assert_eq!(
            crate::metadata::tests::final_tags_with(
                &tagged,
                &crate::metadata::tests::brokkr(),
                &[]
            )?
            .0[..4],
            ["1.2.3", "1.2", "1", format!("sha-{}", &sha[..7]).as_str()]
        );

        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// Changing one line of the declared rules changes what `manifest`
    /// (final tags) and `build-image` (the version label) use, through the
    /// one loader they call, [`Rules::load`].
    #[test]
    fn one_declared_line_changes_build_and_manifest_tags() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-tags-rules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(".github"))?;
        let sh = Shell::new()?;
        sh.change_dir(&dir);
        let file = dir.join(metadata::rules::RULES_FILE);
        let declared = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/image-tags.yml"),
        )?;
        let sha = "356defb93c8e41d2a7b05f6c9e1d3a4b5c6d7e8f";
        let ctx = Context::from_git(sha, None, &["v1.2.3".to_owned()])?;
        let used = |sh: &Shell| -> Result<(Vec<String>, String)> {
            let rules = Rules::load(&sh.current_dir(), None, None)?;
            let (finals, _) = crate::metadata::tests::final_tags_with(&ctx, &rules, &[])?;
            Ok((finals, metadata::eval::evaluate(&rules, &ctx, &[])?.version))
        };

        std::fs::write(&file, &declared)?;
        assert_eq!(used(&sh)?.0, ["1.2.3", "1.2", "1", "sha-356defb", "latest"]);
        std::fs::write(&file, declared.replace("pattern={{version}}", "pattern=v{{version}}"))?;
        let (finals, version) = used(&sh)?;
        assert_eq!(finals, ["v1.2.3", "1.2", "1", "sha-356defb", "latest"]);
        assert_eq!(version, "v1.2.3", "the version label of build-image");

        // a bad line stops before anything is built, naming the file and line
        std::fs::write(&file, declared.replace("type=sha,prefix=sha-", "type=sha,prefx=sha-"))?;
        let err = format!("{:#}", Rules::load(&sh.current_dir(), None, None).unwrap_err());
        assert!(
            err.contains("image-tags.yml") && err.contains("line 6") && err.contains("prefx"),
            "{err}"
        );

        // --rules / --flavor override one call; no file: metadata-action's defaults
        std::fs::remove_file(&file)?;
        let defaults = Rules::load(&sh.current_dir(), None, None)?;
        assert_eq!(defaults, metadata::Rules::parse("", "")?);
        let r = Rules::load(&sh.current_dir(), Some("type=sha,prefix=git-"), Some("latest=false"))?;
        assert_eq!(crate::metadata::tests::final_tags_with(&ctx, &r, &[])?.0, ["git-356defb"]);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
