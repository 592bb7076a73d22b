"""Filters for the deploy's report kept in the release history: what the record keeps, and the
lines status.yml prints from it."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

# checkout only: begin. What the record keeps is decided once, in module_utils (deploy_state
# bounds it when it writes); filters run on the controller, where Ansible does not put the
# checkout's module_utils on the path. They are added to ansible.module_utils, the name they
# import each other by on a host. The prosaas.deploy collection (scripts/collection.py) has
# none of these lines: it imports module_utils by the collection's name.
MODULE_UTILS_DIR = str(Path(__file__).resolve().parents[2] / "module_utils")
ANSIBLE_MODULE_UTILS = importlib.import_module("ansible.module_utils")
if MODULE_UTILS_DIR not in ANSIBLE_MODULE_UTILS.__path__:
    ANSIBLE_MODULE_UTILS.__path__.append(MODULE_UTILS_DIR)
# checkout only: end
from ansible.module_utils.prosaas_history import release_report  # noqa: E402 - path set up above

# The deploy's phases in the order they run (playbooks/deploy.yml): the history stores a
# record's keys sorted, so the order is not in the record.
PHASE_ORDER = ("validate", "preflight", "stop", "infra", "migrate", "verify", "start", "record")


def in_run_order(phases: dict[str, Any]) -> list[tuple[str, Any]]:
    """PHASES (name -> seconds) in the order the deploy runs them; unknown names last."""
    rank = {name: index for index, name in enumerate(PHASE_ORDER)}
    return sorted(phases.items(), key=lambda item: rank.get(item[0], len(PHASE_ORDER)))


def _seconds(value: Any) -> str:
    return f"{float(value):.1f} s" if isinstance(value, int | float) else "n/a"


def _versions(values: list[Any]) -> str:
    return ", ".join(f"{int(value):04d}" for value in values) or "none"


def last_reported(releases: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest record of the history that keeps a deploy's report; None when none does."""
    return next(
        (record for record in reversed(releases or []) if isinstance(record.get("report"), dict)),
        None,
    )


def migrate_line(migrate: dict[str, Any]) -> str:
    summary = migrate.get("summary") or {}
    line = (
        f"  migrate on {migrate.get('host') or '?'}: exit {migrate.get('exit_code')}, "
        f"{_seconds(migrate.get('duration'))}, applied {_versions(summary.get('applied') or [])}"
    )
    return line + (f"; error: {summary['error']}" if summary.get("error") else "")


def host_lines(report: dict[str, Any]) -> list[str]:
    """Each host's phases, and its rollback when there was one."""
    lines = []
    for host, part in (report.get("hosts") or {}).items():
        phases = in_run_order(part.get("phases") or {})
        timings = ", ".join(f"{name} {_seconds(took)}" for name, took in phases)
        lines.append(f"  phases on {host}: {timings or 'none'}")
        if part.get("rollback"):
            lines.append(f"  rollback on {host}: {part['rollback']}")
    if report.get("hosts_left_out"):
        lines.append(f"  phases of {report['hosts_left_out']} more host(s) not kept (size bound)")
    return lines


def outcome_of(record: dict[str, Any]) -> str:
    """`succeeded`, or `failed in phase migrate`."""
    report = record["report"]
    outcome = report.get("outcome") or record.get("status") or "?"
    phase = report.get("failed_phase")
    return f"{outcome} in phase {phase}" if phase else outcome


def last_report_lines(releases: list[dict[str, Any]]) -> list[str]:
    """status.yml's block on the newest deploy the release history keeps a report of: its
    outcome, strategy and downtime, each host's phases, migrate and verify. Its failure line
    (the record's reason) only when a later record came after it: for the newest record,
    status.yml's `release newest` line already shows it."""
    record = last_reported(releases)
    if record is None:
        return ["last deploy: no report in the release history"]
    report = record["report"]
    lines = [
        f"last deploy: {record['id']} ({record.get('version') or '?'}) {outcome_of(record)} "
        f"at {record.get('finished_at') or '?'}, strategy {report.get('strategy') or '?'}, "
        f"downtime {_seconds(report.get('downtime_s'))}"
    ]
    if record.get("reason") and record is not releases[-1]:
        lines.append(f"  failure: {record['reason']}")
    lines += host_lines(report)
    if report.get("migrate"):
        lines.append(migrate_line(report["migrate"]))
    verify = report.get("verify")
    if verify:
        lines.append(
            f"  verify: {verify.get('present')} column(s) present, "
            f"{len(verify.get('missing') or [])} missing, "
            f"{len(verify.get('mismatched') or [])} mismatched"
        )
    if report.get("cut"):
        lines.append("  (the rest of the report was over the size bound and not kept)")
    return lines


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "release_report": release_report,
            "last_report_lines": last_report_lines,
        }
