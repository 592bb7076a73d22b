"""Filters for the deploy playbooks: service lists, release images and the deploy summary."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

# checkout only: begin. The shape of a service entry is declared once, in module_utils
# (docker_services's argument spec); filters run on the controller, where Ansible does not put
# the checkout's module_utils on the path: they are added to ansible.module_utils, the name
# they import each other by on a host. The prosaas.deploy collection (scripts/collection.py)
# has none of these lines: it imports module_utils by the collection's name.
MODULE_UTILS_DIR = str(Path(__file__).resolve().parents[2] / "module_utils")
ANSIBLE_MODULE_UTILS = importlib.import_module("ansible.module_utils")
if MODULE_UTILS_DIR not in ANSIBLE_MODULE_UTILS.__path__:
    ANSIBLE_MODULE_UTILS.__path__.append(MODULE_UTILS_DIR)
# checkout only: end
from ansible.module_utils.prosaas_context import service_images  # noqa: E402 - path set above
from ansible.module_utils.prosaas_names import naming_problems  # noqa: E402 - path set above
from ansible.module_utils.prosaas_outcome import (  # noqa: E402 - path set above
    failure_reason,
    inventory_options,
)
from ansible.module_utils.prosaas_retention import retained_images  # noqa: E402 - path set above
from ansible.module_utils.prosaas_schema import SERVICE_OPTIONS  # noqa: E402 - path set above


def with_images(services: list[dict[str, Any]], images: dict[str, str]) -> list[dict[str, Any]]:
    """The same services on other images (a previous release's); unnamed ones keep theirs."""
    return [
        {**service, "image": images.get(service["name"], service["image"])} for service in services
    ]


def image_plan(compared: list[dict[str, Any]], services: list[dict[str, Any]]) -> list[str]:
    """A line per service: the image it runs and the one the release would run.

    COMPARED is docker_services's comparison (each service's running_image), SERVICES the
    release's service entries (by digest where pulled from a registry).
    """
    wanted = service_images(services)
    lines = []
    for entry in compared:
        running = entry.get("running_image") or "nothing"
        would = wanted.get(entry["service"], "?")
        change = "unchanged" if running == would else f"would run {would}"
        lines.append(f"{entry['service']}: runs {running}, {change}")
    return lines


def declared_columns(migrations: list[dict[str, Any]], versions: list[int]) -> dict:
    """table -> {column: type} that the migrations of VERSIONS declare, as the migrate
    image's plan reports them (MIGRATIONS); in version order, so a later one wins. A version
    the image does not carry declares nothing it knows: the database is ahead of the
    release, which preflight accepted (it refuses when prosaas_database_ahead is refuse)."""
    by_version = {int(migration["version"]): migration for migration in migrations}
    found: dict[str, dict[str, str]] = {}
    for version in sorted({int(v) for v in versions} & set(by_version)):
        for column in by_version[version]["columns"]:
            found.setdefault(column["table"], {})[column["column"]] = column["type"]
    return found


def lint_refusal(migrations: list[dict[str, Any]], image: str) -> str:
    """One line naming each pending migration the migrate image's lint does not vouch for."""
    named = []
    for migration in migrations:
        first = (migration.get("findings") or [{}])[0]
        detail = f" (line {first['line']} {first['rule']}: {first['message']})" if first else ""
        verdict = migration["verdict"]
        said = "refused by the lint" if verdict == "refused" else verdict
        named.append(f"{migration['file']}: {said}{detail}")
    return (
        f"the migrate image {image} does not vouch for {'; '.join(named)}: build the image"
        " again from a commit whose `python -m migrator lint` passes"
    )


def pending_migrations(plan: dict[str, Any]) -> str:
    """``109 (online), 110 (offline; allows RULE because REASON)``, or ``none``: the plan's
    pending migrations with their class, each opt-in of the lint with its reason, and each
    note of the classifier (a timeout the file sets, under the runner's bounds)."""
    by_version = {m.get("version"): m for m in plan.get("migrations") or []}
    named = []
    for version in plan.get("pending") or []:
        migration = by_version.get(version, {})
        notes = [migration["class"]] if migration.get("class") else []
        notes += [f"allows {a['rule']} because {a['reason']}" for a in migration.get("allows", [])]
        notes += [f"line {n['line']}: {n['note']}" for n in migration.get("class_notes", [])]
        named.append(f"{version} ({'; '.join(notes)})" if notes else str(version))
    return ", ".join(named) or "none"


def release_named(history: dict[str, Any], which: str) -> dict[str, Any]:
    """The release WHICH names in HISTORY (release_state's read.yml): 'current', 'previous'
    or a release id; {} when there is none."""
    if which in ("current", "previous"):
        return history.get(which) or {}
    return next((r for r in history.get("releases") or [] if r.get("id") == which), {})


def started_lines(started: dict[str, Any]) -> list[str]:
    """What a started release runs (services's release.yml sets STARTED): each app service
    with its image, and how long each took to be healthy."""
    services = started.get("services") or []
    waited = started.get("waited") or {}
    return [
        *(f"{s['service']}  {(s.get('container') or {}).get('image', '-')}" for s in services),
        "healthy after (s): "
        + (
            ", ".join(f"{name} {took}" for name, took in sorted(waited.items()))
            or "none waited for"
        ),
    ]


def rollback_lines(record: dict[str, Any], recorded: bool, killed: str) -> list[str]:
    """What rollback.yml says after the start: the killed deploy it marked failed (KILLED,
    '' for none), then whether the rollback RECORD was RECORDED or the history already said so."""
    lines = [f"marked the killed deploy {killed} failed"] if killed else []
    if recorded:
        back = record["rolled_back_from"]
        return [
            *lines,
            f"recorded in the release history as {record['id']} (rolled back from {back}):"
            f" it is the current release now; back with `-e prosaas_rollback_to={back}`",
        ]
    return [
        *lines,
        "the release history already says so:"
        f" the current release {record['id']} runs these images",
    ]


def ahead_line(plan: dict[str, Any]) -> list[str]:
    """A line naming the applied migrations the release's migrate image does not carry (the
    database is ahead of the release) and whether the deploy accepted that, or none. PLAN is
    the plan the deployment context keeps (deploy_context decide)."""
    ahead = plan.get("unknown_applied") or []
    if not ahead:
        return []
    named = f"database ahead of the release: migration(s) {', '.join(map(str, ahead))} applied"
    if plan.get("database_ahead") == "refuse":
        return [f"{named}, not in the migrate image; refused (prosaas_database_ahead: refuse)"]
    return [
        f"{named}, not in the migrate image; accepted (prosaas_database_ahead: accept), verify"
        " checks only what the image declares"
    ]


def plan_lines(
    context: dict[str, Any], plan_run: dict[str, Any], locks: dict[str, Any]
) -> list[str]:
    """The plan preflight shows on each host: the pending migrations (on the migration host),
    the applied ones the release does not know, the services the release changes, the
    strategy and the sessions holding locks."""
    if not context["migrates"]:
        pending = "planned on the migration host"
    elif plan_run.get("skipped"):
        pending = (
            f"not known until {context['migrate_image']} is pulled (a check run pulls nothing)"
        )
    else:
        pending = pending_migrations(context["plan"])
    return [
        f"pending migrations: {pending}",
        *ahead_line(context["plan"]),
        f"services to change: {', '.join(context['changes']['services']) or 'none'}",
        f"strategy: {context['strategy_note']}",
        f"lock holders: {locks.get('summary') or 'not checked (no pending migration)'}",
    ]


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
    if report.get("strategy"):
        lines.append(f"strategy: {report['strategy']}")
    plan = report.get("plan") or {}
    if plan.get("pending") is not None:
        lines.append(f"migrations pending before the deploy: {pending_migrations(plan)}")
    lines += ahead_line(plan)
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


KINDS = {"str": str, "list": list, "dict": dict}
# What a service entry of the inventory may hold, and of which kind.
SERVICE_KEYS: dict[str, type] = {
    key: KINDS[option["type"]] for key, option in SERVICE_OPTIONS.items()
}
REQUIRED_SERVICE_KEYS = tuple(
    key for key, option in SERVICE_OPTIONS.items() if option.get("required")
)
KIND_NAMES = {bool: "a boolean", str: "a string", list: "a list", dict: "a mapping"}


def _kind_of(value: Any) -> str:
    for kind, name in KIND_NAMES.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _entry_problems(entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return [f"is {_kind_of(entry)}, not a mapping with a name and an image"]
    problems = [f"has no {key}" for key in REQUIRED_SERVICE_KEYS if not entry.get(key)]
    for key, value in entry.items():
        kind = SERVICE_KEYS.get(key)
        if kind is None:
            problems.append(f"has the unknown key '{key}' (known: {', '.join(SERVICE_KEYS)})")
        elif value is not None and not isinstance(value, kind):
            problems.append(f"'{key}' is {_kind_of(value)}, it must be {KIND_NAMES[kind]}")
        elif value is not None and value not in SERVICE_OPTIONS[key].get("choices", [value]):
            choices = ", ".join(SERVICE_OPTIONS[key]["choices"])
            problems.append(f"'{key}' is {value!r}, it must be one of: {choices}")
    return problems


def service_problems(services: Any, variable: str) -> list[str]:
    """One line per problem of an inventory's service list VARIABLE, naming the entry."""
    if not isinstance(services, list):
        return [f"{variable} is {_kind_of(services)}, it must be a list of services"]
    problems = []
    for index, entry in enumerate(services):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"{variable}[{index}]" + (f" ({name})" if name else "")
        problems += [f"{where} {problem}" for problem in _entry_problems(entry)]
    return problems


def _service_names(entries: list[Any]) -> list[str]:
    """The names of the well-formed entries of a service list."""
    return [str(entry.get("name")) for entry in entries if isinstance(entry, dict)]


def pin_problems(pins: Any, services: Any) -> list[str]:
    """Pins (service name -> tag) that name no app service, or are not a mapping."""
    if not isinstance(pins, dict):
        return [f"prosaas_app_pins is {_kind_of(pins)}, it must map service names to tags"]
    entries = services if isinstance(services, list) else []
    names = _service_names(entries)
    return [
        f"prosaas_app_pins names '{pin}', which is not an app service ({', '.join(names)})"
        for pin in pins
        if pin not in names
    ]


def inventory_problems(lists: dict[str, Any], pins: Any, pinned: str) -> list[str]:
    """Problems of every service list (variable name -> list), then of the pins, which apply
    to the list named PINNED."""
    problems = [
        line
        for variable, services in lists.items()
        for line in service_problems(services, variable)
    ]
    return problems + name_problems(lists) + pin_problems(pins, lists.get(pinned))


def name_problems(lists: dict[str, Any]) -> list[str]:
    """A line per service name that more than one entry of the lists gives: each name is
    also a container's name and a network alias."""
    names = [
        name
        for services in lists.values()
        for name in _service_names(services if isinstance(services, list) else [])
    ]
    return [
        f"the service name '{name}' is given {names.count(name)} times"
        f" ({', '.join(lists)}): each service needs its own name"
        for name in dict.fromkeys(names)
        if names.count(name) > 1
    ]


def _group_problems(service_groups: dict[Any, Any], names: list[str], groups: dict) -> list[str]:
    problems = [
        f"prosaas_service_groups names '{name}', which is not a service ({', '.join(names)})"
        for name in service_groups
        if name not in names
    ]
    problems += [
        f"prosaas_service_groups has no group for '{name}': name the inventory group whose"
        " hosts run it"
        for name in names
        if name not in service_groups
    ]
    problems += [
        f"prosaas_service_groups puts '{name}' on the group '{group}', which has no host"
        " in the inventory"
        for name, group in service_groups.items()
        if name in names and not groups.get(group)
    ]
    return problems


def placement_problems(service_groups: Any, lists: dict[str, Any], groups: dict) -> list[str]:
    """One line per problem of SERVICE_GROUPS (service name -> inventory group): every service
    of the service LISTS (variable name -> list) needs a group with hosts in GROUPS, unless
    SERVICE_GROUPS is empty."""
    if not isinstance(service_groups, dict):
        return [
            f"prosaas_service_groups is {_kind_of(service_groups)}, it must map service names"
            " to inventory groups"
        ]
    if not service_groups:
        return []
    services = [entry for value in lists.values() if isinstance(value, list) for entry in value]
    names = _service_names(services)
    return _group_problems(service_groups, names, groups)


def run_problems(migration_host: Any, play_hosts: list[str], batch_size: Any) -> list[str]:
    """Problems of the host the migration runs on (one of PLAY_HOSTS) and of how many hosts
    start at once."""
    problems = []
    if migration_host not in play_hosts:
        problems.append(
            f"prosaas_migration_host '{migration_host}' is not a host of this run"
            f" ({', '.join(play_hosts)}): name one of them, or widen --limit"
        )
    if not str(batch_size).isdigit() or isinstance(batch_size, bool | float):  # -e gives "2"
        problems.append(
            f"prosaas_start_batch_size is {batch_size!r}, it must be a whole number of hosts"
            " (0: all at once)"
        )
    return problems


def retention_problems(count: Any) -> list[str]:
    """A line when COUNT, the succeeded releases whose images each host keeps, is not a whole
    number of at least 1."""
    if str(count).isdigit() and int(count) >= 1:  # -e gives "3"
        return []
    return [
        f"prosaas_image_retention is {count!r}, it must be a whole number of releases, at least"
        " 1 (the images of that many succeeded releases stay on each host)"
    ]


STRATEGIES = ("stop", "online")
AHEAD_CHOICES = ("accept", "refuse")


def ahead_problems(ahead: Any) -> list[str]:
    """A line when prosaas_database_ahead is neither accept nor refuse."""
    if ahead in AHEAD_CHOICES:
        return []
    return [
        f"prosaas_database_ahead is {ahead!r}, it must be accept (a release whose migrate image"
        " lacks applied migrations runs on the newer schema) or refuse (such a deploy fails in"
        " preflight, before anything is stopped)"
    ]


def strategy_problems(strategy: Any, fallback: Any) -> list[str]:
    """A line per bad value of prosaas_deploy_strategy and prosaas_online_fallback."""
    problems = []
    if strategy not in STRATEGIES:
        problems.append(
            f"prosaas_deploy_strategy is {strategy!r}, it must be stop (stop the app services,"
            " migrate, start them) or online (migrate while they serve, then replace them behind"
            " the proxy)"
        )
    if not isinstance(fallback, bool) and str(fallback).lower() not in ("true", "false"):
        problems.append(f"prosaas_online_fallback is {fallback!r}, it must be true or false")
    return problems


HOST_CHECK = "prosaas-host-check: "


def host_check_problems(answer: dict[str, Any]) -> str:
    """What a host lacks for a deploy, from its answer to preflight's raw host check: the
    check's own line ('ready' when nothing), else all the host said when the check did not
    run (no Python, no shell)."""
    for line in answer.get("stdout_lines") or []:
        if line.strip().startswith(HOST_CHECK):
            return line.strip().split(": ", 1)[1]
    said = " ".join(str(answer.get(key) or "") for key in ("stdout", "stderr", "msg"))
    return f"the check did not run: {' '.join(said.split())}".strip()


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "service_images": service_images,
            "inventory_options": inventory_options,
            "host_check_problems": host_check_problems,
            "strategy_problems": strategy_problems,
            "ahead_problems": ahead_problems,
            "naming_problems": naming_problems,
            "with_images": with_images,
            "image_plan": image_plan,
            "plan_lines": plan_lines,
            "started_lines": started_lines,
            "release_named": release_named,
            "rollback_lines": rollback_lines,
            "declared_columns": declared_columns,
            "lint_refusal": lint_refusal,
            "pending_migrations": pending_migrations,
            "deploy_summary": deploy_summary,
            "failure_reason": failure_reason,
            "inventory_problems": inventory_problems,
            "placement_problems": placement_problems,
            "run_problems": run_problems,
            "retained_images": retained_images,
            "retention_problems": retention_problems,
        }
