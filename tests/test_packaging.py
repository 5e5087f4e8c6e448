"""What a wheel ships, and dependency claims that CI tests (.ci/run installs the oldest ones)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from prunetui import presets
from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
OLDEST = REPO / ".ci" / "oldest-deps.txt"
CLAIMED_EXTRAS = ("figures", "tensorboard")  # ray: tested at its bound by the dev install


def claimed() -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = list(project["dependencies"])
    for extra in CLAIMED_EXTRAS:
        reqs += project["optional-dependencies"][extra]
    return [Requirement(r) for r in reqs]


def oldest_pins() -> dict[str, Version]:
    pins = {}
    for line in OLDEST.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name.lower().replace("_", "-")] = Version(spec.version)
    return pins


def test_dependencies_have_lower_bounds_only_and_ci_pins_each_bound():
    pins = oldest_pins()
    for req in claimed():
        (spec,) = req.specifier  # exactly one specifier: a lower bound, no cap
        assert spec.operator == ">=", str(req)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} is claimed but CI does not test its lower bound"
        assert pins[name] == Version(spec.version), f"{name}: claims {spec}, CI pins {pins[name]}"
    assert set(pins) == {r.name.lower().replace("_", "-") for r in claimed()}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel`` of a copy of the project (a build in place would leave build/ behind)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "prunetui", src / "prunetui",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp / "dist"), str(src)], check=True)
    (found,) = (tmp / "dist").glob("prunetui-*.whl")
    return found


def test_wheel_ships_presets_styles_and_the_command(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    shipped = {Path(n).stem for n in names if n.startswith("prunetui/presets/")
               and n.endswith(".toml")}
    assert shipped == set([p.name for p in presets.list_presets()])
    assert "prunetui/app/app.tcss" in names
    assert "prunetui = prunetui.cli:main" in entry_points
    requires = {line.split(": ", 1)[1] for line in metadata.splitlines()
                if line.startswith("Requires-Dist: ") and "extra ==" not in line}
    assert {str(Requirement(r)) for r in requires} == {
        str(Requirement(r)) for r in PYPROJECT["project"]["dependencies"]}
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


def test_version_names_prunetui_torch_cuda_and_the_device(capsys):
    import torch

    import prunetui
    from prunetui.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"prunetui {prunetui.__version__}" in out
    assert f"torch {torch.__version__}" in out
    assert ("CUDA: available" if torch.cuda.is_available() else "CUDA: not available") in out
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert f"device for train.device = auto: {device}" in out
