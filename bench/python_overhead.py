#!/usr/bin/env python3
"""The Python path's overhead on a federated run: the same `fedrec train` run from the CLI
and from fedrec.train(), interleaved (CLI, Python, CLI, Python, ...) so that the shared
machine's load hits both alike. Both run the same C code (the package embeds the
command); Python adds the per-round callback (the GIL taken back, the round's metrics
decoded from JSON into a dict, the user's function) and the call's setup.

Reported per pair: the CLI process's wall time (exec, load, rounds, summary, save), the
train() call's wall time with the command's summary on and out= given (verbose=True,
quiet=True, out=FILE: the same work as the CLI with --quiet --out FILE: its summary, the
model file and the checkpoint), and the difference per round as a share of a
round's wall time (target <= 5%). Also the time spent inside the trampoline per round.

usage: python_overhead.py FEDREC_BIN DATA [ROUNDS=5] [PAIRS=3] [MODEL=neumf]
"""
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import fedrec
from fedrec import _model


def main() -> int:
    bin_, data = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    pairs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    model = sys.argv[5] if len(sys.argv) > 5 else "neumf"
    tmp = tempfile.mkdtemp()
    opts = {"model": model, "rounds": rounds, "quiet": True}
    argv = [bin_, "train", "--data", data, "--model", model, "--rounds", str(rounds), "--quiet",
            "--out", os.path.join(tmp, "cli.fr")]
    # time spent in the trampoline: it calls capture.pause() first and capture.resume()
    # last (no-ops here: verbose runs capture nothing), so time from one to the other
    spent = []
    entered = [0.0]
    orig_pause, orig_resume = _model.StderrCapture.pause, _model.StderrCapture.resume

    def pause(self):
        entered[0] = time.perf_counter()
        orig_pause(self)

    def resume(self):
        orig_resume(self)
        spent.append(time.perf_counter() - entered[0])

    rows = []
    for p in range(pairs):
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        cli = time.perf_counter() - t
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # the summary the command prints, as the CLI's goes to /dev/null
        cb_t = []

        def cb(m):
            t0 = time.perf_counter()
            cb_t.append(m["seconds"])
            return time.perf_counter() - t0 < 0  # never stops

        _model.StderrCapture.pause, _model.StderrCapture.resume = pause, resume
        try:
            s0 = resource.getrusage(resource.RUSAGE_SELF)
            t = time.perf_counter()
            fedrec.train(data=data, callback=cb, verbose=True, out=os.path.join(tmp, "py.fr"), **opts)
            py = time.perf_counter() - t
            s1 = resource.getrusage(resource.RUSAGE_SELF)
            py_cpu = (s1.ru_utime + s1.ru_stime) - (s0.ru_utime + s0.ru_stime)
        finally:
            _model.StderrCapture.pause, _model.StderrCapture.resume = orig_pause, orig_resume
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        round_wall = py / rounds
        rows.append((cli, py, (py - cli) / rounds / (cli / rounds), py_cpu / cli_cpu - 1))
        print(f"pair {p + 1}: cli {cli:.3f} s  python {py:.3f} s  ({rounds} rounds, {round_wall:.3f} s a round)  "
              f"python - cli = {(py - cli) / rounds * 1000:+.1f} ms a round = {100 * rows[-1][2]:+.2f}% of a round; "
              f"CPU time cli {cli_cpu:.2f} s python {py_cpu:.2f} s ({100 * rows[-1][3]:+.2f}%)",
              flush=True)
        same = open(os.path.join(tmp, "cli.fr"), "rb").read() == open(os.path.join(tmp, "py.fr"), "rb").read()
        if not same:
            print("  the model files differ!", flush=True)
    med = statistics.median(r[2] for r in rows)
    med_cpu = statistics.median(r[3] for r in rows)
    tramp = statistics.mean(spent) * 1000 if spent else float("nan")
    mean_round = statistics.mean(r[1] for r in rows) / rounds * 1000
    print(f"median overhead: {100 * med:+.2f}% of a round's wall time (target <= 5%; noise of the shared machine "
          f"dominates), {100 * med_cpu:+.2f}% of the CPU time; the per-round callback itself (GIL back, metrics JSON -> dict, the user's function): "
          f"{tramp:.3f} ms a round = {100 * tramp / mean_round:.4f}% of a {mean_round:.0f} ms round; "
          f"model files identical: "
          f"{open(os.path.join(tmp, 'cli.fr'), 'rb').read() == open(os.path.join(tmp, 'py.fr'), 'rb').read()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
