"""Optional extras (``pip install 'prunetui[figures,tensorboard]'``): check before any work.

A feature that needs an extra calls :func:`require` first, so a missing package gives one
clear message saying how to install it instead of an ImportError half-way through a run.
"""

from __future__ import annotations

import importlib.util

EXTRAS = {"figures": "matplotlib", "tensorboard": "tensorboard", "ray": "ray"}


class MissingExtra(RuntimeError):
    """An optional package is not installed; ``str()`` says how to install it."""


def available(extra: str) -> bool:
    return importlib.util.find_spec(EXTRAS[extra]) is not None


def require(extra: str, feature: str) -> None:
    if not available(extra):
        package = EXTRAS[extra]
        raise MissingExtra(
            f"{feature} needs the optional package {package}, which is not installed. Install "
            f"it with: pip install 'prunetui[{extra}]' (with pipx: pipx inject prunetui "
            f"{package}).")
