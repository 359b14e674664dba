//! The architecture, enforced: the operator never reaches into the CLI, the core crate never
//! uses the Kubernetes client, and no two source files import each other (directly or through a
//! longer loop).
//!
//! These tests read the sources as text. The parser below is a lint, not a compiler; what it
//! understands, and what it deliberately does not, is spelled out where it is defined. Test
//! code is not part of the architecture: `tests.rs` files, `#[cfg(test)] mod x;` files and
//! `#[cfg(test)] mod x { .. }` blocks are skipped.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::Path;

/// Import cycles that exist today and are tolerated, each as the sorted files of one strongly
/// connected component (every file of it reaches every other through imports).
///
/// This list must only shrink: never add an entry or a file to one. Fixing a cycle makes its
/// entry stale, and the test then asks for it to be removed (or replaced by the smaller
/// component that remains). It is empty, and must stay so.
const KNOWN: &[&[&str]] = &[];

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn no_module_of_the_operator_imports_the_cli() {
    let krate = Crate::load("src");
    let operator: Vec<&Module> = krate
        .modules
        .values()
        .filter(|m| {
            m.file.starts_with("src/controller/")
                || [
                    "src/apply.rs",
                    "src/server.rs",
                    "src/leader.rs",
                    "src/metrics.rs",
                    "src/status.rs",
                    "src/error.rs",
                ]
                .contains(&m.file.as_str())
        })
        .collect();
    assert!(
        operator.len() > 7,
        "the operator's files were not found: {operator:?}"
    );
    let mut offenders = Vec::new();
    // The spelled-out forms, anywhere in the code, test code included (comments and literals
    // aside) ...
    for (file, text) in rust_files("src") {
        if operator.iter().any(|m| m.file == file) {
            let code = strip_comments_and_literals(&text);
            for needle in ["crate::cli", "super::cli", "tierflow::cli"] {
                if mentions(&code, needle) {
                    offenders.push(format!("{file} mentions `{needle}`"));
                }
            }
        }
    }
    // ... and any path that resolves into the `cli` module, however it is grouped.
    for m in operator {
        for path in m.paths() {
            if krate
                .absolute(m, path)
                .is_some_and(|abs| abs.first().is_some_and(|s| s == "cli"))
            {
                offenders.push(format!("{} refers to `{}`", m.file, path.join("::")));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the operator must not depend on the CLI (the CLI may use the operator's modules, not the \
         other way round):\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn the_core_crate_cannot_use_the_kubernetes_client() {
    const CLIENT_CRATES: [&str; 3] = ["kube", "kube-client", "kube-runtime"];
    let manifest = read("crates/tierflow-core/Cargo.toml");
    let deps = normal_dependencies(&manifest);
    assert!(
        deps.iter().any(|d| d == "serde"),
        "the [dependencies] of crates/tierflow-core/Cargo.toml were not understood: {deps:?}"
    );
    let bad: Vec<&String> = deps
        .iter()
        .filter(|d| CLIENT_CRATES.contains(&d.as_str()))
        .collect();
    assert!(
        bad.is_empty(),
        "crates/tierflow-core must not depend on the Kubernetes client (kube-core and kube-derive \
         are the client-free crates); it depends on {bad:?}"
    );

    let files = rust_files("crates/tierflow-core/src");
    assert!(files.len() > 10, "the core crate's files were not found");
    let mut offenders = Vec::new();
    // Every file, test code included: the crate could not compile it without the dependency.
    for (file, text) in files {
        let code = strip_comments_and_literals(&text);
        for needle in ["kube::", "kube_client", "kube_runtime"] {
            if mentions(&code, needle) {
                offenders.push(format!("{file} mentions `{needle}`"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the core crate must not use the Kubernetes client:\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn no_import_cycles_between_source_files() {
    let mut found: Vec<Cycle> = Vec::new();
    for dir in ["src", "crates/tierflow-core/src"] {
        let krate = Crate::load(dir);
        assert!(krate.modules.len() > 10, "{dir}: no source files found");
        found.extend(krate.cycles());
    }
    let known: BTreeSet<Vec<String>> = KNOWN
        .iter()
        .map(|c| {
            let mut files: Vec<String> = c.iter().map(|f| f.to_string()).collect();
            files.sort();
            files
        })
        .collect();
    let found_files: BTreeSet<Vec<String>> = found.iter().map(|c| c.files.clone()).collect();

    let new: Vec<String> = found
        .iter()
        .filter(|c| !known.contains(&c.files))
        .map(Cycle::to_string)
        .collect();
    let stale: Vec<String> = known
        .iter()
        .filter(|k| !found_files.contains(*k))
        .map(|k| format!("{k:?}"))
        .collect();
    let mut problems = String::new();
    if !new.is_empty() {
        problems.push_str(&format!(
            "{} import cycle(s) not in KNOWN (break them; never add to KNOWN):\n\n{}\n",
            new.len(),
            new.join("\n")
        ));
    }
    if !stale.is_empty() {
        problems.push_str(&format!(
            "KNOWN lists cycles that no longer exist; remove these entries (or replace one by the \
             smaller cycle that remains, reported above):\n  {}\n",
            stale.join("\n  ")
        ));
    }
    assert!(problems.is_empty(), "\n{problems}");
}

// The parser's own tests, on tiny crates held in memory.

#[test]
fn dependency_tables_are_read_with_their_renames() {
    let deps = normal_dependencies(
        "[package]\nname = \"x\"\n\n[dependencies]\nserde = \"1\" # kube = \"1\"\n\
         k = { package = \"kube\", version = \"5\" }\n\n[dependencies.runtime]\n\
         package = \"kube-runtime\"\n\n[dev-dependencies]\nkube-client = \"5\"\n",
    );
    assert_eq!(deps, ["serde", "k", "kube", "runtime", "kube-runtime"]);
}

#[test]
fn a_child_importing_an_item_its_parent_defines_closes_a_cycle() {
    let krate = Crate::from_sources(&[
        ("lib.rs", "pub mod engine;"),
        (
            "engine/mod.rs",
            "mod index;\nuse index::Index;\npub struct Scenario;\n",
        ),
        (
            "engine/index.rs",
            "use super::Scenario;\npub struct Index;\n",
        ),
    ]);
    assert_eq!(
        krate.edge_list(),
        [
            "engine/index.rs -> engine/mod.rs",
            "engine/mod.rs -> engine/index.rs",
        ]
    );
    let cycles = krate.cycles();
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0].files, ["engine/index.rs", "engine/mod.rs"]);
    assert_eq!(
        cycles[0].example,
        ["engine/index.rs", "engine/mod.rs", "engine/index.rs"]
    );
}

#[test]
fn an_item_a_parent_only_reexports_points_at_the_file_defining_it() {
    let krate = Crate::from_sources(&[
        ("lib.rs", "pub mod engine;\npub mod lint;\n"),
        (
            "engine/mod.rs",
            "mod model;\nmod index;\npub use model::{Mode, Pod as P};\nuse index::Index;\n",
        ),
        ("engine/model.rs", "pub enum Mode {}\npub struct Pod;\n"),
        (
            "engine/index.rs",
            "use super::{Mode, P};\nfn f() { let _ = super::Mode::X; }\n",
        ),
        ("lint.rs", "use crate::engine::{self, Mode};\n"),
    ]);
    assert_eq!(
        krate.edge_list(),
        [
            "engine/index.rs -> engine/model.rs",
            "engine/mod.rs -> engine/index.rs",
            "engine/mod.rs -> engine/model.rs",
            "lint.rs -> engine/mod.rs",
            "lint.rs -> engine/model.rs",
        ]
    );
    assert!(krate.cycles().is_empty());
}

#[test]
fn paths_resolve_to_the_deepest_module_file_and_never_to_the_crate_root() {
    let krate = Crate::from_sources(&[
        (
            "lib.rs",
            "pub mod a;\npub mod b;\npub use other_crate::{render, plan};\npub fn root() {}\n",
        ),
        ("a.rs", "pub fn f() {}\n"),
        ("b/mod.rs", "pub mod c;\n"),
        ("b/c.rs", "pub fn g() {}\n"),
        (
            "user.rs",
            // Grouped, nested, inline, re-exported from outside, and the crate root.
            "use crate::{a, b::c::g};\nuse crate::render::Object;\nfn h() { crate::b::c::g(); \
             crate::root(); crate::plan::run(); }\n",
        ),
    ]);
    let user = &krate.modules[&vec!["user".to_string()]];
    let resolved: Vec<(String, Option<String>)> = user
        .paths()
        .map(|p| (p.join("::"), krate.resolve(user, p).map(|m| m.join("/"))))
        .collect();
    assert_eq!(
        resolved,
        [
            ("crate::a".into(), Some("a".into())),
            ("crate::b::c::g".into(), Some("b/c".into())),
            ("crate::render::Object".into(), None),
            ("crate::b::c::g".into(), Some("b/c".into())),
            ("crate::root".into(), Some("".into())),
            ("crate::plan::run".into(), None),
        ]
    );
    assert_eq!(krate.edge_list(), ["user.rs -> a.rs", "user.rs -> b/c.rs"]);
}

#[test]
fn comments_literals_and_test_modules_are_not_imports() {
    let krate = Crate::from_sources(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a.rs", "pub fn f() {}\n"),
        (
            "b.rs",
            "//! See [`crate::a`].\n/* crate::a::f() */\nconst S: &str = \"crate::a::f\";\n\
             const R: &str = r#\"crate::a\"#;\nconst C: char = '\\'';\nfn g<'x>(_: &'x str) {}\n\
             #[cfg(test)]\nmod tests {\n    use crate::a::f;\n}\npub fn after() {}\n",
        ),
    ]);
    assert!(krate.edge_list().is_empty(), "{:?}", krate.edge_list());
    assert!(krate.modules[&vec!["b".to_string()]]
        .code
        .contains("pub fn after"));
}

// ---------------------------------------------------------------------------------------------
// The parser
// ---------------------------------------------------------------------------------------------
//
// How a crate becomes a graph of files:
//
// 1. Comments and string/char literals are blanked (`strip_comments_and_literals`), then test
//    modules (`drop_test_modules`), so neither can make an edge.
// 2. Each file is a module: `lib.rs` the root, `a.rs` or `a/mod.rs` is `a`, `a/b.rs` is `a::b`
//    (`module_path`). `main.rs` (the binary's own root) and `tests.rs` are left out.
// 3. From the tokens of each file (`parse_module`): its `mod x;` children, every `use`
//    declaration (any visibility, grouped trees expanded) and every other path spelled with
//    `::`. A `mod x;` declaration itself is not an edge.
// 4. A path becomes absolute from `crate::`, `self::`, `super::`, a declared child, or a name
//    the file imports (`Crate::absolute`); anything else (`std::`, other crates, `Self::`,
//    local enums) is not this crate's business.
// 5. It points at the deepest module file that prefixes it; when the next segment is a name
//    that file only imports (a re-export), the search goes on from there (`Crate::resolve`).
//    Paths ending in the crate root, or leaving the crate (the root crate's `crate::render`
//    is `tierflow_core::render`), make no edge.
// 6. Cycles are the strongly connected components of more than one file (`Crate::cycles`).
//
// Known blind spots, all absent from this code base: glob re-exports are not followed,
// `#[path]` attributes and inline non-test modules (`mod x { .. }`) are not modelled, and
// macros are read as plain tokens.

/// One source file, seen as a module.
#[derive(Debug)]
struct Module {
    /// Its path for display (relative to the workspace root, or as given).
    file: String,
    /// Its module path from the crate root (`engine/mod.rs` and `engine.rs` are `[engine]`).
    path: Vec<String>,
    /// Its code: comments, string and char literals blanked, test modules removed.
    code: String,
    /// Child modules it declares with `mod x;` (not the `#[cfg(test)]` ones).
    children: BTreeSet<String>,
    /// Child modules it declares under `#[cfg(test)]` (their files are test code).
    test_children: BTreeSet<String>,
    /// Names its `use` declarations bind (last segment or `as` alias), to the path used.
    imports: BTreeMap<String, Vec<String>>,
    /// Every path of its `use` declarations, expanded (`use a::{b, c::d}` gives `a::b` and
    /// `a::c::d`; `a::{self}` and the glob `a::*` give `a`).
    uses: Vec<Vec<String>>,
    /// Every other path it spells out with `::` (`crate::x::f()`, `super::y::Z`, `child::f`).
    inline: Vec<Vec<String>>,
}

impl Module {
    fn paths(&self) -> impl Iterator<Item = &[String]> {
        self.uses.iter().chain(&self.inline).map(Vec::as_slice)
    }
}

/// The source files of one crate, by module path.
#[derive(Debug)]
struct Crate {
    modules: BTreeMap<Vec<String>, Module>,
}

/// A strongly connected component of the import graph: every file in it reaches every other.
#[derive(Debug)]
struct Cycle {
    /// Its files, sorted.
    files: Vec<String>,
    /// A shortest loop through the first file, closed (`a, b, a`).
    example: Vec<String>,
    /// The imports inside it: (from, to, paths that make the edge).
    edges: Vec<(String, String, Vec<String>)>,
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "cycle among {} files:", self.files.len())?;
        for file in &self.files {
            writeln!(f, "    {file}")?;
        }
        writeln!(f, "  for example: {}", self.example.join(" -> "))?;
        writeln!(f, "  imports inside it:")?;
        for (from, to, via) in &self.edges {
            writeln!(f, "    {from} -> {to}   ({})", via.join(", "))?;
        }
        Ok(())
    }
}

impl Crate {
    /// Reads every `.rs` file under `dir` (relative to the workspace root). `main.rs` is left
    /// out: it is the root of the binary, a crate of its own that nothing can import.
    fn load(dir: &str) -> Crate {
        let files: Vec<(String, String)> = rust_files(dir)
            .into_iter()
            .filter_map(|(file, text)| {
                let rel = file.strip_prefix(&format!("{dir}/"))?.to_string();
                (rel != "main.rs").then_some((rel, text))
            })
            .collect();
        let mut krate = Crate::build(files.iter().map(|(r, t)| (r.as_str(), t.as_str())));
        for m in krate.modules.values_mut() {
            m.file = format!("{dir}/{}", m.file);
        }
        krate
    }

    /// A crate from (path relative to its `src/`, text) pairs, for the parser's own tests.
    fn from_sources(files: &[(&str, &str)]) -> Crate {
        Crate::build(files.iter().copied())
    }

    fn build<'a>(files: impl Iterator<Item = (&'a str, &'a str)>) -> Crate {
        let mut modules = BTreeMap::new();
        for (rel, text) in files {
            let Some(path) = module_path(rel) else {
                continue;
            };
            modules.insert(path.clone(), parse_module(rel, path, text));
        }
        // Drop what is test code: files declared `#[cfg(test)] mod x;`, and all below them.
        let test_only: Vec<Vec<String>> = modules
            .values()
            .flat_map(|m| {
                m.test_children.iter().map(|c| {
                    let mut p = m.path.clone();
                    p.push(c.clone());
                    p
                })
            })
            .collect();
        modules.retain(|path, _| !test_only.iter().any(|t| path.starts_with(t)));
        Crate { modules }
    }

    /// The path, made absolute (from the crate root) as far as this crate's modules go:
    /// `crate::`, `self::`, `super::` (repeated), a child module declared by `from`, or a name
    /// `from` imports (replaced by what it imports). `None` for anything else (`std::`, other
    /// crates, local types such as `Self::` or an enum's variants).
    fn absolute(&self, from: &Module, path: &[String]) -> Option<Vec<String>> {
        self.absolute_at(from, path, 0)
    }

    fn absolute_at(&self, from: &Module, path: &[String], depth: usize) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        let mut abs = match first.as_str() {
            "crate" => Vec::new(),
            "self" => from.path.clone(),
            "super" => {
                let mut base = from.path.clone();
                base.pop()?;
                let mut rest = rest;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                return Some(base);
            }
            child if from.children.contains(child) => {
                let mut p = from.path.clone();
                p.push(child.to_string());
                p
            }
            name => {
                // A name brought in by a `use` (guard against `use a as b; use b as a;` loops).
                let imported = from.imports.get(name)?;
                if depth > 8 || imported.first() == Some(first) && imported.len() == 1 {
                    return None;
                }
                let mut p = imported.clone();
                p.extend(rest.iter().cloned());
                return self.absolute_at(from, &p, depth + 1);
            }
        };
        abs.extend(rest.iter().cloned());
        Some(abs)
    }

    /// The module (file) `path` points into, as seen from `from`: the deepest module file that
    /// is a prefix of its absolute form. If the next segment is a name that file only imports
    /// (a re-export such as `pub use model::Pod;`, or any `use`), the search continues from
    /// what it imports, so that `super::Pod` points at `model.rs` and not at `mod.rs`. `None`
    /// when the path leaves the crate. Glob re-exports (`pub use x::*`) are not followed.
    fn resolve(&self, from: &Module, path: &[String]) -> Option<Vec<String>> {
        self.resolve_at(from, path, 0)
    }

    fn resolve_at(&self, from: &Module, path: &[String], depth: usize) -> Option<Vec<String>> {
        let abs = self.absolute_at(from, path, depth)?;
        let mut n = abs.len();
        while n > 0 && !self.modules.contains_key(&abs[..n]) {
            n -= 1;
        }
        let target = self.modules.get(&abs[..n])?;
        if let Some(next) = abs.get(n) {
            if let Some(imported) = target.imports.get(next) {
                if depth > 8 {
                    return None;
                }
                let mut p = imported.clone();
                p.extend(abs[n + 1..].iter().cloned());
                return self.resolve_at(target, &p, depth + 1);
            }
        }
        Some(abs[..n].to_vec())
    }

    /// Import edges between files, with the paths that make each one. The crate root is never
    /// a target (it only declares modules and re-exports), nor is a file its own.
    fn edges(&self) -> BTreeMap<(String, String), Vec<String>> {
        let mut edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for m in self.modules.values() {
            for path in m.paths() {
                let Some(target) = self.resolve(m, path) else {
                    continue;
                };
                if target.is_empty() || target == m.path {
                    continue;
                }
                let via = edges
                    .entry((m.file.clone(), self.modules[&target].file.clone()))
                    .or_default();
                let text = path.join("::");
                if !via.contains(&text) {
                    via.push(text);
                }
            }
        }
        edges
    }

    fn edge_list(&self) -> Vec<String> {
        self.edges()
            .into_keys()
            .map(|(a, b)| format!("{a} -> {b}"))
            .collect()
    }

    /// Every strongly connected component of more than one file (Tarjan's algorithm).
    fn cycles(&self) -> Vec<Cycle> {
        let edges = self.edges();
        let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (a, b) in edges.keys() {
            next.entry(a).or_default().push(b);
        }
        let nodes: Vec<&str> = self.modules.values().map(|m| m.file.as_str()).collect();
        let mut tarjan = Tarjan {
            next: &next,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            counter: 0,
            components: Vec::new(),
        };
        for n in nodes {
            if !tarjan.index.contains_key(n) {
                tarjan.visit(n);
            }
        }
        let mut cycles: Vec<Cycle> = tarjan
            .components
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|mut files| {
                files.sort();
                let inside: BTreeSet<&str> = files.iter().copied().collect();
                Cycle {
                    example: shortest_loop(&next, files[0], &inside),
                    edges: edges
                        .iter()
                        .filter(|((a, b), _)| {
                            inside.contains(a.as_str()) && inside.contains(b.as_str())
                        })
                        .map(|((a, b), via)| (a.clone(), b.clone(), via.clone()))
                        .collect(),
                    files: files.into_iter().map(String::from).collect(),
                }
            })
            .collect();
        cycles.sort_by(|a, b| a.files.cmp(&b.files));
        cycles
    }
}

struct Tarjan<'a> {
    next: &'a BTreeMap<&'a str, Vec<&'a str>>,
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeSet<&'a str>,
    counter: usize,
    components: Vec<Vec<&'a str>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, v: &'a str) {
        self.index.insert(v, self.counter);
        self.low.insert(v, self.counter);
        self.counter += 1;
        self.stack.push(v);
        self.on_stack.insert(v);
        for &w in self.next.get(v).map_or(&[][..], Vec::as_slice) {
            if !self.index.contains_key(w) {
                self.visit(w);
                let low = self.low[v].min(self.low[w]);
                self.low.insert(v, low);
            } else if self.on_stack.contains(w) {
                let low = self.low[v].min(self.index[w]);
                self.low.insert(v, low);
            }
        }
        if self.low[v] == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

/// A shortest path from `start` back to itself, staying inside `inside` (breadth first).
fn shortest_loop(
    next: &BTreeMap<&str, Vec<&str>>,
    start: &str,
    inside: &BTreeSet<&str>,
) -> Vec<String> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in next.get(v).map_or(&[][..], Vec::as_slice) {
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                // Walk back from `v` to `start`, then read it forwards and close the loop.
                let mut path = vec![v.to_string()];
                let mut at = v;
                while at != start {
                    at = came_from[at];
                    path.push(at.to_string());
                }
                path.reverse();
                path.push(start.to_string());
                return path;
            }
            if !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start.to_string()]
}

/// The module path of a file relative to its crate's `src/`: `lib.rs` is the root `[]`,
/// `a/mod.rs` and `a.rs` are `[a]`, `a/b.rs` is `[a, b]`. `None` for test files (`tests.rs`).
fn module_path(rel: &str) -> Option<Vec<String>> {
    let stem = rel.strip_suffix(".rs")?;
    let mut parts: Vec<String> = stem.split('/').map(String::from).collect();
    match parts.last().map(String::as_str) {
        Some("tests") => return None,
        Some("mod") => {
            parts.pop();
        }
        Some("lib") if parts.len() == 1 => parts.clear(),
        _ => {}
    }
    Some(parts)
}

fn parse_module(rel: &str, path: Vec<String>, text: &str) -> Module {
    let (code, test_children) = drop_test_modules(&strip_comments_and_literals(text));
    let tokens = tokenize(&code);
    let mut module = Module {
        file: rel.to_string(),
        path,
        code,
        children: BTreeSet::new(),
        test_children,
        imports: BTreeMap::new(),
        uses: Vec::new(),
        inline: Vec::new(),
    };
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            // `mod x;` declares a file module (`mod x { .. }` is inline, not a file).
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct(';'))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    if !module.test_children.contains(name) {
                        module.children.insert(name.clone());
                    }
                }
                i += 1;
            }
            // `use` is a keyword: every one starts a declaration, up to its `;` (but not the
            // `use<..>` of precise capturing in `impl Trait + use<'a>`).
            Tok::Ident(kw) if kw == "use" && tokens.get(i + 1) != Some(&Tok::Punct('<')) => {
                let end = tokens[i..]
                    .iter()
                    .position(|t| *t == Tok::Punct(';'))
                    .map_or(tokens.len(), |p| i + p);
                let mut items = Vec::new();
                parse_use_tree(&tokens[i + 1..end], &mut 0, Vec::new(), &mut items);
                for (path, binding) in items {
                    if let Some(name) = binding {
                        module.imports.insert(name, path.clone());
                    }
                    module.uses.push(path);
                }
                i = end + 1;
            }
            // A path spelled inline: `a::b::c`, not starting in the middle of a longer one.
            Tok::Ident(first)
                if tokens.get(i + 1) == Some(&Tok::PathSep)
                    && (i == 0 || tokens[i - 1] != Tok::PathSep) =>
            {
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while tokens.get(j) == Some(&Tok::PathSep) {
                    match tokens.get(j + 1) {
                        Some(Tok::Ident(s)) => {
                            path.push(s.clone());
                            j += 2;
                        }
                        _ => break,
                    }
                }
                module.inline.push(path);
                i = j;
            }
            _ => i += 1,
        }
    }
    module
}

/// Expands one use tree into (path, name it binds). `a::{b, c::d as e, self, f::*}` gives
/// `a::b` (binds `b`), `a::c::d` (binds `e`), `a` (binds `a`) and `a::f` (glob: binds nothing).
/// A leading `::` is ignored.
fn parse_use_tree(
    toks: &[Tok],
    pos: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix;
    loop {
        match toks.get(*pos) {
            Some(Tok::PathSep) => *pos += 1,
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                *pos += 1;
                if toks.get(*pos) != Some(&Tok::PathSep) {
                    break;
                }
            }
            Some(Tok::Punct('{')) => {
                *pos += 1;
                while let Some(t) = toks.get(*pos) {
                    match t {
                        Tok::Punct('}') => {
                            *pos += 1;
                            return;
                        }
                        Tok::Punct(',') => *pos += 1,
                        _ => parse_use_tree(toks, pos, path.clone(), out),
                    }
                }
                return;
            }
            Some(Tok::Punct('*')) => {
                *pos += 1;
                out.push((path, None));
                return;
            }
            _ => break,
        }
    }
    if path.len() > 1 && path.last().is_some_and(|s| s == "self") {
        path.pop();
    }
    let mut binding = path.last().cloned();
    if toks.get(*pos) == Some(&Tok::Ident("as".into())) {
        binding = match toks.get(*pos + 1) {
            Some(Tok::Ident(alias)) if alias != "_" => Some(alias.clone()),
            _ => None,
        };
        *pos += 2;
    }
    if !path.is_empty() {
        out.push((path, binding));
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// Identifiers (keywords and numbers included), `::`, and single punctuation characters.
/// Runs on code whose comments and literals are already blanked.
fn tokenize(code: &str) -> Vec<Tok> {
    let chars: Vec<char> = code.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let mut word: String = chars[start..i].iter().collect();
            // A raw identifier (`r#use`) is an identifier, not the keyword: keep its `r#`.
            if word == "r" && chars.get(i) == Some(&'#') {
                let rest = chars[i + 1..]
                    .iter()
                    .take_while(|ch| ch.is_alphanumeric() || **ch == '_');
                word = format!("r#{}", rest.collect::<String>());
                i += word.len() - 1;
            }
            toks.push(Tok::Ident(word));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            toks.push(Tok::PathSep);
            i += 2;
        } else {
            if !c.is_whitespace() {
                toks.push(Tok::Punct(c));
            }
            i += 1;
        }
    }
    toks
}

/// The text with comments (line, block, nested block, doc) and string, byte string, raw string
/// and char literals replaced by spaces, newlines kept. A `'` starts a char literal when it
/// is followed by an escape or by one character and a closing `'`; otherwise it is a lifetime
/// or a label and is kept.
fn strip_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let n = c.len();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < n {
        let next = c.get(i + 1).copied();
        let after_ident = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        if c[i] == '/' && next == Some('/') {
            while i < n && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
            continue;
        }
        if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < n {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            continue;
        }
        // Raw (byte) strings: r"..", r#".."#, br#".."#.
        if !after_ident && (c[i] == 'r' || (c[i] == 'b' && next == Some('r'))) {
            let mut j = if c[i] == 'b' { i + 2 } else { i + 1 };
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) == Some(&'"') {
                let mut k = j + 1;
                loop {
                    if k >= n {
                        break;
                    }
                    if c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#')) {
                        k += 1 + hashes;
                        break;
                    }
                    k += 1;
                }
                for &ch in &c[i..k.min(n)] {
                    blank(&mut out, ch);
                }
                i = k;
                continue;
            }
        }
        if c[i] == '"' {
            let mut k = i + 1;
            while k < n && c[k] != '"' {
                k += if c[k] == '\\' { 2 } else { 1 };
            }
            for &ch in &c[i..(k + 1).min(n)] {
                blank(&mut out, ch);
            }
            i = k + 1;
            continue;
        }
        if c[i] == '\'' {
            let end = if next == Some('\\') {
                // '\n', '\'', '\u{..}': up to the next quote after the escaped character.
                (i + 3..n).find(|&k| c[k] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                for &ch in &c[i..=end] {
                    blank(&mut out, ch);
                }
                i = end + 1;
                continue;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// Removes test modules from blanked code: after a line `#[cfg(test)]` at column 0, a
/// `mod x { .. }` (any visibility) is blanked up to its matching brace (safe to count, as
/// comments and literals are gone), and a `mod x;` is blanked and its name returned, its file
/// being test code.
fn drop_test_modules(code: &str) -> (String, BTreeSet<String>) {
    let mut lines: Vec<String> = code.lines().map(String::from).collect();
    let mut test_children = BTreeSet::new();
    let mut l = 0;
    while l < lines.len() {
        if lines[l].trim_end() != "#[cfg(test)]" {
            l += 1;
            continue;
        }
        let Some(m) = (l + 1..lines.len()).find(|&k| !lines[k].trim().is_empty()) else {
            break;
        };
        let decl = lines[m].clone();
        let words: Vec<&str> = decl
            .split(|ch: char| ch.is_whitespace() || ch == ';' || ch == '{')
            .filter(|w| !w.is_empty())
            .collect();
        let Some(at) = words.iter().position(|w| *w == "mod") else {
            l += 1;
            continue;
        };
        if !words[..at].iter().all(|w| w.starts_with("pub")) {
            l += 1;
            continue;
        }
        if decl.trim_end().ends_with(';') {
            if let Some(name) = words.get(at + 1) {
                test_children.insert(name.to_string());
            }
            lines[l].clear();
            lines[m].clear();
            l = m + 1;
            continue;
        }
        // Blank from the attribute to the brace closing the module.
        let mut depth = 0usize;
        let mut opened = false;
        let mut k = l;
        'block: while k < lines.len() {
            let mut kept = String::new();
            let line = std::mem::take(&mut lines[k]);
            for (pos, ch) in line.char_indices() {
                if ch == '{' && (opened || k >= m) {
                    opened = true;
                    depth += 1;
                } else if opened && ch == '}' {
                    depth -= 1;
                    if depth == 0 {
                        kept.push_str(&" ".repeat(pos + 1));
                        kept.push_str(&line[pos + 1..]);
                        lines[k] = kept;
                        break 'block;
                    }
                }
            }
            k += 1;
        }
        l = k + 1;
    }
    (lines.join("\n"), test_children)
}

/// Whether `needle` (a path such as `crate::cli`) occurs in `code` as whole words: not in the
/// middle of an identifier (`my_crate::cli`) nor continuing into one (`crate::client`).
fn mentions(code: &str, needle: &str) -> bool {
    let is_word = |ch: char| ch.is_alphanumeric() || ch == '_';
    code.match_indices(needle).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + needle.len()..].chars().next();
        !before.is_some_and(is_word) && (needle.ends_with("::") || !after.is_some_and(is_word))
    })
}

/// The crate names of the `[dependencies]` tables of a manifest (`[dependencies]`,
/// `[target.'..'.dependencies]`, `[dependencies.x]`), renamed ones under their real `package`
/// name too. Dev- and build-dependencies are not counted.
fn normal_dependencies(manifest: &str) -> Vec<String> {
    enum Table {
        /// `[dependencies]`: every key is a crate.
        Crates,
        /// `[dependencies.x]`: the keys are x's fields, of which `package` renames it.
        OneCrate,
        Other,
    }
    let mut deps = Vec::new();
    let mut table = Table::Other;
    for raw in manifest.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if let Some(header) = line.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let header = header.trim();
            table = if header == "dependencies" || header.ends_with(".dependencies") {
                Table::Crates
            } else if let Some((_, name)) = header
                .split_once("dependencies.")
                .filter(|(before, _)| before.is_empty() || before.ends_with('.'))
            {
                deps.push(name.trim().to_string());
                Table::OneCrate
            } else {
                Table::Other
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches('"');
        let package = |value: &str| value.split('"').nth(1).map(String::from);
        match table {
            Table::Crates => {
                deps.push(key.to_string());
                if let Some(rest) = value.split("package").nth(1) {
                    deps.extend(package(rest));
                }
            }
            Table::OneCrate if key == "package" => deps.extend(package(value)),
            Table::OneCrate | Table::Other => {}
        }
    }
    deps
}

fn read(rel: &str) -> String {
    let path = Path::new(ROOT).join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every `.rs` file under `dir` (relative to the workspace root), as (path from the workspace
/// root with `/` separators, text), sorted.
fn rust_files(dir: &str) -> Vec<(String, String)> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<(String, String)>) {
        let entries = fs::read_dir(root.join(rel))
            .unwrap_or_else(|e| panic!("read {}: {e}", root.join(rel).display()));
        for entry in entries {
            let entry = entry.expect("directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = format!("{rel}/{name}");
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                walk(root, &child, out);
            } else if name.ends_with(".rs") {
                let text = fs::read_to_string(root.join(&child)).expect("read source");
                out.push((child, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new(ROOT), dir, &mut out);
    out.sort();
    out
}
