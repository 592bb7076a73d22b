"""The README's "Deploy to your own servers" as a script: its fenced commands, in order.

`section_commands` reads the commands of one README section (every ```bash block in it, a
command continued with a trailing backslash joined, comments and blank lines dropped);
`walk_script` makes them one bash script that stops at the first failure and marks when each
command starts and ends, so a run says how long each took (`command_timings`).

The walkthrough runs them as written but for substitutions of host names, ports and file
paths (`substitute`). Where the README asks the operator to type something into a file
(`"$EDITOR" FILE`), the walkthrough's editor (`EDITOR_SCRIPT`, run with the answers of a JSON
file) writes what the operator would: the test's hosts in hosts.yml, its addresses and paths
in main.yml, its secrets in the vault, its passwords in the password files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^```(\w*)\s*$")
MARK = "@@walk"
MARK_PATTERN = re.compile(rf"{MARK} (start|end) (\d+) ([0-9.]+)")


def section(text: str, title: str) -> str:
    """The body of the `## TITLE` section of a Markdown TEXT, up to the next `## ` heading."""
    lines = text.splitlines()
    try:
        start = lines.index(f"## {title}") + 1
    except ValueError as exc:
        raise ValueError(f"no section '## {title}'") from exc
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end])


def fenced_bash(body: str) -> list[str]:
    """The lines of every ```bash block of BODY, in order (other blocks are skipped)."""
    lines: list[str] = []
    language: str | None = None  # of the block we are in; None: outside any
    for line in body.splitlines():
        fence = FENCE.match(line.strip())
        if fence:
            language = fence.group(1) if language is None else None
            continue
        if language in {"bash", "sh", "shell"}:
            lines.append(line)
    return lines


def commands(lines: list[str]) -> list[str]:
    """LINES as commands: continuations joined, comments and blank lines dropped."""
    found: list[str] = []
    pending = ""
    for line in lines:
        text = line.strip()
        if not pending and (not text or text.startswith("#")):
            continue
        if text.endswith("\\"):
            pending += text[:-1].rstrip() + " "
            continue
        found.append((pending + text).strip())
        pending = ""
    if pending:
        found.append(pending.strip())
    return found


def section_commands(text: str, title: str) -> list[str]:
    """The commands of README TEXT's section TITLE, in order."""
    return commands(fenced_bash(section(text, title)))


def substitute(command: str, substitutions: dict[str, str]) -> str:
    """COMMAND with each key of SUBSTITUTIONS replaced by its value, longest keys first."""
    for old in sorted(substitutions, key=len, reverse=True):
        command = command.replace(old, substitutions[old])
    return command


def walk_script(steps: list[str], workdir: str) -> str:
    """One bash script running STEPS in WORKDIR, marking each step's start and end."""
    body = ["set -euo pipefail", f"cd {workdir}"]
    for index, step in enumerate(steps):
        body += [
            f"printf '{MARK} start {index} %s\\n' \"$EPOCHREALTIME\"",
            step,
            f"printf '{MARK} end {index} %s\\n' \"$EPOCHREALTIME\"",
        ]
    return "\n".join(body) + "\n"


@dataclass
class Timing:
    index: int
    seconds: float | None  # None: started, never ended (the step that failed)


def command_timings(output: str) -> list[Timing]:
    """How long each step of a walk_script run took, from the marks in its OUTPUT (a mark may
    follow a step's output on the same line: curl prints no newline after a JSON body)."""
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    for kind, index, at in MARK_PATTERN.findall(output):
        (starts if kind == "start" else ends)[int(index)] = float(at)
    return [
        Timing(index, ends[index] - start if index in ends else None)
        for index, start in sorted(starts.items())
    ]


# The walkthrough's editor: `EDITOR FILE...` writes into each FILE what the operator would,
# from the answers in the JSON file $WALK_ANSWERS:
#   files:     {path: text}                    a file written whole (a password file)
#   hosts:     text                            every hosts.yml
#   main:      {"replace": {old: new}, "set": {key: value}}   every group_vars main.yml
#   vault:     {key: value}                    a file holding vault_* keys (ansible-vault edit's)
# A file it has no answer for fails the walk: the README asked for something unforeseen.
EDITOR_SCRIPT = r"""
import json, os, pathlib, sys
import yaml

answers = json.loads(pathlib.Path(os.environ["WALK_ANSWERS"]).read_text())
for name in sys.argv[1:]:
    path = pathlib.Path(name)
    text = path.read_text() if path.exists() else ""
    if str(path.resolve()) in answers["files"]:
        path.write_text(answers["files"][str(path.resolve())])
    elif path.name == "hosts.yml":
        path.write_text(answers["hosts"])
    elif path.name == "main.yml":
        for old, new in answers["main"]["replace"].items():
            text = text.replace(old, new)
        settings = yaml.safe_load(text) or {}
        settings.update(answers["main"]["set"])
        path.write_text("---\n" + yaml.safe_dump(settings, sort_keys=False))
    elif "vault_" in text:
        keys = yaml.safe_load(text) or {}
        unknown = sorted(set(keys) - set(answers["vault"]))
        if unknown:
            sys.exit(f"walkthrough editor: no answer for vault keys {unknown}")
        path.write_text(yaml.safe_dump({key: answers["vault"][key] for key in keys}))
    else:
        sys.exit(f"walkthrough editor: no answer for {path}")
"""
