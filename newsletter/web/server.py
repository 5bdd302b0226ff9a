"""Running `newsletter serve`: uvicorn on a socket bound before it starts, so a busy port is
one line, not a stack trace."""

from __future__ import annotations

import socket
from collections.abc import Callable

from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.store import connect
from newsletter.web.app import create_app


def listen(host: str, port: int) -> socket.socket:
    """A bound socket for host:port, or one line saying the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"Cannot listen on {host}:{port} ({e.strerror}) - stop the other server "
                          "or choose another port with --port or [serve] port") from None
    return sock


def run(settings: Settings, announce: Callable[[str], None] = print) -> None:
    """Serve until interrupted (uvicorn; trusts X-Forwarded-For from 127.0.0.1 only)."""
    import uvicorn

    app = create_app(settings)
    connect(settings).close()  # refuse a missing database before the first request
    host, port = settings.serve.host, settings.serve.port
    sock = listen(host, port)
    server = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", server_header=False)
    announce(f"Serving on http://{host}:{port} - stop with Ctrl+C")
    uvicorn.Server(server).run(sockets=[sock])
