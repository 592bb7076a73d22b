"""Every role's defaults and meta/argument_specs.yml say the same thing."""

import pytest
import yaml

from tests.conftest import ROOT

ROLES = sorted(path.name for path in (ROOT / "roles").iterdir() if path.is_dir())


def spec_options(role: str) -> dict:
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options: dict = {}
    for entry in specs["argument_specs"].values():
        options.update(entry.get("options") or {})
    return options


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_agree(role: str) -> None:
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    options = spec_options(role)
    with_default = {name: spec["default"] for name, spec in options.items() if "default" in spec}
    assert defaults == with_default
    for name, spec in options.items():
        assert name.startswith(f"{role}_"), f"{role}: {name} lacks the role prefix"
        assert spec.get("description"), f"{role}: {name} has no description"
        assert "type" in spec, f"{role}: {name} has no type"
        assert spec.get("required") or "default" in spec, (
            f"{role}: {name} neither required nor defaulted"
        )
