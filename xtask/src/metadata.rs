//! Image tags and OCI labels as docker/metadata-action computes them: the build [`Context`],
//! the [`rules`] and their evaluation ([`eval`]), Docker's tag grammar, image names, labels.

pub mod eval;
pub mod rules;

use std::{collections::BTreeMap, path::Path, sync::LazyLock};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use jiff::Timestamp;
use regex::Regex;
use serde::Deserialize;

pub use self::rules::Rules;
use crate::project::{Component, Platform, LOCAL_REGISTRY};

/// Docker's tag grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
const TAG_MAX_LEN: usize = 128;
/// metadata-action's default short sha; never git's `core.abbrev`.
const SHORT_SHA_LEN: usize = 7;
/// `type=raw`'s priority, which explicit `--tag` values take: after `type=ref`, before `type=sha`.
const RAW_PRIORITY: i64 = 200;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// From GitHub Actions' `GITHUB_*` variables and event payload; else the local checkout's.
    pub github_actions: bool,
    /// `GITHUB_EVENT_NAME`; locally `push` on a branch or tag, else `detached`.
    pub event: String,
    /// `refs/heads/<b>`, `refs/tags/<t>` or `refs/pull/<n>/merge` (even `pull_request_target`).
    pub git_ref: Option<String>,
    /// Full commit id, lower-case (`DOCKER_METADATA_PR_HEAD_SHA=true`: the PR's head).
    pub sha: String,
    /// `GITHUB_REPOSITORY_OWNER` (as GitHub spells it), else `GITHUB_REPOSITORY`'s owner.
    pub owner: Option<String>,
    /// `<GITHUB_SERVER_URL>/<GITHUB_REPOSITORY>`, the default server `https://github.com`.
    pub repo_url: Option<String>,
    /// `{{base_ref}}`: the payload's `base_ref` (tag push) or `pull_request.base.ref`.
    pub base_ref: Option<String>,
    /// GitHub Actions: the payload's `repository.default_branch` only; locally the remote's HEAD.
    pub default_branch: Option<String>,
    /// `{{date}}` and `type=schedule`: `SOURCE_DATE_EPOCH`, else the clock ([`crate::tags::detect`]).
    pub now: Timestamp,
    pub commit_date: Option<Timestamp>,
    pub short_sha_len: usize,
}

/// The fields read from the GitHub event payload (`GITHUB_EVENT_PATH`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Payload {
    pub number: Option<u64>,
    pub pull_request: PullRequest,
    pub repository: Option<Repository>,
    pub base_ref: Option<String>,
    pub commits: Vec<Commit>,
    pub head_commit: Option<Commit>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PullRequest {
    pub number: Option<u64>,
    pub head: GitRef,
    pub base: GitRef,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GitRef {
    pub sha: Option<String>,
    #[serde(rename = "ref")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub default_branch: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Commit {
    pub id: String,
    pub timestamp: String,
}

impl Context {
    /// [`Context::from_github`] with the payload of `GITHUB_EVENT_PATH` when that file exists.
    pub fn from_github_env(get: impl Fn(&str) -> Option<String>) -> Result<Context> {
        let read = |path: String| -> Result<Payload> {
            let at = || format!("reading the event payload GITHUB_EVENT_PATH={path} (JSON)");
            serde_json::from_str(&std::fs::read_to_string(&path).with_context(at)?).with_context(at)
        };
        let path = get("GITHUB_EVENT_PATH").filter(|p| Path::new(p).is_file());
        Context::from_github(get, path.map(read).transpose()?.as_ref())
    }

    /// From the `GITHUB_*` and `DOCKER_METADATA_*` variables (`get`; empty counts as unset),
    /// `GITHUB_EVENT_NAME` and `GITHUB_SHA` required.
    pub fn from_github(
        get: impl Fn(&str) -> Option<String>,
        payload: Option<&Payload>,
    ) -> Result<Context> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let why = "is not set (GITHUB_ACTIONS=true: is this a GitHub Actions run?)";
        let need = |k: &str| get(k).with_context(|| format!("{k} {why}"));
        let payload = payload.cloned().unwrap_or_default();
        let pr = payload.pull_request;
        let event = need("GITHUB_EVENT_NAME")?;
        let mut sha = checked_sha(&need("GITHUB_SHA")?).context("GITHUB_SHA")?;
        let mut git_ref = get("GITHUB_REF");
        let n = git_ref.as_deref().and_then(|r| r.strip_prefix("refs/pull/")?.split('/').next());
        let pr_ref = n.is_some_and(|n| !n.starts_with('+') && n.parse::<u64>().is_ok());
        // pull_request, _target, _review, _review_comment: their ref is the pull request's
        let is_pr_event = event.starts_with("pull_request");
        if !pr_ref && is_pr_event {
            let Some(n) = payload.number.or(pr.number) else {
                bail!(
                    "{event} run with GITHUB_REF={}: the event payload has no pull request \
                     number, so the run cannot be tagged (never as its base branch)",
                    git_ref.as_deref().unwrap_or("(unset)")
                );
            };
            git_ref = Some(format!("refs/pull/{n}/merge"));
        }
        let head_sha =
            get("DOCKER_METADATA_PR_HEAD_SHA").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if let (true, Some(s)) = (head_sha && is_pr_event, &pr.head.sha) {
            sha = checked_sha(s).context("event payload `pull_request.head.sha`")?;
        }
        let base_ref = match git_ref.as_deref().unwrap_or("").get(..10) {
            Some("refs/tags/") => {
                payload.base_ref.map(|b| b.trim_start_matches("refs/heads/").into())
            }
            Some("refs/pull/") => pr.base.name,
            _ => None,
        };
        let mut commits = payload.commits.iter().chain(&payload.head_commit);
        let commit = commits.find(|c| c.id == sha);
        let repository = get("GITHUB_REPOSITORY");
        let server = get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
        let owner = || Some(repository.as_deref()?.split('/').next()?.to_owned());
        Ok(Context {
            github_actions: true,
            owner: get("GITHUB_REPOSITORY_OWNER").or_else(owner),
            repo_url: repository.as_ref().map(|r| format!("{}/{r}", server.trim_end_matches('/'))),
            base_ref,
            default_branch: payload.repository.and_then(|r| r.default_branch),
            commit_date: commit.and_then(|c| c.timestamp.parse().ok()),
            short_sha_len: SHORT_SHA_LEN,
            event,
            git_ref,
            sha,
            ..Context::default()
        })
    }

    /// A checkout's: the ref is HEAD's highest semver tag (built like a push of it), else the
    /// branch, else the first other tag, else none.
    pub fn from_git(sha: &str, branch: Option<&str>, tags_at_head: &[String]) -> Result<Context> {
        let sha = checked_sha(sha).context("`git rev-parse HEAD`")?;
        let tags: Vec<&str> = tags_at_head.iter().filter_map(|t| non_empty(t)).collect();
        let best_semver = (tags.iter().filter_map(|t| Some((parse_version(t)?, *t))))
            .max_by(|(a, ta), (b, tb)| a.cmp_precedence(b).then_with(|| ta.cmp(tb)));
        let git_ref = (best_semver.map(|(_, t)| format!("refs/tags/{t}")))
            .or_else(|| Some(format!("refs/heads/{}", branch.and_then(non_empty)?)))
            .or_else(|| tags.iter().min().map(|t| format!("refs/tags/{t}")));
        Ok(Context {
            event: git_ref.as_ref().map_or("detached", |_| "push").to_owned(),
            git_ref,
            sha,
            short_sha_len: SHORT_SHA_LEN,
            ..Context::default()
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.git_ref.as_deref()?.strip_prefix("refs/heads/")
    }

    /// `{{is_default_branch}}` as metadata-action decides it: the ref's branch is the default
    /// (in CI only when the payload says so), or the event always runs on the default branch.
    pub fn is_default_branch(&self) -> bool {
        let r = self.git_ref.as_deref().unwrap_or("");
        let branch = r.strip_prefix("refs/heads/").unwrap_or(r);
        let default = self.default_branch.as_deref().or((!self.github_actions).then_some("main"));
        let events = ["create", "discussion", "issues", "schedule"];
        !branch.is_empty()
            && (default == Some(branch) || events.iter().any(|e| self.event.contains(e)))
    }

    pub fn short_sha(&self) -> &str {
        &self.sha[..self.short_sha_len.min(self.sha.len())]
    }
}

/// `s` trimmed, `None` when that is empty.
pub fn non_empty(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// `DOCKER_METADATA_SHORT_SHA_LENGTH`: a whole number, default 7.
pub fn short_sha_len(value: Option<&str>) -> Result<usize> {
    let Some(v) = value.and_then(non_empty) else { return Ok(SHORT_SHA_LEN) };
    (v.parse()).map_err(|_| {
        anyhow!("DOCKER_METADATA_SHORT_SHA_LENGTH=`{v}` is not a whole number; fix or unset it")
    })
}

/// A version as node-semver's `valid` (metadata-action's check) accepts it: `v1.2.3`, `1.2.3`.
pub fn parse_version(s: &str) -> Option<semver::Version> {
    let s = s.trim();
    semver::Version::parse(s.strip_prefix('v').unwrap_or(s)).ok()
}

fn checked_sha(sha: &str) -> Result<String> {
    let sha = sha.trim();
    if !(sha.len() == 40 || sha.len() == 64) || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("`{sha}` is not a commit id (expected 40 hex digits, or 64 in a SHA-256 repository)");
    }
    Ok(sha.to_ascii_lowercase())
}

/// `sha-356defb` (7 hex digits) whatever the rules say: the per-platform tags' stem.
pub fn sha_tag(ctx: &Context) -> String {
    format!("sha-{}", &ctx.sha[..SHORT_SHA_LEN.min(ctx.sha.len())])
}

/// `<registry>/brokkr-<name>:sha-<7 hex>-<arch>`: `push` writes it, `manifest` reads it.
pub fn per_platform_reference(reg: &str, c: &Component, ctx: &Context, p: &Platform) -> String {
    format!("{}:{}-{}", image_repository(reg, c), sha_tag(ctx), p.arch)
}

static NOT_TAG_CHARS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[^A-Za-z0-9_.-]+").unwrap());
/// A registry prefix in Docker's reference grammar (distribution/reference).
static REGISTRY: LazyLock<Regex> = LazyLock::new(|| {
    let label = "[a-z0-9](?:[a-z0-9-]*[a-z0-9])?";
    let path = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    Regex::new(&format!(r"^{label}(?:\.{label})*(?::[0-9]+)?(?:/{path})*$")).unwrap()
});

/// metadata-action's `sanitizeTag`: each run outside `[A-Za-z0-9_.-]` becomes one `-`.
pub fn metadata_action_tag(raw: &str) -> String {
    NOT_TAG_CHARS.replace_all(raw, "-").into_owned()
}

/// [`metadata_action_tag`], then Docker's: no leading `.`/`-`, at most [`TAG_MAX_LEN`] long.
pub fn sanitize_tag(raw: &str) -> Option<String> {
    let tag = metadata_action_tag(raw);
    let tag: String = tag.trim_start_matches(['.', '-']).chars().take(TAG_MAX_LEN).collect();
    (!tag.is_empty()).then_some(tag)
}

/// An explicit `--tag` must already be a valid Docker tag: it is never rewritten.
pub fn check_explicit_tag(tag: &str) -> Result<()> {
    ensure!(
        sanitize_tag(tag).as_deref() == Some(tag),
        "invalid --tag `{tag}`: a Docker tag matches `[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}` \
         (letters, digits, `_`, `.`, `-`; not starting with `.` or `-`; 1 to {TAG_MAX_LEN} \
         characters); explicit tags are never changed silently, so pass a valid one"
    );
    Ok(())
}

pub fn references(repository: &str, tags: &[String]) -> Vec<String> {
    tags.iter().map(|t| format!("{repository}:{t}")).collect()
}

/// `<registry>/brokkr-<name>`, lower-cased as Docker repository names are.
pub fn image_repository(registry: &str, component: &Component) -> String {
    let registry = registry.trim().trim_end_matches('/');
    format!("{registry}/{}", component.image_name()).to_ascii_lowercase()
}

/// `--registry` when non-empty, else `ghcr.io/<owner>` in CI, else [`LOCAL_REGISTRY`]; checked.
pub fn resolve_registry(ctx: &Context, flag: Option<&str>) -> Result<String> {
    let registry = match (flag.and_then(non_empty), ctx.github_actions, &ctx.owner) {
        (Some(r), ..) => r.trim_end_matches('/').to_owned(),
        (None, false, _) => LOCAL_REGISTRY.to_owned(),
        (None, _, Some(owner)) => format!("ghcr.io/{}", owner.to_ascii_lowercase()),
        (None, _, None) => bail!(
            "GITHUB_REPOSITORY_OWNER and GITHUB_REPOSITORY are unset: cannot name the \
             ghcr.io registry; pass --registry (or BROKKR_REGISTRY)"
        ),
    };
    check_registry(&registry)?;
    Ok(registry)
}

/// `localhost:5000`, `ghcr.io/owner`: Docker's reference grammar after lower-casing.
pub fn check_registry(registry: &str) -> Result<()> {
    ensure!(
        REGISTRY.is_match(&registry.to_ascii_lowercase()),
        "invalid registry `{registry}`: expected HOST[:PORT][/PATH] such as `localhost:5000` \
         or `ghcr.io/owner` (path parts of lower-case letters and digits, joined by `.`, `_`, `__` or `-`)"
    );
    Ok(())
}

/// What is read of `cargo metadata --format-version 1 --no-deps` ([`crate::tags::cargo_metadata`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CargoMetadata {
    pub workspace_root: String,
    pub workspace_members: Vec<String>,
    pub packages: Vec<PackageInfo>,
}

/// What Cargo.toml says about a package (`license`: SPDX).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PackageInfo {
    pub name: String,
    pub id: String,
    pub manifest_path: String,
    pub description: Option<String>,
    pub license: Option<String>,
    pub repository: Option<String>,
}

pub fn package_info(meta: &CargoMetadata, package: &str) -> Result<PackageInfo> {
    let found = meta.packages.iter().find(|p| p.name == package).cloned();
    found.ok_or_else(|| anyhow!("`cargo metadata` lists no package `{package}`"))
}

/// metadata-action's `org.opencontainers.image.*` labels; Cargo.toml's `description` (else
/// the component's), `license`, `repository` (the URL outside CI).
pub fn labels(
    ctx: &Context,
    component: &Component,
    package: &PackageInfo,
    created: &str,
    version: Option<&str>,
) -> BTreeMap<String, String> {
    let url = ctx.repo_url.clone().or_else(|| package.repository.clone()).unwrap_or_default();
    let description = package.description.as_deref().filter(|d| non_empty(d).is_some());
    let labels = [
        ("title", component.image_name()),
        ("description", description.unwrap_or(component.description).to_owned()),
        ("url", url.clone()),
        ("source", url),
        ("created", created.to_owned()),
        ("revision", ctx.sha.clone()),
        ("licenses", package.license.clone().unwrap_or_default()),
    ];
    let all = labels.into_iter().chain(version.map(|v| ("version", v.to_owned())));
    all.map(|(k, v)| (format!("org.opencontainers.image.{k}"), v)).collect()
}

/// metadata-action's `annotations`: each label as `LEVEL:key=value` per level of `levels`
/// (`DOCKER_METADATA_ANNOTATIONS_LEVELS`, comma-separated; default `manifest`).
pub fn annotations(labels: &BTreeMap<String, String>, levels: Option<&str>) -> Vec<String> {
    let levels = levels.and_then(non_empty).unwrap_or("manifest").split(',');
    let each = |l| labels.iter().map(move |(k, v)| format!("{l}:{k}={v}"));
    levels.map(str::trim).flat_map(each).collect()
}

/// `SOURCE_DATE_EPOCH` (whole seconds since 1970-01-01 UTC) when set, else `clock`.
pub fn now(source_date_epoch: Option<&str>, clock: Timestamp) -> Result<Timestamp> {
    let Some(s) = source_date_epoch.and_then(non_empty) else { return Ok(clock) };
    s.parse().ok().and_then(|secs| Timestamp::from_second(secs).ok()).ok_or_else(|| {
        anyhow!("SOURCE_DATE_EPOCH=`{s}` is not a whole number of seconds since 1970-01-01 UTC; fix or unset it")
    })
}

/// The `created` label for [`now`], RFC 3339 UTC (`2024-05-01T12:00:00Z`).
pub fn created(source_date_epoch: Option<&str>, clock: Timestamp) -> Result<String> {
    Ok(rfc3339_utc(now(source_date_epoch, clock)?.as_second()))
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`, years 1 to 9999 (civil time: 9999-12-31 too).
pub fn rfc3339_utc(unix_secs: i64) -> String {
    let t = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);
    let t = t.checked_add(jiff::SignedDuration::from_secs(unix_secs));
    t.map_or_else(|_| format!("@{unix_secs}"), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[cfg(test)]
#[path = "metadata/tests.rs"]
mod metadata_action_cases;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::project::{component, Platform};
    use serde_json::Value;
    use std::cmp::Ordering;

    const SHA: &str = "356defb93c8e41d2a7b05f6c9e1d3a4b5c6d7e8f";

    /// A GitHub Actions context from `(key, value)` pairs, with GITHUB_SHA and
    /// an owner defaulted.
    fn gh(vars: &[(&str, &str)]) -> Context {
        gh_with(vars, None).unwrap_or_else(|e| panic!("{vars:?}: {e:#}"))
    }

    fn gh_with(vars: &[(&str, &str)], payload: Option<&Value>) -> Result<Context> {
        let mut map: BTreeMap<String, String> = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", SHA),
            ("GITHUB_REPOSITORY", "acme/brokkr"),
            ("GITHUB_REPOSITORY_OWNER", "acme"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in vars {
            map.insert(k.to_string(), v.to_string());
        }
        let payload: Option<Payload> = payload.map(|p| serde_json::from_value(p.clone()).unwrap());
        Context::from_github(|k| map.get(k).cloned(), payload.as_ref())
    }

    /// brokkr's declared rules, `.github/image-tags.yml`.
    pub(crate) fn brokkr() -> Rules {
        Rules::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")), None, None).unwrap()
    }

    /// `(tags, warnings)` of [`eval::evaluate`].
    pub(crate) fn final_tags_with(
        ctx: &Context,
        rules: &Rules,
        extra: &[String],
    ) -> Result<(Vec<String>, Vec<String>)> {
        let t = eval::evaluate(rules, ctx, extra)?;
        Ok((t.tags, t.warnings))
    }

    fn final_tags(ctx: &Context, extra: &[String]) -> Result<(Vec<String>, Vec<String>)> {
        final_tags_with(ctx, &brokkr(), extra)
    }

    fn labels(
        ctx: &Context,
        c: &Component,
        p: &PackageInfo,
        created: &str,
    ) -> BTreeMap<String, String> {
        let version = eval::evaluate(&brokkr(), ctx, &[]).unwrap().version;
        super::labels(ctx, c, p, created, Some(&version))
    }

    fn push(git_ref: &str) -> Context {
        gh(&[("GITHUB_EVENT_NAME", "push"), ("GITHUB_REF", git_ref)])
    }

    fn tags_of(ctx: &Context, rules: &str) -> Vec<String> {
        let rules = Rules::parse(rules, "").expect("rules");
        eval::evaluate(&rules, ctx, &[]).expect("tags").tags
    }

    const SEMVER_RULES: &str = "type=semver,pattern={{version}}\n\
        type=semver,pattern={{major}}.{{minor}}\ntype=semver,pattern={{major}}";
    const REF_RULES: &str = "type=ref,event=branch\ntype=ref,event=pr";
    const BRANCH: &str = "type=ref,event=branch";

    // ---- the rows of shared/cases/tags.md ----

    #[test]
    fn t1_branch_with_hash() {
        let ctx = push("refs/heads/feature-#6-skillquiz");
        assert_eq!(tags_of(&ctx, BRANCH), ["feature--6-skillquiz"]);
    }

    #[test]
    fn t2_branch_with_slashes_and_dots() {
        let ctx = push("refs/heads/dependabot/cargo/serde-1.0.130");
        assert_eq!(tags_of(&ctx, BRANCH), ["dependabot-cargo-serde-1.0.130"]);
    }

    #[test]
    fn t3_branch_keeps_case() {
        let ctx = gh(&[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/Feature/ABC_1"),
            ("GITHUB_REPOSITORY_OWNER", "acme"),
        ]);
        assert_eq!(tags_of(&ctx, BRANCH), ["Feature-ABC_1"]);
        let repo =
            image_repository(&resolve_registry(&ctx, None).unwrap(), component("broker").unwrap());
        assert_eq!(repo, "ghcr.io/acme/brokkr-broker");
    }

    #[test]
    fn t4_owner_lower_cased_in_image_name() {
        let ctx = gh(&[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REPOSITORY", "RiverOnVenus/brokkr"),
            ("GITHUB_REPOSITORY_OWNER", "RiverOnVenus"),
        ]);
        let registry = resolve_registry(&ctx, None).unwrap();
        assert_eq!(registry, "ghcr.io/riveronvenus");
        let broker = component("broker").unwrap();
        assert_eq!(image_repository(&registry, broker), "ghcr.io/riveronvenus/brokkr-broker");
        // the same name whatever spelling the registry arrives in
        assert_eq!(
            image_repository("ghcr.io/RiverOnVenus", broker),
            "ghcr.io/riveronvenus/brokkr-broker"
        );
        assert_eq!(
            image_repository("GHCR.io/RiverOnVenus/", broker),
            "ghcr.io/riveronvenus/brokkr-broker"
        );
        let arm = Platform::parse("arm64").unwrap();
        assert_eq!(
            per_platform_reference("ghcr.io/RiverOnVenus", broker, &ctx, arm),
            "ghcr.io/riveronvenus/brokkr-broker:sha-356defb-arm64"
        );
        let (tags, _) = final_tags(&ctx, &[]).unwrap();
        assert_eq!(
            references(&image_repository(&registry, broker), &tags),
            [
                "ghcr.io/riveronvenus/brokkr-broker:main",
                "ghcr.io/riveronvenus/brokkr-broker:sha-356defb"
            ]
        );
    }

    #[test]
    fn t5_pull_request_is_pr_number_only() {
        let ctx = gh(&[
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/318/merge"),
            ("GITHUB_HEAD_REF", "feature/login"),
        ]);
        assert_eq!(ctx.git_ref.as_deref(), Some("refs/pull/318/merge"));
        assert_eq!(tags_of(&ctx, REF_RULES), ["pr-318"]);
        let (all, _) = final_tags(&ctx, &[]).unwrap();
        assert_eq!(all, ["pr-318", "sha-356defb"]);
    }

    #[test]
    fn t6_stable_semver_tag() {
        let ctx = push("refs/tags/v1.2.3");
        assert_eq!(tags_of(&ctx, SEMVER_RULES), ["1.2.3", "1.2", "1", "latest"]);
        let (all, _) = final_tags(&ctx, &[]).unwrap();
        assert_eq!(all, ["1.2.3", "1.2", "1", "sha-356defb", "latest"]);
    }

    #[test]
    fn t7_prerelease_semver_tag() {
        let ctx = push("refs/tags/v2.0.0-rc.1");
        assert_eq!(tags_of(&ctx, SEMVER_RULES), ["2.0.0-rc.1"]);
        let (all, _) = final_tags(&ctx, &[]).unwrap();
        assert_eq!(all, ["2.0.0-rc.1", "sha-356defb"]);
    }

    #[test]
    fn t8_local_detached_at_tag_is_a_tag_push() {
        let local = Context::from_git(SHA, None, &["v1.2.3".to_owned()]).unwrap();
        assert_eq!(local.git_ref.as_deref(), Some("refs/tags/v1.2.3"));
        let ci = push("refs/tags/v1.2.3");
        assert_eq!(final_tags(&local, &[]).unwrap(), final_tags(&ci, &[]).unwrap());
        assert_eq!(tags_of(&local, SEMVER_RULES), ["1.2.3", "1.2", "1", "latest"]);
        assert_eq!(resolve_registry(&local, None).unwrap(), "localhost:5000");
    }

    #[test]
    fn t9_local_detached_without_ref_gives_sha_and_warning() {
        let ctx = Context::from_git(SHA, None, &[]).unwrap();
        let (tags, warnings) = final_tags(&ctx, &[]).unwrap();
        assert_eq!(tags, ["sha-356defb"]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("detached"), "{warnings:?}");
    }

    #[test]
    fn t10_sha_tag_is_seven_hex_digits() {
        let ctx = gh(&[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_SHA", "356defb93c8e41d2a7b05f6c9e1d3a4b5c6d7e8f"),
        ]);
        assert_eq!(sha_tag(&ctx), "sha-356defb");
        assert_eq!(tags_of(&ctx, "type=sha,prefix=sha-"), ["sha-356defb"]);
        let upper = gh(&[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_SHA", "356DEFB93C8E41D2A7B05F6C9E1D3A4B5C6D7E8F"),
        ]);
        assert_eq!(sha_tag(&upper), "sha-356defb");
        let amd = Platform::parse("amd64").unwrap();
        let broker = component("broker").unwrap();
        let reference = per_platform_reference("localhost:5000", broker, &ctx, amd);
        assert_eq!(reference, "localhost:5000/brokkr-broker:sha-356defb-amd64");
    }

    // ---- the kinds, more widely ----

    #[test]
    fn branch_rule_sanitizes() {
        let cases: &[(&str, &str)] = &[
            ("refs/heads/main", "main"),
            ("refs/heads/releases/v1", "releases-v1"),
            ("refs/heads/feat//double", "feat-double"),
            ("refs/heads/a b\tc", "a-b-c"),
            ("refs/heads/über/größe", "ber-gr-e"),
            ("refs/heads/fix_#12__x", "fix_-12__x"),
            ("refs/heads/.hidden", "hidden"),
            ("refs/heads/-dash", "dash"),
            ("refs/heads/#1", "1"),
            ("refs/heads/__init", "__init"),
            ("refs/heads/x.", "x."),
            ("refs/heads/a/-b", "a--b"),
            ("refs/heads/MixedCase", "MixedCase"),
        ];
        for (git_ref, want) in cases {
            assert_eq!(tags_of(&push(git_ref), BRANCH), [*want], "{git_ref}");
        }
    }

    #[test]
    fn sanitize_tag_grammar() {
        let cases: &[(&str, Option<&str>)] = &[
            ("feature-#6-skillquiz", Some("feature--6-skillquiz")),
            ("a+b", Some("a-b")),
            ("a+++b", Some("a-b")),
            ("..a", Some("a")),
            ("-.-a", Some("a")),
            ("/a", Some("a")),
            ("///", None),
            ("...", None),
            ("", None),
            ("日本", None),
            ("v1.0", Some("v1.0")),
        ];
        for (raw, want) in cases {
            let got = sanitize_tag(raw);
            assert_eq!(got.as_deref(), *want, "{raw:?}");
            if let Some(t) = got {
                assert!(check_explicit_tag(&t).is_ok(), "{t}");
            }
        }
    }

    #[test]
    fn length_limit_applies_after_prefix() {
        let long = "b".repeat(200);
        let tags = tags_of(&push(&format!("refs/heads/{long}")), BRANCH);
        assert_eq!(tags, ["b".repeat(128)]);
        // the limit counts after leading junk is dropped and after the prefix
        assert_eq!(sanitize_tag(&format!("--{}", "c".repeat(130))).unwrap(), "c".repeat(128));
        let exact = "d".repeat(128);
        assert_eq!(sanitize_tag(&exact).unwrap(), exact);
        let pre = format!("v1.0.0-{}", "x".repeat(200));
        let t = tags_of(&push(&format!("refs/tags/{pre}")), SEMVER_RULES);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].len(), 128);
        assert!(t[0].starts_with("1.0.0-xxx"));
    }

    #[test]
    fn empty_computed_tag_is_dropped_with_warning() {
        let ctx = push("refs/heads/###");
        let (tags, warnings) = final_tags(&ctx, &[]).unwrap();
        assert_eq!(tags, ["sha-356defb"]);
        assert!(warnings.iter().any(|w| w.contains("empty")), "{warnings:?}");
    }

    #[test]
    fn semver_tags() {
        let cases: &[(&str, &[&str])] = &[
            ("v1.2.3", &["1.2.3", "1.2", "1", "latest"]),
            ("1.2.3", &["1.2.3", "1.2", "1", "latest"]),
            ("v10.20.30", &["10.20.30", "10.20", "10", "latest"]),
            ("v2.0.0-rc.1", &["2.0.0-rc.1"]),
            ("v1.0.0-alpha", &["1.0.0-alpha"]),
            ("v1.0.0-0.3.7", &["1.0.0-0.3.7"]),
            ("v1.0.0-x-y-z.--", &["1.0.0-x-y-z.--"]),
            // build metadata: not in {{version}} (node-semver), still stable
            ("v1.2.3+build.5", &["1.2.3", "1.2", "1", "latest"]),
            ("v1.0.0-beta+exp.sha.5114f85", &["1.0.0-beta"]),
            // major version zero: no `0` tag
            // as metadata-action (brokkr's old code-only rule left out `0`)
            ("v0.1.2", &["0.1.2", "0.1", "0", "latest"]),
            ("v0.0.1-rc.1", &["0.0.1-rc.1"]),
            // not semver: nothing from these rules
            ("v1.2", &[]),
            ("v01.2.3", &[]),
            ("V1.2.3", &[]),
            ("v1.2.3-01", &[]),
            ("v1.2.3-", &[]),
            ("v1.2.3+", &[]),
            ("v1.2.3-a..b", &[]),
            ("v1.2.3.4", &[]),
            ("release-2024", &[]),
            // `/` becomes `-` before the semver check, as metadata-action does
            ("v1.2.3/x", &["1.2.3-x"]),
            ("release/v1.2.3", &[]),
        ];
        for (tag, want) in cases {
            let ctx = push(&format!("refs/tags/{tag}"));
            assert_eq!(tags_of(&ctx, SEMVER_RULES), *want, "{tag}");
        }
    }

    #[test]
    fn non_semver_tag_warns_and_keeps_sha() {
        let ctx = push("refs/tags/nightly");
        let (tags, warnings) = final_tags(&ctx, &[]).unwrap();
        assert_eq!(tags, ["sha-356defb"]);
        assert_eq!(warnings.len(), 1, "one warning, not one per rule: {warnings:?}");
        assert!(warnings[0].contains("not a semantic version"));
    }

    #[test]
    fn semver_precedence() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "2.0.0",
            "10.0.0",
        ];
        for pair in ordered.windows(2) {
            let a = parse_version(pair[0]).unwrap();
            let b = parse_version(pair[1]).unwrap();
            assert_eq!(a.cmp_precedence(&b), Ordering::Less, "{} < {}", pair[0], pair[1]);
            assert_eq!(b.cmp_precedence(&a), Ordering::Greater);
        }
        let a = parse_version("1.0.0+a").unwrap();
        let b = parse_version("1.0.0+b").unwrap();
        assert_eq!(a.cmp_precedence(&b), Ordering::Equal);
    }

    #[test]
    fn local_contexts() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(Option<&str>, &[&str], Option<&str>)] = &[
            (Some("main"), &[], Some("refs/heads/main")),
            (Some("feature/x"), &[], Some("refs/heads/feature/x")),
            // the highest semver tag wins, by precedence not by string
            (None, &["v1.2.3", "v1.10.0", "v1.9.0"], Some("refs/tags/v1.10.0")),
            (None, &["v2.0.0-rc.1", "v2.0.0"], Some("refs/tags/v2.0.0")),
            (Some("main"), &["v1.2.3"], Some("refs/tags/v1.2.3")),
            (Some("main"), &["nightly"], Some("refs/heads/main")),
            (None, &["nightly", "alpha"], Some("refs/tags/alpha")),
            (None, &[], None),
        ];
        for (branch, tags, want) in cases {
            let ctx = Context::from_git(SHA, *branch, &t(tags)).unwrap();
            assert_eq!(ctx.git_ref.as_deref(), *want, "{branch:?} {tags:?}");
            assert!(!ctx.github_actions);
        }
        assert!(Context::from_git("HEAD", Some("main"), &[]).is_err());
        assert!(Context::from_git("", None, &[]).is_err());
    }

    #[test]
    fn pull_request_target_is_tagged_as_its_pull_request() {
        let payload = serde_json::json!({
            "number": 42,
            "pull_request": {
                "number": 42,
                "head": { "sha": "abcdef0123456789abcdef0123456789abcdef01", "ref": "feature/login" },
                "base": { "ref": "main" }
            }
        });
        let ctx = gh_with(
            &[("GITHUB_EVENT_NAME", "pull_request_target"), ("GITHUB_REF", "refs/heads/main")],
            Some(&payload),
        )
        .unwrap();
        assert_eq!(ctx.git_ref.as_deref(), Some("refs/pull/42/merge"));
        assert_eq!(ctx.branch(), None);
        let (tags, _) = final_tags(&ctx, &[]).unwrap();
        assert_eq!(tags, ["pr-42", "sha-356defb"], "GITHUB_SHA, as metadata-action");
        assert!(!tags.contains(&"main".to_owned()));
        let head = gh_with(
            &[
                ("GITHUB_EVENT_NAME", "pull_request_target"),
                ("GITHUB_REF", "refs/heads/main"),
                ("DOCKER_METADATA_PR_HEAD_SHA", "true"),
            ],
            Some(&payload),
        )
        .unwrap();
        assert_eq!(
            final_tags(&head, &[]).unwrap().0,
            ["pr-42", "sha-abcdef0"],
            "the PR head on request"
        );

        // without the payload's number it is an error, never the base branch
        let err = gh_with(
            &[("GITHUB_EVENT_NAME", "pull_request_target"), ("GITHUB_REF", "refs/heads/main")],
            Some(&serde_json::json!({})),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("base branch"), "{err:#}");
    }

    #[test]
    fn pull_request_target_reads_the_payload_file() {
        let dir = std::env::temp_dir().join(format!("xtask-metadata-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("event.json");
        std::fs::write(&path, r#"{"pull_request":{"number":7,"head":{"sha":"1234567890abcdef1234567890abcdef12345678"}}}"#).unwrap();
        let env: BTreeMap<&str, String> = [
            ("GITHUB_EVENT_NAME", "pull_request_target".to_owned()),
            ("GITHUB_REF", "refs/heads/main".to_owned()),
            ("GITHUB_SHA", SHA.to_owned()),
            ("GITHUB_REPOSITORY_OWNER", "acme".to_owned()),
            ("GITHUB_EVENT_PATH", path.display().to_string()),
            ("GITHUB_HEAD_REF", String::new()),
        ]
        .into_iter()
        .collect();
        let ctx = Context::from_github_env(|k| env.get(k).cloned()).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(final_tags(&ctx, &[]).unwrap().0, ["pr-7", "sha-356defb"]);

        let mut no_path = env.clone();
        no_path.remove("GITHUB_EVENT_PATH");
        assert!(Context::from_github_env(|k| no_path.get(k).cloned()).is_err());
    }

    #[test]
    fn github_env_errors() {
        let missing_sha =
            Context::from_github(|k| (k == "GITHUB_EVENT_NAME").then(|| "push".to_owned()), None);
        assert!(format!("{:#}", missing_sha.unwrap_err()).contains("GITHUB_SHA"));
        let bad_sha = gh_with(&[("GITHUB_EVENT_NAME", "push"), ("GITHUB_SHA", "zzz")], None);
        let blank_sha = gh_with(&[("GITHUB_EVENT_NAME", "push"), ("GITHUB_SHA", " ")], None);
        let blank_sha = format!("{:#}", blank_sha.unwrap_err());
        assert!(blank_sha.contains("GITHUB_SHA is not set"), "a blank value counts as unset");
        assert!(bad_sha.is_err());
        let no_event = Context::from_github(|k| (k == "GITHUB_SHA").then(|| SHA.to_owned()), None);
        assert!(no_event.is_err());
    }

    type EnvCase<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

    #[test]
    fn events_and_refs() {
        let cases: &[EnvCase<'_>] = &[
            (
                &[("GITHUB_EVENT_NAME", "push"), ("GITHUB_REF", "refs/heads/main")],
                &["main", "sha-356defb"],
            ),
            (
                &[("GITHUB_EVENT_NAME", "workflow_dispatch"), ("GITHUB_REF", "refs/heads/dev")],
                &["dev", "sha-356defb"],
            ),
            (
                &[("GITHUB_EVENT_NAME", "pull_request"), ("GITHUB_REF", "refs/pull/9/head")],
                // metadata-action strips only `/merge`: `pr-9-head`
                &["pr-9-head", "sha-356defb"],
            ),
            (
                &[("GITHUB_EVENT_NAME", "release"), ("GITHUB_REF", "refs/tags/v3.1.4")],
                &["3.1.4", "3.1", "3", "sha-356defb", "latest"],
            ),
            (&[("GITHUB_EVENT_NAME", "schedule")], &["sha-356defb"]),
        ];
        for (vars, want) in cases {
            let ctx = gh(vars);
            assert_eq!(final_tags(&ctx, &[]).unwrap().0, *want, "{vars:?}");
        }
    }

    #[test]
    fn explicit_tags() {
        let ctx = push("refs/tags/v1.2.3");
        let extra = vec!["stable".to_owned(), "1.2.3".to_owned(), "Release_2024.05".to_owned()];
        let (tags, _) = final_tags(&ctx, &extra).unwrap();
        assert_eq!(
            tags,
            ["1.2.3", "1.2", "1", "stable", "Release_2024.05", "sha-356defb", "latest"]
        );
        for bad in ["", "-x", ".x", "a+b", "a/b", "ä", &"a".repeat(129)] {
            let err = final_tags(&ctx, &[bad.to_owned()]).expect_err(bad).to_string();
            assert!(err.contains("[A-Za-z0-9_][A-Za-z0-9_.-]"), "{bad}: {err}");
        }
        assert!(final_tags(&ctx, &["a".repeat(128)]).is_ok());
        assert!(final_tags(&ctx, &["_x".to_owned()]).is_ok());
    }

    /// metadata-action reads the default branch from the payload only: in
    /// GitHub Actions no payload means not the default branch (never a
    /// guess); outside it the remote's HEAD, else `main`.
    #[test]
    fn is_default_branch_follows_metadata_action() {
        let repo = |b: &str| serde_json::json!({"repository": {"default_branch": b}});
        let on = |event: &str, r: &str, payload: Option<Value>| {
            let vars = [("GITHUB_EVENT_NAME", event), ("GITHUB_REF", r)];
            gh_with(&vars, payload.as_ref()).unwrap().is_default_branch()
        };
        let cases: &[(&str, &str, Option<Value>, bool)] = &[
            ("push", "refs/heads/main", None, false),
            ("push", "refs/heads/main", Some(repo("main")), true),
            ("push", "refs/heads/trunk", Some(repo("trunk")), true),
            ("push", "refs/heads/dev", Some(repo("main")), false),
            ("push", "refs/tags/v1.0.0", Some(repo("main")), false),
            ("schedule", "refs/heads/dev", None, true),
            ("issues", "refs/heads/dev", Some(repo("main")), true),
        ];
        for (event, r, payload, want) in cases {
            assert_eq!(on(event, r, payload.clone()), *want, "{event} {r} {payload:?}");
        }
        let mut local = Context::from_git(SHA, Some("main"), &[]).unwrap();
        assert!(local.is_default_branch(), "locally `main` when unknown");
        local.default_branch = Some("trunk".into());
        assert!(!local.is_default_branch());
        let trunk = Context::from_git(SHA, Some("trunk"), &[]).unwrap();
        assert!(Context { default_branch: Some("trunk".into()), ..trunk }.is_default_branch());
    }

    #[test]
    fn registries() {
        let local = Context::from_git(SHA, Some("main"), &[]).unwrap();
        assert_eq!(resolve_registry(&local, None).unwrap(), "localhost:5000");
        assert_eq!(resolve_registry(&local, Some("")).unwrap(), "localhost:5000");
        assert_eq!(
            resolve_registry(&local, Some("registry.example.com:443/team/")).unwrap(),
            "registry.example.com:443/team"
        );
        let ci = push("refs/heads/main");
        assert_eq!(resolve_registry(&ci, None).unwrap(), "ghcr.io/acme");
        assert_eq!(resolve_registry(&ci, Some("localhost:5000")).unwrap(), "localhost:5000");
        for ok in ["localhost:5000", "ghcr.io/RiverOnVenus", "ghcr.io/a-b/c_d", "10.0.0.1:5000/x.y"]
        {
            check_registry(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "ghcr.io/",
            "ghcr.io//x",
            "host:port",
            "ghcr.io/a b",
            "ghcr.io/-a",
            "ghcr.io/a___b",
            "-h.io",
        ] {
            assert!(check_registry(bad).is_err(), "{bad}");
        }
        let mut no_owner = push("refs/heads/main");
        no_owner.owner = None;
        assert!(resolve_registry(&no_owner, None).is_err());
    }

    #[test]
    fn labels_are_the_eight_oci_ones() {
        let pkg = PackageInfo {
            name: "brokkr-broker".into(),
            description: Some("Brokkr broker".into()),
            license: Some("Apache-2.0".into()),
            repository: Some("https://github.com/brokkr-dev/brokkr".into()),
            ..Default::default()
        };
        let broker = component("broker").unwrap();
        let ci = gh(&[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_REPOSITORY", "RiverOnVenus/brokkr"),
        ]);
        let l = labels(&ci, broker, &pkg, "2024-05-01T12:00:00Z");
        let want: BTreeMap<String, String> = [
            ("title", "brokkr-broker"),
            ("description", "Brokkr broker"),
            ("url", "https://github.com/RiverOnVenus/brokkr"),
            ("source", "https://github.com/RiverOnVenus/brokkr"),
            ("version", "1.2.3"),
            ("created", "2024-05-01T12:00:00Z"),
            ("revision", SHA),
            ("licenses", "Apache-2.0"),
        ]
        .iter()
        .map(|(k, v)| (format!("org.opencontainers.image.{k}"), v.to_string()))
        .collect();
        assert_eq!(l, want);

        let local = Context::from_git(SHA, None, &[]).unwrap();
        let l = labels(
            &local,
            broker,
            &PackageInfo { description: Some(String::new()), ..pkg.clone() },
            "x",
        );
        assert_eq!(l["org.opencontainers.image.url"], "https://github.com/brokkr-dev/brokkr");
        assert_eq!(l["org.opencontainers.image.version"], "sha-356defb");
        assert_eq!(l["org.opencontainers.image.description"], broker.description);
        let none = PackageInfo { description: None, license: None, ..pkg.clone() };
        let l = labels(&local, broker, &none, "x");
        assert_eq!(l["org.opencontainers.image.description"], broker.description);
        assert_eq!(l["org.opencontainers.image.licenses"], "");
        let pr = gh(&[("GITHUB_EVENT_NAME", "pull_request"), ("GITHUB_REF", "refs/pull/5/merge")]);
        assert_eq!(labels(&pr, broker, &pkg, "x")["org.opencontainers.image.version"], "pr-5");
    }

    #[test]
    fn package_info_from_cargo_metadata() {
        let json = r#"{"packages":[
            {"name":"xtask","description":"x","license":"MIT","repository":null},
            {"name":"brokkr-broker","description":"Brokkr broker","license":"Apache-2.0","repository":"https://github.com/brokkr-dev/brokkr"}
        ]}"#;
        let meta = serde_json::from_str::<CargoMetadata>(json).unwrap();
        let info = package_info(&meta, "brokkr-broker").unwrap();
        assert_eq!(
            info,
            PackageInfo {
                name: "brokkr-broker".into(),
                description: Some("Brokkr broker".into()),
                license: Some("Apache-2.0".into()),
                repository: Some("https://github.com/brokkr-dev/brokkr".into()),
                ..Default::default()
            }
        );
        assert_eq!(package_info(&meta, "xtask").unwrap().repository, None);
        assert!(package_info(&meta, "nope").is_err());
        assert!(serde_json::from_str::<CargoMetadata>("not json").is_err());
    }

    #[test]
    fn rfc3339_dates() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00Z"),
            (1, "1970-01-01T00:00:01Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_164_800, "2024-02-29T00:00:00Z"),
            (1_714_564_800, "2024-05-01T12:00:00Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (-62_135_596_800, "0001-01-01T00:00:00Z"),
        ];
        for (secs, want) in cases {
            assert_eq!(rfc3339_utc(*secs), *want, "{secs}");
        }
    }

    #[test]
    fn created_honours_source_date_epoch() {
        assert_eq!(
            created(Some("1714564800"), Timestamp::UNIX_EPOCH).unwrap(),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(created(None, Timestamp::UNIX_EPOCH).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            created(Some(""), Timestamp::from_second(1).unwrap()).unwrap(),
            "1970-01-01T00:00:01Z"
        );
        assert!(created(Some("yesterday"), Timestamp::UNIX_EPOCH).is_err());
        assert!(created(Some("1.5"), Timestamp::UNIX_EPOCH).is_err());
    }
}
