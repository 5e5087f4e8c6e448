"""Fixtures for the app tests: tiny MNIST runs, a tiny folder of real face photos, waiting."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from prunetui import config, store
from tests.conftest import shared_datasets, tiny_overrides

SIZE = (100, 30)


def tiny_config(root: Path, **extra) -> config.Config:
    """One round after the dense one, 20 iterations per training: seconds in all."""
    values = {"train.iterations": 20, "train.eval_every": 10, "prune.rounds": 1}
    values.update(extra)
    return config.apply_overrides(config.Config(), tiny_overrides(root, **values))


def finished_run(models: Path, root: Path) -> store.RunDir:
    """A tiny MNIST run trained to its end in ``models``."""
    from prunetui.experiment import Experiment

    run = store.new_run(tiny_config(root), models, "done")
    assert Experiment(run).execute() == store.FINISHED
    return run


async def listed(pilot, run: store.RunDir):
    """The Runs screen the app opened on, once it lists ``run`` alone."""
    from prunetui.app.screens.runs import RunsScreen

    runs = pilot.app.screen
    assert isinstance(runs, RunsScreen)
    await wait_for(pilot, lambda: list(runs.summaries) == [str(run.path)], 10, "the list")
    return runs


def unforeseen(*args, **kwargs):
    """Stands in for engine code that raises what no handler of the app expects."""
    raise RuntimeError("the kernel said no")


@pytest.fixture
def tiny_toml(tmp_path, mnist_root, monkeypatch) -> Path:
    """A tiny config saved where Setup's Load dialog lists saved configs (./configs)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "configs" / "tiny.toml"
    path.parent.mkdir()
    path.write_text(config.dumps(tiny_config(mnist_root)))
    return path


@pytest.fixture
def models(tmp_path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def faces_src(tmp_path) -> Path:
    """Two people, thirty real LFW photos each (more detection batches than the workers hold
    at once, so a stop lands before the end), and one file that is not an image."""
    lfw = shared_datasets() / "lfw-subset"
    people = sorted(p for p in lfw.iterdir() if p.is_dir())[:2] if lfw.is_dir() else []
    if len(people) < 2:
        pytest.skip(f"LFW photos not found in {lfw}")
    src = tmp_path / "photos"
    for person in people:
        (src / person.name).mkdir(parents=True)
        for photo in sorted(person.glob("*.jpg"))[:30]:
            shutil.copyfile(photo, src / person.name / photo.name)
    (src / people[0].name / "notes.txt").write_text("not a photo\n")
    return src


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 60.0,
                   what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.1)


async def click_button(pilot, selector: str, timeout: float = 10.0) -> None:
    """Click a Button once it takes clicks: enabled, and its 0.2 s press effect over (a
    Button ignores clicks while it shows ``-active``; a loop blocked right after a fast press
    keeps the class past 0.2 s, so a click then would be dropped)."""
    button = pilot.app.screen.query_one(selector)
    await wait_for(pilot, lambda: not button.disabled and not button.has_class("-active"),
                   timeout, f"{selector} to take clicks")
    assert await pilot.click(selector), f"the click missed {selector}"


async def type_text(pilot, text: str) -> None:
    await pilot.press(*text)


async def focus_by_tab(pilot, widget_id: str) -> None:
    """Move focus with tab / shift+tab only, as a user would, until ``widget_id`` has it."""
    screen = pilot.app.screen
    chain = [w.id for w in screen.focus_chain]
    target = chain.index(widget_id)
    current = chain.index(pilot.app.focused.id) if pilot.app.focused in screen.focus_chain else -1
    key = "tab" if target > current else "shift+tab"
    for _ in range(abs(target - current)):
        await pilot.press(key)
    await pilot.pause()
    assert pilot.app.focused.id == widget_id
