"""The SMTP transport on its own, against a scripted server on 127.0.0.1 that records every
write as it arrives: dot-stuffing, pipelining, one command at a time, and what an answer (or its
absence) means."""

from __future__ import annotations

import socket
import threading

import pytest

from newsletter.config import Settings, Smtp
from newsletter.delivery.transports import Outcome
from newsletter.delivery.transports.smtp import SmtpTransport, dot_stuff


class Scripted:
    """A one-connection SMTP server: greets, answers EHLO (with PIPELINING if told), then gives
    the replies of `script` in order as command lines arrive; records each chunk received."""

    def __init__(self, pipelining: bool, replies: dict[str, str] | None = None, stall_after_dot: bool = False) -> None:
        self.pipelining, self.replies, self.stall_after_dot = pipelining, replies or {}, stall_after_dot
        self.chunks: list[bytes] = []
        self.data = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(10)
        conn.sendall(b"220 test ESMTP\r\n")
        buffer, in_data = b"", False
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                self.chunks.append(chunk)
                buffer += chunk
                while True:
                    if in_data:
                        end = -2 if buffer.startswith(b".\r\n") else buffer.find(b"\r\n.\r\n")
                        if end == -1:
                            break
                        self.data, buffer, in_data = buffer[:end + 2], buffer[end + 5:], False
                        if self.stall_after_dot:
                            self.done.wait(10)
                            return
                        conn.sendall(self.replies.get("dot", "250 2.0.0 queued").encode() + b"\r\n")
                        continue
                    line, sep, rest = buffer.partition(b"\r\n")
                    if not sep:
                        break
                    buffer = rest
                    verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper().decode()
                    if verb == "EHLO":
                        conn.sendall(b"250-test\r\n" + (b"250-PIPELINING\r\n" if self.pipelining else b"") + b"250 8BITMIME\r\n")
                    elif verb == "QUIT":
                        conn.sendall(b"221 bye\r\n")
                        return
                    elif verb == "RSET":
                        conn.sendall(b"250 ok\r\n")
                    else:
                        reply = self.replies.get(verb, {"MAIL": "250 ok", "RCPT": "250 ok", "DATA": "354 go"}.get(verb, "250 ok"))
                        conn.sendall(reply.encode() + b"\r\n")
                        if verb == "DATA" and reply.startswith("354"):
                            in_data = True
        finally:
            conn.close()

    def close(self) -> None:
        self.done.set()
        self.sock.close()


def transport(port: int, timeout: float = 5) -> SmtpTransport:
    settings = Settings(db_path=None, config_path=None, publication=None, impressum=None, compose=None,
                        smtp=Smtp(host="127.0.0.1", port=port, security="none", timeout=timeout, helo="test.local"))
    return SmtpTransport(settings)


@pytest.fixture(params=[True, False], ids=["pipelining", "one-at-a-time"])
def server(request):
    s = Scripted(pipelining=request.param)
    yield s
    s.close()


def send(server: Scripted, data: bytes, before_data=None):
    t = transport(server.port)
    try:
        return t.send("nl@example.de", "leser@example.org", data, before_data)
    finally:
        t.close()


def test_lines_that_start_with_a_dot_are_stuffed_on_the_wire(server):
    message = b"Subject: x\r\n\r\n.one dot\r\n..two dots\r\n.\r\nend"
    result = send(server, message)
    assert result.outcome is Outcome.SENT
    assert server.data == b"Subject: x\r\n\r\n..one dot\r\n...two dots\r\n..\r\nend\r\n"
    assert dot_stuff(b".a\nb\r.c") == b"..a\r\nb\r\n..c\r\n"  # bare line ends become CRLF too


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-at-a-time"])
def test_the_mark_is_made_after_the_commands_and_before_the_message(pipelining):
    """Every write the transport makes, in order, with the moment `before_data` ran: the mark
    overlaps the server's answer to the commands (all three pipelined, else MAIL FROM) and comes
    before any byte of the message."""
    server = Scripted(pipelining=pipelining)
    t = transport(server.port)
    writes: list[bytes | str] = []
    try:
        t.open()
        session = t.session
        assert session is not None
        wire = session.send
        session.send = lambda data: (writes.append(data if isinstance(data, bytes) else data.encode()), wire(data))[1]
        result = t.send("nl@example.de", "leser@example.org", b"Subject: x\r\n\r\nHallo\r\n", lambda: writes.append("mark"))
    finally:
        t.close()
        server.close()
    assert result.outcome is Outcome.SENT and writes.count("mark") == 1
    mark = writes.index("mark")
    before, after = b"".join(w for w in writes[:mark] if isinstance(w, bytes)), b"".join(w for w in writes[mark + 1:] if isinstance(w, bytes))
    assert before.startswith(b"MAIL FROM:<nl@example.de>\r\n") and b"Hallo" not in before
    assert before.endswith(b"DATA\r\n" if pipelining else b"MAIL FROM:<nl@example.de>\r\n")
    assert b"Subject: x" not in before and b"Subject: x\r\n\r\nHallo\r\n.\r\n" in after
    if pipelining:
        envelope = next(c for c in server.chunks if c.startswith(b"MAIL FROM:"))
        assert envelope == b"MAIL FROM:<nl@example.de>\r\nRCPT TO:<leser@example.org>\r\nDATA\r\n"


def test_without_pipelining_one_command_at_a_time():
    server = Scripted(pipelining=False)
    try:
        assert send(server, b"Subject: x\r\n\r\nHallo\r\n").outcome is Outcome.SENT
    finally:
        server.close()
    commands = [c for c in server.chunks if c[:4] in (b"MAIL", b"RCPT", b"DATA")]
    assert commands == [b"MAIL FROM:<nl@example.de>\r\n", b"RCPT TO:<leser@example.org>\r\n", b"DATA\r\n"]


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_recipient_sends_no_message(pipelining):
    server = Scripted(pipelining=pipelining, replies={"RCPT": "550 5.1.1 no such user", "DATA": "554 no valid recipients"})
    try:
        result = send(server, b"Subject: x\r\n\r\nHallo\r\n")
    finally:
        server.close()
    assert (result.outcome, result.code) == (Outcome.DEAD, 550) and server.data == b""


def test_a_server_that_opens_data_despite_a_refused_recipient_gets_an_empty_message():
    server = Scripted(pipelining=True, replies={"RCPT": "450 4.2.0 try later"})
    try:
        result = send(server, b"Subject: x\r\n\r\nHallo\r\n")
    finally:
        server.close()
    assert (result.outcome, result.code) == (Outcome.RETRY, 450) and server.data == b""


def test_no_answer_to_the_final_dot_is_unconfirmed_and_stalled():
    server = Scripted(pipelining=True, stall_after_dot=True)
    t = transport(server.port, timeout=1)
    try:
        result = t.send("nl@example.de", "leser@example.org", b"Subject: x\r\n\r\nHallo\r\n")
    finally:
        t.close()
        server.close()
    assert result.outcome is Outcome.UNCONFIRMED and result.stalled and "no answer within 1 s" in result.text
