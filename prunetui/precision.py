"""Training precision: which float format the forward passes use, and where it is possible.

``train.precision`` asks for one of :data:`PRECISIONS`:

- ``fp32``: plain float32, no autocast at all: bit for bit what prunetui always computed.
- ``bf16``: forward and loss under ``torch.autocast(dtype=bfloat16)`` (matmuls and convolutions
  in bfloat16, weights, gradients and optimizer state stay float32). On a CPU only where torch
  reports bf16 support (oneDNN with AVX512-BF16/AMX or an AVX512 emulation); on CUDA where
  ``torch.cuda.is_bf16_supported()``.
- ``tf32``: float32 tensors, CUDA matmuls in TensorFloat-32. Not on a CPU.

A new run that asks for what the machine cannot do falls back to fp32 with a one-line warning.
The precision used is recorded in the run directory (``runtime.json``); a resume uses the
recorded one, and a machine that cannot do it stops the resume (:class:`Unavailable`) rather
than change the numbers half way.

Nothing here imports torch at module level (``import prunetui`` stays torch-free).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from prunetui.config import PRECISIONS

LABELS = {"fp32": "fp32", "bf16": "bf16 (autocast)", "tf32": "tf32 (CUDA matmuls)"}


class Unavailable(RuntimeError):
    """A resumed run recorded a precision this machine cannot compute."""


@dataclass(frozen=True)
class Precision:
    used: str  # one of PRECISIONS
    requested: str
    device_type: str  # "cpu" | "cuda"
    autocast: str | None = None  # "bfloat16" where forward passes run under autocast
    warning: str = ""  # one line when the request could not be honoured, else ""
    source: str = "config"  # "config" | "recorded" (resume)

    @property
    def label(self) -> str:
        return label(self.used)

    def record(self) -> dict[str, str | None]:
        """Fields for runtime.json."""
        return {"precision": self.used, "precision_requested": self.requested,
                "autocast": self.autocast}


def label(used: str) -> str:
    """``"bf16"`` -> ``"bf16 (autocast)"`` (first lines, Monitor log)."""
    return LABELS.get(used, used)


def cpu_bf16_supported() -> bool:
    """torch's own answer: oneDNN present and able to run bfloat16 on this CPU."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without the query
        return False


def cuda_bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def supported(precision: str, device_type: str) -> bool:
    if precision == "fp32":
        return True
    if precision == "tf32":
        return device_type == "cuda"
    if precision == "bf16":
        return cuda_bf16_supported() if device_type == "cuda" else cpu_bf16_supported()
    return False


def _why_not(precision: str, device_type: str) -> str:
    if precision == "tf32":
        return "tf32 is for CUDA matmuls only"
    where = "this GPU" if device_type == "cuda" else "this CPU"
    return f"{where} has no bf16 support (torch reports none)"


def resolve(requested: str, device_type: str, recorded: str | None = None) -> Precision:
    """The precision a run uses on ``device_type`` ("cpu" or "cuda").

    ``recorded`` (a resume) wins over ``requested``; if this machine cannot compute it,
    :class:`Unavailable` says so. A new run's unsupported request falls back to fp32 with a
    one-line warning."""
    if recorded is not None:
        if recorded not in PRECISIONS or not supported(recorded, device_type):
            why = (_why_not(recorded, device_type) if recorded in PRECISIONS
                   else "an unknown precision")
            raise Unavailable(
                f"This run trained in {recorded} (recorded in runtime.json) and {why}: a resume "
                f"here would change its numbers. Resume it where {recorded} works, or start a "
                "new run with train.precision = \"fp32\".")
        return _made(recorded, requested, device_type, source="recorded")
    if supported(requested, device_type):
        return _made(requested, requested, device_type)
    warning = (f"train.precision = {requested!r} is not possible here "
               f"({_why_not(requested, device_type)}): training in fp32.")
    return _made("fp32", requested, device_type, warning=warning)


def _made(used: str, requested: str, device_type: str, **kw: str) -> Precision:
    return Precision(used, requested, device_type,
                     autocast="bfloat16" if used == "bf16" else None, **kw)


def apply(precision: Precision) -> None:
    """Set the process-wide CUDA matmul mode (TF32 only for tf32); nothing on a CPU."""
    if precision.device_type != "cuda":
        return
    import torch

    torch.backends.cuda.matmul.allow_tf32 = precision.used == "tf32"


def autocast_factory(precision: Precision | None) -> Callable[[], AbstractContextManager]:
    """A function returning the context forward passes run in: autocast for bf16, a no-op
    context (no autocast at all) otherwise."""
    if precision is None or precision.autocast is None:
        return contextlib.nullcontext
    import torch

    dtype = getattr(torch, precision.autocast)
    device_type = precision.device_type
    return lambda: torch.autocast(device_type, dtype=dtype)
