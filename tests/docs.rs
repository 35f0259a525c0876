//! The docs are tests: every shell block (```sh, ```bash, ```shell,
//! ```console) in README.md and docs/*.md carries a tag in its info string,
//! `run` or `norun: <why>`, and every `run` block is run by bash against a
//! fresh `switchboard serve` (one per file, every built-in service and the
//! dashboard on ephemeral ports). The blocks of one file run in order in
//! one shell session, as a reader would type them: variables and files a
//! block leaves (`B=...`, the cookie jar) are there for the next. The
//! default ports in a block (9000–9006, 8080) are rewritten to the ports
//! the server got, and the placeholder `"password":"..."` becomes the
//! server's admin password. `curl` fails on an HTTP error status
//! (`--fail-with-body`), so a route that drifts fails. A block must exit 0, or `N` with the tag `run exit=N`.
//!
//! Where a block shows its JSON output in whole-line `# ...` comments, the
//! keys shown must be in the output; the values are not compared, since
//! they show a typical run (times, counters, ids), not an exact transcript.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Served;
use switchboard::kind::ServiceKind;

const SHELLS: &[&str] = &["sh", "bash", "shell", "console"];
/// The admin password of the fresh server; the docs' placeholder
/// `"password":"..."` becomes this one.
const PASSWORD: &str = "docs-example-password";
/// How long one block may run.
const BLOCK_LIMIT: Duration = Duration::from_secs(30);

/// What a shell block's tag says.
#[derive(Debug)]
enum Tag {
    Run { exit: i32 },
    NoRun,
}

#[derive(Debug)]
struct Block {
    file: String,
    line: usize,
    tag: Tag,
    text: String,
}

fn doc_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is there")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Parses a tag; `Err` says how to write one.
fn parse_tag(rest: &str) -> Result<Tag, String> {
    let rest = rest.trim();
    if rest == "run" {
        return Ok(Tag::Run { exit: 0 });
    }
    if let Some(code) = rest.strip_prefix("run exit=") {
        return code
            .parse()
            .map(|exit| Tag::Run { exit })
            .map_err(|_| format!("`{rest}`: exit= wants a number"));
    }
    if let Some(why) = rest.strip_prefix("norun:")
        && !why.trim().is_empty()
    {
        return Ok(Tag::NoRun);
    }
    Err(format!("untagged or mistagged (`{rest}`)"))
}

/// Every shell block of `path`, or the problems with their tags.
fn shell_blocks(path: &Path, problems: &mut Vec<String>) -> Vec<Block> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = path
        .strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string();
    let text = std::fs::read_to_string(path).expect("a readable doc");
    let mut blocks = Vec::new();
    let mut open: Option<(usize, Option<Tag>, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let Some(info) = line.strip_prefix("```") else {
            if let Some((_, _, body)) = open.as_mut() {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        };
        match open.take() {
            Some((start, Some(tag), body)) => blocks.push(Block {
                file: file.clone(),
                line: start,
                tag,
                text: body,
            }),
            Some((_, None, _)) => {}
            None => {
                let (lang, rest) = info.split_once(' ').unwrap_or((info, ""));
                let tag = if SHELLS.contains(&lang) {
                    match parse_tag(rest) {
                        Ok(tag) => Some(tag),
                        Err(why) => {
                            problems.push(format!(
                                "{file}:{}: shell block {why}: write ```{lang} run (run against a \
                                 fresh server; `run exit=N` when it should exit N) or ```{lang} \
                                 norun: <why it cannot run in the test>",
                                i + 1
                            ));
                            None
                        }
                    }
                } else {
                    None
                };
                open = Some((i + 1, tag, String::new()));
            }
        }
    }
    blocks
}

/// The JSON keys (`"name":`) the block's whole-line `# ...` comments show
/// in its output: a renamed or dropped field fails the test, while the
/// values (times, ids, counters) may differ.
fn shown_keys(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for comment in text
        .lines()
        .filter_map(|line| line.trim().strip_prefix('#'))
    {
        let mut rest = comment;
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('"') else { break };
            let word = &after[..end];
            let is_key = after[end + 1..].starts_with(':')
                && !word.is_empty()
                && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if is_key {
                keys.push(format!("\"{word}\":"));
            }
            rest = &after[end + 1..];
        }
    }
    keys
}

/// Replaces each default port standing alone (no digit either side).
fn rewrite_ports(text: &str, ports: &BTreeMap<u16, u16>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let before_ok = i == 0 || !bytes[i - 1].is_ascii_digit();
        let replaced = before_ok
            && ports
                .iter()
                .find_map(|(from, to)| {
                    let from = from.to_string();
                    let end = i + from.len();
                    let after_ok = bytes.get(end).is_none_or(|b| !b.is_ascii_digit());
                    (text[i..].starts_with(&from) && after_ok).then(|| (end, to.to_string()))
                })
                .map(|(end, to)| {
                    out.push_str(&to);
                    i = end;
                })
                .is_some();
        if !replaced {
            let c = text[i..].chars().next().expect("inside the text");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr}"))
}

/// Runs the `run` blocks of one file against a fresh server; how many ran.
async fn run_file(blocks: &[&Block]) -> usize {
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("switchboard-data");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("the work dir");
    // Files the examples upload.
    std::fs::write(work.join("photo.jpg"), vec![0xa5u8; 300_001]).expect("photo.jpg");
    std::fs::write(work.join("notes.txt"), "notes\n").expect("notes.txt");
    let served = Served::start(
        &data,
        ServiceKind::BUILTIN,
        &[("SWITCHBOARD_ADMIN_PASSWORD", PASSWORD)],
    )
    .await;
    let mut ports = BTreeMap::new();
    for kind in ServiceKind::BUILTIN {
        let default = kind.builtin_port().expect("a built-in instance");
        ports.insert(default, port_of(&served.addr(kind)));
    }
    ports.insert(8080, port_of(&served.web_url()));
    // The port API.md gives an added instance: one free a moment ago.
    let spare = std::net::TcpListener::bind("127.0.0.1:0").expect("a spare port");
    ports.insert(9100, spare.local_addr().expect("its address").port());
    drop(spare);
    let bin = Path::new(env!("CARGO_BIN_EXE_switchboard"))
        .parent()
        .expect("the binary's folder");
    #[allow(clippy::disallowed_methods)] // the shell's PATH, the binary's folder first
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let state = dir.path().join("state.sh");
    std::fs::write(&state, "").expect("the state file");
    for block in blocks {
        let Tag::Run { exit } = block.tag else {
            continue;
        };
        let script = format!(
            "set -a\n. '{state}'\nset -o pipefail\n\
             curl() {{ command curl --fail-with-body \"$@\"; }}\n\
             trap 'rc=$?; export -p > \"{state}\"; exit $rc' EXIT\n{}",
            rewrite_ports(&block.text, &ports).replace(
                r#""password":"...""#,
                &format!(r#""password":"{PASSWORD}""#)
            ),
            state = state.display(),
        );
        let run = tokio::process::Command::new("bash")
            .args(["-e", "-c", &script])
            .current_dir(&work)
            .env("PATH", &path)
            .env("HOME", dir.path())
            .env("SWITCHBOARD_DATA_DIR", &data)
            // Where the local dashboard is, for `switchboard health`.
            .env(
                "SWITCHBOARD_WEB_LISTEN",
                format!("127.0.0.1:{}", ports[&8080]),
            )
            .env_remove("SWITCHBOARD_ADMIN_PASSWORD")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(BLOCK_LIMIT, run)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{}:{}: still running after {BLOCK_LIMIT:?}",
                    block.file, block.line
                )
            })
            .expect("bash starts");
        assert_eq!(
            out.status.code(),
            Some(exit),
            "{}:{}: the block exited {:?}, the docs expect {exit}\n--- script\n{script}\n\
             --- stdout\n{}\n--- stderr\n{}",
            block.file,
            block.line,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        for key in shown_keys(&block.text) {
            assert!(
                stdout.contains(&key),
                "{}:{}: the docs show {key} in the output, which lacks it:\n{stdout}",
                block.file,
                block.line,
            );
        }
    }
    drop(served);
    blocks
        .iter()
        .filter(|block| matches!(block.tag, Tag::Run { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shell_example_in_the_docs_runs_or_says_why_not() {
    let mut problems = Vec::new();
    let mut blocks = Vec::new();
    for file in doc_files() {
        blocks.extend(shell_blocks(&file, &mut problems));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let norun = blocks
        .iter()
        .filter(|block| matches!(block.tag, Tag::NoRun))
        .count();
    let mut by_file: BTreeMap<&str, Vec<&Block>> = BTreeMap::new();
    for block in &blocks {
        by_file.entry(&block.file).or_default().push(block);
    }
    let mut ran = 0;
    for (_, blocks) in by_file {
        ran += run_file(&blocks).await;
    }
    println!(
        "docs: {ran} shell blocks ran against a fresh server, {norun} tagged norun, {} in all",
        blocks.len()
    );
    assert!(ran > 0, "no shell block ran");
}

#[test]
fn keys_come_from_whole_line_comments_only() {
    let text = "curl x # {\"no\":1}\n# {\"ok\":true,\"id\":17,\n#  \"msg\":\"a: b\"}\n";
    assert_eq!(shown_keys(text), ["\"ok\":", "\"id\":", "\"msg\":"]);
}

#[test]
fn ports_are_rewritten_only_where_they_stand_alone() {
    let ports = BTreeMap::from([(9000, 41000), (8080, 42000)]);
    assert_eq!(
        rewrite_ports(
            "echo 9000 127.0.0.1:9000 -n 190000 90001 http://x:8080/",
            &ports
        ),
        "echo 41000 127.0.0.1:41000 -n 190000 90001 http://x:42000/"
    );
}
