"""docs/lint-rules.md as a corpus: the SQL examples of each lint rule, and their verdicts.

A rule's section is a ``## rule-id`` heading (other ``##`` headings are prose). Every
```` ```sql ```` block of the document is an example, labelled by the paragraph just before
it, which starts with ``**Refused**``, ``**Accepted**`` or ``**Earlier file**``; a Refused
or Accepted label then gives the class the file must get, ``(online`` or ``(offline``
(``**Accepted** (online; ...)``):

- Refused: a migration file the lint must refuse with a finding of its section's rule;
- Accepted: a migration file the whole lint (squawk included) must accept;
- Earlier file: a migration applied before the next Refused or Accepted example of the
  same section (the varchar it created, the CHECK it validated); it is not linted.

The unit test (tests/unit/test_lint_rules_doc.py) and the benchmark (bench/lint_corpus.py)
both read the corpus through ``load`` and write each example out with ``write``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "lint-rules.md"
REFUSED, ACCEPTED, EARLIER = "refused", "accepted", "earlier file"
HEADING = re.compile(r"^## (?P<title>\S.*?)\s*$")
RULE_ID = re.compile(r"^[a-z][a-z-]*$")
LABEL = re.compile(
    r"^\*\*(?P<label>Refused|Accepted|Earlier file)\*\*(?:\s*\((?P<kind>online|offline)\b)?"
)
ONLINE, OFFLINE = "online", "offline"
FENCE = re.compile(r"^```(?P<info>\S*)\s*$")
# Earlier files are written as 0400_earlier.sql, 0401_earlier.sql, ...; the example after them.
EARLIER_VERSION, EXAMPLE_NAME = 400, "0500_example.sql"


class CorpusError(ValueError):
    """The document does not read as a corpus; the message names the line."""


@dataclass(frozen=True)
class Example:
    section: str  # the ## heading the example is under: for a Refused one, its rule
    expected: str  # REFUSED or ACCEPTED
    sql: str
    line: int  # line of the example's ```sql fence in the document
    earlier: tuple[str, ...] = ()  # SQL of the files applied before it, in order
    kind: str = ""  # the class the file must get: ONLINE or OFFLINE

    @property
    def name(self) -> str:
        return f"{self.section}:{self.line}:{self.expected}"

    @property
    def first_line(self) -> str:
        """The first line of SQL below the header, for a report."""
        code = [line for line in self.sql.splitlines() if not line.startswith("--")]
        return next((line.strip() for line in code if line.strip()), "")


@dataclass(frozen=True)
class Corpus:
    sections: tuple[str, ...]  # every ## heading, in order
    examples: tuple[Example, ...]

    @property
    def rule_sections(self) -> tuple[str, ...]:
        return tuple(title for title in self.sections if RULE_ID.match(title))


@dataclass
class _Reader:
    """Walks the document line by line; ``lines`` are 1-based in messages."""

    lines: list[str]
    sections: list[str]
    examples: list[Example]
    earlier: list[str]
    section: str = ""

    def label_before(self, index: int) -> tuple[str, str] | None:
        """The label of the paragraph that ends just before line ``index`` (0-based), and
        the class it gives ("" for none)."""
        end = index
        while end > 0 and not self.lines[end - 1].strip():
            end -= 1
        start = end
        while start > 0 and self.lines[start - 1].strip():
            start -= 1
        if start == end:
            return None
        match = LABEL.match(self.lines[start].strip())
        return (match["label"].lower(), match["kind"] or "") if match else None

    def end_section(self, number: int) -> None:
        if self.earlier:
            raise CorpusError(f"line {number}: an Earlier file has no example after it")

    def heading(self, number: int, title: str) -> None:
        self.end_section(number)
        self.sections.append(title)
        self.section = title

    def block(self, fence: int, sql: str) -> None:
        number = fence + 1
        labelled = self.label_before(fence)
        if labelled is None:
            raise CorpusError(
                f"line {number}: a sql block needs a paragraph just before it that starts"
                " with **Refused**, **Accepted** or **Earlier file**"
            )
        label, kind = labelled
        if label == EARLIER:
            self.earlier.append(sql)
            return
        if label == REFUSED and not RULE_ID.match(self.section):
            raise CorpusError(f"line {number}: a Refused example outside a rule's section")
        if not kind:
            raise CorpusError(
                f"line {number}: give the class the example gets after its label, as in"
                " **Refused** (online) or **Accepted** (offline; why)"
            )
        self.examples.append(Example(self.section, label, sql, number, tuple(self.earlier), kind))
        self.earlier.clear()


def parse(text: str) -> Corpus:
    """The sections and examples of the document TEXT; CorpusError when it is malformed."""
    lines = text.splitlines()
    reader = _Reader(lines, [], [], [])
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            if heading := HEADING.match(lines[index]):
                reader.heading(index + 1, heading["title"])
            index += 1
            continue
        close = next((j for j in range(index + 1, len(lines)) if lines[j] == "```"), None)
        if close is None:
            raise CorpusError(f"line {index + 1}: a code block that is never closed")
        if fence["info"] == "sql":
            reader.block(index, "\n".join(lines[index + 1 : close]) + "\n")
        index = close + 1
    reader.end_section(len(lines))
    return Corpus(tuple(reader.sections), tuple(reader.examples))


def load(path: Path = DOC) -> Corpus:
    return parse(path.read_text(encoding="utf-8"))


def write(example: Example, directory: Path) -> Path:
    """The example as DIRECTORY/0500_example.sql, its earlier files before it; its path."""
    for offset, sql in enumerate(example.earlier):
        (directory / f"{EARLIER_VERSION + offset:04d}_earlier.sql").write_text(sql, "utf-8")
    path = directory / EXAMPLE_NAME
    path.write_text(example.sql, encoding="utf-8")
    return path
