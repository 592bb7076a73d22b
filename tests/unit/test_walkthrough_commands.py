"""How the README walkthrough reads its commands (tests/walkthrough.py)."""

from __future__ import annotations

import pytest

from tests.walkthrough import command_timings, section_commands, substitute, walk_script

README = """# Title

## Deploy to your own servers

Some text.

```bash
# a comment
python3 -m venv ~/venv
ansible-playbook -i inventories/acme deploy.yml \\
    -e prosaas_app_version=v1
```

```yaml
prosaas_registry: {host: registry.example.internal}
```

```bash
curl https://app.example.internal/health
```

## Next section

```bash
echo not this one
```
"""


def test_the_commands_of_one_section_come_in_order_with_continuations_joined() -> None:
    assert section_commands(README, "Deploy to your own servers") == [
        "python3 -m venv ~/venv",
        "ansible-playbook -i inventories/acme deploy.yml -e prosaas_app_version=v1",
        "curl https://app.example.internal/health",
    ]


def test_a_missing_section_is_an_error() -> None:
    with pytest.raises(ValueError, match="no section '## Elsewhere'"):
        section_commands(README, "Elsewhere")


def test_substitutions_replace_the_longest_names_first() -> None:
    substitutions = {"example.internal": "wrong", "app.example.internal": "10.0.0.5"}
    assert substitute("curl https://app.example.internal/", substitutions) == (
        "curl https://10.0.0.5/"
    )


def test_each_step_is_timed_and_the_failed_one_has_no_end() -> None:
    script = walk_script(["true", "false"], "/srv/checkout")
    output = 'a\n@@walk start 0 10.0\n{"status": "ok"}@@walk end 0 12.5\n@@walk start 1 12.5\n'
    timings = command_timings(output)
    assert "set -euo pipefail" in script and script.count("@@walk") == 4
    assert [(t.index, t.seconds) for t in timings] == [(0, 2.5), (1, None)]
