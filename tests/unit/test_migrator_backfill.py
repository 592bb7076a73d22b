"""Backfill logic without a database: definitions, batch sizing, progress lines."""

import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "migrations"))

from migrator.backfill import (
    BackfillError,
    BatchSizer,
    Progress,
    Reporter,
    format_seconds,
    load_definition,
)
from migrator.exitcodes import ExitCode
from migrator.output import Output

BACKFILLS = Path(__file__).resolve().parents[2] / "migrations" / "backfills"
VALID = """
description = "d"
table = "call_log"
key = "id"
pending = "started_at IS NULL"
set = "started_at = created_at"
"""


def write(tmp_path: Path, text: str, name: str = "job") -> Path:
    (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path


def test_the_109_definition_loads() -> None:
    job = load_definition(BACKFILLS, "call_log_timing")
    assert (job.table, job.key, job.requires_migration) == ("call_log", "id", 109)
    assert job.pending == "started_at IS NULL"
    assert "duration_sec = duration" in job.set


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID + "speed = 3\n", "unknown key(s) speed"),
        (VALID.replace('key = "id"\n', ""), "key is missing"),
        (VALID.replace('table = "call_log"', 'table = "call_log; DROP"'), "not a plain lower-case"),
        (VALID + "requires_migration = 'x'\n", "requires_migration must be an integer"),
        (VALID + "requires_migration = true\n", "requires_migration must be an integer"),
        ("table = [", "job.toml:"),
    ],
)
def test_a_bad_definition_is_one_line_naming_the_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(BackfillError) as caught:
        load_definition(write(tmp_path, text), "job")
    assert caught.value.code == ExitCode.BAD_MIGRATION_FILE
    assert expected in caught.value.message
    assert "\n" not in caught.value.message


def test_an_unknown_job_names_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path, VALID, "alpha")
    with pytest.raises(BackfillError, match=r"no backfill 'beta' in .* \(known: alpha\)"):
        load_definition(tmp_path, "beta")
    with pytest.raises(BackfillError, match="use a-z"):
        load_definition(tmp_path, "../etc/passwd")


def test_batch_size_moves_toward_the_target_at_most_two_fold() -> None:
    sizer = BatchSizer(size=1000, target_ms=50)
    assert sizer.next_size(elapsed_ms=10, rows=1000) == 2000  # 5x too fast: doubled only
    assert sizer.next_size(elapsed_ms=100, rows=2000) == 1000  # 2x too slow: halved
    assert sizer.next_size(elapsed_ms=40, rows=1000) == 1250
    assert sizer.next_size(elapsed_ms=5000, rows=1250) == 625  # one slow batch: halved only


def test_batch_size_stays_within_bounds_and_ignores_a_short_last_batch() -> None:
    sizer = BatchSizer(size=15, target_ms=50, smallest=10, largest=20)
    assert sizer.next_size(elapsed_ms=1000, rows=15) == 10
    assert sizer.next_size(elapsed_ms=1, rows=10) == 20
    assert sizer.next_size(elapsed_ms=1, rows=20) == 20
    assert sizer.next_size(elapsed_ms=1, rows=3) == 20  # fewer rows than asked: the table's end
    assert BatchSizer(size=500, target_ms=0).next_size(elapsed_ms=1, rows=500) == 500


def test_progress_line_has_rows_percent_rate_and_eta() -> None:
    progress = Progress(total=10_000, started=100.0)
    progress.add(2_500, elapsed_ms=40)
    progress.add(2_500, elapsed_ms=60)
    assert progress.line(now=110.0) == "5,000/10,000 rows (50.0%), 500 rows/s, ETA 0m10s"
    assert progress.longest_batch_ms == 60
    assert progress.bar(now=110.0, width=10).startswith("[#####.....] 5,000/10,000")
    assert Progress(total=0, started=1.0).line(now=1.0).endswith("ETA unknown")


def test_seconds_are_formatted_for_people() -> None:
    assert format_seconds(None) == "unknown"
    assert format_seconds(59.6) == "1m00s"
    assert format_seconds(3725) == "1h02m05s"


def test_reporter_draws_a_bar_on_a_tty_and_spaced_lines_otherwise() -> None:
    progress = Progress(total=4, done=2)

    tty = io.StringIO()
    Reporter(Output(stderr=tty), every_s=60, tty=True).update(progress)
    assert tty.getvalue().startswith("\r[") and "\n" not in tty.getvalue()

    plain = io.StringIO()
    clock = iter([0.0, 1.0, 2.0, 3.0, 5.5, 6.0, 7.9])
    reporter = Reporter(Output(stderr=plain), every_s=2.5, tty=False, clock=lambda: next(clock))
    for _ in range(7):  # batches every second or so: a line at 0, 3.0 and 5.5 only
        reporter.update(progress)
    lines = plain.getvalue().splitlines()
    assert len(lines) == 3
    assert all("migrator: progress: 2/4 rows (50.0%)" in line for line in lines)
