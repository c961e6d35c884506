//! The line of a YAML node in the file text (serde_yaml keeps no positions), for
//! block-style YAML: a node's children are the lines after it indented deeper
//! (a key's items may sit at its own indentation); a key is found only at the
//! shallowest indentation of its parent's block, so keys in `run: |` scripts
//! are not keys. Flow-style values and missing keys stop the descent.

/// One step of a path into a YAML document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A mapping key, compared with the key's text (quotes removed).
    Key(&'a str),
    /// The n-th item (0-based) of a block sequence.
    Index(usize),
}

/// A sequence item's `-`, or the text after the dashes of a line (with its
/// key when it is `key: ...`), at 0-based `line` and column `col`.
struct Node<'a> {
    line: usize,
    col: usize,
    dash: bool,
    key: Option<&'a str>,
}

/// The nodes of every line but blank and comment-only ones.
fn nodes(text: &str) -> Vec<Node<'_>> {
    let mut out = Vec::new();
    for (line, l) in text.lines().enumerate() {
        let mut c = l.trim_start_matches(' ');
        if c.trim().is_empty() || c.starts_with('#') {
            continue;
        }
        while let Some(rest) = c.strip_prefix('-').filter(|r| r.is_empty() || r.starts_with(' ')) {
            out.push(Node { line, col: l.len() - c.len(), dash: true, key: None });
            c = rest.trim_start_matches(' ');
        }
        if !c.is_empty() {
            out.push(Node { line, col: l.len() - c.len(), dash: false, key: key_of(c) });
        }
    }
    out
}

/// The key of a `key: value` / `key:` line content (quotes removed), if any.
fn key_of(content: &str) -> Option<&str> {
    let c = content.trim_end();
    let (raw, rest) = match c.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let end = c[1..].find(q)? + 1;
            (&c[1..end], &c[end + 1..])
        }
        _ => {
            let end = c.find(": ").or_else(|| c.strip_suffix(':').map(str::len))?;
            (&c[..end], &c[end..])
        }
    };
    let rest = rest.trim_start().strip_prefix(':')?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then(|| raw.trim())
}

/// The 1-based line of the node at `path`: `Ok` when every segment is found, else
/// `Err` with the line of its deepest ancestor found (1 when none is).
pub fn locate(text: &str, path: &[Seg<'_>]) -> Result<usize, usize> {
    let ns = nodes(text);
    // The nodes searched: [from, to), the block of the last node found.
    let (mut from, mut to, mut found) = (0, ns.len(), 1);
    for seg in path {
        let level = ns[from..to].iter().map(|n| n.col).min();
        let mut children = (from..to).filter(|&i| Some(ns[i].col) == level);
        let hit = match *seg {
            Seg::Key(k) => children.find(|&i| !ns[i].dash && ns[i].key == Some(k)),
            Seg::Index(n) => children.filter(|&i| ns[i].dash).nth(n),
        };
        let Some(i) = hit else { return Err(found) };
        let (col, dash) = (ns[i].col, ns[i].dash);
        let ends = |n: &Node<'_>| n.col < col || (n.col == col && (dash || !n.dash));
        (found, from) = (ns[i].line + 1, i + 1);
        to = (from..to).find(|&j| ends(&ns[j])).unwrap_or(to);
    }
    Ok(found)
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
            assert_eq!(locate(DOC, path).unwrap_or_else(|l| l), *want, "{path:?}");
        }
        assert_eq!(locate(DOC, &[Seg::Key("jobs"), Seg::Key("nope")]), Err(8));
        assert_eq!(locate(DOC, &[Seg::Key("on"), Seg::Key("push")]), Ok(3));
        assert_eq!(locate("a: 1\ntrue: x\n", &[Seg::Key("true")]), Ok(2));
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
            Ok(12)
        );
    }
}
