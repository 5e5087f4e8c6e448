"""Take the README's SVG screenshots from real runs (MNIST, real face photos), headless.

    python docs/screenshots/take_screenshots.py [--size 100x30] [--data data]

Needs MNIST in --data (MNIST/raw) and ../shared/datasets/five-celebrity-faces (or
$PRUNETUI_SHARED_DATASETS). Takes a few minutes on 2 CPU cores; writes docs/screenshots/*.svg.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
MANIFEST = "manifest.json"


async def wait(pilot, condition, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("screenshot scenario stalled")
        await pilot.pause(0.2)


async def take(size: tuple[int, int], mnist: Path, faces: Path) -> None:
    from prunetui import config
    from prunetui.app import formspec
    from prunetui.app.app import PruneApp
    from prunetui.app.bindings import screen_bindings

    manifest: dict[str, dict] = {}

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        (root / "MNIST" / "raw").mkdir(parents=True)
        for f in (mnist / "MNIST" / "raw").glob("*.gz"):
            (root / "MNIST" / "raw" / f.name).symlink_to(f.resolve())
        app = PruneApp(models_dir=Path(tmp) / "models", data_root=root, start="data")

        def shot(name: str) -> None:
            app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
            screen = type(app.screen)
            manifest[f"{name}.svg"] = {
                "screen": f"{screen.__module__}:{screen.__qualname__}",
                "bindings": [list(b) for b in screen_bindings(screen)]}
            print("wrote", OUT / f"{name}.svg")

        async with app.run_test(size=size) as pilot:
            data = app.screen
            await pilot.press("f")
            data.query_one("#prep-src").value = str(faces)
            data.query_one("#prep-dst").value = str(root / "celebrities")
            data.query_one("#prep-tree").show(faces.parent)
            await pilot.press("escape", "ctrl+g")
            await wait(pilot, lambda: data.report is not None)
            await pilot.pause(0.5)
            shot("data-prepare")
            await pilot.press("s")
            await pilot.pause(1.0)
            await pilot.press("down", "down")
            await pilot.pause(0.3)
            shot("data")

            await pilot.press("2")
            setup = app.screen
            quick = config.apply_overrides(config.load(REPO / "presets" / "quick.toml"), [
                ("data.root", str(root)), ("train.iterations", 400), ("train.eval_every", 50),
                ("prune.rounds", 4)])
            setup.fill(formspec.values_from_config(quick))
            await pilot.pause(0.5)
            rate = setup.query_one("#f-prune-rate")
            rate.value = "1.5"
            rate.focus()
            await pilot.pause(0.5)
            shot("setup-invalid")
            rate.value = "0.2"
            await pilot.pause(0.5)
            shot("setup")

            await pilot.press("ctrl+l")
            monitor = app.screen
            await wait(pilot, lambda: not monitor.training)
            await pilot.press("2", "ctrl+l")
            await wait(pilot, lambda: monitor.data.current is not None
                       and monitor.data.current[1] >= 3)
            await pilot.pause(1.5)
            shot("monitor")
            await pilot.press("x")
            await wait(pilot, lambda: not monitor.training)

            await pilot.press("4")
            runs = app.screen
            await wait(pilot, lambda: len(runs.summaries) == 2)
            await pilot.pause(0.5)
            shot("runs")
            await pilot.press("down", "space", "up", "c")
            await pilot.pause(1.5)
            shot("compare")
            await pilot.press("escape", "down", "enter")
            await pilot.pause(1.5)
            shot("results")
    # What each picture shows: tests/test_docs.py fails when a screen's bindings change and the
    # pictures are not taken again.
    (OUT / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100x30")
    parser.add_argument("--data", default=str(REPO / "data"), help="dataset root with MNIST")
    args = parser.parse_args()
    shared = Path(os.environ.get("PRUNETUI_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
    width, height = (int(v) for v in args.size.split("x"))
    asyncio.run(take((width, height), Path(args.data), shared / "five-celebrity-faces"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
