//! The EXIT STATUS section of `switchboard man`: what each status means,
//! for every command. The README's "Exit status" section says the same;
//! clap has no place for it, so it is written here as roff.

/// (status, meaning) in the order a reader looks them up.
pub(crate) const STATUSES: [(&str, &str); 9] = [
    (
        "0",
        "Success: the reply came, the check passed, the command ran.",
    ),
    (
        "1",
        "Failure: a server that is not there, a TLS mismatch, a refusal, `login failed`, \
         `health` not healthy, `replay` found a difference, `serve` could not start (a \
         listener could not bind, unless --keep-going). The message on stderr says which.",
    ),
    (
        "2",
        "Usage: a wrong option or argument (clap's code); `replay` when it could not \
         replay at all.",
    ),
    (
        "exec: N",
        "The remote command's own exit code, passed through.",
    ),
    ("exec: 128+N", "The remote command was killed by signal N."),
    (
        "exec: 125",
        "The command did not run: not allowed, over a limit, no connection, a broken stream.",
    ),
    (
        "exec: 126",
        "The service refused our HMAC key (a wrong --key-file or SWITCHBOARD_KEY).",
    ),
    (
        "130",
        "`serve` stopped by a second Ctrl-C without waiting for connections.",
    ),
    (
        "time",
        "1 when any format got no reply; the others are still printed.",
    ),
];

/// The section as roff, appended to the top page.
pub(crate) fn roff() -> String {
    let mut out = String::from(".SH \"EXIT STATUS\"\n");
    for (status, meaning) in STATUSES {
        // A line starting with `.` or `'` would be a roff request.
        let meaning = meaning.replace('\\', "\\\\").replace('-', "\\-");
        out.push_str(&format!(".TP\n\\fB{status}\\fR\n{meaning}\n"));
    }
    out
}
