//! Reading a Dockerfile without a container engine: its instructions with
//! `\` continuations joined, and those of its final stage.

/// The Dockerfile's lines with `\` continuations joined.
pub fn instructions(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

/// Instructions of the final stage only.
pub fn final_stage(dockerfile: &str) -> Vec<String> {
    let all = instructions(dockerfile);
    let last_from = all.iter().rposition(|i| i.starts_with("FROM ")).unwrap();
    all[last_from..].to_vec()
}
