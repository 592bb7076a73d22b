"""The proxy's configuration (module_utils/prosaas_proxy_config.py); HAProxy itself checks it
in the e2e and in tests/integration/test_proxy_tls.py."""

import prosaas_proxy_config as proxy
import pytest

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
    assert "check inter 10s fastinter 1s downinter 250ms fall 2 rise 1" in config
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
    with pytest.raises(ValueError, match=r"^prosaas_proxy_routes") as raised:
        proxy.haproxy_config(routes, 5)
    assert "\n" not in str(raised.value)


# --- Where the proxy listens, and TLS ------------------------------------------------

CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIcert\n-----END CERTIFICATE-----"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIkey\n-----END PRIVATE KEY-----"  # the filter parses neither
EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 - the setting under test, never bound here
ON_EVERY_ADDRESS = [
    {**ROUTES[0], "publish": "0.0.0.0:443", "health": "/health"},
    {**ROUTES[1], "publish": "0.0.0.0:8443", "health": "/health"},
]


def tls_proxy(routes: list[dict], **settings: object) -> dict:
    return proxy.proxy_service(
        routes, "prosaas-deploy/proxy:1", 5, tls_certificate=CERTIFICATE, tls_key=KEY, **settings
    )


def test_without_a_certificate_the_config_is_plain_http_as_before() -> None:
    service = proxy.proxy_service(ROUTES, "prosaas-deploy/proxy:1", 5, tls_certificate="")
    config = service["env"]["HAPROXY_CONFIG"]
    assert "frontend prosaas-api\n    bind :8000\n    default_backend prosaas-api\n" in config
    assert "ssl" not in config
    assert "http-redirect" not in config
    assert "secret_files" not in service


def test_with_a_certificate_every_route_terminates_tls_with_the_file_of_the_pem() -> None:
    service = tls_proxy(ON_EVERY_ADDRESS)
    config = service["env"]["HAPROXY_CONFIG"]
    for name, listen in (("prosaas-api", 8000), ("prosaas-calls", 8001)):
        assert (
            f"frontend {name}\n    bind :{listen} ssl crt /run/haproxy/tls.pem\n"
            "    http-request set-header X-Forwarded-Proto https\n"
            f"    default_backend {name}\n"
        ) in config
    # the backends are still checked over HTTP inside the network, and answer 503 when down
    assert config.count("    option httpchk GET /health\n") == 2
    assert "check-ssl" not in config
    assert config.count("hdr Retry-After 5") == 2
    assert service["ports"] == ["0.0.0.0:443:8000", "0.0.0.0:8443:8001"]


def test_the_pem_is_a_secret_file_and_never_in_the_config_or_the_ports() -> None:
    service = tls_proxy(ON_EVERY_ADDRESS)
    assert service["secret_files"] == {"/run/haproxy/tls.pem": f"{CERTIFICATE}\n{KEY}\n"}
    visible = str({key: value for key, value in service.items() if key != "secret_files"})
    assert "MIIkey" not in visible
    assert "MIIcert" not in visible


def test_the_http_redirect_is_published_on_the_bind_address_and_goes_to_the_api() -> None:
    service = tls_proxy(ON_EVERY_ADDRESS, bind=EVERY_ADDRESS, http_redirect_port=80)
    config = service["env"]["HAPROXY_CONFIG"]
    assert service["ports"][-1] == "0.0.0.0:80:8480"
    redirect = config.split("\nfrontend http-redirect\n")[1]
    assert redirect.startswith("    bind :8480\n")
    # to the same host without its port, and the same path and query; 443 needs no port
    assert (
        "http-request redirect location https://%[req.hdr(host),regsub(:[0-9]+$,)]%[pathq]"
        " code 308\n"
    ) in redirect
    assert "deny_status 400 unless { req.hdr(host) -m found }" in redirect


def test_the_http_redirect_names_the_port_of_the_first_route_unless_443() -> None:
    config = tls_proxy(ROUTES[1:], bind="127.0.0.1", http_redirect_port="8082")
    assert "regsub(:[0-9]+$,)]:8081%[pathq] code 308" in config["env"]["HAPROXY_CONFIG"]
    assert config["ports"][-1] == "127.0.0.1:8082:8480"


@pytest.mark.parametrize("port", [0, "", None])
def test_no_http_redirect_port_is_no_redirect(port: object) -> None:
    service = tls_proxy(ON_EVERY_ADDRESS, http_redirect_port=port)
    assert "http-redirect" not in service["env"]["HAPROXY_CONFIG"]
    assert service["ports"] == ["0.0.0.0:443:8000", "0.0.0.0:8443:8001"]


@pytest.mark.parametrize(
    "settings",
    [
        {"tls_certificate": CERTIFICATE},
        {"tls_key": KEY},
        {"http_redirect_port": 80},
    ],
)
def test_half_a_tls_setup_is_refused_without_quoting_the_key(settings: dict) -> None:
    with pytest.raises(ValueError, match="inventory check") as raised:
        proxy.proxy_service(ROUTES, "prosaas-deploy/proxy:1", 5, **settings)
    assert "MIIkey" not in str(raised.value)


def test_a_route_on_a_port_the_proxy_keeps_is_refused() -> None:
    with pytest.raises(ValueError, match=r"prosaas_proxy_routes\[0\]\.listen is 8480"):
        proxy.haproxy_config([{**ROUTES[0], "listen": 8480}], 5)
