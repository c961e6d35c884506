//! docker/metadata-action's own test cases, restated as data in
//! `xtask/tests/fixtures/metadata-action-cases.json` (source commit named
//! there), run against [`super::eval`]; plus the tag rows of
//! `shared/cases/tags.md` that need rules as data (T11 to T13).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

use super::{eval::evaluate, Context, Payload, Rules};

#[derive(Deserialize)]
struct Fixture {
    commit: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    group: String,
    name: String,
    env: BTreeMap<String, String>,
    #[serde(default)]
    payload: Option<Payload>,
    tags_input: Vec<String>,
    #[serde(default)]
    flavor_input: Vec<String>,
    version: String,
    tags: Vec<String>,
    revision: String,
}

/// Cases where brokkr deliberately differs, with the reason; each must
/// fail with an error (never a different tag). Every other case must agree
/// exactly (version, tag names, revision). The other deliberate difference,
/// tags that are not valid Docker tags, occurs in none of these cases: see
/// `invalid_docker_tags_are_repaired_with_a_message` below.
const DIFFERENCES: &[(&str, &str)] = &[
    ("null/null01", "no GITHUB_EVENT_NAME / GITHUB_SHA: an error here (the run cannot be tagged); metadata-action gives no tags"),
    ("null/null02", "no GITHUB_EVENT_NAME / GITHUB_SHA: an error here (the run cannot be tagged); metadata-action gives no tags"),
    ("push/push12", "type=pep440 is not supported: an error naming the valid types"),
    ("push/push14", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag23", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag24", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag25", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag26", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag27", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag28", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag29", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag30", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag32", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag33", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/push35", "type=pep440 is not supported: an error naming the valid types"),
    ("pr/pr12", "an unquoted {{commit_date FORMAT}} is an error asking for quotes; handlebars reads FORMAT as a missing variable and moment then uses its default ISO format"),
    ("pr-head-sha/pr12", "an unquoted {{commit_date FORMAT}} is an error asking for quotes; handlebars reads FORMAT as a missing variable and moment then uses its default ISO format"),
];

fn run(case: &Case) -> anyhow::Result<(String, Vec<String>, String)> {
    let mut env = case.env.clone();
    env.entry("GITHUB_REPOSITORY".into()).or_insert_with(|| "docker/repo".into());
    let mut ctx = Context::from_github(|k| env.get(k).cloned(), case.payload.as_ref())?;
    let fixed: Timestamp = "2020-01-10T00:30:00Z".parse()?;
    ctx.now = fixed;
    ctx.commit_date = Some(fixed);
    ctx.default_branch.get_or_insert_with(|| "master".into());
    let rules = Rules::parse(&case.tags_input.join("\n"), &case.flavor_input.join("\n"))?;
    let t = evaluate(&rules, &ctx, &[])?;
    Ok((t.version, t.tags, ctx.sha))
}

#[test]
fn metadata_action_cases() {
    let text = include_str!("../../tests/fixtures/metadata-action-cases.json");
    let fixture: Fixture = serde_json::from_str(text).unwrap();
    assert_eq!(fixture.commit.len(), 40);
    let mut failures = Vec::new();
    let mut agreed = 0;
    for case in &fixture.cases {
        let id = format!("{}/{}", case.group, case.name);
        let want = (case.version.clone(), case.tags.clone(), case.revision.clone());
        let got = run(case).map_err(|e| format!("{e:#}"));
        let differs = DIFFERENCES.iter().find(|(n, _)| *n == id);
        match (got, differs) {
            (Ok(g), None) if g == want => agreed += 1,
            (Ok(g), Some(_)) if g == want => {
                failures.push(format!("{id}: now agrees, drop it from DIFFERENCES"))
            }
            (Ok(g), Some((_, why))) => {
                failures.push(format!("{id} ({why}): gave {g:?}, not an error"))
            }
            (Err(_), Some(_)) => {}
            (got, None) => failures.push(format!("{id}: want {want:?}\n   got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{} agreed; failures:\n{}", agreed, failures.join("\n"));
}

const SHA: &str = "356defb93c8e41d2a7b05f6c9e1d3a4b5c6d7e8f";

fn ctx(vars: &[(&str, &str)], payload: Option<serde_json::Value>) -> Context {
    let mut env: BTreeMap<String, String> =
        [("GITHUB_SHA", SHA), ("GITHUB_REPOSITORY", "acme/brokkr")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let payload: Option<Payload> = payload.map(|p| serde_json::from_value(p).unwrap());
    let mut ctx = Context::from_github(|k| env.get(k).cloned(), payload.as_ref()).unwrap();
    ctx.now = "2020-01-10T00:30:00Z".parse().unwrap();
    ctx
}

fn push(git_ref: &str) -> Context {
    ctx(&[("GITHUB_EVENT_NAME", "push"), ("GITHUB_REF", git_ref)], None)
}

fn tags(ctx: &Context, rules: &str, flavor: &str) -> super::eval::Tags {
    evaluate(&Rules::parse(rules, flavor).unwrap(), ctx, &[]).unwrap()
}

fn error(rules: &str, flavor: &str) -> String {
    format!("{:#}", Rules::parse(rules, flavor).unwrap_err())
}

#[test]
fn t11_pr_head_sha_on_pull_request() {
    let head = "abcdef0123456789abcdef0123456789abcdef01";
    let payload =
        serde_json::json!({"pull_request": {"number": 15, "head": {"sha": head, "ref": "f"}}});
    for value in ["true", "TRUE", "True"] {
        let c = ctx(
            &[
                ("GITHUB_EVENT_NAME", "pull_request"),
                ("GITHUB_REF", "refs/pull/15/merge"),
                ("DOCKER_METADATA_PR_HEAD_SHA", value),
            ],
            Some(payload.clone()),
        );
        assert_eq!(c.sha, head, "{value}: the revision label is the head commit too");
        assert_eq!(tags(&c, "type=sha", "").tags, ["sha-abcdef0"]);
    }
    let merge = ctx(
        &[("GITHUB_EVENT_NAME", "pull_request"), ("GITHUB_REF", "refs/pull/15/merge")],
        Some(payload),
    );
    assert_eq!(tags(&merge, "type=sha", "").tags, ["sha-356defb"]);
}

#[test]
fn t12_default_rules_on_any_tag() {
    let t = tags(&push("refs/tags/release1"), "", "");
    assert_eq!(t.tags, ["release1", "latest"]);
    assert_eq!(t.version, "release1");
}

#[test]
fn t13_semver_rule_on_a_branch_and_a_misspelt_type() {
    assert!(tags(&push("refs/heads/main"), "type=semver,pattern=v{{major}}", "").tags.is_empty());
    let e = error("type=semvr,pattern={{version}}", "");
    assert!(
        e.contains("line 1") && e.contains("schedule, semver, match, edge, ref, raw, sha"),
        "{e}"
    );
}

#[test]
fn bad_rules_name_the_line_and_the_choices() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "type=sha\ntype=sha,colour=red",
            "",
            &["line 2", "colour", "prefix, suffix, enable, priority"],
        ),
        ("type=semver,pattern=stable", "", &["line 1", "no placeholder", "{{version}}"]),
        ("type=semver,pattern={{verison}}", "", &["unknown placeholder", "version, major"]),
        ("type=ref,event=push", "", &["event=branch"]),
        ("type=sha,format=medium", "", &["short", "long"]),
        ("type=raw,value={{date YYYY}}", "", &["quoted"]),
        ("type=raw,value={{branch", "", &["without"]),
        ("type=sha,priority=high", "", &["whole number"]),
        ("type=sha", "latest=maybe", &["flavor line 1", "auto, true or false"]),
        ("type=sha", "colour=red", &["latest, prefix, suffix, onlatest"]),
    ];
    for (rules, flavor, want) in cases {
        let e = error(rules, flavor);
        for w in *want {
            assert!(e.contains(w), "{rules} / {flavor}: `{w}` not in {e}");
        }
    }
    // enable must give true or false once templated
    let rules = Rules::parse("type=sha\ntype=raw,value=x,enable={{branch}}", "").unwrap();
    let e = format!("{:#}", evaluate(&rules, &push("refs/heads/main"), &[]).unwrap_err());
    assert!(e.contains("line 2") && e.contains("`main`") && e.contains("true or false"), "{e}");
}

#[test]
fn invalid_docker_tags_are_repaired_with_a_message() {
    let long = "b".repeat(130);
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("type=raw,value=.hidden", ".hidden", Some("hidden")),
        ("type=raw,value=-dash", "-dash", Some("dash")),
        ("type=ref,event=branch", "-1", Some("1")),
        ("type=raw,value=###", "-", None),
    ];
    let c = push("refs/heads/#1");
    for (rule, metadata_action, want) in cases {
        let t = tags(&c, rule, "");
        assert_eq!(t.tags, want.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{rule}");
        assert!(
            t.warnings.iter().any(|w| w
                .contains(&format!("`{metadata_action}` (what docker/metadata-action would tag)"))),
            "{rule}: {:?}",
            t.warnings
        );
    }
    let t = tags(&c, &format!("type=raw,value={long}"), "");
    assert_eq!(t.tags, ["b".repeat(128)]);
    assert!(t.warnings[0].contains(&long), "{:?}", t.warnings);
}

#[test]
fn flavor_and_priority() {
    let c = push("refs/tags/v1.2.3");
    let t =
        tags(&c, "type=semver,pattern={{version}}\ntype=sha", "prefix=x-,onlatest=true\nsuffix=-y");
    assert_eq!(t.tags, ["x-1.2.3-y", "sha-356defb-y", "x-latest"]);
    assert_eq!(tags(&c, "type=semver,pattern={{version}}", "latest=false").tags, ["1.2.3"]);
    assert_eq!(
        tags(&push("refs/heads/dev"), "type=ref,event=branch", "latest=true").tags,
        ["dev", "latest"]
    );
    // priority orders; ties keep the lines' order; the first is the version
    let t = tags(&c, "type=raw,value=a\ntype=raw,value=b,priority=2000\ntype=raw,value=c", "");
    assert_eq!((t.version.as_str(), t.tags), ("b", vec!["b".to_owned(), "a".into(), "c".into()]));
}

#[test]
fn explicit_tags_sit_where_raw_rules_do() {
    let rules = Rules::parse("type=ref,event=branch\ntype=sha", "").unwrap();
    let t = evaluate(&rules, &push("refs/heads/main"), &["stable".to_owned()]).unwrap();
    assert_eq!(t.tags, ["main", "stable", "sha-356defb"]);
    assert_eq!(t.version, "main");
}

#[test]
fn templates_and_dates() {
    let mut c = ctx(
        &[("GITHUB_EVENT_NAME", "push"), ("GITHUB_REF", "refs/tags/v1.0.0")],
        Some(
            serde_json::json!({"base_ref": "refs/heads/main", "repository": {"default_branch": "main"}}),
        ),
    );
    c.commit_date = Some("2019-12-31T23:00:00Z".parse().unwrap());
    let cases: &[(&str, &str)] = &[
        ("{{tag}}-{{sha}}-{{base_ref}}", "v1.0.0-356defb-main"),
        ("{{ branch }}x{{is_default_branch}}", "xfalse"),
        ("{{date 'YYYY.MM.DD HH:mm:ss'}}", "2020.01.10-00-30-00"),
        ("{{date \"YYYYMMDD-HHmm\" tz='Asia/Tokyo'}}", "20200110-0930"),
        ("{{date 'D.M.YY h A [at] dddd'}}", "10.1.20-12-AM-at-Friday"),
        ("{{commit_date 'YYYY-MM-DD'}}", "2019-12-31"),
    ];
    for (value, want) in cases {
        let t = tags(&c, &format!("type=raw,value={value}"), "");
        assert_eq!(t.tags, [*want], "{value}");
    }
    assert!(Rules::parse("type=raw,value={{date 'Wo'}}", "").is_ok());
    let rules = Rules::parse("type=raw,value={{date 'Wo'}}", "").unwrap();
    let e = format!("{:#}", evaluate(&rules, &c, &[]).unwrap_err());
    assert!(e.contains("not supported") && e.contains("YYYY"), "{e}");
    // DOCKER_METADATA_SHORT_SHA_LENGTH
    c.short_sha_len = 12;
    assert_eq!(tags(&c, "type=sha", "").tags, ["sha-356defb93c8e"]);
    assert!(super::short_sha_len(Some("seven")).is_err());
}

#[test]
fn default_branch_and_edge() {
    let mut c = push("refs/heads/trunk");
    assert_eq!(
        tags(&c, "type=edge", "").tags,
        Vec::<String>::new(),
        "default branch unknown: main"
    );
    c.default_branch = Some("trunk".into());
    assert_eq!(
        tags(&c, "type=edge\ntype=raw,value=d,enable={{is_default_branch}}", "").tags,
        ["edge", "d"]
    );
}
