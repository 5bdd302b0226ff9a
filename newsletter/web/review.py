"""The review links of the weekly routine in `newsletter serve`:

    GET  /review/<approve|hold>/<reviewer number>/<token>   a page with the issue and a button
    POST (the same)                                          approves or holds, as the reviewer

Only the POST acts, so a mail scanner following the link changes nothing, and a link acts
once: a replay (409) changes nothing, so an old "Freigeben" can never undo a later hold. A link
is refused (404) when forged or made for content that was re-composed since, answered 400 when
expired and 409 when the issue is already out; with four eyes, the composer's own link is
refused (403).
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from newsletter.content.sanitize import clean_text
from newsletter.errors import InputError, NotFound, StoreError
from newsletter.store import Database
from newsletter.store.issues import Issue, get_issue
from newsletter.store.timeline import link_used
from newsletter.web import forms
from newsletter.web.pages import MAX_REASON
from newsletter.workflow import approval
from newsletter.workflow.review import check_link, issue_of_token

VIA = "Link in der Freigabe-Mail"


def digest(token: str) -> str:
    """What is kept of a used link: enough to know it again, nothing to rebuild it from."""
    return hashlib.sha256(token.encode()).hexdigest()


class Reviews:
    def __init__(self, site) -> None:
        self.site = site

    async def page(self, request: Request) -> Response:
        state, issue = await self.site._db(self._state, request.path_params)
        if state != "valid":
            return self._answer(state)
        action = request.path_params["action"]
        return self.site.pages.page(f"review_{action}", quote=issue.subject, reason_field=action == "hold")

    async def act(self, request: Request) -> Response:
        reason = ""
        if request.path_params["action"] == "hold":
            try:
                fields, _ = await forms.read_fields(request)
            except forms.BadBody as error:
                return self.site.pages.page("bad_request", error.status)
            reason = clean_text(fields.get("reason", ""))[:MAX_REASON]
        return self._answer(await self.site._db(self._act, request.path_params, reason))

    def _state(self, db: Database, params: dict[str, Any]) -> tuple[str, Issue | None]:
        settings, token = self.site.settings, params["token"][:200]
        issue_id = issue_of_token(token)
        try:
            issue = get_issue(db, issue_id) if issue_id is not None else None
        except NotFound:
            issue = None
        if issue is None:
            return "invalid", None
        link = check_link(settings, self.site.key, issue, params["action"], params["index"], token)
        if link is None:
            return "invalid", issue
        if link.expired:
            return "expired", issue
        if not issue.editable:
            return "closed", issue
        if link_used(db, digest(token)):
            return "used", issue
        return "valid", issue

    def _act(self, db: Database, params: dict[str, Any], reason: str = "") -> str:
        state, issue = self._state(db, params)
        if state != "valid" or issue is None:
            return state
        settings = self.site.settings
        reviewer = settings.autopilot.reviewers[params["index"]]
        once = digest(params["token"][:200])
        try:
            if params["action"] == "approve":
                approval.approve(db, settings, issue, reviewer, VIA, link=once)
                return "approved"
            approval.hold(db, settings, issue, reviewer, reason, via=VIA, link=once)
            return "held"
        except approval.LinkUsed:
            return "used"
        except InputError:
            return "four_eyes"
        except StoreError:
            return "closed"

    def _answer(self, state: str) -> Response:
        status = {"approved": 200, "held": 200, "invalid": 404, "expired": 400, "closed": 409, "used": 409,
                  "four_eyes": 403}[state]
        return self.site.pages.page(f"review_{state}", status)
