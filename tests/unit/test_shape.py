"""scripts/shape.py: the deploy flow's measures, on small inline playbooks, tasks and templates."""

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("shape", ROOT / "scripts" / "shape.py")
assert spec is not None and spec.loader is not None
shape = importlib.util.module_from_spec(spec)
sys.modules["shape"] = shape  # dataclasses look their module up by name
spec.loader.exec_module(shape)

PLAYBOOK = """\
---
- name: Check the core
  ansible.builtin.import_playbook: check-ansible.yml

- name: Deploy
  hosts: prosaas
  pre_tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: hello
  tasks:
    - name: Deploy, rolling back on failure
      block:
        - name: Migrate
          docker_oneshot:
            name: migrate
        - name: Start in batches
          block:
            - name: Start a batch
              prosaas.deploy.docker_services:
                services: []
      rescue:
        - name: Roll back
          block:
            - name: Note the failure
              ansible.builtin.set_fact:
                failed_here: true
          rescue:
            - name: Note the failed rollback
              set_fact:
                rollback_failed: true
      always:
        - name: Release the lock
          deploy_state:
            action: unlock
"""

TASKS = """\
---
- name: Note a fact
  ansible.builtin.set_fact:
    one: 1
- name: Do two things
  block:
    - name: Note another
      set_fact:
        two: 2
    - name: Check
      pg_schema_verify:
        columns: {}
"""


def test_every_task_of_a_playbook_counts_at_any_depth_with_blocks_and_imports() -> None:
    tasks = shape.file_tasks(PLAYBOOK)
    names = [shape.mapping_value(task, "name").value for task in tasks]
    assert names == [
        "Check the core",
        "Say hello",
        "Deploy, rolling back on failure",
        "Migrate",
        "Start in batches",
        "Start a batch",
        "Roll back",
        "Note the failure",
        "Note the failed rollback",
        "Release the lock",
    ]


def test_a_task_file_is_a_list_of_tasks_blocks_opened() -> None:
    assert len(shape.file_tasks(TASKS)) == 4
    assert shape.file_tasks("---\n") == []


def test_set_fact_tasks_are_found_by_short_name_and_fqcn_with_their_lines() -> None:
    assert shape.set_fact_lines(PLAYBOOK) == [25, 29]
    assert shape.set_fact_lines(TASKS) == [2, 7]


def test_a_module_is_called_by_short_name_or_fqcn_and_only_from_a_task() -> None:
    modules = {"docker_oneshot", "docker_services", "deploy_state", "proxy_backend", "one"}
    assert shape.called_modules(PLAYBOOK, modules) == {
        "docker_oneshot",
        "docker_services",
        "deploy_state",
    }
    # "one" is a key of set_fact's arguments, not of a task: no call
    assert shape.called_modules(TASKS, {"pg_schema_verify", "one"}) == {"pg_schema_verify"}


def test_a_folded_expression_spans_its_source_lines_from_open_to_close() -> None:
    text = """\
- name: Say it
  vars:
    short: "{{ a | default(b) }}"
    long: >-
      {{ [1, 2]
         + [3]
         + [4]
         | list }}
    three: >-
      {{ a
         + b
         + c }}
"""
    assert shape.expression_spans(text, is_yaml=True) == [(3, 1), (5, 4), (10, 3)]


def test_a_closing_brace_of_a_dict_or_in_a_string_does_not_end_the_expression() -> None:
    text = "x: \"{{ {'a': {'b': '}}'}}\n  | dict2items\n  | list\n  | first }}\"\n"
    assert shape.expression_spans(text, is_yaml=True) == [(1, 4)]


def test_statements_of_a_template_are_measured_and_comments_are_not() -> None:
    text = """\
{#- a comment with {{ braces }}
    over several lines
    and more
    and more -#}
{%- set summary = run.summary
      | default({})
      | combine(extra)
      | dict2items -%}
{{ summary }}
"""
    assert shape.expression_spans(text, is_yaml=False) == [(5, 4), (9, 1)]


def test_a_yaml_comment_line_holds_no_expression() -> None:
    text = "# {{ an example\n# over\n# four\n# lines }}\nx: '{{ y }}'\n"
    assert shape.expression_spans(text, is_yaml=True) == [(5, 1)]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_small_checkout_holds_its_shape(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write(tmp_path, {
        "playbooks/deploy.yml": PLAYBOOK,
        "roles/r/tasks/main.yml": TASKS,
        "library/docker_oneshot.py": "",
        "library/pg_schema_verify.py": "",
    })  # fmt: skip
    assert shape.main(["--check", "--root", str(tmp_path)]) == 0
    output = capsys.readouterr()
    rows = [row.split() for row in output.out.splitlines()]
    assert ["depth)", "10", "30", "ok"] in [row[-4:] for row in rows if "tasks" in row]
    assert output.err == ""


def test_each_broken_rule_is_one_line_saying_where(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    long_play = PLAYBOOK + "".join(
        f"    - name: Note {index}\n      ansible.builtin.set_fact:\n        n{index}: {index}\n"
        for index in range(25)
    )
    write(tmp_path, {
        "playbooks/deploy.yml": long_play,
        "roles/r/templates/t.j2": "ok\n{{ a\n + b\n + c\n + d }}\n",
        "library/docker_oneshot.py": "",
        "library/proxy_backend.py": "",
    })  # fmt: skip
    assert shape.main(["--check", "--root", str(tmp_path)]) == 1
    complaints = capsys.readouterr().err.splitlines()
    assert complaints == [
        "playbooks/deploy.yml tasks (any depth): 35, over the limit of 30 at"
        " playbooks/deploy.yml:96",  # the 31st task, the 21st of those added
        "longest Jinja expression (lines): 4, over the limit of 3 at"
        " roles/r/templates/t.j2:2 (4 lines)",
        "set_fact tasks: 27, over the limit of 15 at "
        + ", ".join(
            ["playbooks/deploy.yml:25", "playbooks/deploy.yml:29"]
            + [f"playbooks/deploy.yml:{36 + 3 * index}" for index in range(25)]
        ),
        "modules in library/ no task calls: 1, over the limit of 0 at library/proxy_backend.py:1",
    ]


def test_a_long_deploy_playbook_is_named_at_its_last_line(tmp_path: Path) -> None:
    write(tmp_path, {"playbooks/deploy.yml": PLAYBOOK + "# filler\n" * 250})
    lines = shape.measure_deploy(tmp_path)[0]
    assert (lines.value, lines.broken, lines.where) == (285, True, ("playbooks/deploy.yml:285",))
