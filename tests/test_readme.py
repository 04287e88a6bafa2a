"""The README cannot go stale unnoticed: every repo path it names exists, every `firesmoke …`
line it shows parses with that subcommand's arguments, every `make` target it names exists."""

import re
import shlex
from pathlib import Path

import pytest

from modules.cli import build_parser, command_modules

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
TOP_LEVEL = {p.name for p in REPO.iterdir() if not p.name.startswith(".") or p.name == ".ci"}
NAME = re.compile(r"^[\w.-]+/?$")  # one file or folder name, a folder ending in /


def code_blocks(text):
    return re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)


def inline_spans(text):
    outside = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"`([^`\n]+)`", outside)


def is_repo_path(token):
    """A path inside this repository (not a run output, not a placeholder)."""
    if any(c in token for c in "<>*{}$") or ".." in token or token.startswith(("/", "runs/")):
        return False
    first = token.split("/")[0]
    return first in TOP_LEVEL and (first != token or "." in token or token.endswith("/"))


def layout_paths(text):
    """Paths of the Layout section's tree, rebuilt from its indentation."""
    block = code_blocks(text.split("## Layout", 1)[1])[0]
    parents, found = [], []  # parents: (indent, folder path)
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        names = [c.strip() for c in re.split(r"\s{2,}", line.strip())]
        names = [n for n in names if NAME.match(n) and ("." in n or n.endswith("/"))]
        if not names:
            continue
        while parents and parents[-1][0] >= indent:
            parents.pop()
        base = parents[-1][1] if parents else ""
        found += [base + n for n in names]
        if names[0].endswith("/"):
            parents.append((indent, base + names[0]))
    return found


def named_paths():
    spans = inline_spans(README) + [t for b in code_blocks(README) for t in b.split()]
    tokens = {s.strip("`'\",;:()") for s in spans}
    return sorted({t for t in tokens if is_repo_path(t)} | set(layout_paths(README)))


def firesmoke_lines():
    """Every firesmoke invocation the README shows, as argument lists."""
    lines = [s for s in inline_spans(README) if s.startswith("firesmoke ")]
    for block in code_blocks(README):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0]
            match = re.search(r"(?:^|[\s/])firesmoke (.*)$", line)
            if match:
                lines.append("firesmoke " + match.group(1).strip())
    lines = {line.strip() for line in lines}
    return sorted(line for line in lines if "<" not in line and line != "firesmoke")


def as_arguments(line):
    """`firesmoke x [--json] --stage fp32|qat --jobs N ...` -> the arguments argparse would get:
    optional groups taken, the first of alternatives, a one-letter number placeholder as 1,
    repetition marks dropped."""
    line = re.sub(r"\[([^\[\]|]*)\|[^\[\]]*\]", r"[\1]", line)  # [A | B] -> A
    line = line.replace("[", " ").replace("]", " ")
    words = [w.split("|")[0] for w in shlex.split(line)[1:] if w != "..."]
    return ["1" if re.fullmatch(r"[A-Z]", w) else w for w in words]


def make_targets():
    spans = inline_spans(README) + [line for b in code_blocks(README) for line in b.splitlines()]
    return sorted({m for s in spans for m in re.findall(r"(?:^|\s)make ([a-z][\w-]*)", s)})


def test_readme_names_paths_and_commands_at_all():
    # guards the extraction: an empty list would let every test below pass
    assert len(named_paths()) > 20 and len(firesmoke_lines()) > 5 and len(make_targets()) >= 4


@pytest.mark.parametrize("path", named_paths())
def test_every_repo_path_in_the_readme_exists(path):
    assert (REPO / path).exists(), f"README.md names {path}, which does not exist"


@pytest.mark.parametrize("line", firesmoke_lines())
def test_every_firesmoke_line_parses(line):
    words = as_arguments(line)
    if len(words) == 1 and not words[0].startswith("-"):  # prose naming a subcommand
        assert words[0] in command_modules(), f"README.md names `{line}`: no such subcommand"
        return
    try:
        build_parser().parse_args(words)
    except SystemExit as stop:
        if stop.code:
            pytest.fail(f"README.md shows `{line}`, which firesmoke rejects (exit {stop.code})")


@pytest.mark.parametrize("target", make_targets())
def test_every_make_target_exists(target):
    makefile = (REPO / "Makefile").read_text()
    assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), target


def test_notebooks_table_is_one_table():
    section = README.split("## Notebooks", 1)[1].split("\n## ", 1)[0]
    rows = [i for i, line in enumerate(section.splitlines()) if line.startswith("|")]
    assert rows == list(range(rows[0], rows[-1] + 1)), "a blank line splits the notebooks table"
