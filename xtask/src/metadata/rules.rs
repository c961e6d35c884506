//! The tag rules as data in docker/metadata-action's syntax: its `tags` input (CSV lines of
//! `type=...,key=value`) and `flavor` input, parsed as its `src/tag.ts` and `src/flavor.ts`
//! do, but refusing what it silently ignores: unknown attributes and placeholders, a semver
//! pattern without a placeholder. Its documented `{{...}}` placeholders (`{{date 'YYYYMMDD'
//! tz='Asia/Tokyo'}}`, ...): words split with `shlex`, dates formatted by jiff from moment.js.

use std::{collections::BTreeMap, path::Path};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use jiff::Timestamp;
use serde::Deserialize;

use super::non_empty;

/// The declared rules; read by `tags`, `build-image`, `manifest` (so `workflow run`).
pub const RULES_FILE: &str = ".github/image-tags.yml";

/// metadata-action's rules when the `tags` input is empty.
const DEFAULT_TAGS: &str =
    "type=schedule\ntype=ref,event=branch\ntype=ref,event=tag\ntype=ref,event=pr";

type Required = Option<(&'static str, &'static [&'static str])>;

/// Type, default priority (metadata-action's `DefaultPriorities`), own attributes, and the
/// required one with its valid values (any when empty).
const KINDS: &[(&str, i64, &[&str], Required)] = &[
    ("schedule", 1000, &["pattern"], None),
    ("semver", 900, &["pattern", "value", "match"], Some(("pattern", &[]))),
    ("match", 800, &["pattern", "group", "value"], Some(("pattern", &[]))),
    ("edge", 700, &["branch"], None),
    ("ref", 600, &["event"], Some(("event", &["branch", "tag", "pr"]))),
    ("raw", 200, &["value"], Some(("value", &[]))),
    ("sha", 100, &["format"], Some(("format", &["short", "long"]))),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRule {
    pub kind: &'static str,
    /// After metadata-action's defaults (`prefix` only when given or for `ref,event=pr`, `sha`).
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

/// `latest`: `None` for `auto` (the first rule that gives a tag decides); `prefix` and
/// `suffix` for rules without their own, with `onlatest=true` after one for `latest` too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flavor {
    pub latest: Option<bool>,
    pub prefix: String,
    pub suffix: String,
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
    /// An empty `tags` block means metadata-action's defaults; errors name line and choices.
    pub fn parse(tags: &str, flavor: &str) -> Result<Rules> {
        let block = non_empty(tags).map_or(DEFAULT_TAGS, |_| tags);
        let mut tags = lines(block)
            .map(|(n, l)| parse_rule(n, l).with_context(|| format!("tags line {n} `{l}`")))
            .collect::<Result<Vec<_>>>()?;
        tags.sort_by_key(|r| std::cmp::Reverse(r.priority));
        Ok(Rules { tags, flavor: parse_flavor(flavor)? })
    }

    /// [`RULES_FILE`] under `root`, blocks replaced by `--rules`/`--flavor` text; when missing,
    /// metadata-action's defaults with a notice on stderr (unless `tags` is given).
    pub fn load(root: &Path, tags: Option<&str>, flavor: Option<&str>) -> Result<Rules> {
        let path = root.join(RULES_FILE);
        let at = path.display();
        let file: RulesFile = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if tags.is_none() {
                    let defaults = DEFAULT_TAGS.replace('\n', "; ");
                    eprintln!("notice: {RULES_FILE} not found: using docker/metadata-action's default rules ({defaults}); declare brokkr's there");
                }
                RulesFile::default()
            }
            read => serde_yaml::from_str(&read.with_context(|| format!("reading {at}"))?)
                .with_context(|| format!("{at}: expected `tags: |` and `flavor: |` blocks"))?,
        };
        let mut rules =
            Rules::parse(&file.tags, &file.flavor).with_context(|| format!("in {at}"))?;
        if let Some(text) = tags {
            rules.tags = Rules::parse(text, "").context("in --rules")?.tags;
        }
        if let Some(text) = flavor {
            rules.flavor = parse_flavor(text).context("in --flavor")?;
        }
        Ok(rules)
    }
}

/// Non-empty lines with their 1-based numbers.
fn lines(block: &str) -> impl Iterator<Item = (usize, &str)> {
    let numbered = block.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    numbered.filter(|(_, l)| !l.is_empty())
}

/// A line's `key=value` fields as metadata-action's `csv-parse` reads them: split at the first
/// `=`, trimmed, the key lower-cased; a field without a key has the key `bare`.
fn fields(line: &str, bare: &str) -> Result<Vec<(String, String)>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_bytes());
    let record = reader.records().next().transpose();
    let record = record.context("not a comma-separated line (check the quotes)")?;
    let field = |f: &str| match f.split_once('=') {
        Some((k, v)) if !k.is_empty() => (k.trim().to_ascii_lowercase(), v.trim().into()),
        _ => (bare.to_owned(), f.trim().to_owned()),
    };
    Ok(record.iter().flatten().map(field).collect())
}

fn parse_rule(line: usize, text: &str) -> Result<TagRule> {
    let mut attrs: BTreeMap<_, _> = fields(text, "value")?.into_iter().collect();
    let ty = attrs.remove("type").unwrap_or_else(|| "raw".into());
    let Some(&(kind, default_priority, own, required)) = KINDS.iter().find(|k| k.0 == ty) else {
        let names = KINDS.iter().map(|k| k.0).collect::<Vec<_>>().join(", ");
        let pep440 = if ty == "pep440" { " (pep440 is not supported here)" } else { "" };
        bail!("unknown type `{ty}`; valid types: {names}{pep440}");
    };
    let valid = [own, &["prefix", "suffix", "enable", "priority"]].concat();
    if let Some(key) = attrs.keys().find(|k| !valid.contains(&k.as_str())) {
        bail!("unknown attribute `{key}` for type={kind}; valid: {}", valid.join(", "));
    }
    let defaults: &[(&str, &str)] = match kind {
        "schedule" => &[("pattern", "nightly")],
        "match" => &[("group", "0")],
        "ref" if attrs.get("event").is_some_and(|e| e == "pr") => &[("prefix", "pr-")],
        "sha" => &[("prefix", "sha-"), ("format", "short")],
        _ => &[],
    };
    for (k, v) in defaults.iter().chain(&[("enable", "true")]) {
        attrs.entry(k.to_string()).or_insert_with(|| v.to_string());
    }
    if let Some((key, choices)) = required {
        let valid = |v: &String| choices.is_empty() || choices.contains(&v.as_str());
        let values = non_empty(&choices.join("|")).unwrap_or("...").to_owned();
        ensure!(attrs.get(key).is_some_and(valid), "type={kind} needs {key}={values}");
    }
    let group = kind != "match" || attrs["group"].parse::<usize>().is_ok();
    ensure!(group, "type=match: `group` is a group number (0 for the whole match)");
    let priority = attrs.get("priority").map_or(Ok(default_priority), |p| {
        p.parse().map_err(|_| anyhow!("`priority={p}` is not a whole number"))
    })?;
    // templates use only the placeholders of their place; a semver pattern has one
    for (key, value) in &attrs {
        let names = match (kind, key.as_str()) {
            ("semver", "pattern") => SEMVER,
            ("schedule", "pattern") => DATES,
            (_, "prefix" | "suffix" | "enable" | "value") => GLOBAL,
            _ => continue,
        };
        let at = || format!("{key}=`{value}`");
        let rendered = render(value, names, |_| Ok(String::new())).with_context(at)?;
        if kind == "semver" && key == "pattern" && rendered == *value {
            let all = names.split(' ').map(|n| format!("{{{{{n}}}}}")).collect::<Vec<_>>();
            bail!("pattern=`{value}` has no placeholder; use {}", all.join(", "));
        }
    }
    Ok(TagRule { kind, attrs, priority, line, text: text.to_owned() })
}

fn parse_flavor(block: &str) -> Result<Flavor> {
    let mut f = Flavor::default();
    for (n, line) in lines(block) {
        let at = format!("flavor line {n} `{line}`");
        let mut onlatest_for = "";
        for (key, value) in fields(line, "").with_context(|| at.clone())? {
            let on = value == "true";
            match (key.as_str(), value.as_str()) {
                ("", _) => bail!("{at}: `{value}` is not key=value"),
                ("latest", "auto" | "true" | "false") => f.latest = value.parse().ok(),
                ("latest", _) => bail!("{at}: latest is auto, true or false"),
                ("prefix", _) => (f.prefix, onlatest_for) = (value, "prefix"),
                ("suffix", _) => (f.suffix, onlatest_for) = (value, "suffix"),
                ("onlatest", "true" | "false") if onlatest_for == "prefix" => f.prefix_latest = on,
                ("onlatest", "true" | "false") if onlatest_for == "suffix" => f.suffix_latest = on,
                ("onlatest", "true" | "false") => {}
                ("onlatest", _) => bail!("{at}: onlatest is true or false"),
                _ => bail!("{at}: unknown flavor `{key}`; valid: latest, prefix, suffix, onlatest"),
            }
        }
    }
    Ok(f)
}

/// Placeholders of a semver pattern, a schedule pattern, and `value`, `prefix`, ... .
pub const SEMVER: &str = "version major minor patch raw";
pub const DATES: &str = "date commit_date";
pub const GLOBAL: &str =
    "branch tag sha base_ref is_default_branch is_not_default_branch date commit_date";

/// One `{{...}}`; `format` (moment.js) and `tz` (default UTC) of `date` and `commit_date`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placeholder {
    pub name: String,
    pub format: Option<String>,
    pub tz: Option<String>,
}

/// `s` with each `{{...}}` replaced by its `value`. Errors on an unclosed `{{`, unbalanced
/// quotes, an unquoted `date` format, or a placeholder not one of `names` (space-separated).
pub fn render(
    s: &str,
    names: &str,
    value: impl Fn(&Placeholder) -> Result<String>,
) -> Result<String> {
    let (mut out, mut rest) = (String::new(), s);
    while let Some((text, after)) = rest.split_once("{{") {
        let (inner, tail) = after.split_once("}}").context("`{{` without `}}`")?;
        let p = placeholder(inner.trim())?;
        let (name, valid) = (&p.name, names.replace(' ', ", "));
        ensure!(
            names.split(' ').any(|n| n == name),
            "unknown placeholder `{{{{{name}}}}}`; valid here: {valid}"
        );
        out = format!("{out}{text}{}", value(&p)?);
        rest = tail;
    }
    Ok(out + rest)
}

fn placeholder(inner: &str) -> Result<Placeholder> {
    let at = format!("`{{{{{inner}}}}}`");
    let words = shlex::split(inner).with_context(|| format!("{at}: unbalanced quotes"))?;
    let Some((name, args)) = words.split_first() else { bail!("empty placeholder `{{{{}}}}`") };
    let quoted = inner[name.len()..].trim_start().starts_with(['\'', '"']);
    let is_date = DATES.split(' ').any(|d| d == name);
    let (format, rest) = match args.split_first() {
        None if !is_date => (None, &[][..]),
        _ if !is_date => bail!("{at}: `{name}` takes no arguments"),
        Some((format, rest)) if quoted => (Some(format.clone()), rest),
        _ => bail!(
            "{at}: give the format as one quoted string, as in {{{{{name} 'YYYYMMDD' tz='UTC'}}}}"
        ),
    };
    let bad = |arg: &String| format!("{at}: unknown argument `{arg}` (only tz=)");
    let tz = rest.iter().map(|arg| arg.strip_prefix("tz=").with_context(|| bad(arg)));
    let tz = tz.collect::<Result<Vec<_>>>()?.pop();
    Ok(Placeholder { name: name.clone(), format, tz: tz.map(str::to_owned) })
}

/// moment.js format tokens and their strftime equivalents, longest first.
const MOMENT_TOKENS: &str = "YYYY=%Y YY=%y MMMM=%B MMM=%b MM=%m M=%-m DDDD=%j DD=%d D=%-d \
    dddd=%A ddd=%a HH=%H H=%-H hh=%I h=%-I mm=%M m=%-M ss=%S s=%-S A=%p a=%P ZZ=%z Z=%:z X=%s";

/// Letters that are moment.js tokens (not literal text) in some form.
const MOMENT_LETTERS: &str = "MQDdeEwWYygGAaHhkmsSzZXxN";

/// `at` in the placeholder's IANA zone `tz` (default UTC) with its moment.js `format` (`[text]`
/// literal), as metadata-action's `{{date}}`; errors on a token outside [`MOMENT_TOKENS`].
pub fn format_date(at: Timestamp, p: &Placeholder) -> Result<String> {
    let (format, tz) = (p.format.as_deref().unwrap_or_default(), p.tz.as_deref().unwrap_or("UTC"));
    let zoned = at.in_tz(tz).with_context(|| format!("time zone `{tz}`"))?;
    let tokens = || MOMENT_TOKENS.split(' ').filter_map(|t| t.split_once('='));
    let (mut spec, mut rest) = (String::new(), format);
    while let Some(c) = rest.chars().next() {
        let (literal, len) = if c == '[' {
            let end = rest.find(']').unwrap_or(rest.len());
            (rest[1..end].replace('%', "%%"), end + 1)
        } else if let Some((tok, s)) = tokens().find(|(t, _)| rest.starts_with(t)) {
            (s.to_owned(), tok.len())
        } else if MOMENT_LETTERS.contains(c) {
            let all: Vec<&str> = tokens().map(|t| t.0).collect();
            bail!("date format `{format}`: token at `{rest}` is not supported; use {} or [literal text]", all.join(" "));
        } else {
            (rest[..c.len_utf8()].replace('%', "%%"), c.len_utf8())
        };
        spec.push_str(&literal);
        rest = rest.get(len..).unwrap_or("");
    }
    Ok(zoned.strftime(&spec).to_string())
}
