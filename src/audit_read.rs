//! Reading the audit log back, newest first, a page at a time, for the
//! dashboard's Audit page.
//!
//! The log only grows, so it is read from the end backwards in blocks: a
//! page costs at most [`MAX_SCAN`] bytes of reading however large the file
//! is, and a filter that matches nothing stops there too (the page then
//! says where to continue). A position is a byte offset, so "older" is a
//! plain number a client hands back.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

/// The most bytes one page reads, whatever it finds.
pub const MAX_SCAN: u64 = 4 << 20;
/// The most lines one page returns.
pub const MAX_LINES: usize = 500;
/// A line longer than this is returned cut (the log's lines are short).
const MAX_LINE: usize = 16 * 1024;
const BLOCK: usize = 64 * 1024;

/// One page of the log, newest first.
#[derive(Debug, Serialize)]
pub struct Page {
    /// Each matching line as its JSON object (a line that is not JSON is
    /// returned as `{"unparsed": text}`).
    pub lines: Vec<serde_json::Value>,
    /// Where the next (older) page starts, or `None` at the file's start.
    pub older: Option<u64>,
    /// Bytes read for this page.
    pub scanned: u64,
}

/// Reads up to `limit` lines that contain `filter` (case-insensitive; all
/// when empty), ending before byte `before` (the end when `None`).
///
/// # Errors
/// The file cannot be read. A missing file is an empty page.
pub fn page(path: &Path, before: Option<u64>, limit: usize, filter: &str) -> std::io::Result<Page> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Page {
                lines: Vec::new(),
                older: None,
                scanned: 0,
            });
        }
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let limit = limit.clamp(1, MAX_LINES);
    let filter = filter.to_lowercase();
    let mut lines = Vec::new();
    let mut scanned = 0u64;
    // Everything from `pos + carry.len()` on is done; `carry` holds the
    // bytes from `pos` of a line whose start is further back.
    let mut pos = before.unwrap_or(len).min(len);
    let mut carry: Vec<u8> = Vec::new();
    let mut block = vec![0u8; BLOCK];
    while pos > 0 && scanned < MAX_SCAN {
        let start = pos.saturating_sub(BLOCK as u64);
        let n = (pos - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block[..n])?;
        scanned += n as u64;
        let mut chunk = block[..n].to_vec();
        chunk.append(&mut carry);
        // Unless this is the file's start, the bytes before the first
        // newline belong to a line that began earlier.
        let (head, rest, rest_at) = match (start, chunk.iter().position(|&b| b == b'\n')) {
            (0, _) => (&chunk[..0], &chunk[..], 0u64),
            (_, Some(i)) => (&chunk[..i], &chunk[i + 1..], start + i as u64 + 1),
            (_, None) => (&chunk[..], &chunk[..0], pos),
        };
        let mut line_end = rest_at + rest.len() as u64;
        for line in rest.rsplit(|&b| b == b'\n') {
            let line_start = line_end - line.len() as u64;
            if !line.is_empty()
                && let Some(v) = matching(line, &filter)
            {
                lines.push(v);
                if lines.len() == limit {
                    return Ok(Page {
                        lines,
                        older: (line_start > 0).then_some(line_start),
                        scanned,
                    });
                }
            }
            line_end = line_start.saturating_sub(1);
        }
        // A line longer than any we write is skipped, not read whole.
        carry = if head.len() > MAX_LINE {
            Vec::new()
        } else {
            head.to_vec()
        };
        pos = start;
    }
    let older = pos + carry.len() as u64;
    Ok(Page {
        older: (older > 0).then_some(older),
        lines,
        scanned,
    })
}

fn matching(line: &[u8], filter: &str) -> Option<serde_json::Value> {
    let text = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE)]);
    if !filter.is_empty() && !text.to_lowercase().contains(filter) {
        return None;
    }
    Some(serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({ "unparsed": text })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: usize) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let text: String = (0..lines)
            .map(|i| {
                format!(
                    "{{\"n\":{i},\"event\":\"{}\",\"pad\":\"{}\"}}\n",
                    if i % 3 == 0 { "login" } else { "exec" },
                    "x".repeat(i % 200)
                )
            })
            .collect();
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn numbers(page: &Page) -> Vec<u64> {
        page.lines
            .iter()
            .map(|l| l["n"].as_u64().unwrap())
            .collect()
    }

    #[test]
    fn pages_walk_back_to_the_start_without_gaps_or_repeats() {
        let (_dir, path) = log(5000);
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let p = page(&path, before, 333, "").unwrap();
            assert!(p.scanned <= MAX_SCAN + BLOCK as u64);
            seen.extend(numbers(&p));
            match p.older {
                Some(o) => before = Some(o),
                None => break,
            }
        }
        let want: Vec<u64> = (0..5000).rev().collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_filter_keeps_matching_lines_and_a_missing_file_is_empty() {
        let (dir, path) = log(100);
        let p = page(&path, None, 10, "LOGIN").unwrap();
        assert_eq!(numbers(&p), [99, 96, 93, 90, 87, 84, 81, 78, 75, 72]);
        let none = page(&dir.path().join("nope.log"), None, 10, "").unwrap();
        assert!(none.lines.is_empty() && none.older.is_none());
    }

    #[test]
    fn a_search_that_finds_nothing_stops_at_the_scan_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let line = format!("{{\"event\":\"exec\",\"pad\":\"{}\"}}\n", "y".repeat(1000));
        std::fs::write(&path, line.repeat(6000)).unwrap();
        let p = page(&path, None, 10, "nothing-like-this").unwrap();
        assert!(p.lines.is_empty());
        assert!(p.scanned <= MAX_SCAN + BLOCK as u64, "{}", p.scanned);
        assert!(p.older.is_some(), "more is left to search");
    }
}
