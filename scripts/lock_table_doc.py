"""Write the lock table (migrations/migrator/lockrules.py) into docs/lint-rules.md, between
its two markers, after a change to the table:

    python scripts/lock_table_doc.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "lint-rules.md"
sys.path.insert(0, str(ROOT / "migrations"))

from migrator.lockrules import markdown_table  # noqa: E402

SECTION = re.compile(r"(<!-- lock table: generated[^\n]*-->\n).*?(<!-- lock table: end -->)", re.S)


def main() -> int:
    text = DOC.read_text(encoding="utf-8")
    if not SECTION.search(text):
        print(f"{DOC}: the lock table's markers are missing", file=sys.stderr)
        return 1
    DOC.write_text(SECTION.sub(lambda m: m[1] + markdown_table() + m[2], text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
