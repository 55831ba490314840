//! The option reference in `docs/options/` is generated from the doc comments of the schema sources
//! (`crates/template/src/schema/`): this test renders it and fails when a committed file differs, or
//! when an option has no doc comment. Regenerate the files with
//!
//!     BAKERY_BLESS=1 cargo test -p bakery-template --test tests options_reference
//!
//! The sources are read as text: a `pub struct` or `pub enum` at the start of a line, its `///` doc
//! comment, and each `pub field: Type,` (or variant) with its own `///` doc comment. A field's option
//! is its name, unless its doc comment starts with "JSON key `X`" or "JSON keys `X` ... `Y`:", or
//! with "Top-level options" (a group of options that sit next to the field's own, not under it).

use bakery_template::schema::amazon_ebs::{LATE_FIELDS, RENAMED};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const REGENERATE: &str =
    "BAKERY_BLESS=1 cargo test -p bakery-template --test tests options_reference";

/// One generated file: the plugin, what it is, and its sources in the order they are rendered.
struct Reference {
    plugin: &'static str,
    kind: &'static str,
    sources: &'static [&'static str],
}

const REFERENCES: &[Reference] = &[
    Reference {
        plugin: "amazon-ebs",
        kind: "builder",
        sources: &[
            "amazon_ebs/mod.rs",
            "amazon_ebs/access.rs",
            "amazon_ebs/ami.rs",
            "amazon_ebs/run.rs",
            "amazon_ebs/filters.rs",
            "amazon_ebs/iam.rs",
            "amazon_ebs/metadata.rs",
            "amazon_ebs/placement.rs",
            "amazon_ebs/communicator.rs",
            "amazon_ebs/block_devices.rs",
            "amazon_ebs/fast_launch.rs",
        ],
    },
    Reference {
        plugin: "shell",
        kind: "provisioner",
        sources: &["shell.rs", "common.rs"],
    },
    Reference {
        plugin: "file",
        kind: "provisioner",
        sources: &["file.rs", "common.rs"],
    },
    Reference {
        plugin: "shell-local",
        kind: "provisioner and post-processor",
        sources: &["shell_local.rs", "common.rs"],
    },
    Reference {
        plugin: "ansible",
        kind: "provisioner",
        sources: &["ansible.rs", "common.rs"],
    },
    Reference {
        plugin: "ansible-local",
        kind: "provisioner",
        sources: &["ansible_local.rs", "common.rs"],
    },
    Reference {
        plugin: "manifest",
        kind: "post-processor",
        sources: &["manifest.rs"],
    },
];

/// A documented field or enum variant.
struct Member {
    name: String,
    ty: Option<String>,
    doc: Vec<String>,
}

/// A `pub struct` or `pub enum` of a schema source.
struct Item {
    name: String,
    is_enum: bool,
    doc: Vec<String>,
    members: Vec<Member>,
}

/// A schema source: its module doc comment and its items.
struct Source {
    path: String,
    doc: Vec<String>,
    items: Vec<Item>,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads one source file, reporting undocumented items and members into `missing`.
fn read_source(rel: &str, missing: &mut Vec<String>) -> Source {
    let path = manifest_dir().join("src/schema").join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut doc = Vec::new();
    let mut items = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(d) = line.strip_prefix("//!") {
            doc.push(d.strip_prefix(' ').unwrap_or(d).to_string());
            continue;
        }
        if let Some(d) = line.strip_prefix("///") {
            pending.push(d.strip_prefix(' ').unwrap_or(d).to_string());
            continue;
        }
        if line.starts_with("#[") {
            continue;
        }
        let header = line
            .strip_prefix("pub struct ")
            .map(|r| (r, false))
            .or_else(|| line.strip_prefix("pub enum ").map(|r| (r, true)));
        let Some((rest, is_enum)) = header.filter(|(r, _)| r.ends_with(" {")) else {
            pending.clear();
            continue;
        };
        let name = rest.trim_end_matches(" {").to_string();
        if pending.is_empty() {
            missing.push(format!("{rel}: {name}"));
        }
        let mut item = Item {
            name,
            is_enum,
            doc: std::mem::take(&mut pending),
            members: Vec::new(),
        };
        let mut member_doc: Vec<String> = Vec::new();
        for body in lines.by_ref() {
            if body == "}" {
                break;
            }
            let body = body.trim();
            if let Some(d) = body.strip_prefix("///") {
                member_doc.push(d.strip_prefix(' ').unwrap_or(d).to_string());
                continue;
            }
            if body.starts_with("#[") || body.is_empty() || body.starts_with("//") {
                continue;
            }
            let member = if is_enum {
                let name: String = body
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                Member {
                    name,
                    ty: None,
                    doc: std::mem::take(&mut member_doc),
                }
            } else {
                let Some((name, ty)) = body
                    .strip_prefix("pub ")
                    .and_then(|r| r.trim_end_matches(',').split_once(": "))
                else {
                    member_doc.clear();
                    continue;
                };
                Member {
                    name: name.to_string(),
                    ty: Some(ty.to_string()),
                    doc: std::mem::take(&mut member_doc),
                }
            };
            if member.doc.is_empty() {
                missing.push(format!("{rel}: {}.{}", item.name, member.name));
            }
            item.members.push(member);
        }
        items.push(item);
    }
    Source {
        path: rel.to_string(),
        doc,
        items,
    }
}

/// Joins doc lines into Markdown paragraphs (blank doc lines separate them).
fn paragraphs(doc: &[String]) -> Vec<String> {
    let mut out = vec![String::new()];
    for line in doc {
        if line.trim().is_empty() {
            if !out.last().is_some_and(String::is_empty) {
                out.push(String::new());
            }
            continue;
        }
        let last = out.last_mut().expect("never empty");
        if !last.is_empty() {
            // A list item starts its own line.
            last.push(if line.starts_with("- ") { '\n' } else { ' ' });
        }
        last.push_str(&without_links(line.trim()));
    }
    out.retain(|p| !p.is_empty());
    out
}

/// Rustdoc's intra-doc links (``[`access`]``) as plain code.
fn without_links(line: &str) -> String {
    line.replace("[`", "`").replace("`]", "`")
}

/// One table cell: the doc's paragraphs on one line.
fn cell(doc: &[String]) -> String {
    paragraphs(doc).join("<br>").replace('|', "\\|")
}

/// The options a field stands for: its name, or the keys its doc names ("JSON key `X`: ...").
fn option_names(m: &Member) -> String {
    let first = m.doc.first().map(String::as_str).unwrap_or("");
    if first.starts_with("Top-level options") {
        return "(group)".into();
    }
    if first.starts_with("JSON key") {
        let joined = m.doc.join(" ");
        let head = joined.split(':').next().unwrap_or("");
        let keys: Vec<&str> = head.split('`').skip(1).step_by(2).collect();
        if !keys.is_empty() {
            return keys
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
        }
    }
    format!("`{}`", m.name)
}

/// A Rust field type as a template author sees it; `known` are the documented types (linked), with
/// whether each is an enum (a string out of a fixed set).
fn type_name(ty: &str, known: &[(String, bool)]) -> String {
    let ty = ty.trim();
    if let Some(inner) = ty.strip_prefix("Option<").and_then(|r| r.strip_suffix('>')) {
        return type_name(inner, known);
    }
    if let Some(inner) = ty.strip_prefix("Vec<").and_then(|r| r.strip_suffix('>')) {
        return format!("list of {}", plural(&type_name(inner, known)));
    }
    if let Some(inner) = ty.strip_prefix("Box<").and_then(|r| r.strip_suffix('>')) {
        return type_name(inner, known);
    }
    match ty {
        "bool" => "boolean".into(),
        "String" => "string".into(),
        "i64" | "u16" | "u32" => "number".into(),
        "Duration" => "duration (`\"5m\"`)".into(),
        "LateTemplate" => "string, rendered late".into(),
        "LateMap" | "BTreeMap<String, LateTemplate>" => "map of strings, rendered late".into(),
        "BTreeMap<String, String>" => "map of strings".into(),
        other => match known.iter().find(|(k, _)| k == other) {
            Some((_, true)) => format!("string: [{other}](#{})", other.to_ascii_lowercase()),
            Some((_, false)) => format!("[{other}](#{})", other.to_ascii_lowercase()),
            None => format!("`{other}`"),
        },
    }
}

fn plural(t: &str) -> String {
    match t {
        "string" => "strings".into(),
        "number" => "numbers".into(),
        "string, rendered late" => "strings, rendered late".into(),
        other => other.to_string(),
    }
}

/// Renders one reference file.
fn render(r: &Reference, missing: &mut Vec<String>) -> String {
    let sources: Vec<Source> = r.sources.iter().map(|s| read_source(s, missing)).collect();
    let known: Vec<(String, bool)> = sources
        .iter()
        .flat_map(|s| s.items.iter().map(|i| (i.name.clone(), i.is_enum)))
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "# {} {} options\n", r.plugin, r.kind);
    let _ = writeln!(
        out,
        "<!-- Generated from the doc comments of the schema sources; do not edit. Regenerate with:\n     {REGENERATE} -->\n"
    );
    let listed: Vec<String> = r
        .sources
        .iter()
        .map(|s| format!("`crates/template/src/schema/{s}`"))
        .collect();
    let _ = writeln!(
        out,
        "Generated from the doc comments of {} by `crates/template/tests/options_reference.rs`, \
         which fails when this file is out of date. Edit the doc comments, then regenerate with \
         `{REGENERATE}`.\n",
        listed.join(", ")
    );
    let _ = writeln!(
        out,
        "Options decode weakly, as Packer's: `\"true\"` for a boolean, a number as a string and a \
         string as a number, a single value or a comma-separated string for a list, durations as Go \
         duration strings (`\"5m\"`, `\"1h30m\"`). \"Rendered late\": the value stays a template until \
         the step that uses it.\n"
    );
    if r.plugin == "amazon-ebs" {
        render_amazon_ebs_extras(&mut out);
    }
    for s in &sources {
        let _ = writeln!(out, "## `{}`\n", s.path);
        for p in paragraphs(&s.doc) {
            let _ = writeln!(out, "{p}\n");
        }
        for item in &s.items {
            let _ = writeln!(out, "### {}\n", item.name);
            for p in paragraphs(&item.doc) {
                let _ = writeln!(out, "{p}\n");
            }
            if item.is_enum {
                let _ = writeln!(out, "| Variant | Value and meaning |\n|---|---|");
                for m in &item.members {
                    let _ = writeln!(out, "| `{}` | {} |", m.name, cell(&m.doc));
                }
            } else {
                let _ = writeln!(out, "| Option | Type | Description |\n|---|---|---|");
                for m in &item.members {
                    let ty = type_name(m.ty.as_deref().unwrap_or(""), &known);
                    let _ = writeln!(out, "| {} | {} | {} |", option_names(m), ty, cell(&m.doc));
                }
            }
            out.push('\n');
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// The lists amazon-ebs keeps outside its structs: old keys, and the options rendered late.
fn render_amazon_ebs_extras(out: &mut String) {
    let _ = writeln!(
        out,
        "The groups below (`access`, `ami`, `run`, `comm`) are how bakery arranges the options; in a \
         template all their options sit at the builder's top level, next to those of \
         `AmazonEbsConfig` itself.\n"
    );
    let _ = writeln!(
        out,
        "Rendered late (at their step, with `.BuildRegion`, `.SourceAMI`, `.SourceAMIName`, ...): {}.\n",
        LATE_FIELDS
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "Old keys that `packer fix` rewrites are accepted with a warning (the new key wins when both \
         are given):\n\n| Old key | Accepted as |\n|---|---|"
    );
    for (old, new) in RENAMED {
        let _ = writeln!(out, "| `{old}` | `{new}` |");
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "Every other option is applied by a step (tests/options.rs shows each one by the request it \
         changes on the lab, or names the test that does). These are not, and setting them says so at \
         validate, at the option's key: a refused option is an error, an ignored one a warning \
         (`bakery_template::schema::amazon_ebs::support`):\n"
    );
    out.push_str(&bakery_template::schema::amazon_ebs::support::markdown_table());
    out.push('\n');
}

fn docs_dir() -> PathBuf {
    manifest_dir().join("../../docs/options")
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n  committed: {x}\n  generated: {y}", i + 1);
        }
    }
    format!(
        "the committed file has {} lines, the generated one {}",
        a.lines().count(),
        b.lines().count()
    )
}

#[test]
fn option_reference_is_up_to_date() {
    let bless = std::env::var_os("BAKERY_BLESS").is_some_and(|v| v == "1");
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    for r in REFERENCES {
        let text = render(r, &mut missing);
        let path: PathBuf = docs_dir().join(format!("{}.md", r.plugin));
        if bless {
            std::fs::create_dir_all(docs_dir()).expect("creating docs/options");
            std::fs::write(&path, &text).expect("writing the reference");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != text {
            stale.push(format!(
                "{}: {}",
                shown(&path),
                first_difference(&committed, &text)
            ));
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "every option needs a doc comment (what it does, its default, how bakery differs); missing:\n{}",
        missing.join("\n")
    );
    assert!(
        stale.is_empty(),
        "the option reference is out of date; regenerate it with\n  {REGENERATE}\n{}",
        stale.join("\n")
    );
}

/// A path relative to the repository root, for messages.
fn shown(p: &Path) -> String {
    let root = manifest_dir().join("../..");
    p.strip_prefix(&root)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.display().to_string())
}
