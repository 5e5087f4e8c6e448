"""Datasets decoded once into tensors that stay resident on the training device (image
folders and CIFAR larger than ``data.memory_budget_mb`` stream from disk: ``data.stream``).

:func:`load_data` picks the loader for ``data.dataset``; each returns a
:class:`~prunetui.data.tensors.TensorData`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prunetui.data.tensors import DataError, TensorData

if TYPE_CHECKING:
    from prunetui.config import Config

__all__ = ["DataError", "TensorData", "load_data"]


def load_data(cfg: Config) -> TensorData:
    """Decode the configured dataset (on CPU; the caller moves it to the device)."""
    if cfg.data.dataset in ("mnist", "fashion-mnist"):
        from prunetui.data.mnist import load_mnist

        return load_mnist(cfg.data)
    if cfg.data.dataset == "faces":
        from prunetui.data.faces import load_faces

        return load_faces(cfg.data)
    if cfg.data.dataset == "folder":
        from prunetui.data.folder import load_folder

        return load_folder(cfg)
    if cfg.data.dataset in ("cifar10", "cifar100"):
        from prunetui.data.cifar import load_cifar

        return load_cifar(cfg)
    raise DataError(f"Unknown dataset {cfg.data.dataset!r}.")
