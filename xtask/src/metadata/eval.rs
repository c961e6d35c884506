//! Applies [`Rules`] to a [`Context`] as docker/metadata-action's `src/meta.ts` does. One
//! deliberate difference: a tag invalid for Docker after its `sanitizeTag` (leading `.` or
//! `-`, over 128 characters) is repaired ([`super::sanitize_tag`]) with a warning.

use anyhow::{bail, Context as _, Result};
use indexmap::IndexSet;

use super::{
    non_empty,
    rules::{format_date, render, Rules, TagRule, GLOBAL, SEMVER},
    Context, RAW_PRIORITY,
};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    /// metadata-action's `version` output: the rules' first tag (never an explicit one).
    pub version: String,
    /// Tag names in order, explicit tags included, `latest` last.
    pub tags: Vec<String>,
    /// For stderr, once each: a tag that is not a semantic version, a repaired tag, a missing ref.
    pub warnings: Vec<String>,
}

/// By priority, `extra` explicit tags (checked) as `type=raw`; the first rule with a value
/// decides `latest` under `latest=auto`. Errors on an `enable` giving neither true nor false.
pub fn evaluate(rules: &Rules, ctx: &Context, extra: &[String]) -> Result<Tags> {
    extra.iter().try_for_each(|t| super::check_explicit_tag(t))?;
    let (f, mut warnings, mut latest, mut placed) = (&rules.flavor, Vec::new(), None, Vec::new());
    if ctx.git_ref.is_none() {
        let why = if ctx.github_actions {
            format!("GITHUB_REF is not set for event `{}`", ctx.event)
        } else {
            format!("HEAD is detached at {} and no branch or tag points to it", ctx.short_sha())
        };
        warnings.push(format!("{why}: only the sha tag"));
    }
    for rule in &rules.tags {
        let at = format!("tags line {} `{}`", rule.line, rule.text);
        let enable = rule.get("enable");
        match global(ctx, enable).with_context(|| at.clone())?.as_str() {
            "true" => {}
            "false" => continue,
            other => bail!("{at}: enable=`{enable}` gives `{other}`; it must give true or false"),
        }
        let Some((value, auto)) = value(rule, ctx, &mut warnings).with_context(|| at)? else {
            continue;
        };
        let pre = global(ctx, rule.attrs.get("prefix").unwrap_or(&f.prefix))?;
        let suf = global(ctx, rule.attrs.get("suffix").unwrap_or(&f.suffix))?;
        if let Some(tag) = docker_tag(&format!("{pre}{value}{suf}"), &mut warnings) {
            latest.get_or_insert(f.latest.unwrap_or(auto));
            placed.push((rule.priority, tag));
        }
    }
    let version = placed.first().map(|p| p.1.clone()).unwrap_or_default();
    let at = placed.iter().take_while(|p| p.0 >= RAW_PRIORITY).count();
    placed.splice(at..at, extra.iter().map(|t| (RAW_PRIORITY, t.clone())));
    if latest == Some(true) {
        let pre: &str = if f.prefix_latest { &f.prefix } else { "" };
        let suf: &str = if f.suffix_latest { &f.suffix } else { "" };
        placed.extend(docker_tag(&format!("{pre}latest{suf}"), &mut warnings).map(|t| (0, t)));
    }
    let tags = placed.into_iter().map(|p| p.1).collect::<IndexSet<_>>().into_iter().collect();
    let warnings = warnings.into_iter().collect::<IndexSet<_>>().into_iter().collect();
    Ok(Tags { version, tags, warnings })
}

/// [`super::sanitize_tag`], with a warning when metadata-action would tag otherwise.
fn docker_tag(value: &str, warnings: &mut Vec<String>) -> Option<String> {
    let ma = super::metadata_action_tag(value);
    let tag = super::sanitize_tag(value);
    if !value.is_empty() && tag.as_deref() != Some(ma.as_str()) {
        let what = tag.as_ref().map(|t| format!("`{t}` is used instead"));
        let what = what.unwrap_or_else(|| "dropped, as it is empty once valid".to_owned());
        warnings.push(format!("`{ma}` (what docker/metadata-action would tag) is not a valid Docker tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}`): {what}"));
    }
    tag
}

/// A rule's raw value and whether it asks for `latest` under `latest=auto`; warnings to `w`.
fn value(rule: &TagRule, ctx: &Context, w: &mut Vec<String>) -> Result<Option<(String, bool)>> {
    let git_ref = ctx.git_ref.as_deref().unwrap_or("");
    let tag = git_ref.strip_prefix("refs/tags/");
    let mut raw = match rule.get("value") {
        "" => tag.unwrap_or_default().to_owned(),
        v => global(ctx, v)?,
    };
    Ok(match rule.kind {
        "schedule" if ctx.event.contains("schedule") => {
            Some((global(ctx, rule.get("pattern"))?, false))
        }
        "semver" | "match" if tag.is_none() && rule.get("value").is_empty() => None,
        "semver" => {
            if let Some(m) = non_empty(rule.get("match")) {
                match regex(m)?.captures(&raw) {
                    Some(c) => raw = c.get(1).map_or("", |m| m.as_str()).to_owned(),
                    None => w.push(format!("{m} does not match {raw}")),
                }
            }
            // `/` becomes `-`, then node-semver's check (super::parse_version)
            let raw = raw.replace('/', "-");
            let Some(v) = super::parse_version(&raw) else {
                w.push(format!("tag `{raw}` is not a semantic version (https://semver.org, e.g. v1.2.3): no version tags"));
                return Ok(None);
            };
            let (pattern, stable) = (rule.get("pattern"), v.pre.is_empty());
            let version = semver::Version { build: semver::BuildMetadata::EMPTY, ..v.clone() };
            // metadata-action's `isRawStatement`: the pattern is exactly `{{raw}}`
            let inner = pattern.strip_prefix("{{").and_then(|p| p.strip_suffix("}}"));
            if !stable && inner.map(str::trim) != Some("raw") {
                return Ok(Some((version.to_string(), false)));
            }
            let value = render(pattern, SEMVER, |p| match p.name.as_str() {
                "version" => Ok(version.to_string()),
                "major" => Ok(v.major.to_string()),
                "minor" => Ok(v.minor.to_string()),
                "patch" => Ok(v.patch.to_string()),
                _ => Ok(raw.clone()),
            })?;
            Some((value, stable))
        }
        "match" => {
            let pattern = rule.get("pattern");
            let group: usize = rule.get("group").parse().unwrap_or(0);
            let warning = match regex(pattern)?.captures(&raw).map(|c| c.get(group)) {
                Some(Some(m)) => return Ok(Some((m.as_str().to_owned(), true))),
                Some(None) => format!("group {group} does not exist for {pattern} pattern"),
                None => format!("{pattern} does not match {raw}"),
            };
            w.push(warning);
            None
        }
        "edge" => {
            let want = non_empty(rule.get("branch")).or(ctx.default_branch.as_deref());
            (ctx.branch() == Some(want.unwrap_or("main"))).then(|| ("edge".to_owned(), false))
        }
        "ref" => match rule.get("event") {
            "branch" => ctx.branch().map(|b| (b.to_owned(), false)),
            "tag" => tag.map(|t| (t.to_owned(), true)),
            _ => (git_ref.strip_prefix("refs/pull/"))
                .map(|n| (n.strip_suffix("/merge").unwrap_or(n).to_owned(), false)),
        },
        "raw" => Some((global(ctx, rule.get("value"))?, false)),
        "sha" if rule.get("format") == "long" => Some((ctx.sha.clone(), false)),
        "sha" => Some((ctx.short_sha().into(), false)),
        _ => None,
    })
}

/// A JavaScript regex, `text` or `/text/flags` (`i`, `m`, `s` kept; `g` is moot here).
fn regex(pattern: &str) -> Result<regex::Regex> {
    let source = match pattern.strip_prefix('/').and_then(|p| p.rsplit_once('/')) {
        Some((body, flags)) if !body.is_empty() => {
            format!("(?{}:{body})", flags.replace(|f: char| !"ims".contains(f), ""))
        }
        _ => pattern.to_owned(),
    };
    regex::Regex::new(&source).with_context(|| format!("regular expression `{pattern}`"))
}

/// metadata-action's `setGlobalExp`: `text` with the global placeholders.
fn global(ctx: &Context, text: &str) -> Result<String> {
    let tag = ctx.git_ref.as_deref().and_then(|r| r.strip_prefix("refs/tags/"));
    render(text, GLOBAL, |p| match p.name.as_str() {
        "branch" => Ok(ctx.branch().unwrap_or_default().to_owned()),
        "tag" => Ok(tag.unwrap_or_default().to_owned()),
        "sha" => Ok(ctx.short_sha().to_owned()),
        "base_ref" => Ok(ctx.base_ref.clone().unwrap_or_default()),
        "is_default_branch" => Ok(ctx.is_default_branch().to_string()),
        "is_not_default_branch" => Ok((!ctx.is_default_branch()).to_string()),
        "date" => format_date(ctx.now, p),
        _ => match ctx.commit_date {
            Some(at) => format_date(at, p),
            None => bail!(
                "{{{{commit_date}}}} needs the date of commit {}, which is unknown here",
                ctx.sha
            ),
        },
    })
}
