//! GitHub's filter patterns (workflow syntax, "Filter pattern cheat sheet")
//! for `branches:`, `tags:` and `paths:`. `globset` gives `?` and `**`
//! other meanings (exactly one character; `**` only between slashes), and
//! has no `+`, so this small matcher stays.

/// Whether `path` matches a GitHub filter pattern (workflow syntax, "Filter
/// pattern cheat sheet"): `*` any characters but `/`; `**` any characters;
/// `?` zero or one character; `+` one or more of the preceding character;
/// `[a-z0-9]` one listed character. The pattern must match the whole path
/// from the repository root (so `docs` does not match `docs/a.md`).
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    glob_at(&p, &s)
}

fn glob_at(p: &[char], s: &[char]) -> bool {
    let Some(&c) = p.first() else {
        return s.is_empty();
    };
    match c {
        '*' if p.get(1) == Some(&'*') => {
            let rest = &p[2..];
            // `**/` also matches nothing (`a/**/b` matches `a/b`).
            if rest.first() == Some(&'/') && glob_at(&rest[1..], s) {
                return true;
            }
            (0..=s.len()).any(|i| glob_at(rest, &s[i..]))
        }
        '*' => {
            let rest = &p[1..];
            let max = s.iter().position(|&ch| ch == '/').unwrap_or(s.len());
            (0..=max).any(|i| glob_at(rest, &s[i..]))
        }
        '?' => {
            glob_at(&p[1..], s)
                || (s.first().is_some_and(|&ch| ch != '/') && glob_at(&p[1..], &s[1..]))
        }
        '[' => match p.iter().position(|&ch| ch == ']') {
            Some(close) if close > 1 => {
                let class = &p[1..close];
                let Some(&ch) = s.first() else { return false };
                let hit = class_matches(class, ch);
                let rest = &p[close + 1..];
                if rest.first() == Some(&'+') {
                    hit && (glob_at(&rest[1..], &s[1..]) || glob_at(p, &s[1..]))
                } else {
                    hit && glob_at(rest, &s[1..])
                }
            }
            _ => s.first() == Some(&'[') && glob_at(&p[1..], &s[1..]),
        },
        _ => {
            if s.first() != Some(&c) {
                return false;
            }
            if p.get(1) == Some(&'+') {
                // One matched; more of the same may follow.
                let mut i = 1;
                loop {
                    if glob_at(&p[2..], &s[i..]) {
                        return true;
                    }
                    if s.get(i) != Some(&c) {
                        return false;
                    }
                    i += 1;
                }
            }
            glob_at(&p[1..], &s[1..])
        }
    }
}

fn class_matches(class: &[char], ch: char) -> bool {
    let mut i = 0;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == '-' {
            if class[i] <= ch && ch <= class[i + 2] {
                return true;
            }
            i += 3;
        } else {
            if class[i] == ch {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// Whether a list of filter patterns (in order, `!` negating earlier ones)
/// selects `path`: the last pattern that matches decides, as GitHub applies
/// `paths:` and `branches:` lists.
pub fn patterns_select(patterns: &[String], path: &str) -> bool {
    let mut selected = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if glob_match(neg, path) {
                selected = false;
            }
        } else if glob_match(p, path) {
            selected = true;
        }
    }
    selected
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
            (
                ".github/workflows/*.yml",
                ".github/workflows/build-images.yml",
                true,
            ),
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
        let pats: Vec<String> = ["**", "!docs/**", "docs/keep.md"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(patterns_select(&pats, "src/a.rs"));
        assert!(!patterns_select(&pats, "docs/x.md"));
        assert!(patterns_select(&pats, "docs/keep.md"));
        assert!(!patterns_select(&[], "a"));
    }
}
