"""Docker engine access shared by the prosaas modules: argument spec, import guard, client."""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.prosaas_spec import MANAGED_BY, MANAGED_LABEL

try:
    import docker
    from docker.errors import DockerException, ImageNotFound, NotFound
    from requests.exceptions import RequestException
    from urllib3.exceptions import HTTPError as Urllib3Error

    # What the SDK lets through when the engine's connection drops in the middle of a call
    # (a stream read straight from urllib3 raises its own errors).
    ENGINE_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
        OSError,
        RequestException,
        Urllib3Error,
    )
    DOCKER_IMPORT_ERROR = None
except ImportError:
    # Stand-ins for the SDK's errors, so that a module importing them still loads without the
    # SDK and fails with require_docker_sdk's one line instead of an ImportError traceback.
    DockerException = ImageNotFound = NotFound = Exception
    ENGINE_CONNECTION_ERRORS = (OSError,)
    DOCKER_IMPORT_ERROR = traceback.format_exc()

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
# How the SDK words an API error the engine gave no explanation for.
HTTP_ERROR = re.compile(r"(?P<status>\d{3}) (?:Client|Server) Error for \S+: (?P<reason>.*)")
WAIT_POLL_SECONDS = 0.1

DOCKER_COMMON_ARGS: dict[str, dict[str, Any]] = {
    "docker_host": {"type": "str", "default": DEFAULT_DOCKER_HOST},
    "api_timeout": {"type": "int", "default": 120},
}


# The registry a module logs in to (doc fragment prosaas_registry); the password is no_log.
REGISTRY_ARGS: dict[str, dict[str, Any]] = {
    "registry": {
        "type": "dict",
        "default": {},
        "options": {"host": {"type": "str"}, "user": {"type": "str"}},
    },
    "registry_password": {"type": "str", "default": "", "no_log": True},
}


def docker_argument_spec(**module_args: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the module's own arguments merged with the common Docker ones."""
    return {**DOCKER_COMMON_ARGS, **module_args}


def require_docker_sdk(module: AnsibleModule) -> None:
    if DOCKER_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("docker"), exception=DOCKER_IMPORT_ERROR)


def docker_client(module: AnsibleModule) -> docker.DockerClient:
    """Connect to the engine named by docker_host; fail with one line if it does not answer."""
    require_docker_sdk(module)
    host = module.params["docker_host"]
    try:
        client = docker.DockerClient(
            base_url=host,
            timeout=module.params["api_timeout"],
            use_ssh_client=host.startswith("ssh://"),
        )
        client.ping()
    except DockerException as exc:
        module.fail_json(msg=f"cannot reach the Docker engine at {host}: {one_line(exc)}")
    return client


def one_line(exc: BaseException) -> str:
    """The first line of an exception's text, for messages an operator reads: of an engine's
    API error, what the engine said (its explanation), without the SDK's HTTP wrapping
    ("400 Client Error for http+docker://...")."""
    text = str(getattr(exc, "explanation", None) or exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    wrapped = HTTP_ERROR.match(first)
    return f"the engine answered {wrapped['status']} {wrapped['reason']}" if wrapped else first


def find_container(client: docker.DockerClient, name: str) -> Any:
    """The container with that name, or None."""
    try:
        return client.containers.get(name)
    except NotFound:
        return None


def create_managed_network(client: docker.DockerClient, name: str) -> None:
    """A bridge network NAME, labelled as the deploy's own, as the services join it."""
    client.networks.create(name, driver="bridge", labels={MANAGED_LABEL: MANAGED_BY})


def find_image_id(client: docker.DockerClient, reference: str) -> str | None:
    """The ID of the image with that reference on the engine, or None."""
    try:
        return client.images.get(reference).id
    except ImageNotFound:
        return None


def missing_image(reference: str, docker_host: str) -> str:
    return f"image {reference} not found on the engine at {docker_host}: build or pull it first"


def require_image_id(
    client: docker.DockerClient, reference: str, docker_host: str, fail: Callable[[str], Any]
) -> str:
    """The ID of image REFERENCE; FAIL (which ends the module) says so when it is missing."""
    found = find_image_id(client, reference)
    if found is None:
        fail(missing_image(reference, docker_host))
    return found or ""


def last_health_output(state: dict[str, Any]) -> str:
    """The last health check's output on one line, from a container's State."""
    log = (state.get("Health") or {}).get("Log") or []
    if not log:
        return "(none yet)"
    output = " ".join(str(log[-1].get("Output", "")).split())
    return output or f"exit code {log[-1].get('ExitCode')}"


def last_log_lines(container: Any, count: int) -> list[str]:
    """The container's last COUNT log lines (stdout and stderr)."""
    return container.logs(tail=count).decode("utf-8", "replace").strip().splitlines()[-count:]


def log_tail(container: Any, lines: int = 5) -> str:
    """The container's last log lines, joined on one line."""
    return " | ".join(last_log_lines(container, lines)) or "(none)"


def readiness(state: dict[str, Any], wanted: str) -> str:
    """'ready', 'exited' or 'waiting': where a container stands against what is waited for.

    A container without a health check counts as healthy once it runs.
    """
    if state["Status"] in ("exited", "dead"):
        return "exited"
    health = (state.get("Health") or {}).get("Status")
    if state["Status"] == "running" and (wanted == "running" or health in ("healthy", None)):
        return "ready"
    return "waiting"


def not_ready_reason(container: Any, wanted: str, waited: int) -> str:
    """Why a container is not (yet) what was waited for, on one line."""
    state = container.attrs["State"]
    if readiness(state, wanted) == "exited":
        return (
            f"exited with code {state.get('ExitCode')} while waiting until {wanted}; "
            f"last log lines: {log_tail(container)}"
        )
    health = (state.get("Health") or {}).get("Status")
    return (
        f"not {wanted} after {waited} s (status {state['Status']}, health {health}); "
        f"last health check: {last_health_output(state)}"
    )


class NotReady(Exception):
    """A container exited, or was not ready in time; the message is one line."""

    def __init__(self, message: str, waited: dict[str, float]) -> None:
        super().__init__(message)
        self.waited = waited


def poll_ready(containers: dict[str, Any], wanted: str, timeout: float) -> dict[str, float]:
    """Poll every container together until each is WANTED; seconds until each was.

    Raises NotReady as soon as one exits, or at TIMEOUT with one clause per container not
    ready.
    """
    started = time.monotonic()
    waited: dict[str, float] = {}
    while True:
        for name in [name for name in containers if name not in waited]:
            containers[name].reload()
            standing = readiness(containers[name].attrs["State"], wanted)
            if standing == "ready":
                waited[name] = round(time.monotonic() - started, 1)
            elif standing == "exited":
                reason = not_ready_reason(containers[name], wanted, int(timeout))
                raise NotReady(f"service {name}: {reason}", waited)
        if len(waited) == len(containers):
            return waited
        if time.monotonic() - started >= timeout:
            reasons = [
                f"service {name}: {not_ready_reason(containers[name], wanted, int(timeout))}"
                for name in containers
                if name not in waited
            ]
            raise NotReady("; ".join(reasons), waited)
        time.sleep(WAIT_POLL_SECONDS)


def wait_ready(
    module: AnsibleModule, containers: dict[str, Any], wanted: str, timeout: int, **details: Any
) -> dict[str, float]:
    """poll_ready, failing the module with DETAILS in the result when a container is not."""
    try:
        return poll_ready(containers, wanted, timeout)
    except NotReady as exc:
        return module.fail_json(msg=str(exc), waited=exc.waited, **details)
