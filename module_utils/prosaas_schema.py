"""The shape of one service entry, declared once.

An entry of the inventory's service lists is what docker_services takes in O(services):
the module's argument spec is this, and the inventory check (the prosaas filter plugin)
derives its known keys, kinds, required keys and choices from it. The copies Ansible needs as
static YAML (the roles' meta/argument_specs.yml, the module's DOCUMENTATION) are held to it
by tests/unit/test_service_schema.py and ansible-test's validate-modules
(scripts/collection.py sanity).

Pure data importing nothing of Ansible, so the controller-side plugins can load it too.
"""

from __future__ import annotations

from typing import Any

# Argument spec of one service entry (AnsibleModule's format); the health check's durations
# are in seconds.
SERVICE_OPTIONS: dict[str, dict[str, Any]] = {
    "name": {"type": "str", "required": True},
    "image": {"type": "str", "required": True},
    "command": {"type": "list", "elements": "str"},
    "env": {"type": "dict", "default": {}},
    "secret_env": {"type": "dict", "default": {}, "no_log": True},
    "secret_files": {"type": "dict", "default": {}, "no_log": True},
    "ports": {"type": "list", "elements": "str", "default": []},
    "volumes": {"type": "list", "elements": "str", "default": []},
    "aliases": {"type": "list", "elements": "str", "default": []},
    "healthcheck": {
        "type": "dict",
        "options": {
            "test": {"type": "list", "elements": "str", "required": True},
            "interval": {"type": "float"},
            "timeout": {"type": "float"},
            "retries": {"type": "int"},
            "start_period": {"type": "float"},
        },
    },
    "user": {"type": "str"},
    "restart_policy": {
        "type": "str",
        "default": "unless-stopped",
        "choices": ["no", "always", "unless-stopped", "on-failure"],
    },
}
