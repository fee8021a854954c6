//! Who imports whom, file by file: every path a source file names (in `use` trees, in code, in
//! macro and attribute tokens) resolved to the file of the module it reaches. `loops.rs` looks
//! for cycles in the graph this builds.

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::{self, Visit};

/// The module a file under `src` holds: `a/b.rs` and `a/b/mod.rs` are `a::b`, `lib.rs` and
/// `main.rs` the crate root.
pub fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The import graph of a set of files under `src`: `edges[(from, to)]` holds the lines of
/// `files[from]` that name something of `files[to]`. Self-edges are left out.
pub struct Graph {
    pub files: Vec<String>,
    pub edges: BTreeMap<(usize, usize), BTreeSet<usize>>,
}

/// Builds the graph of `sources` (path under `src` with `/`, text). `crate_name` is how
/// `main.rs` names the library. A file that does not parse is an error naming it.
pub fn graph(sources: &[(String, String)], crate_name: &str) -> Result<Graph, String> {
    let files: Vec<String> = sources.iter().map(|(path, _)| path.clone()).collect();
    // The crate root belongs to `lib.rs` when there is one: `main.rs` is a crate of its own
    // that reaches the library by name, and nothing can import it.
    let mut modules = BTreeMap::new();
    for (index, file) in files.iter().enumerate() {
        let module = module_of(file);
        if file != "main.rs" || !modules.contains_key(&module) {
            modules.insert(module, index);
        }
    }
    let mut edges: BTreeMap<(usize, usize), BTreeSet<usize>> = BTreeMap::new();
    for (from, (file, text)) in sources.iter().enumerate() {
        let syntax = syn::parse_file(text).map_err(|error| {
            let at = error.span().start();
            format!("{file}:{}:{}: {error}", at.line, at.column)
        })?;
        let mut paths = Paths {
            modules: &modules,
            crate_name,
            here: module_of(file),
            found: Vec::new(),
        };
        paths.visit_file(&syntax);
        for (path, line) in paths.found {
            let to = file_of(&modules, &path);
            if to != from {
                edges.entry((from, to)).or_default().insert(line);
            }
        }
    }
    Ok(Graph { files, edges })
}

/// The file of the longest prefix of `path` that is a module with a file of its own (at worst
/// the crate root).
fn file_of(modules: &BTreeMap<Vec<String>, usize>, path: &[String]) -> usize {
    (0..=path.len())
        .rev()
        .find_map(|len| modules.get(&path[..len]).copied())
        .unwrap_or_default()
}

/// Collects the crate-absolute paths one file names, each with its line.
struct Paths<'a> {
    modules: &'a BTreeMap<Vec<String>, usize>,
    crate_name: &'a str,
    /// The module being read: the file's own, then any inline `mod` it is inside.
    here: Vec<String>,
    found: Vec<(Vec<String>, usize)>,
}

impl Paths<'_> {
    /// Records `segments` (as written at `line`) when they lead into this crate: `crate::`,
    /// `self::`, `super::`, or a relative path whose first segment names a child module.
    /// Anything else names an outside crate, a prelude item or something already imported.
    fn record(&mut self, segments: &[String], line: usize) {
        let Some(first) = segments.first() else {
            return;
        };
        let absolute = match first.as_str() {
            "crate" | "$crate" => segments[1..].to_vec(),
            name if name == self.crate_name => segments[1..].to_vec(),
            "self" => [&self.here[..], &segments[1..]].concat(),
            "super" => {
                let ups = segments.iter().take_while(|part| *part == "super").count();
                let Some(kept) = self.here.len().checked_sub(ups) else {
                    return;
                };
                [&self.here[..kept], &segments[ups..]].concat()
            }
            _ => {
                let child = [&self.here[..], &segments[..1]].concat();
                if !self.modules.contains_key(&child) {
                    return;
                }
                [&self.here[..], segments].concat()
            }
        };
        self.found.push((absolute, line));
    }

    /// Walks a `use` tree, recording each leaf (a name, a rename or a glob) with its line.
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => self.use_leaf(prefix, &name.ident),
            syn::UseTree::Rename(rename) => self.use_leaf(prefix, &rename.ident),
            syn::UseTree::Glob(glob) => {
                let segments = prefix.clone();
                self.record(&segments, glob.star_token.span.start().line);
            }
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut segments = prefix.to_vec();
        if ident != "self" || segments.is_empty() {
            segments.push(ident.to_string());
        }
        self.record(&segments, ident.span().start().line);
    }

    /// Finds `a::b::c` runs in unparsed tokens (macro arguments, attribute arguments).
    fn tokens(&mut self, tokens: TokenStream) {
        let mut run: Vec<String> = Vec::new();
        let mut line = 0;
        let mut dollar = false;
        let mut colons = 0;
        for token in tokens {
            match token {
                TokenTree::Ident(ident) => {
                    if run.is_empty() || colons == 2 {
                        if run.is_empty() {
                            line = ident.span().start().line;
                        }
                        let name = ident.to_string();
                        run.push(if dollar { format!("${name}") } else { name });
                    } else {
                        self.token_run(&run, line);
                        run = vec![ident.to_string()];
                        line = ident.span().start().line;
                    }
                    colons = 0;
                    dollar = false;
                }
                TokenTree::Punct(punct) if punct.as_char() == ':' => {
                    colons = if colons == 0 && punct.spacing() == Spacing::Joint {
                        1
                    } else if colons == 1 {
                        2
                    } else {
                        self.token_run(&run, line);
                        run.clear();
                        0
                    };
                }
                other => {
                    self.token_run(&run, line);
                    run.clear();
                    colons = 0;
                    dollar = matches!(&other, TokenTree::Punct(punct) if punct.as_char() == '$');
                    if let TokenTree::Group(group) = other {
                        self.tokens(group.stream());
                    }
                }
            }
        }
        self.token_run(&run, line);
    }

    fn token_run(&mut self, run: &[String], line: usize) {
        if run.len() > 1 {
            self.record(run, line);
        }
    }
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if item.leading_colon.is_none() {
            self.use_tree(&mut Vec::new(), &item.tree);
        }
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        for attribute in &item.attrs {
            self.visit_attribute(attribute);
        }
        if let Some((_, items)) = &item.content {
            self.here.push(item.ident.to_string());
            for item in items {
                self.visit_item(item);
            }
            self.here.pop();
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        // One segment is a local name (a variable may share a child module's name); a path
        // into a module has at least two.
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            let segments: Vec<String> = path
                .segments
                .iter()
                .map(|segment| segment.ident.to_string())
                .collect();
            self.record(&segments, path.segments[0].ident.span().start().line);
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        visit::visit_macro(self, mac);
        self.tokens(mac.tokens.clone());
    }

    fn visit_meta_list(&mut self, list: &'ast syn::MetaList) {
        visit::visit_meta_list(self, list);
        self.tokens(list.tokens.clone());
    }
}
