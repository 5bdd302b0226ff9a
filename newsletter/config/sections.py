"""The settings, section by section, each with its default and the rule its value must meet.

A value is checked once, when the settings load (`newsletter.config.load`), whether it comes
from newsletter.toml, the environment or a command-line flag: a bad one stops the command with
one line that names the key. Rules live in each field's metadata (see `setting`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from newsletter import registry

SECURITY = ("starttls", "tls", "none")


def setting(default, *, choices: tuple | None = None, min: float | None = None, max: float | None = None,
            https: bool = False, email: bool = False, lines: bool = False, factory=None, weekly: bool = False,
            duration: bool = False, pattern: bool = False, web: bool = False, optional: bool = False):
    """A field with its rule: one of `choices`, a number within `min`..`max`, an https URL
    (empty allowed), an e-mail address (empty allowed; in a list: each one); `lines`: may hold
    line breaks; `weekly`: "Thu 07:00"; `duration`: "2h", "30m", "1d"; `pattern`: an issue
    number pattern with {n}; `web`: an http or https URL (a feed); `optional`: `false` says the
    field does not apply (an Impressum field only some organisations have)."""
    rule = {"choices": choices, "min": min, "max": max, "https": https, "email": email, "lines": lines,
            "weekly": weekly, "duration": duration, "pattern": pattern, "web": web, "optional": optional}
    if factory is not None:
        return field(default_factory=factory, metadata=rule)
    return field(default=default, metadata=rule)


@dataclass
class Publication:
    name: str = "Newsletter"
    sender_name: str = ""
    sender_address: str = setting("", email=True)
    reply_to: str = setting("", email=True)
    base_url: str = setting("", https=True)
    language: str = "de"
    timezone: str = "Europe/Berlin"
    logo_url: str = setting("", https=True)
    privacy_url: str = setting("", https=True)
    web_url: str = setting("", https=True)
    social: dict[str, str] = setting(None, factory=dict)
    templates_dir: str = ""
    list_id: str = ""
    reason: str = setting("Sie erhalten diesen Newsletter, weil Sie ihn abonniert haben.", lines=True)


@dataclass
class Impressum:
    """§ 5 DDG and § 18 MStV. The fields only some organisations have (a legal form, a register
    entry, a VAT ID, managing directors) may be `false`: "does not apply", left out of the
    footer. Empty is always an error, so nothing is forgotten by accident."""

    organisation: str = ""
    legal_form: str | bool = setting("", optional=True)
    address: str = setting("", lines=True)
    email: str = setting("", email=True)
    phone: str = ""
    register_court: str | bool = setting("", optional=True)
    register_number: str | bool = setting("", optional=True)
    vat_id: str | bool = setting("", optional=True)
    managing_directors: list[str] | bool = setting(None, factory=list, optional=True)
    representatives_label: str = "Geschäftsführung"   # "Vorstand" for a Verein, "Vertreten durch" ...
    responsible_for_content: str = ""

    def missing(self) -> list[str]:
        """Names of the fields § 5 DDG / § 18 MStV require that are still empty (`false`, not
        applicable, is not missing)."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not False
                and not getattr(self, f.name)]

    def not_applicable(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is False]


@dataclass
class Compose:
    max_articles: int = setting(12, min=1, max=100)
    max_jobs: int = setting(10, min=0, max=100)
    max_ads: int = setting(2, min=0, max=10)
    window_days: int = setting(7, min=1, max=366)
    job_max_age_days: int = setting(60, min=1, max=3660)
    size_budget: int = setting(102_000, min=10_000)
    out_dir: str = "out"


@dataclass
class Send:
    transport: str = setting("file", choices=registry.names())
    outbox: str = "outbox"        # folder of the file transport
    rate: float = setting(0.0, min=0)            # messages per second, 0 = as fast as the server takes them
    connections: int = setting(1, min=1, max=64)
    max_attempts: int = setting(3, min=1, max=20)  # per recipient and run (4xx replies, dropped connections)
    retry_delay: float = setting(2.0, min=0, max=3600)  # seconds before the first retry; doubles each time
    feedback_id: str = ""         # Gmail Feedback-ID, e.g. "issue:newsletter:acme:NL2024"
    verp: bool = False            # envelope sender bounces+TOKEN@domain
    bounce_domain: str = ""       # VERP domain (default: the sender's)
    dkim_key: str = ""            # PEM private key file
    dkim_selector: str = ""
    dkim_domain: str = ""         # default: the sender's domain


@dataclass
class Smtp:
    host: str = "localhost"
    port: int = setting(587, min=1, max=65535)
    security: str = setting("starttls", choices=SECURITY)
    ca_file: str = ""             # extra CA bundle for a private relay
    timeout: float = setting(30.0, min=1, max=600)
    helo: str = ""                # the name EHLO gives; default: this machine's fully qualified name


@dataclass
class Check:
    spam_threshold: float = 3.0   # SpamAssassin score above which `check` fails
    spamassassin: bool = True     # run `spamassassin -L -t` when it is installed
    contrast: bool = True         # check text contrast in headless Chromium when it is installed
    title_max: int = setting(78, min=20, max=998)
    style_max: int = setting(16_000, min=1000)


@dataclass
class Preview:
    host: str = "127.0.0.1"
    port: int = setting(8025, min=0, max=65535)  # 0: any free port


@dataclass
class Archive:
    enabled: bool = False         # issues link to <base_url>/archive/<slug>.html
    out_dir: str = "archive"      # folder `newsletter archive` writes (and `serve` serves)


@dataclass
class Serve:
    host: str = "127.0.0.1"
    port: int = setting(8080, min=1, max=65535)
    confirm_hours: int = setting(48, min=1, max=24 * 30)
    store_ip: bool = False        # keep the client address in the consent record
    rate_limit: int = setting(5, min=0)          # sign-ups per client address and rate_window
    rate_window: int = setting(600, min=1)       # seconds
    consent_text: str = setting(
        "Ja, ich möchte den Newsletter per E-Mail erhalten. Die Einwilligung kann ich jederzeit "
        "über den Abmeldelink in jeder Ausgabe widerrufen.", lines=True)
    consent_version: str = "1"


@dataclass
class Tracking:
    # "aggregate": compose points each content link at <base_url>/c/<code> (served by `newsletter
    # serve`), which counts clicks per issue and link and identifies nobody; "off": links as they are.
    clicks: str = setting("off", choices=("off", "aggregate"))
    # more user-agent fragments (lower case) whose requests count as automated, beside the built-in list
    automated_agents: list[str] = setting(None, factory=list)


@dataclass
class Autopilot:
    """The weekly routine `run-due` runs on its own (see newsletter.workflow.autopilot)."""

    compose_at: str = setting("Thu 07:00", weekly=True)   # weekday and wall-clock time, publication timezone
    send_at: str = setting("Thu 09:00", weekly=True)
    number: str = setting("{n}/{year}", pattern=True)     # issue number; n counts the year's sent issues
    approval: str = setting("required", choices=("required", "none"))
    reviewers: list[str] = setting(None, factory=list, email=True)
    four_eyes: bool = True        # the approver must differ from whoever composed
    grace: str = setting("2h", duration=True)             # how late a missed step may still run


@dataclass
class Feed:
    url: str = setting("", web=True)
    kind: str = setting("article", choices=("article", "job"))


@dataclass
class Bounces:
    soft_limit: int = setting(3, min=1)          # soft bounces within soft_window_days mark a reader bounced
    soft_window_days: int = setting(30, min=1)


SECTIONS = {"publication": Publication, "impressum": Impressum, "compose": Compose,
            "send": Send, "smtp": Smtp, "check": Check, "preview": Preview, "archive": Archive,
            "serve": Serve, "tracking": Tracking, "bounces": Bounces}
