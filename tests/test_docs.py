"""The commands the README and the Portuguese guide show are commands seqlab accepts.

Every ``seqlab ...`` / ``python -m seqlab ...`` line of a fenced code block in ``README.md`` and
``docs/guia.md`` is parsed by the real argument parser (nothing runs), and every shipped config
it trains is loaded with the overrides written on that line, so a renamed option, subcommand,
config file or config key makes this test fail and names the document and line.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from seqlab.cli import build_parser
from seqlab.config import load_config

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ("README.md", "docs/guia.md")
PREFIXES = (["python", "-m", "seqlab"], ["seqlab"])


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each line inside fenced code blocks, backslash continuations joined."""
    out, inside, pending, start = [], False, "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("```"):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    return out


def _commands(text: str) -> list[list[str]]:
    """The seqlab argument lists of one shell line (``a && b``, ``x | seqlab ...``), redirections dropped."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return []
    commands, current = [], []
    for word in words + ["&&"]:
        if word in ("&&", "|", ";"):
            commands.append(current)
            current = []
        else:
            current.append(word)
    found = []
    for words in commands:
        for prefix in PREFIXES:
            if words[:len(prefix)] == prefix:
                argv = words[len(prefix):]
                if "<" in argv:
                    argv = argv[:argv.index("<")]
                found.append(argv)
                break
    return found


def _documented() -> list[tuple[str, list[str]]]:
    cases = []
    for doc in DOCUMENTS:
        for number, text in _code_lines(ROOT / doc):
            for argv in _commands(text):
                if argv and not any(a.isupper() and a.isalpha() and len(a) > 2 for a in argv):  # CONFIG, RUN
                    cases.append((f"{doc}:{number}", argv))
    return cases


CASES = _documented()


def test_the_documents_show_commands_of_every_kind():
    subcommands = {argv[0] for _, argv in CASES}
    assert {"train", "translate", "evaluate", "chat", "generate", "serve", "study", "embed", "classify",
            "export"} <= subcommands, subcommands


@pytest.mark.parametrize("where, argv", CASES, ids=[where for where, _ in CASES])
def test_a_documented_command_parses_and_its_config_loads(where, argv, monkeypatch):
    monkeypatch.chdir(ROOT)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        pytest.fail(f"{where}: `seqlab {' '.join(argv)}` is refused by the parser (exit {stop.code})")
    config = getattr(args, "config", None)
    if config and config.startswith("configs/") and not getattr(args, "resume", None):
        assert (ROOT / config).is_file(), f"{where}: no such config {config}"
        load_config(ROOT / config, list(getattr(args, "overrides", []) or []))
