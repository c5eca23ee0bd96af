"""The local control API: HTTP on 127.0.0.1, a bearer token, JSON (specs/control.md).

The daemon writes ``HOME/control.json`` (mode 0600) with the URL and token when it is ready and
removes it when it stops; the CLI reads it to find and authenticate to the running node.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

CONTROL_FILE = "control.json"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def write_control_file(home: Path, url: str, token: str, pid: int) -> None:
    path = Path(home) / CONTROL_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "token": token, "pid": pid}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_control_file(home: Path) -> dict[str, Any] | None:
    """The running daemon's endpoint, or None if no daemon runs for this home."""
    try:
        info = json.loads((Path(home) / CONTROL_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(int(info["pid"]), 0)
    except (ProcessLookupError, KeyError, ValueError, TypeError):
        return None  # stale file from a daemon that died (kill -9)
    except PermissionError:
        pass
    return info


def remove_control_file(home: Path) -> None:
    try:
        (Path(home) / CONTROL_FILE).unlink()
    except FileNotFoundError:
        pass


def make_app(node: Any, token: str) -> Any:
    """The Starlette app exposing ``node`` (a node.daemon.Node)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from protocol.errors import ProtocolError

    from .errors import NodeError

    expected = f"Bearer {token}".encode()

    async def endpoint(request: Request) -> JSONResponse:
        if not secrets.compare_digest(request.headers.get("authorization", "").encode(),
                                      expected):
            return JSONResponse({"error": "missing or wrong control token"}, status_code=401)
        name = request.path_params["name"]
        handler = getattr(node, f"api_{name.replace('-', '_')}", None)
        if handler is None:
            return JSONResponse({"error": f"no such call {name!r}"}, status_code=404)
        try:
            args = await request.json() if request.method == "POST" else {}
            if not isinstance(args, dict):
                raise NodeError("the request body must be a JSON object")
            return JSONResponse(await handler(**args))
        except (NodeError, ProtocolError, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return Starlette(routes=[Route("/v1/{name}", endpoint, methods=["GET", "POST"])])


async def serve(app: Any, bind: str, *, task_status: Any) -> None:
    """Serve the control API; ``task_status.started([url])`` once listening."""
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    config = Config()
    config.bind = [bind]
    config.accesslog = None
    config.errorlog = None  # our own log says what matters
    config.graceful_timeout = 1.0
    await hypercorn_serve(app, config, task_status=task_status)
