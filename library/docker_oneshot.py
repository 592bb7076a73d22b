#!/usr/bin/python
"""Ansible module: run an image to completion as a one-shot container (the migrate step)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_oneshot
short_description: Run an image to completion in a one-shot container
description:
  - Runs one container to completion through the Docker SDK, the way the deploy runs the
    schema migration. The container is created with restart policy V(no) and no published
    ports, started, waited for, then removed.
  - Fails when the container exits with a non-zero code, judged from the exit code the
    engine records for the container and nothing else, or when it runs longer than
    O(timeout); a container that times out is killed. The failure message carries the
    last lines of its log.
  - A container left with the same name by an earlier, killed run is removed first, once
    it has ended. One still running (an earlier run whose control connection died, say)
    is never stopped and never run beside; the module waits for it up to
    O(await_timeout) seconds, and fails naming it if it still runs. The same goes for
    the containers named in O(await_containers).
  - The container is removed afterwards, on success and on failure, unless
    O(keep_container=true).
version_added: "0.1.0"
author: prosaas-deploy (!UNKNOWN)
options:
  name:
    description:
      - Container name. A container already bearing it is removed before the run, once it
        has ended (see O(await_timeout)).
    type: str
    required: true
  await_containers:
    description:
      - Other containers that must not be running while this one runs, for example the
        migrate container of a deploy whose run was lost. Each one found running is waited
        for, as a running container of O(name) is.
    type: list
    elements: str
    default: []
  await_timeout:
    description:
      - Seconds to wait for a running container of O(name) or O(await_containers) to end
        before the run. When it still runs then, the module fails naming it and runs nothing.
      - V(0) fails at once.
    type: int
    default: 0
  image:
    description: Image reference; must exist on the engine (it is never pulled).
    type: str
    required: true
  command:
    description: Command (arguments to the entrypoint); the image's default when omitted.
    type: list
    elements: str
  entrypoint:
    description: Entrypoint overriding the image's.
    type: list
    elements: str
  env:
    description: Environment variables.
    type: dict
    default: {}
  secret_env:
    description:
      - Environment variables whose values are secret (passwords, DSNs). Never logged and
        never returned; what the container itself prints is its own business.
    type: dict
    default: {}
  network:
    description:
      - User-defined network to attach the container to. It must exist, unless
        O(create_network=true); the module fails when it does not.
      - Mutually exclusive with O(network_mode).
    type: str
  create_network:
    description:
      - Create O(network) (a bridge network, labelled as managed by prosaas-deploy) when the
        engine has none of that name, as M(docker_services) does for the services. A host
        that runs none of the services, the migration host of many, has none yet.
    type: bool
    default: false
  network_mode:
    description:
      - Engine network mode, for example V(host) or V(none).
      - Mutually exclusive with O(network).
    type: str
  user:
    description: User (name or uid[:gid]) the container runs as; the image's when omitted.
    type: str
  labels:
    description: Labels, for example the project and the release.
    type: dict
    default: {}
  timeout:
    description:
      - Seconds the container may run. When they are up, it is killed and the module fails.
      - The wait is made of short calls to the engine, so this is independent of
        O(api_timeout) and of the Docker SDK's own default timeout.
    type: int
    default: 1800
  log_tail_lines:
    description: How many of the last log lines to return in RV(log_lines).
    type: int
    default: 40
  keep_container:
    description: Keep the container after the run (for debugging) instead of removing it.
    type: bool
    default: false
extends_documentation_fragment:
  - prosaas_docker
attributes:
  check_mode:
    support: full
    description: Checks that the engine answers and that the image and network exist, runs nothing,
      and says what it would have run.
  diff_mode:
    support: none
    description: A one-shot run leaves no state to compare.
notes:
  - The module runs where the Docker SDK is installed; O(docker_host) may name a remote engine.
  - The whole log is returned in RV(log); keep secrets out of what the container prints.
  - A container whose log ends with a line of JSON (the migrator's summary) gets it parsed in
    RV(summary).
seealso:
  - module: docker_services
"""

EXAMPLES = r"""
- name: Run the migrations
  docker_oneshot:
    name: prosaas-migrate
    image: prosaas-demo/migrate:v2
    command: [up]
    secret_env:
      DATABASE_URL: "{{ prosaas_database_url }}"
    network: prosaas
    labels:
      prosaas.project: prosaas
      prosaas.release: "20261124T120000Z"
    timeout: 1800
  register: migrate

- name: Show the migration log
  ansible.builtin.debug:
    var: migrate.log_lines

- name: Show what the migration applied, from the summary its log ends with
  ansible.builtin.debug:
    msg: "{{ migrate.summary.applied | default([]) }}"

- name: Migrate a database listening on the host's loopback, on a remote engine
  docker_oneshot:
    name: prosaas-migrate
    image: prosaas-demo/migrate:v2
    entrypoint: [/usr/bin/python3, -m, migrator]
    command: [up]
    secret_env:
      DATABASE_URL: "{{ prosaas_database_url }}"
    network_mode: host
    timeout: 3600
    docker_host: ssh://deploy@app2.example.com
"""

RETURN = r"""
msg:
  description: One line saying what happened (or, in check mode, what would have).
  returned: always
  type: str
  sample: "prosaas-migrate: exited with code 0 after 12.4 s"
exit_code:
  description: The container's exit code; absent when it was not run (check mode, timeout).
  returned: when the container ran to completion
  type: int
  sample: 0
duration:
  description: Seconds between the start of the container and its end (or its kill).
  returned: when the container was started
  type: float
  sample: 12.43
log:
  description: The container's whole log, stdout and stderr interleaved.
  returned: when the container was started
  type: str
  sample: "applying 0109_call_log_timing ... done\n1 migration applied\n"
log_lines:
  description: The last O(log_tail_lines) lines of the log, for the play to display.
  returned: when the container was started
  type: list
  elements: str
  sample: ["applying 0109_call_log_timing ... done", "1 migration applied"]
summary:
  description:
    - The last line of the log that parses as a JSON object, parsed; the migrator's
      commands end their log with such a line, their summary. V({}) when no line does.
  returned: when the container was started
  type: dict
  sample: {"command": "up", "applied": ["0109"], "skipped": [], "duration_ms": 1240,
           "exit_code": 0}
image_id:
  description: ID of the image that was run.
  returned: always
  type: str
  sample: sha256:dff50562eb23a1c0e6b4d1f7a8e9c3b2d4f6a8b0c2e4d6f8a0b2c4d6e8f0a2b4
actions:
  description: What was done, in order.
  returned: always
  type: list
  elements: str
  sample: ["removed leftover container prosaas-migrate (exited)",
           "ran prosaas-demo/migrate:v2 up: exit code 0 after 12.4 s",
           "removed container prosaas-migrate"]
"""

import contextlib
import shlex
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import (
    create_managed_network,
    docker_argument_spec,
    docker_client,
    find_container,
    one_line,
    require_image_id,
)
from ansible.module_utils.prosaas_failpoint import failpoint
from ansible.module_utils.prosaas_oneshot import last_json_object
from ansible.module_utils.prosaas_spec import MANAGED_BY, MANAGED_LABEL

with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    from docker.errors import APIError, DockerException, NotFound
    from requests.exceptions import RequestException

WAIT_CALL_SECONDS = 2.0
MESSAGE_TAIL_LINES = 5
FINISHED_STATES = ("exited", "dead")


def argument_spec() -> dict[str, Any]:
    return docker_argument_spec(
        name={"type": "str", "required": True},
        image={"type": "str", "required": True},
        command={"type": "list", "elements": "str"},
        entrypoint={"type": "list", "elements": "str"},
        env={"type": "dict", "default": {}},
        secret_env={"type": "dict", "default": {}, "no_log": True},
        network={"type": "str"},
        network_mode={"type": "str"},
        user={"type": "str"},
        labels={"type": "dict", "default": {}},
        timeout={"type": "int", "default": 1800},
        log_tail_lines={"type": "int", "default": 40},
        keep_container={"type": "bool", "default": False},
        create_network={"type": "bool", "default": False},
        await_containers={"type": "list", "elements": "str", "default": []},
        await_timeout={"type": "int", "default": 0},
    )


def describe_command(image: str, entrypoint: list[str] | None, command: list[str] | None) -> str:
    """The image and what it runs, as an operator would type it."""
    argv = [*(entrypoint or []), *(command or [])]
    return f"{image} {shlex.join(argv)}" if argv else f"{image} (its default command)"


def still_running(container: Any, waited: int) -> str:
    """Why a run does not start beside CONTAINER, an earlier run's, and what to do."""
    labels = container.labels or {}
    release = f", release {labels['prosaas.release']}" if "prosaas.release" in labels else ""
    started = container.attrs["State"].get("StartedAt", "")[:19]
    return (
        f"container {container.name} of an earlier run is still running (started {started}"
        f"{release}) after waiting {waited} s; no second one starts beside it: wait until it"
        f" ends (docker wait {container.name}, on its host) and run again, RUNBOOK.md"
        ' "A migrate container was left running"'
    )


def tail(lines: list[str], count: int) -> list[str]:
    return lines[-count:] if count > 0 else []


def message_tail(lines: list[str]) -> str:
    """The last few non-blank log lines on one line, for a failure message."""
    kept = [" ".join(line.split()) for line in lines if line.strip()]
    return " | ".join(kept[-MESSAGE_TAIL_LINES:]) or "(none)"


class OneshotRunner:
    """Runs one container to completion, recording each action."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.name: str = module.params["name"]
        self.actions: list[str] = []
        self.result: dict[str, Any] = {"changed": False, "actions": self.actions, "image_id": ""}
        self.validate()
        self.client = docker_client(module)

    def fail(self, reason: str) -> None:
        self.module.fail_json(msg=f"{self.name}: {reason}", **self.result)

    def validate(self) -> None:
        if self.params["timeout"] <= 0:
            self.fail(f"timeout must be a positive number of seconds, got {self.params['timeout']}")
        if self.params["log_tail_lines"] < 0:
            self.fail(f"log_tail_lines must not be negative, got {self.params['log_tail_lines']}")
        if self.params["await_timeout"] < 0:
            self.fail(f"await_timeout must not be negative, got {self.params['await_timeout']}")

    # --- checks (read only, also in check mode) ------------------------------------------

    def image_id(self) -> str:
        return require_image_id(
            self.client, self.params["image"], self.params["docker_host"], self.fail
        )

    def check_network(self) -> None:
        network = self.params["network"]
        if not network:
            return
        try:
            found = self.client.networks.get(network)
        except NotFound:
            found = None
        if found is not None and network in (found.name, found.id, found.short_id):
            return
        if not self.params["create_network"]:
            self.fail(
                f"network {network} not found on the engine at {self.params['docker_host']}: "
                "create it first"
            )
        self.result["changed"] = True
        if self.module.check_mode:
            self.actions.append(f"would have created network {network}")
            return
        create_managed_network(self.client, network)
        self.actions.append(f"created network {network}")

    def find_container(self) -> Any:
        return find_container(self.client, self.name)

    # --- the run ----------------------------------------------------------------------

    def await_earlier_runs(self) -> str | None:
        """Wait for each running container of this name or await_containers to end; the
        failure reason when one still runs after await_timeout seconds, else None."""
        deadline = time.monotonic() + self.params["await_timeout"]
        for name in dict.fromkeys([self.name, *self.params["await_containers"]]):
            container = find_container(self.client, name)
            if container is None or container.status != "running":
                continue
            started = time.monotonic()
            exit_code = self.wait_until(container, deadline)
            if exit_code is None:
                return still_running(container, self.params["await_timeout"])
            self.actions.append(
                f"waited {time.monotonic() - started:.1f} s for {name}, left running by an"
                f" earlier run, to end: exit code {exit_code}"
            )
        return None

    def remove_leftover(self) -> None:
        leftover = self.find_container()
        if leftover is None:
            return
        self.result["changed"] = True
        if self.module.check_mode:
            self.actions.append(f"would have removed leftover container {self.name}")
            return
        status = leftover.status
        leftover.remove(force=True)
        self.actions.append(f"removed leftover container {self.name} ({status})")

    def create(self) -> Any:
        params = self.params
        options: dict[str, Any] = {
            "name": self.name,
            "command": params["command"],
            "entrypoint": params["entrypoint"],
            "environment": {**params["env"], **params["secret_env"]},
            "labels": {**params["labels"], MANAGED_LABEL: MANAGED_BY},
            "user": params["user"],
            "restart_policy": {"Name": "no"},
            "detach": True,
        }
        if params["network"]:
            options["network"] = params["network"]
        if params["network_mode"]:
            options["network_mode"] = params["network_mode"]
        return self.client.containers.create(params["image"], **options)

    def wait(self, container: Any) -> tuple[int | None, float]:
        """Wait until the container ends or the timeout is up: (exit code or None, seconds).

        The engine answers the moment the container ends. Each call waits WAIT_CALL_SECONDS
        at most, so none can hit an API timeout however long the container runs; when one
        runs out, the container's state is read again (an engine that went away fails there).
        """
        started = time.monotonic()
        exit_code = self.wait_until(container, started + self.params["timeout"])
        if exit_code is None:
            with contextlib.suppress(APIError):  # it may have ended meanwhile
                container.kill()
        return exit_code, time.monotonic() - started

    @staticmethod
    def wait_until(container: Any, deadline: float) -> int | None:
        """The container's exit code once it ends, or None when DEADLINE (monotonic) comes
        first."""
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                ended = container.wait(timeout=min(WAIT_CALL_SECONDS, remaining))
                return int(ended["StatusCode"])
            except RequestException:  # this call's own time ran out, or the engine went away
                container.reload()
                state = container.attrs["State"]
                if state["Status"] in FINISHED_STATES:
                    return int(state["ExitCode"])
        return None

    def collect_log(self, container: Any) -> list[str]:
        log = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        lines = log.splitlines()
        self.result["log"] = log
        self.result["log_lines"] = tail(lines, self.params["log_tail_lines"])
        self.result["summary"] = last_json_object(log)
        return lines

    def run_container(self, container: Any) -> str | None:
        """Start and wait for the container; the failure reason, or None on success."""
        what = self.describe()
        try:
            container.start()
        except APIError as exc:
            self.collect_log(container)
            self.actions.append(f"could not start {what}")
            return f"could not start: {one_line(exc)}"
        failpoint(f"{self.name}-running")
        exit_code, duration = self.wait(container)
        self.result["duration"] = round(duration, 2)
        lines = self.collect_log(container)
        if exit_code is None:
            self.actions.append(f"ran {what}: killed after {duration:.1f} s (timeout)")
            return (
                f"timed out after {self.params['timeout']} s (killed); "
                f"last log lines: {message_tail(lines)}"
            )
        self.result["exit_code"] = exit_code
        self.actions.append(f"ran {what}: exit code {exit_code} after {duration:.1f} s")
        if exit_code != 0:
            oom = " (out of memory)" if container.attrs["State"].get("OOMKilled") else ""
            return f"exited with code {exit_code}{oom}; last log lines: {message_tail(lines)}"
        self.result["msg"] = f"{self.name}: exited with code 0 after {duration:.1f} s"
        return None

    def describe(self) -> str:
        return describe_command(
            self.params["image"], self.params["entrypoint"], self.params["command"]
        )

    def remove(self, container: Any) -> None:
        if self.params["keep_container"]:
            self.actions.append(f"kept container {self.name}")
            return
        with contextlib.suppress(NotFound):
            container.remove(force=True)
        self.actions.append(f"removed container {self.name}")

    def run(self) -> str | None:
        """Do the whole run; the failure reason, or None on success."""
        self.result["image_id"] = self.image_id()
        self.check_network()
        busy = self.await_earlier_runs()
        if busy is not None:
            return busy
        self.remove_leftover()
        what = self.describe()
        self.result["changed"] = True
        if self.module.check_mode:
            self.actions.append(f"would have run {what}")
            self.result["msg"] = f"check mode: would have run {what} as {self.name}; ran nothing"
            return None
        container = self.create()
        self.actions.append(f"created container {self.name}")
        try:
            return self.run_container(container)
        finally:
            self.remove(container)


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("network", "network_mode")],
        supports_check_mode=True,
    )
    runner = OneshotRunner(module)
    try:
        reason = runner.run()
    except (DockerException, RequestException) as exc:
        runner.fail(f"the Docker engine at {module.params['docker_host']} failed: {one_line(exc)}")
        return
    if reason is not None:
        runner.fail(reason)
    module.exit_json(**runner.result)


if __name__ == "__main__":
    main()
