"""The operator docs held to the code: what tests/unit/test_docs_commands.py checks.

README.md, RUNBOOK.md and inventories/README.md are read as Markdown: fenced and indented
code blocks (backslash continuations joined) and inline code spans (which may wrap lines).
From them:

- ``ansible-playbook`` commands (from the word to the end of the span or line, a ``;``,
  ``&&`` or ``|``): each names its inventory with ``-i`` and a playbook that exists. A
  span that starts with a playbook and passes it options (``playbooks/x.yml -e ...``) has
  left ``ansible-playbook`` out and cannot run as written.
- ``-e`` values of those commands and of spans that start with ``-e``: each variable is a
  ``prosaas_*`` setting (declared in the inventories or an argument spec, or read with a
  default by a playbook or role), or a role's own option that no playbook or role sets
  itself (``schedule_*`` of playbooks/schedule.yml, ``migrate_command``). A role option a
  playbook sets from a setting (``migrate_timeout`` from ``prosaas_migrate_timeout``) is
  refused: set on its own, it bypasses what else reads that setting (the lock's lease).
- containers named by ``docker rm|logs|exec|wait|inspect|...``: each a name the code gives
  a container, with the default empty ``prosaas_container_prefix`` (``container_names``).
- output the RUNBOOK quotes (``quoted_output``): each matches a message the code prints
  (``message_templates``) or one of ``EXTERNAL_OUTPUT``.

Convention for quoted output (RUNBOOK.md follows it): output is quoted in backticks, in an
entry's **Symptom** or **What you should see** (the bullet, or a paragraph that starts
"What you should see:"), where every span with a space in it is output unless it is a
command or code (``is_command_or_code``); and anywhere else right after "prints", "says",
"shows", "logs" or "ends with" (and the spans listed after such a one: "`a`, or `b`"). In
a quote ``...`` or ``…`` leaves text out and ``<name>`` stands for a value.

Matching: the code's strings become templates, each placeholder (``{...}`` of an f-string
or a format string, ``{{ ... }}`` of Jinja, ``$var`` of the shell) a hole that takes any
text; a Jinja expression gives each string it may render (``a if c else b``, ``x |
default('y')``, each item of a list of lines). A quote matches when a template's own words,
and those of the messages nested in its holes (a deploy's failure line holds the failed
task's message, which holds an engine's reason), meet MIN_WORD_SHARE of the quote's words.
Values are not words that count: container and phase names, and 'quoted' names.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import shlex
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "RUNBOOK.md", "inventories/README.md")


def _normal(text: str) -> str:
    return " ".join(text.split())


def _load_yaml(text: str) -> object:
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


def _yaml_file(path: Path) -> object:
    """PATH's data; {} for a vault-encrypted file."""
    text = path.read_text(encoding="utf-8")
    return {} if text.startswith("$ANSIBLE_VAULT") else (_load_yaml(text) or {})


# --- Markdown --------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")
SPAN = re.compile(r"`([^`]+)`")
ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d+\.)\s|^#")
FIELD = re.compile(r"^\s*- \*\*(?P<field>[^*]+)\*\*")
SEE_PARAGRAPH = re.compile(r"^What you should see:")
OUTPUT_FIELDS = ("Symptom", "What you should see")
OUTPUT_VERB = re.compile(r"\b(?:prints|says|shows|logs|ends with)(?: it)?\s*:?\s*$")
OUTPUT_LIST = re.compile(r"`\s*(?:,|,? or|,? and)\s*$")  # `one output`, or `the next`

Lines = list[tuple[int, str]]  # (line number, text)


@dataclass(frozen=True)
class Snippet:
    """A piece of code in a doc: a code line (fenced or indented block) or an inline span."""

    doc: str
    line: int
    text: str
    inline: bool
    field: str = ""  # the entry's field (Symptom, Command, ...) an inline span is in
    before: str = ""  # the text of its paragraph just before an inline span

    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def _fenced(text: str) -> Iterator[tuple[bool, Lines]]:
    """(fenced?, lines): the fenced code blocks of TEXT and the runs of lines between."""
    fenced, run = False, []
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            yield fenced, run
            fenced, run = not fenced, []
        else:
            run.append((number, line))
    yield fenced, run


def _paragraphs(run: Lines) -> Iterator[Lines]:
    """The paragraphs of RUN (lines between blank ones), each list item on its own."""
    block: Lines = []
    for number, line in run:
        if not line.strip() or (ITEM.match(line) and block):
            if block:
                yield block
            block = []
        if line.strip():
            block.append((number, line))
    if block:
        yield block


def _blocks(text: str) -> Iterator[tuple[bool, Lines]]:
    """(code?, lines): fenced blocks, indented code blocks (a paragraph indented by four
    spaces, not within a list) and prose paragraphs, in order."""
    in_list = False
    for fenced, run in _fenced(text):
        if fenced:
            yield True, run
            continue
        for paragraph in _paragraphs(run):
            indented = all(line.startswith("    ") for _, line in paragraph)
            yield indented and not in_list, paragraph
            if not indented:
                in_list = bool(ITEM.match(paragraph[0][1])) or paragraph[0][1].startswith(" ")


def _joined_code_lines(lines: Lines) -> Iterator[tuple[int, str]]:
    """Code lines with backslash continuations joined, each with the line it starts on."""
    start, pending = 0, ""
    for number, line in lines:
        start = start if pending else number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, _normal(pending + line)
        pending = ""
    if pending:
        yield start, _normal(pending)


def _field(first_line: str, field: str) -> str:
    """The entry field a paragraph starting with FIRST_LINE is in, after one in FIELD."""
    if (match := FIELD.match(first_line)) is not None:
        return match["field"].rstrip(":")
    if SEE_PARAGRAPH.match(first_line):
        return "What you should see"
    return field if first_line.startswith(" ") else ""  # a continuation keeps its field


def snippets(doc: str, text: str) -> list[Snippet]:
    """Every code line and inline code span of the Markdown TEXT of DOC."""
    found: list[Snippet] = []
    field = ""
    for code, block in _blocks(text):
        if code:
            found += [Snippet(doc, n, line, False) for n, line in _joined_code_lines(block)]
            continue
        field = _field(block[0][1], field)
        paragraph = "\n".join(line for _, line in block)
        for span in SPAN.finditer(paragraph):
            line = block[0][0] + paragraph.count("\n", 0, span.start())
            before = _normal(paragraph[: span.start()])[-60:]
            found.append(Snippet(doc, line, _normal(span[1]), True, field, before))
    return found


def doc_snippets(root: Path = ROOT) -> list[Snippet]:
    return [s for doc in DOCS for s in snippets(doc, (root / doc).read_text(encoding="utf-8"))]


# --- ansible-playbook commands ---------------------------------------------------------

# Options of ansible-playbook that take a value: the value is never the playbook.
VALUE_OPTIONS = {
    "-i", "--inventory", "-e", "--extra-vars", "-l", "--limit", "-t", "--tags", "--skip-tags",
    "-u", "--user", "--vault-id", "--vault-password-file", "-f", "--forks", "-M",
    "--module-path", "--start-at-task", "-c", "--connection", "--private-key",
}  # fmt: skip
COMMAND_END = re.compile(r"\s(?:;|&&|\|\|?)\s|;\s|;$")


@dataclass(frozen=True)
class PlaybookCommand:
    """One ansible-playbook command of a doc."""

    snippet: Snippet
    playbook: str
    inventories: tuple[str, ...]
    extra_vars: tuple[str, ...]  # the -e values, as written


def _shell_words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=True)
    except ValueError:  # prose around a quoted command: an apostrophe, say
        return command.split()


def _until_end(command: str) -> str:
    """COMMAND up to where a shell would end it (;, &&, |)."""
    end = COMMAND_END.search(command)
    return command[: end.start()] if end else command


def parse_playbook_command(command: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(playbook, inventories, extra vars) of COMMAND, the words after ansible-playbook."""
    playbook, inventories, extra = "", [], []
    words = iter(_shell_words(command))
    for word in words:
        option, _, attached = word.partition("=")
        if word.startswith("-i") and len(word) > 2 and not word.startswith("-i="):
            inventories.append(word[2:])
        elif option in ("-i", "--inventory"):
            inventories.append(attached or next(words, ""))
        elif option in ("-e", "--extra-vars"):
            extra.append(attached or next(words, ""))
        elif word in VALUE_OPTIONS:
            next(words, "")
        elif not playbook and re.search(r"\.ya?ml$", word) and not word.startswith("-"):
            playbook = word
    return playbook, tuple(inventories), tuple(extra)


def playbook_commands(found: Iterable[Snippet]) -> list[PlaybookCommand]:
    """Every ansible-playbook command in FOUND (the tool merely named is none)."""
    commands = []
    for snippet in found:
        for match in re.finditer(r"(?<![\w/.-])ansible-playbook(?=\s|$)", snippet.text):
            words = _until_end(snippet.text[match.end() :])
            if words.strip():
                commands.append(PlaybookCommand(snippet, *parse_playbook_command(words)))
    return commands


def command_problems(command: PlaybookCommand, root: Path = ROOT) -> list[str]:
    """What keeps COMMAND from running as written against the inventory it means."""
    problems = []
    if not command.inventories:
        problems.append("names no inventory (-i inventories/<name>)")
    problems += [
        f"inventory {inventory} does not exist"
        for inventory in command.inventories
        if not (root / inventory).is_dir()
    ]
    if not command.playbook:
        problems.append("names no playbook")
    elif not (root / command.playbook).is_file():
        problems.append(f"playbook {command.playbook} does not exist")
    return problems


def abbreviated_command(snippet: Snippet) -> bool:
    """A span that starts with a playbook and passes it options: ansible-playbook left out."""
    return snippet.inline and bool(re.match(r"^[\w./-]+\.ya?ml\s+-", snippet.text))


# --- -e variables ----------------------------------------------------------------------


def extra_var_names(value: str) -> list[str]:
    """The variables an -e VALUE sets: the keys of a JSON (or YAML) mapping, or of
    key=value pairs; none for @file."""
    value = value.strip()
    if value.startswith("@"):
        return []
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except json.JSONDecodeError:
            data = _load_yaml(value)
        return [str(key) for key in data] if isinstance(data, dict) else [value]
    return [pair.partition("=")[0] for pair in _shell_words(value)]


def extra_vars_of(found: Iterable[Snippet]) -> list[tuple[Snippet, str]]:
    """(snippet, -e value) of every ansible-playbook command and every span starting with -e."""
    found = list(found)
    pairs = [(c.snippet, value) for c in playbook_commands(found) for value in c.extra_vars]
    for snippet in found:
        if snippet.inline and snippet.text.startswith(("-e ", "--extra-vars ")):
            pairs += [(snippet, value) for value in parse_playbook_command(snippet.text)[2]]
    return pairs


@dataclass(frozen=True)
class Settings:
    """What a run can set with -e."""

    settings: frozenset[str]  # prosaas_*: declared, or read with a default
    role_options: frozenset[str]  # every role's argument spec options
    set_by_code: frozenset[str]  # variables the playbooks and roles set themselves


def _code_texts(root: Path, *patterns: str) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for g in patterns for p in root.glob(g))


PLAYBOOKS_AND_TASKS = ("playbooks/**/*.yml", "deploy.yml", "roles/*/tasks/*.yml")


@cache
def settings(root: Path = ROOT) -> Settings:
    options: set[str] = set()
    for spec in root.glob("roles/*/meta/argument_specs.yml"):
        for entry in _yaml_file(spec)["argument_specs"].values():  # type: ignore[index]
            options.update(entry.get("options") or {})
    inventory_keys: set[str] = set()
    for path in [root / "inventories" / "common.yml", *root.glob("inventories/*/group_vars/*/*")]:
        inventory_keys.update(_yaml_file(path))  # type: ignore[arg-type]
    code = _code_texts(root, *PLAYBOOKS_AND_TASKS)
    with_default = set(re.findall(r"\b(prosaas_\w+)\s*\|\s*default\b", code))
    declared = {n for n in inventory_keys | options | with_default if n.startswith("prosaas_")}
    set_by_code = set(re.findall(r"^\s*-?\s*(\w+):", code, re.M))
    return Settings(frozenset(declared), frozenset(options), frozenset(set_by_code))


def variable_problem(name: str, known: Settings) -> str:
    """Why -e NAME does not set what the docs mean; "" when it does."""
    if name in known.settings:
        return ""
    if name.startswith("prosaas_"):
        return f"{name}: no such setting (inventories/common.yml, argument specs)"
    if name not in known.role_options:
        return f"{name}: no such setting; -e sets prosaas_* settings"
    if name in known.set_by_code:
        return f"{name}: a role's option the playbooks set from a prosaas_* setting; set that"
    return ""


# --- docker commands -------------------------------------------------------------------

# docker subcommands that name containers: (the first argument only?, options with a value).
CONTAINER_COMMANDS: dict[str, tuple[bool, frozenset[str]]] = {
    "rm": (False, frozenset()),
    "wait": (False, frozenset()),
    "start": (False, frozenset()),
    "inspect": (False, frozenset({"-f", "--format", "--type"})),
    "stop": (False, frozenset({"-t", "--time", "-s", "--signal"})),
    "restart": (False, frozenset({"-t", "--time", "-s", "--signal"})),
    "kill": (False, frozenset({"-s", "--signal"})),
    "logs": (True, frozenset({"-n", "--tail", "--since", "--until"})),
    "exec": (True, frozenset({"-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir"})),
    "top": (True, frozenset()),
    "port": (True, frozenset()),
}
DOCKER = re.compile(r"(?<![\w/.-])docker\s+(?:container\s+)?(\w+)\b(.*)")


def docker_containers(command: str) -> list[str]:
    """The containers the docker commands in COMMAND name (<placeholders> left out)."""
    named: list[str] = []
    for match in DOCKER.finditer(command):
        if match[1] not in CONTAINER_COMMANDS:
            continue
        first_only, value_options = CONTAINER_COMMANDS[match[1]]
        words = iter(_shell_words(_until_end(match[2])))
        for word in words:
            if word in value_options:
                next(words, "")
            elif not word.startswith("-"):
                name = re.split(r"[,)]", word)[0]  # a command quoted in prose ends there
                named.append(name)
                if first_only or name != word:
                    break
    return [name for name in named if not re.fullmatch(r"<[^<>]+>", name)]


@cache
def container_names(root: Path = ROOT) -> frozenset[str]:
    """Every container name the code gives, with the default empty prefix: the inventories'
    services (and NAME-next, NAME-previous of the online switch), and the one-shot and
    proxy containers the playbooks and roles name after prosaas_container_prefix."""
    services: set[str] = set()
    for path in [root / "inventories" / "common.yml", *root.glob("inventories/*/group_vars/*/*")]:
        data = _yaml_file(path)
        for key in ("prosaas_infra_services", "prosaas_app_services"):
            entries = data.get(key) if isinstance(data, dict) else None
            if isinstance(entries, list):
                services.update(entry["name"] for entry in entries if isinstance(entry, dict))
    code = _code_texts(root, *PLAYBOOKS_AND_TASKS, "roles/*/defaults/*.yml")
    one_shots = re.findall(r"\w*container_prefix \}\}([\w-]+)", code)
    one_shots += re.findall(r"container_prefix[^}]*?~\s*'([\w-]+)'", code)
    # The proxy's container: the prefix, then the deployment context's PROXY.
    context_code = _code_texts(root, "module_utils/prosaas_context.py")
    one_shots += re.findall(r'^PROXY = "([\w-]+)"', context_code, re.M)
    service_code = _code_texts(root, "module_utils/prosaas_service.py")
    suffixes = re.findall(r'^\w+_SUFFIX = "([\w-]+)"', service_code, re.M)
    switched = {name + suffix for name in services for suffix in suffixes}
    return frozenset(services | switched | set(one_shots))


# --- Quoted output ---------------------------------------------------------------------

COMMAND_WORDS = {
    "ansible-playbook", "ansible-vault", "ansible", "docker", "ssh", "ssh-keygen", "curl", "jq",
    "systemctl", "journalctl", "pg_isready", "python", "python3", "git", "df", "ls", "install",
    "pgrep", "cp", "mv", "psql", "cat",
}  # fmt: skip
SQL_WORDS = {"SELECT", "CREATE", "ALTER", "SET", "CHECK", "VALIDATE", "ADD", "UPDATE", "DROP"}


def is_command_or_code(text: str) -> bool:
    """A command the operator types, an option, SQL, or a setting: not output."""
    first = text.split(maxsplit=1)[0]
    return (
        first in COMMAND_WORDS
        or first in SQL_WORDS
        or first.startswith(("-", "playbooks/"))
        or bool(re.match(r"^[A-Z_]+=|^prosaas_\w+:", first))
    )


def quoted_output(found: Iterable[Snippet]) -> list[Snippet]:
    """The spans that quote output, by the convention in this module's docstring: in an
    output field, after an output verb, or listed (", or") right after such a span."""
    quotes: list[Snippet] = []
    previous: Snippet | None = None
    for snippet in found:
        listed = previous in quotes[-1:] and bool(OUTPUT_LIST.search(snippet.before))
        previous = snippet
        if not snippet.inline or " " not in snippet.text or is_command_or_code(snippet.text):
            continue
        if snippet.field in OUTPUT_FIELDS or OUTPUT_VERB.search(snippet.before) or listed:
            quotes.append(snippet)
    return quotes


# Output the RUNBOOK quotes that the project's code does not print: Ansible's own lines,
# and what other tools say. Each: (who prints it, what it prints, with ... and <name>).
EXTERNAL_OUTPUT = (
    ("Ansible, on a host it cannot reach", "UNREACHABLE! ..."),
    (
        "Ansible, on a vault it cannot decrypt",
        "ERROR! Decryption failed (no vault secrets were found that could decrypt) on ...",
    ),
    ("Ansible's play recap", "<host> : ok=... changed=... failed=..."),
    ("Ansible, before a warning a task returns", "[WARNING]: ..."),
    ("Python, on an interrupt it drops while it frees memory", "Exception ignored in ..."),
    ("ssh", "Permission denied (publickey)"),
    ("ssh", "Connection refused"),
    ("ssh", "Host key verification failed"),
    ("ssh", "REMOTE HOST IDENTIFICATION HAS CHANGED"),
    ("pg_isready", "accepting connections"),
    ("the OS on a full disk (the code adds the errno name)", "No space left on device ..."),
    ("docker inspect -f of the migrate container", "no exited"),
    ("docker inspect -f of the migrate container", "no running"),
    ("docker build", "COPY failed: ..."),
    ("HAProxy, the Retry-After header of a drained backend", "retry-after: 5"),
    (
        "the app's health check (demo/app/app.py stands in for it)",
        "call_log is missing columns: duration_sec, ended_at, started_at",
    ),
)


# --- Message templates of the code -----------------------------------------------------

HOLE = "\ue000"  # a placeholder of a template: any text
PYTHON_DIRS = ("library", "module_utils", "plugins", "migrations/migrator", "roles")
YAML_GLOBS = ("playbooks/**/*.yml", "deploy.yml", "roles/*/tasks/*.yml", "roles/*/handlers/*.yml")
JINJA_GLOBS = ("roles/*/templates/*.j2", "playbooks/templates/*.j2")
SHELL_SOURCES = ("scripts/scheduled-deploy.sh", "migrations/Dockerfile")
MODULE_DOCS = {"DOCUMENTATION", "EXAMPLES", "RETURN"}
# YAML keys whose values are conditions or plumbing, never printed.
NOT_PRINTED_KEYS = {"when", "changed_when", "failed_when", "until", "that", "register", "loop"}
FORMAT_FIELD = re.compile(r"\{[^{}]*\}|%[-#0 +]*\d*(?:\.\d+)?[sdrifgx]")
MAX_ALTERNATIVES = 256  # renderings kept of one Jinja expression


def _collapse(template: str) -> str:
    """TEMPLATE with whitespace collapsed, and a placeholder within a word, a path or a
    name (``{prefix}migrate``, ``{path}.bak``) taking all of it."""
    template = re.sub(rf"[\w./@-]*{HOLE}[\w./@-]*", HOLE, _normal(template))
    return re.sub(f"{HOLE}(?: ?{HOLE})+", HOLE, template)


def _python_docs(tree: ast.AST) -> set[int]:
    """The ids of TREE's docstrings and module documentation strings."""
    docs: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            docs.add(id(body[0].value))
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id in MODULE_DOCS for target in node.targets
        ):
            docs.add(id(node.value))
    return docs


def _python_text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return FORMAT_FIELD.sub(HOLE, node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(_python_text(value) for value in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _python_text(node.left) + _python_text(node.right)
    return HOLE


def python_templates(source: str) -> list[str]:
    """The strings of Python SOURCE, f-strings and concatenations (docs left out)."""
    tree = ast.parse(source)
    docs = _python_docs(tree)
    return [
        _python_text(node)
        for node in ast.walk(tree)
        if id(node) not in docs
        and (
            isinstance(node, ast.JoinedStr)
            or (isinstance(node, ast.Constant) and isinstance(node.value, str))
            or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add))
        )
    ]


def _product(parts: list[list[str]]) -> list[str]:
    """Each way to put one alternative of each of PARTS after the other."""
    combined = [""]
    for choices in parts:
        combined = [a + b for a, b in itertools.product(combined, choices)][:MAX_ALTERNATIVES]
    return combined


def _is_list(node: nodes.Node) -> bool:
    if isinstance(node, nodes.List):
        return True
    return isinstance(node, nodes.Add) and (_is_list(node.left) or _is_list(node.right))


def _jinja_sequence(children: Iterable[nodes.Node]) -> list[str]:
    return _product([_jinja(child) for child in children])


def _jinja_filter(node: nodes.Filter) -> list[str]:
    if node.node is not None and node.name in ("default", "d") and node.args:
        return _jinja(node.node) + _jinja(node.args[0])
    if node.node is not None and node.name in ("string", "trim"):
        return _jinja(node.node)
    return [HOLE]


def _jinja_choice(node: nodes.Node) -> list[str]:
    """The alternatives of a choice: a b-if-c-else-d, an or, an if block, a list of lines."""
    if isinstance(node, nodes.CondExpr):
        return _jinja(node.expr1) + (_jinja(node.expr2) if node.expr2 is not None else [""])
    if isinstance(node, nodes.Or):
        return _jinja(node.left) + _jinja(node.right)
    if isinstance(node, nodes.List):
        return [text for item in node.items for text in _jinja(item)]
    if isinstance(node, nodes.Add) and _is_list(node):
        return _jinja(node.left) + _jinja(node.right)
    if isinstance(node, nodes.If):
        bodies = [node.body, *(branch.body for branch in node.elif_), node.else_]
        return [text for body in bodies for text in _jinja_sequence(body)]
    return [HOLE]


def _jinja_text(node: nodes.TemplateData | nodes.Const) -> list[str]:
    if isinstance(node, nodes.TemplateData):
        return [node.data]
    return [node.value] if isinstance(node.value, str) else [HOLE]


def _jinja(node: nodes.Node) -> list[str]:
    """What NODE may render as, alternatives with holes for what cannot be known here."""
    if isinstance(node, nodes.TemplateData | nodes.Const):
        return _jinja_text(node)
    if isinstance(node, nodes.Template):
        return _jinja_sequence(node.body)
    if isinstance(node, nodes.Output | nodes.Concat):
        return _jinja_sequence(node.nodes)
    if isinstance(node, nodes.Add) and not _is_list(node):
        return _jinja_sequence([node.left, node.right])
    if isinstance(node, nodes.Filter):
        return _jinja_filter(node)
    return _jinja_choice(node)


JINJA = Environment(autoescape=False)  # noqa: S701 - parsed for its text, never rendered


def jinja_templates(text: str) -> list[str]:
    """What the Jinja TEXT may print: the whole of it, and each value it sets or appends to
    a list (lines collected to be printed later)."""
    if "{{" not in text and "{%" not in text:
        return [text]
    try:
        with warnings.catch_warnings():  # Jinja decodes '\\S' in a literal with a warning
            warnings.simplefilter("ignore", DeprecationWarning)
            template = JINJA.parse(text)
    except TemplateSyntaxError:
        return [re.sub(r"\{\{.*?\}\}|\{%.*?%\}", HOLE, text, flags=re.S)]
    found = _jinja(template)
    for assign in template.find_all(nodes.Assign):
        found += _jinja(assign.node)
    for call in template.find_all(nodes.Call):
        if isinstance(call.node, nodes.Getattr) and call.node.attr in ("append", "insert"):
            found += _jinja(call.args[-1]) if call.args else []
    return found


def _yaml_strings(data: object) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if str(key) not in NOT_PRINTED_KEYS:
                yield from _yaml_strings(value)
    elif isinstance(data, list):
        for item in data:
            yield from _yaml_strings(item)
    elif isinstance(data, str):
        yield data


def yaml_templates(text: str) -> list[str]:
    """The strings of a playbook or task file: task names, messages, the vars they print."""
    return [t for value in _yaml_strings(_load_yaml(text)) for t in jinja_templates(value)]


def _without_substitutions(text: str) -> str:
    """Shell TEXT with each command substitution $(...), quotes and all, one HOLE."""
    out, depth, i = [], 0, 0
    while i < len(text):
        if text.startswith("$(", i):
            out += [HOLE] if depth == 0 else []
            depth, i = depth + 1, i + 2
            continue
        if depth and text[i] in "()":
            depth += 1 if text[i] == "(" else -1
        elif not depth:
            out.append(text[i])
        i += 1
    return "".join(out)


def shell_templates(text: str) -> list[str]:
    """The double-quoted strings of a shell script, each variable and substitution a hole;
    a call of a function that echoes "$*" gives that line with its argument in place."""
    text = _without_substitutions(text)
    wrappers = dict(re.findall(r'^(\w+)\(\) \{\n\s+echo "(.*)"\n\}', text, re.M))
    found = []
    for match in re.finditer(r'^\s*(\w+)?\s*"((?:[^"\\]|\\.)*)"', text, re.M):
        line = match[2]
        if match[1] in wrappers:
            line = wrappers[match[1]].replace("$*", line)
        found.append(re.sub(r"\$\{[^}]*\}|\$[\w*@#?]+", HOLE, line.replace('\\"', '"')))
    return found


def _literal_size(template: str) -> int:
    return len(re.sub(rf"[\s{HOLE}]", "", template))


@cache
def message_templates(root: Path = ROOT) -> tuple[str, ...]:
    """Every message template of the code with a few letters of its own."""
    found: list[str] = []
    for directory in PYTHON_DIRS:
        for path in sorted((root / directory).rglob("*.py")):
            found += python_templates(path.read_text(encoding="utf-8"))
    for pattern in YAML_GLOBS:
        for path in sorted(root.glob(pattern)):
            found += yaml_templates(path.read_text(encoding="utf-8"))
    for pattern in JINJA_GLOBS:
        for path in sorted(root.glob(pattern)):
            found += jinja_templates(path.read_text(encoding="utf-8"))
    for source in SHELL_SOURCES:
        found += shell_templates((root / source).read_text(encoding="utf-8"))
    kept = {_collapse(template) for template in found}
    return tuple(sorted(t for t in kept if _literal_size(t) >= 5 and re.search("[A-Za-z]", t)))


@cache
def output_templates(root: Path = ROOT) -> tuple[str, ...]:
    """What a quote may match: the code's messages and the external output together (an
    Ansible line may hold a message of the code, an ssh error within Ansible's)."""
    external = (_collapse(ELISION.sub(HOLE, output)) for _, output in EXTERNAL_OUTPUT)
    return message_templates(root) + tuple(external)


# --- Matching a quote against the templates --------------------------------------------
# Quotes and templates are compared token by token (words, numbers, paths, single marks;
# whitespace does not count), each token coded as one character.

ELISION = re.compile(r"\.\.\.|…|<[A-Za-z][^<>]*>")
ELIDED = "\ue001"  # in a quote: text left out
# A path, URL or user@host is one token (a value); so is a dotted or hyphenated name.
TOKEN = re.compile(r"(?:\w[\w.-]*)?(?:(?::/+|/|@)[\w.-]+)+/?|\w+(?:[-.]\w+)*|[^\s\w]")
WORD = re.compile(r"[A-Za-z][A-Za-z_-]*[A-Za-z]")
# The share of a quote's words a template must meet, with its own text or with the
# messages nested in its placeholders. A placeholder holding a single word (a value) meets
# none: a short quote must quote the code's own words ("lock holders: none" does not).
MIN_WORD_SHARE = 0.7
IMPOSSIBLE = -1
PER_WORD = 1000  # an alignment scores the words it meets, then the marks (a tighter one)
_CODES: dict[str, str] = {HOLE: HOLE, ELIDED: ELIDED}  # token -> its character
_TOKENS: dict[str, str] = {HOLE: HOLE, ELIDED: ELIDED}  # character -> its token


def _encoded(text: str) -> str:
    """TEXT as one character per token."""
    coded = []
    for token in TOKEN.findall(text):
        if token not in _CODES:
            _CODES[token] = chr(0xF0000 + len(_CODES))
            _TOKENS[_CODES[token]] = token
        coded.append(_CODES[token])
    return "".join(coded)


def _elided(quote: str) -> str:
    """QUOTE as a fragment of a line, coded: each elision, and each end, one ELIDED."""
    return re.sub(f"{ELIDED}+", ELIDED, _encoded(ELISION.sub(ELIDED, f"...{quote}...")))


@cache
def value_words(root: Path = ROOT) -> frozenset[str]:
    """Words a quote carries as values, counted neither met nor unmet: the names of the
    containers and of the deploy's phases."""
    flow = (root / "playbooks" / "deploy.yml").read_text(encoding="utf-8")
    # validate and lock come before the first phase the flow enters with deploy_phase.
    phases = ["validate", "lock", *re.findall(r"deploy_phase:\s+name: (\w+)$", flow, re.M)]
    return container_names(root) | frozenset(phases)


@cache
def _counted(coded: str) -> tuple[bool, ...]:
    """Which tokens of CODED are words that count: not values, nor quoted like 'this'."""
    mark = _CODES.get("'")
    return tuple(
        bool(WORD.fullmatch(_TOKENS[code]))
        and _TOKENS[code] not in value_words()
        and not (0 < i < len(coded) - 1 and coded[i - 1] == coded[i + 1] == mark)
        for i, code in enumerate(coded)
    )


def _word_count(coded: str) -> int:
    return sum(_counted(coded))


@cache
def _template_words(template: str) -> frozenset[str]:
    return frozenset(_TOKENS[code] for code in _encoded(template))


@cache
def _word_index(templates: tuple[str, ...]) -> dict[str, list[int]]:
    """Word -> the indexes of the TEMPLATES that have it."""
    index: dict[str, list[int]] = {}
    for number, template in enumerate(templates):
        for word in _template_words(template):
            index.setdefault(word, []).append(number)
    return index


def _candidates(coded: str, templates: tuple[str, ...]) -> list[str]:
    """The templates that share a word of four letters or more with the CODED quote, those
    that share most first (every template when it has no such word)."""
    wanted = {_TOKENS[c] for c in coded if WORD.fullmatch(_TOKENS[c]) and len(_TOKENS[c]) > 3}
    if not wanted:
        return list(templates)
    index = _word_index(templates)
    shared = Counter(number for word in wanted for number in index.get(word, []))
    return [templates[number] for number, _ in shared.most_common()]


def _align(template: str, coded: str) -> tuple[int, list[tuple[int, int]]] | None:
    """The best alignment of TEMPLATE's tokens with the CODED quote's: each literal token
    met by the same token, or left out by an elision; each placeholder holding a run of
    the quote's tokens. The words it meets, and each placeholder's (start, end); None when
    they cannot be aligned."""
    tokens, weights = _encoded(template), [PER_WORD if c else 1 for c in _counted(coded)]
    m, n = len(tokens), len(coded)
    best = [[IMPOSSIBLE] * (n + 1) for _ in range(m + 1)]
    step = [[""] * (n + 1) for _ in range(m + 1)]
    best[m][n] = 0
    for j in range(n - 1, -1, -1):  # past the template's end only elisions may be left
        best[m][j] = best[m][j + 1] if coded[j] == ELIDED else IMPOSSIBLE
    for i in range(m - 1, -1, -1):
        token, here, below, moves = tokens[i], best[i], best[i + 1], step[i]
        for j in range(n, -1, -1):
            if token == HOLE:  # the placeholder ends here, or holds one more token
                here[j], moves[j] = below[j], "end"
                if j < n and here[j + 1] > here[j]:
                    here[j], moves[j] = here[j + 1], "hold"
            elif j < n and coded[j] == token and below[j + 1] != IMPOSSIBLE:
                here[j], moves[j] = below[j + 1] + weights[j], "meet"
            elif j < n and coded[j] == ELIDED:  # the elision leaves the token out, or ends
                here[j], moves[j] = below[j], "elide"
                if here[j + 1] > here[j]:
                    here[j], moves[j] = here[j + 1], "skip"
    if best[0][0] == IMPOSSIBLE:
        return None
    return best[0][0] // PER_WORD, _holes(step, m)


STEPS = {"end": (1, 0), "meet": (1, 1), "elide": (1, 0), "skip": (0, 1), "hold": (0, 1)}


def _holes(step: list[list[str]], m: int) -> list[tuple[int, int]]:
    """The (start, end) of each placeholder's run along the steps of the best alignment."""
    spans, i, j, start = [], 0, 0, 0
    while i < m:
        how = step[i][j]
        if how == "end":
            spans.append((start, j))
        i, j = i + STEPS[how][0], j + STEPS[how][1]
        start = start if how == "hold" else j
    return spans


@cache
def _met(coded: str, templates: tuple[str, ...]) -> tuple[int, str | None]:
    """How many words of the CODED quote the best template meets, with the messages nested
    in its placeholders, and that template; the first that meets enough will do."""
    needed = MIN_WORD_SHARE * _word_count(coded)
    whole = len(coded.strip(ELIDED))
    best: tuple[int, str | None] = (0, None)
    for template in _candidates(coded, templates):
        aligned = _align(template, coded)
        if aligned is None:
            continue
        met, spans = aligned
        for start, end in spans:
            held = coded[start:end].strip(ELIDED)
            if _word_count(held) > 1 and len(held) < whole:
                met += _met(f"{ELIDED}{held}{ELIDED}", templates)[0]
        if met > best[0]:
            best = (met, template)
        if met >= needed:
            break
    return best


def matching_template(quote: str, templates: Iterable[str]) -> str | None:
    """The template QUOTE is (a fragment of) an output of, or None."""
    coded = _elided(quote)
    met, template = _met(coded, tuple(templates))
    return template if template and met >= MIN_WORD_SHARE * _word_count(coded) else None
