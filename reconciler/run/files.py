"""run.files: writing a local file whole or not at all — temp file, fsync, rename into place.

Every file the reconciler writes outside its SQLite ledgers (``plan --out`` files, usage
exports, anchor checkpoints, key files) goes through ``write_atomic``: the bytes go to a
temporary file beside the target, are fsynced, and the temporary file is renamed over the
target (``os.replace``), then the folder is fsynced so the rename is durable too. A full
disk, a quota or a file-size limit midway leaves the target as it was and no temporary file
behind, and is one ``NoSpaceError``; any other refusal one ``UserError`` naming the file
(``core.errors.write_refused``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from reconciler.core.errors import write_refused


def write_atomic(
    path: Path, data: bytes | str, *, mode: int = 0o644, what: str = "", exclusive: bool = False
) -> None:
    """Write ``data`` to ``path`` whole or not at all (see the module docstring).

    ``exclusive``: the target is linked into place only if it does not exist yet (a key made on
    first use: whoever made it first wins, and the caller reads theirs); nothing is raised then.
    """
    blob = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
        try:
            view = memoryview(blob)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            with contextlib.suppress(FileExistsError):  # another process made it first: theirs stands
                os.link(tmp, path)
        else:
            os.replace(tmp, path)
        _sync_folder(path.parent)
    except OSError as exc:
        raise write_refused(path, exc, what) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename in it survives a crash (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder; the rename itself is done
        pass
    finally:
        os.close(fd)
