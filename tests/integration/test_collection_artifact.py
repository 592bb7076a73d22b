"""The prosaas.deploy collection as a user gets it: scripts/collection.py builds the tarball,
ansible-galaxy installs it into a folder of its own, and from there (no checkout on any path)
ansible-doc documents the modules and the action plugins, and a play runs a module (its
module_utils), a filter, the lookup and an action plugin by their FQCN."""

import importlib.util
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

PLAY = """\
- name: Use the installed collection
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read the release history of an empty state folder
      prosaas.deploy.deploy_state:
        action: read
        state_dir: "{{ state_dir }}"
      register: state

    - name: Say the deploy event, sending nothing
      prosaas.deploy.notify_webhook:
        url: http://127.0.0.1:9/hook
        event: start
        release: r1
      check_mode: true
      register: notified

    - name: Check what the module, the filter, the lookup and the action plugin gave
      vars:
        services: [{name: api, image: "app:1"}]
      ansible.builtin.assert:
        that:
          - state.current is none
          - state.lock is none
          - "(services | prosaas.deploy.service_images) == {'api': 'app:1'}"
          - lookup('prosaas.deploy.deploy_controller').pid > 0
          - notified.text == 'prosaas deploy of release r1 started'
"""


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(a folder outside the checkout, the environment that finds the installed collection
    there and nothing of the checkout's ansible.cfg)."""
    where = tmp_path_factory.mktemp("artifact")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(where),
        "ANSIBLE_COLLECTIONS_PATH": str(where / "collections"),
        "ANSIBLE_NOCOLOR": "1",
    }
    output = run([sys.executable, "scripts/collection.py", "build", "--dest", str(where / "build")],
                 cwd=ROOT, env=env)  # fmt: skip
    tarball = Path(output.splitlines()[-1])
    assert tarball == where / f"prosaas-deploy-{version()}.tar.gz"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/modules/docker_services.py" in names
    assert not [name for name in names if name.startswith("tests/output")]
    run(["ansible-galaxy", "collection", "install", "--offline", "-p", str(where / "collections"),
         str(tarball)], cwd=where, env=env)  # fmt: skip
    return where, env


def version() -> str:
    import tomllib  # noqa: PLC0415 - only this test reads the project's version

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_ansible_doc_documents_a_module_from_the_install(installed) -> None:
    where, env = installed
    text = run(["ansible-doc", "prosaas.deploy.docker_services"], cwd=where, env=env)
    assert "prosaas.deploy.docker_services" in text
    assert str(where / "collections" / "ansible_collections" / "prosaas" / "deploy") in text
    for section in ("OPTIONS", "ATTRIBUTES", "EXAMPLES", "RETURN VALUES", "docker_host"):
        assert section in text
    assert str(ROOT) not in text


def test_ansible_doc_documents_an_action_plugin_from_the_install(installed) -> None:
    where, env = installed
    text = run(["ansible-doc", "prosaas.deploy.notify_webhook"], cwd=where, env=env)
    assert text.startswith("> MODULE prosaas.deploy.notify_webhook ")
    assert "what Slack's incoming webhooks" in text
    assert "This module has a corresponding action plugin." in text


def test_a_play_uses_the_installed_module_filter_lookup_and_action(installed) -> None:
    where, env = installed
    (where / "play.yml").write_text(PLAY)
    play = ["ansible-playbook", "-i", "localhost,", "-c", "local", "play.yml"]
    options = {"ansible_python_interpreter": sys.executable, "state_dir": where / "state"}
    variables = [word for name, value in options.items() for word in ("-e", f"{name}={value}")]
    run([*play, *variables], cwd=where, env=env)


def test_the_sanity_tests_run_or_skipped_are_all_of_ansible_tests(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("collection", ROOT / "scripts/collection.py")
    collection = importlib.util.module_from_spec(spec)
    sys.modules["collection"] = collection
    spec.loader.exec_module(collection)
    tree = collection.assemble(tmp_path)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ANSIBLE_TEST_CONTENT_ROOT": str(tree),
    }
    listed = run([collection.tool("ansible-test"), "sanity", "--list-tests"], cwd=tree, env=env)
    assert set(listed.split()) == {*collection.SANITY_TESTS, *collection.SANITY_SKIPPED}
