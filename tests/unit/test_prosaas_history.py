"""The release history (module_utils/prosaas_history.py): current and previous, begin,
finish, rollbacks, jobs, trimming and reading releases.json."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.prosaas_history import (
    FAILED,
    IN_PROGRESS,
    ROLLBACK,
    SUCCEEDED,
    add_job,
    begin,
    current_and_previous,
    finish,
    load_history,
    roll_back,
    runs_the_same,
    trim,
)
from ansible.module_utils.prosaas_store import StateError

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def rec(release_id: str, status: str) -> dict[str, Any]:
    return {"id": release_id, "status": status, "images": {"api": f"app:{release_id}"}}


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [record["id"] for record in records]


# --- current and previous -------------------------------------------------------------


def test_current_and_previous_skip_failed_and_in_progress() -> None:
    releases = [
        rec("r1", SUCCEEDED),
        rec("r2", FAILED),
        rec("r3", SUCCEEDED),
        rec("r4", FAILED),
        rec("r5", IN_PROGRESS),
    ]
    current, previous = current_and_previous(releases)
    assert current is not None and current["id"] == "r3"
    assert previous is not None and previous["id"] == "r1"


def test_no_succeeded_release_means_no_current() -> None:
    assert current_and_previous([rec("r1", FAILED), rec("r2", IN_PROGRESS)]) == (None, None)
    assert current_and_previous([]) == (None, None)
    current, previous = current_and_previous([rec("r1", SUCCEEDED), rec("r2", FAILED)])
    assert current is not None and current["id"] == "r1"
    assert previous is None


def test_begin_appends_in_progress_and_defaults_previous_to_current() -> None:
    releases = [rec("r1", SUCCEEDED), rec("r2", FAILED)]
    updated, record = begin(releases, {"id": "r3", "version": "v3", "images": {}}, 50, NOW)
    assert ids(updated) == ["r1", "r2", "r3"]
    assert record["status"] == IN_PROGRESS
    assert record["previous"] == "r1"
    assert record["started_at"] == "2026-11-24T12:00:00Z"
    assert releases == [rec("r1", SUCCEEDED), rec("r2", FAILED)], "input left unchanged"


def test_begin_refuses_a_duplicate_id() -> None:
    with pytest.raises(StateError, match="release r1 is already in the release history"):
        begin([rec("r1", SUCCEEDED)], {"id": "r1"}, 50)


def test_finish_sets_outcome_and_merges_details_without_overriding_core_fields() -> None:
    releases = [rec("r1", SUCCEEDED), rec("r2", IN_PROGRESS)]
    updated, before, after = finish(
        releases,
        "r2",
        outcome=FAILED,
        reason="migrate: exit code 1",
        details={"rolled_back_to": "r1", "downtime_s": 12.5, "status": "succeeded", "id": "x"},
        now=NOW,
    )
    assert before["status"] == IN_PROGRESS
    assert after["status"] == FAILED
    assert after["id"] == "r2"
    assert after["reason"] == "migrate: exit code 1"
    assert after["rolled_back_to"] == "r1"
    assert after["downtime_s"] == 12.5
    assert after["finished_at"] == "2026-11-24T12:00:00Z"
    assert updated[1] is after and updated[0] is releases[0]
    current, _ = current_and_previous(updated)
    assert current is not None and current["id"] == "r1"


def test_finish_twice_with_the_same_outcome_changes_nothing() -> None:
    releases, _, _ = finish(
        [rec("r1", IN_PROGRESS)], "r1", outcome=SUCCEEDED, reason="", details={}, now=NOW
    )
    again, before, after_again = finish(
        releases, "r1", outcome=SUCCEEDED, reason="", details={}, now=NOW + timedelta(hours=1)
    )
    assert after_again is before
    assert again is releases


def test_finish_unknown_release_names_it() -> None:
    with pytest.raises(StateError, match="release nope is not in the release history"):
        finish([rec("r1", SUCCEEDED)], "nope", outcome=FAILED, reason="", details={})


# --- manual rollbacks ------------------------------------------------------------------


def deployed(release_id: str, version: str, status: str = SUCCEEDED) -> dict[str, Any]:
    return {
        "id": release_id,
        "version": version,
        "status": status,
        "images": {"api": f"app:{version}", "worker": f"app:{version}"},
        "migrate_image": f"migrate:{version}",
    }


def by(release_id: str) -> dict[str, Any]:
    return {"id": release_id, "user": "ops", "host": "bastion1"}


def test_roll_back_appends_a_succeeded_rollback_record_that_becomes_current() -> None:
    releases = [deployed("r1", "v1"), deployed("r2", "v2")]

    updated, record, appended = roll_back(releases, "r1", by("rb1"), 50, NOW)

    assert appended
    assert ids(updated) == ["r1", "r2", "rb1"]
    assert record == {
        "id": "rb1",
        "kind": ROLLBACK,
        "version": "v1",
        "images": {"api": "app:v1", "worker": "app:v1"},
        "migrate_image": "migrate:v1",
        "restores": "r1",
        "rolled_back_from": "r2",
        "user": "ops",
        "host": "bastion1",
        "status": SUCCEEDED,
        "reason": "",
        "started_at": "2026-11-24T12:00:00Z",
        "finished_at": "2026-11-24T12:00:00Z",
    }
    current, previous = current_and_previous(updated)
    assert current is record, "the history says what runs: v1"
    assert previous is not None and previous["id"] == "r2"
    assert ids(releases) == ["r1", "r2"], "input left unchanged"


def test_roll_back_to_what_already_runs_appends_nothing() -> None:
    releases = [deployed("r1", "v1"), deployed("r2", "v2")]
    same, record, appended = roll_back(releases, "r2", by("rb1"), 50, NOW)
    assert not appended
    assert same is releases
    assert record is releases[1]

    rolled, rollback, _ = roll_back(releases, "r1", by("rb1"), 50, NOW)
    again, record, appended = roll_back(rolled, "r1", by("rb2"), 50, NOW)
    assert not appended, "r1's images already run, recorded by rb1"
    assert again is rolled
    assert record is rollback


def test_roll_back_and_forth_moves_current_and_previous_with_what_runs() -> None:
    releases, _, _ = roll_back([deployed("r1", "v1"), deployed("r2", "v2")], "r1", by("rb1"), 50)
    _, previous = current_and_previous(releases)
    assert previous is not None

    forward, record, appended = roll_back(releases, previous["id"], by("rb2"), 50, NOW)

    assert appended
    assert (record["version"], record["restores"], record["rolled_back_from"]) == (
        "v2",
        "r2",
        "rb1",
    )
    current, previous = current_and_previous(forward)
    assert current is record
    assert previous is not None and previous["id"] == "rb1"
    _, begun = begin(forward, {"id": "r3", "version": "v3"}, 50, NOW)
    assert begun["previous"] == "rb2", "a later deploy's rollback target is what runs"


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("r2", "release r2 is failed: a failed or unfinished release is never a rollback target"),
        ("r3", "release r3 is in_progress: a failed or unfinished release is never"),
        ("r9", "release r9 is not in the release history (newest: r1, r2, r3): name a succeeded"),
    ],
)
def test_roll_back_refuses_a_failed_unfinished_or_unknown_target(target: str, problem: str) -> None:
    releases = [
        deployed("r1", "v1"),
        deployed("r2", "v2", FAILED),
        deployed("r3", "v3", IN_PROGRESS),
    ]
    with pytest.raises(StateError, match=re.escape(problem)):
        roll_back(releases, target, by("rb1"), 50)


def test_roll_back_refuses_an_id_already_in_the_history() -> None:
    releases = [deployed("r1", "v1"), deployed("r2", "v2")]
    with pytest.raises(StateError, match="release r2 is already in the release history"):
        roll_back(releases, "r1", by("r2"), 50)


def test_failures_after_a_rollback_never_push_it_or_what_it_replaced_out() -> None:
    releases, _, _ = roll_back([deployed("r1", "v1"), deployed("r2", "v2")], "r1", by("rb1"), 50)
    releases += [deployed(f"bad{n}", "v3", FAILED) for n in range(5)]
    updated, _ = begin(releases, {"id": "r3", "version": "v3"}, 3, NOW)
    assert ids(updated) == ["r2", "rb1", "bad3", "bad4", "r3"]
    current, previous = current_and_previous(updated)
    assert current is not None and current["id"] == "rb1"
    assert previous is not None and previous["id"] == "r2"


def test_runs_the_same_compares_version_images_and_migrate_image_only() -> None:
    assert runs_the_same(deployed("r1", "v1"), {**deployed("rb1", "v1"), "kind": ROLLBACK})
    assert not runs_the_same(deployed("r1", "v1"), deployed("r2", "v2"))
    other_image = {**deployed("r1", "v1"), "images": {"api": "app:v1", "worker": "app:v2"}}
    assert not runs_the_same(deployed("r1", "v1"), other_image)
    assert not runs_the_same(deployed("r1", "v1"), {**deployed("r1", "v1"), "migrate_image": "m"})


# --- trimming ----------------------------------------------------------------------------


def test_add_job_appends_to_the_release_and_leaves_the_others() -> None:
    releases = [rec("r1", SUCCEEDED), rec("r2", SUCCEEDED)]
    updated, record = add_job(releases, "r2", {"name": "b1"})
    updated, record = add_job(updated, "r2", {"name": "b2"})
    assert [job["name"] for job in record["jobs"]] == ["b1", "b2"]
    assert updated[0] == releases[0]
    assert updated[1] == {**releases[1], "jobs": [{"name": "b1"}, {"name": "b2"}]}
    assert "jobs" not in releases[1]  # the history given is not changed in place
    with pytest.raises(StateError, match="release r9 is not in the release history"):
        add_job(releases, "r9", {"name": "b"})


def test_trim_keeps_the_newest_two_succeeded_behind_many_failures() -> None:
    releases = [rec("good1", SUCCEEDED), rec("good2", SUCCEEDED), rec("good3", SUCCEEDED)]
    releases += [rec(f"bad{n}", FAILED) for n in range(10)]
    kept = trim(releases, 5)
    assert ids(kept) == ["good2", "good3", "bad5", "bad6", "bad7", "bad8", "bad9"]
    current, previous = current_and_previous(kept)
    assert current is not None and current["id"] == "good3"
    assert previous is not None and previous["id"] == "good2"


def test_trim_under_the_limit_keeps_everything() -> None:
    releases = [rec("r1", FAILED), rec("r2", SUCCEEDED)]
    assert trim(releases, 50) == releases


def test_begin_trims_but_keeps_rollback_targets() -> None:
    releases = [rec("good1", SUCCEEDED), rec("good2", SUCCEEDED)]
    releases += [rec(f"bad{n}", FAILED) for n in range(3)]
    updated, _ = begin(releases, {"id": "new"}, 2, NOW)
    assert ids(updated) == ["good1", "good2", "bad2", "new"]


def test_trim_rejects_keep_below_one() -> None:
    with pytest.raises(StateError, match="keep must be at least 1"):
        trim([], 0)


# --- reading releases.json -------------------------------------------------------------------


def corrupted_text(path: Path, problem: str) -> str:
    return (
        f"release history {path} is corrupted ({problem}): restore it from {path}.bak or "
        'move it aside (RUNBOOK.md: "Corrupted release history")'
    )


def test_corrupted_json_is_one_line_with_the_parser_error(tmp_path: Path) -> None:
    path = tmp_path / "releases.json"
    path.write_text('{"releases": [\n  {"id": "r1",\n')
    with pytest.raises(StateError) as raised:
        load_history(str(path))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"release history {path} is corrupted (Expecting")
    assert message.endswith(
        f': restore it from {path}.bak or move it aside (RUNBOOK.md: "Corrupted release history")'
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", 'expected an object with a "releases" list, found list'),
        ('{"other": 1}', 'expected an object with a "releases" list, found no releases list'),
        ('{"releases": [{"status": "succeeded"}]}', "record 0 has no string id"),
    ],
)
def test_wrong_shape_is_corrupted(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "releases.json"
    path.write_text(text)
    with pytest.raises(StateError) as raised:
        load_history(str(path))
    assert str(raised.value) == corrupted_text(path, problem)


def test_missing_history_is_empty(tmp_path: Path) -> None:
    assert load_history(str(tmp_path / "releases.json")) == []
