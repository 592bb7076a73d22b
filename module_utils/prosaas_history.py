"""The release history on a deploy host: pure logic, no Ansible imports.

The module deploy_state drives these functions, the report filters (plugins/filter/report.py)
use release_report; unit tests import them directly.

releases.json, in the state directory (prosaas_store), holds {"releases": [record, ...]},
oldest first; written atomically, the prior version kept as releases.json.bak. A record may
keep the deploy's report, bounded in size (bounded_report).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ansible.module_utils.prosaas_store import StateError, iso, one_line, os_message, utc_now

HISTORY_FILE = "releases.json"
DEFAULT_KEEP = 50
KEEP_SUCCEEDED = 2
SUCCEEDED = "succeeded"
FAILED = "failed"
IN_PROGRESS = "in_progress"
ROLLBACK = "rollback"
# What a record runs: two records that agree on these run the same containers.
RUNS = ("version", "images", "migrate_image")
RUNBOOK_CORRUPTED = 'RUNBOOK.md: "Corrupted release history"'


def corrupted_message(path: str, problem: str) -> str:
    return (
        f"release history {path} is corrupted ({one_line(problem)}): restore it from "
        f"{path}.bak or move it aside ({RUNBOOK_CORRUPTED})"
    )


def parse_history(text: str, path: str) -> list[dict[str, Any]]:
    """The release records in the text of releases.json; StateError when it is not one."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateError(corrupted_message(path, str(exc))) from None
    if not isinstance(data, dict) or not isinstance(data.get("releases"), list):
        found = type(data).__name__ if not isinstance(data, dict) else "no releases list"
        raise StateError(
            corrupted_message(path, f'expected an object with a "releases" list, found {found}')
        )
    for index, record in enumerate(data["releases"]):
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise StateError(corrupted_message(path, f"record {index} has no string id"))
    return data["releases"]


def load_history(path: str) -> list[dict[str, Any]]:
    """The release records in PATH; [] when the file does not exist yet."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as exc:
        raise StateError(corrupted_message(path, str(exc))) from None
    except OSError as exc:
        raise StateError(os_message("cannot read release history", path, exc)) from None
    return parse_history(text, path)


def dump_history(releases: list[dict[str, Any]]) -> str:
    return json.dumps({"releases": releases}, indent=2, sort_keys=True) + "\n"


def succeeded(releases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The succeeded records, oldest first: the only ones a rollback may target."""
    return [record for record in releases if record.get("status") == SUCCEEDED]


def current_and_previous(
    releases: list[dict[str, Any]],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The newest succeeded release and the succeeded one before it.

    Failed and in-progress releases are skipped: they never run after a deploy ends.
    """
    good = succeeded(releases)
    current = good[-1] if good else None
    previous = good[-2] if len(good) > 1 else None
    return current, previous


def find_release(releases: list[dict[str, Any]], release_id: str) -> int | None:
    for index, record in enumerate(releases):
        if record.get("id") == release_id:
            return index
    return None


def require_new_id(releases: list[dict[str, Any]], release_id: str) -> None:
    if find_release(releases, release_id) is not None:
        raise StateError(
            f"release {release_id} is already in the release history: "
            "each deploy or rollback needs a new release id"
        )


def release_record(release: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A new in-progress record from the module's `release` parameter."""
    return {
        "id": release["id"],
        "version": release.get("version"),
        "images": dict(release.get("images") or {}),
        "migrate_image": release.get("migrate_image"),
        "user": release.get("user"),
        "host": release.get("host"),
        "previous": release.get("previous"),
        "status": IN_PROGRESS,
        "started_at": iso(now or utc_now()),
    }


def trim(releases: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """The newest KEEP records, plus the newest two succeeded ones wherever they are.

    Failed or in-progress records therefore never push the rollback target out.
    """
    if keep < 1:
        raise StateError(f"keep must be at least 1, got {keep}")
    protected = {id(record) for record in succeeded(releases)[-KEEP_SUCCEEDED:]}
    cutoff = len(releases) - keep
    return [
        record
        for index, record in enumerate(releases)
        if index >= cutoff or id(record) in protected
    ]


def begin(
    releases: list[dict[str, Any]], release: dict[str, Any], keep: int, now: datetime | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(new history, new record): RELEASE appended as in progress, history trimmed to KEEP."""
    require_new_id(releases, release["id"])
    record = release_record(release, now)
    if record["previous"] is None:
        current = current_and_previous(releases)[0]
        record["previous"] = current["id"] if current else None
    return trim([*releases, record], keep), record


CORE_KEYS = ("id", "status", "reason", "started_at", "finished_at")


def recorded_release(releases: list[dict[str, Any]], release_id: str, hint: str) -> int:
    """The index of RELEASE_ID in the history; a one-line error ending with HINT otherwise."""
    index = find_release(releases, release_id)
    if index is None:
        known = ", ".join(record["id"] for record in releases[-3:]) or "none"
        raise StateError(
            f"release {release_id} is not in the release history (newest: {known}): {hint}"
        )
    return index


def finish(
    releases: list[dict[str, Any]],
    release_id: str,
    *,
    outcome: str,
    reason: str | None,
    details: dict[str, Any] | None,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """(new history, record before, record after) with the outcome of RELEASE_ID set.

    DETAILS are merged into the record; they never override its id, status, reason or times.
    A report among them (release_report) is cut to REPORT_LIMIT bytes (bounded_report), so
    it is written in the same update as the outcome and the history stays small.
    When the record already says the same, the record after is the record before.
    """
    index = recorded_release(releases, release_id, "finish only a release that was begun")
    before = releases[index]
    extra = {key: value for key, value in (details or {}).items() if key not in CORE_KEYS}
    if isinstance(extra.get("report"), dict):
        extra["report"] = bounded_report(extra["report"])
    after = {**before, **extra, "status": outcome, "reason": reason or ""}
    already = before.get("finished_at")
    if already and {**after, "finished_at": already} == before:
        return releases, before, before
    after["finished_at"] = iso(now or utc_now())
    updated = [*releases[:index], after, *releases[index + 1 :]]
    return updated, before, after


def runs_the_same(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two records run the same version on the same images."""
    return all(one.get(key) == other.get(key) for key in RUNS)


def roll_back(
    releases: list[dict[str, Any]],
    target_id: str,
    release: dict[str, Any],
    keep: int,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
    """(new history, record of what runs, whether it was appended) after going to TARGET_ID.

    Going back to what the current release already runs appends nothing: its record is the
    current one. Otherwise a succeeded record of kind rollback, with RELEASE's id, user and
    host and the target's version and images, is appended: it becomes current, and the
    release it replaced becomes previous. Only a succeeded release is ever a target.
    """
    index = recorded_release(releases, target_id, "name a succeeded release")
    target = releases[index]
    if target.get("status") != SUCCEEDED:
        raise StateError(
            f"release {target_id} is {target.get('status') or 'unfinished'}: "
            "a failed or unfinished release is never a rollback target"
        )
    current = current_and_previous(releases)[0]
    if current is not None and runs_the_same(current, target):
        return releases, current, False
    require_new_id(releases, release["id"])
    moment = iso(now or utc_now())
    record = {
        "id": release["id"],
        "kind": ROLLBACK,
        **{key: target.get(key) for key in RUNS},
        "restores": target_id,
        "rolled_back_from": current["id"] if current else None,
        "user": release.get("user"),
        "host": release.get("host"),
        "status": SUCCEEDED,
        "reason": "",
        "started_at": moment,
        "finished_at": moment,
    }
    return trim([*releases, record], keep), record, True


def add_job(
    releases: list[dict[str, Any]], release_id: str, job: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(new history, record after) with JOB (a backfill run, say) appended to RELEASE_ID's jobs."""
    index = recorded_release(releases, release_id, "a job is noted on a recorded release")
    after = {**releases[index], "jobs": [*releases[index].get("jobs", []), job]}
    return [*releases[:index], after, *releases[index + 1 :]], after


# --- The deploy's report, kept in its record ----------------------------------------------

# Bytes a record's report may add to releases.json, as the history writes it (indented):
# with the 50 records kept, the reports add at most 400 KiB to the history, however many
# hosts a deploy has.
REPORT_LIMIT = 8192
# Characters any one text of a kept report may take (a host's rollback, a migrator error).
REPORT_TEXT_LIMIT = 500
# What a report that cannot fit keeps.
REPORT_ESSENTIALS = ("outcome", "strategy", "downtime_s", "failed_phase")
# What the migrate run keeps when its summary does not fit.
MIGRATE_ESSENTIALS = ("host", "exit_code", "duration")


def release_report(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """What the release history keeps of a deploy's reports (one per host, as
    module_utils/prosaas_outcome.py makes them): the outcome, the strategy, the longest
    downtime, the failed phase, the migrate run (exit code, seconds and the migrator's JSON
    summary, not its log), the verify counts, and per host its phases, downtime and rollback.

    Left out, as the file reports keep them: the plan, lock holders, the migrate log and
    the images (the record has the release's images); the failure line is the record's own
    reason, kept once and whole. The record phase is still running when the record is
    written, so it is not among the phases.
    """
    first = reports[0] if reports else {}
    downtimes = [r["downtime_s"] for r in reports if isinstance(r.get("downtime_s"), int | float)]
    kept: dict[str, Any] = {
        "outcome": first.get("outcome"),
        "strategy": first.get("strategy"),
        "downtime_s": max(downtimes) if downtimes else None,
        "hosts": {str(r.get("inventory_host") or "?"): host_report(r) for r in reports},
    }
    if first.get("failed_phase"):
        kept["failed_phase"] = first["failed_phase"]
    migrated = next((r for r in reports if r.get("migrate")), None)
    if migrated:
        run = migrated["migrate"]
        kept["migrate"] = {
            "host": migrated.get("inventory_host"),
            "exit_code": run.get("exit_code"),
            "duration": run.get("duration"),
            "summary": run.get("summary") or {},
        }
    verified = next((r["verify"] for r in reports if r.get("verify")), None)
    if verified:
        kept["verify"] = {
            "present": len(verified.get("present") or []),
            "missing": verified.get("missing") or [],
            "mismatched": verified.get("mismatched") or [],
        }
    return kept


def host_report(report: dict[str, Any]) -> dict[str, Any]:
    """One host's part of a kept report: its phases (but record), downtime and rollback."""
    phases = {name: took for name, took in (report.get("phases") or {}).items() if name != "record"}
    kept: dict[str, Any] = {"phases": phases, "downtime_s": report.get("downtime_s")}
    if report.get("rollback"):
        kept["rollback"] = report["rollback"]
    return kept


def stored_size(report: Any) -> int:
    """Bytes REPORT adds to releases.json: to a record, as dump_history writes it."""
    with_report = dump_history([{"report": report}])
    return len(with_report.encode()) - len(dump_history([{}]).encode())


def shortened(value: Any, limit: int = REPORT_TEXT_LIMIT) -> Any:
    """VALUE with every text longer than LIMIT characters cut to it, ending with '...'."""
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 3] + "..."
    if isinstance(value, dict):
        return {key: shortened(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [shortened(item, limit) for item in value]
    return value


def with_fewer_hosts(report: dict[str, Any], limit: int) -> dict[str, Any]:
    """REPORT keeping, in order, the hosts that fit LIMIT; the others only counted."""
    hosts = report.get("hosts") or {}
    kept: dict[str, Any] = {}
    for name, part in hosts.items():
        trial = {**report, "hosts": {**kept, name: part}, "hosts_left_out": len(hosts)}
        if stored_size(trial) > limit:
            break
        kept[name] = part
    return {**report, "hosts": kept, "hosts_left_out": len(hosts) - len(kept)}


def bounded_report(report: dict[str, Any], limit: int = REPORT_LIMIT) -> dict[str, Any]:
    """REPORT cut to add at most LIMIT bytes to the history, a step at a time until it fits:
    long texts shortened; then the hosts that do not fit left out (counted in hosts_left_out);
    then the migrator's summary; then all but REPORT_ESSENTIALS (marked cut)."""
    report = shortened(report)
    if stored_size(report) <= limit:
        return report
    report = with_fewer_hosts(report, limit)
    if stored_size(report) <= limit:
        return report
    if report.get("migrate"):
        migrate = report["migrate"]
        report = {**report, "migrate": {key: migrate.get(key) for key in MIGRATE_ESSENTIALS}}
        if stored_size(report) <= limit:
            return report
    return {**{key: report.get(key) for key in REPORT_ESSENTIALS}, "cut": True}
