//! The `{{...}}` placeholders of metadata-action's templates (handlebars
//! there), limited to the ones its documentation lists:
//! `{{branch}}`, `{{date 'YYYYMMDD' tz='Asia/Tokyo'}}`, `{{version}}`, ...
//! The words inside the braces are split with `shlex` (handlebars quotes
//! strings the same way); dates are formatted with jiff from a table of
//! moment.js tokens.

use anyhow::{anyhow, bail, Context as _, Result};
use jiff::Timestamp;

/// Placeholders of a `type=semver` pattern.
pub const SEMVER: &[&str] = &["version", "major", "minor", "patch", "raw"];
/// Placeholders of a `type=schedule` pattern.
pub const DATES: &[&str] = &["date", "commit_date"];
/// Placeholders of `value`, `prefix`, `suffix` and `enable`.
pub const GLOBAL: &[&str] = &[
    "branch",
    "tag",
    "sha",
    "base_ref",
    "is_default_branch",
    "is_not_default_branch",
    "date",
    "commit_date",
];

/// One `{{...}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placeholder {
    /// `branch`, `date`, ...
    pub name: String,
    /// The moment.js format of `date` and `commit_date`.
    pub format: Option<String>,
    /// `tz=` of `date` and `commit_date` (default UTC).
    pub tz: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Placeholder),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

impl Template {
    /// Splits `s` into text and placeholders. Errors on an unclosed `{{`,
    /// unbalanced quotes, or a `date`/`commit_date` whose format is not a
    /// quoted string (handlebars would read it as a missing variable).
    pub fn parse(s: &str) -> Result<Template> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| anyhow!("`{{{{` without `}}}}`"))?;
            pieces.push(Piece::Var(placeholder(after[..end].trim())?));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template(pieces))
    }

    /// Errors when a placeholder is not one of `names`.
    pub fn check(&self, names: &[&str]) -> Result<()> {
        for p in self.placeholders() {
            if !names.contains(&p.name.as_str()) {
                bail!(
                    "unknown placeholder `{{{{{}}}}}`; valid here: {}",
                    p.name,
                    names.join(", ")
                );
            }
        }
        Ok(())
    }

    /// Whether there is any placeholder.
    pub fn has_placeholder(&self) -> bool {
        self.placeholders().next().is_some()
    }

    /// metadata-action's `isRawStatement`: the template is exactly `{{raw}}`.
    pub fn is_raw_statement(&self) -> bool {
        matches!(self.0.as_slice(), [Piece::Var(p)] if p.name == "raw")
    }

    fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.0.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v),
            Piece::Text(_) => None,
        })
    }

    /// The text with each placeholder replaced by `value(placeholder)`.
    pub fn render(&self, value: impl Fn(&Placeholder) -> Result<String>) -> Result<String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(&value(v)?),
            }
        }
        Ok(out)
    }
}

fn placeholder(inner: &str) -> Result<Placeholder> {
    let words =
        shlex::split(inner).ok_or_else(|| anyhow!("`{{{{{inner}}}}}`: unbalanced quotes"))?;
    let (name, args) = words
        .split_first()
        .ok_or_else(|| anyhow!("empty placeholder `{{{{}}}}`"))?;
    let mut p = Placeholder {
        name: name.clone(),
        format: None,
        tz: None,
    };
    if !DATES.contains(&name.as_str()) {
        if !args.is_empty() {
            bail!("`{{{{{inner}}}}}`: `{name}` takes no arguments");
        }
        return Ok(p);
    }
    let quoted = inner[name.len()..].trim_start().starts_with(['\'', '"']);
    for arg in args {
        match arg.split_once('=') {
            Some(("tz", tz)) => p.tz = Some(tz.to_owned()),
            Some((k, _)) if p.format.is_some() => {
                bail!("`{{{{{inner}}}}}`: unknown attribute `{k}` (only tz=)")
            }
            _ if p.format.is_none() && quoted => p.format = Some(arg.clone()),
            _ => bail!(
                "`{{{{{inner}}}}}`: the format is one quoted string, as in \
                 {{{{{name} 'YYYYMMDD' tz='UTC'}}}}"
            ),
        }
    }
    if p.format.is_none() {
        bail!("`{{{{{inner}}}}}`: give a format, as in {{{{{name} 'YYYYMMDD'}}}}");
    }
    Ok(p)
}

/// moment.js format tokens and their strftime equivalents, longest first.
const MOMENT_TOKENS: &[(&str, &str)] = &[
    ("YYYY", "%Y"),
    ("YY", "%y"),
    ("MMMM", "%B"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("M", "%-m"),
    ("DDDD", "%j"),
    ("DD", "%d"),
    ("D", "%-d"),
    ("dddd", "%A"),
    ("ddd", "%a"),
    ("HH", "%H"),
    ("H", "%-H"),
    ("hh", "%I"),
    ("h", "%-I"),
    ("mm", "%M"),
    ("m", "%-M"),
    ("ss", "%S"),
    ("s", "%-S"),
    ("A", "%p"),
    ("a", "%P"),
    ("ZZ", "%z"),
    ("Z", "%:z"),
    ("X", "%s"),
];

/// Letters that are moment.js tokens (not literal text) in some form.
const MOMENT_LETTERS: &str = "MQDdeEwWYygGAaHhkmsSzZXxN";

/// Formats `at` in time zone `tz` (IANA name; default UTC) with a moment.js
/// `format`, as metadata-action's `{{date}}` does. `[text]` is literal.
/// Errors on a token outside [`MOMENT_TOKENS`] or an unknown zone.
pub fn format_date(at: Timestamp, format: &str, tz: Option<&str>) -> Result<String> {
    let zoned = at
        .in_tz(tz.unwrap_or("UTC"))
        .with_context(|| format!("time zone `{}`", tz.unwrap_or("UTC")))?;
    let mut spec = String::new();
    let mut rest = format;
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            let end = rest.find(']').unwrap_or(rest.len());
            spec.push_str(&rest[1..end].replace('%', "%%"));
            rest = rest.get(end + 1..).unwrap_or("");
        } else if let Some((tok, s)) = MOMENT_TOKENS.iter().find(|(t, _)| rest.starts_with(t)) {
            spec.push_str(s);
            rest = &rest[tok.len()..];
        } else if MOMENT_LETTERS.contains(c) {
            bail!(
                "date format `{format}`: token at `{rest}` is not supported; use {} or [literal text]",
                MOMENT_TOKENS.iter().map(|t| t.0).collect::<Vec<_>>().join(" ")
            );
        } else {
            if c == '%' {
                spec.push('%');
            }
            spec.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(zoned.strftime(&spec).to_string())
}
