#!/usr/bin/env python3
"""The resumable-upload section of BENCHMARKS.md (bench/sections/resume.sh's
resume-tus-R.json and resume-put-R.json): a 1 GiB upload with tuspy (tus
1.0.0, 64 MiB chunks) against one plain PUT through the dashboard, data on
tmpfs, and the goal tus >= 0.8x PUT.

bench/report.py calls lines(run) for a full run; alone,

    bench/report_resume.py RESULTS_DIR

prints the section for a directory the section wrote by itself. Renders
nothing when the run holds no resume-* reports (older runs).
"""
import os
import sys

GOAL = 0.8


def lines(run):
    """The section's Markdown lines (none when the run did not measure it)."""
    import report as R  # bench/report.py: Run, spread, the formatting helpers

    tus, put = run.rounds("resume-tus"), run.rounds("resume-put")
    if not tus and not put:
        return []
    med = R.ratio(run.median("resume-tus", "mib_per_s"), run.median("resume-put", "mib_per_s"))
    per = run.pairs("resume-tus", "resume-put", lambda a, b: a / b, "mib_per_s")
    per_text = "–" if len(per) < 2 else f"{min(per.values()):.2f}–{max(per.values()):.2f}x"
    bad = sum(1 for r in list(tus.values()) + list(put.values()) if r.get("sha256_ok") is not True)
    out = [
        "## Resumable uploads: tus against one PUT",
        "",
        "`bench/sections/resume.sh`: 1 GiB through the dashboard to a switchboard of its own whose",
        "data dir is on tmpfs, with tuspy (tus 1.0.0, 64 MiB chunks, `/api/v1/uploads/`) and with",
        "one `curl -T` PUT (`/api/v1/files/NAME`, relayed into the files service), alternated,",
        "the same operator token. Server CPU is the switchboard process's own.",
        "",
        "| upload | MiB/s | s | server CPU s | SHA-256 of the stored file |",
        "|---|---|---|---|---|",
    ]
    for label, name in (("resume-tus", "tuspy, 64 MiB chunks"), ("resume-put", "one PUT")):
        rs = run.rounds(label)
        if not rs:
            continue
        ok = all(r.get("sha256_ok") is True for r in rs.values())
        out.append(f"| {name} | {R.ns(run.stat(label, 'mib_per_s'))} | {R.ns(run.stat(label, 'elapsed_s'), 2)} | "
                   f"{R.ns(run.stat(label, 'server_cpu_s'), 2)} | {'the source’s' if ok else '**differs**'} |")
    out += [
        "",
        "| what | measured | per round | goal | |",
        "|---|---|---|---|---|",
        f"| 1 GiB with tuspy vs one PUT | {R.x(med)} | {per_text} | ≥ {GOAL:.2f}x | "
        f"{R.verdict(med, GOAL, True, per) if not bad else '**stored file differs**'} |",
        "",
    ]
    return out


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import report as R

    if len(sys.argv) != 2:
        print("usage: bench/report_resume.py RESULTS_DIR", file=sys.stderr)
        return 2
    path = sys.argv[1]
    if not os.path.exists(os.path.join(path, "run.json")):
        # A directory the section wrote alone: report.py's Run wants run.json.
        with open(os.path.join(path, "run.json"), "w") as f:
            f.write('{"mode": "resume"}\n')
    sys.stdout.write("\n".join(lines(R.Run(path))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
