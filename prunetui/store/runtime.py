"""``runtime.json``: how a run trained on this machine, written each time it starts or resumes.

A resume reuses the thread count and the precision recorded here (both change float sums); the
rest says where and with what it ran (device, torch, OpenMP settings). Readers take each field
on its own: a missing or mistyped one reads as unknown, never as an error.
"""

import json
from pathlib import Path
from typing import TypedDict

from prunetui.fileio import atomic_write_text

RUNTIME_FILE = "runtime.json"


class RuntimeRecord(TypedDict, total=False):
    threads: int  # CPU threads training used
    source: str  # how they were chosen: "recorded" (resume) | "config" | "environment" | "auto"
    allowed_cores: int
    busy_other_cores: float | None  # measured only when chosen "auto"
    openmp_env: dict[str, str | None]  # the OpenMP / MKL variables as the run saw them
    torch: str  # torch version
    torch_threads: int
    device: str  # "cpu", "cuda", "cuda:1"...
    precision: str  # used: fp32 | bf16 | tf32
    precision_requested: str  # train.precision (bf16 falls back to fp32 where unsupported)
    autocast: str | None  # "bfloat16" where forward passes ran under autocast


def read_runtime(run_path: Path) -> RuntimeRecord:
    """The record ({} when missing or unreadable)."""
    try:
        record = json.loads((run_path / RUNTIME_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}  # type: ignore[return-value]


def write_runtime(run_path: Path, record: RuntimeRecord) -> None:
    atomic_write_text(run_path / RUNTIME_FILE, json.dumps(record, indent=2) + "\n")
