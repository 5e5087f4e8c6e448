"""App latency: time to first paint, and event-loop lag while a run trains in the app.

    python benchmarks/app_latency.py [--data-root data] [--seconds 15] [--repeats 5]

1. First paint: wall time from just before a new Python process is started to the first
   screen (Runs) being rendered, headless at 80x24, and then the time to show Setup (the
   largest screen, built on first use). Medians of --repeats.
2. Event-loop lag: the app runs headless at 80x24 on the Monitor while a run trains in its
   worker thread (MNIST LeNet, an evaluation every 20 iterations, so events, store points and
   chart redraws stream all the time). A callback scheduled every 10 ms records how late it
   runs; p50 / p99 / max over --seconds of training.

Targets: first paint < 0.5 s, lag p99 < 50 ms. Figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_PAINT_TARGET_S = 0.5
LAG_P99_TARGET_MS = 50.0
TICK_S = 0.010

CHILD = """
import sys, time
from prunetui.app.app import PruneApp

class Bench(PruneApp):
    async def on_mount(self):
        await super().on_mount()
        self.call_after_refresh(self.painted)

    async def painted(self):
        self.first = time.time()
        await self.switch_mode("setup")  # the largest screen, composed on first use
        self.call_after_refresh(self.setup_painted)

    def setup_painted(self):
        with open(sys.argv[1], "w") as fh:
            fh.write(f"{self.first!r} {time.time() - self.first!r}")
        self.exit()

Bench(models_dir=sys.argv[2], data_root="data").run(headless=True, size=(80, 24))
"""


def first_paint(repeats: int) -> tuple[list[float], list[float]]:
    times, setups = [], []
    with tempfile.TemporaryDirectory() as tmp:
        stamp = Path(tmp) / "painted"
        for _ in range(repeats):
            stamp.unlink(missing_ok=True)
            start = time.time()
            subprocess.run([sys.executable, "-c", CHILD, str(stamp), str(Path(tmp) / "m")],
                           cwd=REPO, check=True, stdout=subprocess.DEVNULL)
            painted, setup = (float(v) for v in stamp.read_text().split())
            times.append(painted - start)
            setups.append(setup)
    return times, setups


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def loop_lag(data_root: Path, seconds: float) -> dict[str, float]:
    from prunetui import config
    from prunetui.app.app import PruneApp
    from prunetui.app.screens.monitor import MonitorScreen
    from prunetui.app.widgets.charts import Chart

    cfg = config.apply_overrides(config.load(REPO / "presets" / "quick.toml"), [
        ("data.root", str(data_root)), ("train.eval_every", 20), ("train.iterations", 1000),
        ("prune.rounds", 3)])
    with tempfile.TemporaryDirectory() as tmp:
        app = PruneApp(models_dir=Path(tmp) / "models", data_root=data_root, start="setup")
        async with app.run_test(size=(80, 24)) as pilot:
            await app.launch(cfg)
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            deadline = time.monotonic() + 120
            while monitor.data is None or monitor.data.evaluations == 0:
                if time.monotonic() > deadline or not monitor.training:
                    raise SystemExit("the run did not start training")
                await pilot.pause(0.1)
            events = [0]
            original = monitor.on_engine_event

            def counting(message):
                events[0] += 1
                original(message)

            monitor.on_engine_event = counting
            loop = asyncio.get_running_loop()
            lags: list[float] = []
            done = asyncio.Event()
            end = time.monotonic() + seconds
            builds = sum(c.builds for c in monitor.query(Chart))
            evaluations = monitor.data.evaluations

            def tick(expected: float) -> None:
                now = time.monotonic()
                lags.append(now - expected)
                if now >= end or not monitor.training:
                    done.set()
                    return
                loop.call_at(now + TICK_S, tick, now + TICK_S)

            first = time.monotonic() + TICK_S
            loop.call_at(first, tick, first)
            await done.wait()
            measured = seconds - max(0.0, end - time.monotonic())
            result = {
                "p50_ms": 1000 * percentile(lags, 0.50),
                "p99_ms": 1000 * percentile(lags, 0.99),
                "max_ms": 1000 * max(lags),
                "samples": len(lags),
                "seconds": measured,
                "evaluations": monitor.data.evaluations - evaluations,
                "chart_builds": sum(c.builds for c in monitor.query(Chart)) - builds,
                "still_training": monitor.training,
            }
            monitor.request_stop()
            while monitor.training:
                await pilot.pause(0.1)
            return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(REPO / "data"),
                        help="dataset root holding MNIST/raw (default: ./data)")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    paints, setups = first_paint(args.repeats)
    paint = statistics.median(paints)
    print(f"first paint (process start -> first screen, Runs, rendered; 80x24, headless): "
          f"median {paint:.3f} s over {len(paints)} runs (min {min(paints):.3f}, max "
          f"{max(paints):.3f}); {paint / FIRST_PAINT_TARGET_S:.2f}x the "
          f"{FIRST_PAINT_TARGET_S} s target")
    print(f"then 2 -> Setup (its ~30-field form composed on first use) rendered: median "
          f"{statistics.median(setups):.3f} s")

    lag = asyncio.run(loop_lag(Path(args.data_root), args.seconds))
    print(f"event-loop lag while training in the app ({lag['seconds']:.1f} s, "
          f"{lag['samples']} ticks of 10 ms, {lag['evaluations']} evaluations, "
          f"{lag['chart_builds']} chart redraws): p50 {lag['p50_ms']:.1f} ms, "
          f"p99 {lag['p99_ms']:.1f} ms ({lag['p99_ms'] / LAG_P99_TARGET_MS:.2f}x the "
          f"{LAG_P99_TARGET_MS:.0f} ms target), max {lag['max_ms']:.1f} ms")
    print(f"machine: {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
