"""Every custom module documents itself the way ansible-doc renders."""

import os
import subprocess

import pytest

from tests.conftest import ROOT

MODULES = sorted(path.stem for path in (ROOT / "library").glob("*.py"))


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
