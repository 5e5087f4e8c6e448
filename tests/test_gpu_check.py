"""benchmarks/gpu_check.py without CUDA: it says so and exits 0 having measured nothing (the
checks themselves need a GPU; this machine has none)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: run the check")
def test_gpu_check_without_cuda_says_so_and_exits_0(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"),
                           "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "No CUDA device here: nothing measured" in done.stdout
    assert not any(tmp_path.iterdir())  # nothing ran
