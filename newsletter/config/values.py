"""How one setting's value is read and checked: from the environment's text, against the rule in
its field's metadata (`sections.setting`), with one line naming where a bad value came from."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter import dates
from newsletter.config.sections import Impressum
from newsletter.errors import ConfigError


def from_env(text: str, f: dataclasses.Field, env: str):
    kind = _kind(f)
    if f.metadata.get("optional") and text.strip().lower() == "false":
        return False
    if kind is bool:
        lowered = text.strip().lower()
        if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"{env}={text!r} is not a yes/no value - set 1/0, true/false, yes/no or on/off")
        return lowered in ("1", "true", "yes", "on")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(f"{env}={text!r} is not {'a whole number' if kind is int else 'a number'} - set a number") from None
    if kind is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind is dict:
        raise ConfigError(f"{env} cannot be set from the environment - set it in newsletter.toml")
    return text


def _kind(f: dataclasses.Field):
    if f.default_factory is not dataclasses.MISSING:
        return type(f.default_factory())
    return type(f.default)


def checked(value, f: dataclasses.Field, where: str):
    """`value` for field `f`, converted where that is lossless, or one line naming `where`."""
    kind, rule = _kind(f), f.metadata
    if value is False and rule.get("optional"):
        return False
    if kind is list and isinstance(value, str):
        value = [value]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise ConfigError(f"{where} must be {_article(kind)}, not {value!r} - fix the value")
    if isinstance(value, str):
        _check_text(value, rule, where)
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, str):
                raise ConfigError(f"{where} must be a list of texts, not {value!r} - fix the value")
            _check_text(item, rule, where)
    if rule.get("choices") and value not in rule["choices"]:
        raise ConfigError(f"{where} = {value!r} - use one of {', '.join(rule['choices'])}")
    low, high = rule.get("min"), rule.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"from {low} to {high}" if low is not None and high is not None else \
            (f"at least {low}" if low is not None else f"at most {high}")
        raise ConfigError(f"{where} = {value!r} is out of range - use a value {bounds}")
    return value


def _check_text(value: str, rule, where: str) -> None:
    if ("\r" in value or "\n" in value) and not rule.get("lines"):
        raise ConfigError(f"{where} must be one line - remove the line break")
    if rule.get("https") and value:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.netloc or any(c.isspace() for c in value):
            raise ConfigError(f"{where} = {value!r} must be an absolute https:// URL - mail clients "
                              "warn about plain http and relative links lead nowhere")
    if rule.get("weekly"):
        try:
            dates.parse_weekly(value)
        except ValueError:
            raise ConfigError(f"{where} = {value!r} is not a weekday and time - write e.g. \"Thu 07:00\"") from None
    if rule.get("duration"):
        try:
            dates.parse_duration(value)
        except ValueError:
            raise ConfigError(f"{where} = {value!r} is not a duration - write e.g. \"2h\", \"30m\" or \"1d\"") from None
    if rule.get("pattern"):
        _check_pattern(value, where)
    if rule.get("web"):
        parts = urlsplit(value)
        is_url = parts.scheme in ("http", "https") and parts.netloc and not any(c.isspace() for c in value)
        is_path = not parts.scheme and not value.startswith("//")
        if not (is_url or is_path):
            raise ConfigError(f"{where} = {value!r} is not a feed address - write https://... (or a file's path)")
    if rule.get("email") and value:
        local, at, domain = value.rpartition("@")
        if not (local and at and "." in domain) or any(c.isspace() or c in "<>,;\"" for c in value):
            raise ConfigError(f"{where} = {value!r} is not an e-mail address - write name@example.de")


NUMBER_FIELDS = {"n", "year", "month", "week"}


def _check_pattern(value: str, where: str) -> None:
    import string

    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError:
        names = None
    if names is None or not names & {"n", "week"} or not names <= NUMBER_FIELDS:
        raise ConfigError(f"{where} = {value!r} must count the issues with {{n}} (per year) or {{week}} "
                          "(calendar week) and may add {year} and {month} - e.g. \"{n}/{year}\"")


def check_register(imp: Impressum, path: Path | None) -> None:
    """A register entry has a court and a number, or neither applies."""
    if (imp.register_court is False) != (imp.register_number is False):
        raise ConfigError(f"{path}: [impressum] register_court and register_number go together - set both, or "
                          "both to false when the organisation is in no register")


def check_timezone(name: str, path: Path | None) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[publication] timezone = {name!r} is not a known timezone - use an IANA "
                          "name such as Europe/Berlin") from None


def _article(kind: type) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "text",
            list: "a list", dict: "a table"}[kind]
