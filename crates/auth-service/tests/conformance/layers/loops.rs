//! No import loop inside `src` (issue 15): no file imports, directly or through others, a file
//! that imports it back. Each loop is listed as `a.rs:3 -> b.rs:7 -> a.rs`: line 3 of `a.rs`
//! imports from `b.rs`, whose line 7 imports from `a.rs`.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;

use super::imports::{graph, Graph};

/// Every `.rs` file under `src`: its path there (with `/`) and its text, in path order.
fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut pending = vec![src.clone()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path.strip_prefix(&src).unwrap();
            let name: Vec<String> = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            files.push((name.join("/"), std::fs::read_to_string(&path).unwrap()));
        }
    }
    files.sort();
    files
}

/// The loops of `graph`: for every import that lies on a loop, the shortest loop through it,
/// each loop once.
fn loops(graph: &Graph) -> Vec<String> {
    let mut next = vec![Vec::new(); graph.files.len()];
    for &(from, to) in graph.edges.keys() {
        next[from].push(to);
    }
    let mut found = BTreeSet::new();
    for component in tangles(&next) {
        for &from in &component {
            for &to in next[from].iter().filter(|to| component.contains(to)) {
                let mut cycle = shortest_path(&next, &component, to, from);
                cycle.insert(0, from);
                cycle.pop();
                let start = (0..cycle.len()).min_by_key(|&at| cycle[at]).unwrap_or(0);
                cycle.rotate_left(start);
                found.insert(cycle);
            }
        }
    }
    found.iter().map(|cycle| show(graph, cycle)).collect()
}

/// `a.rs:3 -> b.rs:7,9 -> a.rs`, each file with the lines that import the next one.
fn show(graph: &Graph, cycle: &[usize]) -> String {
    let mut text = String::new();
    for (at, &from) in cycle.iter().enumerate() {
        let to = cycle[(at + 1) % cycle.len()];
        let lines: Vec<String> = graph.edges[&(from, to)]
            .iter()
            .map(usize::to_string)
            .collect();
        text += &format!("{}:{} -> ", graph.files[from], lines.join(","));
    }
    text + &graph.files[cycle[0]]
}

/// The files from `from` to `to` (both included) along the fewest imports inside `within`.
fn shortest_path(next: &[Vec<usize>], within: &[usize], from: usize, to: usize) -> Vec<usize> {
    let mut came_from = vec![None; next.len()];
    let mut queue = VecDeque::from([from]);
    while let Some(file) = queue.pop_front() {
        if file == to {
            break;
        }
        for &step in &next[file] {
            if step != from && came_from[step].is_none() && within.contains(&step) {
                came_from[step] = Some(file);
                queue.push_back(step);
            }
        }
    }
    let mut path = vec![to];
    while let Some(previous) = came_from[*path.last().unwrap_or(&from)] {
        path.push(previous);
    }
    path.reverse();
    path
}

/// The strongly connected components of more than one file (Tarjan's algorithm).
fn tangles(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut tarjan = Tarjan {
        next,
        index: vec![None; next.len()],
        low: vec![0; next.len()],
        stack: Vec::new(),
        on_stack: vec![false; next.len()],
        counter: 0,
        components: Vec::new(),
    };
    for file in 0..next.len() {
        if tarjan.index[file].is_none() {
            tarjan.connect(file);
        }
    }
    tarjan
        .components
        .into_iter()
        .filter(|component| component.len() > 1)
        .collect()
}

struct Tarjan<'a> {
    next: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    stack: Vec<usize>,
    on_stack: Vec<bool>,
    counter: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn connect(&mut self, file: usize) {
        self.index[file] = Some(self.counter);
        self.low[file] = self.counter;
        self.counter += 1;
        self.stack.push(file);
        self.on_stack[file] = true;
        let next = self.next;
        for &step in &next[file] {
            match self.index[step] {
                None => {
                    self.connect(step);
                    self.low[file] = self.low[file].min(self.low[step]);
                }
                Some(index) if self.on_stack[step] => self.low[file] = self.low[file].min(index),
                Some(_) => {}
            }
        }
        if Some(self.low[file]) == self.index[file] {
            let mut component = Vec::new();
            while let Some(member) = self.stack.pop() {
                self.on_stack[member] = false;
                component.push(member);
                if member == file {
                    break;
                }
            }
            component.sort_unstable();
            self.components.push(component);
        }
    }
}

fn loops_of(files: &[(&str, &str)]) -> Vec<String> {
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|(path, text)| ((*path).to_owned(), (*text).to_owned()))
        .collect();
    loops(&graph(&sources, "auth_service").unwrap())
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let graph = graph(&sources(), &env!("CARGO_PKG_NAME").replace('-', "_")).unwrap();

    let found = loops(&graph);

    assert!(
        found.is_empty(),
        "{} import loops inside src (each file:line imports from the next file):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_loop_check_names_every_import_of_a_loop() {
    let found = loops_of(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        ("a.rs", "use crate::b::Thing;\n\npub struct A(Thing);\n"),
        (
            "b.rs",
            "pub struct Thing;\n\npub fn make() -> super::a::A {\n    \
             let name = format!(\"{}\", crate::a::NAME);\n    super::a::A(Thing)\n}\n",
        ),
        ("c.rs", "use crate::a::A;\n"),
    ]);

    assert_eq!(found, ["a.rs:1 -> b.rs:3,4,5 -> a.rs"]);
}

#[test]
fn the_loop_check_counts_a_facade_that_re_exports_its_child() {
    let found = loops_of(&[
        ("lib.rs", "pub mod services;\n"),
        (
            "services/mod.rs",
            "mod accounts;\nmod context;\npub use accounts::Accounts;\npub use context::*;\n",
        ),
        ("services/context.rs", "pub struct Context;\n"),
        (
            "services/accounts.rs",
            "use super::Context;\n\npub struct Accounts(Context);\n",
        ),
    ]);

    assert_eq!(
        found,
        ["services/mod.rs:3 -> services/accounts.rs:1 -> services/mod.rs"]
    );
}

#[test]
fn the_loop_check_passes_a_tree_that_only_imports_downwards() {
    let found = loops_of(&[
        (
            "lib.rs",
            "pub mod state;\npub mod store;\npub use state::State;\n",
        ),
        ("main.rs", "use auth_service::State;\n\nfn main() {}\n"),
        (
            "state.rs",
            "use crate::store::{self, records::Row};\n\npub struct State(store::Store, Row);\n",
        ),
        (
            "store/mod.rs",
            "pub mod records;\npub struct Store;\n\n#[cfg(test)]\nmod tests {\n    \
             use super::*;\n    use crate::store::records::Row;\n}\n",
        ),
        (
            "store/records.rs",
            "pub struct Row;\n\nimpl Row {\n    fn new() -> Self {\n        \
             let records = 1;\n        Self::from(records)\n    }\n}\n",
        ),
    ]);

    assert!(found.is_empty(), "{found:#?}");
}
