"""Serve the teacher web library with hypercorn's trio worker (as node/control.py does).

At start, upload folders left by a killed process are removed (upload.clean_stale), and old
form drafts (staging.Drafts.clean).  The server's nursery also owns the preview worker
(preview.Previews.serve) and the operator pages' background USB jobs (:class:`.usb.Jobs`).
"""

from __future__ import annotations

from typing import Any

import trio

from .app import WebConfig, make_app
from .upload import clean_stale


async def serve(node: Any, bind: str, *, task_status: Any, config: WebConfig | None = None
                ) -> None:
    """Serve on ``bind`` (HOST:PORT); ``task_status.started("http://HOST:PORT")``."""
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    config = config or WebConfig.for_home(node.home.path)
    await trio.to_thread.run_sync(clean_stale, config.upload_dir)  # left by a killed process
    app = make_app(node, config)
    await trio.to_thread.run_sync(app.state.web.drafts.clean)
    hconfig = Config()
    hconfig.bind = [bind]
    hconfig.accesslog = None
    hconfig.errorlog = None
    hconfig.graceful_timeout = 1.0
    # Uploads are streamed to disk by the app with their own limit; let big bodies through.
    hconfig.h11_max_incomplete_size = 64 * 1024
    hconfig.keep_alive_timeout = 30

    class _Status:
        def started(self, urls: Any = None) -> None:
            task_status.started(urls[0] if isinstance(urls, list) and urls else urls)

    async with trio.open_nursery() as nursery:
        await nursery.start(app.state.web.previews.serve)   # one preview at a time
        await nursery.start(app.state.web.jobs.serve)       # the operator pages' USB jobs
        await hypercorn_serve(app, hconfig, task_status=_Status())
        nursery.cancel_scope.cancel()
