"""module_utils/prosaas_pull: references, digests, the pull stream and one-line failures."""

import pytest
from prosaas_pull import PullProgress, digest_reference, pull_failure, split_reference

REGISTRY = "registry.example.internal:5000"
APP = f"{REGISTRY}/prosaas/app"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (f"{APP}:v2", (APP, "v2")),
        (APP, (APP, "latest")),
        (f"{APP}@sha256:abc", (APP, "sha256:abc")),
        ("prosaas-demo/redis:7", ("prosaas-demo/redis", "7")),
        ("localhost:5000/redis", ("localhost:5000/redis", "latest")),
    ],
)
def test_split_reference_keeps_the_registry_port_in_the_repository(
    reference: str, expected: tuple[str, str]
) -> None:
    assert split_reference(reference) == expected


def test_digest_reference_is_the_one_of_the_same_repository() -> None:
    digests = ["other.example/prosaas/app@sha256:111", f"{APP}@sha256:222"]
    assert digest_reference(f"{APP}:v2", digests) == f"{APP}@sha256:222"
    assert digest_reference("prosaas-demo/app:v2", digests) is None


def test_progress_counts_the_layers_pulled_and_those_already_present() -> None:
    progress = PullProgress()
    for event in (
        {"status": "Pulling from prosaas/app", "id": "v2"},
        {"status": "Already exists", "id": "aaa"},
        {"status": "Already exists", "id": "bbb"},
        {"status": "Downloading", "id": "ccc", "progressDetail": {"current": 10, "total": 1842}},
        {"status": "Downloading", "id": "ccc", "progressDetail": {"current": 1842, "total": 1842}},
        {"status": "Pull complete", "id": "ccc"},
        {"status": "Digest: sha256:222"},
        {"status": f"Status: Downloaded newer image for {APP}:v2"},
    ):
        progress.read(event)
    assert progress.summary() == {"layers_pulled": 1, "layers_present": 2, "bytes_pulled": 1842}
    assert progress.digest == "sha256:222"
    assert progress.error == ""


def test_progress_keeps_the_error_of_the_stream() -> None:
    progress = PullProgress()
    progress.read({"error": "write /var/lib/docker/tmp: no space left on device"})
    assert progress.error.endswith("no space left on device")


@pytest.mark.parametrize(
    ("engine_said", "advice"),
    [
        ("unauthorized: authentication required", "refused the credentials of deploy-bot"),
        ("x509: certificate signed by unknown authority", "set prosaas_registry_ca"),
        ("manifest unknown: manifest unknown", f"{APP}:v9 is not in the registry"),
        ("write /var/lib/docker/x: no space left on device", "no space left on the host's disk"),
        ("dial tcp 10.0.0.5:5000: connect: connection refused", f"registry {REGISTRY} unreachable"),
        ("engine went away: ('Connection aborted.', RemoteDisconnected(''))", "restarted mid-pull"),
        ("context canceled", "restarted mid-pull"),
        ("something new", "the engine could not pull it"),
    ],
)
def test_each_pull_failure_is_one_line_with_what_to_do(engine_said: str, advice: str) -> None:
    line = pull_failure(engine_said, reference=f"{APP}:v9", registry=REGISTRY, user="deploy-bot")
    assert line.startswith(f"pull of {APP}:v9 failed: ")
    assert advice in line
    assert "\n" not in line
    assert line.endswith('RUNBOOK.md: "Image pull failed")')
