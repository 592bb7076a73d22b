"""Every plugin's DOCUMENTATION (and EXAMPLES, RETURN) is YAML Ansible can read: a broken one
is only an [ERROR] line in a play's output, so nothing else would catch it."""

import ast

import pytest
import yaml

from tests.conftest import ROOT

PLUGINS = sorted((ROOT / "plugins").rglob("*.py"))
DOC_NAMES = ("DOCUMENTATION", "EXAMPLES", "RETURN")


def doc_strings(path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id in DOC_NAMES
    }


@pytest.mark.parametrize("path", PLUGINS, ids=lambda path: str(path.relative_to(ROOT)))
def test_plugin_documentation_is_yaml(path) -> None:
    for name, text in doc_strings(path).items():
        parsed = yaml.safe_load(text)
        assert parsed, f"{name} is empty"
        if name == "DOCUMENTATION":
            assert isinstance(parsed, dict) and parsed.get("description"), name
