"""The first paint pays for Textual and the Runs screen only: ``prunetui`` with no command skips
the subcommand modules (numpy, PIL), and the run store, sweeps and run summaries are imported
by workers after the first paint, never on the event loop (benchmarks/app_latency.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from prunetui import config, store

REPO = Path(__file__).resolve().parents[2]
# Never needed to start the app (torch and the charts load with the screens that use them).
HEAVY = ("torch", "torchvision", "numpy", "PIL", "scipy", "plotext", "textual_plotext")
# Needed by the Runs screen's scan and actions, which import them in its worker or on use.
DEFERRED = ("prunetui.config", "prunetui.store", "prunetui.sweep", "prunetui.results",
            "prunetui.events", "prunetui.app.rundata", "prunetui.app.runlist",
            "prunetui.app.screens.modals")
SUBCOMMANDS = ("prunetui.cli.prepare", "prunetui.cli.run", "prunetui.cli.check",
               "prunetui.cli.render", "prunetui.data.prepare", "rich.progress")

CLI_TO_APP = f"""
import json, sys
import prunetui.app

def launch_app(models_dir, data_root):  # what the app imports before its first paint
    from prunetui.app.app import PruneApp, screen_class

    PruneApp(models_dir=models_dir, data_root=data_root)
    screen_class("runs")
    print(json.dumps({{"args": [str(models_dir), str(data_root)], "loaded": sorted(
        m for m in {HEAVY + DEFERRED + SUBCOMMANDS!r} if m in sys.modules)}}))
    return 0

prunetui.app.launch_app = launch_app
from prunetui.cli import main
sys.exit(main(["--models", "m", "--data-root", "d"]))
"""

APP_START = f"""
import asyncio, importlib.abc, json, sys, threading

on_loop = []

class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in {DEFERRED!r} and threading.current_thread() is threading.main_thread():
            on_loop.append(name)
        return None  # only watches: the usual finders import it

sys.meta_path.insert(0, Watch())
from prunetui.app.app import PruneApp

async def main():
    app = PruneApp(models_dir=sys.argv[1], data_root="d")
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(300):
            if getattr(app.screen, "summaries", None):
                break
            await pilot.pause(0.1)
        print(json.dumps({{"on_loop": on_loop, "rows": list(app.screen.summaries),
                          "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules),
                          "store": "prunetui.store" in sys.modules}}))

asyncio.run(main())
"""


def run_python(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_prunetui_without_a_command_opens_the_app_without_subcommand_imports():
    out = run_python(CLI_TO_APP)
    assert out["args"] == ["m", "d"]
    assert out["loaded"] == []


def test_the_event_loop_imports_no_store_nor_summaries_while_runs_are_listed(tmp_path):
    models = tmp_path / "models"
    run = store.create_run(models, "finished", config.dumps(config.Config()))
    run.write_status(store.FINISHED)
    out = run_python(APP_START, str(models))
    assert out["rows"] == [str(run.path)]  # the scan ran, and imported them in its worker
    assert out["store"]
    assert out["on_loop"] == []
    assert out["heavy"] == []
