"""The terminal app. ``prunetui`` with no command calls :func:`launch_app`.

Importing this package is cheap: the Textual app itself is imported when the app starts, and
nothing imports torch until a worker needs it.
"""

from __future__ import annotations

from pathlib import Path


def launch_app(models_dir: str | Path = "models", data_root: str | Path = "data") -> int:
    """Run the app in this terminal; returns the process exit code."""
    from prunetui.app.app import PruneApp

    app = PruneApp(models_dir=models_dir, data_root=data_root)
    app.run()
    if app.hangup_timer is not None:
        app.hangup_timer.cancel()
    return app.return_code or 0


__all__ = ["launch_app"]
