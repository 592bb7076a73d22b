"""Benchmark: the project's lint vs squawk alone, on the examples of docs/lint-rules.md.

    python bench/lint_corpus.py [--out FILE.json]

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
"""

from __future__ import annotations

import argparse
import subprocess
import sys
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


def run_benchmark(started: datetime) -> dict[str, Any]:
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
    print(report_text(corpus, rows, verdicts), flush=True)
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
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument(
        "--out", type=Path, help="JSON file (default bench/results/lint-corpus-<UTC stamp>.json)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    out = args.out or default_out("lint-corpus", started)
    return write_results(lambda: run_benchmark(started), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
