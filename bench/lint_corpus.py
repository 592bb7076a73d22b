"""Benchmark: the project's lint vs squawk alone, on the examples of docs/lint-rules.md.

    python bench/lint_corpus.py [--baseline REV] [--out FILE.json]

Every example of the document (tests/lint_rules_doc.py reads them) is written out as
0500_example.sql, with its earlier files beside it, and checked twice:

- the project's lint: `lint.lint_results`, what `python -m migrator lint` runs (its rules
  and squawk, each squawk finding of a concern a project rule judged reported once);
- squawk alone: `lint.run_squawk`, squawk with migrations/squawk.toml and the same
  --assume-in-transaction / --no-assume-in-transaction choice the lint makes from the
  header, every finding counted.

A tool refuses an example when it reports any finding. The document says which examples
are unsafe (Refused) and which are safe (Accepted); a miss is an unsafe one accepted, a
false alarm a safe one refused. It prints a markdown table and each miss and false alarm,
and writes every verdict to a JSON file. The exit code is non-zero only when the
benchmark itself could not run (squawk missing or failing, a malformed document).

The document also gives each example the class it must get (online or offline); the
class accuracy is the share of examples the classifier (`lint.classify`, through
`lint_results`) gives that class. With --baseline REV the classifier of the commit REV
(its migrations/migrator, taken with `git archive`) classifies the same examples in the
same run, side by side. Squawk has no classes.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import (
    MIGRATIONS,
    ROOT,
    BenchError,
    command_line,
    default_out,
    host_info,
    note,
    write_results,
)

from tests.lint_rules_doc import DOC, REFUSED, Corpus, CorpusError, Example, load, write

sys.path.insert(0, str(MIGRATIONS))

from migrator import lint
from migrator.files import load_migration

OURS, SQUAWK = "migrator lint", "squawk alone"


@dataclass(frozen=True)
class Verdict:
    """One tool's word on one example: the rules of its findings, duplicates kept."""

    tool: str
    section: str
    line: int
    expected: str
    rules: tuple[str, ...]

    @property
    def refused(self) -> bool:
        return bool(self.rules)

    @property
    def right(self) -> bool:
        return self.refused == (self.expected == REFUSED)


@dataclass(frozen=True)
class Row:
    tool: str
    unsafe: int
    refused_correctly: int
    missed: int
    safe: int
    accepted_correctly: int
    false_alarms: int
    findings: int


def project_rules(path: Path) -> list[str]:
    (result,) = lint.lint_results([load_migration(path)])
    return [finding.rule for finding in result.findings]


def squawk_rules(squawk: str) -> Callable[[Path], list[str]]:
    def rules(path: Path) -> list[str]:
        return [f"squawk/{hit.rule}" for hit in lint.run_squawk(squawk, [load_migration(path)])]

    return rules


def judge(tool: str, example: Example, check: Callable[[Path], list[str]]) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="lint-corpus-") as directory:
        rules = check(write(example, Path(directory)))
    return Verdict(tool, example.section, example.line, example.expected, tuple(rules))


@dataclass(frozen=True)
class ClassVerdict:
    """One classifier's class for one example, and the class the document gives it."""

    classifier: str
    section: str
    line: int
    expected: str
    got: str

    @property
    def right(self) -> bool:
        return self.got == self.expected


def project_class(path: Path) -> str:
    (result,) = lint.lint_results([load_migration(path)])
    return result.classification.kind


# Run by the baseline's own Python, with its migrations/ first on the path: the class of
# each example folder's 0500_example.sql, its earlier files classified before it.
BASELINE_CLASSIFY = """
import json, sys
from pathlib import Path
from migrator import lint
from migrator.files import load_migration
kinds = {}
for folder in sys.argv[1:]:
    schema = lint.Schema()
    for path in sorted(Path(folder).glob("*.sql")):
        kind = lint.classify(load_migration(path), schema).kind
    kinds[folder] = kind
print(json.dumps(kinds))
"""


def baseline_classes(revision: str, examples: tuple[Example, ...]) -> dict[int, str]:
    """The class the classifier of REVISION gives each example, by its document line."""
    archive = subprocess.run(
        ["git", "archive", revision, "migrations/migrator"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise BenchError(f"--baseline {revision}: {archive.stderr.decode().strip()}")
    with tempfile.TemporaryDirectory(prefix="lint-corpus-baseline-") as directory:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(directory, filter="data")
        folders = {}
        for example in examples:
            folder = Path(directory) / f"example-{example.line}"
            folder.mkdir()
            write(example, folder)
            folders[str(folder)] = example.line
        result = subprocess.run(
            [sys.executable, "-c", BASELINE_CLASSIFY, *folders],
            cwd=Path(directory) / "migrations",
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise BenchError(f"--baseline {revision}: its classifier failed: {result.stderr[-300:]}")
    return {folders[folder]: kind for folder, kind in json.loads(result.stdout).items()}


def class_verdicts(corpus: Corpus, baseline: str | None) -> tuple[list[str], list[ClassVerdict]]:
    classifiers = {f"classifier at {git_commit()}": None}
    if baseline:
        classifiers[f"classifier at {baseline}"] = baseline_classes(baseline, corpus.examples)
    verdicts = []
    for name, given in classifiers.items():
        for example in corpus.examples:
            if given is None:
                with tempfile.TemporaryDirectory(prefix="lint-corpus-") as directory:
                    got = project_class(write(example, Path(directory)))
            else:
                got = given[example.line]
            verdicts.append(ClassVerdict(name, example.section, example.line, example.kind, got))
    return list(classifiers), verdicts


def class_report(
    names: list[str], verdicts: list[ClassVerdict], examples: dict[int, Example]
) -> list[str]:
    lines = [
        "| classifier | right class | online examples right | offline examples right |",
        "|---|---:|---:|---:|",
    ]
    for name in names:
        own = [v for v in verdicts if v.classifier == name]
        online = [v for v in own if v.expected == "online"]
        offline = [v for v in own if v.expected == "offline"]
        lines.append(
            f"| {name} | {sum(v.right for v in own)} of {len(own)}"
            f" ({100 * sum(v.right for v in own) / max(len(own), 1):.0f} %)"
            f" | {sum(v.right for v in online)} of {len(online)}"
            f" | {sum(v.right for v in offline)} of {len(offline)} |"
        )
    wrong = [
        f"- {v.classifier}: {v.section} (docs/lint-rules.md:{v.line})"
        f" `{examples[v.line].first_line}` is {v.expected}, classed {v.got}"
        for v in verdicts
        if not v.right
    ]
    return ["", "Class accuracy:", "", *lines, "", "Wrong classes:", *(wrong or ["- none"])]


def summarise(tool: str, verdicts: list[Verdict]) -> Row:
    unsafe = [v for v in verdicts if v.expected == REFUSED]
    safe = [v for v in verdicts if v.expected != REFUSED]
    return Row(
        tool=tool,
        unsafe=len(unsafe),
        refused_correctly=sum(v.refused for v in unsafe),
        missed=sum(not v.refused for v in unsafe),
        safe=len(safe),
        accepted_correctly=sum(not v.refused for v in safe),
        false_alarms=sum(v.refused for v in safe),
        findings=sum(len(v.rules) for v in verdicts),
    )


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| tool | unsafe examples refused | missed (unsafe accepted) | safe examples accepted"
        " | false alarms (safe refused) | findings reported |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.tool} | {r.refused_correctly} of {r.unsafe} | {r.missed}"
        f" | {r.accepted_correctly} of {r.safe} | {r.false_alarms} | {r.findings} |"
        for r in rows
    ]
    return "\n".join(lines)


def wrong_lines(verdicts: list[Verdict], examples: dict[int, Example]) -> list[str]:
    lines = []
    for v in verdicts:
        if v.right:
            continue
        what = "false alarm" if v.refused else "missed"
        found = f" ({', '.join(v.rules)})" if v.rules else ""
        lines.append(
            f"- {v.tool}, {what}: {v.section} (docs/lint-rules.md:{v.line})"
            f" `{examples[v.line].first_line}`{found}"
        )
    return lines


def report_text(corpus: Corpus, rows: list[Row], verdicts: list[Verdict]) -> str:
    examples = {example.line: example for example in corpus.examples}
    refused = sum(example.expected == REFUSED for example in corpus.examples)
    lines = [
        f"Corpus: {len(corpus.examples)} examples in {len(corpus.rule_sections)} rule sections"
        f" of {DOC.relative_to(ROOT)}: {refused} refused by design, "
        f"{len(corpus.examples) - refused} accepted by design.",
        "",
        markdown_table(rows),
        "",
        "Misses and false alarms:",
    ]
    return "\n".join(lines + (wrong_lines(verdicts, examples) or ["- none"]))


def git_commit() -> str:
    result = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def run_benchmark(started: datetime, baseline: str | None) -> dict[str, Any]:
    squawk = lint.find_squawk()
    if squawk is None:
        raise BenchError("squawk not found: pip install -r requirements.txt")
    try:
        corpus = load()
    except CorpusError as exc:
        raise BenchError(f"{DOC.relative_to(ROOT)}: {exc}") from None
    note(f"{len(corpus.examples)} examples; each through the lint, then squawk alone")
    checks = {OURS: project_rules, SQUAWK: squawk_rules(squawk)}
    try:
        verdicts = [
            judge(tool, example, check)
            for tool, check in checks.items()
            for example in corpus.examples
        ]
    except lint.SquawkUnavailable as exc:
        raise BenchError(str(exc)) from None
    rows = [summarise(tool, [v for v in verdicts if v.tool == tool]) for tool in checks]
    names, classes = class_verdicts(corpus, baseline)
    examples = {example.line: example for example in corpus.examples}
    report = [report_text(corpus, rows, verdicts), *class_report(names, classes, examples)]
    print("\n".join(report), flush=True)
    return {
        "benchmark": "the project's lint vs squawk alone on the examples of docs/lint-rules.md",
        "command": command_line(sys.argv),
        "started_at": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "squawk": subprocess.run(
            [squawk, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "machine": host_info(),
        "summary": [asdict(row) for row in rows],
        "verdicts": [{**asdict(v), "refused": v.refused, "right": v.right} for v in verdicts],
        "classes": [{**asdict(v), "right": v.right} for v in classes],
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument(
        "--out", type=Path, help="JSON file (default bench/results/lint-corpus-<UTC stamp>.json)"
    )
    parser.add_argument(
        "--baseline", help="a git revision whose classifier classifies the examples beside"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    out = args.out or default_out("lint-corpus", started)
    return write_results(lambda: run_benchmark(started, args.baseline), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
