"""The one exception family the CLI turns into a one-line message and exit code 1.

Every message names the problem and ends with the fix.
"""


class NewsletterError(Exception):
    """Base class: anything a user can cause and fix."""

    exit_code = 1


class ConfigError(NewsletterError):
    """Missing or invalid configuration."""


class StoreError(NewsletterError):
    """The database cannot be opened, is locked or is in a state that forbids the change."""


class IssueBeingSent(StoreError):
    """Another process holds the issue's send lock; `slug` names the issue."""

    def __init__(self, message: str, slug: str) -> None:
        super().__init__(message)
        self.slug = slug


class NotFound(NewsletterError):
    """An issue, article or other record that the user named does not exist."""


class InputError(NewsletterError):
    """An import file, feed or option value that cannot be used."""


class SelectionError(NewsletterError):
    """The selection for an issue is empty or contradicts itself."""


class RenderError(NewsletterError):
    """A template or MJML error, or an issue that breaks the size budget."""


class CheckError(NewsletterError):
    """An issue fails a preflight check (`newsletter check`) and may not be sent as it is;
    `failed` names the checks that failed."""

    def __init__(self, message: str, failed: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed = list(failed or [])


class NotApproved(NewsletterError):
    """An issue held back, or not approved where approval is required; `reason` says which."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class DraftExists(InputError):
    """A compose for a day that already has an unsent issue; `issue` is that issue's row."""

    def __init__(self, message: str, issue) -> None:
        super().__init__(message)
        self.issue = issue


class TransportError(NewsletterError):
    """The transport cannot be used at all (a refused login, an unreachable server, a bad
    certificate): the run stops, and what was not yet on the wire is left as it was."""


class SendStopped(NewsletterError):
    """A send that stopped before its end (a message whose outcome is unknown, a stalled server,
    a connection that could not be reopened): what went out is recorded; `summary` holds the
    counts so far, to be shown beside the one-line reason."""

    def __init__(self, message: str, summary=None) -> None:
        super().__init__(message)
        self.summary = summary
