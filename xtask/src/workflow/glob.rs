//! GitHub's filter patterns (workflow syntax, "Filter pattern cheat sheet")
//! for `branches:`, `tags:` and `paths:`, translated to a `regex`: `*` any
//! characters but `/`; `**` any characters (`**/` also none); `?` zero or
//! one character; `+` one or more of the preceding character; `[a-z0-9]` one
//! listed character. A pattern matches the whole path from the repository
//! root (`docs` does not match `docs/a.md`). `globset` gives `?` and `**`
//! other meanings and has no `+`.

use regex::Regex;

pub fn glob_match(pattern: &str, path: &str) -> bool {
    let (mut re, mut rest) = (String::from("^"), pattern);
    while let Some(c) = rest.chars().next() {
        let (piece, len) = match c {
            '*' if rest.starts_with("**/") => ("(?:.*/)?".to_owned(), 3),
            '*' if rest.starts_with("**") => (".*".to_owned(), 2),
            '*' => ("[^/]*".to_owned(), 1),
            '?' => ("[^/]?".to_owned(), 1),
            '+' => ("+".to_owned(), 1),
            '[' => match rest.find(']').filter(|&e| e > 1) {
                Some(e) => (rest[..=e].to_owned(), e + 1),
                None => (regex::escape("["), 1),
            },
            _ => (regex::escape(&rest[..c.len_utf8()]), c.len_utf8()),
        };
        re.push_str(&piece);
        rest = &rest[len..];
    }
    Regex::new(&(re + "$")).is_ok_and(|r| r.is_match(path))
}

/// Whether a list of filter patterns (in order, `!` negating earlier ones)
/// selects `path`: the last pattern that matches decides, as GitHub applies
/// `paths:` and `branches:` lists.
pub fn patterns_select(patterns: &[String], path: &str) -> bool {
    let last = patterns.iter().rev().find(|p| glob_match(p.strip_prefix('!').unwrap_or(p), path));
    last.is_some_and(|p| !p.starts_with('!'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_github_filter_patterns() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "a/b/c.rs", true),
            ("*", "Cargo.toml", true),
            ("*", "broker/Cargo.toml", false),
            ("*.toml", "Cargo.toml", true),
            ("*.toml", "broker/Cargo.toml", false),
            ("**.toml", "broker/Cargo.toml", true),
            ("**/*.toml", "Cargo.toml", true),
            ("**/*.toml", "broker/Cargo.toml", true),
            ("broker/**", "broker/src/main.rs", true),
            ("broker/**", "brokerx/a", false),
            ("broker/*", "broker/src/main.rs", false),
            ("broker", "broker/src/main.rs", false),
            ("broker/**/*.rs", "broker/main.rs", true),
            ("Dockerfile.*", "Dockerfile.agent", true),
            ("Dockerfile*", "Dockerfile.broker", true),
            ("Cargo.loc?", "Cargo.lock", true),
            ("Cargo.lock?", "Cargo.lock", true),
            ("[CB]argo.toml", "Cargo.toml", true),
            ("[a-b]argo.toml", "Cargo.toml", false),
            ("v[0-9]+", "v123", true),
            ("v[0-9]+", "v", false),
            ("ma+in", "maaain", true),
            (".github/workflows/*.yml", ".github/workflows/build-images.yml", true),
            ("releases/**", "releases/v1/x", true),
            ("main", "main", true),
            ("main", "mainline", false),
        ];
        for (p, s, want) in cases {
            assert_eq!(glob_match(p, s), *want, "{p} vs {s}");
        }
    }

    #[test]
    fn negated_patterns_deselect() {
        let pats: Vec<String> =
            ["**", "!docs/**", "docs/keep.md"].iter().map(|s| s.to_string()).collect();
        assert!(patterns_select(&pats, "src/a.rs"));
        assert!(!patterns_select(&pats, "docs/x.md"));
        assert!(patterns_select(&pats, "docs/keep.md"));
        assert!(!patterns_select(&[], "a"));
    }
}
