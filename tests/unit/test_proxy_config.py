"""The proxy's configuration (plugins/filter/proxy.py); HAProxy itself checks it in the e2e."""

import importlib.util

import pytest
from ansible.errors import AnsibleFilterError

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("proxy_filters", ROOT / "plugins/filter/proxy.py")
proxy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(proxy)

ROUTES = [
    {"service": "prosaas-api", "port": 8000, "listen": 8000, "publish": "127.0.0.1:8080"},
    {
        "service": "prosaas-calls",
        "port": 8000,
        "listen": 8001,
        "publish": "127.0.0.1:8081",
    },
]


def test_each_route_is_a_frontend_and_a_backend_found_by_its_service_name() -> None:
    config = proxy.haproxy_config(ROUTES, 7)
    assert "frontend prosaas-api\n    bind :8000\n    default_backend prosaas-api\n" in config
    # server slots filled from DNS: a new container can serve beside the old one
    assert "    server-template prosaas-api 3 prosaas-api:8000\n" in config
    assert "frontend prosaas-calls\n    bind :8001\n" in config
    # a route without a health path: a connect check, every second while a server is down
    assert "check inter 10s fastinter 1s downinter 1s fall 2 rise 1" in config
    assert "httpchk" not in config
    # Docker's DNS, re-resolved every second: a recreated container is found again
    assert "nameserver dns 127.0.0.11:53" in config
    assert "init-addr none resolvers docker" in config


def test_a_route_with_a_health_path_takes_a_container_once_that_answers_200() -> None:
    config = proxy.haproxy_config([{**ROUTES[0], "health": "/health"}, ROUTES[1]], 7)
    api, calls = config.split("\nbackend prosaas-api\n")[1].split("\nbackend prosaas-calls\n")
    assert "    option httpchk GET /health\n    http-check expect status 200\n" in api
    assert "httpchk" not in calls


def test_a_service_that_is_down_gets_503_with_retry_after() -> None:
    config = proxy.haproxy_config(ROUTES[:1], 7)
    assert "http-error status 503 content-type text/plain hdr Retry-After 7" in config


def test_the_proxy_service_publishes_each_route_and_carries_its_config() -> None:
    service = proxy.proxy_service(ROUTES, "prosaas-deploy/proxy:1", 5)
    assert service["name"] == "proxy"
    assert service["image"] == "prosaas-deploy/proxy:1"
    assert service["ports"] == ["127.0.0.1:8080:8000", "127.0.0.1:8081:8001"]
    assert service["env"]["HAPROXY_CONFIG"] == proxy.haproxy_config(ROUTES, 5)


@pytest.mark.parametrize(
    "routes",
    [
        {"service": "prosaas-api"},
        [{"service": "prosaas-api", "port": 8000}],
        [{**ROUTES[0], "weight": 3}],
        [{**ROUTES[0], "health": "health"}],
    ],
)
def test_a_malformed_route_list_is_one_line_naming_the_setting(routes: object) -> None:
    with pytest.raises(AnsibleFilterError, match=r"^prosaas_proxy_routes") as raised:
        proxy.haproxy_config(routes, 5)
    assert "\n" not in str(raised.value)
