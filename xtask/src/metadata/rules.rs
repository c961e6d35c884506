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

/// Rule types, named as metadata-action names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `type=schedule`: on `schedule` events, `pattern` (default `nightly`).
    Schedule,
    /// `type=semver`: a semantic version from the tag (or `value`).
    Semver,
    /// `type=match`: a regular expression group of the tag (or `value`).
    Match,
    /// `type=edge`: `edge` on `branch` (default: the default branch).
    Edge,
    /// `type=ref`: the branch, tag or pull request (`event=`).
    Ref,
    /// `type=raw`: `value`, templated.
    Raw,
    /// `type=sha`: the commit id (`format=short|long`).
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

/// metadata-action's rules when the `tags` input is empty.
pub const DEFAULT_TAGS: &str =
    "type=schedule\ntype=ref,event=branch\ntype=ref,event=tag\ntype=ref,event=pr";

/// One line of the `tags` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRule {
    /// The rule's type.
    pub kind: Kind,
    /// Attributes after metadata-action's defaults (`prefix` present only
    /// when given, or defaulted for `ref,event=pr` and `sha`).
    pub attrs: BTreeMap<String, String>,
    /// Higher first; ties keep the order of the lines.
    pub priority: i64,
    /// 1-based line in the block, for messages.
    pub line: usize,
    /// The line as written.
    pub text: String,
}

impl TagRule {
    /// An attribute's value, `""` when absent.
    pub fn get(&self, key: &str) -> &str {
        self.attrs.get(key).map_or("", String::as_str)
    }
}

/// `latest=` of the flavor: `auto` (the first rule that gives a tag decides), `true`, `false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latest {
    Auto,
    Yes,
    No,
}

/// The `flavor` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flavor {
    /// `latest=auto|true|false`.
    pub latest: Latest,
    /// Global prefix (rules without their own `prefix`).
    pub prefix: String,
    /// Global suffix (rules without their own `suffix`).
    pub suffix: String,
    /// `prefix=...,onlatest=true`: the prefix applies to `latest` too.
    pub prefix_latest: bool,
    /// `suffix=...,onlatest=true`.
    pub suffix_latest: bool,
}

/// A parsed `tags` block and `flavor` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Sorted by priority, highest first (stable, as metadata-action sorts).
    pub tags: Vec<TagRule>,
    /// The flavor.
    pub flavor: Flavor,
}

/// The YAML file [`RULES_FILE`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    tags: String,
    #[serde(default)]
    flavor: String,
}

impl Rules {
    /// Parses the two blocks; an empty `tags` block means metadata-action's
    /// [`DEFAULT_TAGS`]. Errors name the block, the line and the valid choices.
    pub fn parse(tags: &str, flavor: &str) -> Result<Rules> {
        let tags = if lines(tags).next().is_none() {
            DEFAULT_TAGS
        } else {
            tags
        };
        let mut rules = lines(tags)
            .map(|(n, l)| parse_rule(n, l).with_context(|| format!("tags line {n} `{l}`")))
            .collect::<Result<Vec<_>>>()?;
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
        Ok(Rules {
            tags: rules,
            flavor: parse_flavor(flavor)?,
        })
    }

    /// Reads [`RULES_FILE`] under `root`. A missing file gives
    /// metadata-action's defaults and a notice (the second value).
    pub fn load(root: &Path) -> Result<(Rules, Option<String>)> {
        let path = root.join(RULES_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let notice = format!(
                    "{RULES_FILE} not found: using docker/metadata-action's default rules \
                     ({}); declare brokkr's there",
                    DEFAULT_TAGS.replace('\n', "; ")
                );
                return Ok((Rules::parse("", "")?, Some(notice)));
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let file: RulesFile = serde_yaml::from_str(&text).with_context(|| {
            format!(
                "{}: expected `tags: |` and `flavor: |` blocks",
                path.display()
            )
        })?;
        let rules = Rules::parse(&file.tags, &file.flavor)
            .with_context(|| format!("in {}", path.display()))?;
        Ok((rules, None))
    }
}

/// Non-empty lines with their 1-based numbers.
fn lines(block: &str) -> impl Iterator<Item = (usize, &str)> {
    block
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// The comma-separated fields of one line, CSV-quoted as metadata-action's
/// `csv-parse` reads them.
fn fields(line: &str) -> Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let record = reader
        .records()
        .next()
        .transpose()
        .context("not a comma-separated line (check the quotes)")?
        .unwrap_or_default();
    Ok(record.iter().map(str::to_owned).collect())
}

/// `key=value` at the first `=` (both trimmed; key lower-cased), or a bare value.
fn key_value(field: &str) -> (Option<String>, String) {
    match field.find('=') {
        Some(i) if i > 0 => (
            Some(field[..i].trim().to_ascii_lowercase()),
            field[i + 1..].trim().to_owned(),
        ),
        _ => (None, field.trim().to_owned()),
    }
}

fn parse_rule(line: usize, text: &str) -> Result<TagRule> {
    let mut kind = None;
    let mut attrs = BTreeMap::new();
    for field in fields(text)? {
        match key_value(&field) {
            (None, v) => {
                attrs.insert("value".to_owned(), v);
            }
            (Some(k), v) if k == "type" => {
                let names: Vec<&str> = KINDS.iter().map(|k| k.0).collect();
                let found = KINDS.iter().find(|k| k.0 == v).ok_or_else(|| {
                    anyhow!(
                        "unknown type `{v}`; valid types: {}{}",
                        names.join(", "),
                        if v == "pep440" {
                            " (pep440 is not supported here)"
                        } else {
                            ""
                        }
                    )
                })?;
                kind = Some(*found);
            }
            (Some(k), v) => {
                attrs.insert(k, v);
            }
        }
    }
    let (name, kind, default_priority, own) = kind.unwrap_or(KINDS[5]);
    for key in attrs.keys() {
        if !own.contains(&key.as_str()) && !COMMON_ATTRS.contains(&key.as_str()) {
            bail!(
                "unknown attribute `{key}` for type={name}; valid: {}",
                own.iter()
                    .chain(COMMON_ATTRS)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let default = |attrs: &mut BTreeMap<String, String>, k: &str, v: &str| {
        attrs.entry(k.to_owned()).or_insert_with(|| v.to_owned());
    };
    match kind {
        Kind::Schedule => default(&mut attrs, "pattern", "nightly"),
        Kind::Semver | Kind::Match => {
            if !attrs.contains_key("pattern") {
                bail!("type={name} needs a `pattern` attribute");
            }
            default(&mut attrs, "value", "");
            match kind {
                Kind::Match => default(&mut attrs, "group", "0"),
                _ => default(&mut attrs, "match", ""),
            }
        }
        Kind::Edge => default(&mut attrs, "branch", ""),
        Kind::Ref => {
            let event = attrs.get("event").map(String::as_str);
            if !matches!(event, Some("branch" | "tag" | "pr")) {
                bail!("type=ref needs `event=branch`, `event=tag` or `event=pr`");
            }
            if event == Some("pr") {
                default(&mut attrs, "prefix", "pr-");
            }
        }
        Kind::Raw => {
            if !attrs.contains_key("value") {
                bail!("type=raw needs a value (`type=raw,value=TEXT`)");
            }
        }
        Kind::Sha => {
            default(&mut attrs, "prefix", "sha-");
            default(&mut attrs, "format", "short");
            if !matches!(attrs["format"].as_str(), "short" | "long") {
                bail!("type=sha: `format` is `short` or `long`");
            }
        }
    }
    if kind == Kind::Match && attrs["group"].parse::<usize>().is_err() {
        bail!("type=match: `group` is a group number (0 for the whole match)");
    }
    attrs
        .entry("enable".into())
        .or_insert_with(|| "true".into());
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
        let names: &[&str] = match (kind, key.as_str()) {
            (Kind::Semver, "pattern") => template::SEMVER,
            (Kind::Schedule, "pattern") => template::DATES,
            (_, "prefix" | "suffix" | "enable" | "value") => template::GLOBAL,
            _ => continue,
        };
        let t = Template::parse(value).with_context(|| format!("{key}=`{value}`"))?;
        t.check(names).with_context(|| format!("{key}=`{value}`"))?;
        if kind == Kind::Semver && key == "pattern" && !t.has_placeholder() {
            bail!(
                "pattern=`{value}` has no placeholder; use {}",
                template::SEMVER
                    .iter()
                    .map(|n| format!("{{{{{n}}}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(())
}

fn parse_flavor(block: &str) -> Result<Flavor> {
    let mut f = Flavor {
        latest: Latest::Auto,
        prefix: String::new(),
        suffix: String::new(),
        prefix_latest: false,
        suffix_latest: false,
    };
    for (n, line) in lines(block) {
        let ctx = || format!("flavor line {n} `{line}`");
        let mut onlatest_for = "";
        for field in fields(line).with_context(ctx)? {
            let (Some(key), value) = key_value(&field) else {
                bail!("{}: `{field}` is not key=value", ctx());
            };
            match key.as_str() {
                "latest" => {
                    f.latest = match value.as_str() {
                        "auto" => Latest::Auto,
                        "true" => Latest::Yes,
                        "false" => Latest::No,
                        _ => bail!("{}: latest is auto, true or false", ctx()),
                    }
                }
                "prefix" | "suffix" => {
                    onlatest_for = if key == "prefix" { "prefix" } else { "suffix" };
                    *(if key == "prefix" {
                        &mut f.prefix
                    } else {
                        &mut f.suffix
                    }) = value;
                }
                "onlatest" => {
                    let on = match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => bail!("{}: onlatest is true or false", ctx()),
                    };
                    match onlatest_for {
                        "prefix" => f.prefix_latest = on,
                        "suffix" => f.suffix_latest = on,
                        _ => {}
                    }
                }
                _ => bail!(
                    "{}: unknown flavor `{key}`; valid: latest, prefix, suffix, onlatest",
                    ctx()
                ),
            }
        }
    }
    Ok(f)
}
