"""Action plugin: post a deploy event to a chat webhook (Slack-compatible JSON), from the
control node. It never fails the play: a webhook that does not answer is a warning."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
from typing import Any

from ansible.module_utils.urls import open_url
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

DOCUMENTATION = r"""
---
action: notify_webhook
short_description: Post a deploy event to a chat webhook, never failing the play
description:
  - >-
    Posts C({"text": ...}), what Slack's incoming webhooks and their clones take, with
    the event's fields beside it under C(prosaas). The text is one line, for example
    C(prosaas deploy of release 20261124T120000Z-v2 (v2\) failed after 41.3 s: migrate ...).
  - The URL is a secret (it carries the webhook's token), so it is never in the result or in a
    message, only its host.
  - A webhook that fails or does not answer within O(timeout) gives a warning and
    C(sent=false); the task itself never fails. In check mode nothing is sent.
author: prosaas-deploy (!UNKNOWN)
options:
  url:
    description: Webhook URL (http or https).
    type: str
    required: true
  event:
    description: What happened.
    type: str
    choices: [start, success, failure, rollback]
    required: true
  release:
    description: Release id.
    type: str
    required: true
  version:
    description: Version deployed.
    type: str
  duration:
    description: Seconds since the deploy started.
    type: float
  reason:
    description: Why it failed, or what the rollback did (one line).
    type: str
  timeout:
    description: Seconds to wait for the webhook.
    type: float
    default: 5
attributes:
  check_mode:
    support: full
    description: Sends nothing; returns the text it would send.
  diff_mode:
    support: none
    description: Changes nothing on any host, so there is nothing to show.
"""

EXAMPLES = r"""
- name: Post the deploy event to the webhook
  notify_webhook:
    url: "{{ prosaas_notify_webhook_url }}"
    event: failure
    release: "{{ release_id }}"
    version: v2
    duration: 41.3
    reason: "migrate: exited with code 1"
"""

RETURN = r"""
sent:
  description: Whether the webhook took the post.
  returned: always
  type: bool
  sample: true
text:
  description: The one line the chat shows.
  returned: when the arguments are valid
  type: str
  sample: "prosaas deploy of release 20261124T120000Z-v2 (v2) started"
msg:
  description: V(sent), or why it was not sent (naming the webhook's host, never its URL).
  returned: when it posted, or the arguments are invalid
  type: str
  sample: hooks.example.com answered HTTP 500
"""

EVENTS = ("start", "success", "failure", "rollback")
VERBS = {
    "start": "started",
    "success": "succeeded",
    "failure": "failed",
    "rollback": "rolled back",
}


def message(args: dict[str, Any]) -> str:
    """The one line a chat shows."""
    release = f"release {args['release']}" + (
        f" ({args['version']})" if args.get("version") else ""
    )
    text = f"prosaas deploy of {release} {VERBS[args['event']]}"
    if args.get("duration") is not None and args["event"] != "start":
        text += f" after {float(args['duration']):.1f} s"
    return text + (f": {args['reason']}" if args.get("reason") else "")


def payload(args: dict[str, Any]) -> dict[str, Any]:
    fields = {key: args.get(key) for key in ("event", "release", "version", "duration", "reason")}
    return {"text": message(args), "prosaas": fields}


def post(url: str, body: dict[str, Any], timeout: float) -> str | None:
    """Send BODY; None when the webhook took it, else why not (without the URL's secrets)."""
    where = urllib.parse.urlsplit(url).hostname or "the webhook"
    try:
        with open_url(
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
            timeout=timeout,
        ) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"{where} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{where} did not take it: {reason}"
    return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("url", "event", "release", "version", "duration", "reason", "timeout"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        url = str(args.get("url") or "")
        problem = self.invalid(args, url)
        if problem:
            Display().warning(f"notification not sent: {problem}")
            return {**result, "changed": False, "sent": False, "msg": problem}
        body = payload(args)
        if self._task.check_mode:
            return {**result, "changed": False, "sent": False, "text": body["text"]}
        error = post(url, body, float(args.get("timeout") or 5))
        if error:
            Display().warning(f"notification of {args['event']} not sent: {error}")
        return {**result, "changed": False, "sent": error is None, "text": body["text"],
                "msg": error or "sent"}  # fmt: skip

    @staticmethod
    def invalid(args: dict[str, Any], url: str) -> str | None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            return "the webhook URL must start with http:// or https://"
        if args.get("event") not in EVENTS:
            return f"event must be one of {', '.join(EVENTS)}"
        if not args.get("release"):
            return "release is required"
        return None
