//! Rules about the shape of `src/` that have no compiler to keep them: the
//! library's top-level modules import one way (no circle), and files and
//! functions stay small enough to read (see [`MAX_FILE_LINES`],
//! [`MAX_FN_LINES`] and the [`ALLOWED`] exceptions).
//!
//! Read from the source text, not the compiler: a small lexer drops
//! comments, strings and test-only code, then the paths are collected.
//! Not checked: the binary's own modules (`main.rs`, `cmd/`), whose
//! `crate::` is the binary, not the library; and unit tests
//! (`#[cfg(test)]` modules, inline or in their own files), which may reach
//! up to build what they test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A file's path below `src/` as a module path: `web/session/mod.rs` →
/// `["web", "session"]`, `tls.rs` → `["tls"]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The text with comments, string and char literals blanked (lines kept).
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_'))
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                out.push(blank(b[j]));
                j += 1;
            }
            i = j;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = b.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}', '\'') or a lifetime.
            let close = if next == Some('\\') {
                (i + 2..b.len().min(i + 12)).find(|&j| b[j] == '\'' && j > i + 2)
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(j) => {
                    out.push_str("' '");
                    i = j + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The index just past the `}` matching the first `{` at or after `from`.
fn block_end(code: &[char], from: usize) -> usize {
    let mut depth = 0usize;
    let mut i = from;
    while i < code.len() {
        match code[i] {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    code.len()
}

/// `code` without its inline `#[cfg(test)] mod … { … }` blocks, and the
/// names of the `#[cfg(test)] mod name;` files it declares.
fn without_tests(code: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::new();
    let mut test_files = Vec::new();
    let mut i = 0;
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    while i < chars.len() {
        if chars[i..].starts_with(&marker) {
            let rest: String = chars[i + marker.len()..].iter().take(200).collect();
            let item = rest.trim_start();
            let item = item
                .strip_prefix("pub(crate) ")
                .or_else(|| item.strip_prefix("pub "))
                .unwrap_or(item);
            if let Some(m) = item.strip_prefix("mod ") {
                let name: String = m
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let after = m[name.len()..].trim_start();
                if after.starts_with(';') {
                    test_files.push(name);
                } else {
                    let end = block_end(&chars, i);
                    for c in &chars[i..end] {
                        out.push(if *c == '\n' { '\n' } else { ' ' });
                    }
                    i = end;
                    continue;
                }
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    (out, test_files)
}

/// One library file, read.
struct File {
    rel: PathBuf,
    module: Vec<String>,
    /// Code without comments, literals or unit tests.
    code: String,
}

/// The library's files, test-only files left out.
fn library() -> Vec<File> {
    let root = src();
    let mut files: Vec<File> = Vec::new();
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    for path in rust_files(&root) {
        let rel = path.strip_prefix(&root).expect("under src").to_path_buf();
        if rel == Path::new("main.rs") || rel.starts_with("cmd") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file reads");
        let (code, tests) = without_tests(&code_only(&text));
        // A test module `name` of this file is `name.rs` or `name/` beside
        // a `mod.rs`, or in the folder named after this file.
        let dir = if matches!(
            rel.file_name().and_then(|f| f.to_str()),
            Some("mod.rs" | "lib.rs")
        ) {
            rel.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            rel.with_extension("")
        };
        for t in tests {
            test_only.insert(dir.join(format!("{t}.rs")));
            test_only.insert(dir.join(&t));
        }
        files.push(File {
            module: module_path(&rel),
            rel,
            code,
        });
    }
    files.retain(|f| !test_only.iter().any(|t| f.rel.starts_with(t)));
    files
}

fn ident_at(code: &[char], at: usize) -> Option<String> {
    let name: String = code[at.min(code.len())..]
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The names right after a path prefix ending at `at`: `a` in `…::a`, or
/// each first name in `…::{a::b, c}`.
fn names_after(code: &[char], at: usize) -> Vec<String> {
    if code.get(at) == Some(&'{') {
        let end = block_end(code, at);
        let inner: String = code[at + 1..end - 1].iter().collect();
        let mut names = Vec::new();
        let mut depth = 0;
        let mut start = true;
        for (k, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => start = true,
                c if start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                    let name: String = inner[k..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    names.push(name);
                    start = false;
                }
                _ => {}
            }
        }
        names
    } else {
        ident_at(code, at).into_iter().collect()
    }
}

/// The top-level modules a file's paths name (`crate::x…`, or
/// `super::…` that climbs to the crate root), with the file's own left out.
fn uses(file: &File, tops: &BTreeSet<String>) -> BTreeSet<String> {
    let code: Vec<char> = file.code.chars().collect();
    let own = &file.module[0];
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < code.len() {
        let starts = i == 0 || !(code[i - 1].is_alphanumeric() || code[i - 1] == '_');
        let preceded_by_path = i >= 2 && code[i - 2..i] == [':', ':'];
        if starts
            && !preceded_by_path
            && code[i..].starts_with(&['c', 'r', 'a', 't', 'e', ':', ':'])
        {
            let at = i + "crate::".len();
            for name in names_after(&code, at) {
                out.insert(name);
            }
            i = at;
            continue;
        }
        let sup = ['s', 'u', 'p', 'e', 'r', ':', ':'];
        if starts && !preceded_by_path && code[i..].starts_with(&sup) {
            let mut at = i;
            let mut ups = 0;
            while code[at..].starts_with(&sup) {
                ups += 1;
                at += sup.len();
            }
            if ups >= file.module.len() {
                for name in names_after(&code, at) {
                    out.insert(name);
                }
            }
            i = at;
            continue;
        }
        i += 1;
    }
    out.retain(|m| m != own && tops.contains(m));
    out
}

/// Module → the modules it names, with one file that does for each.
type Graph = BTreeMap<String, BTreeMap<String, PathBuf>>;

fn graph(files: &[File]) -> Graph {
    let tops: BTreeSet<String> = files
        .iter()
        .filter(|f| f.rel != Path::new("lib.rs"))
        .map(|f| f.module[0].clone())
        .collect();
    let mut g: Graph = tops.iter().map(|t| (t.clone(), BTreeMap::new())).collect();
    for f in files.iter().filter(|f| f.rel != Path::new("lib.rs")) {
        for used in uses(f, &tops) {
            g.get_mut(&f.module[0])
                .expect("every top is in the graph")
                .entry(used)
                .or_insert_with(|| f.rel.clone());
        }
    }
    g
}

/// A circle through the graph, if there is one: depth-first search that
/// reports the path back to a module still on the stack.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        g: &Graph,
        at: &str,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(at.to_owned(), Mark::Open);
        stack.push(at.to_owned());
        for next in g[at].keys() {
            match marks[next] {
                Mark::Open => {
                    let from = stack
                        .iter()
                        .position(|m| m == next)
                        .expect("open is on the stack");
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(g, next, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(at.to_owned(), Mark::Done);
        None
    }
    let mut marks: BTreeMap<String, Mark> = g.keys().map(|k| (k.clone(), Mark::New)).collect();
    for start in g.keys() {
        if marks[start] == Mark::New
            && let Some(c) = visit(g, start, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// The top-level modules of the library import one way: a lower floor
/// never names a higher one, directly or through others (lib.rs lists the
/// floors).
#[test]
fn no_import_circle_between_top_level_modules() {
    let files = library();
    let g = graph(&files);
    assert!(
        g.len() > 20,
        "the library's modules were found: {:?}",
        g.keys()
    );
    assert!(
        g["web"].contains_key("supervisor") && g["service"].contains_key("settings"),
        "the scan sees known imports: {g:?}"
    );
    if let Some(cycle) = find_cycle(&g) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                format!(
                    "  {} -> {} (e.g. src/{})",
                    w[0],
                    w[1],
                    g[&w[0]][&w[1]].display()
                )
            })
            .collect();
        panic!(
            "an import circle between src's top-level modules:\n{}\nA lower floor must not \
             name a higher one: move the shared piece down, or pass it in.",
            steps.join("\n")
        );
    }
}

/// The floors of lib.rs's map, lowest first: a module may use modules on
/// its own floor or below, never above. Keep in step with lib.rs.
const FLOORS: &[&[&str]] = &[
    &[
        "wire",
        "kind",
        "sync",
        "wake",
        "clock",
        "shutdown",
        "stream",
        "terminal",
        "notify",
        "ratelimit",
        "jsonfile",
        "failpoint",
        "cli",
        "control",
        "audit_read",
    ],
    &[
        "settings", "auth", "conn", "capture", "stats", "store", "users", "tokens", "audit",
        "handoff", "tls", "toxic",
    ],
    &["config", "keyfile", "activation"],
    &["service", "client", "bench", "replay"],
    &["supervisor", "reload"],
    &["web", "server"],
];

/// Every top-level module is on one floor of lib.rs's map, listed there
/// once, and uses nothing on a higher floor.
#[test]
fn modules_keep_to_their_floors_and_the_map_lists_each_once() {
    let files = library();
    let g = graph(&files);
    let floor = |m: &str| FLOORS.iter().position(|f| f.contains(&m));
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs reads");
    let mut wrong = Vec::new();
    for (module, used) in &g {
        let Some(at) = floor(module) else {
            wrong.push(format!(
                "{module} is on no floor (add it to lib.rs's map and FLOORS)"
            ));
            continue;
        };
        let listed = lib.matches(&format!("//! - [`{module}`]")).count()
            + lib.matches(&format!("//! - `{module}` ")).count();
        if listed != 1 {
            wrong.push(format!(
                "lib.rs's map lists {module} {listed} times, not once"
            ));
        }
        for (other, file) in used {
            if floor(other).is_some_and(|o| o > at) {
                wrong.push(format!(
                    "{module} (floor {at}) uses {other}, a higher floor (src/{})",
                    file.display()
                ));
            }
        }
    }
    for m in FLOORS.iter().flat_map(|f| f.iter()) {
        if !g.contains_key(*m) {
            wrong.push(format!("FLOORS names {m}, which is not a module"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The scanner itself: comments, strings and unit tests are not imports;
/// groups and `super::` that climbs to the root are.
#[test]
fn the_scan_reads_paths_not_text() {
    let text = r##"
        // crate::web in a comment
        /* crate::web */
        use crate::{config::Config, kind};
        use super::super::stats;
        let s = "crate::web"; let r = r#"crate::web"#; let c = '"';
        fn f<'a>(x: &'a str) { crate::tls::x(); }
        #[cfg(test)]
        mod tests { use crate::web; }
    "##;
    let (code, _) = without_tests(&code_only(text));
    let tops: BTreeSet<String> = ["web", "config", "kind", "stats", "tls", "wire"]
        .map(String::from)
        .into();
    let file = File {
        rel: PathBuf::from("wire/a/b.rs"),
        module: vec!["wire".into(), "a".into(), "b".into()],
        code,
    };
    let got: Vec<String> = uses(&file, &tops).into_iter().collect();
    assert_eq!(got, ["config", "kind", "tls"]);
    let file = File {
        module: vec!["wire".into(), "a".into()],
        ..file
    };
    let got: Vec<String> = uses(&file, &tops).into_iter().collect();
    assert_eq!(got, ["config", "kind", "stats", "tls"]);
    let mut g: Graph = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.into())
            .or_default()
            .insert(b.into(), PathBuf::new());
        g.entry(b.into()).or_default();
    }
    assert_eq!(find_cycle(&g).expect("a circle"), ["a", "b", "c", "a"]);
    g.get_mut("c").expect("c").remove("a");
    assert_eq!(find_cycle(&g), None);
}

/// No file in `src/` is longer than this many lines (every line counts:
/// code, comments, docs, blank lines and unit tests).
const MAX_FILE_LINES: usize = 600;

/// No function in `src/` is longer than this many lines, counted from the
/// line holding `fn` (its attributes and doc comment are not counted) to
/// the line of its closing brace, inclusive; a nested function counts
/// within its outer one and on its own. Closures are part of the function
/// they are written in. Unit tests count like any other function.
const MAX_FN_LINES: usize = 100;

/// The exceptions, each with its reason: `(path below src/, function name
/// or "" for the whole file, why)`. Keep this short; an entry is a debt.
const ALLOWED: &[(&str, &str, &str)] = &[];

fn allowed(rel: &Path, function: &str) -> bool {
    ALLOWED
        .iter()
        .any(|(path, f, _)| Path::new(path) == rel && *f == function)
}

/// Each function in `code` (comments and literals blanked): its name, the
/// line of its `fn` (1-based) and its length in lines. A declaration
/// without a body (`fn f();` in a trait) is not a function here.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let line_of = |at: usize| chars[..at].iter().filter(|c| **c == '\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 < chars.len() {
        let starts = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if !(starts && chars[i..].starts_with(&['f', 'n']) && chars[i + 2].is_whitespace()) {
            i += 1;
            continue;
        }
        let mut at = i + 2;
        while at < chars.len() && chars[at].is_whitespace() {
            at += 1;
        }
        let Some(name) = ident_at(&chars, at) else {
            i += 2;
            continue;
        };
        // The body's `{`: the first one outside the signature's brackets,
        // unless a `;` ends a declaration first.
        let mut depth = 0i32;
        let mut j = at + name.len();
        let body = loop {
            match chars.get(j) {
                None => break None,
                Some('(' | '<' | '[') => depth += 1,
                Some(')' | ']') => depth -= 1,
                Some('>') if chars[j - 1] != '-' && chars[j - 1] != '=' => depth -= 1,
                Some(';') if depth <= 0 => break None,
                Some('{') if depth <= 0 => break Some(j),
                _ => {}
            }
            j += 1;
        };
        if let Some(open) = body {
            let end = block_end(&chars, open);
            let first = line_of(i);
            out.push((name, first, line_of(end - 1) - first + 1));
        }
        i = at;
    }
    out
}

/// Files stay under [`MAX_FILE_LINES`] and functions under
/// [`MAX_FN_LINES`], the [`ALLOWED`] exceptions aside; an exception that
/// is no longer needed is reported too, so the list only shrinks.
#[test]
fn files_and_functions_stay_small() {
    let root = src();
    let mut over = Vec::new();
    let mut used = BTreeSet::new();
    let mut counted = 0;
    for path in rust_files(&root) {
        let rel = path.strip_prefix(&root).expect("under src").to_path_buf();
        let text = std::fs::read_to_string(&path).expect("a source file reads");
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            if allowed(&rel, "") {
                used.insert((rel.clone(), String::new()));
            } else {
                over.push(format!(
                    "src/{}: {lines} lines (at most {MAX_FILE_LINES})",
                    rel.display()
                ));
            }
        }
        for (name, line, len) in functions(&code_only(&text)) {
            counted += 1;
            if len <= MAX_FN_LINES {
                continue;
            }
            if allowed(&rel, &name) {
                used.insert((rel.clone(), name));
            } else {
                over.push(format!(
                    "src/{}:{line}: fn {name} is {len} lines (at most {MAX_FN_LINES})",
                    rel.display()
                ));
            }
        }
    }
    assert!(counted > 1000, "the scan found the functions: {counted}");
    for (path, function, why) in ALLOWED {
        if !used.contains(&(PathBuf::from(path), (*function).to_owned())) {
            over.push(format!(
                "src/{path} {function}: allowed ({why}) but within the limits now; remove it \
                 from ALLOWED"
            ));
        }
    }
    assert!(
        over.is_empty(),
        "too long (split into modules or smaller functions):\n{}",
        over.join("\n")
    );
}

/// The counter itself: from the `fn` line to the closing brace, bodies
/// only, braces in strings and comments ignored.
#[test]
fn functions_are_counted_from_fn_to_closing_brace() {
    let text = r##"
/// Doc lines do not count.
#[inline]
pub fn three(a: Vec<u8>) -> impl Fn(u8) -> u8 {
    let _ = "}"; // }
    move |x| x
}
trait T {
    fn declared(&self) -> u8;
    fn provided(&self) -> Option<&str> where Self: Sized { None }
}
fn outer() {
    fn inner() {
    }
}
"##;
    let got = functions(&code_only(text));
    let got: Vec<(&str, usize)> = got.iter().map(|(n, _, l)| (n.as_str(), *l)).collect();
    assert_eq!(
        got,
        [("three", 4), ("provided", 1), ("outer", 4), ("inner", 2)]
    );
}
