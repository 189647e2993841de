//! The crate reads bottom-up (`src/lib.rs` lists the layers): every module of `src/` uses only
//! modules of its own layer or below, and no two modules of one layer use each other, directly
//! or round a longer cycle. A use is a `crate::` or `super::` path in the code (a use line or
//! an inline path; comments and unit tests left out), taken to the module it names. A new
//! top-level module fails here until `LAYERS` places it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use Layer::*;

/// The layers, lowest first: a module may use modules of its own layer and of those before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Foundations,
    Ledger,
    State,
    Features,
    Application,
}

/// Every top-level module of `src/`, with its layer. The feature files placed in `State`
/// define what the application state holds, so they sit below their own feature and may use
/// only the layers below the state.
const LAYERS: &[(&str, Layer)] = &[
    ("background", Foundations),
    ("config", Foundations),
    ("crypto", Foundations),
    ("db", Foundations),
    ("domain", Foundations),
    ("http", Foundations),
    ("secrets", Foundations),
    ("vietnam_time", Foundations),
    ("ledger", Ledger),
    ("outbox", Ledger),
    ("state", State),
    ("auth::login_limits", State),
    ("auth::password", State),
    ("auth::settings", State),
    ("auth::sms", State),
    ("dossiers::settings", State),
    ("ops::http_metrics", State),
    ("payments::provider", State),
    ("payments::sandbox", State),
    ("payments::settings", State),
    ("payments::vnpay", State),
    ("receipts::jcs", State),
    ("receipts::signing", State),
    ("wallet::identity", State),
    ("wallet::settings", State),
    ("accounts", Features),
    ("auth", Features),
    ("bills", Features),
    ("calendar", Features),
    ("callbacks", Features),
    ("console", Features),
    ("counters", Features),
    ("dossiers", Features),
    ("idempotency", Features),
    ("merchants", Features),
    ("ops", Features),
    ("payments", Features),
    ("procedures", Features),
    ("receipts", Features),
    ("scorecards", Features),
    ("units", Features),
    ("wallet", Features),
    ("openapi", Application),
    ("router", Application),
    ("demo", Application),
    ("server", Application),
    ("cli", Application),
];

struct SourceFile {
    /// `["auth", "settings"]` for `src/auth/settings.rs`, `["auth"]` for `src/auth/mod.rs`.
    module: Vec<String>,
    path: String,
    code: String,
}

#[test]
fn modules_use_only_their_own_layer_and_below_and_no_cycles() {
    let mut files = Vec::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    read_sources(&src, &[], &mut files);
    let mut failures = unplaced_modules(&files);
    // One example use per pair of modules of one layer, for the cycle check.
    let mut same_layer: BTreeMap<(&str, &str), String> = BTreeMap::new();
    for file in &files {
        let Some((from, from_layer)) = placed(&file.module) else {
            continue; // `unplaced_modules` reports it
        };
        for path in used_paths(file) {
            let Some((to, to_layer)) = placed(&path) else {
                continue;
            };
            let used = format!("{} uses {}", file.path, path.join("::"));
            if to_layer > from_layer {
                let rule = format!("`{from}` ({from_layer:?}) may not use `{to}` ({to_layer:?})");
                failures.push(format!("{used}: {rule}"));
            } else if to_layer == from_layer && to != from {
                same_layer.entry((from, to)).or_insert(used);
            }
        }
    }
    for (from, to) in cyclic(&same_layer) {
        let used = &same_layer[&(from, to)];
        failures.push(format!(
            "`{from}` and `{to}` use each other round a cycle: {used}"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Inside a folder, its files use each other one way only: two siblings that use each other
/// (directly or round a longer cycle) are one knot that no layer shows. A folder's `mod.rs`
/// is the exception Rust makes: it is its children's parent, and they may use it.
#[test]
fn the_files_of_a_folder_use_each_other_without_cycles() {
    let mut files = Vec::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    read_sources(&src, &[], &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut sibling_uses: Vec<(String, String, String)> = Vec::new();
    for file in files.iter().filter(|f| f.module.len() >= 2) {
        let depth = file.module.len();
        for path in used_paths(file) {
            let sibling = path.get(..depth).map(<[String]>::to_vec);
            let Some(sibling) = sibling.filter(|s| modules.contains(s)) else {
                continue; // an item of the folder's mod.rs, or of a module elsewhere
            };
            if sibling[..depth - 1] == file.module[..depth - 1] && sibling != file.module {
                let used = format!("{} uses {}", file.path, path.join("::"));
                sibling_uses.push((file.module.join("::"), sibling.join("::"), used));
            }
        }
    }
    let mut uses: BTreeMap<(&str, &str), String> = BTreeMap::new();
    for (from, to, used) in &sibling_uses {
        uses.entry((from, to)).or_insert_with(|| used.clone());
    }
    let failures: Vec<String> = cyclic(&uses)
        .into_iter()
        .map(|(from, to)| {
            format!(
                "`{from}` and `{to}` use each other round a cycle: {}",
                uses[&(from, to)]
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The top-level modules missing from `LAYERS`, and the entries of `LAYERS` naming no module.
fn unplaced_modules(files: &[SourceFile]) -> Vec<String> {
    let modules: BTreeSet<String> = files.iter().map(|f| f.module.join("::")).collect();
    let mut failures = Vec::new();
    for file in files.iter().filter(|f| f.module.len() == 1) {
        let module = file.module[0].as_str();
        if !LAYERS.iter().any(|(name, _)| *name == module) {
            failures.push(format!(
                "{}: `{module}` is in no layer of LAYERS",
                file.path
            ));
        }
    }
    for (name, _) in LAYERS.iter().filter(|(name, _)| !modules.contains(*name)) {
        failures.push(format!("LAYERS names `{name}`, which is no module of src/"));
    }
    failures
}

/// The entry of `LAYERS` that `path` falls in: the longest one that begins it.
fn placed(path: &[String]) -> Option<(&'static str, Layer)> {
    LAYERS
        .iter()
        .filter(|(name, _)| path.starts_with(&segments(name)))
        .max_by_key(|(name, _)| name.len())
        .copied()
}

fn segments(name: &str) -> Vec<String> {
    name.split("::").map(str::to_owned).collect()
}

/// Every `.rs` file under `dir`, the folder of `module`, but the crate roots.
fn read_sources(dir: &Path, module: &[String], files: &mut Vec<SourceFile>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|entry| entry.expect("src/ is readable").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut inner = module.to_vec();
        if path.is_dir() {
            inner.push(name);
            read_sources(&path, &inner, files);
            continue;
        }
        let crate_root = module.is_empty() && (name == "lib" || name == "main");
        if path.extension().is_none_or(|e| e != "rs") || crate_root {
            continue;
        }
        if name != "mod" {
            inner.push(name);
        }
        let text = std::fs::read_to_string(&path).expect("sources are UTF-8");
        files.push(SourceFile {
            module: inner,
            path: shown(&path),
            code: code_of(&text),
        });
    }
}

/// `path` as the messages show it: from the repository's root.
fn shown(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative.display().to_string()
}

/// The text without its comments, and without the unit tests at its end (in whose `mod tests`
/// `super::` means the file itself).
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        if line.trim() == "#[cfg(test)]" {
            break;
        }
        let line = match line.find("//") {
            // `//` after a quote may be inside a string ("http://…"): the line is kept whole.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// The absolute module paths the file's code names through `crate::` and `super::`.
fn used_paths(file: &SourceFile) -> Vec<Vec<String>> {
    let root: &[String] = &[];
    let parent = &file.module[..file.module.len() - 1];
    let mut used = Vec::new();
    for (keyword, base) in [("crate::", root), ("super::", parent)] {
        for (at, _) in file.code.match_indices(keyword) {
            let preceded_by = file.code[..at].chars().next_back();
            if preceded_by.is_some_and(|c| is_ident_char(c) || c == ':') {
                continue; // `my_crate::`, or the second `super` of `super::super::`
            }
            for relative in paths_after(&file.code[at + keyword.len()..]) {
                let mut path = base.to_vec();
                for segment in relative {
                    if segment == "super" {
                        path.pop();
                    } else {
                        path.push(segment);
                    }
                }
                used.push(path);
            }
        }
    }
    used
}

/// The paths `text` begins with: `a::b::C`, or a group such as `{a::B, c::{self, D}}`.
fn paths_after(text: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = text;
    loop {
        let ident: String = rest.chars().take_while(|c| is_ident_char(*c)).collect();
        if ident.is_empty() {
            break;
        }
        rest = &rest[ident.len()..];
        prefix.push(ident);
        match rest.strip_prefix("::") {
            Some(after) => rest = after,
            None => return vec![prefix],
        }
    }
    let Some(group) = rest.strip_prefix('{') else {
        return vec![prefix];
    };
    let mut paths = Vec::new();
    for item in group_items(group) {
        for path in paths_after(item.trim_start()) {
            paths.push([prefix.clone(), path].concat());
        }
    }
    paths
}

/// The comma-separated items of a group, `group` being the text after its `{`.
fn group_items(group: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..at]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The uses on (or between) cycles: a use of a module that uses nothing of its layer, or by a
/// module nothing of its layer uses, is on no cycle; what is left once none such remains is.
fn cyclic<'a>(uses: &BTreeMap<(&'a str, &'a str), String>) -> BTreeSet<(&'a str, &'a str)> {
    let mut left: BTreeSet<(&str, &str)> = uses.keys().copied().collect();
    loop {
        let users: BTreeSet<&str> = left.iter().map(|(from, _)| *from).collect();
        let used: BTreeSet<&str> = left.iter().map(|(_, to)| *to).collect();
        let before = left.len();
        left.retain(|(from, to)| users.contains(to) && used.contains(from));
        if left.len() == before {
            return left;
        }
    }
}
