//! The line of a YAML node in the file text, for messages: serde_yaml keeps
//! no positions.

/// One step of a path into a YAML document: a mapping key or a sequence index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A mapping key, compared with the key's text (quotes removed).
    Key(&'a str),
    /// The n-th item (0-based) of a block sequence.
    Index(usize),
}

/// A line split into indentation and content, blank and comment lines marked.
struct Line<'a> {
    indent: usize,
    content: &'a str,
    /// Blank or comment-only: never ends a block, never holds a key.
    skip: bool,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .map(|l| {
            let content = l.trim_start_matches(' ');
            let indent = l.len() - content.len();
            let t = content.trim();
            Line { indent, content, skip: t.is_empty() || t.starts_with('#') }
        })
        .collect()
}

/// The key of a `key: value` / `key:` line content (quotes removed), if any.
fn key_of(content: &str) -> Option<&str> {
    let content = content.trim_end();
    let (raw, rest) = if let Some(q) = content.strip_prefix('"') {
        let end = q.find('"')?;
        (&q[..end], &q[end + 1..])
    } else if let Some(q) = content.strip_prefix('\'') {
        let end = q.find('\'')?;
        (&q[..end], &q[end + 1..])
    } else {
        let end = content.find(": ").or_else(|| content.strip_suffix(':').map(str::len))?;
        (&content[..end], &content[end..])
    };
    let rest = rest.trim_start();
    if rest.starts_with(':') && (rest.len() == 1 || rest[1..].starts_with([' ', '\t'])) {
        Some(raw.trim())
    } else {
        None
    }
}

/// Strips leading `- ` markers, returning the column of what follows and it.
fn after_dashes(indent: usize, content: &str) -> (usize, &str) {
    let mut col = indent;
    let mut c = content;
    while let Some(rest) = c.strip_prefix('-') {
        if !(rest.is_empty() || rest.starts_with(' ')) {
            break;
        }
        let trimmed = rest.trim_start_matches(' ');
        col += 1 + rest.len() - trimmed.len();
        c = trimmed;
    }
    (col, c)
}

/// The 1-based line of the node at `path`, or of its deepest ancestor found
/// (flow-style `{...}` / `[...]` values and missing keys stop the descent;
/// an empty path or a first segment not found gives line 1).
///
/// Works on block-style YAML as GitHub workflows are written: a key's block
/// is the lines after it indented deeper (or sequence items `- ` at the same
/// indentation); a key is found only at its parent's child level, so keys
/// inside `run: |` scripts are never mistaken for YAML keys.
pub fn locate(text: &str, path: &[Seg<'_>]) -> usize {
    descend(text, path).0.max(1)
}

/// The 1-based line of the node at `path` when every segment is found.
pub fn locate_exact(text: &str, path: &[Seg<'_>]) -> Option<usize> {
    match descend(text, path) {
        (line, true) if line > 0 => Some(line),
        _ => None,
    }
}

/// (1-based line of the deepest node found or 0, whether all were found).
fn descend(text: &str, path: &[Seg<'_>]) -> (usize, bool) {
    let ls = lines(text);
    // The region searched: lines [start, end); for an item, its own line
    // and the column of its first key.
    let mut start = 0;
    let mut end = ls.len();
    let mut item: Option<(usize, usize)> = None;
    let mut found = 0usize;
    for seg in path {
        let hit = match *seg {
            Seg::Key(k) => find_key(&ls, start, end, item, k),
            Seg::Index(n) => find_item(&ls, start, end, n),
        };
        let Some(h) = hit else { return (found, false) };
        found = h.line + 1;
        start = h.line + 1;
        end = h.end;
        item = h.inline_child;
        if item.is_some() {
            start = h.line;
        }
    }
    (found, true)
}

struct Hit {
    line: usize,
    end: usize,
    /// For an item: its own line and the column of its first key.
    inline_child: Option<(usize, usize)>,
}

fn find_key(
    ls: &[Line<'_>],
    start: usize,
    end: usize,
    item: Option<(usize, usize)>,
    key: &str,
) -> Option<Hit> {
    // The child level: the item's first-key column, else the shallowest line.
    let (level, from) = match item {
        Some((line, col)) => {
            let (_, c) = after_dashes(ls[line].indent, ls[line].content);
            if key_of(c) == Some(key) {
                return Some(Hit {
                    line,
                    end: key_block_end(ls, line, col, end),
                    inline_child: None,
                });
            }
            (col, line + 1)
        }
        None => {
            let level = (start..end).filter(|&i| !ls[i].skip).map(|i| ls[i].indent).min()?;
            (level, start)
        }
    };
    (from..end)
        .find(|&i| {
            !ls[i].skip
                && ls[i].indent == level
                && !ls[i].content.starts_with("- ")
                && key_of(ls[i].content) == Some(key)
        })
        .map(|i| Hit { line: i, end: key_block_end(ls, i, level, end), inline_child: None })
}

/// End (exclusive) of the block of a key at `line` whose key starts at `col`.
fn key_block_end(ls: &[Line<'_>], line: usize, col: usize, limit: usize) -> usize {
    (line + 1..limit)
        .find(|&i| {
            let l = &ls[i];
            !l.skip && (l.indent < col || (l.indent == col && !l.content.starts_with('-')))
        })
        .unwrap_or(limit)
}

fn find_item(ls: &[Line<'_>], start: usize, end: usize, n: usize) -> Option<Hit> {
    let dash_col = (start..end)
        .filter(|&i| !ls[i].skip && ls[i].content.starts_with('-'))
        .map(|i| ls[i].indent)
        .min()?;
    let line = (start..end)
        .filter(|&i| !ls[i].skip && ls[i].indent == dash_col && ls[i].content.starts_with('-'))
        .nth(n)?;
    let item_end =
        (line + 1..end).find(|&i| !ls[i].skip && ls[i].indent <= dash_col).unwrap_or(end);
    let (col, _) = after_dashes(ls[line].indent, ls[line].content);
    Some(Hit { line, end: item_end, inline_child: Some((line, col)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
name: t
on:
  push:
    branches: [main]
    paths:
      - 'broker/**'
  pull_request:
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - name: one
        run: |
          echo steps: not a key
          name: also not a key
      -   uses: actions/checkout@v4
          with:
            fetch-depth: 0
      - run: cargo xtask ci
  \"create-manifest\":
    needs: build
    steps:
    - run: a
    - name: b
      run: c
";

    #[test]
    fn locates_keys_items_and_falls_back_to_ancestors() {
        let cases: &[(&[Seg<'_>], usize)] = &[
            (&[Seg::Key("on")], 2),
            (&[Seg::Key("on"), Seg::Key("push"), Seg::Key("paths")], 5),
            (&[Seg::Key("on"), Seg::Key("push"), Seg::Key("paths"), Seg::Index(0)], 6),
            (&[Seg::Key("on"), Seg::Key("pull_request")], 7),
            (&[Seg::Key("on"), Seg::Key("push"), Seg::Key("branches"), Seg::Index(0)], 4),
            (&[Seg::Key("jobs"), Seg::Key("build"), Seg::Key("steps"), Seg::Index(0)], 12),
            (
                &[
                    Seg::Key("jobs"),
                    Seg::Key("build"),
                    Seg::Key("steps"),
                    Seg::Index(0),
                    Seg::Key("run"),
                ],
                13,
            ),
            (
                &[
                    Seg::Key("jobs"),
                    Seg::Key("build"),
                    Seg::Key("steps"),
                    Seg::Index(1),
                    Seg::Key("uses"),
                ],
                16,
            ),
            (
                &[
                    Seg::Key("jobs"),
                    Seg::Key("build"),
                    Seg::Key("steps"),
                    Seg::Index(1),
                    Seg::Key("with"),
                    Seg::Key("fetch-depth"),
                ],
                18,
            ),
            (
                &[
                    Seg::Key("jobs"),
                    Seg::Key("build"),
                    Seg::Key("steps"),
                    Seg::Index(2),
                    Seg::Key("run"),
                ],
                19,
            ),
            (
                &[
                    Seg::Key("jobs"),
                    Seg::Key("build"),
                    Seg::Key("steps"),
                    Seg::Index(0),
                    Seg::Key("name"),
                ],
                12,
            ),
            (&[Seg::Key("jobs"), Seg::Key("build"), Seg::Key("steps"), Seg::Key("name")], 11),
            (&[Seg::Key("jobs"), Seg::Key("create-manifest")], 20),
            (&[Seg::Key("jobs"), Seg::Key("create-manifest"), Seg::Key("needs")], 21),
            (
                &[
                    Seg::Key("jobs"),
                    Seg::Key("create-manifest"),
                    Seg::Key("steps"),
                    Seg::Index(1),
                    Seg::Key("run"),
                ],
                25,
            ),
            (&[Seg::Key("jobs"), Seg::Key("nope")], 8),
            (&[Seg::Key("permissions")], 1),
            (&[], 1),
        ];
        for (path, want) in cases {
            assert_eq!(locate(DOC, path), *want, "{path:?}");
        }
        assert_eq!(locate_exact(DOC, &[Seg::Key("jobs"), Seg::Key("nope")]), None);
        assert_eq!(locate_exact(DOC, &[Seg::Key("on"), Seg::Key("push")]), Some(3));
        assert_eq!(locate_exact("a: 1\ntrue: x\n", &[Seg::Key("true")]), Some(2));
    }

    #[test]
    fn keys_inside_run_scripts_are_not_keys() {
        // `name:` on line 15 is script text; the step's own `name` is line 12.
        assert_eq!(
            locate(
                DOC,
                &[
                    Seg::Key("jobs"),
                    Seg::Key("build"),
                    Seg::Key("steps"),
                    Seg::Index(0),
                    Seg::Key("name")
                ]
            ),
            12
        );
    }
}
