"""The deployment context (module_utils/prosaas_context.py): placement, pinning, the strategy."""

import re

import pytest
from ansible.module_utils.prosaas_context import (
    ContextError,
    changed_services,
    decide,
    leases,
    pin,
    place,
    start_batches,
    unknown_applied,
)

API = {"name": "prosaas-api", "image": "registry.test:5000/prosaas/api:v2"}
CALLS = {"name": "prosaas-calls", "image": "registry.test:5000/prosaas/api:v2"}
WORKER = {"name": "worker", "image": "registry.test:5000/prosaas/api:v2"}
REDIS = {"name": "redis", "image": "redis:7"}
ROUTES = [
    {"service": "prosaas-api", "port": 8000, "listen": 8000, "publish": "127.0.0.1:8080"},
    {"service": "prosaas-calls", "port": 8000, "listen": 8001, "publish": "127.0.0.1:8081"},
]
SETTINGS = {
    "docker_host": "",
    "network": "prosaas",
    "container_prefix": "t-",
    "service_groups": {},
    "infra_services": [REDIS],
    "app_services": [API, CALLS, WORKER],
    "proxy_routes": ROUTES,
    "proxy_image": "prosaas-deploy/proxy:1",
    "proxy_retry_after": 5,
    "proxy_bind": "127.0.0.1",
    "proxy_tls_certificate": "",
    "proxy_tls_key": "",
    "proxy_http_redirect_port": 0,
    "migrate_image": "registry.test:5000/prosaas/migrate:v2",
    "migration_host": "",
    "state_host": "app1",
    "state_dir": "/var/lib/prosaas-deploy",
    "start_batch_size": 0,
    "registry": {"host": "registry.test:5000"},
    "deploy_strategy": "online",
    "online_fallback": False,
    "database_ahead": "accept",
    "lock_lease_seconds": 120,
    "stop_timeout": 30,
    "health_timeout": 60,
    "migrate_timeout": 1800,
    "leftover_migrate_wait": 60,
    "backfill_timeout": 7200,
}
GROUPS = {"redis": "infra", "prosaas-api": "infra", "prosaas-calls": "calls", "worker": "jobs"}


def test_one_host_runs_everything_behind_its_proxy_and_migrates() -> None:
    context = place(SETTINGS, "app1", ["prosaas"], ["app1"])
    assert [s["name"] for s in context["infra_services"]] == ["redis", "proxy"]
    assert context["proxy"] == {
        "container": "t-proxy",
        "backends": ["prosaas-api", "prosaas-calls"],
    }
    assert context["migrates"] and context["migration_host"] == "app1"
    assert context["docker_host"] == "unix:///var/run/docker.sock"
    assert context["replace"] == "beside"
    # Each registry image once, the migrate image on the migration host only.
    assert context["pulls"] == [API["image"], SETTINGS["migrate_image"]]


def test_a_host_of_many_runs_its_groups_services_and_routes_only_to_them() -> None:
    settings = {**SETTINGS, "service_groups": GROUPS, "start_batch_size": 2}
    hosts = ["infra1", "calls1", "worker1"]
    calls = place(settings, "calls1", ["prosaas", "calls"], hosts)
    assert [s["name"] for s in calls["app_services"]] == ["prosaas-calls"]
    assert calls["proxy"]["backends"] == ["prosaas-calls"]
    assert not calls["migrates"] and calls["migration_host"] == "infra1"
    assert calls["start_batches"] == [["infra1", "calls1"], ["worker1"]]
    assert calls["on_many_hosts"]
    worker = place(settings, "worker1", ["prosaas", "jobs"], hosts)
    assert worker["infra_services"] == []  # no route here: no proxy
    assert worker["proxy"]["backends"] == []
    # The release's images are every host's, whatever this host runs.
    assert set(worker["release_images"]) == {"prosaas-api", "prosaas-calls", "worker"}


def test_batches_of_zero_are_all_hosts_at_once() -> None:
    assert start_batches(["a", "b", "c"], 0) == [["a", "b", "c"]]
    assert start_batches(["a", "b", "c"], 1) == [["a"], ["b"], ["c"]]


def test_the_lease_arithmetic_covers_each_renewal() -> None:
    assert leases(SETTINGS, 3) == {
        "lock": 180,
        "begin": 120 + 30 + 60 + 1800 + (60 + 30) * 3,
        "rollback": 210,
        "manual_migrate": 120 + 60 + 60 + 1800,
        "backfill": 120 + 7200,
    }


def pull_result(digests: dict) -> dict:
    return {"results": [{"digests": digests, "would_pull": []}]}


def test_pinning_runs_every_image_by_the_digest_the_hosts_pulled() -> None:
    context = place(SETTINGS, "app1", ["prosaas"], ["app1", "app2"])
    pinned_api = "registry.test:5000/prosaas/api@sha256:" + "a" * 64
    pulls = [pull_result({API["image"]: pinned_api}), pull_result({API["image"]: pinned_api})]
    pinned = pin(context, pulls, pulls[0])
    assert {s["image"] for s in pinned["app_services"]} == {pinned_api}
    assert pinned["release_images"]["worker"] == pinned_api
    assert pinned["migrate_image"] == SETTINGS["migrate_image"]  # not pulled: as named


def test_a_tag_that_moved_between_two_hosts_pulls_is_refused() -> None:
    context = place(SETTINGS, "app1", ["prosaas"], ["app1", "app2"])
    pulls = [
        pull_result({API["image"]: "registry.test:5000/prosaas/api@sha256:" + "a" * 64}),
        pull_result({API["image"]: "registry.test:5000/prosaas/api@sha256:" + "b" * 64}),
    ]
    with pytest.raises(ContextError, match="a tag moved in the registry"):
        pin(context, pulls, pulls[0])


OFFLINE_PLAN = {
    "pending": [110],
    "migrations": [
        {
            "file": "0110_x.sql",
            "status": "pending",
            "class": "offline",
            "class_reasons": [{"line": 3, "reason": "ALTER TABLE takes ACCESS EXCLUSIVE"}],
        }
    ],
}


def test_online_falls_back_to_stop_when_allowed_and_says_why() -> None:
    context = place(SETTINGS, "app1", ["prosaas"], ["app1"])
    decided = decide(context, OFFLINE_PLAN, {"app1": []}, {**SETTINGS, "online_fallback": True})
    assert decided["strategy"] == "stop" and decided["replace"] == "stop_first"
    assert "0110_x.sql cannot run under the running release" in decided["strategy_note"]
    assert decided["changes"] == {"migrations": [110], "services": []}
    assert not decided["nothing_to_do"]


def test_online_without_fallback_is_refused_on_the_migration_host_only() -> None:
    hosts = ["app1", "app2"]
    placed = place(SETTINGS, "app1", ["prosaas"], hosts)
    refused = decide(placed, OFFLINE_PLAN, {}, SETTINGS)
    assert re.search(r"0110_x.sql \(line 3: ALTER TABLE", refused["refusal"]), refused["refusal"]
    # The rescue reads the context the refusal keeps whole.
    assert refused["leases"] == placed["leases"] and refused["app_services"]
    other = decide(place(SETTINGS, "app2", ["prosaas"], hosts), OFFLINE_PLAN, {}, SETTINGS)
    assert other["strategy"] == "online" and other["refusal"] == ""


def test_nothing_to_do_only_when_no_host_changes_and_nothing_is_pending() -> None:
    context = place({**SETTINGS, "deploy_strategy": "stop"}, "app1", ["prosaas"], ["app1", "app2"])
    plan = {"pending": [], "migrations": []}
    assert decide(context, plan, {"app1": [], "app2": []}, SETTINGS)["nothing_to_do"]
    changed = decide(context, plan, {"app1": [], "app2": ["worker"]}, SETTINGS)
    assert not changed["nothing_to_do"]
    assert changed["changes"]["services"] == []  # app1's own changes


def test_a_compared_service_changes_when_the_comparison_has_actions_for_it() -> None:
    compared = {
        "services": [
            {"service": "redis", "actions": []},
            {"service": "worker", "actions": ["recreate"]},
        ]
    }
    assert changed_services(compared) == ["worker"]
    assert changed_services(None) == []


def test_the_proxy_image_is_pulled_from_the_registry_where_the_proxy_runs() -> None:
    settings = {**SETTINGS, "proxy_image": "registry.test:5000/prosaas-deploy/proxy:1"}
    context = place(settings, "app1", ["prosaas"], ["app1"])
    assert "registry.test:5000/prosaas-deploy/proxy:1" in context["pulls"]


# v2 applied 109; v1's migrate image carries 1 and 2 only.
AHEAD_PLAN = {
    "applied": [1, 2, 109],
    "pending": [],
    "migrations": [{"version": 1, "status": "applied"}, {"version": 2, "status": "applied"}],
}


def test_unknown_applied_are_the_applied_versions_the_image_does_not_carry() -> None:
    assert unknown_applied(AHEAD_PLAN) == [109]
    assert unknown_applied({**AHEAD_PLAN, "applied": [1]}) == []
    assert unknown_applied({}) == []


def test_a_database_ahead_is_accepted_by_default_and_kept_in_the_plan() -> None:
    context = place({**SETTINGS, "deploy_strategy": "stop"}, "app1", ["prosaas"], ["app1"])
    decided = decide(
        context, AHEAD_PLAN, {"app1": ["worker"]}, {**SETTINGS, "deploy_strategy": "stop"}
    )
    assert decided["refusal"] == ""
    assert decided["plan"]["unknown_applied"] == [109]
    assert decided["plan"]["database_ahead"] == "accept"
    assert decided["changes"] == {"migrations": [], "services": ["worker"]}


def test_a_database_ahead_is_refused_on_the_migration_host_when_the_inventory_says_so() -> None:
    settings = {**SETTINGS, "deploy_strategy": "stop", "database_ahead": "refuse"}
    hosts = ["app1", "app2"]
    refused = decide(place(settings, "app1", ["prosaas"], hosts), AHEAD_PLAN, {}, settings)
    line = refused["refusal"]
    assert line.startswith(
        "the database is ahead of this release: migration(s) 109 are applied but not in its"
        " migrate image registry.test:5000/prosaas/migrate:v2, and prosaas_database_ahead is"
        " refuse: go back to the previous release with playbooks/rollback.yml"
    ), line
    assert "\n" not in line
    assert refused["app_services"] and refused["leases"]  # whole, for the rescue
    other = decide(place(settings, "app2", ["prosaas"], hosts), AHEAD_PLAN, {}, settings)
    assert other["refusal"] == ""


def test_a_refused_database_ahead_is_the_refusal_even_when_online_cannot_run() -> None:
    settings = {**SETTINGS, "database_ahead": "refuse"}
    plan = {
        **OFFLINE_PLAN,
        "applied": [1, 111],
        "migrations": [{"version": 1}, *OFFLINE_PLAN["migrations"]],
    }
    plan["migrations"][1] = {**plan["migrations"][1], "version": 110}
    refused = decide(place(settings, "app1", ["prosaas"], ["app1"]), plan, {}, settings)
    assert "migration(s) 111 are applied" in refused["refusal"]
