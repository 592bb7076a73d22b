"""The deploy playbooks' filters: images, phase timings, failure reasons, the summary."""

import importlib.util

import pytest
from ansible.module_utils import prosaas_context as context
from ansible.module_utils import prosaas_outcome as outcome
from prosaas_schema import SERVICE_OPTIONS

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("prosaas_filters", ROOT / "plugins/filter/prosaas.py")
filters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(filters)

SERVICES = [
    {"name": "prosaas-api", "image": "app:v2", "command": ["api"]},
    {"name": "worker", "image": "app:v2"},
]


def test_service_images_maps_names_to_images() -> None:
    assert context.service_images(SERVICES) == {"prosaas-api": "app:v2", "worker": "app:v2"}


def test_with_images_swaps_only_the_named_services_and_keeps_the_rest() -> None:
    swapped = filters.with_images(SERVICES, {"prosaas-api": "app:v1"})
    assert swapped[0] == {"name": "prosaas-api", "image": "app:v1", "command": ["api"]}
    assert swapped[1] == SERVICES[1]
    assert SERVICES[0]["image"] == "app:v2"  # the inventory's list is not modified


def test_phase_durations_follow_the_order_of_the_marks() -> None:
    marks = {"stop": 12.0, "validate": 10.0, "start": 15.5, "end": 16.0}
    assert outcome.phase_durations(marks) == {"validate": 2.0, "stop": 3.5, "start": 0.5}


def test_downtime_runs_from_the_stop_to_the_last_healthy_service() -> None:
    marks = {"validate": 1.0, "stop": 2.0, "record": 9.25, "end": 10.0}
    assert outcome.downtime(marks) == 7.25
    assert outcome.downtime(marks, "stop", "end") == 8.0
    assert outcome.downtime({"validate": 1.0}) is None


def test_failure_reason_takes_the_failed_loop_item_on_one_line() -> None:
    result = {
        "msg": "One or more items failed",
        "results": [
            {"failed": False, "msg": "ok"},
            {"failed": True, "msg": "service worker: not healthy after 8 s\n(status running)"},
        ],
    }
    assert outcome.failure_reason(result) == (
        "service worker: not healthy after 8 s (status running)"
    )
    assert outcome.failure_reason({"msg": "plain"}) == "plain"
    assert outcome.failure_reason(None) == "unknown failure"


def test_deploy_summary_names_outcome_images_and_rollback() -> None:
    summary = filters.deploy_summary(
        {
            "release": "R2",
            "version": "v2",
            "outcome": "failed",
            "reason": "migrate: exited with code 6",
            "phases": {"stop": 1.0},
            "downtime_s": 4.0,
            "plan": {"pending": [109], "migrations": [{"version": 109, "class": "online"}]},
            "images_before": {"worker": "app:v1"},
            "images_after": {"worker": "app:v1"},
            "rolled_back_to": "R1",
            "report_path": "/r/R2.json",
        }
    ).splitlines()
    assert summary[0] == "release R2 (v2): failed - migrate: exited with code 6"
    assert "migrations pending before the deploy: 109 (online)" in summary
    assert "downtime: 4.0 s" in summary
    assert "worker: app:v1" in summary
    assert "rolled back to release R1" in summary
    assert summary[-1] == "report: /r/R2.json"


def test_summary_shows_each_opt_in_of_the_lint_with_its_reason() -> None:
    plan = {
        "pending": [110, 111],
        "migrations": [
            {
                "version": 110,
                "class": "offline",
                "allows": [{"rule": "drop-column", "reason": "no release reads it", "line": 2}],
            },
            {
                "version": 111,
                "class": "online",
                "allows": [],
                "class_notes": [{"line": 1, "note": "lock_timeout '5s' under the runner's"}],
            },
        ],
    }
    summary = filters.deploy_summary({"plan": plan}).splitlines()
    assert (
        "migrations pending before the deploy:"
        " 110 (offline; allows drop-column because no release reads it),"
        " 111 (online; line 1: lock_timeout '5s' under the runner's)"
    ) in summary


def test_lint_refusal_names_each_file_its_verdict_and_first_finding() -> None:
    line = filters.lint_refusal(
        [
            {
                "file": "0110_drop.sql",
                "verdict": "refused",
                "findings": [{"line": 3, "rule": "drop-column", "message": "drops column x"}],
            },
            {"file": "0111_new.sql", "verdict": "not linted", "findings": []},
        ],
        "reg/migrate:v3",
    )
    assert line == (
        "the migrate image reg/migrate:v3 does not vouch for 0110_drop.sql: refused by the"
        " lint (line 3 drop-column: drops column x); 0111_new.sql: not linted: build the image"
        " again from a commit whose `python -m migrator lint` passes"
    )


def test_inventory_problems_name_the_variable_the_entry_and_the_fix() -> None:
    lists = {
        "prosaas_infra_services": [{"name": "redis", "image": "redis:7"}],
        "prosaas_app_services": [
            {"name": "prosaas-api", "image": "app:v2", "env": ["A=1"]},
            {"name": "worker", "imgae": "app:v2"},
            "calls",
        ],
    }
    problems = filters.inventory_problems(lists, {"wrker": "v3"}, "prosaas_app_services")
    assert problems == [
        "prosaas_app_services[0] (prosaas-api) 'env' is a list, it must be a mapping",
        "prosaas_app_services[1] (worker) has no image",
        "prosaas_app_services[1] (worker) has the unknown key 'imgae' (known: "
        + ", ".join(filters.SERVICE_KEYS)
        + ")",
        "prosaas_app_services[2] is a string, not a mapping with a name and an image",
        "prosaas_app_pins names 'wrker', which is not an app service (prosaas-api, worker)",
    ]


def test_inventory_problems_accept_the_local_inventory_shape() -> None:
    lists = {"prosaas_app_services": SERVICES}
    assert filters.inventory_problems(lists, {"worker": "v1"}, "prosaas_app_services") == []
    assert filters.inventory_problems({"x": {"a": 1}}, {}, "x") == [
        "x is a mapping, it must be a list of services"
    ]


def test_the_inventory_check_takes_its_keys_kinds_and_choices_from_the_service_schema() -> None:
    assert list(filters.SERVICE_KEYS) == list(SERVICE_OPTIONS)
    assert filters.SERVICE_KEYS["healthcheck"] is dict
    assert filters.REQUIRED_SERVICE_KEYS == ("name", "image")
    lists = {
        "s": [
            {"name": "a", "image": "x", "restart_policy": "always"},
            {"name": "b", "image": "x", "restart_policy": "sometimes"},
            {"name": "c", "image": "x", "restart_policy": False},  # YAML's unquoted no
        ]
    }
    assert filters.inventory_problems(lists, {}, "s") == [
        "s[1] (b) 'restart_policy' is 'sometimes', it must be one of: "
        "no, always, unless-stopped, on-failure",
        "s[2] (c) 'restart_policy' is a boolean, it must be a string",
    ]


def test_failure_reason_of_a_command_is_its_last_error_line() -> None:
    result = {
        "rc": 4,
        "msg": "non-zero return code",
        "stdout": '{"command": "lint", "exit_code": 4}',
        "stderr": "\nerror: 0109_call_log_timing.sql:4: adds-column wants 'table.column type'\n",
    }
    assert outcome.failure_reason(result) == (
        "exit code 4: error: 0109_call_log_timing.sql:4: adds-column wants 'table.column type'"
    )
    assert outcome.failure_reason({"rc": 1, "msg": "non-zero return code"}) == "exit code 1"


PLACED = {"redis": "prosaas_infra", "prosaas-api": "prosaas_api", "worker": "prosaas_worker"}
PLACED_SERVICES = [{"name": name, "image": "x"} for name in PLACED]
INVENTORY_GROUPS = {
    "prosaas_infra": ["db1"],
    "prosaas_api": ["api1", "api2"],
    "prosaas_worker": ["api2"],
    "prosaas_calls": [],
}


def test_services_on_host_follow_the_groups_of_the_host() -> None:
    on_api2 = context.services_on_host(
        PLACED_SERVICES, PLACED, ["prosaas", "prosaas_api", "prosaas_worker"]
    )
    assert [service["name"] for service in on_api2] == ["prosaas-api", "worker"]
    assert context.services_on_host(PLACED_SERVICES, PLACED, ["prosaas"]) == []
    # No placement: one host runs everything.
    assert context.services_on_host(PLACED_SERVICES, {}, ["prosaas"]) == PLACED_SERVICES


def test_placement_problems_accept_a_placed_inventory() -> None:
    assert (
        filters.placement_problems(PLACED, {"x": PLACED_SERVICES, "y": "bad"}, INVENTORY_GROUPS)
        == []
    )
    assert filters.placement_problems({}, {"x": PLACED_SERVICES}, {}) == []
    assert filters.run_problems("db1", ["db1", "api1"], 1) == []
    assert filters.run_problems("db1", ["db1"], "0") == []


def test_placement_problems_name_the_variable_and_the_fix() -> None:
    placed = {"redis": "prosaas_infra", "prosaas-api": "prosaas_calls", "wrker": "prosaas_worker"}
    assert filters.placement_problems(placed, {"x": PLACED_SERVICES}, INVENTORY_GROUPS) == [
        "prosaas_service_groups names 'wrker', which is not a service (redis, prosaas-api, worker)",
        "prosaas_service_groups has no group for 'worker': name the inventory group whose hosts"
        " run it",
        "prosaas_service_groups puts 'prosaas-api' on the group 'prosaas_calls', which has no"
        " host in the inventory",
    ]
    assert filters.placement_problems(["redis"], {}, {}) == [
        "prosaas_service_groups is a list, it must map service names to inventory groups"
    ]


def test_run_problems_name_the_variable_and_the_fix() -> None:
    assert filters.run_problems("db2", ["db1", "api1"], -1) == [
        "prosaas_migration_host 'db2' is not a host of this run (db1, api1): name one of them,"
        " or widen --limit",
        "prosaas_start_batch_size is -1, it must be a whole number of hosts (0: all at once)",
    ]
    assert filters.run_problems("db1", ["db1"], 1.5) == [
        "prosaas_start_batch_size is 1.5, it must be a whole number of hosts (0: all at once)"
    ]


@pytest.mark.parametrize("count", [0, -1, "two", 1.5, True, None])
def test_retention_problems_want_a_whole_number_of_releases_of_at_least_one(count: object) -> None:
    assert filters.retention_problems(count) == [
        f"prosaas_image_retention is {count!r}, it must be a whole number of releases, at least 1"
        " (the images of that many succeeded releases stay on each host)"
    ]
    assert filters.retention_problems(5) == []
    assert filters.retention_problems("1") == []  # -e prosaas_image_retention=1


def test_pinned_images_swaps_each_pulled_image_for_its_digest() -> None:
    digests = {"prosaas-demo/app:v2": "prosaas-demo/app@sha256:222"}
    services = [
        {"name": "api", "image": "prosaas-demo/app:v2"},
        {"name": "redis", "image": "redis:7"},
    ]
    assert context.pinned_images(services, digests) == [
        {"name": "api", "image": "prosaas-demo/app@sha256:222"},
        {"name": "redis", "image": "redis:7"},
    ]


def test_image_plan_says_per_service_what_runs_and_what_would() -> None:
    compared = [
        {"service": "prosaas-api", "running_image": "reg/app@sha256:1"},
        {"service": "worker", "running_image": "reg/app@sha256:2"},
        {"service": "prosaas-calls", "running_image": ""},
    ]
    services = [
        {"name": "prosaas-api", "image": "reg/app@sha256:2"},
        {"name": "worker", "image": "reg/app@sha256:2"},
        {"name": "prosaas-calls", "image": "reg/app@sha256:2"},
    ]
    assert filters.image_plan(compared, services) == [
        "prosaas-api: runs reg/app@sha256:1, would run reg/app@sha256:2",
        "worker: runs reg/app@sha256:2, unchanged",
        "prosaas-calls: runs nothing, would run reg/app@sha256:2",
    ]


PLANNED = [
    {"version": 1, "columns": [{"table": "call_log", "column": "id", "type": "bigint"}]},
    {"version": 2, "columns": []},
    {"version": 109, "columns": [
        {"table": "call_log", "column": "started_at", "type": "timestamp"},
        {"table": "call_log", "column": "id", "type": "integer"},
    ]},
]  # fmt: skip


def test_declared_columns_come_from_the_image_plan_a_later_version_winning() -> None:
    assert filters.declared_columns(PLANNED, [1, 2]) == {"call_log": {"id": "bigint"}}
    assert filters.declared_columns(PLANNED, [109, 1]) == {
        "call_log": {"id": "integer", "started_at": "timestamp"}
    }


def test_declared_columns_check_only_what_the_image_declares_of_a_database_ahead() -> None:
    # 3 was applied by a later release: its migrate image is not this one, nothing to check.
    assert filters.declared_columns(PLANNED, [1, 2, 3]) == {"call_log": {"id": "bigint"}}
    assert filters.declared_columns(PLANNED, [3]) == {}


AHEAD_PLAN = {"applied": [1, 2, 109], "pending": [], "migrations": PLANNED[:2]}


def ahead_context(setting: str) -> dict:
    placed = {"migrates": True, "host": "app1", "migrate_image": "migrate:v1"}
    settings = {"deploy_strategy": "stop", "online_fallback": False, "database_ahead": setting}
    return context.decide(placed, AHEAD_PLAN, {"app1": ["worker"]}, settings)


def test_the_plan_names_the_migrations_a_database_ahead_has_and_accepts_them() -> None:
    decided = ahead_context("accept")
    lines = filters.plan_lines(decided, {}, {})
    assert lines[1] == (
        "database ahead of the release: migration(s) 109 applied, not in the migrate image;"
        " accepted (prosaas_database_ahead: accept), verify checks only what the image declares"
    )
    assert lines[0] == "pending migrations: none"
    # Not ahead: no such line.
    level = context.decide(
        {"migrates": True, "host": "app1", "migrate_image": "migrate:v2"},
        {**AHEAD_PLAN, "migrations": [*PLANNED, {"version": 2}]},
        {},
        {"deploy_strategy": "stop", "online_fallback": False, "database_ahead": "accept"},
    )
    assert not any("ahead" in line for line in filters.plan_lines(level, {}, {}))


def test_the_summary_names_the_migrations_the_release_does_not_know_and_the_verdict() -> None:
    accepted = filters.deploy_summary({"plan": ahead_context("accept")["plan"]}).splitlines()
    assert accepted[1] == "migrations pending before the deploy: none"
    assert accepted[2].startswith(
        "database ahead of the release: migration(s) 109 applied, not in the migrate image;"
        " accepted"
    )
    refused = filters.deploy_summary({"plan": ahead_context("refuse")["plan"]})
    assert "migration(s) 109 applied, not in the migrate image; refused" in refused


@pytest.mark.parametrize("value", ["accept", "refuse"])
def test_ahead_problems_accept_accept_and_refuse(value: str) -> None:
    assert filters.ahead_problems(value) == []


@pytest.mark.parametrize("value", ["", "ignore", True, None])
def test_ahead_problems_name_the_setting_and_both_choices(value: object) -> None:
    (line,) = filters.ahead_problems(value)
    assert line.startswith(f"prosaas_database_ahead is {value!r}, it must be accept (")
    assert "or refuse (" in line


def test_tag_conflicts_names_a_tag_the_hosts_pulled_at_two_digests() -> None:
    pulls = [{"app:v2": "app@sha256:1", "redis:7": "redis@sha256:9"}, {"app:v2": "app@sha256:2"}]
    assert context.tag_conflicts(pulls) == ["app:v2 is at app@sha256:1 and app@sha256:2"]
    assert context.tag_conflicts([{"app:v2": "app@sha256:1"}, {"app:v2": "app@sha256:1"}]) == []


@pytest.mark.parametrize(
    ("strategy", "fallback", "named"),
    [
        ("stop", False, []),
        ("online", "true", []),
        ("rolling", False, ["prosaas_deploy_strategy is 'rolling'"]),
        ("online", "maybe", ["prosaas_online_fallback is 'maybe'"]),
    ],
)
def test_strategy_problems_name_the_setting_and_its_choices(
    strategy: str, fallback: object, named: list[str]
) -> None:
    problems = filters.strategy_problems(strategy, fallback)
    assert [problem.split(",")[0] for problem in problems] == named


def test_online_refusal_names_each_offline_file_its_line_and_why() -> None:
    plan = {
        "migrations": [
            {"file": "0109_a.sql", "status": "applied", "class": "offline"},
            {"file": "0110_b.sql", "status": "pending", "class": "online"},
            {
                "file": "0111_c.sql",
                "status": "pending",
                "class": "offline",
                "class_reasons": [{"line": 4, "reason": "SET NOT NULL scans call_log"}],
            },
        ]
    }
    offline = context.offline_migrations(plan)
    assert [m["file"] for m in offline] == ["0111_c.sql"]
    line = context.online_refusal(offline)
    assert "0111_c.sql (line 4: SET NOT NULL scans call_log) is not" in line
    assert "prosaas_deploy_strategy=stop" in line and "prosaas_online_fallback" in line
    assert "\n" not in line


def test_inventory_options_are_relative_to_the_project_as_operators_type_them() -> None:
    sources = ["/srv/prosaas-deploy/inventories/staging", "/etc/ansible/extra.yml"]
    options = outcome.inventory_options(sources, "/srv/prosaas-deploy")
    assert options == "-i inventories/staging -i /etc/ansible/extra.yml"


def test_a_lost_host_reason_names_the_host_its_phase_and_the_command_that_recovers_it() -> None:
    reason = outcome.lost_hosts_reason(
        ["worker1"], {"worker1": "stop"}, "-i inventories/staging", "infra1"
    )
    assert reason.startswith(
        "host worker1 (in phase stop) stopped answering over SSH and was not rolled back; once"
        " it answers, run "
    )
    assert (
        "run ansible-playbook -i inventories/staging playbooks/start.yml --limit worker1" in reason
    )
    assert "migrate container" not in reason


def test_a_migration_host_lost_while_migrating_points_at_its_migrate_container() -> None:
    reason = outcome.lost_hosts_reason(
        ["infra1", "worker1"], {"infra1": "migrate", "worker1": "migrate"}, "-i x", "infra1"
    )
    assert reason.startswith("hosts infra1 (in phase migrate), worker1 (in phase migrate) stopped")
    assert "were not rolled back; once they answer, run " in reason
    assert "--limit infra1,worker1 to bring them to the release" in reason
    assert reason.endswith(
        "the migrate container may still run on infra1: the next deploy waits for it or"
        ' refuses, naming it (RUNBOOK.md "A migrate container was left running")'
    )


def test_a_service_name_given_twice_is_one_line_naming_it() -> None:
    lists = {
        "prosaas_infra_services": [{"name": "redis", "image": "redis:7"}],
        "prosaas_app_services": [
            {"name": "redis", "image": "app:1"},
            {"name": "worker", "image": "app:1"},
        ],
    }
    assert filters.inventory_problems(lists, {}, "prosaas_app_services") == [
        "the service name 'redis' is given 2 times (prosaas_infra_services,"
        " prosaas_app_services): each service needs its own name"
    ]


def test_a_host_check_answer_is_its_line_or_all_the_host_said() -> None:
    answer = {"stdout_lines": ["noise", " prosaas-host-check: no docker SDK (pip) "]}
    assert filters.host_check_problems(answer) == "no docker SDK (pip)"
    assert filters.host_check_problems({"stdout_lines": ["prosaas-host-check: ready"]}) == "ready"
    silent = {"stdout": "", "stderr": "/bin/sh: 1: python3:\n not found", "msg": "rc 127"}
    assert filters.host_check_problems(silent) == (
        "the check did not run: /bin/sh: 1: python3: not found rc 127"
    )


def test_a_release_is_named_current_previous_or_by_its_id() -> None:
    history = {"current": {"id": "r2"}, "previous": None, "releases": [{"id": "r1"}, {"id": "r2"}]}
    assert filters.release_named(history, "current") == {"id": "r2"}
    assert filters.release_named(history, "previous") == {}
    assert filters.release_named(history, "r1") == {"id": "r1"}
    assert filters.release_named(history, "r9") == {}


def test_a_started_release_lists_each_service_image_and_its_wait() -> None:
    started = {
        "services": [{"service": "worker", "container": {"image": "app:v1"}}, {"service": "x"}],
        "waited": {"worker": 2.5},
    }
    assert filters.started_lines(started) == [
        "worker  app:v1",
        "x  -",
        "healthy after (s): worker 2.5",
    ]
    assert filters.started_lines({}) == ["healthy after (s): none waited for"]


def test_a_rollback_says_what_it_recorded_or_that_the_history_already_said_so() -> None:
    record = {"id": "r3-rollback-v1", "rolled_back_from": "r2"}
    assert filters.rollback_lines(record, True, "r2") == [
        "marked the killed deploy r2 failed",
        "recorded in the release history as r3-rollback-v1 (rolled back from r2): it is the current"
        " release now; back with `-e prosaas_rollback_to=r2`",
    ]
    assert filters.rollback_lines({"id": "r1"}, False, "") == [
        "the release history already says so: the current release r1 runs these images"
    ]
