"""What the project asks of each custom module's documentation beyond ansible-test's sanity
tests (scripts/collection.py sanity, which runs validate-modules on the collection: options
against the argument spec, no_log on secret-looking names, examples, markup): ansible-doc
renders its attributes (check_mode, diff_mode), examples and return values from the
checkout, and an option whose value is never logged says so in its description."""

import os
import re
import runpy
import subprocess
from pathlib import Path
from typing import Any

import ansible.module_utils
import pytest
from ansible.module_utils import basic
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import get_docstring

from tests.conftest import ROOT

MODULES = sorted(path.stem for path in (ROOT / "library").glob("*.py"))
SAYS_SECRET = re.compile(r"never logged|secret", re.IGNORECASE)


class ArgumentSpecCaught(Exception):
    """Raised in place of AnsibleModule.__init__, carrying the arguments it was given."""


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_attributes_examples_and_return(module: str) -> None:
    result = subprocess.run(
        ["ansible-doc", "-M", str(ROOT / "library"), module],
        capture_output=True, text=True, cwd=ROOT, check=False,
        env={"PATH": os.environ["PATH"], "ANSIBLE_NOCOLOR": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[WARNING]" not in result.stderr
    for section in ("OPTIONS", "ATTRIBUTES", "EXAMPLES", "RETURN VALUES"):
        assert section in result.stdout, f"{module}: no {section}"


@pytest.mark.parametrize("module", MODULES)
def test_check_mode_and_diff_mode_are_documented(module: str) -> None:
    attributes = documentation(ROOT / "library" / f"{module}.py").get("attributes") or {}
    for name in ("check_mode", "diff_mode"):
        assert attributes.get(name, {}).get("support"), f"{module}: {name} without its support"
        assert attributes[name].get("description"), f"{module}: {name} without a description"


def documentation(path: Path) -> dict[str, Any]:
    """The module's DOCUMENTATION, its doc fragments merged in."""
    fragment_loader.add_directory(str(ROOT / "plugins" / "doc_fragments"))
    return get_docstring(str(path), fragment_loader, is_module=True)[0]


def argument_spec(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The argument spec the module hands AnsibleModule, taken by running its main() up to
    there, with module_utils importable as Ansible ships it."""

    def caught(_self: Any, **kwargs: Any) -> None:
        raise ArgumentSpecCaught(kwargs)

    monkeypatch.setattr(
        ansible.module_utils,
        "__path__",
        [*ansible.module_utils.__path__, str(ROOT / "module_utils")],
    )
    monkeypatch.setattr(basic.AnsibleModule, "__init__", caught)
    with pytest.raises(ArgumentSpecCaught) as raised:
        runpy.run_path(str(path), run_name="__main__")
    return raised.value.args[0]["argument_spec"]


def unsaid_secrets(docs: dict[str, Any], spec: dict[str, Any], where: str = "") -> list[str]:
    """A no_log option whose description does not tell the reader its value is never logged,
    suboptions included."""
    lines = []
    for name in sorted(docs.keys() & spec.keys()):
        arg, description = spec[name], docs[name].get("description") or ""
        description = description if isinstance(description, str) else " ".join(description)
        if arg.get("no_log") and not SAYS_SECRET.search(description):
            lines.append(f"{where}{name}: no_log, but its description does not say it is secret")
        lines += unsaid_secrets(
            docs[name].get("suboptions") or {}, arg.get("options") or {}, f"{where}{name}."
        )
    return lines


@pytest.mark.parametrize("module", MODULES)
def test_a_secret_option_says_it_is_never_logged(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ROOT / "library" / f"{module}.py"
    options = documentation(path)["options"]
    assert unsaid_secrets(options, argument_spec(path, monkeypatch)) == []


def test_an_unsaid_secret_is_named() -> None:
    docs = {
        "auth": {"description": "Login.", "suboptions": {"token": {"description": "A token."}}},
        "password": {"description": ["The password.", "Never logged."]},
    }
    spec = {
        "auth": {"type": "dict", "options": {"token": {"no_log": True}}},
        "password": {"no_log": True},
    }
    assert unsaid_secrets(docs, spec) == [
        "auth.token: no_log, but its description does not say it is secret"
    ]
