"""The shape of a service entry is declared once, in module_utils/prosaas_schema.py. Ansible
reads the roles' argument specs as static YAML, so each role repeats it there; these tests
fail when one of those copies drifts (docker_services's DOCUMENTATION is held to its
argument spec, hence to the schema, by ansible-test's validate-modules: scripts/collection.py
sanity)."""

from typing import Any

import pytest
import yaml
from prosaas_schema import SERVICE_OPTIONS

from tests.conftest import ROOT

# Where the roles take service entries; any other option whose entries name an image is
# found and checked too.
KNOWN_SERVICE_LISTS = {
    "preflight database: preflight_compare_services",
    "preflight database: preflight_database_services",
    "runbook services: runbook_infra_services",
    "runbook services: runbook_app_services",
    "runbook status: runbook_infra_services",
    "runbook status: runbook_app_services",
    "services up: services_wanted",
    "services stop: services_wanted",
    "services release: services_infra_services",
    "services release: services_app_services",
    "services drop-previous: services_wanted",
}


def role_service_lists() -> dict[str, dict[str, Any]]:
    """Every role option whose entries are services (their suboptions have an image), by
    'role entry_point: option'."""
    found = {}
    for path in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml")):
        role = path.parts[-3]
        for entry_point, spec in yaml.safe_load(path.read_text())["argument_specs"].items():
            for name, option in (spec.get("options") or {}).items():
                if "image" in (option.get("options") or {}):
                    found[f"{role} {entry_point}: {name}"] = option
    return found


SERVICE_LISTS = role_service_lists()


def as_argument_spec(options: dict[str, Any]) -> dict[str, Any]:
    """Options as an argument spec means them: descriptions left out, at every level."""
    return {
        name: {
            key: as_argument_spec(value) if key == "options" else value
            for key, value in option.items()
            if key != "description"
        }
        for name, option in options.items()
    }


def undescribed(options: dict[str, Any], prefix: str = "") -> list[str]:
    missing = []
    for name, option in options.items():
        if not option.get("description"):
            missing.append(prefix + name)
        missing += undescribed(option.get("options") or {}, f"{prefix}{name}.")
    return missing


def test_every_known_service_list_is_found() -> None:
    assert set(SERVICE_LISTS) >= KNOWN_SERVICE_LISTS


@pytest.mark.parametrize("where", sorted(SERVICE_LISTS))
def test_a_role_service_list_repeats_the_schema(where: str) -> None:
    option = SERVICE_LISTS[where]
    assert (option["type"], option.get("elements")) == ("list", "dict")
    assert as_argument_spec(option["options"]) == SERVICE_OPTIONS
    assert undescribed(option["options"]) == []
