"""Drafts of the publish and edit forms: files a teacher already sent survive a form error, and
a form is published at most once.

Every publish/edit form carries a random draft token (in its action URL).  The first POST with
a token makes the draft: ``HOME/web-drafts/<token>/`` with ``draft.json`` (owner, target,
files kept from a resource, form values, last error, result) and ``files/`` (the uploads
staged so far).  A form error keeps the draft, so the page shows the files already sent (and
those taken from the original when adapting or editing) with a box to leave each out; the
teacher fixes the form and sends only what is new.  A POST whose draft is already published
(a second click, a reload) is answered with the resource it made, never a second publish.
Drafts older than :data:`MAX_AGE_SECONDS` are removed when the web library starts and when a
new draft is made.  Nothing here is signed: a draft is this node's working data only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from crypto import cid_from_str, cid_to_str
from protocol import unixfs

MAX_AGE_SECONDS = 2 * 86400
TOKEN = re.compile(r"[0-9a-f]{32}")
STATE = "draft.json"


def new_token() -> str:
    return secrets.token_hex(16)


def valid_token(token: str | None) -> bool:
    return token is not None and TOKEN.fullmatch(token) is not None


class Draft:
    """One draft folder; ``state`` is saved by :meth:`save` (atomic replace)."""

    def __init__(self, folder: Path, state: dict[str, Any]) -> None:
        self.folder, self.state = folder, state

    @property
    def files_dir(self) -> Path:
        return self.folder / "files"

    @property
    def done(self) -> str | None:
        return self.state.get("done")

    def kept_links(self) -> dict[str, unixfs.DagLink]:
        return {p: unixfs.DagLink(cid_from_str(c), size, tsize)
                for p, (c, size, tsize) in self.state["kept"].items()}

    def files(self) -> list[dict[str, Any]]:
        """What the draft holds, for the form: kept files first, then staged uploads."""
        out = [{"path": p, "size": size, "kept": True}
               for p, (_, size, _) in sorted(self.state["kept"].items())]
        for p in sorted(self.state["staged"]):
            try:
                size = (self.files_dir / p).stat().st_size
            except OSError:
                continue
            out.append({"path": p, "size": size, "kept": False})
        return out

    def keep_only(self, paths: list[str]) -> None:
        """Leave out every file whose box was unticked (its path is not in ``paths``)."""
        wanted = set(paths)
        self.state["kept"] = {p: v for p, v in self.state["kept"].items() if p in wanted}
        for p in [p for p in self.state["staged"] if p not in wanted]:
            (self.files_dir / p).unlink(missing_ok=True)
            self.state["staged"].remove(p)
        for d, _, _ in sorted(os.walk(self.files_dir), reverse=True):   # deepest first
            if Path(d) != self.files_dir and not os.listdir(d):
                os.rmdir(d)

    def take(self, incoming: Path, paths: list[str]) -> None:
        """Move freshly received uploads (``incoming/<path>``) into the draft; one with the
        path of a kept or staged file replaces it."""
        self.save()
        for p in paths:
            dest = self.files_dir / p
            try:
                dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                if dest.is_dir():
                    raise IsADirectoryError
                os.replace(incoming / p, dest)
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                raise NotADirectoryError(f"{p}: a file and a folder of the same name") from None
            self.state["kept"].pop(p, None)
            if p not in self.state["staged"]:
                self.state["staged"].append(p)

    def has_files(self) -> bool:
        return bool(self.state["kept"] or self.state["staged"])

    def save(self) -> None:
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self.files_dir.mkdir(mode=0o700, exist_ok=True)
        tmp = self.folder / (STATE + ".tmp")
        tmp.write_text(json.dumps(self.state, ensure_ascii=False), "utf-8")
        os.replace(tmp, self.folder / STATE)

    def finish(self, rid: str) -> None:
        """Published as ``rid``: the staged copies go (the blocks hold the files now); the
        token is remembered so that the same form sent again gets ``rid`` back."""
        shutil.rmtree(self.files_dir, ignore_errors=True)
        self.state.update(done=rid, staged=[], kept={}, values={}, error=None)
        self.save()


class Drafts:
    """The drafts of one node (``HOME/web-drafts``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def load(self, token: str, teacher: str) -> Draft | None:
        """The draft of ``token`` if it exists and is ``teacher``'s."""
        if not valid_token(token):
            return None
        folder = self.root / token
        try:
            state = json.loads((folder / STATE).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if state.get("teacher") != teacher:
            return None
        return Draft(folder, state)

    def taken(self, token: str) -> bool:
        return (self.root / token).exists()

    def create(self, token: str, teacher: str, *, target: str | None = None,
               kept: dict[str, unixfs.DagLink] | None = None) -> Draft:
        """A new draft in memory; its folder is made at its first :meth:`Draft.save`."""
        self.clean()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        state = {"teacher": teacher, "created": time.time(), "target": target,
                 "kept": {p: [cid_to_str(link.cid), link.content_size, link.dag_size]
                          for p, link in (kept or {}).items()},
                 "staged": [], "values": {}, "error": None, "detail": "", "done": None}
        return Draft(self.root / token, state)

    def clean(self, max_age: float = MAX_AGE_SECONDS) -> int:
        """Remove drafts older than ``max_age`` seconds; how many."""
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return 0
        n = 0
        cutoff = time.time() - max_age
        for p in entries:
            try:
                old = p.stat().st_mtime < cutoff
            except OSError:
                continue
            if old:
                shutil.rmtree(p, ignore_errors=True)
                n += 1
        return n
