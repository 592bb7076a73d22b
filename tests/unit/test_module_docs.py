"""Every custom module documents itself the way ansible-doc renders, and documents exactly
the arguments it takes, as ansible-test's validate-modules holds them: same options, type,
default, required, choices, elements and aliases, suboptions recursively, and no_log where
a value is secret."""

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
# Option names validate-modules expects an explicit no_log on (its NO_LOG_REGEX).
SECRET_NAME = re.compile(r"(?:pass(?!ive)|secret|token|key)", re.IGNORECASE)
SAYS_SECRET = re.compile(r"never logged|secret", re.IGNORECASE)
COMPARED = ("type", "required", "default", "choices", "elements", "aliases")


class ArgumentSpecCaught(Exception):
    """Raised in place of AnsibleModule.__init__, carrying the arguments it was given."""


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_options_examples_and_return(module: str) -> None:
    result = subprocess.run(
        ["ansible-doc", "-M", str(ROOT / "library"), module],
        capture_output=True, text=True, cwd=ROOT, check=False,
        env={"PATH": os.environ["PATH"], "ANSIBLE_NOCOLOR": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[WARNING]" not in result.stderr
    for section in ("OPTIONS", "ATTRIBUTES", "EXAMPLES", "RETURN VALUES"):
        assert section in result.stdout, f"{module}: no {section}"


def documented_options(path: Path) -> dict[str, Any]:
    """The module's DOCUMENTATION options, its doc fragments' merged in."""
    fragment_loader.add_directory(str(ROOT / "plugins" / "doc_fragments"))
    return get_docstring(str(path), fragment_loader, is_module=True)[0]["options"]


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


def described(option: dict[str, Any]) -> dict[str, Any]:
    """The settings both sides declare, with Ansible's implicit values spelled out."""
    return {
        "type": option.get("type", "str"),
        "required": bool(option.get("required", False)),
        "default": option.get("default"),
        "choices": list(option["choices"]) if "choices" in option else None,
        "elements": option.get("elements"),
        "aliases": sorted(option.get("aliases") or []),
    }


def mismatches(docs: dict[str, Any], spec: dict[str, Any], where: str = "") -> list[str]:
    """One line per difference between documented options and the argument spec."""
    lines = [
        f"{where}{name}: documented, not in the argument spec" for name in docs.keys() - spec.keys()
    ]
    lines += [
        f"{where}{name}: in the argument spec, not documented" for name in spec.keys() - docs.keys()
    ]
    for name in sorted(docs.keys() & spec.keys()):
        doc, arg = described(docs[name]), described(spec[name])
        lines += [
            f"{where}{name}: {key} documented {doc[key]!r}, argument spec {arg[key]!r}"
            for key in COMPARED
            if doc[key] != arg[key]
        ]
        if arg["type"] == "list" and not arg["elements"]:
            lines.append(f"{where}{name}: a list without elements")
        if arg["required"] and arg["default"] is not None:
            lines.append(f"{where}{name}: required, yet has a default")
        lines += mismatches(
            docs[name].get("suboptions") or {}, spec[name].get("options") or {}, f"{where}{name}."
        )
    return sorted(lines)


def no_log_problems(docs: dict[str, Any], spec: dict[str, Any], where: str = "") -> list[str]:
    """Secret-looking names need an explicit no_log (validate-modules' no-log-needed); a no_log
    option tells the reader its value is never logged."""
    lines = []
    for name in sorted(docs.keys() & spec.keys()):
        arg, description = spec[name], docs[name].get("description") or ""
        description = description if isinstance(description, str) else " ".join(description)
        if (
            SECRET_NAME.search(name)
            and arg.get("type") not in ("bool", "int", "float", "path")
            and "no_log" not in arg
        ):
            lines.append(f"{where}{name}: looks secret, the argument spec sets no no_log")
        if arg.get("no_log") and not SAYS_SECRET.search(description):
            lines.append(f"{where}{name}: no_log, but its description does not say it is secret")
        lines += no_log_problems(
            docs[name].get("suboptions") or {}, arg.get("options") or {}, f"{where}{name}."
        )
    return lines


@pytest.mark.parametrize("module", MODULES)
def test_documentation_states_the_argument_spec(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ROOT / "library" / f"{module}.py"
    docs, spec = documented_options(path), argument_spec(path, monkeypatch)
    assert mismatches(docs, spec) == []
    assert no_log_problems(docs, spec) == []


def test_a_documentation_drift_is_named() -> None:
    docs = {
        "hc": {"type": "dict", "suboptions": {"retries": {"type": "int"}, "gone": {}}},
        "test": {"type": "list"},
    }
    spec = {
        "hc": {"type": "dict", "options": {"retries": {"type": "str", "default": 3}}},
        "test": {"type": "list", "required": True, "default": []},
    }
    assert mismatches(docs, spec) == [
        "hc.gone: documented, not in the argument spec",
        "hc.retries: default documented None, argument spec 3",
        "hc.retries: type documented 'int', argument spec 'str'",
        "test: a list without elements",
        "test: default documented None, argument spec []",
        "test: required documented False, argument spec True",
        "test: required, yet has a default",
    ]
    assert no_log_problems({"api_token": {"description": "A token."}}, {"api_token": {}}) == [
        "api_token: looks secret, the argument spec sets no no_log"
    ]
