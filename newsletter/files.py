"""Files as the product writes and reads them: whole or not at all, and text in the encoding
it really has.

`atomic_write` is the one way a file is written (a temporary file beside the target, flushed to
disk, then renamed over it), so a crash or a full disk never leaves half a file where a reader,
a web server or the next run would find it. `decode_text` is the one way an editor's file
(CSV, JSON) becomes text: UTF-8 with or without BOM, or the encoding the user names; a file
saved by German Excel (Windows-1252) is recognised and the message says how to read it.
`cache_dir` is the user's cache folder, for what only makes a run faster.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from newsletter.errors import InputError

# Bytes Windows-1252 uses for „ “ ‚ ‘ ’ – — € … that are C1 controls (never text) in Latin-1.
_CP1252_ONLY = set(range(0x80, 0xA0))


def atomic_write(path: Path | str, data: bytes, *, private: bool = False) -> Path:
    """Write `data` to `path` atomically; `private`: readable by the owner only (personal data).

    Raises OSError; callers turn it into a message that names their own fix."""
    with _atomic(Path(path), "wb", {}, private) as f:
        f.write(data)
    return Path(path)


def atomic_text(path: Path | str, *, private: bool = False) -> contextlib.AbstractContextManager[IO[str]]:
    """A text file (UTF-8) written as it goes and put in place only when the block ends well."""
    return _atomic(Path(path), "w", {"encoding": "utf-8", "newline": ""}, private)


@contextlib.contextmanager
def _atomic(path: Path, mode: str, text: dict[str, Any], private: bool) -> Iterator[IO[Any]]:
    """A temporary file beside `path`, flushed to disk and renamed over it when the block ends
    well, removed when it does not."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600 if private else 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def decode_text(data: bytes, name: str, encoding: str | None = None) -> str:
    """The text of an editor's file: UTF-8 (a BOM is dropped), or `encoding` when given."""
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InputError(f"--encoding {encoding!r} is not an encoding Python knows - "
                             "use e.g. utf-8, cp1252 or latin-1") from None
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise InputError(f"{name} is not {encoding} (byte 0x{data[e.start]:02x} on line {line}) "
                             "- check the --encoding") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        if _looks_cp1252(data):
            raise InputError(
                f"{name} is not UTF-8 but Windows-1252 (as German Excel saves CSV; byte 0x{data[e.start]:02x} "
                f"on line {line}) - import it with --encoding cp1252, or save it as 'CSV UTF-8'"
            ) from None
        raise InputError(
            f"{name} is not UTF-8 (byte 0x{data[e.start]:02x} on line {line}) - save it as UTF-8 "
            "(in Excel: 'CSV UTF-8'), or name its encoding with --encoding"
        ) from None


def _looks_cp1252(data: bytes) -> bool:
    """Whether undecodable bytes read as Windows-1252 text: either its typographic characters
    („ “ – € …, which Latin-1 does not have) or German letters (ä ö ü ß) that decode cleanly."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return any(b in _CP1252_ONLY for b in data) or any(c in text for c in "äöüÄÖÜßé")


@contextlib.contextmanager
def open_text(path: Path | str, encoding: str | None = None) -> Iterator[io.TextIOBase]:
    """An editor's file as a text stream (read as it goes, for files too big to hold): UTF-8
    with or without BOM, or `encoding`. A byte that does not decode is reported as
    `decode_text` reports it, wherever in the file it turns up."""
    path = Path(path)
    if encoding:
        decode_text(b"", path.name, encoding)  # an unknown encoding name is one line, before reading
    try:
        stream = open(path, encoding=encoding or "utf-8-sig", newline="", errors="strict")
    except FileNotFoundError:
        raise InputError(f"{path} does not exist - check the path") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder - give the path of a file") from None
    except OSError as e:
        raise InputError(f"Cannot read {path}: {e.strerror} - check the path and its permissions") from None
    try:
        with stream:
            yield stream
    except UnicodeDecodeError:
        decode_text(path.read_bytes(), path.name, encoding)
        raise


def cache_dir(name: str) -> Path | None:
    """~/.cache/newsletter/NAME (XDG_CACHE_HOME moves it), made on first use; None when it
    cannot be (a read-only home): the product then works without the cache."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsletter" / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder
