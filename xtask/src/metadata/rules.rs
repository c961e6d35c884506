//! The tag rules as data, in docker/metadata-action's own syntax: the
//! `tags` input (one rule a line, `type=...,key=value`, CSV-quoted when a
//! value holds a comma) and the `flavor` input (`latest=auto|true|false`,
//! `prefix=`, `suffix=`, `onlatest=`). Parsing mirrors metadata-action's
//! `src/tag.ts` and `src/flavor.ts` (defaults and priorities included), but
//! refuses what it would silently ignore: an unknown attribute, a template
//! placeholder it does not know, a semver pattern without a placeholder.

use std::{collections::BTreeMap, path::Path};

use anyhow::{anyhow, bail, Context as _, Result};
use serde::Deserialize;

use super::template::{self, Template};

/// The declared rules, beside the workflow; read by `tags`, `build-image`,
/// `manifest` (and so by `workflow run`).
pub const RULES_FILE: &str = ".github/image-tags.yml";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Schedule,
    Semver,
    Match,
    Edge,
    Ref,
    Raw,
    Sha,
}

/// Type name, kind, default priority (metadata-action's `DefaultPriorities`)
/// and the attributes of the type besides [`COMMON_ATTRS`].
const KINDS: &[(&str, Kind, i64, &[&str])] = &[
    ("schedule", Kind::Schedule, 1000, &["pattern"]),
    ("semver", Kind::Semver, 900, &["pattern", "value", "match"]),
    ("match", Kind::Match, 800, &["pattern", "group", "value"]),
    ("edge", Kind::Edge, 700, &["branch"]),
    ("ref", Kind::Ref, 600, &["event"]),
    ("raw", Kind::Raw, 200, &["value"]),
    ("sha", Kind::Sha, 100, &["format"]),
];

const COMMON_ATTRS: &[&str] = &["prefix", "suffix", "enable", "priority"];

/// Attributes a type requires, and their valid values (any when empty).
const REQUIRED: &[(Kind, &str, &[&str])] = &[
    (Kind::Semver, "pattern", &[]),
    (Kind::Match, "pattern", &[]),
    (Kind::Ref, "event", &["branch", "tag", "pr"]),
    (Kind::Raw, "value", &[]),
    (Kind::Sha, "format", &["short", "long"]),
];

/// metadata-action's rules when the `tags` input is empty.
pub const DEFAULT_TAGS: &str =
    "type=schedule\ntype=ref,event=branch\ntype=ref,event=tag\ntype=ref,event=pr";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRule {
    pub kind: Kind,
    /// After metadata-action's defaults (`prefix` present only when given,
    /// or defaulted for `ref,event=pr` and `sha`).
    pub attrs: BTreeMap<String, String>,
    /// Higher first; ties keep the order of the lines.
    pub priority: i64,
    /// 1-based line in the block and the line as written, for messages.
    pub line: usize,
    pub text: String,
}

impl TagRule {
    /// An attribute's value, `""` when absent.
    pub fn get(&self, key: &str) -> &str {
        self.attrs.get(key).map_or("", String::as_str)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flavor {
    /// `latest=true|false`; `None` for `auto` (the first rule that gives a tag decides).
    pub latest: Option<bool>,
    /// Global prefix and suffix, for rules without their own.
    pub prefix: String,
    pub suffix: String,
    /// `prefix=...,onlatest=true`: the prefix applies to `latest` too.
    pub prefix_latest: bool,
    pub suffix_latest: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Sorted by priority, highest first (stable, as metadata-action sorts).
    pub tags: Vec<TagRule>,
    pub flavor: Flavor,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RulesFile {
    tags: String,
    flavor: String,
}

impl Rules {
    /// Parses the two blocks; an empty `tags` block means [`DEFAULT_TAGS`].
    /// Errors name the block, the line and the valid choices.
    pub fn parse(tags: &str, flavor: &str) -> Result<Rules> {
        let block = Some(tags)
            .filter(|t| lines(t).next().is_some())
            .unwrap_or(DEFAULT_TAGS);
        let mut tags = lines(block)
            .map(|(n, l)| parse_rule(n, l).with_context(|| format!("tags line {n} `{l}`")))
            .collect::<Result<Vec<_>>>()?;
        tags.sort_by_key(|r| std::cmp::Reverse(r.priority));
        let flavor = parse_flavor(flavor)?;
        Ok(Rules { tags, flavor })
    }

    /// Reads [`RULES_FILE`] under `root`. A missing file gives
    /// metadata-action's defaults and a notice (the second value).
    pub fn load(root: &Path) -> Result<(Rules, Option<String>)> {
        let path = root.join(RULES_FILE);
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let notice = format!(
                    "{RULES_FILE} not found: using docker/metadata-action's default rules \
                     ({}); declare brokkr's there",
                    DEFAULT_TAGS.replace('\n', "; ")
                );
                return Ok((Rules::parse("", "")?, Some(notice)));
            }
            read => read.with_context(|| format!("reading {}", path.display()))?,
        };
        let at = path.display();
        let file: RulesFile = serde_yaml::from_str(&text)
            .with_context(|| format!("{at}: expected `tags: |` and `flavor: |` blocks"))?;
        let rules = Rules::parse(&file.tags, &file.flavor).with_context(|| format!("in {at}"))?;
        Ok((rules, None))
    }
}

/// Non-empty lines with their 1-based numbers.
fn lines(block: &str) -> impl Iterator<Item = (usize, &str)> {
    (block.lines().enumerate())
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// The `key=value` fields of one line, CSV-quoted as metadata-action's
/// `csv-parse` reads them: split at the first `=`, both sides trimmed, the
/// key lower-cased; a field without a key is `None`.
fn fields(line: &str) -> Result<Vec<(Option<String>, String)>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let record = (reader.records().next().transpose())
        .context("not a comma-separated line (check the quotes)")?
        .unwrap_or_default();
    Ok(record
        .iter()
        .map(|field| match field.split_once('=') {
            Some((k, v)) if !k.is_empty() => (Some(k.trim().to_ascii_lowercase()), v.trim().into()),
            _ => (None, field.trim().to_owned()),
        })
        .collect())
}

fn parse_rule(line: usize, text: &str) -> Result<TagRule> {
    let mut attrs = BTreeMap::new();
    for (key, value) in fields(text)? {
        attrs.insert(key.unwrap_or_else(|| "value".into()), value);
    }
    let ty = attrs.remove("type").unwrap_or_else(|| "raw".into());
    let &(name, kind, default_priority, own) =
        KINDS.iter().find(|k| k.0 == ty).ok_or_else(|| {
            let names: Vec<&str> = KINDS.iter().map(|k| k.0).collect();
            let pep440 = if ty == "pep440" {
                " (pep440 is not supported here)"
            } else {
                ""
            };
            anyhow!(
                "unknown type `{ty}`; valid types: {}{pep440}",
                names.join(", ")
            )
        })?;
    let valid = [own, COMMON_ATTRS].concat();
    if let Some(key) = attrs.keys().find(|k| !valid.contains(&k.as_str())) {
        bail!(
            "unknown attribute `{key}` for type={name}; valid: {}",
            valid.join(", ")
        );
    }
    let is_pr = attrs.get("event").is_some_and(|e| e == "pr");
    let defaults: &[(&str, &str)] = match kind {
        Kind::Schedule => &[("pattern", "nightly")],
        Kind::Match => &[("group", "0")],
        Kind::Ref if is_pr => &[("prefix", "pr-")],
        Kind::Sha => &[("prefix", "sha-"), ("format", "short")],
        _ => &[],
    };
    for (k, v) in defaults.iter().chain(&[("enable", "true")]) {
        attrs.entry(k.to_string()).or_insert_with(|| v.to_string());
    }
    for (_, key, choices) in REQUIRED.iter().filter(|r| r.0 == kind) {
        let valid = |v: &String| choices.is_empty() || choices.contains(&v.as_str());
        if !attrs.get(*key).is_some_and(valid) {
            let want = if choices.is_empty() {
                "...".into()
            } else {
                choices.join("|")
            };
            bail!("type={name} needs {key}={want}");
        }
    }
    if kind == Kind::Match && attrs["group"].parse::<usize>().is_err() {
        bail!("type=match: `group` is a group number (0 for the whole match)");
    }
    let priority = match attrs.get("priority") {
        Some(p) => p
            .parse()
            .map_err(|_| anyhow!("`priority={p}` is not a whole number"))?,
        None => default_priority,
    };
    check_templates(kind, &attrs)?;
    Ok(TagRule {
        kind,
        attrs,
        priority,
        line,
        text: text.to_owned(),
    })
}

/// Every templated attribute parses and uses only the placeholders of its
/// place; a semver pattern has at least one.
fn check_templates(kind: Kind, attrs: &BTreeMap<String, String>) -> Result<()> {
    for (key, value) in attrs {
        let names = match (kind, key.as_str()) {
            (Kind::Semver, "pattern") => template::SEMVER,
            (Kind::Schedule, "pattern") => template::DATES,
            (_, "prefix" | "suffix" | "enable" | "value") => template::GLOBAL,
            _ => continue,
        };
        let t = Template::parse(value).with_context(|| format!("{key}=`{value}`"))?;
        t.check(names).with_context(|| format!("{key}=`{value}`"))?;
        if kind == Kind::Semver && key == "pattern" && !t.has_placeholder() {
            let all: Vec<String> = names.iter().map(|n| format!("{{{{{n}}}}}")).collect();
            bail!(
                "pattern=`{value}` has no placeholder; use {}",
                all.join(", ")
            );
        }
    }
    Ok(())
}

fn parse_flavor(block: &str) -> Result<Flavor> {
    let mut f = Flavor::default();
    for (n, line) in lines(block) {
        let at = || format!("flavor line {n} `{line}`");
        let mut onlatest_for = "";
        for (key, value) in fields(line).with_context(at)? {
            let Some(key) = key else {
                bail!("{}: `{value}` is not key=value", at());
            };
            match (key.as_str(), value.as_str()) {
                ("latest", "auto") => f.latest = None,
                ("latest", "true" | "false") => f.latest = Some(value == "true"),
                ("latest", _) => bail!("{}: latest is auto, true or false", at()),
                ("prefix", _) => (f.prefix, onlatest_for) = (value, "prefix"),
                ("suffix", _) => (f.suffix, onlatest_for) = (value, "suffix"),
                ("onlatest", "true" | "false") if onlatest_for == "prefix" => {
                    f.prefix_latest = value == "true"
                }
                ("onlatest", "true" | "false") if onlatest_for == "suffix" => {
                    f.suffix_latest = value == "true"
                }
                ("onlatest", "true" | "false") => {}
                ("onlatest", _) => bail!("{}: onlatest is true or false", at()),
                _ => bail!(
                    "{}: unknown flavor `{key}`; valid: latest, prefix, suffix, onlatest",
                    at()
                ),
            }
        }
    }
    Ok(f)
}
