"""One service's container created, recreated when its spec changed, and started: the work
docker_services does for each of its entries."""

from __future__ import annotations

import contextlib
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.prosaas_docker import find_container, find_image_id, require_image_id
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
            self.client.networks.create(
                network, driver="bridge", labels={MANAGED_LABEL: MANAGED_BY}
            )

    def create(self, spec: dict[str, Any]) -> Any:
        params = self.params
        labels = {
            **params["create_labels"],
            **params["labels"],
            MANAGED_LABEL: MANAGED_BY,
            SPEC_LABEL: spec_to_label(spec),
        }
        options: dict[str, Any] = {
            "name": self.name,
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
        return self.client.containers.create(params["image"], **options)

    def ensure_started(self) -> Any:
        spec = self.build_spec()
        container = self.find_container()
        self.diff["after"].update(spec)
        if container is not None:
            self.running_image = container.attrs["Config"]["Image"]
            before = spec_from_labels(container.labels)
            self.diff["before"].update(before or {})
            self.differences = spec_differences(before, spec)
            self.differences += [
                f"secret_env ({key})"
                for key in secret_env_differences(
                    self.params["secret_env"], container.attrs["Config"].get("Env")
                )
            ]
        self.ensure_network()
        if container is not None and self.differences:
            self.remove(container, f"recreated (differences: {', '.join(self.differences)})")
            container = None
        elif container is None:
            self.act("created")
        if container is None:
            if self.module.check_mode:
                return None
            container = self.create(spec)
        container.reload()
        if container.status != "running" and self.act("started"):
            container.start()
        return container

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
