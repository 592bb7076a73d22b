"""docs/lint-rules.md is the lint's corpus: every example in it gets the verdict it claims.

Each example runs through the whole lint (the project's rules and squawk, for real), as
``0500_example.sql`` with its earlier files beside it (tests/lint_rules_doc.py).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.lint_rules_doc import ACCEPTED, DOC, REFUSED, CorpusError, Example, load, parse, write

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "migrations") not in sys.path:
    sys.path.insert(0, str(ROOT / "migrations"))

from migrator import lint  # noqa: E402
from migrator.files import LINT_RULES, load_migration  # noqa: E402

CORPUS = load()


def findings(example: Example, directory: Path) -> tuple[str, list[str]]:
    """The lint's verdict on the example and the rules of its findings."""
    (result,) = lint.lint_results([load_migration(write(example, directory))])
    return result.verdict, [finding.rule for finding in result.findings]


@pytest.mark.parametrize(
    "example",
    [example for example in CORPUS.examples if example.expected == REFUSED],
    ids=lambda example: example.name,
)
def test_refused_example_gets_a_finding_of_its_rule(tmp_path: Path, example: Example) -> None:
    verdict, rules = findings(example, tmp_path)
    assert verdict == "refused"
    assert example.section in rules, f"docs/lint-rules.md:{example.line}: {rules}"


@pytest.mark.parametrize(
    "example",
    [example for example in CORPUS.examples if example.expected == ACCEPTED],
    ids=lambda example: example.name,
)
def test_accepted_example_gets_no_finding(tmp_path: Path, example: Example) -> None:
    verdict, rules = findings(example, tmp_path)
    assert rules == [], f"docs/lint-rules.md:{example.line}"
    assert verdict == "accepted"


@pytest.mark.parametrize("example", CORPUS.examples, ids=lambda example: example.name)
def test_example_gets_the_class_its_label_gives(tmp_path: Path, example: Example) -> None:
    (result,) = lint.lint_results([load_migration(write(example, tmp_path))])
    assert result.classification.kind == example.kind, (
        f"docs/lint-rules.md:{example.line}: {result.classification.reasons}"
    )


def test_every_rule_has_a_section_with_a_refused_and_an_accepted_example() -> None:
    for rule in sorted(LINT_RULES):
        assert rule in CORPUS.rule_sections, f"no '## {rule}' section"
        kinds = {example.expected for example in CORPUS.examples if example.section == rule}
        assert kinds == {REFUSED, ACCEPTED}, f"## {rule}: only {sorted(kinds)}"


def test_no_section_names_an_unknown_rule() -> None:
    assert set(CORPUS.rule_sections) <= LINT_RULES
    assert len(CORPUS.rule_sections) == len(set(CORPUS.rule_sections))


def test_the_squawk_table_is_the_lints() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z-]+)` \| (`[a-z-]+`(?:, `[a-z-]+`)*) \|$", text, re.MULTILINE)
    table = {squawk: tuple(re.findall(r"`([a-z-]+)`", ours)) for squawk, ours in rows}
    assert table == lint.SQUAWK_SAME_AS


# --- the document's format -------------------------------------------------------------

SAMPLE = """# Title

## Prose

**Accepted** (online): prose sections may hold accepted examples.

```sql
SELECT 1;
```

```bash
echo "## not a heading"
```

## drop-column

Text.

**Refused** (offline; a note), and
more of the same paragraph:

```sql
ALTER TABLE t DROP COLUMN c;
```

**Earlier file**:

```sql
CREATE TABLE t (c varchar(9));
```

**Earlier file**:

```sql
ALTER TABLE t ALTER COLUMN c TYPE varchar(10);
```

**Accepted** (online):

```sql
ALTER TABLE t ALTER COLUMN c TYPE text;
```
"""


def test_parse_reads_sections_labels_and_earlier_files() -> None:
    corpus = parse(SAMPLE)
    assert corpus.sections == ("Prose", "drop-column")
    assert corpus.rule_sections == ("drop-column",)
    assert [(e.section, e.expected, e.kind, e.line) for e in corpus.examples] == [
        ("Prose", ACCEPTED, "online", 7),
        ("drop-column", REFUSED, "offline", 22),
        ("drop-column", ACCEPTED, "online", 40),
    ]
    refused, accepted = corpus.examples[1:]
    assert refused.sql == "ALTER TABLE t DROP COLUMN c;\n"
    assert refused.earlier == ()
    assert accepted.earlier == (
        "CREATE TABLE t (c varchar(9));\n",
        "ALTER TABLE t ALTER COLUMN c TYPE varchar(10);\n",
    )


def test_write_puts_earlier_files_before_the_example(tmp_path: Path) -> None:
    accepted = parse(SAMPLE).examples[-1]
    path = write(accepted, tmp_path)
    assert path.name == "0500_example.sql"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0400_earlier.sql",
        "0401_earlier.sql",
        "0500_example.sql",
    ]
    assert (tmp_path / "0401_earlier.sql").read_text(encoding="utf-8") == accepted.earlier[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("## drop-column\n\n```sql\nSELECT 1;\n```\n", "line 3: a sql block needs"),
        ("## drop-column\n\nSome text.\n\n```sql\nSELECT 1;\n```\n", "line 5: a sql block needs"),
        ("## Prose\n\n**Refused**:\n\n```sql\nSELECT 1;\n```\n", "outside a rule's section"),
        ("## a\n\n**Earlier file**:\n\n```sql\nSELECT 1;\n```\n\n## b\n", "no example after it"),
        ("## a\n\n**Earlier file**:\n\n```sql\nSELECT 1;\n```\n", "no example after it"),
        ("## a\n\n**Accepted**:\n\n```sql\nSELECT 1;\n", "never closed"),
        ("## a\n\n**Accepted**: no class.\n\n```sql\nSELECT 1;\n```\n", "give the class"),
    ],
)
def test_parse_refuses_a_malformed_document(text: str, message: str) -> None:
    with pytest.raises(CorpusError, match=message):
        parse(text)
