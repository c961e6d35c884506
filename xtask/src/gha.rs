//! GitHub Actions integration, as "Workflow commands for GitHub Actions" documents
//! it: log groups, notices, step outputs, job environment and the step summary.
//! Outside GitHub Actions groups and notices go to stderr, the rest is a no-op.

use std::{fs::OpenOptions, io::Write};

use anyhow::{Context, Result};

/// `GITHUB_ACTIONS=true`.
pub fn active() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Starts a collapsible log group (`::group::title`); a `== title` heading elsewhere.
pub fn group(title: &str) {
    match active() {
        true => println!("::group::{title}"),
        false => eprintln!("== {title}"),
    }
}

pub fn end_group() {
    if active() {
        println!("::endgroup::");
    }
}

/// Appends `text` to the file `$var` names, when set.
fn append(var: &str, text: &str) -> Result<()> {
    let Some(path) = std::env::var(var).ok().filter(|p| !p.is_empty()) else { return Ok(()) };
    let mut f = OpenOptions::new().create(true).append(true).open(&path);
    let f = f.as_mut().map_err(|e| anyhow::anyhow!("opening ${var} ({path}): {e}"))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing ${var} ({path})"))
}

/// A step output in `$GITHUB_OUTPUT`, or with `env` a variable for the job's later steps in
/// `$GITHUB_ENV`; the heredoc form there and for multiline values.
pub fn output(key: &str, value: &str, env: bool) -> Result<()> {
    let var = if env { "GITHUB_ENV" } else { "GITHUB_OUTPUT" };
    match env || value.contains('\n') {
        true => append(var, &format!("{key}<<BROKKR_EOF\n{value}\nBROKKR_EOF\n")),
        false => append(var, &format!("{key}={value}\n")),
    }
}

/// `::notice::text` on GitHub (an annotation of the run), `notice: text` on stderr elsewhere.
pub fn notice(text: &str) {
    let escaped = text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    match active() {
        true => println!("::notice::{escaped}"),
        false => eprintln!("notice: {text}"),
    }
}

/// Markdown for `$GITHUB_STEP_SUMMARY`.
pub fn summary(markdown: &str) -> Result<()> {
    append("GITHUB_STEP_SUMMARY", markdown)
}

/// A Markdown table: header row, separator, rows (`|` in cells escaped).
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let row = |r: Vec<String>| format!("| {} |\n", r.join(" | "));
    let head = row(header.iter().map(|h| h.to_string()).collect());
    let rows = rows.iter().map(|r| row(r.iter().map(|c| c.replace('|', "\\|")).collect()));
    head + "|" + &"---|".repeat(header.len()) + "\n" + &rows.collect::<String>()
}

/// Aligned columns, for terminals.
pub fn text_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows = rows.iter().map(|r| r.iter().map(String::as_str).collect());
    let all: Vec<Vec<&str>> = std::iter::once(header.to_vec()).chain(rows).collect();
    let width = |i: usize| all.iter().filter_map(|r| r.get(i)).map(|c| c.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |r: &Vec<&str>| {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        cells.join("  ").trim_end().to_owned() + "\n"
    };
    all.iter().map(line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables() {
        let rows = vec![
            vec!["broker".to_owned(), "linux/arm64".to_owned()],
            vec!["a|b".to_owned(), "x".to_owned()],
        ];
        assert_eq!(
            markdown_table(&["component", "platform"], &rows),
            "| component | platform |\n|---|---|\n| broker | linux/arm64 |\n| a\\|b | x |\n"
        );
        assert_eq!(
            text_table(&["component", "platform"], &rows),
            "component  platform\nbroker     linux/arm64\na|b        x\n"
        );
    }
}
