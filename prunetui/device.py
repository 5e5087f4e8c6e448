"""The torch device a run or a preparation uses, and copies to it that do not stall the GPU."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class DeviceError(RuntimeError):
    """A device name that is not usable here; the message says what to use instead."""


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; any other name must be usable here."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise DeviceError(f"{name!r} is not a torch device ({err}).") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} but no CUDA device is available; use 'auto' or "
                          "'cpu'.")
    return device


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a CPU tensor to ``device`` without waiting for the GPU's queued work (a blocking or
    pageable host-to-GPU copy synchronises the stream); on CPU, ``x`` itself."""
    if device.type != "cuda":
        return x
    return x.pin_memory().to(device, non_blocking=True)
