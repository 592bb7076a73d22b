"""The deployment context: one structure per host that says where everything of a run is and
how the release replaces the running one, pure logic (the action plugin deploy_context
builds it; unit tests import these functions directly).

It is built in three steps, each once the inputs it needs are known and checked:
``place`` once the inventory check has passed (the services this host runs, its proxy and
routes, the migration host, the state host, the start batches, the docker host, the lock's
leases), ``pin`` once every host has pulled (each image by its digest, the same on every
host), and ``decide`` once preflight has read the migrate image's plan and compared what
runs (the strategy, the replace mode, what the release changes, whether there is anything
to do, whether the database is ahead of the release and if that is refused). Roles never
read it whole: the playbooks pass them its parts as arguments.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.prosaas_proxy_config import proxy_service

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
PROXY = "proxy"  # the proxy's service name; its container is the prefix then this
# A replacement beside (the online strategy) keeps the replaced container stopped for a
# rollback, so the release it replaces needs the old container beside the new one.
REPLACE_MODES = {"online": "beside", "stop": "stop_first"}


class ContextError(ValueError):
    """A run that cannot go on, with the one line that says why and what to do."""


def services_on_host(
    services: list[dict[str, Any]], service_groups: dict[str, str], host_groups: list[str]
) -> list[dict[str, Any]]:
    """The SERVICES a host in HOST_GROUPS runs: all of them when SERVICE_GROUPS (service name
    -> inventory group) is empty, as on a one-host inventory; else those of its groups."""
    if not service_groups:
        return services
    return [service for service in services if service_groups.get(service["name"]) in host_groups]


def pinned_images(services: list[dict[str, Any]], digests: dict[str, str]) -> list[dict[str, Any]]:
    """The same services on the digest each one's image was pulled at, where it was pulled."""
    return [
        {**service, "image": digests.get(service["image"], service["image"])}
        for service in services
    ]


def service_images(services: list[dict[str, Any]]) -> dict[str, str]:
    """The image each service runs, by service name."""
    return {service["name"]: service["image"] for service in services}


def start_batches(hosts: list[str], size: int) -> list[list[str]]:
    """HOSTS in batches of SIZE, in their order (0: all in one batch)."""
    step = size or len(hosts) or 1
    return [hosts[start : start + step] for start in range(0, len(hosts), step)]


def leases(settings: dict[str, Any], batches: int) -> dict[str, int]:
    """Seconds each renewal of the deploy lock holds it: the lease plus the longest the work
    it covers may take. lock: preflight may bring the database services up healthy first;
    begin: the stop and infra phases, the migration, the verify, then the start, batch after
    batch (renewed before the stop, so that no renewal falls inside the stop flow's window);
    rollback: a stop, then a start of a release (the runbook's start.yml, stop.yml and
    rollback.yml too); manual_migrate: migrate.yml's database brought up, an earlier migrate
    container waited for, then the migration; backfill: backfill.yml's job."""
    lease = int(settings["lock_lease_seconds"])
    stop, health = int(settings["stop_timeout"]), int(settings["health_timeout"])
    migrate = int(settings["migrate_timeout"])
    return {
        "lock": lease + health,
        "begin": lease + stop + health + migrate + (health + stop) * batches,
        "rollback": lease + stop + health,
        "manual_migrate": lease + health + int(settings["leftover_migrate_wait"]) + migrate,
        "backfill": lease + int(settings["backfill_timeout"]),
    }


def host_proxy(settings: dict[str, Any], app_services: list[dict[str, Any]]) -> dict[str, Any]:
    """This host's proxy: the routes to the app services it runs, the service entry that
    runs it (None when it routes to nothing here), its container and its backends."""
    here = {service["name"] for service in app_services}
    routes = [route for route in settings["proxy_routes"] or [] if route["service"] in here]
    service = (
        proxy_service(
            routes,
            settings["proxy_image"],
            settings["proxy_retry_after"],
            bind=settings["proxy_bind"],
            tls_certificate=settings["proxy_tls_certificate"],
            tls_key=settings["proxy_tls_key"],
            http_redirect_port=settings["proxy_http_redirect_port"],
        )
        if routes
        else None
    )
    return {
        "container": f"{settings['container_prefix']}{PROXY}",
        "backends": [route["service"] for route in routes],
        "service": service,
    }


def place(
    settings: dict[str, Any], host: str, host_groups: list[str], play_hosts: list[str]
) -> dict[str, Any]:
    """The context of HOST (in HOST_GROUPS) in a run over PLAY_HOSTS, before any pull: images
    as the inventory names them, the strategy as the inventory asks for it."""
    groups = settings["service_groups"] or {}
    app = services_on_host(settings["app_services"], groups, host_groups)
    proxy = host_proxy(settings, app)
    infra = services_on_host(settings["infra_services"], groups, host_groups) + (
        [proxy["service"]] if proxy["service"] else []
    )
    migration_host = settings["migration_host"] or play_hosts[0]
    batches = start_batches(play_hosts, int(settings["start_batch_size"] or 0))
    registry = (settings["registry"] or {}).get("host") or ""
    migrates = host == migration_host
    images = [service["image"] for service in infra + app] + (
        [settings["migrate_image"]] if migrates else []
    )
    return {
        "host": host,
        "docker_host": settings["docker_host"] or DEFAULT_DOCKER_HOST,
        "network": settings["network"],
        "container_prefix": settings["container_prefix"],
        "infra_services": infra,
        "app_services": app,
        # Every app service's image, wherever it runs: the one history serves every host.
        "release_images": service_images(settings["app_services"]),
        "proxy": {"container": proxy["container"], "backends": proxy["backends"]},
        "migrate_image": settings["migrate_image"],
        "migration_host": migration_host,
        "migrates": migrates,
        "state_host": settings["state_host"],
        "state_dir": settings["state_dir"],
        "on_many_hosts": len(play_hosts) > 1,
        "start_batches": batches,
        "leases": leases(settings, len(batches)),
        "registry": registry,
        # What this host pulls from the registry, each image once.
        "pulls": list(
            dict.fromkeys(i for i in images if registry and i.startswith(f"{registry}/"))
        ),
        "digests": {},
        "strategy": settings["deploy_strategy"],
        "replace": REPLACE_MODES.get(settings["deploy_strategy"], "stop_first"),
    }


def tag_conflicts(pulls: list[dict[str, str]]) -> list[str]:
    """A line per image reference that the hosts' pulls (reference -> digest) pinned apart."""
    seen: dict[str, set[str]] = {}
    for digests in pulls:
        for reference, pinned in digests.items():
            seen.setdefault(reference, set()).add(pinned)
    return [
        f"{reference} is at {' and '.join(sorted(pinned))}"
        for reference, pinned in seen.items()
        if len(pinned) > 1
    ]


def pulled_digests(result: dict[str, Any] | None) -> dict[str, str]:
    """Image reference -> digest reference, from one host's registered pull loop."""
    return {
        reference: pinned
        for item in (result or {}).get("results") or []
        for reference, pinned in (item.get("digests") or {}).items()
    }


def would_pull(result: dict[str, Any] | None) -> list[str]:
    """The images a check run would pull, from one host's registered pull loop."""
    return [
        image
        for item in (result or {}).get("results") or []
        for image in item.get("would_pull") or []
    ]


def pin(
    context: dict[str, Any], pulls: list[dict[str, Any] | None], own: dict[str, Any] | None
) -> dict[str, Any]:
    """CONTEXT once every host pulled (PULLS: each host's registered pull loop, OWN: this
    host's): every image by the digest the hosts pulled it at, the same on every host."""
    digests = [pulled_digests(result) for result in pulls]
    moved = tag_conflicts(digests)
    if moved:
        raise ContextError(
            f"a tag moved in the registry while the hosts pulled it ({'; '.join(moved)}):"
            " deploy again once the tag stays put"
        )
    pinned = {reference: digest for host in digests for reference, digest in host.items()}
    return {
        **context,
        "infra_services": pinned_images(context["infra_services"], pinned),
        "app_services": pinned_images(context["app_services"], pinned),
        "release_images": {
            name: pinned.get(image, image) for name, image in context["release_images"].items()
        },
        "migrate_image": pinned.get(context["migrate_image"], context["migrate_image"]),
        "digests": pinned,
        "would_pull": would_pull(own),
    }


def offline_migrations(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's pending migrations that the running release cannot live with."""
    return [
        migration
        for migration in plan.get("migrations") or []
        if migration.get("status") == "pending" and migration.get("class") != "online"
    ]


def online_refusal(migrations: list[dict[str, Any]]) -> str:
    """One line naming, for each migration of MIGRATIONS, the statement that makes it
    offline and why."""
    named = []
    for migration in migrations:
        first = (migration.get("class_reasons") or [{}])[0]
        why = f"line {first['line']}: {first['reason']}" if first else "class not known"
        named.append(f"{migration['file']} ({why})")
    return (
        f"the online strategy needs every pending migration to be online, and {'; '.join(named)}"
        f" {'is' if len(named) == 1 else 'are'} not: deploy with prosaas_deploy_strategy=stop,"
        " or set prosaas_online_fallback: true to let such a deploy stop the app services"
    )


def strategy(asked: str, plan: dict[str, Any], fallback: bool) -> tuple[str, str]:
    """The strategy a run takes (ASKED, or stop when online cannot run PLAN's migrations and
    FALLBACK allows it) and how the plan says it; ContextError when online must refuse."""
    offline = offline_migrations(plan)
    if asked != "online" or not offline:
        return asked, asked
    if not fallback:
        raise ContextError(online_refusal(offline))
    files = ", ".join(migration["file"] for migration in offline)
    return "stop", f"stop (online asked, but {files} cannot run under the running release)"


def unknown_applied(plan: dict[str, Any]) -> list[int]:
    """The versions PLAN (the migrate image's summary) says are applied but the image does
    not carry: the database is ahead of the release (a later release migrated it)."""
    migrations = plan.get("migrations") or []
    carried = {int(migration["version"]) for migration in migrations if "version" in migration}
    return sorted({int(version) for version in plan.get("applied") or []} - carried)


def ahead_refusal(versions: list[int], migrate_image: str) -> str:
    """One line refusing a release whose migrate image lacks applied VERSIONS, as
    prosaas_database_ahead: refuse asks."""
    named = ", ".join(map(str, versions))
    return (
        f"the database is ahead of this release: migration(s) {named} are applied but not in"
        f" its migrate image {migrate_image}, and prosaas_database_ahead is refuse: go back to"
        " the previous release with playbooks/rollback.yml -e prosaas_rollback_to=previous,"
        " deploy a release whose migrate image carries them, or set prosaas_database_ahead:"
        " accept to run this one on the newer schema"
    )


def kept_plan(plan: dict[str, Any], ahead: list[int], setting: str) -> dict[str, Any]:
    """PLAN as the context keeps it (the report shows it): with the applied versions the
    image does not carry (AHEAD) and what prosaas_database_ahead (SETTING) made of them."""
    return {**plan, "unknown_applied": ahead, "database_ahead": setting} if plan else {}


def changed_services(compared: dict[str, Any] | None) -> list[str]:
    """The services a comparison (docker_services in check mode) found the release changes."""
    return [
        service["service"]
        for service in (compared or {}).get("services") or []
        if service.get("actions")
    ]


def decide(
    context: dict[str, Any],
    plan: dict[str, Any],
    changed_services: dict[str, list[str]],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """CONTEXT once preflight has read the migration host's PLAN (the migrate image's
    summary) and every host compared what it runs (CHANGED_SERVICES: host -> the services the
    release changes there): the strategy and replace mode, what the release changes, and
    whether there is anything to do at all. The plan it keeps names the applied versions the
    image does not carry (unknown_applied): a database ahead of the release, which runs on
    it unless prosaas_database_ahead is refuse. When the deploy must be refused (that, or
    online cannot run a pending migration), "refusal" says why on the migration host only,
    so the failure names it; the context stays whole, since the rescue reads it (a failed
    step would replace the registered context)."""
    asked = settings["deploy_strategy"]
    refusal = ""
    try:
        chosen, note = strategy(asked, plan, bool(settings["online_fallback"]))
    except ContextError as error:
        refusal = str(error)
        chosen, note = asked, asked
    ahead = unknown_applied(plan)
    if ahead and settings["database_ahead"] == "refuse":
        refusal = ahead_refusal(ahead, context["migrate_image"])
    pending = list(plan.get("pending") or [])
    changed = any(changed_services.values())
    return {
        **context,
        "strategy": chosen,
        "strategy_note": note,
        "replace": REPLACE_MODES[chosen],
        "plan": kept_plan(plan, ahead, settings["database_ahead"]) if context["migrates"] else {},
        "changes": {
            "migrations": pending if context["migrates"] else [],
            "services": changed_services.get(context["host"], []),
        },
        "nothing_to_do": not (changed or pending),
        "refusal": refusal if context["migrates"] else "",
    }
