"""One Settings object, resolved once: flag > environment (NEWSLETTER_*) > newsletter.toml > default.

Paths written in the toml file are relative to the file's own folder, so a config and its
database can move together (the demo lives in ./demo).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.errors import ConfigError

CONFIG_ENV = "NEWSLETTER_CONFIG"
DB_ENV = "NEWSLETTER_DB"
DEFAULT_CONFIG = Path("newsletter.toml")
DEFAULT_DB = Path("data/newsletter.db")


@dataclass
class Publication:
    name: str = "Newsletter"
    sender_name: str = ""
    sender_address: str = ""
    reply_to: str = ""
    base_url: str = ""
    language: str = "de"
    timezone: str = "Europe/Berlin"
    logo_url: str = ""
    privacy_url: str = ""
    web_url: str = ""
    social: dict[str, str] = field(default_factory=dict)
    templates_dir: str = ""
    list_id: str = ""
    reason: str = "Sie erhalten diesen Newsletter, weil Sie ihn abonniert haben."


@dataclass
class Impressum:
    organisation: str = ""
    legal_form: str = ""
    address: str = ""
    email: str = ""
    phone: str = ""
    register_court: str = ""
    register_number: str = ""
    vat_id: str = ""
    managing_directors: list[str] = field(default_factory=list)
    responsible_for_content: str = ""

    def missing(self) -> list[str]:
        """Names of the fields § 5 DDG / § 18 MStV require that are still empty."""
        return [f.name for f in dataclasses.fields(self) if not getattr(self, f.name)]


@dataclass
class Compose:
    max_articles: int = 12
    max_jobs: int = 10
    max_ads: int = 2
    window_days: int = 7
    job_max_age_days: int = 60
    size_budget: int = 102_000
    out_dir: str = "out"


@dataclass
class Send:
    transport: str = "file"       # smtp | file
    outbox: str = "outbox"        # folder of the file transport
    rate: float = 0.0             # messages per second, 0 = as fast as the server takes them
    connections: int = 1
    max_attempts: int = 3         # per recipient and run, for 4xx replies and dropped connections
    retry_delay: float = 2.0      # seconds before the first retry; doubles each time
    feedback_id: str = ""         # Gmail Feedback-ID, e.g. "issue:newsletter:acme:NL2024"
    verp: bool = False            # envelope sender bounces+TOKEN@domain
    bounce_domain: str = ""       # VERP domain (default: the sender's)
    dkim_key: str = ""            # PEM private key file
    dkim_selector: str = ""
    dkim_domain: str = ""         # default: the sender's domain


@dataclass
class Smtp:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"    # starttls | tls | none
    ca_file: str = ""             # extra CA bundle for a private relay
    timeout: float = 30.0


@dataclass
class Check:
    spam_threshold: float = 3.0   # SpamAssassin score above which `check` fails
    spamassassin: bool = True     # run `spamassassin -L -t` when it is installed
    title_max: int = 78           # subject length above which `check` warns
    style_max: int = 16_000       # bytes of <style> Gmail keeps


@dataclass
class Preview:
    host: str = "127.0.0.1"
    port: int = 8025


@dataclass
class Archive:
    enabled: bool = False         # issues link to <base_url>/archive/<slug>.html
    out_dir: str = "archive"      # folder `newsletter archive` writes (and `serve` serves)


@dataclass
class Serve:
    host: str = "127.0.0.1"
    port: int = 8080
    confirm_hours: int = 48       # a confirmation link expires after this
    store_ip: bool = False        # keep the client address in the consent record
    rate_limit: int = 5           # sign-ups per client address and rate_window
    rate_window: int = 600        # seconds
    consent_text: str = (
        "Ja, ich möchte den Newsletter per E-Mail erhalten. Die Einwilligung kann ich jederzeit "
        "über den Abmeldelink in jeder Ausgabe widerrufen."
    )
    consent_version: str = "1"


@dataclass
class Bounces:
    soft_limit: int = 3           # soft bounces within soft_window_days mark a reader bounced
    soft_window_days: int = 30


@dataclass
class Settings:
    """Everything a command needs to know, with paths already resolved."""

    db_path: Path
    config_path: Path | None
    publication: Publication
    impressum: Impressum
    compose: Compose
    send: Send = field(default_factory=Send)
    smtp: Smtp = field(default_factory=Smtp)
    check: Check = field(default_factory=Check)
    preview: Preview = field(default_factory=Preview)
    archive: Archive = field(default_factory=Archive)
    serve: Serve = field(default_factory=Serve)
    bounces: Bounces = field(default_factory=Bounces)

    @property
    def base_dir(self) -> Path:
        return self.config_path.parent if self.config_path else Path.cwd()

    @property
    def out_dir(self) -> Path:
        return self.base_dir / self.compose.out_dir

    @property
    def templates_dir(self) -> Path | None:
        t = self.publication.templates_dir
        return (self.base_dir / t) if t else None

    @property
    def archive_dir(self) -> Path:
        return self.base_dir / self.archive.out_dir

    def require_config(self) -> None:
        if self.config_path is None:
            raise ConfigError(
                f"No configuration found at {DEFAULT_CONFIG} - run 'newsletter init' "
                f"or set {CONFIG_ENV} to the path of your newsletter.toml"
            )


# Environment names per setting; NEWSLETTER_<SECTION>_<KEY> is accepted for every other one.
ENV_NAMES = {
    ("publication", "base_url"): "NEWSLETTER_BASE_URL",
    ("publication", "templates_dir"): "NEWSLETTER_TEMPLATES",
    ("publication", "timezone"): "NEWSLETTER_TIMEZONE",
    ("compose", "out_dir"): "NEWSLETTER_OUT",
    ("send", "transport"): "NEWSLETTER_TRANSPORT",
}

SECTIONS = {"publication": Publication, "impressum": Impressum, "compose": Compose,
            "send": Send, "smtp": Smtp, "check": Check, "preview": Preview, "archive": Archive,
            "serve": Serve, "bounces": Bounces}


def load(
    config: Path | None = None,
    db: Path | None = None,
    overrides: dict[tuple[str, str], Any] | None = None,
) -> Settings:
    """Resolve the settings. `config`/`db` are the command-line flags (None when not given)."""
    path = _config_path(config)
    data = _read_toml(path) if path else {}
    overrides = overrides or {}
    sections = {}
    for name, cls in SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: [{name}] must be a table - see 'newsletter init' for the layout")
        sections[name] = _build(cls, name, raw, overrides, path)
    return Settings(
        db_path=_db_path(db, data, path),
        config_path=path,
        **sections,
    )


def _config_path(flag: Path | None) -> Path | None:
    if flag is not None:
        if not flag.is_file():
            raise ConfigError(f"Config file {flag} does not exist - check the path or run 'newsletter init'")
        return flag
    env = os.environ.get(CONFIG_ENV)
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"{CONFIG_ENV}={env} does not exist - fix the variable or run 'newsletter init'")
        return p
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def _db_path(flag: Path | None, data: dict, config_path: Path | None) -> Path:
    if flag is not None:
        return flag
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV])
    stored = data.get("database", {}).get("path") if isinstance(data.get("database"), dict) else None
    if stored:
        p = Path(stored)
        return p if p.is_absolute() or config_path is None else config_path.parent / p
    return (config_path.parent / DEFAULT_DB) if config_path else DEFAULT_DB


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML ({e}) - fix the file or recreate it with 'newsletter init'") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 - save it as UTF-8") from None


def _build(cls, section: str, raw: dict, overrides: dict, path: Path | None):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting [{section}] {unknown[0]} - known are: {', '.join(sorted(known))}"
        )
    values = {}
    for f in dataclasses.fields(cls):
        env_name = ENV_NAMES.get((section, f.name), f"NEWSLETTER_{section}_{f.name}".upper())
        if (section, f.name) in overrides and overrides[(section, f.name)] is not None:
            value = overrides[(section, f.name)]
        elif os.environ.get(env_name):
            value = _from_env(os.environ[env_name], f, env_name)
        elif f.name in raw:
            value = raw[f.name]
        else:
            continue
        values[f.name] = _check_type(value, f, f"[{section}] {f.name}", path)
    return cls(**values)


def _from_env(text: str, f: dataclasses.Field, env_name: str):
    kind = _kind(f)
    if kind is bool:
        return text.strip().lower() in ("1", "true", "yes", "on")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(f"{env_name}={text!r} is not a number - set a number") from None
    if kind is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind is dict:
        raise ConfigError(f"{env_name} cannot be set from the environment - set it in newsletter.toml")
    return text


def _kind(f: dataclasses.Field):
    if f.default_factory is not dataclasses.MISSING:
        return type(f.default_factory())
    return type(f.default)


def _check_type(value, f: dataclasses.Field, label: str, path: Path | None):
    kind = _kind(f)
    if kind is list and isinstance(value, str):
        value = [value]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: {label} must be a {kind.__name__}, not {value!r} - fix the value")
    if isinstance(value, str) and ("\r" in value or "\n" in value) and f.name not in ("address", "reason", "consent_text"):
        raise ConfigError(f"{path}: {label} must be one line - remove the line break")
    return value


def write_default(path: Path) -> None:
    """Write the commented starter config (`newsletter init`)."""
    text = (Path(__file__).parent / "newsletter.toml.example").read_text(encoding="utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
