"""The execution environment's definitions agree with the project: ee/requirements.txt pins
what requirements.txt pins, with every library it pulls in; ansible-builder's file names the
same requirements and the collection this checkout builds, and makes a build context;
ansible-navigator.yml runs the image scripts/ee.sh tags, never pulls it, and keeps what it
writes out of the work tree."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT
from tests.unit.test_prepare_pins import HOST_MARKERS, pins, requirements_txt_pins

EE = ROOT / "ee"
# What the control node's side imports: Ansible and its runner, the plugins' libraries.
CONTROLLER_LIBRARIES = {
    "ansible-core", "ansible-runner", "docker", "psycopg", "psycopg-binary", "cryptography",
    "pyyaml", "jinja2",
}  # fmt: skip


def ee_requirements() -> list[Requirement]:
    lines = (EE / "requirements.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line and not line.startswith("#")]


def ee_pins() -> dict[str, str]:
    return pins([str(requirement) for requirement in ee_requirements()])


def builder_definition() -> dict:
    return yaml.safe_load((EE / "execution-environment.yml").read_text())


def navigator_settings() -> dict:
    return yaml.safe_load((ROOT / "ansible-navigator.yml").read_text())["ansible-navigator"]


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_the_images_libraries_are_pinned_as_in_requirements_txt() -> None:
    image, project = ee_pins(), requirements_txt_pins()
    assert image.keys() >= CONTROLLER_LIBRARIES
    assert image == {name: project.get(name) for name in image}


def test_the_images_libraries_include_every_library_they_pull_in() -> None:
    image = ee_pins()
    extras = {canonicalize_name(r.name): r.extras for r in ee_requirements()}
    pulled_in = set()
    for name in image:
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            wanted = [{**HOST_MARKERS, "extra": extra} for extra in ("", *extras[name])]
            marker = requirement.marker
            if marker is None or any(marker.evaluate(env) for env in wanted):
                pulled_in.add(canonicalize_name(requirement.name))
    assert pulled_in - image.keys() == set()


def test_the_builder_file_names_the_same_requirements_and_collection() -> None:
    definition = builder_definition()
    assert definition["version"] == 3
    dependencies = definition["dependencies"]
    assert dependencies["python"] == "requirements.txt"
    image = ee_pins()
    for key, name in (("ansible_core", "ansible-core"), ("ansible_runner", "ansible-runner")):
        assert dependencies[key]["package_pip"] == f"{name}=={image[name]}"
    (collection,) = dependencies["galaxy"]["collections"]
    assert collection == {
        "name": f"/tmp/collections/prosaas-deploy-{project_version()}.tar.gz",  # noqa: S108 - in the build
        "type": "file",
    }


def test_ansible_builder_makes_a_build_context_from_the_builder_file(tmp_path: Path) -> None:
    """`ansible-builder create` (no build, no network) on a copy of ee/, the collection's
    tarball stood in for."""
    folder = tmp_path / "ee"
    folder.mkdir()
    for name in ("execution-environment.yml", "requirements.txt"):
        (folder / name).write_text((EE / name).read_text())
    tarball = folder / ".build" / "collections" / f"prosaas-deploy-{project_version()}.tar.gz"
    tarball.parent.mkdir(parents=True)
    tarball.write_bytes(b"")
    # requirements.txt's (ansible-navigator's dependency), also when another virtualenv runs
    # the tests (scripts/test.sh puts .venv/bin on PATH).
    builder = shutil.which("ansible-builder")
    assert builder, "no ansible-builder on PATH: pip install -r requirements.txt"
    context = tmp_path / "context"
    result = subprocess.run(
        [builder, "create", "-f", "execution-environment.yml", "-c", str(context)],
        cwd=folder, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Dockerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert "COPY _build/collections /tmp/collections" in containerfile
    assert (context / "_build" / "requirements.txt").read_text() == (
        EE / "requirements.txt"
    ).read_text()
    assert (context / "_build" / "collections" / tarball.name).exists()


def test_navigator_runs_the_deploy_in_the_image_scripts_ee_sh_tags() -> None:
    settings = navigator_settings()
    repository = re.search(r"^EE_REPOSITORY=(\S+)$", (ROOT / "scripts/ee.sh").read_text(), re.M)
    assert repository is not None
    environment = settings["execution-environment"]
    assert environment["enabled"] is True
    assert environment["image"] == f"{repository.group(1)}:latest"
    assert environment["pull"]["policy"] == "never"
    assert environment["container-engine"] == "docker"
    assert settings["ansible"]["playbook"]["path"] == "deploy.yml"
    assert settings["mode"] == "stdout"


def test_navigator_passes_the_reports_folder_the_vault_and_ssh_keys() -> None:
    environment = navigator_settings()["execution-environment"]
    assert "PROSAAS_REPORTS_DIR" in environment["environment-variables"]["pass"]
    assert environment["environment-variables"]["set"]["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    mounts = {mount["src"]: mount["dest"] for mount in environment["volume-mounts"]}
    assert mounts == {
        "~/.ssh": "~/.ssh",
        "~/.config/prosaas-deploy": "~/.config/prosaas-deploy",
        "${PROSAAS_REPORTS_DIR}": "${PROSAAS_REPORTS_DIR}",
    }


def test_navigator_writes_nothing_git_would_see() -> None:
    settings = navigator_settings()
    assert settings["playbook-artifact"]["enable"] is False
    # Its log, and the one it writes in the working directory when the settings are refused.
    for log in (settings["logging"]["file"], "ansible-navigator.log"):
        ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", log], check=False)
        assert ignored.returncode == 0, f"{log}: navigator's log must be in an ignored place"
