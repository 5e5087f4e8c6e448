"""The README and docs/ against the code: a renamed flag, key, preset or binding fails here.

Checked, in the code spans and code blocks of README.md and docs/*.md:
- every ``prunetui <subcommand>`` exists in the CLI parser, and every ``--flag`` after it exists
  for that subcommand (or at the top level before it); every other ``--flag`` exists somewhere
  in the CLI or a benchmark, or is a known flag of another tool;
- every config key (``section.key``, ``[section] key``, TOML blocks, sweep files) exists in the
  Config dataclasses, and the configuration page lists every key;
- every preset named in ``prunetui run NAME`` / ``prunetui sweep NAME`` / ``presets/NAME.toml``
  exists;
- every key in docs/app.md's per-screen tables is bound on that screen, and every binding in
  the code appears in its screen's ``?`` help text;
- every relative link and image resolves (anchors included);
- the README's presets table shows each preset header's ``# cpu:`` time.
No training, no torch.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest

from prunetui import config, presets
from prunetui.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Flags of other tools that the docs show next to prunetui's.
EXTERNAL_FLAGS = {"--no-deps", "--system-site-packages", "--logdir"}
# Keys that Textual's widgets and screens provide (focus moves, list/table selection).
TEXTUAL_KEYS = {"tab", "shift+tab", "ctrl+p"}
# Attributes of the module load_pruned returns (docs/export.md), not config keys.
PYTHON_NAMES = {"model.meta", "model.prepare"}
KEY_NAMES = {"question_mark": "?", "left_square_bracket": "[", "right_square_bracket": "]"}


# --------------------------------------------------------------------------- Markdown parsing
def code_texts(markdown: str) -> list[str]:
    """The fenced code blocks and inline code spans of a Markdown text."""
    fences = [body for lang, body in
              re.findall(r"^```([^\n]*)\n(.*?)^```", markdown, flags=re.S | re.M)
              if lang != "bibtex"]
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.S | re.M)
    # Inline spans may wrap over a line: join lines before looking for them.
    spans = re.findall(r"`([^`]+)`", re.sub(r"\s*\n\s*", " ", prose))
    return fences + spans


def toml_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```", markdown, flags=re.S | re.M)


def doc_texts() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in DOCS}


# --------------------------------------------------------------------------- commands and flags
def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _takes_value(parser: argparse.ArgumentParser, flag: str) -> bool:
    action = parser._option_string_actions[flag]
    return action.nargs != 0


def check_commands(text: str, parser: argparse.ArgumentParser) -> list[str]:
    """Problems with the ``prunetui ...`` command lines in ``text`` (code, not prose)."""
    problems = []
    text = re.sub(r"(^|\s)#.*$", "", text, flags=re.M)  # shell comments
    for match in re.finditer(r"(?<![\w.-])prunetui[ \t]+([^\n#`|;&>]*)", text):
        tokens = [t.strip("[]()'\",") for t in match.group(1).split()]
        current, name, chose_sub = parser, "prunetui", False
        skip = False
        for token in tokens:
            if skip:
                skip = False
                continue
            if not token or token in ("...", "or"):
                continue
            if token.startswith("--"):
                flag = token.split("=")[0]
                if flag not in current._option_string_actions:
                    problems.append(f"{name} has no option {flag} (in: prunetui {match.group(1)})")
                    continue
                skip = "=" not in token and _takes_value(current, flag)
                continue
            subs = _subparsers(current)
            if subs and not chose_sub:
                if token not in subs:
                    problems.append(f"{name} has no subcommand {token!r} "
                                    f"(in: prunetui {match.group(1).strip()})")
                    break
                current, name = subs[token], f"{name} {token}"
                chose_sub = not _subparsers(current)
        # the preset named right after run / sweep
        if len(tokens) >= 2 and tokens[0] in ("run", "sweep"):
            arg = tokens[1]
            if re.fullmatch(r"[a-z][a-z0-9-]*", arg) and arg not in preset_names():
                problems.append(f"prunetui {tokens[0]} {arg}: no preset named {arg!r}")
    return problems


def all_flags(parser: argparse.ArgumentParser) -> set[str]:
    flags = set(parser._option_string_actions)
    for sub in _subparsers(parser).values():
        flags |= all_flags(sub)
    return flags


def benchmark_flags() -> set[str]:
    flags = set()
    for path in (ROOT / "benchmarks").glob("*.py"):
        flags |= set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", path.read_text("utf-8")))
    return flags


def check_loose_flags(text: str, known: set[str]) -> list[str]:
    return [f"unknown flag {flag}" for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", text)
            if flag not in known]


def preset_names() -> set[str]:
    return {p.name for p in presets.list_presets()}


# --------------------------------------------------------------------------- config keys
def config_fields() -> dict[str, set[str]]:
    return {name: {f.name for f in dataclasses.fields(cls)}
            for name, cls in config.SECTIONS.items()}


def check_dotted_key(key: str, fields: dict[str, set[str]]) -> list[str]:
    section, _, name = key.partition(".")
    if section in fields and name not in fields[section]:
        return [f"no config key {key}"]
    return []


def check_config_keys(markdown: str, fields: dict[str, set[str]]) -> list[str]:
    problems = []
    sections = "|".join(fields)
    for text in code_texts(markdown):
        for key in re.findall(rf"--set\s+'?((?:{sections})\.\w+)", text):
            problems += check_dotted_key(key, fields)
        whole = re.fullmatch(rf"((?:{sections})\.\w+)(\s*=.*)?", text.strip())
        if whole and whole.group(1) not in PYTHON_NAMES:
            problems += check_dotted_key(whole.group(1), fields)
        bracket = re.fullmatch(r"\[(\w+)\]\s+(\w+)(\s*=.*)?", text.strip())
        if bracket:
            problems += check_dotted_key(f"{bracket.group(1)}.{bracket.group(2)}", fields)
    for block in toml_blocks(markdown):
        section = None
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            header = re.fullmatch(r"\[\[?(\w+)\]\]?", line)
            if header:
                section = header.group(1)
                if section not in fields and section not in ("set", "grid", "variants"):
                    problems.append(f"unknown config section [{section}]")
                continue
            key = re.match(r"([\w.]+)\s*=", line)
            if not key or section is None:
                continue
            if section in fields:
                problems += check_dotted_key(f"{section}.{key.group(1)}", fields)
            elif "." in key.group(1):
                problems += check_dotted_key(key.group(1), fields)
    return problems


# --------------------------------------------------------------------------- key bindings
def binding_keys(bindings) -> set[str]:
    keys = set()
    for b in bindings:
        key = b.key if hasattr(b, "key") else b[0]
        for k in key.split(","):
            keys.add(KEY_NAMES.get(k.strip(), k.strip()))
    return keys


def screen_classes() -> dict[str, type]:
    from prunetui.app import app as app_module
    from prunetui.app.screens.base import AppScreen
    from prunetui.app.screens.footprint import FootprintScreen
    from prunetui.app.screens.results import ResultsScreen
    from prunetui.app.screens.sweeps import SweepScreen

    return {"Everywhere": app_module.PruneApp, "Base": AppScreen,
            "Data": app_module.screen_class("data"), "Setup": app_module.screen_class("setup"),
            "Monitor": app_module.screen_class("monitor"),
            "Runs": app_module.screen_class("runs"), "Results": ResultsScreen,
            "Sweep": SweepScreen, "Size and speed": FootprintScreen}


def documented_keys(markdown: str) -> dict[str, set[str]]:
    """Per ``## <screen>`` heading of docs/app.md: the keys in its tables' first column."""
    out: dict[str, set[str]] = {}
    for part in re.split(r"^## ", markdown, flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        title = re.sub(r"\s*\(\d\)$", "", heading.strip())
        for row in re.findall(r"^\|([^|\n]*)\|", body, flags=re.M):
            out.setdefault(title, set()).update(re.findall(r"`([^`]+)`", row))
    return out


def screen_keys(title: str) -> set[str]:
    from prunetui.app.widgets.folders import FolderTree

    classes = screen_classes()
    keys = binding_keys(classes[title].BINDINGS)
    if title == "Everywhere":
        keys |= binding_keys(classes["Base"].BINDINGS) | TEXTUAL_KEYS
    if title == "Data":
        keys |= binding_keys(FolderTree.BINDINGS)
    if title == "Runs":
        keys.add("enter")  # the table's row selection opens a run
    if title == "Setup":
        keys |= {"enter", "space"}  # lists and scheme toggles of the form
    return keys


def check_documented_keys(markdown: str) -> list[str]:
    problems = []
    classes = screen_classes()
    for title, keys in documented_keys(markdown).items():
        if title not in classes:
            continue
        for key in sorted(keys - screen_keys(title)):
            problems.append(f"docs/app.md {title}: `{key}` is not bound on that screen")
    return problems


def help_keys(text: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", text))


# --------------------------------------------------------------------------- links
def slug(heading: str) -> str:
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text("utf-8"), flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def check_links(path: Path, markdown: str) -> list[str]:
    problems = []
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", prose)
    targets += re.findall(r"<img[^>]+src=\"([^\"]+)\"", prose)
    for target in targets:
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            problems.append(f"{path.name}: link {target} does not resolve")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{path.name}: link {target}: no heading #{anchor}")
    return problems


# --------------------------------------------------------------------------- tests
def test_commands_and_flags_exist():
    parser = build_parser()
    problems = [f"{name}: {p}" for name, text in doc_texts().items()
                for code in code_texts(text) for p in check_commands(code, parser)]
    assert not problems, "\n".join(problems)


def test_every_flag_named_anywhere_exists():
    known = all_flags(build_parser()) | benchmark_flags() | EXTERNAL_FLAGS
    problems = [f"{name}: {p}" for name, text in doc_texts().items()
                for code in code_texts(text) for p in check_loose_flags(code, known)]
    assert not problems, "\n".join(problems)


def test_config_keys_exist():
    fields = config_fields()
    problems = [f"{name}: {p}" for name, text in doc_texts().items()
                for p in check_config_keys(text, fields)]
    assert not problems, "\n".join(problems)


def test_configuration_page_lists_every_key():
    block = toml_blocks((ROOT / "docs" / "configuration.md").read_text("utf-8"))[0]
    listed, section = set(), None
    for line in block.splitlines():
        header = re.match(r"\[(\w+)\]", line)
        if header:
            section = header.group(1)
        elif (key := re.match(r"(\w+)\s*=", line)) and section:
            listed.add(f"{section}.{key.group(1)}")
    every = {f"{s}.{k}" for s, keys in config_fields().items() for k in keys}
    assert every - listed == set(), f"keys missing from docs/configuration.md: {every - listed}"


def test_config_defaults_in_docs_match_the_code():
    block = toml_blocks((ROOT / "docs" / "configuration.md").read_text("utf-8"))[0]
    import tomllib

    documented = tomllib.loads(block)
    assert config.from_dict(documented) == config.Config()


def test_preset_paths_exist():
    names = preset_names()
    problems = [f"{name}: presets/{p}.toml" for name, text in doc_texts().items()
                for p in re.findall(r"presets/([\w-]+)\.toml", text) if p not in names]
    assert not problems, "\n".join(problems)


def test_documented_keys_are_bound():
    problems = check_documented_keys((ROOT / "docs" / "app.md").read_text("utf-8"))
    assert not problems, "\n".join(problems)


def test_every_screen_is_documented_in_app_page():
    documented = documented_keys((ROOT / "docs" / "app.md").read_text("utf-8"))
    for title in screen_classes():
        if title == "Base":
            continue
        assert title in documented, f"docs/app.md has no '## {title}' section with its keys"
        missing = binding_keys(screen_classes()[title].BINDINGS) - documented[title]
        assert not missing, f"docs/app.md {title} leaves out {missing}"


def test_every_binding_is_in_its_screens_help():
    from textual.screen import ModalScreen

    from prunetui.app.screens.modals import GLOBAL_HELP
    from prunetui.app.widgets.folders import FolderTree

    classes = screen_classes()
    global_help = help_keys(GLOBAL_HELP)
    problems = []
    for title in ("Everywhere", "Base"):
        problems += [f"GLOBAL_HELP lacks `{k}` ({title})"
                     for k in binding_keys(classes[title].BINDINGS) - global_help]
    for title, cls in classes.items():
        if title in ("Everywhere", "Base"):
            continue
        assert cls.HELP, f"{cls.__name__} has bindings but no HELP for `?`"
        own = binding_keys(cls.__dict__.get("BINDINGS", []))
        if title == "Data":
            own |= binding_keys(FolderTree.BINDINGS)
        problems += [f"{cls.__name__}.HELP lacks `{k}`" for k in own - help_keys(cls.HELP)]
    # Every non-modal screen class with bindings is one of the screens above; modal dialogs
    # (confirm, help, export, save/load, figure) show their keys on their buttons or as escape.
    covered = set(classes.values())
    package = importlib.import_module("prunetui.app.screens")
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"prunetui.app.screens.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (cls.__module__ == module.__name__ and "BINDINGS" in cls.__dict__
                    and not issubclass(cls, ModalScreen) and cls not in covered):
                problems.append(f"{cls.__name__} has bindings but is not checked here")
    assert not problems, "\n".join(problems)


def test_links_and_images_resolve():
    problems = [p for path in DOCS for p in check_links(path, path.read_text("utf-8"))]
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_linked_from_the_index():
    index = (ROOT / "docs" / "index.md").read_text("utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        if page.name != "index.md":
            assert f"({page.name})" in index, f"docs/index.md does not link {page.name}"


def unnamed_modules(code_map: str) -> list[str]:
    """The engine's modules and packages (those of prunetui/ and of its engine packages)
    that the code map does not name as `name.py` or `name/`."""
    package = ROOT / "prunetui"
    described = ("", "config", "store", "integrity", "structure", "data", "nets", "sweep")
    missing = []
    for sub in described:
        for module in pkgutil.iter_modules([str(package / sub)]):
            name = f"{module.name}/" if module.ispkg else f"{module.name}.py"
            if module.name != "__main__" and f"`{name}`" not in code_map:
                missing.append(f"{sub}/{name}" if sub else name)
    return missing


def test_the_code_map_names_every_module():
    code_map = (ROOT / "docs" / "architecture.md").read_text("utf-8")
    assert not unnamed_modules(code_map), (
        f"docs/architecture.md does not name {unnamed_modules(code_map)}")
    assert "training.py" in unnamed_modules(code_map.replace("`training.py`", "training"))


def presets_table() -> dict[str, list[str]]:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Presets", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`([\w-]+)`", cells[0])
        if name:
            rows[name.group(1)] = cells
    return rows


def test_presets_table_matches_the_preset_headers():
    rows = presets_table()
    shipped = {p.name: p for p in presets.list_presets()}
    assert set(rows) == set(shipped), "the README's presets table and the shipped presets differ"
    for name, preset in shipped.items():
        assert rows[name][2] == preset.cpu, (
            f"{name}: README says CPU {rows[name][2]!r}, its header says {preset.cpu!r}")
        assert rows[name][3] == preset.gpu, (name, rows[name][3], preset.gpu)


def test_readme_stays_short():
    assert len((ROOT / "README.md").read_text("utf-8").splitlines()) <= 250


# --------------------------------------------------------------------------- drift is caught
def _renamed(parser: argparse.ArgumentParser, sub: str, old: str, new: str):
    """A copy of the parser where ``prunetui sub``'s ``old`` flag is called ``new``."""
    parser = copy.deepcopy(parser)
    subparser = _subparsers(parser)[sub]
    action = subparser._option_string_actions.pop(old)
    action.option_strings = [new]
    subparser._option_string_actions[new] = action
    return parser


def test_checker_reports_an_unknown_flag():
    problems = check_commands("prunetui run quick --no-such-flag", build_parser())
    assert problems and "--no-such-flag" in problems[0]


def test_checker_fails_when_a_flag_is_renamed():
    codes = [code for text in doc_texts().values() for code in code_texts(text)]
    assert not [p for code in codes for p in check_commands(code, build_parser())]
    # Rename `prunetui run --detach` in the parser: the docs that show it now fail.
    parser = _renamed(build_parser(), "run", "--detach", "--background")
    problems = [p for code in codes for p in check_commands(code, parser)]
    assert any("prunetui run has no option --detach" in p for p in problems), problems


@pytest.mark.parametrize("text, expected", [
    ("prunetui lanch quick", "no subcommand 'lanch'"),
    ("prunetui run no-such-preset", "no preset named"),
    ("prunetui report RUN --figur x.png", "--figur"),
])
def test_checker_reports_other_command_drift(text, expected):
    assert any(expected in p for p in check_commands(text, build_parser()))


def test_key_checker_reports_drift():
    fields = config_fields()
    assert check_config_keys("`train.thread = 2`", fields) == ["no config key train.thread"]
    assert check_config_keys("```toml\n[prune]\nrates = 0.2\n```\n", fields)
    bad_app_page = "## Runs (4)\n\n| key | does |\n|---|---|\n| `x` | explode |\n"
    assert check_documented_keys(bad_app_page) == [
        "docs/app.md Runs: `x` is not bound on that screen"]


def test_link_checker_reports_drift():
    assert check_links(ROOT / "README.md", "[gone](docs/no-such-page.md)")
    assert check_links(ROOT / "README.md", "![img](docs/screenshots/none.svg)")
    assert check_links(ROOT / "README.md", "[x](docs/app.md#no-such-heading)")


# --- screenshots ------------------------------------------------------------------------------

SHOTS = ROOT / "docs" / "screenshots"


def stale_screenshots(manifest: dict[str, dict]) -> list[str]:
    """Screenshots whose screen's bindings changed since they were taken (or never recorded)."""
    from prunetui.app.bindings import screen_bindings

    stale = [f"{p.name}: not in manifest.json" for p in sorted(SHOTS.glob("*.svg"))
             if p.name not in manifest]
    for name, entry in sorted(manifest.items()):
        module, qualname = entry["screen"].split(":")
        screen = getattr(importlib.import_module(module), qualname)
        if [list(b) for b in screen_bindings(screen)] != entry["bindings"]:
            stale.append(f"{name}: {qualname}'s bindings changed since it was taken")
    return stale


def test_screenshots_are_not_older_than_the_bindings_they_show():
    manifest = json.loads((SHOTS / "manifest.json").read_text(encoding="utf-8"))
    assert not stale_screenshots(manifest), (
        "take them again: python docs/screenshots/take_screenshots.py\n"
        + "\n".join(stale_screenshots(manifest)))


def test_a_renamed_binding_makes_its_screenshot_stale():
    manifest = json.loads((SHOTS / "manifest.json").read_text(encoding="utf-8"))
    name = next(iter(manifest))
    changed = {**manifest, name: {**manifest[name], "bindings": [["q", "quit", "Quit"]]}}
    assert stale_screenshots(changed) == [f"{name}: "
                                          f"{manifest[name]['screen'].split(':')[1]}'s "
                                          "bindings changed since it was taken"]


# --- benchmark results ------------------------------------------------------------------------

NOT_BENCHMARKS = {"results_file", "gpu_check"}  # the writer itself; the GPU check prints PASS/FAIL


def test_every_benchmark_writes_its_results_file_and_the_docs_link_them():
    """Figures come from files the benchmarks write (docs/results/<name>.md, with date, commit,
    torch, machine and command), not copied by hand: each benchmark records its output, and
    performance.md links every results file there is."""
    performance = (ROOT / "docs" / "performance.md").read_text("utf-8")
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        if path.stem in NOT_BENCHMARKS:
            continue
        assert f'recorded("{path.stem}"' in path.read_text("utf-8"), path.name
    for result in sorted((ROOT / "docs" / "results").glob("*.md")):
        assert f"(results/{result.name})" in performance, f"performance.md: link {result.name}"
        text = result.read_text("utf-8")
        for field in ("- date:", "- commit:", "- torch", "- machine:", "- command:"):
            assert field in text, f"{result.name} lacks {field}"


def test_run_directory_page_names_exactly_the_keys_of_a_metric_row():
    """docs/run-directory.md lists a metrics.jsonl row's keys; MetricRow declares them."""
    import typing

    from prunetui.store import MetricRow

    text = (ROOT / "docs" / "run-directory.md").read_text("utf-8")
    listed = text.split("one JSON object per evaluation:", 1)[1].split("sparsity.jsonl", 1)[0]
    assert {word.strip(",.") for word in listed.split()} == set(typing.get_type_hints(MetricRow))
