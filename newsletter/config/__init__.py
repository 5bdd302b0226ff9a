"""One Settings object, resolved once: flag > environment (NEWSLETTER_*) > newsletter.toml > default.

Command-line flags go through the same loader as the environment and the file (`overrides`),
and every value is checked against its rule (`sections.setting`) as it loads, so a bad value
stops a command before it has done anything. Paths written in the toml file are relative to
the file's own folder, so a config and its database can move together (the demo lives in ./demo).
Secrets never come from the file: `secret()` reads them from the environment, in one place.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter import dates
from newsletter.config.sections import (
    SECTIONS,
    Archive,
    Autopilot,
    Bounces,
    Check,
    Compose,
    Feed,
    Impressum,
    Preview,
    Publication,
    Send,
    Serve,
    Smtp,
    Tracking,
)
from newsletter.config.values import check_register, check_timezone, checked, from_env
from newsletter.errors import ConfigError

CONFIG_ENV = "NEWSLETTER_CONFIG"
DB_ENV = "NEWSLETTER_DB"
DEFAULT_CONFIG = Path("newsletter.toml")
DEFAULT_DB = Path("data/newsletter.db")

__all__ = ["Settings", "load", "secret", "write_default", "Publication", "Impressum", "Compose", "Send",
           "Smtp", "Check", "Preview", "Archive", "Serve", "Tracking", "Bounces", "Autopilot", "Feed", "SECTIONS"]


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
    tracking: Tracking = field(default_factory=Tracking)
    bounces: Bounces = field(default_factory=Bounces)
    autopilot: Autopilot | None = None   # None: no [autopilot], run-due only sends scheduled issues
    feeds: list[Feed] = field(default_factory=list)
    db_source: str = "the default"  # where db_path came from, for messages

    @property
    def base_dir(self) -> Path:
        return self.config_path.parent if self.config_path else Path.cwd()

    def path(self, value: str | Path) -> Path:
        """A path from the settings, relative to the config file's folder."""
        return self.base_dir / value

    @property
    def out_dir(self) -> Path:
        return self.path(self.compose.out_dir)

    @property
    def templates_dir(self) -> Path | None:
        t = self.publication.templates_dir
        return self.path(t) if t else None

    @property
    def archive_dir(self) -> Path:
        return self.path(self.archive.out_dir)

    @property
    def outbox(self) -> Path:
        return self.path(self.send.outbox)

    def require_config(self) -> None:
        if self.config_path is None:
            raise ConfigError(
                f"No configuration found at {DEFAULT_CONFIG} - run 'newsletter init' "
                f"or set {CONFIG_ENV} to the path of your newsletter.toml"
            )

    def require_base_url(self, purpose: str) -> str:
        """The https base URL, or one line saying it is needed for `purpose`."""
        if not self.publication.base_url:
            raise ConfigError(f"[publication] base_url is not set - {purpose} needs it; set the https "
                              f"address of your site in {self.config_path or DEFAULT_CONFIG}")
        return self.publication.base_url.rstrip("/")


# Environment names per setting; NEWSLETTER_<SECTION>_<KEY> is accepted for every other one.
ENV_NAMES = {
    ("publication", "base_url"): "NEWSLETTER_BASE_URL",
    ("publication", "templates_dir"): "NEWSLETTER_TEMPLATES",
    ("publication", "timezone"): "NEWSLETTER_TIMEZONE",
    ("compose", "out_dir"): "NEWSLETTER_OUT",
    ("send", "transport"): "NEWSLETTER_TRANSPORT",
}


def env_name(section: str, key: str) -> str:
    return ENV_NAMES.get((section, key), f"NEWSLETTER_{section}_{key}".upper())


def load(config: Path | None = None, db: Path | None = None,
         overrides: dict[str, tuple[Any, str]] | None = None) -> Settings:
    """Resolve and check the settings.

    `config`/`db` are the --config/--db flags (None when not given); `overrides` maps
    "section.key" to (value, flag name) for other flags a command was given (None values are
    ignored)."""
    path = _config_path(config)
    data = _read_toml(path) if path else {}
    given = {tuple(k.split(".", 1)): v for k, v in (overrides or {}).items() if v[0] is not None}
    unknown = sorted(set(data) - set(SECTIONS) - {"database", "autopilot", "feeds"})
    if unknown:
        raise ConfigError(f"{path}: unknown section [{unknown[0]}] - known are: "
                          f"{', '.join(sorted([*SECTIONS, 'autopilot', 'database']))}, [[feeds]]")
    sections = {}
    for name, cls in SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: [{name}] must be a table - see 'newsletter init' for the layout")
        sections[name] = _build(cls, name, raw, given, path)
    check_timezone(sections["publication"].timezone, path)
    check_register(sections["impressum"], path)
    autopilot = _autopilot(data, given, path)
    feeds = _feeds(data.get("feeds", []), path)
    db_path, db_source = _db_path(db, data, path)
    return Settings(db_path=db_path, config_path=path, **sections, autopilot=autopilot, feeds=feeds,
                    db_source=db_source)


def _autopilot(data: dict, given: dict, path: Path | None) -> Autopilot | None:
    """[autopilot] when the file has it (or the environment sets one of its keys), checked as a whole."""
    raw = data.get("autopilot")
    if raw is None and not any(name.startswith("NEWSLETTER_AUTOPILOT_") for name in os.environ):
        return None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: [autopilot] must be a table - see 'newsletter init' for the layout")
    pilot = _build(Autopilot, "autopilot", raw or {}, given, path)
    where = f"{path}: [autopilot]"
    if dates.parse_weekly(pilot.compose_at) == dates.parse_weekly(pilot.send_at):
        raise ConfigError(f"{where} send_at = {pilot.send_at!r} is compose_at - send at least a few minutes "
                          "after composing, so the reviewers can look")
    if pilot.approval == "required" and not pilot.reviewers:
        raise ConfigError(f"{where} approval = \"required\" needs reviewers - list who approves, "
                          "e.g. reviewers = [\"chefredaktion@example.de\"], or set approval = \"none\"")
    return pilot


def _feeds(raw, path: Path | None) -> list[Feed]:
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(entry, dict) for entry in raw):
        raise ConfigError(f"{path}: feeds must be [[feeds]] tables, each with url and kind - see 'newsletter init'")
    feeds = []
    for number, entry in enumerate(raw, start=1):
        if not entry.get("url"):
            raise ConfigError(f"{path}: [[feeds]] number {number} has no url - add url = \"https://...\"")
        feeds.append(_build(Feed, "feeds", entry, {}, path, use_env=False, label=f"[[feeds]] number {number}"))
    urls = [feed.url for feed in feeds]
    twice = next((url for url in urls if urls.count(url) > 1), None)
    if twice:
        raise ConfigError(f"{path}: the feed {twice} is listed twice under [[feeds]] - keep one")
    return feeds


def config_target(flag: Path | None) -> Path:
    """The config file `init` writes or keeps: --config, else NEWSLETTER_CONFIG, else ./newsletter.toml."""
    if flag is not None:
        return flag
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG


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


def _db_path(flag: Path | None, data: dict, config_path: Path | None) -> tuple[Path, str]:
    """The database's path and where it came from."""
    if flag is not None:
        return flag, "--db"
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV]), DB_ENV
    stored = data.get("database", {}).get("path") if isinstance(data.get("database"), dict) else None
    if stored:
        p = Path(stored)
        return (p if p.is_absolute() or config_path is None else config_path.parent / p), f"[database] path in {config_path}"
    if config_path:
        return config_path.parent / DEFAULT_DB, f"the default beside {config_path}"
    return DEFAULT_DB, f"the default, with no newsletter.toml in {Path.cwd()}"


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML ({e}) - fix the file or recreate it with 'newsletter init'") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 - save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"Cannot read {path}: {e.strerror} - check its permissions") from None


def _build(cls, section: str, raw: dict, given: dict, path: Path | None, use_env: bool = True,
           label: str | None = None):
    label = label or f"[{section}]"
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {label} {unknown[0]} - known are: {', '.join(sorted(known))}"
        )
    values = {}
    for f in dataclasses.fields(cls):
        name = env_name(section, f.name)
        if (section, f.name) in given:
            value, flag = given[(section, f.name)]
            where = f"{flag} (for [{section}] {f.name})"
        elif use_env and os.environ.get(name):
            value, where = from_env(os.environ[name], f, name), name
        elif f.name in raw:
            value, where = raw[f.name], f"{path}: {label} {f.name}"
        else:
            continue
        values[f.name] = checked(value, f, where)
    return cls(**values)


# --- secrets -------------------------------------------------------------------------------

SECRETS = {
    "secret": "NEWSLETTER_SECRET",
    "smtp_user": "NEWSLETTER_SMTP_USER",
    "smtp_password": "NEWSLETTER_SMTP_PASSWORD",
    "imap_user": "NEWSLETTER_IMAP_USER",
    "imap_password": "NEWSLETTER_IMAP_PASSWORD",
}
MIN_SECRET = 16


def secret(name: str, *, required: bool = False) -> str:
    """A secret from the environment ('' when unset); the only place that reads them.

    `required`: refuse an unset one with the variable's name and how to set it."""
    env = SECRETS[name]
    value = os.environ.get(env, "")
    if name == "secret" and required and len(value) < MIN_SECRET:
        raise ConfigError(
            f"{env} is not set (or shorter than {MIN_SECRET} characters) - it signs the "
            "unsubscribe links; set it, e.g. export NEWSLETTER_SECRET=$(python -c "
            "'import secrets; print(secrets.token_urlsafe(32))'), and keep it stable"
        )
    if required and not value:
        raise ConfigError(f"{env} is not set - set it in the environment (never in newsletter.toml)")
    return value


def signing_key() -> bytes:
    """NEWSLETTER_SECRET as the key of every token (unsubscribe, VERP, confirmation)."""
    return secret("secret", required=True).encode()


def write_default(path: Path) -> None:
    """Write the commented starter config (`newsletter init`)."""
    from newsletter import files

    text = (Path(__file__).parent / "newsletter.toml.example").read_text(encoding="utf-8")
    files.atomic_write(path, text.encode("utf-8"))
