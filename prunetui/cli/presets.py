"""``prunetui presets``: the presets shipped with prunetui, usable by name anywhere."""

from __future__ import annotations

import argparse

from rich.markup import escape

from prunetui import presets
from prunetui.cli.common import console


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("presets", help="list the shipped presets (use them by name: "
                         "prunetui run quick)",
                         description="Presets ship inside prunetui. Use a name wherever a "
                         "config file is asked for: prunetui run quick --set data.root=...")
    cmd.add_argument("--path", action="store_true", help="also show where each file lies")
    cmd.set_defaults(func=cmd_presets)


def cmd_presets(args: argparse.Namespace) -> int:
    out = console()
    # Two lines a preset rather than a table: descriptions stay readable at 80 columns.
    found = presets.list_presets()
    width = max((len(p.name) for p in found), default=0)
    for p in found:
        kind = "" if p.kind == presets.RUN else f"  [dim]({p.kind}: prunetui sweep {p.name})[/]"
        out.print(f"[bold]{escape(p.name.ljust(width))}[/]  CPU {escape(p.cpu)} · GPU "
                  f"{escape(p.gpu)}{kind}", highlight=False)
        out.print(f"    {escape(p.description)}", highlight=False)
        if args.path:
            out.print(f"    [dim]{escape(str(p.path))}[/]", highlight=False)
    out.print("Use a name wherever a config file goes: prunetui run quick --set "
              "data.root=DIR. GPU times are estimates (not yet measured on a GPU).",
              highlight=False)
    return 0
