//! No two modules of the crate import each other, directly or around a circle.
//!
//! Reads every `src/**/*.rs` (except the binary's `main.rs`), parses it with `syn`, and
//! collects an edge from each file's module to the module each `crate::…`, `super::…`,
//! `self::…` or child-module path names (in `use` items, types and expressions). A path
//! through a parent's `pub use` re-export is followed to the module that defines the
//! item. A module's paths to its own descendants are not edges: a parent declares,
//! wires and re-exports its children, and a child may use what its parent defines. Any
//! other circle fails the test, which prints it edge by edge with where each edge is.
//!
//! Run it alone: `cargo test --test import_cycles`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Circles tolerated while a change removes them (none now): a circle whose modules all
/// lie in one entry passes, and an entry whose circle is gone fails as "no longer needed".
const ALLOWED: &[(&[&str], &str)] = &[];

/// The same, between top-level modules (directories): `index/` must sit below `policy/`.
const ALLOWED_TOP: &[(&[&str], &str)] = &[];

/// Where an edge comes from, for the failure message.
type Why = String;

#[derive(Default)]
struct Crate {
    /// Module path (`a::b`, "" for the crate root) → its file.
    files: BTreeMap<String, PathBuf>,
    /// (module, name) → absolute path of what `pub use` re-exports under that name.
    reexports: BTreeMap<(String, String), Vec<String>>,
    /// Paths used: (the file's module, absolute path, why, whether only tests use it).
    uses: Vec<(String, Vec<String>, Why, bool)>,
    /// File modules declared `#[cfg(test)]`.
    test_files: BTreeSet<String>,
}

fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn split(module: &str) -> Vec<String> {
    if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_string).collect()
    }
}

/// Collects the paths of one file.
struct Collector<'a> {
    krate: &'a mut Crate,
    /// The file's module.
    file_module: String,
    /// Current module inside the file (inline `mod x { … }` pushes onto it).
    scope: Vec<String>,
    /// Child modules declared in the current scope (`mod x;` or inline), per scope.
    children: Vec<BTreeSet<String>>,
    file: String,
    /// Inline `#[cfg(test)]` modules the visitor is inside of.
    in_test: usize,
}

impl Collector<'_> {
    /// The absolute path a path means in the current scope, if it names crate items.
    fn absolute(&self, segs: &[String]) -> Option<Vec<String>> {
        let first = segs.first()?;
        match first.as_str() {
            "crate" => Some(segs[1..].to_vec()),
            "self" => Some(self.scope.iter().chain(&segs[1..]).cloned().collect()),
            "super" => {
                let mut base = self.scope.clone();
                let mut rest = segs;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                Some(base)
            }
            name if self.children.last().is_some_and(|c| c.contains(name))
                || self.krate.files.contains_key(
                    &self
                        .scope
                        .iter()
                        .chain(std::iter::once(&name.to_string()))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("::"),
                ) =>
            {
                Some(self.scope.iter().chain(segs).cloned().collect())
            }
            _ => None,
        }
    }

    fn record(&mut self, segs: Vec<String>, reexport_as: Option<String>) {
        let Some(abs) = self.absolute(&segs) else {
            return;
        };
        if let Some(name) = reexport_as {
            // Only a re-export at the file's top level is reachable as `module::name`.
            if self.scope.join("::") == self.file_module {
                self.krate
                    .reexports
                    .insert((self.file_module.clone(), name), abs.clone());
            }
        }
        let why = format!("{}: {}", self.file, segs.join("::"));
        let test = self.in_test > 0;
        self.krate
            .uses
            .push((self.file_module.clone(), abs, why, test));
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, public: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, public);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                let mut segs = prefix.clone();
                if name != "self" {
                    segs.push(name.clone());
                }
                let exported = (public && name != "self").then_some(name);
                self.record(segs, exported);
            }
            syn::UseTree::Rename(r) => {
                let mut segs = prefix.clone();
                segs.push(r.ident.to_string());
                self.record(segs, public.then(|| r.rename.to_string()));
            }
            syn::UseTree::Glob(_) => self.record(prefix.clone(), None),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t, public);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let public = !matches!(u.vis, syn::Visibility::Inherited);
        self.use_tree(&mut Vec::new(), &u.tree, public);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let name = m.ident.to_string();
        if let Some(c) = self.children.last_mut() {
            c.insert(name.clone());
        }
        let test = m.attrs.iter().any(|a| {
            a.path().is_ident("cfg")
                && a.parse_args::<syn::Path>()
                    .is_ok_and(|p| p.is_ident("test"))
        });
        if m.content.is_none() && test {
            let mut file = self.scope.clone();
            file.push(name.clone());
            self.krate.test_files.insert(file.join("::"));
        }
        if m.content.is_some() {
            self.in_test += usize::from(test);
            self.scope.push(name);
            self.children.push(BTreeSet::new());
            syn::visit::visit_item_mod(self, m);
            self.children.pop();
            self.scope.pop();
            self.in_test -= usize::from(test);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if segs.len() > 1 {
            self.record(segs, None);
        }
        syn::visit::visit_path(self, p);
    }
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut files = Vec::new();
        rs_files(src, &mut files);
        files.retain(|f| f != &src.join("main.rs"));
        let mut krate = Crate::default();
        for f in &files {
            krate.files.insert(module_of(src, f), f.clone());
        }
        for f in &files {
            let text = std::fs::read_to_string(f).expect("read a source file");
            let ast = syn::parse_file(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", f.display()));
            let module = module_of(src, f);
            let mut c = Collector {
                krate: &mut krate,
                scope: split(&module),
                file_module: module,
                children: vec![BTreeSet::new()],
                in_test: 0,
                file: f
                    .strip_prefix(src.parent().expect("src has a parent"))
                    .expect("under the crate")
                    .display()
                    .to_string(),
            };
            // Child modules declared anywhere at the top level count from the start.
            for item in &ast.items {
                if let syn::Item::Mod(m) = item {
                    c.children[0].insert(m.ident.to_string());
                }
            }
            c.visit_file(&ast);
        }
        krate
    }

    /// The module file that defines what `abs` names, following re-exports.
    fn resolve(&self, abs: &[String], depth: usize) -> String {
        let mut n = abs.len();
        while n > 0 && !self.files.contains_key(&abs[..n].join("::")) {
            n -= 1;
        }
        let module = abs[..n].join("::");
        if depth < 8 {
            if let Some(next) = abs.get(n) {
                if let Some(target) = self.reexports.get(&(module.clone(), next.clone())) {
                    let mut target = target.clone();
                    target.extend(abs[n + 1..].iter().cloned());
                    return self.resolve(&target, depth + 1);
                }
            }
        }
        module
    }

    /// from → to → one place that makes the edge.
    /// The edges, with or without those only tests make.
    fn edges(&self, with_tests: bool) -> Edges {
        let mut out: Edges = BTreeMap::new();
        for (from, abs, why, test) in &self.uses {
            let test = *test
                || self
                    .test_files
                    .iter()
                    .any(|t| from == t || from.starts_with(&format!("{t}::")));
            if test && !with_tests {
                continue;
            }
            let to = self.resolve(abs, 0);
            let descendant = from.is_empty() || to.starts_with(&format!("{from}::"));
            if to == *from || descendant {
                continue;
            }
            out.entry(from.clone())
                .or_default()
                .entry(to)
                .or_insert_with(|| why.clone());
        }
        out
    }
}

/// Strongly connected components with more than one module (Tarjan).
fn circles(edges: &Edges) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<String, BTreeMap<String, Why>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flat_map(|m| m.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

/// One circle through `start` inside `scc`, as a list of modules ending at `start`.
fn one_circle(edges: &Edges, scc: &[String], start: &str) -> Vec<String> {
    // Breadth-first from start's successors back to start, within the component.
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.to_string()]);
    while let Some(v) = queue.pop_front() {
        for w in edges.get(&v).into_iter().flat_map(|m| m.keys()) {
            if !scc.contains(w) || prev.contains_key(w) {
                continue;
            }
            prev.insert(w.clone(), v.clone());
            if w == start {
                let mut path = vec![start.to_string()];
                let mut at = v.clone();
                while at != start {
                    path.push(at.clone());
                    at = prev[&at].clone();
                }
                path.push(start.to_string());
                path.reverse();
                return path;
            }
            queue.push_back(w.clone());
        }
    }
    vec![start.to_string()]
}

type Edges = BTreeMap<String, BTreeMap<String, Why>>;

/// The edges between top-level modules (`cluster::leader::x` → `cluster`); the caller
/// leaves out test code, which may use any layer to build its fixtures.
fn top_level(edges: &Edges) -> Edges {
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_string();
    let mut out: Edges = BTreeMap::new();
    for (from, tos) in edges {
        for (to, why) in tos {
            if top(from) != top(to) {
                out.entry(top(from))
                    .or_default()
                    .entry(top(to))
                    .or_insert_with(|| why.clone());
            }
        }
    }
    out
}

/// Every circle not covered by `allowed`, printed edge by edge, and the entries of
/// `allowed` that no circle needs any more.
fn check(edges: &Edges, allowed: &[(&[&str], &str)]) -> (String, Vec<String>) {
    let found = circles(edges);
    let within = |scc: &[String], set: &[&str]| scc.iter().all(|m| set.contains(&m.as_str()));
    let mut report = String::new();
    for scc in found
        .iter()
        .filter(|scc| !allowed.iter().any(|(set, _)| within(scc, set)))
    {
        let path = one_circle(edges, scc, &scc[0]);
        report.push_str(&format!("circle among {}:\n", scc.join(", ")));
        for pair in path.windows(2) {
            report.push_str(&format!(
                "  {} -> {}   ({})\n",
                pair[0], pair[1], edges[&pair[0]][&pair[1]]
            ));
        }
    }
    let stale = allowed
        .iter()
        .filter(|(set, _)| !found.iter().any(|scc| within(scc, set)))
        .map(|(set, why)| format!("{set:?} ({why})"))
        .collect();
    (report, stale)
}

fn crate_edges(with_tests: bool) -> Edges {
    // Another tree can be checked by naming its `src` (e.g. an older commit's).
    let src = std::env::var_os("IMPORT_CYCLES_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let edges = Crate::read(&src).edges(with_tests);
    if std::env::var_os("DUMP_EDGES").is_some() {
        for (f, m) in &edges {
            for (t, w) in m {
                eprintln!("{f} -> {t}   ({w})");
            }
        }
    }
    edges
}

#[test]
fn no_module_imports_another_around_a_circle() {
    let (report, stale) = check(&crate_edges(true), ALLOWED);
    assert!(report.is_empty(), "modules import each other:\n{report}");
    assert!(
        stale.is_empty(),
        "allow-list entries no longer needed (delete them from ALLOWED): {stale:?}"
    );
}

#[test]
fn top_level_modules_form_layers() {
    let (report, stale) = check(&top_level(&crate_edges(false)), ALLOWED_TOP);
    assert!(
        report.is_empty(),
        "top-level modules import each other:\n{report}"
    );
    assert!(
        stale.is_empty(),
        "allow-list entries no longer needed (delete them from ALLOWED_TOP): {stale:?}"
    );
}

/// Cluster mode's seam: what every replica runs never reaches into what only the
/// leader does.
#[test]
fn the_replica_half_does_not_use_the_leader_half() {
    let wrong: Vec<String> = crate_edges(true)
        .iter()
        .filter(|(from, _)| from.starts_with("cluster::replica"))
        .flat_map(|(from, tos)| {
            tos.iter()
                .filter(|(to, _)| to.starts_with("cluster::leader"))
                .map(move |(to, why)| format!("{from} -> {to} ({why})"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The checker sees a circle where there is one: two sibling files, or a circle through
/// a parent's re-export.
#[test]
fn the_checker_finds_a_planted_circle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("m")).expect("mkdir");
    let write = |p: &str, s: &str| std::fs::write(src.join(p), s).expect("write");
    write("lib.rs", "pub mod m;\npub mod z;\n");
    write(
        "m/mod.rs",
        "mod a;\nmod b;\nmod c;\npub use c::Thing;\npub struct Top;\n",
    );
    write("m/a.rs", "use super::b::B;\npub struct A;\n");
    write("m/b.rs", "pub struct B(pub crate::m::Thing);\n");
    write("m/c.rs", "pub struct Thing(super::a::A);\n");
    // A child using its parent, and the parent using its child: not a circle.
    write("z.rs", "pub fn f() -> crate::m::Top { crate::m::Top }\n");
    let krate = Crate::read(&src);
    let edges = krate.edges(true);
    let found = circles(&edges);
    assert_eq!(found, vec![vec!["m::a", "m::b", "m::c"]], "{edges:?}");
}
