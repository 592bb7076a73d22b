"""Filters for the deploy playbooks: service lists, release images and the deploy summary."""

from __future__ import annotations

import itertools
import json
from typing import Any


def service_images(services: list[dict[str, Any]]) -> dict[str, str]:
    """The image each service runs, by service name."""
    return {service["name"]: service["image"] for service in services}


def with_images(services: list[dict[str, Any]], images: dict[str, str]) -> list[dict[str, Any]]:
    """The same services on other images (a previous release's); unnamed ones keep theirs."""
    return [
        {**service, "image": images.get(service["name"], service["image"])} for service in services
    ]


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


def failure_reason(result: dict[str, Any] | None) -> str:
    """One line out of a failed task's result, a loop's failed item included."""
    result = result or {}
    for item in result.get("results") or []:
        if isinstance(item, dict) and item.get("failed"):
            return failure_reason(item)
    message = str(result.get("msg") or "unknown failure").strip()
    return " ".join(message.split()) or "unknown failure"


def last_json_line(text: str) -> dict[str, Any]:
    """The one-line JSON summary a migrator command ends with; {} when there is none."""
    for raw in reversed((text or "").splitlines()):
        line = raw.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            return value if isinstance(value, dict) else {}
    return {}


def _seconds(value: Any) -> str:
    return f"{float(value):.1f} s" if isinstance(value, int | float) else "n/a"


def deploy_summary(report: dict[str, Any]) -> str:
    """A few lines an operator reads at the end of the play."""
    lines = [
        f"release {report.get('release')} ({report.get('version')}): {report.get('outcome')}"
        + (f" - {report['reason']}" if report.get("reason") else ""),
    ]
    phases = report.get("phases") or {}
    if phases:
        lines.append(
            "phases: " + ", ".join(f"{name} {_seconds(took)}" for name, took in phases.items())
        )
    pending = (report.get("plan") or {}).get("pending")
    if pending is not None:
        lines.append(
            f"migrations pending before the deploy: {', '.join(map(str, pending)) or 'none'}"
        )
    lines.append(f"downtime: {_seconds(report.get('downtime_s'))}")
    migrate = report.get("migrate") or {}
    if migrate:
        lines.append(
            f"migrate: exit {migrate.get('exit_code')}, {_seconds(migrate.get('duration'))}"
        )
    verify = report.get("verify") or {}
    if verify:
        lines.append(
            f"verify: {len(verify.get('present') or [])} column(s) present, "
            f"{len(verify.get('missing') or [])} missing, "
            f"{len(verify.get('mismatched') or [])} mismatched"
        )
    before, after = report.get("images_before") or {}, report.get("images_after") or {}
    for name in sorted(after):
        old = before.get(name, "-")
        lines.append(f"{name}: {old} -> {after[name]}" if old != after[name] else f"{name}: {old}")
    if report.get("rolled_back_to"):
        lines.append(f"rolled back to release {report['rolled_back_to']}")
    lines.append(f"report: {report.get('report_path', 'n/a')}")
    return "\n".join(lines)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "service_images": service_images,
            "with_images": with_images,
            "deploy_summary": deploy_summary,
            "phase_durations": phase_durations,
            "downtime": downtime,
            "failure_reason": failure_reason,
            "last_json_line": last_json_line,
        }
