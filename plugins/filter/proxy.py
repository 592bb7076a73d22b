"""The proxy's configuration: HAProxy in front of the app services.

``proxy_service(routes, image, retry_after)`` is the proxy as an infra service of one host:
its ports are the routes' ``publish`` addresses, and its ``HAPROXY_CONFIG`` the whole
configuration ``haproxy_config`` renders for those routes.
Each route is a frontend on ``listen`` and a backend whose servers are the containers of
the app service, found by the service's name on the project network through Docker's DNS
(re-resolved every second, so a container the deploy recreated is found at its new
address). The backend has ``SLOTS`` server slots (``<service>1`` ...), so a new container
that carries the same name can serve beside the old one while the old one drains. While no
server of a backend is up (the stop flow, between stop and start) the proxy answers 503
with ``Retry-After`` instead of refusing the connection.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

ROUTE_KEYS = {"service", "port", "listen", "publish"}
OPTIONAL_ROUTE_KEYS = {"health"}
HEALTH_PORT = 8405  # the proxy's own health check (monitor-uri), on its loopback only
SLOTS = 3  # containers of one service the proxy can route to at once

GLOBAL = """\
global
    stats socket /run/haproxy/admin.sock mode 660 level admin
    stats timeout 30s

defaults
    mode http
    timeout connect 2s
    timeout client 75s
    timeout server 75s
    timeout queue 5s
    timeout check 3s
    retries 3
    option redispatch 1
    default-server init-addr none resolvers docker \
check inter 10s fastinter 1s downinter 1s fall 2 rise 1

resolvers docker
    nameserver dns 127.0.0.11:53
    timeout resolve 1s
    timeout retry 1s
    hold valid 1s
    hold obsolete 1s
    hold nx 1s
    hold refused 1s
    hold timeout 1s
    hold other 1s

frontend health
    bind 127.0.0.1:{health}
    monitor-uri /healthz
"""

ROUTE = """
frontend {service}
    bind :{listen}
    default_backend {service}

backend {service}
    http-error status 503 content-type text/plain hdr Retry-After {retry_after} \
string "{service} is being deployed: retry in {retry_after} s"
{check}    server-template {service} {slots} {service}:{port}
"""
# A route with a health path is checked over HTTP: a new container takes requests only once
# its own health check passes, not as soon as its port opens.
HTTP_CHECK = """\
    option httpchk GET {health}
    http-check expect status 200
"""


def _route_problems(routes: Any) -> list[str]:
    if not isinstance(routes, list):
        return [f"prosaas_proxy_routes must be a list, not {type(routes).__name__}"]
    problems = []
    for index, route in enumerate(routes):
        if not isinstance(route, dict) or not ROUTE_KEYS <= set(route) <= ROUTE_KEYS | (
            OPTIONAL_ROUTE_KEYS
        ):
            problems.append(
                f"prosaas_proxy_routes[{index}] must have service, port, listen and publish"
                " (and may have health); fix it in the inventory's group_vars"
            )
        elif "health" in route and not str(route["health"]).startswith("/"):
            problems.append(
                f"prosaas_proxy_routes[{index}].health must be a path such as /health"
                "; fix it in the inventory's group_vars"
            )
    return problems


def haproxy_config(routes: list[dict[str, Any]], retry_after: int) -> str:
    """The whole HAProxy configuration for ROUTES; 503 answers say Retry-After seconds."""
    problems = _route_problems(routes)
    if problems:
        raise AnsibleFilterError("; ".join(problems))
    parts = [GLOBAL.format(health=HEALTH_PORT)]
    for route in routes:
        parts.append(
            ROUTE.format(
                service=route["service"],
                port=int(route["port"]),
                listen=int(route["listen"]),
                retry_after=int(retry_after),
                slots=SLOTS,
                check=HTTP_CHECK.format(health=route["health"]) if "health" in route else "",
            )
        )
    return "".join(parts)


def proxy_service(routes: list[dict[str, Any]], image: str, retry_after: int) -> dict[str, Any]:
    """The proxy of one host as a service entry: it publishes each route's port."""
    return {
        "name": "proxy",
        "image": image,
        "env": {"HAPROXY_CONFIG": haproxy_config(routes, retry_after)},
        "ports": [f"{route['publish']}:{int(route['listen'])}" for route in routes],
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"haproxy_config": haproxy_config, "proxy_service": proxy_service}
