"""Seconds for ``prunetui report`` and ``prunetui check`` on a large synthetic run, measured here.

Writes a run directory whose metrics.jsonl has ROWS rows (default 200,000; the paper preset
with 5 replicates writes about 77,500) in the engine's own format, then times, each in its
own fresh process (start-up and imports included, as a user sees it):

- ``prunetui report RUN --no-plot`` (read, check every line, aggregate, print the table);
- the same with one damaged line in the middle (the warning path);
- reading alone (``RunDir.metrics_checked``) and the old unchecked reader, interleaved.

    python benchmarks/report_large.py [--rows 200000] [--trials 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import recorded

from prunetui import store

READ = ("import sys, time; from prunetui import store; run = store.RunDir(sys.argv[1]); "
        "t = time.perf_counter(); {call}; print(time.perf_counter() - t)")


def synthetic_run(root: Path, rows: int, replicates: int = 5, rounds: int = 20) -> store.RunDir:
    """The paper preset's shape: replicates x (dense + rounds x 3 schemes) segments."""
    run = store.create_run(root, "large", "")
    rng = random.Random(0)
    schemes = ("keep", "reinit", "rewind")
    segments = [(rep, round_, scheme) for rep in range(replicates) for round_ in range(rounds + 1)
                for scheme in (("dense",) if round_ == 0 else schemes)]
    evals = -(-rows // len(segments))
    log = store.JsonlLog(run.metrics_path, 0)
    n = 0
    for rep, round_, scheme in segments:
        for it in range(1, evals + 1):
            if n == rows:
                break
            log.append({
                "replicate": rep, "round": round_, "scheme": scheme,
                "epoch": round(it / 9.17, 4), "iteration": it * 100,
                "remaining": 0.8 ** round_, "train_loss": rng.random(),
                "val_loss": rng.random(), "val_acc": rng.random(),
                "test_acc": rng.random(), "elapsed_s": round(n * 0.1, 3)})
            n += 1
    run.write_status(store.FINISHED)
    return run


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = synthetic_run(Path(tmp), args.rows)
        damaged = store.RunDir(Path(tmp) / "damaged")
        damaged.path.mkdir()
        for name in (store.CONFIG_FILE, store.STATUS_FILE, store.STATUS_FILE + store.SIDECAR):
            (damaged.path / name).write_bytes((run.path / name).read_bytes())
        lines = run.metrics_path.read_bytes().split(b"\n")
        lines[len(lines) // 2] = b"{damaged"
        damaged.metrics_path.write_bytes(b"\n".join(lines))
        size = run.metrics_path.stat().st_size / 1e6
        print(f"{args.rows} rows, metrics.jsonl {size:.1f} MB")
        py = sys.executable
        commands = {
            "report": [py, "-m", "prunetui", "report", str(run.path), "--no-plot"],
            "report, 1 damaged line": [py, "-m", "prunetui", "report", str(damaged.path),
                                       "--no-plot"],
            "read checked (in process)": [py, "-c", READ.format(call="run.metrics_checked()"),
                                          str(run.path)],
            "read with json.loads per line": [py, "-c", READ.format(
                call="import json; [json.loads(x) for x in run.metrics_path.open('rb')]"),
                str(run.path)],
        }
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.trials):  # interleaved: drift hits every variant alike
            for name, command in commands.items():
                if name.startswith("read"):
                    out = subprocess.run(command, check=True, capture_output=True, text=True)
                    times[name].append(float(out.stdout))
                else:
                    times[name].append(timed(command))
        for name, values in times.items():
            print(f"{name:<30} median {statistics.median(values):.2f} s  "
                  f"(trials: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    with recorded("report_large"):
        main()
