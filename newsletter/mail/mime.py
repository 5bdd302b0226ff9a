"""Byte-exact MIME pieces, written by hand where the stdlib gets them wrong.

- Quoted-printable with CRLF and lines of at most 76 characters (cpython #78206 writes 78).
- RFC 2047 encoded words that are never empty, never adjacent without folding whitespace
  and never longer than 75 characters (cpython #136052, #144156).
- Header lines that are never folded into encoded words where a URL must stay readable
  (List-Unsubscribe, cpython #85725).
"""

from __future__ import annotations

import binascii
import re

CRLF = b"\r\n"
QP_WIDTH = 76
HEADER_WIDTH = 78

# Byte -> its QP form inside a line. Printable ASCII except '=' stays literal.
_QP = [f"={b:02X}" for b in range(256)]
for _b in range(33, 127):
    if _b != ord("="):
        _QP[_b] = chr(_b)
_QP[ord(" ")] = " "
_QP[ord("\t")] = "\t"


def qp_encode(text: str) -> bytes:
    """Quoted-printable body text: CRLF line ends, no line over 76 characters, and no line
    that starts with '.' or 'From ' (the body goes on the wire without dot-stuffing).

    The result has no terminator after its last line, so encoded pieces can be joined
    with soft line breaks (`=\\r\\n`) and decode to the concatenated text. binascii encodes
    each line in C; the rare line it would start with '.' or 'From ' is encoded by hand.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return CRLF.join(_fast_line(line) for line in lines)


def _fast_line(line: str) -> bytes:
    encoded = binascii.b2a_qp(line.encode("utf-8"), quotetabs=False, istext=True, header=False)
    if b"\n." in encoded or b"\nFrom " in encoded or encoded[:1] == b"." or encoded[:5] == b"From ":
        return CRLF.join(_safe_start(physical) for physical in encoded.split(b"\n"))
    return encoded.replace(b"\n", CRLF)


def _safe_start(physical: bytes) -> bytes:
    """An encoded line that starts with '.' or 'From ', encoded again by hand (it may become
    two lines); any other line as it is."""
    if physical[:1] != b"." and physical[:5] != b"From ":
        return physical
    soft = physical.endswith(b"=")
    fixed = _qp_line(binascii.a2b_qp(physical[:-1] if soft else physical))
    return fixed + b"=" if soft else fixed


def _qp_line(data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    tokens = [_QP[b] for b in data]
    if tokens and tokens[-1] in (" ", "\t"):
        tokens[-1] = f"={data[-1]:02X}"  # trailing whitespace would be stripped in transit
    if data[:1] == b"." or data[:5] == b"From ":
        tokens[0] = f"={data[0]:02X}"  # no lone '.' lines, no 'From ' mangling
    out: list[str] = []
    current: list[str] = []
    width = 0
    for i, token in enumerate(tokens):
        if width + len(token) > QP_WIDTH - 1:  # room for the soft-break '='
            out.append("".join(current) + "=")
            current, width = [], 0
        if not current and (token == "." or (token == "F" and data[i:i + 5] == b"From ")):
            token = f"={data[i]:02X}"  # also after a soft break: no '.' or 'From ' line starts
            if width + len(token) > QP_WIDTH - 1:
                out.append("=")
        current.append(token)
        width += len(token)
    out.append("".join(current))
    return "\r\n".join(out).encode("ascii")


def join_qp(pieces: list[bytes]) -> bytes:
    """Join separately encoded QP pieces with soft line breaks (invisible when decoded)."""
    return b"=\r\n".join([_room_for_soft_break(p) for p in pieces[:-1]] + pieces[-1:])


def _room_for_soft_break(piece: bytes) -> bytes:
    """`piece` with its last line short enough to take the joining '=' (at most 75 characters),
    broken before an escape sequence rather than inside one."""
    start = piece.rfind(CRLF) + 2 if CRLF in piece else 0
    last = piece[start:]
    if len(last) < QP_WIDTH:
        return piece
    cut = QP_WIDTH - 1
    if last[cut - 1:cut] == b"=":
        cut -= 1
    elif last[cut - 2:cut - 1] == b"=":
        cut -= 2
    return piece[:start] + last[:cut] + b"=" + CRLF + _safe_start(last[cut:])


# --- headers ---------------------------------------------------------------------------------

_PHRASE_SAFE = re.compile(r"[A-Za-z0-9!*+\-/]")
_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*$")


def check_header_value(name: str, value: str) -> str:
    """Refuse CR, LF and other control characters in anything that becomes a header."""
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError(f"{name} contains a line break or control character")
    return value


def encoded_words(text: str, first_room: int) -> list[str]:
    """`text` as Q encoded words of at most 75 characters; the first fits in `first_room`."""
    words, current, room = [], "", max(first_room, 20) - 12
    for ch in text:
        if ch == " ":
            enc = "_"
        elif _PHRASE_SAFE.match(ch):
            enc = ch
        else:
            enc = "".join(f"={b:02X}" for b in ch.encode("utf-8"))
        if current and len(current) + len(enc) > room:
            words.append(f"=?utf-8?q?{current}?=")
            current, room = "", 75 - 12
        current += enc
    if current:
        words.append(f"=?utf-8?q?{current}?=")
    return words


def header(name: str, value: str) -> bytes:
    """One unstructured header line (Subject): plain and folded at spaces if ASCII,
    otherwise encoded words, each on its own folded line."""
    check_header_value(name, value)
    prefix = f"{name}: "
    words = value.split(" ")
    plain = (value.isascii() and "=?" not in value and value == " ".join(value.split())
             and all(len(w) <= HEADER_WIDTH - len(prefix) for w in words))
    if plain:  # folding at single spaces round-trips; anything else goes into encoded words
        return _fold_words(prefix, words).encode("ascii") + CRLF
    words = encoded_words(value, HEADER_WIDTH - len(prefix))
    return (prefix + "\r\n ".join(words)).encode("ascii") + CRLF


def _fold_words(prefix: str, words: list[str]) -> str:
    lines, current = [], prefix.rstrip(" ")
    for word in words:
        candidate = f"{current} {word}"
        if len(candidate) > HEADER_WIDTH and current.strip() and current != prefix.rstrip(" "):
            lines.append(current)
            current = f" {word}"
        else:
            current = candidate
    lines.append(current)
    return "\r\n".join(lines)


def address(name: str, mailbox: str, header_name: str = "From") -> bytes:
    """A mailbox header with an optional display name, encoded only when it must be."""
    check_header_value(header_name, name)
    check_header_value(header_name, mailbox)
    prefix = f"{header_name}: "
    if not name:
        return f"{prefix}{mailbox}".encode("ascii") + CRLF
    if name.isascii():
        phrase = name if _ATOM.match(name) else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{prefix}{phrase} <{mailbox}>".encode("ascii") + CRLF
    words = encoded_words(name, HEADER_WIDTH - len(prefix))
    return (prefix + "\r\n ".join(words) + f"\r\n <{mailbox}>").encode("ascii") + CRLF


def raw_header(name: str, value: str) -> bytes:
    """A header written exactly as given (ASCII, no encoding, no folding)."""
    check_header_value(name, value)
    return f"{name}: {value}".encode("ascii") + CRLF
