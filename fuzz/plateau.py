#!/usr/bin/env python3
"""Runs one fuzz target until its coverage plateaus, then says where the coverage is.

    fuzz/plateau.py <target> [--quiet SECS] [--max SECS] [--jobs N]

The target runs from the committed seeds (fuzz/seeds/<target>) plus its working corpus
(fuzz/corpus/<target>). It stops once libFuzzer's `cov` (edges reached) has not grown for
--quiet seconds (default 600): the plateau. It also stops at --max seconds (default 3600), and
then says that no plateau was reached. Either way it prints one line of figures: executions,
exec/s, cov and ft (libFuzzer's edge and feature counts), the corpus size, when `cov` last grew,
and how much it grew in the last --quiet seconds.

It then splits the coverage of the final corpus by where the code lives (this crate, its
dependencies, std). Without a plateau it also splits the corpus as it was --quiet seconds before
the stop (a copy taken at most a minute earlier): equal figures for this crate mean that the
last window found nothing new in it, and the growth was elsewhere.

A second run goes on from the working corpus the first one grew; its figures are its own
(executions and time of this run, coverage of the whole corpus).

With --jobs N (N > 1) libFuzzer runs in fork mode: N processes fuzz at once and their finds are
merged into the one working corpus. Its `cov` then counts the edges of the merged corpus, and
its executions are those of all processes.

The exit status is 1 if the target crashed, hung (> 5 s) or ran out of memory (> 2 GiB); the
input is then in fuzz/artifacts/<target>/. The log is fuzz/coverage/<target>.log.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
CRATE_SRC = str(FUZZ.parent / "src") + "/"
# One process: "#N NEW cov: ...". Fork mode (--jobs): "#N: cov: ..." from the parent; a job
# that crashes has its own log echoed, whose lines (and `stat::` totals) are that job's alone.
STATUS_LINE = re.compile(
    r"^#(\d+)\s+(?:INITED|NEW|REDUCE|pulse|DONE)\b.*?cov: (\d+) ft: (\d+)(?:.*?exec/s: (\d+))?"
)
FORK_STATUS_LINE = re.compile(r"^#(\d+): cov: (\d+) ft: (\d+)(?:.*?exec/s: (\d+))?")
FAILURE = re.compile(r"==\d+==\s*ERROR|deadly signal|Test unit written|ALARM: working on")
INTERRUPTED = re.compile(r"libFuzzer: (?:run|a child was) interrupted")
SNAPSHOT_EVERY = 60  # seconds between copies of the corpus, for the split of the window's start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("--quiet", type=int, default=600, help="plateau: no new cov for SECS")
    parser.add_argument("--max", type=int, default=3600, help="stop after SECS regardless")
    parser.add_argument("--jobs", type=int, default=1, help="fuzz in N processes (fork mode)")
    args = parser.parse_args()

    env = dict(os.environ, RUSTC_BOOTSTRAP="1", CARGO_TERM_COLOR="never")
    subprocess.run(["cargo", "fuzz", "build", args.target], cwd=FUZZ, env=env, check=True)

    corpus = FUZZ / "corpus" / args.target
    corpus.mkdir(parents=True, exist_ok=True)
    out = FUZZ / "coverage"
    out.mkdir(exist_ok=True)
    log_path = out / f"{args.target}.log"
    snapshots = out / f"{args.target}.snapshots"
    shutil.rmtree(snapshots, ignore_errors=True)
    snapshots.mkdir()
    # Fork mode keeps its jobs' files in TMPDIR; an interrupted run would leave them behind.
    jobs_dir = out / f"{args.target}.jobs"
    shutil.rmtree(jobs_dir, ignore_errors=True)
    if args.jobs > 1:
        jobs_dir.mkdir()
        env["TMPDIR"] = str(jobs_dir)

    cmd = [
        "cargo", "fuzz", "run", args.target, str(corpus), str(FUZZ / "seeds" / args.target),
        "--", f"-max_total_time={args.max}", "-timeout=5", "-rss_limit_mb=2048",
        "-print_final_stats=1",
    ] + ([f"-fork={args.jobs}"] if args.jobs > 1 else [])
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=FUZZ, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        errors="replace", start_new_session=True,
    )

    # history: (seconds, cov) each time cov grew; its last entry says when that was.
    status_line = FORK_STATUS_LINE if args.jobs > 1 else STATUS_LINE
    state = {"cov": None, "ft": None, "execs": 0, "exec_s": None, "failed": False, "history": []}
    lock = threading.Lock()

    def read() -> None:
        with open(log_path, "w", buffering=1) as log:  # line by line, for tail -f
            for line in proc.stdout:
                now = time.monotonic() - start
                log.write(f"{now:8.1f} {line}")
                m = status_line.match(line)
                with lock:
                    if FAILURE.search(line):
                        state["failed"] = True
                    if not m:
                        continue
                    execs, cov, ft, exec_s = m.groups()
                    cov = int(cov)
                    if state["cov"] is None or cov > state["cov"]:
                        state["history"].append((now, cov))
                    state.update(cov=cov, ft=int(ft), execs=int(execs))
                    if exec_s:
                        state["exec_s"] = int(exec_s)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    taken = []  # (seconds, directory) of corpus copies
    stopped_by_us = False
    try:
        while proc.poll() is None:
            time.sleep(1)
            now = time.monotonic() - start
            if not taken or now - taken[-1][0] >= SNAPSHOT_EVERY:
                copy = snapshots / f"{int(now)}"
                copy_corpus(corpus, copy)
                taken.append((now, copy))
                # Only the newest copy older than the window is ever needed.
                old = [td for td in taken if td[0] <= now - args.quiet]
                for t, d in old[:-1]:
                    shutil.rmtree(d, ignore_errors=True)
                    taken.remove((t, d))
            with lock:
                history = state["history"]
                plateau = bool(history) and now - history[-1][0] >= args.quiet
                failed = state["failed"]
            if plateau and not failed:
                stopped_by_us = True
                os.killpg(proc.pid, signal.SIGINT)  # libFuzzer prints its final stats and exits
                proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # interrupted, or libFuzzer did not exit on SIGINT
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    reader.join(timeout=30)
    shutil.rmtree(jobs_dir, ignore_errors=True)
    elapsed = time.monotonic() - start

    log_text = log_path.read_text(errors="replace")
    if args.jobs > 1:  # the parent's last count; its exec/s is the last job's: take the average
        execs = state["execs"]
        rate = round(execs / elapsed)
    else:
        final_execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", log_text)
        final_rate = re.search(r"stat::average_exec_per_sec:\s*(\d+)", log_text)
        execs = int(final_execs.group(1)) if final_execs else state["execs"]
        rate = int(final_rate.group(1)) if final_rate else state["exec_s"]
    gain_at = state["history"][-1][0] if state["history"] else 0.0
    window_start = elapsed - args.quiet
    cov_before = max([c for t, c in state["history"] if t <= window_start], default=None)
    gain = state["cov"] - cov_before if cov_before is not None else None
    # Someone else stopped libFuzzer (SIGINT to it): no plateau, and no failure either.
    interrupted = not stopped_by_us and bool(INTERRUPTED.search(log_text))
    failed = state["failed"] or (not stopped_by_us and not interrupted and proc.returncode != 0)
    result = "FAILED" if failed else ("plateau" if stopped_by_us else "no-plateau")
    files = sum(1 for p in corpus.iterdir() if p.is_file())
    print(
        f"{args.target:<16} {result:<10} {elapsed:.0f}s execs={execs} exec/s={rate} "
        f"cov={state['cov']} ft={state['ft']} corpus={files} "
        f"last-cov-gain-at={gain_at:.0f}s gain-in-last-{args.quiet}s={gain}"
    )
    if failed:
        print(log_text[-6000:])
        return 1

    # The corpus as it was when the quiet window began, and the final one. After a plateau
    # nothing grew in the window, so the final split says all.
    early = max(((t, d) for t, d in taken if t <= window_start), default=(None, None))[1]
    splits = [("end", corpus)] if stopped_by_us else [("window start", early), ("end", corpus)]
    for label, directory in splits:
        if directory is None:
            print(f"  coverage at {label}: no copy that old")
            continue
        split = coverage_split(args.target, directory)
        print(f"  coverage at {label:<12}: " + ", ".join(f"{k} {v}" for k, v in split.items()))
    shutil.rmtree(snapshots, ignore_errors=True)
    return 0


def copy_corpus(source: Path, dest: Path) -> None:
    """Copies a corpus that libFuzzer is changing: files it replaces meanwhile are skipped."""
    dest.mkdir()
    for path in source.iterdir():
        try:
            shutil.copyfile(path, dest / path.name)
        except FileNotFoundError:
            pass


def coverage_split(target: str, directory: Path) -> dict:
    """Edges covered by the corpus in `directory` and the seeds, summed by where the code lives."""
    binary = FUZZ / "target" / "x86_64-unknown-linux-gnu" / "release" / target
    run = subprocess.run(
        [str(binary), "-runs=0", "-print_coverage=1", "-rss_limit_mb=2048", str(directory),
         str(FUZZ / "seeds" / target)],
        capture_output=True, text=True, errors="replace",
    )
    groups: dict = {}
    for line in run.stderr.splitlines():
        m = re.match(r"^(?:COVERED|UNCOVERED)_FUNC: hits: \d+ edges: (\d+)/(\d+) (.*)$", line)
        if not m:
            continue
        covered, total, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        where = rest.rsplit(" ", 1)[-1]
        if where.startswith(CRATE_SRC):
            group = "this crate"
        elif "/library/" in where or "/rustc/" in where:
            group = "std"
        else:
            crate = re.search(r"/registry/src/[^/]+/([A-Za-z0-9_\-]+?)-\d", where)
            group = crate.group(1) if crate else "other"
        c, t = groups.get(group, (0, 0))
        groups[group] = (c + covered, t + total)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] != "this crate", -kv[1][0]))
    return {k: f"{c}/{t}" for k, (c, t) in ordered[:6]}


if __name__ == "__main__":
    sys.exit(main())
