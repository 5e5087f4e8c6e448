"""Wall time of one small sweep: 1 local worker, 2 local workers, and Ray on this machine.

The sweep is four LeNet-300-100 runs on MNIST (two seeds x two pruning scopes, a subset of the
training set, a few short rounds): small enough for a 2-core machine, with every run a real
``prunetui run`` process, as in ``prunetui sweep``. Each executor runs the whole sweep into a
fresh folder; trials are interleaved (1 worker, 2 workers, Ray, then again) so a machine whose
speed drifts affects them alike. Ray's start-up (``ray.init`` of a local instance, measured on
its own) is reported apart from the sweep's time, and Ray's runs are checked to give the same
metrics as the local runs with the same thread share.

    python benchmarks/sweep_speed.py [--root data] [--trials 2] [--no-ray]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from results_file import recorded

from prunetui import config, executors, store
from prunetui import sweep as sweeps
from prunetui.threads import allowed_cpus

SWEEP = """
base = "base.toml"
[grid]
prune.scope = ["layer", "global"]
train.seed = [0, 1]
"""


def write_sweep(folder: Path, root: str) -> sweeps.SweepSpec:
    base = config.apply_overrides(config.Config(), [
        ("data.root", str(Path(root).resolve())), ("data.train_subset", 5000),
        ("data.validation", 1000), ("train.iterations", 300), ("train.eval_every", 100),
        ("prune.rounds", 2)])
    (folder / "base.toml").write_text(config.dumps(base))
    (folder / "bench.toml").write_text(SWEEP)
    return sweeps.load_spec(folder / "bench.toml")


def run_once(spec: sweeps.SweepSpec, out: Path, executor) -> float:
    runs = sweeps.with_threads(sweeps.expand(spec), executor.threads, spec)
    sweep = sweeps.prepare(spec, runs, out)
    start = time.perf_counter()
    states = executor.run([r.path for r in sweep.runs()])
    took = time.perf_counter() - start
    if set(states.values()) != {store.FINISHED}:
        raise SystemExit(f"a run did not finish: {states}")
    return took


def metrics(folder: Path) -> list[list[dict]]:
    sweep = sweeps.SweepDir(folder)
    return [[{k: v for k, v in row.items() if k != "elapsed_s"} for row in r.metrics()]
            for r in sweep.runs()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data", help="dataset root holding MNIST")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()

    cores = len(allowed_cpus())
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        spec = write_sweep(tmp_path, args.root)
        sweeps.extract_datasets([r.cfg for r in sweeps.expand(spec)])
        times: dict[str, list[float]] = {}
        ray_start: list[float] = []
        same_metrics = True
        for trial in range(args.trials):
            half = max(1, cores // 2)
            setups = [
                (f"1 local worker x {cores} thr", "local1", executors.LocalExecutor(1, cores)),
                (f"2 local workers x {half} thr", "local2", executors.LocalExecutor(2, half))]
            if not args.no_ray:
                setups.append((f"Ray tasks x {half} thr", "ray", executors.RayExecutor(
                    None, max(1, cores // 2), init_kwargs={"num_cpus": cores})))
            for label, slug, executor in setups:
                out = tmp_path / f"{slug}-{trial}"
                if isinstance(executor, executors.RayExecutor):
                    import ray

                    executor.connect()  # start-up, timed on its own
                    ray_start.append(executor.started_s)
                    try:
                        took = run_once(spec, out, executor)
                    finally:
                        ray.shutdown()
                    local = tmp_path / f"local2-{trial}" / "bench"
                    same_metrics &= metrics(out / "bench") == metrics(local)
                else:
                    took = run_once(spec, out, executor)
                times.setdefault(label, []).append(took)
                print(f"trial {trial + 1}: {label}: {took:.1f} s", flush=True)

    print(f"\n{cores} CPU cores; 4 runs of LeNet-300-100 on 5,000 MNIST images, each 7 "
          "segments of 300 iterations; median of the trials:")
    base = statistics.median(next(iter(times.values())))
    for label, values in times.items():
        t = statistics.median(values)
        print(f"  {label:26s} {t:7.1f} s   {base / t:5.2f}x the speed of 1 worker")
    if ray_start:
        print(f"  Ray start-up (ray.init, not included above): {statistics.median(ray_start):.1f}"
              " s")
        print(f"  Ray runs' metrics identical to the local runs': {same_metrics}")


if __name__ == "__main__":
    with recorded("sweep_speed"):
        main()
