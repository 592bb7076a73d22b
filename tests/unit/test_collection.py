"""scripts/collection.py: how a checkout file becomes the prosaas.deploy collection's (imports
of module_utils, checkout-only lines, documentation references, the license notice, action
plugin documentation, sanity ignores), and the tree it writes from this checkout."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("collection", ROOT / "scripts" / "collection.py")
collection = importlib.util.module_from_spec(spec)
sys.modules["collection"] = collection  # dataclasses look their module up by name
spec.loader.exec_module(collection)

NAMES = collection.Names(
    module_utils=frozenset({"prosaas_docker", "prosaas_schema"}),
    fragments=frozenset({"prosaas_docker", "prosaas_read_only"}),
    tasks=frozenset({"docker_services", "docker_status", "notify_webhook"}),
    lookups=frozenset({"deploy_controller"}),
    filters=frozenset({"declared_columns"}),
)
UTILS = "ansible_collections.prosaas.deploy.plugins.module_utils"


def test_module_utils_imports_take_the_collection_name() -> None:
    text = (
        "from ansible.module_utils.basic import AnsibleModule\n"
        "from ansible.module_utils.prosaas_docker import (\n"
        "    docker_client,\n"
        ")\n"
        "    from ansible.module_utils.prosaas_docker import one_line as line\n"
        "from prosaas_schema import SERVICE_OPTIONS  # noqa: E402 - needs the path set up\n"
        "from typing import Any\n"
        "from ansible.module_utils.prosaas_elsewhere import thing\n"
    )
    assert collection.rewrite_imports(text, NAMES) == (
        "from ansible.module_utils.basic import AnsibleModule\n"
        f"from {UTILS}.prosaas_docker import (\n"
        "    docker_client,\n"
        ")\n"
        f"    from {UTILS}.prosaas_docker import one_line as line\n"
        f"from {UTILS}.prosaas_schema import SERVICE_OPTIONS\n"
        "from typing import Any\n"
        "from ansible.module_utils.prosaas_elsewhere import thing\n"
    )


CHECKOUT_PLUGIN = """import json
import sys
from pathlib import Path

# checkout only: begin. Why the path is set up.
UTILS = Path(__file__).parents[2] / "module_utils"
sys.path.append(str(UTILS))
# checkout only: end
from prosaas_schema import SERVICE_OPTIONS  # noqa: E402 - needs the path set up just above

print(json.dumps(SERVICE_OPTIONS))
"""


def test_checkout_only_lines_and_the_imports_only_they_used_are_dropped() -> None:
    assert collection.drop_checkout_regions(CHECKOUT_PLUGIN) == (
        "import json\n"
        "\n"
        "from prosaas_schema import SERVICE_OPTIONS  # noqa: E402 - needs the path set up just"
        " above\n"
        "\n"
        "print(json.dumps(SERVICE_OPTIONS))\n"
    )


def test_an_import_still_used_elsewhere_is_kept() -> None:
    text = "import sys\n# checkout only: begin\nsys.path.append('x')\n# checkout only: end\n"
    text += "sys.exit(0)\n"
    assert collection.drop_checkout_regions(text) == "import sys\nsys.exit(0)\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("# checkout only: begin\nx = 1\n", "a checkout-only region never ends"),
        ("x = 1\n# checkout only: end\n", "line 2: a checkout-only region ends, none began"),
        (
            "# checkout only: begin\n# checkout only: begin\n# checkout only: end\n",
            "line 2: a checkout-only region begins inside another",
        ),
    ],
)
def test_a_region_without_its_pair_is_refused(text: str, problem: str) -> None:
    with pytest.raises(collection.AssemblyError, match=f"^{problem}$"):
        collection.drop_checkout_regions(text)


MODULE = '''#!/usr/bin/python
DOCUMENTATION = r"""
module: docker_status
description: Reads what M(docker_services) started; M(ansible.builtin.debug) prints it.
options:
  docker_status:
    description: An option named like a module keeps its name.
extends_documentation_fragment:
  - prosaas_read_only
  - prosaas_docker
seealso:
  - module: docker_services
  - module: community.docker.docker_container
"""

EXAMPLES = r"""
- name: Look
  docker_status:
    names: [api]
    owner: "{{ lookup('deploy_controller') }} {{ lookup('env', 'HOME') }}"
    columns: "{{ plan | declared_columns(applied) | combine({}) }}"

- name: Print
  ansible.builtin.debug:
    msg: hi
"""

RETURN = r"""
containers:
  description: As M(docker_status) says.
"""
docker_status = None
'''


def test_documentation_names_the_collections_plugins_by_fqcn() -> None:
    assert collection.rewrite_documentation(MODULE, NAMES) == (
        MODULE.replace("M(docker_services)", "M(prosaas.deploy.docker_services)")
        .replace("  - prosaas_read_only", "  - prosaas.deploy.prosaas_read_only")
        .replace("  - prosaas_docker", "  - prosaas.deploy.prosaas_docker")
        .replace("module: docker_services", "module: prosaas.deploy.docker_services")
        .replace("  docker_status:\n    names", "  prosaas.deploy.docker_status:\n    names")
        .replace("lookup('deploy_controller')", "lookup('prosaas.deploy.deploy_controller')")
        .replace("As M(docker_status)", "As M(prosaas.deploy.docker_status)")
        .replace("| declared_columns(", "| prosaas.deploy.declared_columns(")
    )


def test_filter_names_are_read_from_the_dict_filters_returns() -> None:
    source = (
        "class FilterModule:\n"
        "    def filters(self):\n"
        "        return {'service_images': service_images, 'with_images': with_images}\n"
    )
    assert collection.filter_names(source) == ["service_images", "with_images"]


def test_a_fragment_the_checkout_lacks_is_refused() -> None:
    text = 'DOCUMENTATION = r"""\nextends_documentation_fragment:\n  - prosaas_gone\n"""\n'
    with pytest.raises(collection.AssemblyError, match="'prosaas_gone' is not one of"):
        collection.rewrite_documentation(text, NAMES)


@pytest.mark.parametrize(
    ("text", "noted"),
    [
        (
            "#!/usr/bin/python\n'''Doc.'''\n",
            f"#!/usr/bin/python\n{collection.LICENSE_NOTICE}'''Doc.'''\n",
        ),
        ("'''Doc.'''\n", f"{collection.LICENSE_NOTICE}'''Doc.'''\n"),
    ],
)
def test_the_license_notice_comes_first_after_a_shebang(text: str, noted: str) -> None:
    assert collection.with_license_notice(text) == noted


ACTION = '''"""Action plugin: post."""
import json

DOCUMENTATION = r"""
action: notify_webhook
short_description: Post
"""

EXAMPLES = r"""
- notify_webhook:
    url: x
"""


class ActionModule:
    pass
'''


def test_an_action_plugin_is_documented_by_a_module_of_its_docs_alone() -> None:
    stub = collection.action_module_stub(ACTION, "notify_webhook")
    assert stub.startswith("#!/usr/bin/python\n")
    assert 'DOCUMENTATION = r"""\nmodule: notify_webhook\nshort_description: Post\n"""' in stub
    assert 'EXAMPLES = r"""\n- notify_webhook:\n    url: x\n"""' in stub
    assert "import json" not in stub
    assert "class ActionModule" not in stub
    compile(stub, "stub", "exec")


def test_an_action_plugin_without_documentation_has_no_module() -> None:
    assert collection.action_module_stub("class ActionModule:\n    pass\n", "quiet") is None


def test_ignores_take_the_collections_paths_and_keep_their_reasons() -> None:
    text = (
        "# A comment line.\n"
        "\n"
        "library/docker_pull.py validate-modules:no-log-needed  # a path, not a secret\n"
        "plugins/filter/proxy.py pylint:disallowed-name  # why\n"
    )
    assert collection.collection_ignores(text) == (
        "plugins/modules/docker_pull.py validate-modules:no-log-needed  # a path, not a secret\n"
        "plugins/filter/proxy.py pylint:disallowed-name  # why\n"
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("library/docker_pull.py pep8:E501", "write <path> <test>"),
        ("library/docker_pull.py  # a reason, no test", "write <path> <test>"),
        ("tests/unit/x.py pep8:E501  # why", "not in one of library"),
    ],
)
def test_an_ignore_without_its_test_reason_or_plugin_is_refused(line: str, problem: str) -> None:
    with pytest.raises(collection.AssemblyError, match=problem):
        collection.collection_ignores(line)


# --- The tree this checkout makes --------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("collection")
    collection.write_tree(ROOT, root, "2.19")
    return root


def test_every_plugin_of_the_checkout_is_in_its_collection_folder(tree: Path) -> None:
    for source, target in collection.LAYOUT.items():
        names = {path.name for path in (ROOT / source).glob("*.py")}
        assert names, f"nothing in {source}"
        assert names <= {path.name for path in (tree / target).glob("*.py")}, source


def test_the_tree_imports_module_utils_only_by_the_collection_name(tree: Path) -> None:
    for path in tree.rglob("*.py"):
        text = path.read_text()
        assert "ansible.module_utils.prosaas_" not in text, path
        assert "from prosaas_" not in text, path
        compile(text, str(path), "exec")


def test_the_filter_has_no_checkout_path_set_up(tree: Path) -> None:
    text = (tree / "plugins" / "filter" / "prosaas.py").read_text()
    assert "sys.path" not in text
    assert "checkout only" not in text
    assert f"from {UTILS}.prosaas_schema import SERVICE_OPTIONS\n" in text


def test_modules_extend_the_collections_doc_fragments(tree: Path) -> None:
    text = (tree / "plugins" / "modules" / "docker_status.py").read_text()
    assert "  - prosaas.deploy.prosaas_read_only\n  - prosaas.deploy.prosaas_docker\n" in text


def test_the_action_plugins_have_their_documentation_modules(tree: Path) -> None:
    for path in (ROOT / "plugins" / "action").glob("*.py"):
        if 'DOCUMENTATION = r"""' in path.read_text():
            stub = (tree / "plugins" / "modules" / path.name).read_text()
            assert f"\nmodule: {path.stem}\n" in stub


def test_the_metadata_names_the_collection_its_version_and_ansible_range(tree: Path) -> None:
    galaxy = yaml.safe_load((tree / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("prosaas", "deploy")
    assert galaxy["version"] == collection.project(ROOT)["version"]
    assert galaxy["license"] == ["GPL-3.0-or-later"]
    assert (tree / galaxy["readme"]).read_text() == (ROOT / "docs" / "collection.md").read_text()
    runtime = yaml.safe_load((tree / "meta" / "runtime.yml").read_text())
    assert runtime == {"requires_ansible": ">=2.16,<2.20"}
    assert (tree / "tests" / "sanity" / "ignore-2.19.txt").exists()


def test_the_pinned_sanity_requirements_are_those_ansible_test_installs() -> None:
    """requirements-sanity.txt is what the installed ansible-test pins for the tests run
    (sanity.<test>[.<part>].txt) and the pip it bootstraps them with."""
    import ansible_test  # noqa: PLC0415 - only this test reads ansible-test's own files

    folder = Path(ansible_test.__file__).parent
    wanted = {
        line
        for path in (folder / "_data" / "requirements").glob("sanity.*.txt")
        if path.name.split(".")[1] in collection.SANITY_TESTS
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    }
    bootstrap = (folder / "_internal" / "python_requirements.py").read_text()
    pip = re.search(r"pip='([^']+)'", bootstrap)[1]
    wanted.add(f"pip=={pip}")
    pinned = (ROOT / "requirements-sanity.txt").read_text().splitlines()
    assert {line for line in pinned if line and not line.startswith("#")} == wanted


def test_a_path_set_up_outside_a_checkout_only_region_is_refused() -> None:
    text = "import sys\nsys.path.append('module_utils')\nfrom prosaas_schema import X\n"
    with pytest.raises(collection.AssemblyError, match=r"^sets up sys\.path: put those lines"):
        collection.rewrite_python(text, NAMES)
