"""Unit tests import module_utils directly: pure logic, no Ansible runtime needed. Those that
import each other (prosaas_store, prosaas_lock, prosaas_history) are imported as Ansible ships
them to a host: ansible.module_utils.<name>."""

import sys
from pathlib import Path

import ansible.module_utils

MODULE_UTILS_DIR = str(Path(__file__).resolve().parents[2] / "module_utils")
sys.path.insert(0, MODULE_UTILS_DIR)
if MODULE_UTILS_DIR not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(MODULE_UTILS_DIR)
