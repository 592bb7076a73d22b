"""playbooks/backfill.yml end to end: the 109 backfill runs while v2 serves, followed, noted."""

from __future__ import annotations

import re

from tests.e2e.conftest import Stack

ROWS = 20_000


def insert_v1_rows(stack: Stack, count: int) -> None:
    """Rows as v1 wrote them: no timing columns, legacy duration (some NULL)."""
    with stack.connect(autocommit=True) as conn:
        conn.execute(
            "INSERT INTO call_log (call_sid, duration, status)"
            " SELECT 'legacy-' || g, CASE WHEN g %% 5 = 0 THEN NULL ELSE g %% 300 END, 'completed'"
            " FROM generate_series(1, %s) AS g",
            (count,),
        )


def unfilled(stack: Stack) -> int:
    with stack.connect(autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM call_log WHERE started_at IS NULL").fetchone()
    return row[0] if row else -1


def test_backfill_runs_while_v2_serves_shows_progress_and_is_noted_on_the_release(
    v1_stack: Stack,
) -> None:
    stack = v1_stack
    insert_v1_rows(stack, ROWS)
    stack.deploy_ok("v2")
    v2 = stack.release("v2")
    assert unfilled(stack) >= ROWS

    run = stack.play(
        "playbooks/backfill.yml",
        "v2",
        prosaas_backfill_poll_seconds=1,
        prosaas_backfill_args=["--batch-size", "500", "--target-batch-ms", "0", "--sleep-ms", "25"],
    )

    assert run.rc == 0, run.describe()
    assert "backfill call_log_timing: " in run.output
    # Followed while it ran: a progress line with some rows done, before the end.
    assert re.search(r"progress: [1-9][\d,]*/[\d,]+ rows \(\d", run.output), run.describe()
    assert "✅ backfill call_log_timing complete" in run.output
    assert unfilled(stack) == 0
    stack.assert_app_healthy_on("v2")
    jobs = stack.release("v2")["jobs"]
    assert len(jobs) == 1, jobs
    assert (jobs[0]["kind"], jobs[0]["name"], jobs[0]["outcome"]) == (
        "backfill", "call_log_timing", "succeeded",
    )  # fmt: skip
    assert jobs[0]["rows"] >= ROWS
    assert stack.release("v2")["id"] == v2["id"]
    assert not stack.lock_path.exists(), stack.lock()

    again = stack.play("playbooks/backfill.yml", "v2", prosaas_backfill_poll_seconds=1)
    assert again.rc == 0, again.describe()
    assert "already finished, nothing to do" in again.output
