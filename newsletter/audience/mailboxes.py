"""Read mail from where it lands: an mbox file, a Maildir, a single .eml file or an IMAP folder.

Every source yields `Mail` objects (the raw bytes and a `source` label that says where the mail
is: "bounces.mbox message 3 (line 120)", a Maildir file's path, "imaps://user@host/INBOX UID 42"),
and never changes what it reads: mbox and Maildir files are opened read-only, IMAP folders are
selected read-only and fetched with BODY.PEEK, so no mail is moved, flagged or deleted. Callers
make a second run harmless themselves (`bounces` remembers what it has recorded).

    open_path(path) | open_imap(address, password)  →  Source  →  Mail, Mail, ...

A path or server that cannot be used at all raises InputError (one line, with the fix) before
the first mail is read; a single Maildir file that cannot be read is passed on as a Mail with
`error` set, so the caller reports it and goes on.
"""

from __future__ import annotations

import imaplib
import os
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from newsletter import config
from newsletter.errors import ConfigError, InputError

IMAP_PASSWORD_ENV = "NEWSLETTER_IMAP_PASSWORD"
IMAP_PORT = 993
IMAP_TIMEOUT = 30.0
FETCH_BATCH = 50
# A header line ("Name: value"); the first line of a mail file must be one.
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
_FETCH_UID = re.compile(rb"\bUID (\d+)\b")
KINDS_HINT = "give an mbox file, a Maildir folder (with cur/ and new/) or a single .eml file"


@dataclass(frozen=True)
class Mail:
    raw: bytes
    source: str                 # where the mail is, for reports
    error: str | None = None    # set when the mail could not be read; raw is then empty


class Source:
    """An open mail source: iterate it for Mail objects, close it when done."""

    def __iter__(self) -> Iterator[Mail]:
        raise NotImplementedError

    def close(self) -> None:
        """Release files or connections (nothing to do for most sources)."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- files ---------------------------------------------------------------------------------

def open_path(path: Path | str) -> Source:
    """The mbox, Maildir or .eml at `path`, recognised by its content (not its name)."""
    path = Path(path)
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            return MaildirSource(path)
        raise InputError(f"{path} is a folder but not a Maildir (it has no cur/ and new/ folders) - {KINDS_HINT}")
    try:
        with open(path, "rb") as f:
            first = f.readline(1000)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist - {KINDS_HINT}") from None
    except OSError as e:
        raise InputError(f"Cannot read {path}: {e.strerror} - check the path and its permissions") from None
    if not first or first.startswith(b"From "):
        return MboxSource(path)  # an empty file is an mbox whose mails were all taken out
    if _HEADER_LINE.match(first):
        return EmlSource(path)
    raise InputError(f"{path} is neither an mbox (first line 'From ...') nor a mail file (first line a header) - {KINDS_HINT}")


class EmlSource(Source):
    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[Mail]:
        yield Mail(_read(self.path), str(self.path))


class MboxSource(Source):
    """An mbox: each mail starts with a 'From ' line at the top or after an empty line.

    Requiring the empty line (which every mbox writer puts between mails) keeps an unescaped
    'From ' at the start of a body line inside its mail. The separator line and the empty line
    before it are not part of the mail; '>From ' escapes are left as they are.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[Mail]:
        try:
            with open(self.path, "rb") as f:
                yield from self._split(f)
        except OSError as e:
            raise InputError(f"Cannot read {self.path}: {e.strerror} - check the file and its permissions") from None

    def _split(self, lines) -> Iterator[Mail]:
        number, start, previous_blank = 0, 0, True
        mail: list[bytes] | None = None
        for line_no, line in enumerate(lines, start=1):
            if previous_blank and line.startswith(b"From "):
                if mail is not None:
                    yield self._mail(mail, number, start)
                number, start, mail = number + 1, line_no, []
            elif mail is not None:
                mail.append(line)
            previous_blank = line in (b"\n", b"\r\n")
        if mail is not None:
            yield self._mail(mail, number, start)

    def _mail(self, lines: list[bytes], number: int, line_no: int) -> Mail:
        if lines and lines[-1] in (b"\n", b"\r\n"):
            lines = lines[:-1]  # the empty line before the next 'From ' separates, it is not content
        return Mail(b"".join(lines), f"{self.path} message {number} (line {line_no})")


class MaildirSource(Source):
    """A Maildir: new/ first, then cur/, each in name order (names begin with the arrival time).

    A mail client may move a file from new/ to cur/ while we read: reading new/ before
    listing cur/ means such a file is found in one of them (possibly both, which callers
    must tolerate anyway).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[Mail]:
        for sub in ("new", "cur"):
            try:
                names = sorted(n for n in os.listdir(self.path / sub) if not n.startswith("."))
            except OSError as e:
                raise InputError(f"Cannot list {self.path / sub}: {e.strerror} - check the folder's permissions") from None
            for name in names:
                file = self.path / sub / name
                try:
                    yield Mail(file.read_bytes(), str(file))
                except FileNotFoundError:
                    continue  # moved to cur/ (read there) or deleted meanwhile
                except OSError as e:
                    yield Mail(b"", str(file), error=f"cannot be read: {e.strerror}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"Cannot read {path}: {e.strerror} - check the path and its permissions") from None


# --- IMAP ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImapAddress:
    host: str
    user: str
    folder: str = "INBOX"
    port: int = IMAP_PORT

    def __str__(self) -> str:
        port = "" if self.port == IMAP_PORT else f":{self.port}"
        return f"imaps://{quote(self.user, safe='')}@{self.host}{port}/{self.folder}"


def imap_address(spec: str, user: str | None = None, folder: str | None = None) -> ImapAddress:
    """Read `imaps://user@host[:port]/FOLDER` or a plain `host[:port]`; `user`/`folder` win.

    A user name with an @ is written %40 in the URL, or given with `user`. Passwords never go
    into the URL (they would show in the process list and in cron mails).
    """
    text = spec.strip()
    if "://" not in text:
        text = "imaps://" + text
    parts = urlsplit(text)
    if parts.scheme.lower() != "imaps":
        raise InputError(f"{spec}: only imaps:// (IMAP over TLS, port {IMAP_PORT}) is supported - "
                         "write imaps://user@host/INBOX")
    if parts.password:
        raise InputError(f"The IMAP URL contains a password - remove it and set {IMAP_PASSWORD_ENV} instead")
    try:
        port = parts.port or IMAP_PORT
    except ValueError:
        raise InputError(f"{spec}: the port is not a number - write imaps://user@host:993/INBOX") from None
    user = user or unquote(parts.username or "")
    folder = folder or unquote(parts.path.lstrip("/")) or "INBOX"
    if not parts.hostname:
        raise InputError(f"{spec}: no host - write imaps://user@host/INBOX")
    if not user:
        raise InputError(f"{spec}: no user name - write imaps://user@host/INBOX or pass --imap-user")
    return ImapAddress(parts.hostname, user, folder, port)


def imap_password() -> str:
    password = config.secret("imap_password")
    if not password:
        raise ConfigError(f"{IMAP_PASSWORD_ENV} is not set - set it to the mailbox's password")
    return password


def open_imap(address: ImapAddress, password: str, timeout: float = IMAP_TIMEOUT) -> Source:
    """Log in over TLS (certificate checked) and select the folder read-only."""
    return ImapSource(address, password, timeout)


class ImapSource(Source):
    def __init__(self, address: ImapAddress, password: str, timeout: float) -> None:
        self.address, self.label = address, str(address)  # names each Mail's source
        self.imap = self._connect(password, timeout)
        try:
            self._select()
        except BaseException:
            self.close()
            raise

    def _connect(self, password: str, timeout: float) -> imaplib.IMAP4_SSL:
        a = self.address
        where = f"{a.host}:{a.port}"
        try:
            conn = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=ssl.create_default_context(), timeout=timeout)
        except ssl.SSLCertVerificationError as e:
            raise InputError(f"The certificate of IMAP server {where} cannot be verified ({e.verify_message}) - "
                             "fix the server's certificate, or set SSL_CERT_FILE to its CA bundle") from None
        except (ssl.SSLError, imaplib.IMAP4.error) as e:
            raise InputError(f"TLS with IMAP server {where} failed ({e}) - check that the port speaks IMAP over "
                             "TLS (993)") from None
        except socket.gaierror:
            raise InputError(f"IMAP server {a.host} not found - check the host name") from None
        except TimeoutError:
            raise InputError(f"IMAP server {where} did not answer within {timeout:.0f} s - check host, port and "
                             "firewall") from None
        except OSError as e:
            raise InputError(f"Cannot connect to IMAP server {where}: {e.strerror or e} - check host, port and "
                             "that the server runs") from None
        try:
            conn.login(a.user, password)
        except imaplib.IMAP4.error as e:
            _logout(conn)
            raise InputError(f"IMAP login as {a.user} at {a.host} failed ({_text(e)}) - check the user and "
                             f"{IMAP_PASSWORD_ENV}") from None
        except OSError as e:
            raise InputError(f"IMAP server {where} closed the connection during login ({e}) - try again later") from None
        return conn

    def _select(self) -> None:
        try:
            typ, data = self.imap.select(_quote(self.address.folder), readonly=True)
        except (imaplib.IMAP4.error, OSError) as e:
            typ, data = "NO", [str(e).encode()]
        if typ != "OK":
            raise InputError(f"IMAP folder {self.address.folder!r} cannot be opened on {self.address.host} "
                             f"({_text(data)}) - check the folder name (e.g. INBOX)")

    def __iter__(self) -> Iterator[Mail]:
        try:
            uids = self._search()
            for i in range(0, len(uids), FETCH_BATCH):
                yield from self._fetch(uids[i:i + FETCH_BATCH])
        except (imaplib.IMAP4.error, OSError) as e:
            raise InputError(f"Reading {self.label} failed ({_text(e)}) - run the import again; "
                             "mails already imported are skipped") from None

    def _search(self) -> list[bytes]:
        typ, data = self.imap.uid("SEARCH", "ALL")
        if typ != "OK":
            raise imaplib.IMAP4.error(_text(data))
        return data[0].split() if data and data[0] else []

    def _fetch(self, uids: list[bytes]) -> Iterator[Mail]:
        typ, data = self.imap.uid("FETCH", b",".join(uids).decode(), "(UID BODY.PEEK[])")
        if typ != "OK":
            raise imaplib.IMAP4.error(_text(data))
        for item in data:
            if isinstance(item, tuple):  # (b'7 (UID 42 BODY[] {1234}', raw bytes)
                uid = _FETCH_UID.search(item[0])
                yield Mail(item[1], f"{self.label} UID {uid.group(1).decode() if uid else '?'}")

    def close(self) -> None:
        _logout(self.imap)


def _logout(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (imaplib.IMAP4.error, OSError):
        pass  # closing a connection that already broke


def _quote(folder: str) -> str:
    """An IMAP astring: quoted when the name has spaces or specials."""
    if re.fullmatch(r"[A-Za-z0-9._/&+-]+", folder):
        return folder
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value) -> str:
    """An imaplib error or response as one short line of text."""
    if isinstance(value, BaseException) and value.args:
        value = value.args[0]
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())[:200]
