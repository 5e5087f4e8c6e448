"""facenet-pytorch's MTCNN class, imported without loading ``torch._dynamo``.

Why: facenet-pytorch's detection code imports torchvision (``batched_nms`` and
``transforms.functional``), and importing any part of torchvision runs its package
``__init__``, which imports every torchvision module. One of them, ``torchvision.ops.roi_align``,
starts with ``from torch._dynamo.utils import is_compile_supported``, and that loads all of
``torch._dynamo`` (torch.compile's front end, with sympy and torch.distributed): importing
torchvision took 1.4-1.7 s with it and 0.12-0.14 s without (2 cores, load 3; ``python -X
importtime`` puts 1.8 s of it in torch._dynamo), about as long as importing torch. MTCNN never
calls ``roi_align``, and torch itself loads ``_dynamo`` only on first use.

So torchvision's first import runs with that one import deferred: while ``import torchvision``
runs, ``builtins.__import__`` is wrapped, and only ``torchvision.ops.roi_align``'s import of
``torch._dynamo.utils.is_compile_supported`` is answered differently, by
``_is_compile_supported``: on its first call it imports the real function, puts it in
roi_align's globals and returns its answer. Nothing is added to ``sys.modules``, so other
importers, and other threads, get the real ``torch._dynamo``. If torchvision changes that line,
the hook matches nothing and the import is the normal one (slower, same results). Nothing of
facenet-pytorch is copied or changed: it is imported as shipped, weights included.
tests/test_prepare_startup.py checks that torch._dynamo stays out and that detections and crops
are identical to the normal import's.
"""

from __future__ import annotations

import builtins
import sys
import threading
from types import SimpleNamespace
from typing import Any

DEFERRING_MODULE = "torchvision.ops.roi_align"
DEFERRED = ("torch._dynamo.utils", "is_compile_supported")

_lock = threading.Lock()


def mtcnn_class() -> type:
    """``facenet_pytorch.MTCNN``; on first use torchvision is imported without torch._dynamo
    (unless torchvision or torch._dynamo is already loaded: then there is nothing to save)."""
    with _lock:  # one thread installs the hook; the others wait for the import anyway
        if "torchvision" not in sys.modules and "torch._dynamo" not in sys.modules:
            _import_torchvision_deferring_dynamo()
    from facenet_pytorch import MTCNN

    return MTCNN


def _import_torchvision_deferring_dynamo() -> None:
    import torch  # noqa: F401  (before the hook: torch's own imports need not pass through it)

    original = builtins.__import__

    def deferring_import(name: str, globals: dict[str, Any] | None = None,
                         locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if (level == 0 and (name, *(fromlist or ())) == DEFERRED
                and (globals or {}).get("__name__") == DEFERRING_MODULE):
            return SimpleNamespace(is_compile_supported=_is_compile_supported)
        return original(name, globals, locals, fromlist, level)

    builtins.__import__ = deferring_import
    try:
        import torchvision  # noqa: F401
    finally:
        if builtins.__import__ is deferring_import:
            builtins.__import__ = original


def _is_compile_supported(device_type: Any) -> Any:
    """torchvision's roi_align asks this only on its fallback paths: load dynamo now, once."""
    from torch._dynamo.utils import is_compile_supported

    setattr(sys.modules[DEFERRING_MODULE], DEFERRED[1], is_compile_supported)
    return is_compile_supported(device_type)
