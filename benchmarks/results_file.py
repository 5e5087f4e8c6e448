"""Benchmarks write what they print, with how it was measured, into ``docs/results/<name>.md``.

``with recorded("train_speed"):`` around a benchmark's main tees its standard output; at the end
the file gets the date, commit, torch version, CPU model and cores, load average before and after,
and the exact command, then the output verbatim. The docs link these files instead of copying
figures by hand (tests/test_docs.py checks the links).
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"


class _Tee(io.TextIOBase):
    def __init__(self, *streams: io.TextIOBase) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)


def provenance() -> list[str]:
    import torch

    commit = _git("rev-parse", "--short", "HEAD")
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "--untracked=no") else ""
    return [f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            f"- commit: {commit}{dirty}",
            f"- torch {torch.__version__}, Python {platform.python_version()}",
            f"- machine: {_cpu_model()}, {len(os.sched_getaffinity(0))} cores allowed, "
            f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}",
            f"- command: `python {' '.join(sys.argv)}`"]


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _load() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"


@contextlib.contextmanager
def recorded(name: str, variant: str = "") -> Iterator[None]:
    """Tee standard output; on success write it with its provenance to docs/results/NAME.md
    (NAME_VARIANT.md for another protocol of the same benchmark, which keeps its own file)."""
    name = f"{name}_{variant}" if variant else name
    captured = io.StringIO()
    before, header = _load(), provenance()
    real = sys.stdout
    sys.stdout = _Tee(real, captured)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout = real
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = "\n".join([f"# {name}", "", "Written by the benchmark itself; do not edit.", "",
                      *header, f"- load average (1, 5, 15 min): {before} before, {_load()} after",
                      "", "```", captured.getvalue().rstrip(), "```", ""])
    (RESULTS / f"{name}.md").write_text(text, encoding="utf-8")
    print(f"wrote {RESULTS / f'{name}.md'}")
