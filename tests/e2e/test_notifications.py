"""Chat notifications: start, success, failure and rollback reach a webhook; a webhook
that fails never fails a deploy. The webhook is a local HTTP server that records each post."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack
from tests.pg_cluster import free_loopback_port
from tests.webhook import TOKEN, Webhook


def test_a_deploy_that_succeeds_posts_start_then_success(stack: Stack, webhook: Webhook) -> None:
    run = stack.deploy("v1", prosaas_notify_webhook_url=webhook.url)

    assert run.rc == 0, run.describe()
    assert webhook.events() == ["start", "success"]
    success = webhook.posts[1]
    release = stack.release("v1")["id"]
    assert success["prosaas"]["release"] == release
    assert success["prosaas"]["version"] == "v1"
    assert success["prosaas"]["duration"] > 0
    assert success["text"].startswith(f"prosaas deploy of release {release} (v1) succeeded after")
    assert TOKEN not in run.output


def test_a_failed_deploy_posts_rollback_then_failure_with_the_reason(
    v1_stack: Stack, webhook: Webhook, broken_migrate_image: str
) -> None:
    stack = v1_stack

    run = stack.deploy(
        "v2", prosaas_migrate_image=broken_migrate_image, prosaas_notify_webhook_url=webhook.url
    )

    assert run.rc != 0, run.describe()
    assert webhook.events() == ["start", "rollback", "failure"]
    rollback, failure = webhook.posts[1]["prosaas"], webhook.posts[2]["prosaas"]
    v1 = stack.release("v1")["id"]
    assert rollback["reason"] == f"rolled back to release {v1} (healthy)"
    assert failure["reason"].startswith("migrate: ")
    assert "exited with code" in failure["reason"]
    assert "failed after" in webhook.posts[2]["text"]


@pytest.mark.parametrize("broken", ["refuses (HTTP 500)", "does not listen"])
def test_a_failing_webhook_never_fails_the_deploy(
    stack: Stack, webhook: Webhook, broken: str
) -> None:
    webhook.answer = 500
    url = (
        webhook.url
        if broken.startswith("refuses")
        else f"http://127.0.0.1:{free_loopback_port()}/x"
    )

    run = stack.deploy("v1", prosaas_notify_webhook_url=url)

    assert run.rc == 0, run.describe()
    assert "notification of start not sent" in run.output
    assert "notification of success not sent" in run.output
    stack.assert_app_healthy_on("v1")
