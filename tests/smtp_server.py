"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 with injectable faults.

The server advertises PIPELINING unless told not to, so both ways the client can talk
are exercised. Faults are per recipient: a list of replies given one per attempt at RCPT or DATA
("451 4.3.0 Try again later", "550 5.1.1 User unknown"), "drop" to cut the connection (at RCPT:
before the message; at DATA: after its final dot, without an answer), "stall" to answer only after
`stall` seconds (at DATA the message is kept: it arrived, but the client heard nothing in time),
and a delay per message for slow servers. Run as a script it serves until
killed (used by the crash test, so the server outlives the killed client).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler:
    def __init__(self, log: Path | None = None, *, pipelining: bool = True) -> None:
        self.pipelining = pipelining
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.rcpt_faults: dict[str, list[str]] = defaultdict(list)
        self.data_faults: dict[str, list[str]] = defaultdict(list)
        self.delay = 0.0
        self.stall = 5.0
        self.log = log
        self.lock = threading.Lock()
        self.helo: list[str] = []   # the name each connection's EHLO gave
        self.arrived: dict[str, int] = defaultdict(int)  # whole messages (final dot seen) per recipient, faults or not
        # Overlap: `in_data` sessions are in DATA now, `peak` at most at once. With `gate` set,
        # each DATA waits (at most gate_timeout seconds, once) until that many are in DATA together,
        # so a client's parallel connections show up in `peak` however fast the server is.
        self.in_data = 0
        self.peak = 0
        self.gate = 0
        self.gate_timeout = 10.0
        self._gate_open: asyncio.Event | None = None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not self.helo or self.helo[-1] != hostname:
            self.helo.append(hostname)
        if self.pipelining:  # aiosmtpd reads commands in order, so it can take pipelined ones
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        faults = self.rcpt_faults.get(address)
        if faults:
            fault = faults.pop(0)
            if fault == "drop":
                server.transport.close()
                return "421 4.4.2 dropped"
            if fault == "stall":
                await asyncio.sleep(self.stall)
                return "451 4.4.2 too late"
            return fault
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.in_data += 1  # the handlers all run on the server's one event loop
        self.peak = max(self.peak, self.in_data)
        try:
            await self._wait_at_gate()
            return await self._data(server, envelope)
        finally:
            self.in_data -= 1

    async def _wait_at_gate(self) -> None:
        if not self.gate:
            return
        if self._gate_open is None:
            self._gate_open = asyncio.Event()
        if self.in_data >= self.gate:
            self._gate_open.set()
        try:
            await asyncio.wait_for(self._gate_open.wait(), self.gate_timeout)
        except TimeoutError:
            self._gate_open.set()  # fewer came: stop holding anyone (the test sees it in `peak`)

    async def _data(self, server, envelope):
        rcpt = envelope.rcpt_tos[0]
        self.arrived[rcpt] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        faults = self.data_faults.get(rcpt)
        if faults:
            fault = faults.pop(0)
            if fault == "drop":
                server.transport.close()
                return "421 4.4.2 dropped"
            if fault == "stall":
                await asyncio.sleep(self.stall)
            else:
                return fault
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            if self.log:
                with open(self.log, "a") as f:
                    f.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos}) + "\n")
        return "250 2.0.0 queued"

    def received_by(self, address: str) -> list[bytes]:
        return [data for _, rcpts, data in self.messages if address in rcpts]


def authenticator(user: str, password: str):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)
    return check


def self_signed(folder: Path, names: str = "IP:127.0.0.1,DNS:localhost") -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", f"subjectAltName={names}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


class Server:
    """Started/stopped by the pytest fixture; `handler` holds messages and faults."""

    def __init__(self, handler: Handler, *, tls_cert: tuple[Path, Path] | None = None,
                 auth: tuple[str, str] | None = None) -> None:
        self.handler = handler
        self.port = free_port()
        kwargs = {}
        if tls_cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls_cert[0]), str(tls_cert[1]))
            kwargs.update(tls_context=context, require_starttls=True)
        if auth:
            kwargs.update(authenticator=authenticator(*auth), auth_require_tls=False)
        self.controller = Controller(handler, hostname="127.0.0.1", port=self.port, decode_data=False,
                                     ready_timeout=10, **kwargs)

    def start(self) -> Server:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


if __name__ == "__main__":  # python smtp_server.py PORTFILE LOGFILE DELAY
    handler = Handler(Path(sys.argv[2]))
    handler.delay = float(sys.argv[3])
    server = Server(handler).start()
    Path(sys.argv[1]).write_text(str(server.port))
    threading.Event().wait()
