"""Reports where a job runner keeps them (AWX and ansible-navigator throw the checkout away
after each job): PROSAAS_REPORTS_DIR points the reports outside the checkout, the release
history on the state host keeps each release's report, and status.yml shows the last one from
there. A folder that cannot be written is refused before anything is touched.

Real engine, real Postgres, the shared v1 stack: one v2 deploy.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import ansible_runner

from tests.conftest import ROOT, playbook_args
from tests.e2e.conftest import APP_SERVICES, DeployRun, Stack, status_table


def run_as_job(stack: Stack, playbook: str, version: str, reports_dir: Path) -> DeployRun:
    """Run PLAYBOOK as a job runner would: the inventory's own prosaas_reports_dir (no -e),
    PROSAAS_REPORTS_DIR in the environment."""
    extravars = stack.vars_for(version)
    del extravars["prosaas_reports_dir"]
    args = playbook_args(playbook, stack.tmp_path, extravars, stack.inventory)
    args["envvars"] = {**args["envvars"], "PROSAAS_REPORTS_DIR": str(reports_dir)}
    return DeployRun.of(ansible_runner.run(**args))


def test_reports_go_outside_the_checkout_and_status_shows_the_last_from_the_history(
    v1_stack: Stack, tmp_path_factory
) -> None:
    stack = v1_stack
    outside = tmp_path_factory.mktemp("job-runner") / "kept" / "reports"  # not there yet
    assert not outside.is_relative_to(ROOT)

    deployed = run_as_job(stack, "deploy.yml", "v2", outside)

    assert deployed.rc == 0, deployed.describe()
    v2 = stack.release("v2")
    assert [path.name for path in outside.iterdir()] == [f"{v2['id']}.json"]
    assert stat.S_IMODE(outside.stat().st_mode) == 0o700
    assert not (ROOT / "reports" / f"{v2['id']}.json").exists()
    written = json.loads((outside / f"{v2['id']}.json").read_text())
    kept = v2["report"]
    assert kept["outcome"] == written["outcome"] == "succeeded", kept
    assert kept["downtime_s"] == written["downtime_s"], (kept, written)
    phases = {name: took for name, took in written["phases"].items() if name != "record"}
    assert kept["hosts"]["localhost"]["phases"] == phases, (kept, written)
    assert kept["migrate"]["summary"]["applied"] == [109], kept

    shutil.rmtree(outside.parent)  # the job runner throws its folder away
    status = stack.play("playbooks/status.yml", "v2")

    assert status.rc == 0, status.describe()
    table = status_table(status)
    block = table[table.index(next(line for line in table if line.startswith("last deploy:"))) :]
    assert block[0] == (
        f"last deploy: {v2['id']} (v2) succeeded at {v2['finished_at']}, strategy stop, "
        f"downtime {kept['downtime_s']:.1f} s"
    ), table
    assert block[1].startswith("  phases on localhost: validate "), table
    for name in ("preflight", "stop", "migrate", "verify", "start"):
        assert f" {name} {phases[name]:.1f} s" in block[1], table
    assert block[2].startswith("  migrate on localhost: exit 0, "), table
    assert block[2].endswith(", applied 0109"), table
    assert not outside.parent.exists()


def test_a_reports_dir_that_cannot_be_written_is_refused_before_anything_is_touched(
    v1_stack: Stack, tmp_path: Path
) -> None:
    stack = v1_stack
    (tmp_path / "a-file").write_text("")
    blocked = tmp_path / "a-file" / "reports"  # under a regular file: nobody can make it
    containers = {service: stack.container(service).id for service in APP_SERVICES}
    history = stack.history()

    run = run_as_job(stack, "deploy.yml", "v2", blocked)

    assert run.rc != 0, run.describe()
    line = run.failure.strip()
    assert line == (
        f"prosaas_reports_dir {blocked} cannot be written (Not a directory: {blocked}): point "
        "prosaas_reports_dir (or the PROSAAS_REPORTS_DIR environment variable) at a folder this "
        "control node's user can write, and run again"
    ), run.describe()
    assert "Traceback" not in run.output
    assert {service: stack.container(service).id for service in APP_SERVICES} == containers
    stack.assert_app_healthy_on("v1")
    assert stack.history() == history  # no release recorded, not even as failed
    assert not stack.lock_path.exists(), stack.lock()
    assert stack.v2_columns() == set()
