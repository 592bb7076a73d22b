"""The checkout itself against scripts/shape.py's rules (the deploy flow's shape)."""

import subprocess
import sys

from tests.conftest import ROOT


def test_the_deploy_flow_holds_its_shape() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "shape.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
