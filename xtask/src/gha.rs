//! GitHub Actions integration: log groups, step outputs and the step
//! summary, as GitHub documents them ("Workflow commands for GitHub
//! Actions"). Outside GitHub Actions every function is a no-op, except
//! groups, which print a plain heading.

use std::{fs::OpenOptions, io::Write};

use anyhow::{Context, Result};

/// `GITHUB_ACTIONS=true`.
pub fn active() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Starts a collapsible log group (`::group::title`); a `== title` heading elsewhere.
pub fn group(title: &str) {
    if active() {
        println!("::group::{title}");
    } else {
        eprintln!("== {title}");
    }
}

pub fn end_group() {
    if active() {
        println!("::endgroup::");
    }
}

fn append(var: &str, text: &str) -> Result<()> {
    let Some(path) = std::env::var(var).ok().filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening ${var} ({path})"))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing ${var} ({path})"))
}

/// A step output in `$GITHUB_OUTPUT`; the heredoc form for multiline values.
pub fn output(key: &str, value: &str) -> Result<()> {
    let line = match value.contains('\n') {
        true => format!("{key}<<BROKKR_EOF\n{value}\nBROKKR_EOF\n"),
        false => format!("{key}={value}\n"),
    };
    append("GITHUB_OUTPUT", &line)
}

/// An environment variable for the job's later steps, in `$GITHUB_ENV` (heredoc form).
pub fn export_env(key: &str, value: &str) -> Result<()> {
    append("GITHUB_ENV", &format!("{key}<<BROKKR_EOF\n{value}\nBROKKR_EOF\n"))
}

/// A notice: `::notice::text` on GitHub (an annotation of the run), `notice: text` on stderr elsewhere.
pub fn notice(text: &str) {
    if active() {
        println!(
            "::notice::{}",
            text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
        );
    } else {
        eprintln!("notice: {text}");
    }
}

/// Markdown for `$GITHUB_STEP_SUMMARY`.
pub fn summary(markdown: &str) -> Result<()> {
    append("GITHUB_STEP_SUMMARY", markdown)
}

/// A Markdown table: header row, separator, rows (cells are not escaped
/// beyond `|`).
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let mut out = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for r in rows {
        out.push_str(&format!(
            "| {} |\n",
            r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
        ));
    }
    out
}

/// Aligned columns, for terminals.
pub fn text_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
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
