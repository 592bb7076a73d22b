"""README.md, RUNBOOK.md and inventories/README.md run as written (tests/docs_check.py).

Every ansible-playbook command names its inventory and an existing playbook, every -e sets
a setting the playbooks read, every container a docker command names is one the code
makes, and every line the RUNBOOK quotes as output is a message of the code (or of a tool
listed in EXTERNAL_OUTPUT). Each check also has a doc line that must fail it.
"""

from __future__ import annotations

import pytest

from tests import docs_check
from tests.docs_check import Snippet

SNIPPETS = docs_check.doc_snippets()
RUNBOOK = [snippet for snippet in SNIPPETS if snippet.doc == "RUNBOOK.md"]


def command_problems_in(snippets: list[Snippet]) -> list[str]:
    problems = [
        f"{command.snippet.where()}: {problem}: {command.snippet.text}"
        for command in docs_check.playbook_commands(snippets)
        for problem in docs_check.command_problems(command)
    ]
    return problems + [
        f"{snippet.where()}: a command without ansible-playbook: {snippet.text}"
        for snippet in snippets
        if docs_check.abbreviated_command(snippet)
    ]


def variable_problems_in(snippets: list[Snippet]) -> list[str]:
    known = docs_check.settings()
    return [
        f"{snippet.where()}: {problem}"
        for snippet, value in docs_check.extra_vars_of(snippets)
        for name in docs_check.extra_var_names(value)
        if (problem := docs_check.variable_problem(name, known))
    ]


def container_problems_in(snippets: list[Snippet]) -> list[str]:
    names = docs_check.container_names()
    return [
        f"{snippet.where()}: no container is named {name}: {snippet.text}"
        for snippet in snippets
        for name in docs_check.docker_containers(snippet.text)
        if name not in names
    ]


def quote_problems_in(snippets: list[Snippet]) -> list[str]:
    templates = docs_check.output_templates()
    return [
        f"{quote.where()}: the code never prints: {quote.text}"
        for quote in docs_check.quoted_output(snippets)
        if docs_check.matching_template(quote.text, templates) is None
    ]


def doc(text: str) -> list[Snippet]:
    """The snippets of a RUNBOOK-like Markdown TEXT."""
    return docs_check.snippets("RUNBOOK.md", text)


# --- The docs as they are --------------------------------------------------------------


def test_every_playbook_command_names_its_inventory_and_an_existing_playbook() -> None:
    assert len(docs_check.playbook_commands(SNIPPETS)) > 40
    assert command_problems_in(SNIPPETS) == []


def test_every_extra_var_is_a_setting_the_playbooks_read() -> None:
    assert len(docs_check.extra_vars_of(SNIPPETS)) > 20
    assert variable_problems_in(SNIPPETS) == []


def test_every_container_a_docker_command_names_is_one_the_code_makes() -> None:
    named = [name for snippet in SNIPPETS for name in docs_check.docker_containers(snippet.text)]
    assert {"migrate", "backfill", "proxy", "prosaas-api"} <= set(named)
    assert container_problems_in(SNIPPETS) == []


def test_every_output_line_the_runbook_quotes_is_printed_by_the_code() -> None:
    assert len(docs_check.quoted_output(RUNBOOK)) > 100
    assert quote_problems_in(RUNBOOK) == []


# --- Lines that must fail --------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("```bash\nansible-playbook playbooks/start.yml\n```", "names no inventory"),
        ("Then `ansible-playbook deploy.yml -e prosaas_app_version=v2`.", "names no inventory"),
        ("Run `ansible-playbook -i inventories/staging playbooks/nope.yml`.", "does not exist"),
        ("Run `ansible-playbook -i inventories/stagin deploy.yml`.", "does not exist"),
        ("Mode B: `playbooks/migrate.yml -e prosaas_app_version=v2`.", "without ansible-playbook"),
    ],
)
def test_a_command_that_does_not_run_as_written_fails(line: str, problem: str) -> None:
    problems = command_problems_in(doc(line))
    assert len(problems) == 1 and problem in problems[0], problems


@pytest.mark.parametrize(
    "line",
    [
        "Longer: `-e migrate_timeout=3600`.",
        "Longer: `ansible-playbook -i inventories/staging deploy.yml -e migrate_timeout=3600`.",
        "Longer: `ansible-playbook -i inventories/staging deploy.yml"
        """ -e '{"migrate_timeout": 3600}'`.""",
        "Bound: `-e migrate_exclusive_statement_timeout_ms=5000`.",
        "Typo: `-e prosaas_migrate_timout=3600`.",
    ],
)
def test_an_extra_var_nothing_reads_as_a_setting_fails(line: str) -> None:
    assert len(variable_problems_in(doc(line))) == 1


@pytest.mark.parametrize(
    "line",
    [
        "`-e prosaas_migrate_timeout=3600`",
        """`-e '{"prosaas_backfill_args": ["--dry-run"]}'`""",
        "`-e prosaas_rollback_to=previous`",  # read with a default by rollback.yml
        "`-e schedule_checkout=/opt/prosaas-deploy`",  # roles/schedule's own option
        """`-e '{"migrate_command": ["up", "--lock-budget-s", "600"]}'`""",  # set by no playbook
    ],
)
def test_a_setting_or_a_role_option_no_playbook_sets_passes(line: str) -> None:
    assert variable_problems_in(doc(line)) == []


@pytest.mark.parametrize(
    "line",
    [
        "Stop it: `docker rm -f prosaas-backfill`.",
        "- **Command**: `docker inspect -f '{{.State.Status}}' prosaas-migrate`",
        "```bash\ndocker logs --tail 20 prosaas-migrate\n```",
        "`docker exec prosaas-proxy proxy-api help`",
    ],
)
def test_a_container_the_code_never_names_fails(line: str) -> None:
    assert len(container_problems_in(doc(line))) == 1


def test_the_containers_of_the_default_prefix_pass() -> None:
    text = "`docker rm -f backfill`, `docker wait migrate`, `docker logs --tail 5 proxy`"
    assert container_problems_in(doc(text)) == []


@pytest.mark.parametrize(
    "line",
    [
        "- **What you should see**: the preflight prints `lock holders: none`.",
        "- **What you should see**: `broke stale deploy lock ...`, then a normal deploy.",
        "- **What you should see**: `Put the services the proxy routes to in its rotation`.",
        "- **Symptom**: `deploy lock taken by ops@bastion1 pid 4242: try again later`.",
        "The rollback then prints `rolled forward to release <id>`.",
        "`status.yml` ends with `status: OK` or `status: all good, nothing to see`.",
    ],
)
def test_a_quoted_line_the_code_never_prints_fails(line: str) -> None:
    assert len(quote_problems_in(doc(line))) == 1


@pytest.mark.parametrize(
    "line",
    [
        "- **What you should see**: `lock holders: no other session holds or waits for a lock"
        " on these tables`.",
        "- **Symptom**: `deploy lock held by ops@bastion1 pid 4242 since ... (release ...,"
        " lease until ...): another deploy is running; wait for it to finish`.",
        "- **Symptom**: `deploy of release R failed in phase start: service worker: not healthy"
        " after 120 s ...; rolled back to release P (healthy)`.",
        "- **Symptom**: `UNREACHABLE! ... Permission denied (publickey)`.",
    ],
)
def test_a_line_the_code_prints_passes_elided_and_nested(line: str) -> None:
    assert docs_check.quoted_output(doc(line))
    assert quote_problems_in(doc(line)) == []


def test_commands_values_and_spans_outside_the_output_fields_are_no_quotes() -> None:
    text = (
        "- **Command**: `some words here` and `docker logs proxy`.\n"
        "- **What you should see**: `ansible-playbook -i inventories/staging playbooks/status.yml`"
        " shows `succeeded`; `SELECT * FROM call_log`.\n"
    )
    assert docs_check.quoted_output(doc(text)) == []
