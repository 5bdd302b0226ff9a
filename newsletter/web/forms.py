"""Reading what a sign-up sends: a form (urlencoded or multipart) or JSON, small, and checked
field by field."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from newsletter.audience.consent import check_name
from newsletter.errors import InputError
from newsletter.mail.addresses import normalise_email
from newsletter.web.pages import MAX_EMAIL

MAX_BODY = 16 * 1024        # a sign-up form is a few hundred bytes
TRUE = {"on", "1", "true", "yes", "ja"}


class BadBody(Exception):
    """A body that cannot be read; `reason` is a key of texts.j2's `errors`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


async def read_fields(request: Request) -> tuple[dict[str, str], bool]:
    """The text fields of a form or JSON body of at most MAX_BODY bytes, and whether it was JSON."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BadBody(413, "too_large")
    if is_json(request):
        try:
            data = json.loads(body)
        except ValueError:
            raise BadBody(400, "json") from None
        if not isinstance(data, dict):
            raise BadBody(400, "json_object")
        fields = {k: ("ja" if v is True else v) for k, v in data.items() if isinstance(v, (str, bool)) and v is not False}
        return fields, True

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=0, max_fields=20, max_part_size=MAX_BODY)
    except (HTTPException, MultiPartException):
        raise BadBody(400, "form") from None
    return {k: v for k, v in form.items() if isinstance(v, str)}, False


def check_signup(fields: dict[str, str]) -> list[str]:
    """The fields that are wrong (keys of texts.j2's `errors`), in form order."""
    wrong = []
    try:
        if len(fields.get("email", "")) > MAX_EMAIL:
            raise InputError("too long")
        normalise_email(fields.get("email", ""))
    except InputError:
        wrong.append("email")
    try:
        check_name(fields.get("name", ""))
    except InputError:
        wrong.append("name")
    if str(fields.get("consent", "")).strip().lower() not in TRUE:
        wrong.append("consent")
    return wrong
