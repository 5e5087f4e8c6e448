"""``prunetui --version``: prunetui, Python and torch versions, CUDA, the device a run uses."""

from __future__ import annotations

import argparse
import platform

from prunetui import __version__


def version_report() -> str:
    """What a bug report needs: versions, CUDA, the device ``train.device = "auto"`` picks."""
    import torch

    from prunetui.device import resolve_device
    from prunetui.extras import EXTRAS, available

    if torch.cuda.is_available():
        cuda = (f"available, {torch.cuda.device_count()} device(s), "
                f"torch built for CUDA {torch.version.cuda}")
    else:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
        cuda = f"not available (torch built for {build})"
    device = resolve_device("auto")
    name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    extras = ", ".join(f"{extra} {'yes' if available(extra) else 'no'}" for extra in EXTRAS)
    return "\n".join([
        f"prunetui {__version__} (Python {platform.python_version()})",
        f"torch {torch.__version__}",
        f"CUDA: {cuda}",
        f"device for train.device = auto: {device.type}{name}",
        f"extras installed: {extras}",
    ])


class VersionAction(argparse.Action):
    """``--version``: imports torch only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        kwargs.setdefault("help", "show version information and exit")
        super().__init__(option_strings, dest, nargs=0, **kwargs)  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(version_report())
        parser.exit()
