"""The proxy's configuration: HAProxy in front of the app services, pure logic.

``proxy_service(routes, image, retry_after, ...)`` is the proxy as an infra service of one
host: its ports are the routes' ``publish`` addresses, and its ``HAPROXY_CONFIG`` the whole
configuration ``haproxy_config`` renders for those routes.
With a TLS certificate and key, every route's frontend terminates TLS with them: they reach
the container as one PEM file (``TLS_PEM``, certificate, chain, then key) among the
service's ``secret_files``, which docker_services puts into it before it starts, readable by
HAProxy's user alone; the configuration only names the file. An HTTP redirect port then
publishes one more frontend that answers every request with a 308 to the same host and path
over HTTPS, on the first route's published port (the api, where it runs).
The inventory check of those settings (the proxy filters' ``proxy_problems``) runs on the
control node before anything is touched.
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

ROUTE_KEYS = {"service", "port", "listen", "publish"}
OPTIONAL_ROUTE_KEYS = {"health"}
HEALTH_PORT = 8405  # the proxy's own health check (monitor-uri), on its loopback only
HTTP_REDIRECT_PORT = 8480  # where the HTTP redirect listens in the container
RESERVED_PORTS = (HEALTH_PORT, HTTP_REDIRECT_PORT)
SLOTS = 3  # containers of one service the proxy can route to at once
# The certificate, its chain and its key, as docker_services puts the file (secret_files).
TLS_PEM = "/run/haproxy/tls.pem"

# A server that is DOWN (a container just started in place) is checked every 250 ms, and
# the engine's DNS every 250 ms, so the stop flow's window ends a quarter of a second after
# the new container answers its health path; an UP server is checked every 10 s.
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
check inter 10s fastinter 1s downinter 250ms fall 2 rise 1

resolvers docker
    nameserver dns 127.0.0.11:53
    timeout resolve 250ms
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
    bind :{listen}{tls}
{forwarded}    default_backend {service}

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
# With TLS, each route's frontend terminates it, and tells the app the request came over it.
TLS_BIND = f" ssl crt {TLS_PEM}"
FORWARDED_PROTO = "    http-request set-header X-Forwarded-Proto https\n"
# Every request on the HTTP port: a 308 (the method and body kept) to the same host, with
# the port of its Host header replaced, and the same path and query, over HTTPS.
HTTP_REDIRECT = """
frontend http-redirect
    bind :{listen}
    http-request deny deny_status 400 unless {{ req.hdr(host) -m found }}
    http-request redirect location https://%[req.hdr(host),regsub(:[0-9]+$,)]{port}%[pathq] \
code 308
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
        elif int(route["listen"]) in RESERVED_PORTS:
            problems.append(
                f"prosaas_proxy_routes[{index}].listen is {route['listen']}, which the proxy"
                f" keeps for itself ({', '.join(map(str, RESERVED_PORTS))}): choose another port"
            )
    return problems


def _published_port(route: dict[str, Any]) -> int:
    """The host port a route is published on ('address:port' or 'port')."""
    port = str(route["publish"]).rsplit(":", 1)[-1]
    if not port.isdigit():
        raise ValueError(
            f"prosaas_proxy_routes ({route['service']}).publish is {route['publish']!r}: the HTTP"
            " redirect needs the port it is published on, as in 0.0.0.0:443"
        )
    return int(port)


def _http_redirect(route: dict[str, Any]) -> str:
    """The HTTP redirect's frontend, to ROUTE's published port over HTTPS."""
    port = _published_port(route)
    return HTTP_REDIRECT.format(listen=HTTP_REDIRECT_PORT, port="" if port == 443 else f":{port}")


def haproxy_config(
    routes: list[dict[str, Any]], retry_after: int, tls: bool = False, http_redirect: bool = False
) -> str:
    """The whole HAProxy configuration for ROUTES; 503 answers say Retry-After seconds. TLS:
    every route's frontend terminates TLS with TLS_PEM; HTTP_REDIRECT: plus the frontend
    that redirects HTTP to the first route over HTTPS."""
    problems = _route_problems(routes)
    if problems:
        raise ValueError("; ".join(problems))
    parts = [GLOBAL.format(health=HEALTH_PORT)]
    for route in routes:
        parts.append(
            ROUTE.format(
                service=route["service"],
                port=int(route["port"]),
                listen=int(route["listen"]),
                tls=TLS_BIND if tls else "",
                forwarded=FORWARDED_PROTO if tls else "",
                retry_after=int(retry_after),
                slots=SLOTS,
                check=HTTP_CHECK.format(health=route["health"]) if "health" in route else "",
            )
        )
    if http_redirect and routes:
        parts.append(_http_redirect(routes[0]))
    return "".join(parts)


def pem(text: Any) -> str:
    """PEM text as a setting holds it, "" for none; the file lookup strips the last newline."""
    return str(text).strip() if text else ""


def proxy_service(
    routes: list[dict[str, Any]],
    image: str,
    retry_after: int,
    *,
    bind: str = "127.0.0.1",
    tls_certificate: str = "",
    tls_key: str = "",
    http_redirect_port: Any = 0,
) -> dict[str, Any]:
    """The proxy of one host as a service entry: it publishes each route's port, and with a
    certificate and its key terminates TLS, the HTTP redirect published on BIND."""
    certificate, key = pem(tls_certificate), pem(tls_key)
    redirect = int(http_redirect_port or 0)
    if bool(certificate) != bool(key) or (redirect and not certificate):
        raise ValueError(
            "the proxy's TLS settings are incomplete: run the deploy's inventory check"
            " (it names what is missing)"
        )
    service: dict[str, Any] = {
        "name": "proxy",
        "image": image,
        "env": {
            "HAPROXY_CONFIG": haproxy_config(
                routes, retry_after, tls=bool(certificate), http_redirect=bool(redirect)
            )
        },
        "ports": [f"{route['publish']}:{int(route['listen'])}" for route in routes],
    }
    if redirect:
        service["ports"].append(f"{bind}:{redirect}:{HTTP_REDIRECT_PORT}")
    if certificate:
        service["secret_files"] = {TLS_PEM: f"{certificate}\n{key}\n"}
    return service
