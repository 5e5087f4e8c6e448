"""prunetui: iterative pruning and Lottery Ticket experiments, in the terminal."""

from prunetui.threads import set_wait_policy
from prunetui.version import __version__

# OpenMP reads its wait policy once, when torch loads: a moderate spin count (measured in
# prunetui/threads.py) unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT.
set_wait_policy()



def __getattr__(name: str):
    # prunetui.load_pruned without importing torch at "import prunetui" (the app starts fast).
    if name == "load_pruned":
        from prunetui.export import load_pruned

        return load_pruned
    raise AttributeError(f"module 'prunetui' has no attribute {name!r}")


__all__ = ["__version__", "load_pruned"]
