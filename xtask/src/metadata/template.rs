//! metadata-action's documented `{{...}}` placeholders (`{{branch}}`, `{{date 'YYYYMMDD'
//! tz='Asia/Tokyo'}}`, ...): words split with `shlex`, dates formatted by jiff from moment.js.

use anyhow::{bail, ensure, Context as _, Result};
use jiff::Timestamp;

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

/// Each placeholder with the text before it, then the text after the last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(pub Vec<(String, Placeholder)>, String);

impl Template {
    /// Errors on an unclosed `{{`, unbalanced quotes, an unquoted `date` format, or a
    /// placeholder not one of `names` (space-separated).
    pub fn parse(s: &str, names: &str) -> Result<Template> {
        let (mut pieces, mut rest) = (Vec::new(), s);
        while let Some((text, after)) = rest.split_once("{{") {
            let (inner, tail) = after.split_once("}}").context("`{{` without `}}`")?;
            let p = placeholder(inner.trim())?;
            let (name, valid) = (&p.name, names.replace(' ', ", "));
            ensure!(
                names.split(' ').any(|n| n == name),
                "unknown placeholder `{{{{{name}}}}}`; valid here: {valid}"
            );
            pieces.push((text.to_owned(), p));
            rest = tail;
        }
        Ok(Template(pieces, rest.to_owned()))
    }

    /// metadata-action's `isRawStatement`: the template is exactly `{{raw}}`.
    pub fn is_raw_statement(&self) -> bool {
        self.1.is_empty() && matches!(&self.0[..], [(t, p)] if t.is_empty() && p.name == "raw")
    }

    pub fn render(&self, value: impl Fn(&Placeholder) -> Result<String>) -> Result<String> {
        let pieces = self.0.iter().map(|(text, p)| Ok(format!("{text}{}", value(p)?)));
        pieces.chain([Ok(self.1.clone())]).collect()
    }
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
    let mut tz = None;
    for arg in rest {
        let zone = arg.strip_prefix("tz=");
        tz = Some(zone.with_context(|| format!("{at}: unknown argument `{arg}` (only tz=)"))?);
    }
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
