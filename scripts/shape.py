#!/usr/bin/env python3
"""Measure the deploy flow's shape and print it as a table, each measure with its limit.

    python scripts/shape.py           # the table, and where each broken rule is broken
    python scripts/shape.py --check   # the same; exits 1 with one line per broken rule

The rules: playbooks/deploy.yml stays short (lines, and tasks at any depth of
block/rescue/always, a block and an import_playbook counting as one each); no Jinja
expression in playbooks/ or roles/ spans more than a few lines of its file; few set_fact
tasks; every module in library/ is called by some task of playbooks/ or roles/.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

MAX_DEPLOY_LINES = 250
MAX_DEPLOY_TASKS = 30
MAX_EXPRESSION_LINES = 3
MAX_SET_FACT_TASKS = 15
MAX_UNCALLED_MODULES = 0

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = "playbooks/deploy.yml"
FLOW_DIRS = ("playbooks", "roles")
# Where task lists live (every other YAML file of FLOW_DIRS holds vars, specs or templates).
TASK_GLOBS = (
    "playbooks/*.yml",
    "playbooks/tasks/**/*.yml",
    "roles/*/tasks/**/*.yml",
    "roles/*/handlers/**/*.yml",
)
PLAY_SECTIONS = ("pre_tasks", "tasks", "post_tasks", "handlers")
BLOCK_SECTIONS = ("block", "rescue", "always")
PLAY_KEYS = {"hosts", "import_playbook", "ansible.builtin.import_playbook"}
SET_FACT = {"set_fact", "ansible.builtin.set_fact", "ansible.legacy.set_fact"}
CLOSERS = {"{{": "}}", "{%": "%}"}
OPENER = re.compile(r"\{\{|\{%")
JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
YAML_COMMENT_LINE = re.compile(r"^[ \t]*#.*$", re.MULTILINE)


@dataclass(frozen=True)
class Measure:
    """One measure of the shape: its value, its limit and where it goes over."""

    name: str
    value: int
    limit: int
    where: tuple[str, ...] = ()

    @property
    def broken(self) -> bool:
        return self.value > self.limit

    def complaint(self) -> str:
        places = f" at {', '.join(self.where)}" if self.where else ""
        return f"{self.name}: {self.value}, over the limit of {self.limit}{places}"


# --- tasks, read from the YAML node tree (which keeps line numbers) -------------------------


def mapping_value(node: yaml.Node, key: str) -> yaml.Node | None:
    """The value of KEY in mapping NODE, or None."""
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((value for name, value in node.value if name.value == key), None)


def mapping_keys(node: yaml.Node) -> set[str]:
    if not isinstance(node, yaml.MappingNode):
        return set()
    return {name.value for name, _ in node.value if isinstance(name, yaml.ScalarNode)}


def tasks_in(sequence: yaml.Node | None) -> Iterator[yaml.MappingNode]:
    """Each task of a task list, blocks and what is in their block/rescue/always alike."""
    if not isinstance(sequence, yaml.SequenceNode):
        return
    for task in sequence.value:
        if not isinstance(task, yaml.MappingNode):
            continue
        yield task
        for section in BLOCK_SECTIONS:
            yield from tasks_in(mapping_value(task, section))


def is_playbook(document: yaml.Node) -> bool:
    """Whether DOCUMENT is a list of plays rather than a list of tasks."""
    return isinstance(document, yaml.SequenceNode) and any(
        mapping_keys(item) & PLAY_KEYS for item in document.value
    )


def file_tasks(text: str) -> list[yaml.MappingNode]:
    """The tasks of a playbook (import_playbook entries among them) or of a task file."""
    document = yaml.compose(text, Loader=yaml.SafeLoader)
    if document is None:
        return []
    if not is_playbook(document):
        return list(tasks_in(document))
    found: list[yaml.MappingNode] = []
    for play in document.value:
        if mapping_keys(play) & PLAY_KEYS - {"hosts"}:
            found.append(play)
        for section in PLAY_SECTIONS:
            found.extend(tasks_in(mapping_value(play, section)))
    return sorted(found, key=lambda task: task.start_mark.line)


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def set_fact_lines(text: str) -> list[int]:
    """The lines of the set_fact tasks of a playbook or task file."""
    return [line_of(task) for task in file_tasks(text) if mapping_keys(task) & SET_FACT]


def called_modules(text: str, modules: set[str]) -> set[str]:
    """Those of MODULES that a task of a playbook or task file calls, by short name or FQCN."""
    keys = {key for task in file_tasks(text) for key in mapping_keys(task)}
    return {module for module in modules if module in {key.rsplit(".", 1)[-1] for key in keys}}


# --- Jinja expressions, read from the text as written ---------------------------------------


def find_close(text: str, start: int, closer: str) -> int | None:
    """Where CLOSER ends the expression opened just before START, or None when it never
    does; quoted strings, and for }} nested braces of dict literals, are skipped over."""
    quote = ""
    depth = 0
    index = start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif text.startswith(closer, index) and depth == 0:
            return index
        elif char == "{":
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
        index += 1
    return None


def blank_out(text: str, pattern: re.Pattern[str]) -> str:
    """TEXT with what PATTERN matches emptied, its newlines kept (lines keep their numbers)."""
    return pattern.sub(lambda match: "\n" * match.group().count("\n"), text)


def expression_spans(text: str, is_yaml: bool) -> list[tuple[int, int]]:
    """(first line, lines) of each Jinja expression ({{ }} or {% %}) in TEXT, comments left
    out (Jinja's, and YAML's whole-line ones in a YAML file)."""
    text = blank_out(text, JINJA_COMMENT)
    if is_yaml:
        text = blank_out(text, YAML_COMMENT_LINE)
    spans: list[tuple[int, int]] = []
    index = 0
    while match := OPENER.search(text, index):
        close = find_close(text, match.end(), CLOSERS[match.group()])
        if close is None:
            index = match.end()
            continue
        first = text.count("\n", 0, match.start()) + 1
        spans.append((first, text.count("\n", match.start(), close) + 1))
        index = close + 2
    return spans


# --- the repository --------------------------------------------------------------------------


def task_files(root: Path) -> list[Path]:
    return sorted({path for pattern in TASK_GLOBS for path in root.glob(pattern)})


def flow_files(root: Path) -> list[Path]:
    """Every YAML file and template of playbooks/ and roles/."""
    return sorted(
        path
        for folder in FLOW_DIRS
        for path in (root / folder).rglob("*")
        if path.suffix in (".yml", ".yaml", ".j2")
    )


def relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def measure_deploy(root: Path) -> list[Measure]:
    text = (root / DEPLOY).read_text()
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    tasks = file_tasks(text)
    over_tasks = tasks[MAX_DEPLOY_TASKS:]
    return [
        Measure(f"{DEPLOY} lines", lines, MAX_DEPLOY_LINES, (f"{DEPLOY}:{lines}",)),
        Measure(
            f"{DEPLOY} tasks (any depth)",
            len(tasks),
            MAX_DEPLOY_TASKS,
            tuple(f"{DEPLOY}:{line_of(task)}" for task in over_tasks[:1]),
        ),
    ]


def measure_expressions(root: Path) -> Measure:
    """The longest Jinja expression of playbooks/ and roles/, naming each one over the limit."""
    spans = [
        (f"{relative(root, path)}:{first}", lines)
        for path in flow_files(root)
        for first, lines in expression_spans(path.read_text(), path.suffix != ".j2")
    ]
    return Measure(
        "longest Jinja expression (lines)",
        max((lines for _, lines in spans), default=0),
        MAX_EXPRESSION_LINES,
        tuple(f"{place} ({lines} lines)" for place, lines in spans if lines > MAX_EXPRESSION_LINES),
    )


def measure_set_facts(root: Path) -> Measure:
    places = [
        f"{relative(root, path)}:{line}"
        for path in task_files(root)
        for line in set_fact_lines(path.read_text())
    ]
    return Measure("set_fact tasks", len(places), MAX_SET_FACT_TASKS, tuple(places))


def measure_modules(root: Path) -> Measure:
    modules = {path.stem for path in (root / "library").glob("*.py")}
    called: set[str] = set()
    for path in task_files(root):
        called |= called_modules(path.read_text(), modules)
    uncalled = sorted(modules - called)
    return Measure(
        "modules in library/ no task calls",
        len(uncalled),
        MAX_UNCALLED_MODULES,
        tuple(f"library/{module}.py:1" for module in uncalled),
    )


def measure(root: Path) -> list[Measure]:
    return [
        *measure_deploy(root),
        measure_expressions(root),
        measure_set_facts(root),
        measure_modules(root),
    ]


def table(measures: list[Measure]) -> str:
    width = max(len(item.name) for item in measures)
    rows = [f"{'measure':<{width}}  {'value':>5}  {'limit':>5}  rule"]
    rows += [
        f"{item.name:<{width}}  {item.value:>5}  {item.limit:>5}  "
        f"{'BROKEN' if item.broken else 'ok'}"
        for item in measures
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a rule is broken")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this)")
    args = parser.parse_args(argv)
    measures = measure(args.root.resolve())
    print(table(measures))
    broken = [item for item in measures if item.broken]
    for item in broken:
        print(item.complaint(), file=sys.stderr if args.check else sys.stdout)
    return 1 if args.check and broken else 0


if __name__ == "__main__":
    sys.exit(main())
