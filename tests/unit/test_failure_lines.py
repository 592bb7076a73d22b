"""Failure lines in the project's words: an engine's API error as the engine said it
(module_utils/prosaas_docker.one_line), and the deny-list every fault and bad-input row
checks its line against (tests/e2e/faults.py)."""

import docker.errors
import pytest
import requests
from prosaas_docker import one_line
from prosaas_pull import pull_failure

from tests.e2e.faults import DENIED_IN_FAILURE_LINES, assert_plain_failure_line

REFUSED = 'Get "http://127.0.0.1:38685/v2/": dial tcp 127.0.0.1:38685: connect: connection refused'


def api_error(
    status: int, reason: str, url: str, explanation: str | None
) -> docker.errors.APIError:
    """An API error as the Docker SDK raises it for the engine's answer."""
    response = requests.Response()
    response.status_code, response.reason, response.url = status, reason, url
    return docker.errors.APIError(reason, response=response, explanation=explanation)


def test_an_api_error_is_what_the_engine_said_without_the_http_wrapping() -> None:
    error = api_error(500, "Internal Server Error", "http+docker://localhost/v1.41/auth", REFUSED)
    assert "http+docker" in str(error)  # how the SDK words it
    assert one_line(error) == REFUSED
    line = pull_failure(
        one_line(error), reference="127.0.0.1:38685", registry="127.0.0.1:38685", user="ci"
    )
    assert line.startswith("pull of 127.0.0.1:38685 failed: registry 127.0.0.1:38685 unreachable")
    assert_plain_failure_line(line)


def test_an_api_error_without_an_explanation_is_the_engines_status() -> None:
    error = api_error(404, "Not Found", "http+docker://localhost/v1.41/images/x/json", None)
    assert one_line(error) == "the engine answered 404 Not Found"
    assert one_line(OSError("connection reset\nmore")) == "connection reset"


@pytest.mark.parametrize("word", DENIED_IN_FAILURE_LINES)
def test_a_failure_line_with_a_denied_word_fails_its_row(word: str) -> None:
    with pytest.raises(AssertionError, match="the failure line shows"):
        assert_plain_failure_line(f"deploy of release R failed in phase verify: {word} ...")


def test_a_failure_line_in_the_projects_words_passes() -> None:
    assert_plain_failure_line(
        "inventory: prosaas_app_version 'v2;id' is not a valid image tag: use letters, digits,"
        " '_', '.' and '-' (at most 128, not starting with '.' or '-'), e.g. v2 or 2026.12.07-1"
    )
