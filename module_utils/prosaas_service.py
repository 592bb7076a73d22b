"""One service's container created, recreated when its spec changed, and started: the work
docker_services does for each of its entries."""

from __future__ import annotations

import contextlib
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import (
    create_managed_network,
    find_container,
    find_image_id,
    one_line,
    require_image_id,
)
from ansible.module_utils.prosaas_secret_files import (
    put_secret_files,
    secret_file_differences,
)
from ansible.module_utils.prosaas_spec import (
    MANAGED_BY,
    MANAGED_LABEL,
    SPEC_LABEL,
    build_spec,
    healthcheck_for_sdk,
    ports_for_sdk,
    secret_env_differences,
    spec_differences,
    spec_from_labels,
    spec_to_label,
    volumes_for_sdk,
)

with contextlib.suppress(ImportError):  # reported by docker_client() via missing_required_lib
    import docker

# Beside the service's container while a new one takes over (replace=beside), and the old
# one kept stopped afterwards until the release is recorded, for a rollback without downtime.
NEXT_SUFFIX = "-next"
PREVIOUS_SUFFIX = "-previous"


class ServiceManager:
    """Brings one container to its wanted spec and starts it, recording each action."""

    def __init__(
        self, module: AnsibleModule, client: docker.DockerClient, params: dict[str, Any]
    ) -> None:
        self.module = module
        self.params = params
        self.name = params["name"]
        self.client = client
        self.actions: list[str] = []
        self.differences: list[str] = []
        self.running_image = ""  # what its container ran before this call; "" when none
        self.changed = False
        self.diff: dict[str, Any] = {"before": {}, "after": {}}

    def fail(self, reason: str) -> None:
        self.module.fail_json(
            msg=f"service {self.name}: {reason}", actions=self.actions, differences=self.differences
        )

    def find_container(self) -> Any:
        return find_container(self.client, self.name)

    def act(self, description: str) -> bool:
        """Record a change; True when it should really be carried out (not in check mode)."""
        self.changed = True
        self.actions.append(
            description if not self.module.check_mode else f"would have {description}"
        )
        return not self.module.check_mode

    def stop(self, container: Any) -> None:
        container.reload()
        if container.status in ("running", "restarting", "paused") and self.act("stopped"):
            container.stop(timeout=self.params["stop_timeout"])

    def remove(self, container: Any, verb: str) -> None:
        self.stop(container)
        if self.act(verb):
            container.remove(force=True)

    def image_id(self) -> str:
        if self.module.check_mode:
            # A check run pulls nothing: an image not on the engine yet is one the deploy
            # would pull, and differs from whatever runs.
            found = find_image_id(self.client, self.params["image"])
            return found or f"not pulled yet: {self.params['image']}"
        return require_image_id(
            self.client, self.params["image"], self.params["docker_host"], self.fail
        )

    def ensure_network(self) -> None:
        network = self.params["network"]
        if (
            network
            and not self.client.networks.list(names=[network])
            and self.act(f"created network {network}")
        ):
            create_managed_network(self.client, network)

    def create(self, spec: dict[str, Any], name: str) -> Any:
        params = self.params
        labels = {
            **params["create_labels"],
            **params["labels"],
            MANAGED_LABEL: MANAGED_BY,
            SPEC_LABEL: spec_to_label(spec),
        }
        options: dict[str, Any] = {
            "name": name,
            "command": params["command"],
            "environment": {**params["env"], **params["secret_env"]},
            "labels": labels,
            "ports": ports_for_sdk(spec["ports"]),
            "volumes": volumes_for_sdk(spec["volumes"]),
            "healthcheck": healthcheck_for_sdk(params["healthcheck"]),
            "restart_policy": {
                "Name": "" if params["restart_policy"] == "no" else params["restart_policy"]
            },
            "user": params["user"],
            "detach": True,
        }
        if params["network"]:
            options["network"] = params["network"]
            options["networking_config"] = {
                params["network"]: self.client.api.create_endpoint_config(
                    aliases=params["network_aliases"] or None
                )
            }
        container = self.client.containers.create(params["image"], **options)
        # Before it starts: its process reads them as it starts (the proxy's TLS key).
        try:
            put_secret_files(container, params.get("secret_files") or {})
        except (docker.errors.APIError, ValueError) as exc:
            container.remove(force=True)
            self.fail(f"could not put its secret files into {name}: {one_line(exc)}")
        return container

    def differences_from(self, container: Any, spec: dict[str, Any]) -> list[str]:
        """What differs between the spec CONTAINER was created from and SPEC."""
        differences = spec_differences(spec_from_labels(container.labels), spec)
        differences += [
            f"secret_env ({key})"
            for key in secret_env_differences(
                self.params["secret_env"], container.attrs["Config"].get("Env")
            )
        ]
        differences += [
            f"secret_files ({path})"
            for path in secret_file_differences(container, self.params.get("secret_files") or {})
        ]
        return differences

    def compare(self, container: Any, spec: dict[str, Any]) -> None:
        """Note what runs, and what differs from SPEC."""
        self.diff["after"].update(spec)
        if container is not None:
            self.running_image = container.attrs["Config"]["Image"]
            self.diff["before"].update(spec_from_labels(container.labels) or {})
            self.differences = self.differences_from(container, spec)

    def ensure_started(self) -> Any:
        """Stop first: a container that differs is removed, then the wanted one started."""
        spec = self.build_spec()
        container = self.find_container()
        self.compare(container, spec)
        self.ensure_network()
        return self.start_in_place(container, spec)

    def start_in_place(self, container: Any, spec: dict[str, Any]) -> Any:
        if container is not None and self.differences:
            self.remove(container, f"recreated (differences: {', '.join(self.differences)})")
            container = None
        elif container is None:
            self.act("created")
        if container is None:
            if self.module.check_mode:
                return None
            container = self.create(spec, self.name)
        container.reload()
        if container.status != "running" and self.act("started"):
            container.start()
        return container

    def settle_leftover(self) -> None:
        """A NAME-next container left by a run that died in the middle of a switch: it
        becomes the service's container when that one is gone, else it goes."""
        leftover = find_container(self.client, self.name + NEXT_SUFFIX)
        if leftover is None:
            return
        if self.find_container() is not None:
            self.remove(leftover, f"removed {leftover.name}, left by an interrupted switch")
        elif self.act(f"renamed {leftover.name} to {self.name}, left by an interrupted switch"):
            leftover.rename(self.name)

    def start_beside(self) -> tuple[Any, Any]:
        """Replace beside: (old, new). NEW is the container to wait for: started as
        NAME-next beside OLD, the running container it will replace; or, when nothing runs
        that it would replace, the service's own container (OLD is then None)."""
        spec = self.build_spec()
        self.settle_leftover()
        container = self.find_container()
        self.compare(container, spec)
        self.ensure_network()
        if container is None or not self.differences or container.status != "running":
            return None, self.start_in_place(container, spec)
        return container, self.start_candidate(spec)

    def start_candidate(self, spec: dict[str, Any]) -> Any:
        """Start NAME-next: the container kept stopped as NAME-previous when it is what
        SPEC wants (a rollback), else a new one; None in check mode."""
        next_name = self.name + NEXT_SUFFIX
        kept = find_container(self.client, self.name + PREVIOUS_SUFFIX)
        if kept is not None and not self.differences_from(kept, spec):
            if not self.act(f"started {kept.name} again as {next_name}, beside {self.name}"):
                return None
            kept.rename(next_name)
            kept.start()
            return kept
        differences = ", ".join(self.differences)
        if not self.act(f"started {next_name} beside {self.name} (differences: {differences})"):
            return None
        container = self.create(spec, next_name)
        container.start()
        return container

    def take_over(self, old: Any, new: Any) -> None:
        """After the switch, OLD stopped: it is kept as NAME-previous and NEW takes NAME."""
        previous = find_container(self.client, self.name + PREVIOUS_SUFFIX)
        if previous is not None:
            previous.remove(force=True)
        old.rename(self.name + PREVIOUS_SUFFIX)
        new.rename(self.name)
        self.actions.append(f"kept {old.name} stopped as {self.name}{PREVIOUS_SUFFIX}")
        self.actions.append(f"renamed {new.name} to {self.name}")

    def discard(self, new: Any) -> None:
        """Stop and remove NEW, never switched to: the old container serves on."""
        with contextlib.suppress(docker.errors.NotFound):
            self.remove(new, f"removed {new.name}; {self.name} serves on")

    def build_spec(self) -> dict[str, Any]:
        try:
            return build_spec(self.params, self.image_id())
        except ValueError as exc:
            self.fail(str(exc))
        return {}


def describe(container: Any) -> dict[str, Any]:
    if container is None:
        return {}
    container.reload()
    state = container.attrs["State"]
    return {
        "id": container.short_id,
        "name": container.name,
        "image": container.attrs["Config"]["Image"],
        "status": state["Status"],
        "health": (state.get("Health") or {}).get("Status", "none"),
    }
