"""The notify_webhook action plugin's post (Ansible's open_url) against a loopback webhook:
taken, refused with an HTTP status, or nobody listening; never naming the URL's token."""

import importlib.util
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT
from tests.pg_cluster import free_loopback_port
from tests.webhook import TOKEN, Webhook

spec = importlib.util.spec_from_file_location(
    "notify_webhook", ROOT / "plugins/action/notify_webhook.py"
)
notify = importlib.util.module_from_spec(spec)
spec.loader.exec_module(notify)
BODY = {"text": "prosaas deploy of release r1 started", "prosaas": {"event": "start"}}


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.start()
    yield hook
    hook.server.shutdown()


def test_a_post_the_webhook_takes_says_nothing(webhook: Webhook) -> None:
    assert notify.post(webhook.url, BODY, timeout=5) is None
    assert webhook.posts == [BODY]


def test_a_refused_post_names_the_host_and_status_not_the_token(webhook: Webhook) -> None:
    webhook.answer = 500
    assert notify.post(webhook.url, BODY, timeout=5) == "127.0.0.1 answered HTTP 500"


def test_a_webhook_nobody_listens_on_is_one_line_without_the_token() -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}/services/{TOKEN}"
    problem = notify.post(url, BODY, timeout=5)
    assert problem.startswith("127.0.0.1 did not take it: ")
    assert TOKEN not in problem
    assert "\n" not in problem
