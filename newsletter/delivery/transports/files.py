"""The file transport: each message as an .eml file, into a Maildir's new/ when the outbox is
one, else plainly into the folder. The demo and first trials send this way."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path

from newsletter import files
from newsletter.config import Settings
from newsletter.delivery.transports.base import Outcome, Result
from newsletter.errors import TransportError


class FileTransport:
    _counter = itertools.count(1)
    _lock = threading.Lock()

    def __init__(self, settings: Settings | None = None, folder: Path | None = None) -> None:
        if folder is None:
            if settings is None:
                raise TypeError("FileTransport needs settings or a folder")
            folder = settings.outbox
        self.folder = Path(folder)
        self.ready = False

    @property
    def is_open(self) -> bool:
        return self.ready

    def open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TransportError(f"Cannot create outbox {self.folder}: {e.strerror} - set [send] outbox") from None
        if not os.access(self.folder, os.W_OK):
            raise TransportError(f"Cannot write to outbox {self.folder} - check its permissions or set [send] outbox")
        self.ready = True

    def send(self, sender: str, recipient: str, data: bytes, before_data: Callable[[], None] | None = None) -> Result:
        if not self.ready:
            self.open()
        if before_data is not None:
            before_data()
        with self._lock:
            n = next(self._counter)
        maildir = all((self.folder / d).is_dir() for d in ("cur", "new", "tmp"))
        name = f"{os.getpid()}-{n:07d}-{_safe(recipient)}.eml"
        target = self.folder / "new" / name if maildir else self.folder / name
        try:
            files.atomic_write(target, data)
        except OSError as e:
            raise TransportError(f"Cannot write {target}: {e.strerror} - check the outbox folder") from None
        return Result(Outcome.SENT, 250, f"written to {target}")

    def close(self) -> None:
        pass


def _safe(address: str) -> str:
    return "".join(c if c.isalnum() or c in "@.-_" else "_" for c in address)[:80]
