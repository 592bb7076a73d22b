"""The reliability record: saved only when complete, rendered from the saved run."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from tests.e2e import reliability
from tests.e2e.reliability import Observed, Record


@pytest.fixture
def record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Record:
    record = Record(fault_suites=SUITES, bad_input_cases=1, seed_rows=2_000)
    monkeypatch.setattr(reliability, "RECORD", record)
    monkeypatch.setattr(reliability, "LAST_RUN", tmp_path / "artifacts" / "reliability.json")
    monkeypatch.setattr(reliability, "RELIABILITY_DOC", tmp_path / "reliability.md")
    return record


# One row in each fault suite.
SUITES = {"test_faults": 1, "test_online": 1, "test_many_hosts": 1}


def complete(record: Record) -> None:
    record.faults["stop-killed"] = Observed(
        "killed", "stop", "deploy lock held | stale", "runbook: Deploy killed", "failed: x", 0
    )
    record.faults["start-online"] = Observed(
        "online: never healthy", "start", "not healthy", "flow", "failed: y", 0, 0
    )
    record.faults["stop-lost-host"] = Observed(
        "many hosts: a host stops answering", "stop", "host w1 (in phase stop) stopped answering",
        "runbook: A host stopped answering mid-deploy", "failed: z", 0,
    )  # fmt: skip
    record.bad_inputs["unknown key"] = "prosaas_app_services[0]: unknown key 'imag'"
    record.secrets.update(searched=12, found=0)


def test_an_incomplete_run_is_not_saved(record: Record) -> None:
    record.bad_inputs["unknown key"] = "a line"
    assert reliability.save_if_complete() is False
    assert not reliability.LAST_RUN.exists()


def test_a_saved_run_renders_the_document_without_touching_it_before(record: Record) -> None:
    complete(record)
    assert reliability.save_if_complete() is True
    assert not reliability.RELIABILITY_DOC.exists()

    assert reliability.main() == 0
    text = reliability.RELIABILITY_DOC.read_text()
    assert f"that ended {record.finished}," in text
    assert "| stop | killed | deploy lock held \\| stale | runbook: Deploy killed |" in text
    assert text.count(" | 0 | - |") == 2  # rows lost, and no client on the stop rows
    assert "| failed: y | 0 | 0 |" in text  # the online row's client: no failed request
    assert "- faults tried: 3" in text
    assert "- secrets found: 0" in text


def test_rendering_with_no_saved_run_says_what_to_do(
    record: Record, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reliability.main() == 1
    assert "run scripts/test.sh first" in capsys.readouterr().err


def test_records_of_two_workers_merge_into_one_complete_record(record: Record) -> None:
    faults_worker = Record(fault_suites={"test_faults": 1}, bad_input_cases=1, seed_rows=2_000)
    complete(faults_worker)
    faults_worker.bad_inputs.clear()
    faults_worker.secrets.clear()
    inputs_worker = Record(fault_suites={"test_online": 1, "test_many_hosts": 1}, bad_input_cases=1)
    inputs_worker.bad_inputs["unknown key"] = "a line"
    inputs_worker.secrets.update(searched=3, found=0)
    controller = Record()

    controller.merge(asdict(faults_worker))
    assert not controller.complete()
    controller.merge(asdict(inputs_worker))

    assert controller.complete()
    assert controller.seed_rows == 2_000
    assert controller.faults == faults_worker.faults
