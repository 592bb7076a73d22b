"""What the fault, bad-input and security suites saw in their last run, and docs/reliability.md.

The suites record into RECORD; at the end of a session in which every one of them ran in
full, tests/conftest.py saves it to tests/.artifacts/ (ignored by git), after merging what
each pytest-xdist worker recorded. The tracked document is rendered from the last saved run
only when someone means to commit it:

    python -m tests.e2e.reliability     # writes docs/reliability.md from the last run
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RELIABILITY_DOC = ROOT / "docs" / "reliability.md"
LAST_RUN = ROOT / "tests" / ".artifacts" / "reliability.json"


@dataclass
class Observed:
    """What one fault row saw."""

    fault: str
    phase: str
    failure: str
    recovered_by: str  # "flow" (the deploy itself) or "runbook: <entry>"
    history: str
    rows_lost: int
    failed_requests: int | None = None  # of the client writing through it; None: no client


@dataclass
class Record:
    faults: dict[str, Observed] = field(default_factory=dict)
    fault_suites: dict[str, int] = field(default_factory=dict)  # rows of each fault suite
    bad_inputs: dict[str, str] = field(default_factory=dict)  # case -> failure line
    bad_input_cases: int = 0
    secrets: dict[str, int] = field(default_factory=dict)  # places searched, secrets found
    seed_rows: int = 0  # rows in call_log during the faults
    finished: str = ""  # when the run that recorded this ended (UTC)

    def merge(self, data: dict) -> None:
        """Add what another test process recorded (pytest-xdist runs suites side by side)."""
        other = load_record(data)
        self.faults.update(other.faults)
        self.bad_inputs.update(other.bad_inputs)
        self.secrets.update(other.secrets)
        self.fault_suites.update(other.fault_suites)
        self.bad_input_cases = max(self.bad_input_cases, other.bad_input_cases)
        self.seed_rows = max(self.seed_rows, other.seed_rows)

    @property
    def fault_rows(self) -> int:
        return sum(self.fault_suites.values())

    def complete(self) -> bool:
        return (
            set(self.fault_suites) == set(FAULT_SUITES)
            and len(self.faults) == self.fault_rows
            and len(self.bad_inputs) == self.bad_input_cases
            and "found" in self.secrets
        )


RECORD = Record()
FAULT_SUITES = ("test_faults", "test_online", "test_many_hosts")


def cut(text: str, width: int) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= width else text[: width - 3] + "..."


def markdown(record: Record) -> str:
    rows = list(record.faults.values())
    by_flow = sum(row.recovered_by == "flow" for row in rows)
    lines = [
        "# Reliability: faults injected into a v1 -> v2 deploy",
        "",
        "Generated from a run of `tests/e2e/test_faults.py`, `test_online.py`,",
        "`test_many_hosts.py`, `test_bad_input.py` and `test_security.py` (all in the README's",
        f"test command) that ended {record.finished},",
        "by `python -m tests.e2e.reliability`. Do not edit by hand.",
        "",
        "## Faults",
        "",
        "Each row breaks one deploy of the demo stack (real Docker engine, real",
        f"PostgreSQL, {record.seed_rows:,} rows in `call_log`) at the phase named. Every row",
        "checks that the play exits non-zero with one line naming the cause; that v1 ends",
        "healthy, by the flow or by the RUNBOOK.md entry named (run as written there); that",
        "`call_log` keeps the same rows with the same content (count and md5 of every row);",
        "that the deploy lock is released; and that the release history records the failure",
        "when it came after the lock was taken. For the killed runs, the line is what the",
        "next deploy says. The rows of the online strategy run with a client that POSTs",
        "`/calls` every 50 ms through the deploy: the last column counts its failed requests",
        "(`-`: no client). The rows named `many hosts` deploy to three servers reached over",
        "SSH (the release pulled from a registry), and check every host: those that answered",
        "are rolled back by the flow; a host that stopped answering is brought to their",
        "release by the command its failure line gives, run as written.",
        "",
        "| phase | fault | failure line (first 240 characters) | recovered by | history |"
        " rows lost | failed requests |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for row in rows:
        failed = "-" if row.failed_requests is None else str(row.failed_requests)
        cells = [row.phase, row.fault, cut(row.failure, 240), row.recovered_by,
                 cut(row.history, 90), str(row.rows_lost), failed]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "**Totals:**",
        f"- faults tried: {len(rows)}",
        f"- recovered by the flow: {by_flow}",
        f"- recovered by the runbook: {len(rows) - by_flow}",
        f"- rows lost: {sum(row.rows_lost for row in rows)}",
        "",
        "## Bad input",
        "",
        "Each case stops before anything is stopped, the same v1 containers still running:",
        "",
        "| input | failure line (first 200 characters) |",
        "|---|---|",
    ]
    lines += [f"| {cut(case, 80)} | {cut(line, 200)} |" for case, line in record.bad_inputs.items()]
    lines += [
        "",
        "## Secrets",
        "",
        "One v1 then v2 deploy at `-vvv` with a known database password, v2's images pulled",
        "from the test registry with its password; both passwords and their URL-encoded forms",
        "were searched in the play output, ansible-runner's events, the reports, the state",
        "folder, and the labels and logs of every container.",
        "",
        f"- places searched: {record.secrets.get('searched', 0)}",
        f"- secrets found: {record.secrets.get('found', 0)}",
        "",
    ]
    return "\n".join(lines)


def save_if_complete() -> bool:
    """Save RECORD as the last run when every suite ran in full; whether it was saved."""
    if not RECORD.complete():
        return False
    RECORD.finished = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    LAST_RUN.parent.mkdir(parents=True, exist_ok=True)
    LAST_RUN.write_text(json.dumps(asdict(RECORD), indent=2) + "\n")
    return True


def load_record(data: dict) -> Record:
    fields = dict(data)
    faults = {key: Observed(**row) for key, row in fields.pop("faults").items()}
    fields.pop("fault_rows", None)  # a run saved before the rows were counted per suite
    return Record(faults=faults, **fields)


def load_last_run() -> Record:
    return load_record(json.loads(LAST_RUN.read_text()))


def main() -> int:
    if not LAST_RUN.exists():
        print(f"no saved run at {LAST_RUN}: run scripts/test.sh first", file=sys.stderr)
        return 1
    record = load_last_run()
    RELIABILITY_DOC.write_text(markdown(record))
    print(f"wrote {RELIABILITY_DOC} from the run that ended {record.finished}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
