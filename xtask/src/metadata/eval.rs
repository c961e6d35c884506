//! Applies [`Rules`] to a [`Context`] as docker/metadata-action's
//! `src/meta.ts` does (`getVersion`, `setValue`, `setVersion`,
//! `generateTags`): rules by priority, the first value is the `version`,
//! the first rule that gives a value decides `latest` (flavor
//! `latest=auto`), duplicates collapse.
//!
//! One deliberate difference, a documented rule: metadata-action only
//! replaces characters outside `[A-Za-z0-9_.-]`; a tag that then starts
//! with `.` or `-`, or is longer than 128 characters, is not a valid Docker
//! tag. Here it is repaired ([`super::sanitize_tag`]) with a warning that
//! names what metadata-action would have produced; one left empty is dropped.

use anyhow::{bail, Context as _, Result};

use super::{
    rules::{Kind, Latest, Rules, TagRule},
    sanitize_tag,
    template::{self, Placeholder, Template},
    Context, RAW_PRIORITY,
};

/// What the rules give for one context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    /// metadata-action's `version` output: the first tag from the rules
    /// (explicit tags never change it); empty when there is none.
    pub version: String,
    /// Tag names in order, explicit tags included, `latest` last.
    pub tags: Vec<String>,
    /// Messages for stderr (a tag ref that is not a semantic version, a
    /// repaired or dropped tag, a missing ref).
    pub warnings: Vec<String>,
}

/// The tags of `rules` for `ctx`, with `extra` explicit tags (already valid
/// Docker tags, see [`super::check_explicit_tag`]) placed as `type=raw`
/// rules of priority 200 would be. Errors on an `enable` that is not `true`
/// or `false` after templating, or a template that cannot be rendered.
pub fn evaluate(rules: &Rules, ctx: &Context, extra: &[String]) -> Result<Tags> {
    for t in extra {
        super::check_explicit_tag(t)?;
    }
    let mut out = Tags::default();
    let mut latest = None;
    let mut placed: Vec<(i64, String)> = Vec::new();
    if ctx.git_ref.is_none() {
        out.warnings.push(ctx.no_ref_warning());
    }
    for rule in &rules.tags {
        let at = || format!("tags line {} `{}`", rule.line, rule.text);
        let enable = global(ctx, rule.get("enable")).with_context(at)?;
        if !matches!(enable.as_str(), "true" | "false") {
            bail!(
                "{}: enable=`{}` gives `{enable}`; it must give true or false",
                at(),
                rule.get("enable")
            );
        }
        if enable == "false" {
            continue;
        }
        let Some((value, auto)) = value(rule, ctx, &mut out.warnings).with_context(at)? else {
            continue;
        };
        let value = affixed(rules, rule, ctx, value)?;
        if value.is_empty() {
            continue;
        }
        let Some(tag) = docker_tag(&value, &mut out.warnings) else {
            continue;
        };
        latest.get_or_insert(match rules.flavor.latest {
            Latest::Auto => auto,
            l => l == Latest::Yes,
        });
        if out.version.is_empty() {
            out.version = tag.clone();
        }
        if !placed.iter().any(|(_, t)| *t == tag) {
            placed.push((rule.priority, tag));
        }
    }
    let at = placed
        .iter()
        .position(|(p, _)| *p < RAW_PRIORITY)
        .unwrap_or(placed.len());
    let extra = extra.iter().map(|t| (RAW_PRIORITY, t.clone()));
    placed.splice(at..at, extra);
    for (_, t) in placed {
        if !out.tags.contains(&t) {
            out.tags.push(t);
        }
    }
    if latest == Some(true) {
        let f = &rules.flavor;
        let pre = if f.prefix_latest {
            f.prefix.as_str()
        } else {
            ""
        };
        let suf = if f.suffix_latest {
            f.suffix.as_str()
        } else {
            ""
        };
        if let Some(t) = docker_tag(&format!("{pre}latest{suf}"), &mut out.warnings) {
            if !out.tags.contains(&t) {
                out.tags.push(t);
            }
        }
    }
    Ok(out)
}

/// metadata-action's `sanitizeTag` (runs outside `[A-Za-z0-9_.-]` become
/// `-`), then Docker's grammar; `None` when nothing is left.
fn docker_tag(value: &str, warnings: &mut Vec<String>) -> Option<String> {
    let ma = super::metadata_action_tag(value);
    let tag = sanitize_tag(value);
    if tag.as_deref() != Some(ma.as_str()) {
        let what = match &tag {
            Some(t) => format!("`{t}` is used instead"),
            None => "dropped, as it is empty once valid".to_owned(),
        };
        push_once(
            warnings,
            format!(
                "`{ma}` (what docker/metadata-action would tag) is not a valid Docker tag \
                 (`[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}`): {what}"
            ),
        );
    }
    tag
}

fn push_once(warnings: &mut Vec<String>, w: String) {
    if !warnings.contains(&w) {
        warnings.push(w);
    }
}

/// `setValue`: the rule's prefix and suffix, else the flavor's.
fn affixed(rules: &Rules, rule: &TagRule, ctx: &Context, value: String) -> Result<String> {
    let f = &rules.flavor;
    let pre = rule.attrs.get("prefix").unwrap_or(&f.prefix);
    let suf = rule.attrs.get("suffix").unwrap_or(&f.suffix);
    Ok(format!("{}{value}{}", global(ctx, pre)?, global(ctx, suf)?))
}

/// The rule's raw value and whether it asks for `latest` under
/// `latest=auto`; `None` when the rule gives nothing here.
fn value(
    rule: &TagRule,
    ctx: &Context,
    warnings: &mut Vec<String>,
) -> Result<Option<(String, bool)>> {
    let git_ref = ctx.git_ref.as_deref().unwrap_or("");
    let tag = git_ref.strip_prefix("refs/tags/");
    let branch = ctx.branch();
    Ok(match rule.kind {
        Kind::Schedule if ctx.event.contains("schedule") => Some((
            render(rule.get("pattern"), |p| global_value(ctx, p))?,
            false,
        )),
        Kind::Semver | Kind::Match if tag.is_none() && rule.get("value").is_empty() => None,
        Kind::Semver => {
            let raw = match rule.get("value") {
                "" => tag.unwrap_or_default().to_owned(),
                v => global(ctx, v)?,
            };
            semver_value(rule, raw, warnings)?
        }
        Kind::Match => {
            let raw = match rule.get("value") {
                "" => tag.unwrap_or_default().to_owned(),
                v => global(ctx, v)?,
            };
            let group: usize = rule.get("group").parse().unwrap_or(0);
            let pattern = rule.get("pattern");
            let found = regex(pattern)?
                .captures(&raw)
                .map(|c| c.get(group).map(|m| m.as_str().to_owned()));
            match found {
                Some(Some(v)) => Some((v, true)),
                Some(None) => {
                    push_once(
                        warnings,
                        format!("group {group} does not exist for {pattern} pattern"),
                    );
                    None
                }
                None => {
                    push_once(warnings, format!("{pattern} does not match {raw}"));
                    None
                }
            }
        }
        Kind::Edge => {
            let want = match rule.get("branch") {
                "" => ctx.default_branch(),
                b => b,
            };
            (branch == Some(want)).then(|| ("edge".to_owned(), false))
        }
        Kind::Ref => match rule.get("event") {
            "branch" => branch.map(|b| (b.to_owned(), false)),
            "tag" => tag.map(|t| (t.to_owned(), true)),
            _ => git_ref
                .strip_prefix("refs/pull/")
                .map(|n| (n.strip_suffix("/merge").unwrap_or(n).to_owned(), false)),
        },
        Kind::Raw => Some((global(ctx, rule.get("value"))?, false)),
        Kind::Sha => Some(match rule.get("format") {
            "long" => (ctx.sha.clone(), false),
            _ => (ctx.short_sha().to_owned(), false),
        }),
        Kind::Schedule => None,
    })
}

/// `type=semver`: `match=` picks group 1, `/` becomes `-`, then node-semver's
/// `valid` (an optional leading `v`, semver.org 2.0.0) decides.
fn semver_value(
    rule: &TagRule,
    mut raw: String,
    warnings: &mut Vec<String>,
) -> Result<Option<(String, bool)>> {
    if !rule.get("match").is_empty() {
        match regex(rule.get("match"))?.captures(&raw) {
            Some(c) => raw = c.get(1).map_or("", |m| m.as_str()).to_owned(),
            None => push_once(
                warnings,
                format!("{} does not match {raw}", rule.get("match")),
            ),
        }
    }
    let raw = raw.replace('/', "-");
    let trimmed = raw.trim();
    let Ok(v) = semver::Version::parse(trimmed.strip_prefix('v').unwrap_or(trimmed)) else {
        push_once(
            warnings,
            format!("tag `{raw}` is not a semantic version (https://semver.org, e.g. v1.2.3): no version tags"),
        );
        return Ok(None);
    };
    let pattern = Template::parse(rule.get("pattern"))?;
    let stable = v.pre.is_empty();
    let version = if stable {
        format!("{}.{}.{}", v.major, v.minor, v.patch)
    } else {
        format!("{}.{}.{}-{}", v.major, v.minor, v.patch, v.pre)
    };
    if !stable && !pattern.is_raw_statement() {
        return Ok(Some((version, false)));
    }
    let value = pattern.render(|p| {
        Ok(match p.name.as_str() {
            "version" => version.clone(),
            "major" => v.major.to_string(),
            "minor" => v.minor.to_string(),
            "patch" => v.patch.to_string(),
            _ => raw.clone(),
        })
    })?;
    Ok(Some((value, stable)))
}

/// A JavaScript regular expression as metadata-action writes them: `text`
/// or `/text/flags` (flag `i` kept; `g` has no effect on a first match).
fn regex(pattern: &str) -> Result<regex::Regex> {
    let source = match pattern.strip_prefix('/').and_then(|p| p.rsplit_once('/')) {
        Some((body, flags)) if !body.is_empty() => {
            let kept: String = flags
                .chars()
                .filter(|f| matches!(f, 'i' | 'm' | 's'))
                .collect();
            if kept.is_empty() {
                body.to_owned()
            } else {
                format!("(?{kept}){body}")
            }
        }
        _ => pattern.to_owned(),
    };
    regex::Regex::new(&source).with_context(|| format!("regular expression `{pattern}`"))
}

fn render(text: &str, value: impl Fn(&Placeholder) -> Result<String>) -> Result<String> {
    Template::parse(text)?.render(value)
}

/// metadata-action's `setGlobalExp`: `text` with the global placeholders.
fn global(ctx: &Context, text: &str) -> Result<String> {
    render(text, |p| global_value(ctx, p))
}

fn global_value(ctx: &Context, p: &Placeholder) -> Result<String> {
    let git_ref = ctx.git_ref.as_deref().unwrap_or("");
    let bool_text = |b: bool| b.to_string();
    Ok(match p.name.as_str() {
        "branch" => ctx.branch().unwrap_or_default().to_owned(),
        "tag" => git_ref.strip_prefix("refs/tags/").unwrap_or("").to_owned(),
        "sha" => ctx.short_sha().to_owned(),
        "base_ref" => ctx.base_ref.clone().unwrap_or_default(),
        "is_default_branch" => bool_text(ctx.is_default_branch()),
        "is_not_default_branch" => bool_text(!ctx.is_default_branch()),
        "date" => template::format_date(ctx.now, fmt(p), p.tz.as_deref())?,
        _ => {
            let at = ctx.commit_date.with_context(|| {
                format!(
                    "{{{{commit_date}}}} needs the date of commit {}, which is unknown here",
                    ctx.sha
                )
            })?;
            template::format_date(at, fmt(p), p.tz.as_deref())?
        }
    })
}

fn fmt(p: &Placeholder) -> &str {
    p.format.as_deref().unwrap_or_default()
}
