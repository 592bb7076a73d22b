"""Action plugin: build the deployment context of each host (module_utils/prosaas_context.py)
and set it as the fact ``deployment``."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

# checkout only: begin. Plugins run on the controller, where Ansible does not put the
# checkout's module_utils on the path: they are added to ansible.module_utils, the name they
# import each other by on a host. The prosaas.deploy collection (scripts/collection.py) has
# none of these lines: it imports module_utils by the collection's name.
MODULE_UTILS_DIR = str(Path(__file__).resolve().parents[2] / "module_utils")
ANSIBLE_MODULE_UTILS = importlib.import_module("ansible.module_utils")
if MODULE_UTILS_DIR not in ANSIBLE_MODULE_UTILS.__path__:
    ANSIBLE_MODULE_UTILS.__path__.append(MODULE_UTILS_DIR)
# checkout only: end
from ansible.module_utils.prosaas_context import ContextError, changed_services, decide, pin, place  # noqa: E402 - path set above

DOCUMENTATION = r"""
---
action: deploy_context
short_description: Build the deployment context of each host, step by step
description:
  - Returns the deployment context of each host, which the task registers as C(deployment).
    It is a registered variable, never a fact, since it holds the services' secret
    environment, which a fact cache would write down. O(step=place) says where each service runs,
    the proxy and its routes, the migration host, the state host, the start batches, the
    docker host and the lock's leases; O(step=pin) names each image by the digest every host
    pulled it at; O(step=decide) adds the strategy, the replace mode and what the release
    changes.
  - Reads the inventory's C(prosaas_*) settings; the inventory check must have passed.
  - Fails in one line when the hosts pulled a tag at different digests. When the online
    strategy cannot run a pending migration and no fallback is allowed, or the database has
    migrations applied that the release's migrate image does not carry and
    C(prosaas_database_ahead) is C(refuse), C(refusal) says why on the migration host (the
    task after it fails with it), and the context stays whole for the rescue, since a failed
    step would replace the registered context. With C(prosaas_database_ahead=accept) (the
    default) such a release runs on the newer schema, and the plan the context keeps names
    those versions as C(unknown_applied).
author: prosaas-deploy (!UNKNOWN)
options:
  step:
    description: Which part of the context to build.
    type: str
    choices: [place, pin, decide]
    required: true
  pulled:
    description: With O(step=pin), the name under which each host registered its pull loop.
    type: str
  plan:
    description: With O(step=decide), the name under which the migration host registered
      the migrate image's C(plan) run (its C(summary) is the plan).
    type: str
  compared:
    description: With O(step=decide), the name under which each host registered the
      comparison of what runs with the release.
    type: str
  strategy:
    description: With O(step=decide), the strategy asked for, C(stop) or C(online);
      C(prosaas_deploy_strategy) when omitted.
    type: str
    choices: [stop, online]
"""

EXAMPLES = r"""
- name: Place the services, the proxy, the migration and the batches on each host
  deploy_context:
    step: place
  register: deployment
"""

RETURN = r"""
migration_host:
  description: The one host that runs the migration; the context's other keys are
    described in module_utils/prosaas_context.py.
  returned: success
  type: str
  sample: app1
strategy:
  description: The strategy the run takes, C(stop) or C(online).
  returned: success
  type: str
  sample: stop
refusal:
  description: With O(step=decide), why the deploy must stop in preflight (the online
    strategy cannot run a pending migration, or the database is ahead of the release and
    C(prosaas_database_ahead) is C(refuse)), on the migration host; empty when it need not.
  returned: success
  type: str
  sample: ""
"""

# The context's settings: the inventory variable each is read from (inventories/common.yml
# sets every one) and, for the optional ones, the value when unset.
SETTINGS: dict[str, tuple[str, Any]] = {
    "docker_host": ("prosaas_docker_host", ""),
    "network": ("prosaas_network", None),
    "container_prefix": ("prosaas_container_prefix", ""),
    "service_groups": ("prosaas_service_groups", {}),
    "infra_services": ("prosaas_infra_services", None),
    "app_services": ("prosaas_app_services", None),
    "proxy_routes": ("prosaas_proxy_routes", []),
    "proxy_image": ("prosaas_proxy_image", None),
    "proxy_retry_after": ("prosaas_proxy_retry_after", None),
    "proxy_bind": ("prosaas_proxy_bind", "127.0.0.1"),
    "proxy_tls_certificate": ("prosaas_proxy_tls_certificate", ""),
    "proxy_tls_key": ("prosaas_proxy_tls_key", ""),
    "proxy_http_redirect_port": ("prosaas_proxy_http_redirect_port", 0),
    "migrate_image": ("prosaas_migrate_image", None),
    "migration_host": ("prosaas_migration_host", ""),
    "state_host": ("prosaas_state_host", None),
    "state_dir": ("prosaas_state_dir", None),
    "start_batch_size": ("prosaas_start_batch_size", 0),
    "registry": ("prosaas_registry", {}),
    "deploy_strategy": ("prosaas_deploy_strategy", "stop"),
    "online_fallback": ("prosaas_online_fallback", False),
    "database_ahead": ("prosaas_database_ahead", "accept"),
    "lock_lease_seconds": ("prosaas_lock_lease_seconds", None),
    "stop_timeout": ("prosaas_stop_timeout", None),
    "health_timeout": ("prosaas_health_timeout", None),
    "migrate_timeout": ("prosaas_migrate_timeout", None),
    "leftover_migrate_wait": ("prosaas_leftover_migrate_wait", None),
    "backfill_timeout": ("prosaas_backfill_timeout", None),
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(("step", "pulled", "plan", "compared", "strategy"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        step = self._task.args.get("step")
        try:
            context = self._build(step, task_vars)
        except ContextError as error:
            return {**result, "failed": True, "msg": str(error)}
        # The context holds the services' secret environment and the proxy's TLS key: it is
        # never shown (only a failure's one line), and it is registered, never a fact, which
        # a fact cache would write down.
        return {**result, **context, "changed": False, "_ansible_no_log": True}

    def _build(self, step: Any, task_vars: dict[str, Any]) -> dict[str, Any]:
        if step == "place":
            return place(
                self._settings(task_vars),
                task_vars["inventory_hostname"],
                list(task_vars.get("group_names") or []),
                list(task_vars["ansible_play_hosts_all"]),
            )
        context = self._value(task_vars["deployment"])
        if step == "pin":
            pulled = self._task.args["pulled"]
            pulls = [
                self._host_var(task_vars, h, pulled) for h in task_vars["ansible_play_hosts_all"]
            ]
            return pin(context, pulls, self._host_var(task_vars, context["host"], pulled))
        if step == "decide":
            plan = self._host_var(task_vars, context["migration_host"], self._task.args["plan"])
            compared = {
                host: changed_services(self._host_var(task_vars, host, self._task.args["compared"]))
                for host in task_vars["ansible_play_hosts_all"]
            }
            settings = self._settings(task_vars)
            asked = self._task.args.get("strategy") or settings["deploy_strategy"]
            summary = (plan or {}).get("summary") or {}
            return decide(context, summary, compared, {**settings, "deploy_strategy": asked})
        raise ContextError(f"deploy_context: step is {step!r}; it must be place, pin or decide")

    def _settings(self, task_vars: dict[str, Any]) -> dict[str, Any]:
        settings = {}
        for key, (variable, unset) in SETTINGS.items():
            if variable in task_vars:
                settings[key] = self._value(task_vars[variable])
            elif unset is None:
                raise ContextError(
                    f"{variable} is not set: the inventory must include inventories/common.yml"
                    " (as group_vars/all/00-common.yml) or set it"
                )
            else:
                settings[key] = unset
        return settings

    def _host_var(self, task_vars: dict[str, Any], host: str, name: str) -> Any:
        return self._value(task_vars["hostvars"][host].get(name))

    def _value(self, value: Any) -> Any:
        return self._templar.template(value)
