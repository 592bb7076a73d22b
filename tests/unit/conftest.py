"""Unit tests import module_utils directly: pure logic, no Ansible runtime needed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "module_utils"))
