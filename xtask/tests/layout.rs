//! xtask's layout: one module per command, the helpers apart in support/, and no import cycle
//! between the modules (a command's module may use the helpers and another command's, never
//! in a circle: a newcomer reads them one at a time).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use regex::Regex;

/// The module a source file belongs to: its folder or file under src/ (under src/support/, the
/// helper's own).
fn module_of(relative: &Path) -> String {
    let parts: Vec<String> =
        relative.iter().map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned()).collect();
    if parts[0] == "support" && parts.len() > 1 { parts[1].clone() } else { parts[0].clone() }
}

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// Module → the modules it names through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let path = Regex::new(r"crate::([a-z_]+)").unwrap();
    let group = Regex::new(r"(?s)use crate::\{(.*?)\};").unwrap();
    let name = Regex::new(r"(?:^|[,{\s])([a-z_]+)(?:::|\s*[,}]|\s*$)").unwrap();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        if relative == Path::new("main.rs") || relative == Path::new("support/mod.rs") {
            continue;
        }
        let module = module_of(relative);
        let text = std::fs::read_to_string(&file).unwrap();
        let mut named: BTreeSet<String> = path.captures_iter(&text).map(|found| found[1].to_owned()).collect();
        for block in group.captures_iter(&text) {
            named.extend(name.captures_iter(&block[1]).map(|found| found[1].to_owned()));
        }
        named.retain(|other| *other != module && other != "self");
        edges.entry(module).or_default().extend(named);
    }
    edges
}

/// A circle of imports, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|seen| seen == module) {
            let mut circle = path[at..].to_vec();
            circle.push(module.to_owned());
            return Some(circle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in edges.get(module).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|module| visit(module, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_of_xtask_imports_itself_round_a_circle() {
    let edges = imports();
    assert!(edges.contains_key("verify") && edges["verify"].contains("expect"), "the imports were read: {edges:?}");
    if let Some(circle) = circle(&edges) {
        panic!("an import cycle: {}", circle.join(" → "));
    }
}

#[test]
fn a_circle_is_found() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert_eq!(circle(&edges), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}
