"""`--company-preflight`: a batch submit whose tasks target a denied company is refused (422).

Openmart bills every returned record, and a filter cannot refund credits: a find_people task
for `acme.com` when Acme is a denied company buys people that are all removed. With the flag
the proxy reads a submit's tasks first (`domain`, `company_name` + `city`; the name alone only
with `--company-name-only-match`), asks the store once, and answers 422 listing the task
indexes when any targets a denied company: nothing is sent upstream. A body it cannot read as
a list of tasks is forwarded as it is (the upstream answers it).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from proxy.errors import PayloadTooLargeError
from proxy.forward import Forwarder, api_key
from rules.detect import company
from rules.model import RuleType

KINDS = frozenset({"find_people", "lookup_people", "lookup_business_email"})
SUBMIT = "/api/v1/task/batch/{kind}"
DETAIL = "tasks target a denied company: resubmit without them"


async def submit(request: web.Request, forwarder: Forwarder) -> web.StreamResponse:
    """A batch submit: checked first, then forwarded with the body already read."""
    if request.match_info.get("kind") not in KINDS:
        return await forwarder(request)
    try:
        body = await request.read()  # bounded by the app's client_max_size
    except web.HTTPRequestEntityTooLarge:
        limit = forwarder.settings.max_request_body
        raise PayloadTooLargeError(f"request body is larger than {limit} bytes") from None
    return await refusal(forwarder, request, body) or await forwarder(request, body)


async def refusal(forwarder: Forwarder, request: web.Request, body: bytes) -> web.Response | None:
    """422 naming the tasks that target a denied company; None when none does."""
    try:
        tasks = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(tasks, list):
        return None
    keys = [company.task_keys(task) for task in tasks]
    asked = {k for task in keys for k in task}
    if not asked:
        return None
    api_key(request)  # the scope, from the headers as the upstream would get them
    answer = await forwarder.lookup(request, {RuleType.COMPANY: asked})
    settings = forwarder.settings
    denied = company.answer_for(answer, settings.company_name_only_match).get(RuleType.COMPANY)
    indexes = [i for i, task in enumerate(keys) if denied and not denied.isdisjoint(task)]
    if not indexes:
        return None
    return web.json_response({"detail": DETAIL, "tasks": indexes}, status=422)
