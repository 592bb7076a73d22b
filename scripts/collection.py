#!/usr/bin/env python3
"""The prosaas.deploy collection, assembled from the checkout; ansible-test sanity on it.

The checkout keeps Ansible's ad hoc layout (library/, module_utils/, plugins/, named in
ansible.cfg) and stays the only source: this tool writes the collection's tree under the
ignored .build/ folder, anew each time and never to be edited, with the imports and the
documentation's references rewritten to the collection's names.

    python scripts/collection.py assemble  # .build/collection/ansible_collections/prosaas/deploy
    python scripts/collection.py build     # that tree as .build/prosaas-deploy-<version>.tar.gz
    python scripts/collection.py sanity    # ansible-test sanity (SANITY_TESTS) on a tree of its own

ansible-test runs each sanity test in a virtualenv of its own with pinned requirements. Those
live in the ignored .venv-sanity/ (ansible-test's home there), made from the wheels of
requirements-sanity.txt, downloaded from PyPI once; they are made again only when that file
or ansible-core changes. A run with them in place reaches no network: pip's configuration in
that home allows no index.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE, NAME = "prosaas", "deploy"
FQCN = f"{NAMESPACE}.{NAME}"
MODULE_UTILS_PACKAGE = f"ansible_collections.{NAMESPACE}.{NAME}.plugins.module_utils"
# The ansible-core releases the project supports.
REQUIRES_ANSIBLE = ">=2.16,<2.20"
# The Python the modules need on a managed host (module_utils use datetime.UTC).
MODULES_PYTHON = ">=3.11"
# The checkout states no license. ansible-test's validate-modules wants a GPLv3 notice in the
# first lines of each module and documented plugin, so the collection is GPL-3.0-or-later, as
# Ansible's own modules are: galaxy.yml says so, and each Python file of it, in this line.
LICENSE = "GPL-3.0-or-later"
LICENSE_NOTICE = (
    "# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)\n"
)
BUILD = ROOT / ".build"
SANITY_HOME = ROOT / ".venv-sanity"
SANITY_REQUIREMENTS = ROOT / "requirements-sanity.txt"
# The sanity ignores, with checkout paths and a reason on each line.
IGNORES = Path("tests/sanity/ignore.txt")
README = Path("docs/collection.md")
# Checkout folder -> the collection's folder of the same plugins.
LAYOUT = {
    "library": "plugins/modules",
    "module_utils": "plugins/module_utils",
    "plugins/action": "plugins/action",
    "plugins/doc_fragments": "plugins/doc_fragments",
    "plugins/filter": "plugins/filter",
    "plugins/lookup": "plugins/lookup",
}
# The sanity tests run: all of ansible-test's (`ansible-test sanity --list-tests`) but those
# of SANITY_SKIPPED, each offline once requirements-sanity.txt is installed.
SANITY_TESTS = (
    "action-plugin-docs",
    "ansible-doc",
    "compile",
    "empty-init",
    "ignores",
    "import",
    "line-endings",
    "no-assert",
    "no-get-exception",
    "no-illegal-filenames",
    "no-smart-quotes",
    "pep8",
    "pylint",
    "replace-urlopen",
    "runtime-metadata",
    "shebang",
    "symlinks",
    "use-argspec-type-path",
    "use-compat-six",
    "validate-modules",
    "yamllint",
)
SANITY_SKIPPED = {
    "changelog": "the collection keeps no changelogs/: its version is the project's",
    "pslint": "no PowerShell in the collection",
    "shellcheck": "no shell script in the collection",
}
# The lines a plugin needs in the checkout only; the collection's copy has none of them.
REGION_BEGIN, REGION_END = "# checkout only: begin", "# checkout only: end"
DOC_STRING = re.compile(
    r'^(DOCUMENTATION|EXAMPLES|RETURN) = r?"""(.*?)"""', re.MULTILINE | re.DOTALL
)


class AssemblyError(Exception):
    """The collection cannot be made as asked; the message says why, in one line."""


@dataclass(frozen=True)
class Names:
    """The short names the checkout uses for what the collection knows by FQCN."""

    module_utils: frozenset[str]
    fragments: frozenset[str]
    tasks: frozenset[str]  # modules and action plugins: what a task names
    lookups: frozenset[str]
    filters: frozenset[str]

    @classmethod
    def of_checkout(cls, root: Path) -> Names:
        return cls(
            module_utils=stems(root / "module_utils"),
            fragments=stems(root / "plugins" / "doc_fragments"),
            tasks=stems(root / "library") | stems(root / "plugins" / "action"),
            lookups=stems(root / "plugins" / "lookup"),
            filters=frozenset(
                name
                for path in (root / "plugins" / "filter").glob("*.py")
                for name in filter_names(path.read_text())
            ),
        )


def stems(folder: Path) -> frozenset[str]:
    return frozenset(path.stem for path in folder.glob("*.py") if path.stem != "__init__")


def filter_names(source: str) -> list[str]:
    """The names a filter plugin's FilterModule.filters() returns, read from its dict literal."""
    return [
        key.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef) and node.name == "filters"
        for returned in ast.walk(node)
        if isinstance(returned, ast.Return) and isinstance(returned.value, ast.Dict)
        for key in returned.value.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    ]


# --- The rewrite: text in, text out ------------------------------------------------------


def rewrite_imports(text: str, names: Names) -> str:
    """`from ansible.module_utils.prosaas_x import` (how Ansible ships the checkout's
    module_utils to a host) and a plugin's bare `from prosaas_x import` (the checkout's path
    set up by hand) become imports from the collection's module_utils."""

    def collection_import(match: re.Match[str]) -> str:
        indent, name, rest = match.group("indent", "name", "rest")
        if name not in names.module_utils:
            return match.group(0)
        rest = re.sub(r"\s*# noqa: E402\b.*$", "", rest)
        return f"{indent}from {MODULE_UTILS_PACKAGE}.{name} import{rest}"

    statement = (
        r"^(?P<indent>[ \t]*)from (?:ansible\.module_utils\.)?(?P<name>\w+) import(?P<rest>.*)$"
    )
    return re.sub(statement, collection_import, text, flags=re.MULTILINE)


def drop_checkout_regions(text: str) -> str:
    """Drop the lines from each REGION_BEGIN line to its REGION_END line, then the imports
    of names only those lines used."""
    kept: list[str] = []
    dropped: list[str] = []
    inside = False
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker.startswith(REGION_BEGIN):
            if inside:
                raise AssemblyError(f"line {number}: a checkout-only region begins inside another")
            inside = True
        if inside:
            dropped.append(line)
        else:
            kept.append(line)
        if marker.startswith(REGION_END):
            if not inside:
                raise AssemblyError(f"line {number}: a checkout-only region ends, none began")
            inside = False
    if inside:
        raise AssemblyError("a checkout-only region never ends")
    removed = "".join(dropped)
    return "".join(line for line in kept if not import_used_only_by(line, removed, kept))


def import_used_only_by(line: str, removed: str, kept: list[str]) -> bool:
    """Whether LINE imports one name that REMOVED uses and no other kept line does."""
    match = re.match(r"^(?:import (\w+)|from [\w.]+ import (\w+))\s*$", line)
    if not match:
        return False
    used = re.compile(rf"\b{match.group(1) or match.group(2)}\b")
    return bool(used.search(removed)) and not any(
        used.search(other) for other in kept if other is not line
    )


def rewrite_documentation(text: str, names: Names) -> str:
    """DOCUMENTATION: doc fragments, seealso modules and M(...); EXAMPLES: the modules,
    lookups and filters its tasks use; RETURN: M(...): all by the collection's FQCN."""

    def section(match: re.Match[str]) -> str:
        kind, body = match.group(1), match.group(2)
        body = re.sub(r"\bM\((\w+)\)", lambda ref: f"M({fqcn(ref[1], names.tasks)})", body)
        if kind == "DOCUMENTATION":
            body = rewrite_fragments(body, names.fragments)
            body = re.sub(
                r"^(\s*- module: )(\w+)[ \t]*$",
                lambda ref: f"{ref[1]}{fqcn(ref[2], names.tasks)}",
                body,
                flags=re.MULTILINE,
            )
        elif kind == "EXAMPLES":
            body = re.sub(
                r"^(\s*(?:- )?)(\w+):(?=[ \t]*$)",
                lambda ref: f"{ref[1]}{fqcn(ref[2], names.tasks)}:",
                body,
                flags=re.MULTILINE,
            )
            body = re.sub(
                r"""(\blookup\(['"])(\w+)(?=['"])""",
                lambda ref: f"{ref[1]}{fqcn(ref[2], names.lookups)}",
                body,
            )
            body = re.sub(
                r"(\|[ \t]*)(\w+)\b(?!\.)",
                lambda ref: f"{ref[1]}{fqcn(ref[2], names.filters)}",
                body,
            )
        return match.group(0).replace(match.group(2), body, 1)

    return DOC_STRING.sub(section, text)


def fqcn(name: str, ours: frozenset[str]) -> str:
    return f"{FQCN}.{name}" if name in ours else name


def rewrite_fragments(documentation: str, fragments: frozenset[str]) -> str:
    """The items of extends_documentation_fragment, each a fragment of plugins/doc_fragments."""
    lines = documentation.splitlines(keepends=True)
    listing = False
    for index, line in enumerate(lines):
        if re.match(r"^extends_documentation_fragment:\s*$", line):
            listing = True
            continue
        item = re.match(r"^(\s+- )(\S+?)(\s*)$", line) if listing else None
        if not item:
            listing = False
            continue
        if item[2] not in fragments:
            raise AssemblyError(f"doc fragment {item[2]!r} is not one of plugins/doc_fragments")
        lines[index] = f"{item[1]}{FQCN}.{item[2]}{item[3]}"
    return "".join(lines)


def rewrite_python(text: str, names: Names) -> str:
    """A checkout Python file as the collection holds it."""
    text = rewrite_documentation(rewrite_imports(drop_checkout_regions(text), names), names)
    if "sys.path" in text:
        raise AssemblyError(
            f"sets up sys.path: put those lines between '{REGION_BEGIN}' and '{REGION_END}'"
            " lines, the collection imports module_utils by its name"
        )
    return with_license_notice(text)


def with_license_notice(text: str) -> str:
    """TEXT with LICENSE_NOTICE on its first line, or its second after a shebang."""
    shebang, rest = ("", text)
    if text.startswith("#!"):
        shebang, _newline, rest = text.partition("\n")
        shebang += "\n"
    return f"{shebang}{LICENSE_NOTICE}{rest}"


def action_module_stub(action: str, name: str) -> str | None:
    """The module file that documents the action plugin NAME (ACTION its source), as Ansible
    looks up an action plugin's documentation: its doc strings, no code; None when the plugin
    has no DOCUMENTATION."""
    docs = {match[1]: match[0] for match in DOC_STRING.finditer(action)}
    if "DOCUMENTATION" not in docs:
        return None
    docs["DOCUMENTATION"] = re.sub(
        rf"^action: {name}$", f"module: {name}", docs["DOCUMENTATION"], flags=re.MULTILINE
    )
    strings = "\n\n".join(
        docs[kind] for kind in ("DOCUMENTATION", "EXAMPLES", "RETURN") if kind in docs
    )
    return (
        "#!/usr/bin/python\n"
        f'"""The documentation of the action plugin {name} (plugins/action/{name}.py):\n'
        'its tasks run on the control node, no module code runs."""\n\n'
        f"from __future__ import annotations\n\n{strings}\n"
    )


def collection_ignores(text: str) -> str:
    """The committed ignores (checkout paths, a reason after # on each line) as the lines of
    the collection's tests/sanity/ignore-<ansible-core minor>.txt."""
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        entry, _, reason = line.partition("#")
        path, _, rule = entry.strip().partition(" ")
        if not rule.strip() or not reason.strip():
            raise AssemblyError(f"{IGNORES} line {number}: write <path> <test>[:code]  # <reason>")
        lines.append(f"{collection_path(path)} {rule.strip()}  # {reason.strip()}\n")
    return "".join(lines)


def collection_path(checkout_path: str) -> str:
    folder, _, name = checkout_path.rpartition("/")
    if folder not in LAYOUT:
        raise AssemblyError(f"{checkout_path}: not in one of {', '.join(LAYOUT)}")
    return f"{LAYOUT[folder]}/{name}"


# --- The tree ----------------------------------------------------------------------------


def project(root: Path) -> dict[str, str]:
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]


def galaxy_metadata(root: Path) -> dict[str, object]:
    return {
        "namespace": NAMESPACE,
        "name": NAME,
        "version": project(root)["version"],
        "readme": "README.md",
        "authors": ["prosaas-deploy maintainers"],
        "description": project(root)["description"],
        "license": [LICENSE],
        "tags": ["deployment", "docker", "postgresql"],
        "dependencies": {},
        "build_ignore": ["tests/output"],
    }


class IndentedDumper(yaml.SafeDumper):
    """YAML with list items indented under their key, as yamllint's default wants."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def write_python(path: Path, text: str, names: Names, source: Path) -> None:
    try:
        path.write_text(rewrite_python(text, names))
    except AssemblyError as error:
        raise AssemblyError(f"{source}: {error}") from None


def write_yaml(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(data, Dumper=IndentedDumper, sort_keys=False, default_flow_style=False)
    path.write_text(f"---\n{text}")


def write_tree(root: Path, collection: Path, ansible_minor: str) -> None:
    """Write the whole collection into the empty folder COLLECTION."""
    names = Names.of_checkout(root)
    for source, target in LAYOUT.items():
        (collection / target).mkdir(parents=True)
        for path in sorted((root / source).glob("*.py")):
            write_python(
                collection / target / path.name, path.read_text(), names, path.relative_to(root)
            )
    for path in sorted((root / "plugins" / "action").glob("*.py")):
        stub = action_module_stub(path.read_text(), path.stem)
        module = collection / "plugins" / "modules" / path.name
        if stub and not module.exists():
            write_python(module, stub, names, path.relative_to(root))
    write_yaml(collection / "galaxy.yml", galaxy_metadata(root))
    write_yaml(collection / "meta" / "runtime.yml", {"requires_ansible": REQUIRES_ANSIBLE})
    write_yaml(
        collection / "tests" / "config.yml", {"modules": {"python_requires": MODULES_PYTHON}}
    )
    if (root / IGNORES).exists():
        ignores = collection / "tests" / "sanity" / f"ignore-{ansible_minor}.txt"
        ignores.parent.mkdir(parents=True)
        ignores.write_text(collection_ignores((root / IGNORES).read_text()))
    shutil.copyfile(root / README, collection / "README.md")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold PATH's lock: runs that share a tree (the EE build, the tests) take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def assemble(dest: Path) -> Path:
    """DEST/ansible_collections/prosaas/deploy, made anew; the caller holds DEST's lock."""
    collection = dest / "ansible_collections" / NAMESPACE / NAME
    if collection.exists():
        shutil.rmtree(collection)
    collection.mkdir(parents=True)
    write_tree(ROOT, collection, ansible_minor())
    return collection


def ansible_minor() -> str:
    from ansible.release import __version__  # noqa: PLC0415 - the checkout's ansible-core

    return ".".join(__version__.split(".")[:2])


def build(collection: Path, output: Path) -> Path:
    run(
        [tool("ansible-galaxy"), "collection", "build", "--force", "--output-path", str(output)],
        cwd=collection,
        quiet=True,
    )
    return output / f"{NAMESPACE}-{NAME}-{project(ROOT)['version']}.tar.gz"


# --- The sanity run ----------------------------------------------------------------------

# pip's user configuration in ansible-test's home: the downloaded wheels, never an index.
PIP_CONF = """[global]
no-index = true
find-links = {wheels}
disable-pip-version-check = true
"""
# ansible-test bootstraps pip into each new virtualenv with a get-pip script it would download
# from its own CI host, none of the package registries. This stand-in, where ansible-test
# caches that script, installs the same pip from the downloaded wheel.
GET_PIP = '''"""Stand-in for get-pip.py: install pip from the downloaded pip wheel, offline."""
import glob
import runpy
import sys

WHEELS = {wheels!r}
sys.path.insert(0, sorted(glob.glob(WHEELS + "/pip-*.whl"))[-1])
options = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install", "--no-index", "--find-links", WHEELS, *options]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
'''


def sanity_fingerprint() -> str:
    """What the sanity virtualenvs are made of: the pinned requirements, for the ansible-core
    whose ansible-test chooses each test's."""
    digest = hashlib.sha256(SANITY_REQUIREMENTS.read_bytes())
    digest.update(ansible_minor().encode())
    return digest.hexdigest()


def pinned_pip() -> str:
    pins = dict(
        line.split("==", 1) for line in SANITY_REQUIREMENTS.read_text().splitlines() if "==" in line
    )
    if "pip" not in pins:
        raise AssemblyError(f"{SANITY_REQUIREMENTS.name} pins no pip (ansible-test needs one)")
    return pins["pip"].strip()


def sanity_environment(collection: Path) -> dict[str, str]:
    """ansible-test's home is .venv-sanity/home: it passes HOME, and no PIP_* variable, to the
    pip it runs. The content root is named, else ansible-test takes the checkout's git for the
    collection's and lists the files git tracks: none, the tree being ignored."""
    return {
        **os.environ,
        "HOME": str(SANITY_HOME / "home"),
        "ANSIBLE_TEST_CONTENT_ROOT": str(collection),
        "ANSIBLE_NOCOLOR": "1",
    }


def ensure_sanity_environment(collection: Path) -> None:
    """Make ansible-test's virtualenvs (PyPI for the wheels), unless those in place were made
    from the same requirements for the same ansible-core."""
    stamp = SANITY_HOME / ".requirements.sha256"
    want = sanity_fingerprint()
    if stamp.exists() and stamp.read_text().strip() == want:
        return
    say(f"making ansible-test's virtualenvs in {SANITY_HOME.name}/ ({SANITY_REQUIREMENTS.name})")
    if SANITY_HOME.exists():
        shutil.rmtree(SANITY_HOME)
    wheels, home = SANITY_HOME / "wheels", SANITY_HOME / "home"
    run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--only-binary=:all:", "--dest", str(wheels), "-r", str(SANITY_REQUIREMENTS)],
        cwd=ROOT,
        quiet=True,
    )  # fmt: skip
    (home / ".config" / "pip").mkdir(parents=True)
    (home / ".config" / "pip" / "pip.conf").write_text(PIP_CONF.format(wheels=wheels))
    cache = home / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True)
    get_pip = cache / f"get_pip_{pinned_pip().replace('.', '_')}.py"
    get_pip.write_text(GET_PIP.format(wheels=str(wheels)))
    run(
        ansible_test_command("--prime-venvs"),
        cwd=collection,
        env=sanity_environment(collection),
        quiet=True,
    )
    stamp.write_text(f"{want}\n")


def ansible_test_command(*extra: str) -> list[str]:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    tests = [option for name in SANITY_TESTS for option in ("--test", name)]
    return [tool("ansible-test"), "sanity", "--local", "--python", python, *tests, *extra]


def tool(name: str) -> str:
    """The Ansible command installed beside this Python, even when its virtualenv is not
    activated; else the one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def sanity(collection: Path) -> None:
    ensure_sanity_environment(collection)
    say(f"ansible-test sanity on {FQCN} (Python {sys.version_info.major}.{sys.version_info.minor})")
    say(f"tests: {' '.join(SANITY_TESTS)}")
    for name, reason in SANITY_SKIPPED.items():
        say(f"skipped: {name} ({reason})")
    started = time.monotonic()
    run(ansible_test_command(), cwd=collection, env=sanity_environment(collection))
    say(f"ansible-test sanity passed ({time.monotonic() - started:.0f} s)")


def run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, quiet: bool = False
) -> None:
    """Run COMMAND; its output goes to ours, or, when QUIET, only if it fails."""
    output = subprocess.PIPE if quiet else None
    result = subprocess.run(
        command, cwd=cwd, env=env, stdout=output, stderr=output, text=True, check=False
    )
    if result.returncode != 0:
        if quiet:
            sys.stderr.write(result.stdout + result.stderr)
        raise AssemblyError(f"{' '.join(command[:3])} exited {result.returncode} (output above)")


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("assemble", "build", "sanity"))
    parser.add_argument(
        "--dest",
        type=Path,
        help="the folder to hold ansible_collections/ (default: .build/collection, and"
        " .build/sanity for sanity, whose tree no build replaces while ansible-test reads it)",
    )
    args = parser.parse_args(argv)
    default = BUILD / ("sanity" if args.action == "sanity" else "collection")
    dest = (args.dest or default).resolve()
    try:
        with locked(dest.with_name(f"{dest.name}.lock")):
            collection = assemble(dest)
            if args.action == "assemble":
                print(collection)
            elif args.action == "build":
                print(build(collection, dest.parent))
            else:
                sanity(collection)
    except AssemblyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
