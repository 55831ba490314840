//! The architecture's one hard rule (docs/architecture.md): no two modules of a crate import each other,
//! directly or through others. Modules are files; an edge is a path (`crate::a::b`, `super::x`, `self::x`,
//! or a child module's name) in code outside comments, re-exports (`pub use`) and the file's unit tests.
//! A parent that composes its children and a child that uses the parent is a cycle too: what children
//! share lives in a sibling file. Cross-crate cycles cannot exist (cargo refuses them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The module path of a source file below a crate's `src` (`a/b.rs` and `a/b/mod.rs` are `a::b`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("below src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Code without comments (line comments and doc comments; block comments are not used for code here) and
/// without re-exports: `pub use child::Item` makes a facade, not a dependency of the module's own code.
fn code(text: &str) -> String {
    // A file's unit tests (`#[cfg(test)] mod tests`, at its end) are not part of the module's interface:
    // their `super::*` is the file itself.
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod tests"))
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .copied()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("pub use ") || t.starts_with("pub(crate) use "))
        })
        .map(|l| match l.find("//") {
            // `//` inside a string literal (a URL) is rare in paths we look for; cutting there is harmless.
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths like `crate::a::b`, `super::super::x`, `self::y`, `child::z` in `code`.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if ident(bytes[i]) && (i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            let mut j = i;
            let mut segs = Vec::new();
            loop {
                let s = j;
                while j < bytes.len() && ident(bytes[j]) {
                    j += 1;
                }
                segs.push(code[s..j].to_string());
                if code[j..].starts_with("::") && j + 2 < bytes.len() && ident(bytes[j + 2]) {
                    j += 2;
                } else if code[j..].starts_with("::{") {
                    // `use a::{b, c::d}`: each item of the group, one level deep, is its own path.
                    let close = code[j..].find('}').map(|k| j + k).unwrap_or(bytes.len());
                    for item in code[j + 3..close].split(',') {
                        let mut p = segs.clone();
                        p.extend(item.trim().split("::").map(|s| s.trim().to_string()));
                        out.push(p);
                    }
                    break;
                } else {
                    break;
                }
            }
            if segs.len() > 1 {
                out.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// The module a path names (the longest prefix that is a module), seen from module `from`.
fn target(
    from: &[String],
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
    children: &BTreeSet<String>,
) -> Option<Vec<String>> {
    let (mut base, rest): (Vec<String>, &[String]) = match path[0].as_str() {
        "crate" => (vec![], &path[1..]),
        "self" => (from.to_vec(), &path[1..]),
        "super" => {
            let mut b = from.to_vec();
            let mut k = 0;
            while k < path.len() && path[k] == "super" {
                b.pop();
                k += 1;
            }
            (b, &path[k..])
        }
        name if children.contains(name) => (from.to_vec(), path),
        _ => return None,
    };
    let mut best = base.clone();
    for seg in rest {
        base.push(seg.clone());
        if modules.contains(&base) {
            best = base.clone();
        } else {
            break;
        }
    }
    Some(best)
}

/// The cycles among one crate's modules (strongly connected components of more than one module).
fn cycles(src: &Path) -> Vec<Vec<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in &files {
        let from = module_of(src, f);
        let text = code(&std::fs::read_to_string(f).unwrap());
        let children: BTreeSet<String> = modules
            .iter()
            .filter(|m| m.len() == from.len() + 1 && m.starts_with(&from))
            .map(|m| m.last().unwrap().clone())
            .collect();
        for p in paths(&text) {
            if let Some(to) = target(&from, &p, &modules, &children)
                && to != from
                // A module's own submodules (its `tests`, its children) using it is not a cycle unless
                // it uses them back; ancestors are handled like any module.
                && modules.contains(&to)
            {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Tarjan's strongly connected components.
    struct T<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<Vec<String>, usize>,
        low: BTreeMap<Vec<String>, usize>,
        stack: Vec<Vec<String>>,
        on: BTreeSet<Vec<String>>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T, v: &Vec<String>) {
        t.index.insert(v.clone(), t.next);
        t.low.insert(v.clone(), t.next);
        t.next += 1;
        t.stack.push(v.clone());
        t.on.insert(v.clone());
        let succ: Vec<Vec<String>> = t.edges.get(v).into_iter().flatten().cloned().collect();
        for w in succ {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(&w);
                comp.push(if w.is_empty() {
                    "(root)".to_string()
                } else {
                    w.join("::")
                });
                if &w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for m in &modules {
        if !t.index.contains_key(m) {
            visit(&mut t, m);
        }
    }
    t.out
}

#[test]
fn no_crate_has_a_module_import_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut srcs = vec![root.join("src")];
    for e in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        srcs.push(e.path().join("src"));
    }
    let mut found = Vec::new();
    for src in srcs.iter().filter(|s| s.is_dir()) {
        for c in cycles(src) {
            found.push(format!("{}: {}", src.display(), c.join(" <-> ")));
        }
    }
    assert!(
        found.is_empty(),
        "module import cycles:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\nmod p;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::B;\npub struct A;\n").unwrap();
    std::fs::write(
        src.join("b.rs"),
        "// crate::a::A in a comment does not count\npub struct B(crate::a::A);\n",
    )
    .unwrap();
    assert_eq!(cycles(src), vec![vec!["a".to_string(), "b".to_string()]]);
    std::fs::write(src.join("b.rs"), "// crate::a::A\npub struct B;\n").unwrap();
    assert!(cycles(src).is_empty());

    // A parent composing a child that uses the parent's item is a cycle; a re-export or the child's unit
    // tests are not.
    std::fs::create_dir(src.join("p")).unwrap();
    std::fs::write(
        src.join("p/mod.rs"),
        "mod c;\npub struct S;\nfn f() { c::run() }\n",
    )
    .unwrap();
    std::fs::write(src.join("p/c.rs"), "use super::S;\npub fn run() {}\n").unwrap();
    assert_eq!(cycles(src), vec![vec!["p".to_string(), "p::c".to_string()]]);
    std::fs::write(
        src.join("p/mod.rs"),
        "mod c;\nmod s;\npub use s::S;\nfn f() { c::run() }\n",
    )
    .unwrap();
    std::fs::write(src.join("p/s.rs"), "pub struct S;\n").unwrap();
    std::fs::write(
        src.join("p/c.rs"),
        "use super::s::S;\npub fn run() {}\n#[cfg(test)]\nmod tests {\n    use super::super::*;\n}\n",
    )
    .unwrap();
    assert!(cycles(src).is_empty());
}
