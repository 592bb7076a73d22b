"""How a deploy ended, pure logic (the action plugin deploy_outcome computes it; unit tests
import these functions directly): why it failed and where, which hosts stopped answering,
what the rollback has to do, the one line the play ends with, and each host's report.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

# Phases a failure in leaves every service as it was: nothing was stopped or changed yet.
UNTOUCHED_PHASES = ("validate", "lock", "preflight")
NOTHING_CHANGED = "nothing was stopped or changed"


def failure_reason(result: dict[str, Any] | None) -> str:
    """One line out of a failed task's result, a loop's failed item included."""
    result = result or {}
    for item in result.get("results") or []:
        if isinstance(item, dict) and item.get("failed"):
            return failure_reason(item)
    message = str(result.get("msg") or "unknown failure").strip()
    if "rc" in result and message == "non-zero return code":  # a command: what it said last
        said = _last_line(result.get("stderr")) or _last_line(result.get("stdout"))
        message = f"exit code {result['rc']}" + (f": {said}" if said else "")
    return " ".join(message.split()) or "unknown failure"


def _last_line(text: Any) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def inventory_options(sources: list[str], project_dir: str) -> str:
    """The -i options of this run's inventories, relative to the project as operators type
    them: ansible_inventory_sources, project_dir (the folder of deploy.yml)."""
    prefix = project_dir.rstrip("/") + "/"
    return " ".join(f"-i {source.removeprefix(prefix)}" for source in sources)


def lost_hosts_reason(
    lost: list[str], phases: dict[str, str], inventories: str, migration_host: str
) -> str:
    """Why a deploy failed when the hosts LOST stopped answering (each in the phase PHASES
    names), and the command that brings each to the release the others run once it answers."""
    where = ", ".join(f"{host} (in phase {phases.get(host, 'unknown')})" for host in lost)
    limit = ",".join(lost)
    host, was, answers, it = (
        ("host", "was", "it answers", "it") if len(lost) == 1
        else ("hosts", "were", "they answer", "them")
    )  # fmt: skip
    reason = (
        f"{host} {where} stopped answering over SSH and {was} not rolled back; once {answers},"
        f" run ansible-playbook {inventories} playbooks/start.yml --limit {limit}"
        f" to bring {it} to the release the other hosts run"
    )
    if phases.get(migration_host) == "migrate" and migration_host in lost:
        reason += (
            f"; the migrate container may still run on {migration_host}: the next deploy waits"
            ' for it or refuses, naming it (RUNBOOK.md "A migrate container was left running")'
        )
    return reason


def phase_durations(marks: dict[str, float]) -> dict[str, float]:
    """Seconds each phase took, from the time each phase (and 'end') was entered."""
    ordered = sorted(marks.items(), key=lambda item: item[1])
    return {
        name: round(following[1] - started, 2)
        for (name, started), following in itertools.pairwise(ordered)
    }


def downtime(marks: dict[str, float], first: str = "stop", last: str = "record") -> float | None:
    """Seconds from the first app service stopped to the last one healthy again."""
    if first not in marks or last not in marks:
        return None
    return round(marks[last] - marks[first], 2)


def own_failure(phase: str, failed_result: dict[str, Any] | None) -> dict[str, Any]:
    """What a host that reached the rescue notes: the phase it was in, and why its own task
    failed (None when another host's failure brought it there)."""
    return {
        "phase": phase,
        "reason": failure_reason(failed_result) if failed_result is not None else None,
    }


def rollback_action(phase: str, previous: dict[str, Any] | None) -> str:
    """What the rollback does after a failure in PHASE: none (nothing was touched), previous
    (start PREVIOUS, the release that ran before) or stop (a first release: nothing to go
    back to)."""
    if phase in UNTOUCHED_PHASES:
        return "none"
    return "previous" if (previous or {}).get("id") else "stop"


def decide_failure(
    hosts: list[str],
    failures: dict[str, dict[str, Any]],
    phases: dict[str, str],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Why the deploy over HOSTS failed. FAILURES: what each host that answers noted (see
    own_failure); PHASES: the phase each host was last in (a lost host's, where it was lost).
    The first host lost, else the first whose own task failed, gives the phase and reason,
    the host named when the run has several."""
    answering = [host for host in hosts if host in failures]
    lost = [host for host in hosts if host not in failures]
    if lost:
        phase = phases.get(lost[0], "unknown")
        reason = lost_hosts_reason(
            lost, phases, settings["inventories"], settings["migration_host"]
        )
    else:
        failed = next((h for h in answering if failures[h]["reason"] is not None), None)
        phase = failures[failed]["phase"] if failed else phases.get(hosts[0], "unknown")
        said = failures[failed]["reason"] if failed else "unknown failure"
        reason = f"on {failed}: {said}" if failed and len(hosts) > 1 else said
    previous = settings.get("previous") or {}
    return {
        "phase": phase,
        "reason": reason,
        "answering": answering,
        "lost": lost,
        "rollback": rollback_action(phase, previous),
        "previous": previous,
    }


def rollback_line(action: str, previous_id: str, failure: str | None) -> str:
    """What the rollback ACTION did on a host; FAILURE is why it failed, when it did."""
    if action == "none":
        return NOTHING_CHANGED
    if action == "stop":
        return "no previous release to roll back to (first deploy): app services left stopped"
    if failure is None:
        return f"rolled back to release {previous_id} (healthy)"
    return (
        f"rollback to release {previous_id} failed too ({failure}):"
        ' see RUNBOOK.md "Rollback failed"'
    )


def failure_notices(outcome: dict[str, Any], rollbacks: dict[str, str | None]) -> list[dict]:
    """What chat hears of a failed deploy: what the rollback did (ROLLBACKS: host -> its
    line, each host named when there are several), when it did anything, then the failure."""
    notices = []
    if outcome["rollback"] != "none":
        lines = (
            [f"{host}: {line}" for host, line in rollbacks.items()]
            if len(rollbacks) > 1
            else list(rollbacks.values())
        )
        notices.append({"event": "rollback", "reason": "; ".join(str(line) for line in lines)})
    return [*notices, {"event": "failure", "reason": f"{outcome['phase']}: {outcome['reason']}"}]


def failure_line(
    release_id: str,
    outcome: dict[str, Any],
    rollback: str,
    record_problem: str,
    *,
    lost_late: list[str],
    inventories: str,
) -> str:
    """The one line a failed deploy ends with: the phase, the reason, what the rollback did,
    that the failure could not be recorded, and the hosts lost during the rollback itself."""
    line = (
        f"deploy of release {release_id} failed in phase {outcome['phase']}:"
        f" {outcome['reason']}; {rollback}"
    )
    if record_problem:
        line += f"; not recorded in the release history: {record_problem}"
    if lost_late:
        rolling = dict.fromkeys(lost_late, "rollback")
        line += "; during the rollback, " + lost_hosts_reason(lost_late, rolling, inventories, "")
    return line


def deploy_report(get: Callable[[str], Any], check_mode: bool, now: float | None = None) -> dict:
    """One host's deploy report, from GET (a variable of the host by name, None when unset):
    what the release did, phase by phase. Online, no app service stops before its
    replacement serves: no downtime."""
    outcome = get("deploy_outcome") or {}
    failed = bool(outcome)
    marks = {**(get("deploy_marks") or {}), "end": now or time.time()}
    context = get("deployment") or {}
    begun = get("release_state_begin") or {}
    previous = begun.get("current") or {}
    action = outcome.get("rollback", "")
    migrate, verify = get("migrate_result") or {}, get("verify_result") or {}
    if check_mode:
        state, down = "planned (check mode)", None
    else:
        state = "failed" if failed else "succeeded"
        online = context.get("strategy") == "online"
        down = 0.0 if online else downtime(marks, "stop", "end" if failed else "record")
    after = {service["name"]: service["image"] for service in context.get("app_services") or []}
    if failed:
        after = previous.get("images") or {} if action in ("previous", "none") else {}
    owner = get("deploy_owner") or {}
    return {
        "release": get("deploy_release_id"),
        "version": get("prosaas_app_version"),
        "outcome": state,
        "reason": f"{outcome['phase']}: {outcome['reason']}" if failed else None,
        "failed_phase": outcome.get("phase") if failed else None,
        "rollback": get("rollback_outcome"),
        "rolled_back_to": previous.get("id") if failed and action == "previous" else None,
        "user": owner.get("user"),
        "host": owner.get("host"),
        "inventory_host": get("inventory_hostname"),
        "phases": phase_durations(marks),
        "strategy": context.get("strategy_note") or context.get("strategy"),
        "downtime_s": down,
        "plan": context.get("plan") or {},
        "lock_holders": (get("preflight_locks") or {}).get("sessions") or [],
        "migrate": {
            "image": get("prosaas_migrate_image"),
            "exit_code": migrate.get("exit_code"),
            "duration": migrate.get("duration"),
            "summary": migrate.get("summary") or {},
            "log": migrate.get("log", ""),
        }
        if "log" in migrate
        else {},
        "verify": {
            "present": verify.get("present") or [],
            "missing": verify.get("missing") or [],
            "mismatched": verify.get("mismatched") or [],
        }
        if "checked" in verify or "missing" in verify
        else {},
        "previous_release": previous.get("id"),
        "images_before": previous.get("images") or {},
        "images_after": after,
    }
