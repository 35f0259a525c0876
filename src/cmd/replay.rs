//! `switchboard replay FILE ADDR`: read the capture, replay it with the
//! library's engine, print both exchanges and the comparison. Exit codes
//! follow diff(1): 0 equal, 1 different, 2 trouble (the capture cannot be
//! read, the address cannot be reached or turned the connection away).

use std::process::ExitCode;

use switchboard::cli::ReplayArgs;
use switchboard::replay::diff::counted;
use switchboard::replay::{self, Chunk, Conversation, Dir, Ended, Limits, Outcome, ReadOptions};

/// Segments listed per side before the rest is summarised.
const LISTED: usize = 50;
/// Characters of a segment's text shown on its line.
const TEXT_WIDTH: usize = 60;

const TROUBLE: u8 = 2;

pub(crate) async fn replay(args: ReplayArgs) -> ExitCode {
    let options = ReadOptions {
        max_file_bytes: args.max_bytes,
        stream: args.stream,
        ..ReadOptions::default()
    };
    let path = args.file.clone();
    // Reading and parsing up to --max-bytes is blocking work.
    let read = tokio::task::spawn_blocking(move || replay::read_file(&path, &options)).await;
    let conv = match read {
        Ok(Ok(conv)) => conv,
        // An I/O error names the file itself.
        Ok(Err(e @ replay::ReadError::Io { .. })) => return trouble(&e.to_string()),
        Ok(Err(e)) => return trouble(&format!("{}: {e}", args.file.display())),
        Err(e) => return trouble(&format!("reading {}: {e}", args.file.display())),
    };
    let limits = Limits {
        timeout: args.timeout,
        timing: args.timing,
        idle: args.idle,
        ..Limits::default()
    };
    let outcome = match replay::run(&conv, &args.addr, &limits).await {
        Ok(o) => o,
        Err(e) => return trouble(&e.to_string()),
    };
    if args.json {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            file: String,
            client: String,
            server: String,
            #[serde(flatten)]
            outcome: &'a Outcome,
        }
        let report = Report {
            file: args.file.display().to_string(),
            client: conv.client.to_string(),
            server: conv.server.to_string(),
            outcome: &outcome,
        };
        let printed = serde_json::to_string_pretty(&report)
            .map_err(anyhow::Error::from)
            .and_then(|json| crate::write_stdout(format!("{json}\n").as_bytes()));
        if let Err(e) = printed {
            return trouble(&format!("cannot write the report: {e:#}"));
        }
    } else if let Err(e) = crate::write_stdout(text(&conv, &outcome).as_bytes()) {
        return trouble(&format!("{e:#}"));
    }
    if outcome.equal() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn trouble(why: &str) -> ExitCode {
    eprintln!("switchboard: {why}");
    ExitCode::from(TROUBLE)
}

fn line(out: &mut String, who: &str, t_us: u64, bytes: &[u8]) {
    let mut shown = replay::diff::printable(bytes);
    if shown.chars().count() > TEXT_WIDTH {
        shown = shown.chars().take(TEXT_WIDTH - 3).collect::<String>() + "...";
    }
    let at = format!("+{:.3}s", t_us as f64 / 1e6);
    out.push_str(&format!(
        "  {who:<7} {at:>10} {:>7} B  {shown}\n",
        bytes.len()
    ));
}

/// Lines for `rows`, at most [`LISTED`] of them.
fn listed<'a>(out: &mut String, rows: impl ExactSizeIterator<Item = (&'a str, u64, &'a [u8])>) {
    let count = rows.len();
    for (who, t, bytes) in rows.take(LISTED) {
        line(out, who, t, bytes);
    }
    if count > LISTED {
        out.push_str(&format!("  ... and {} more\n", count - LISTED));
    }
}

/// The report for a person: the recorded exchange, the new one, the verdict.
fn text(conv: &Conversation, o: &Outcome) -> String {
    let mut out = format!(
        "recorded: {} {} -> {}\n",
        conv.proto, conv.client, conv.server
    );
    let recorded: Vec<_> = conv
        .segments
        .iter()
        .map(|s| {
            let who = match s.dir {
                Dir::Client => "client",
                Dir::Server => "server",
            };
            (who, s.t_us, s.bytes.as_slice())
        })
        .collect();
    listed(&mut out, recorded.into_iter());

    let mut replayed: Vec<(&str, &Chunk)> = o
        .sent
        .iter()
        .map(|c| ("sent", c))
        .chain(o.replies.iter().map(|c| ("reply", c)))
        .collect();
    replayed.sort_by_key(|(who, c)| (c.t_us, *who == "reply"));
    let sent_bytes: usize = o.sent.iter().map(|c| c.len).sum();
    let reply_bytes: usize = o.replies.iter().map(|c| c.len).sum();
    out.push_str(&format!(
        "replayed to {}{}: {} sent ({sent_bytes} B), {} back ({reply_bytes} B) in {:.3}s; {}\n",
        o.target,
        if o.timing {
            " with the recorded timing"
        } else {
            ""
        },
        counted(o.sent.len() as u64, "segment"),
        counted(
            o.replies.len() as u64,
            if conv.proto == replay::Proto::Udp {
                "datagram"
            } else {
                "read"
            }
        ),
        o.elapsed_us as f64 / 1e6,
        ended(o.ended)
    ));
    listed(
        &mut out,
        replayed
            .iter()
            .map(|(who, c)| (*who, c.t_us, c.bytes.as_slice()))
            .collect::<Vec<_>>()
            .into_iter(),
    );
    if let Some(e) = &o.send_error {
        out.push_str(&format!("  (sending stopped: {e})\n"));
    }
    out.push_str(&o.diff.render());
    out
}

fn ended(e: Ended) -> &'static str {
    match e {
        Ended::ServerClosed => "the server closed the connection",
        Ended::ServerReset => "the server reset the connection",
        Ended::Settled => "the recorded amount came back, then nothing more",
        Ended::Idle => "less than recorded came back, then nothing for --idle",
        Ended::Answered => "every datagram was answered as recorded",
        Ended::NotAnswered => "some datagrams got fewer replies than recorded",
        Ended::ReplyLimit => "stopped at the reply limit",
        Ended::Timeout => "stopped at --timeout",
    }
}
