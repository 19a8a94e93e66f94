"""One render per output at a time: an advisory lock beside each output, held for the whole
render. The kernel drops it when the process dies (even by SIGKILL), so it never goes stale;
the leftovers of a killed render (hidden partial files) are removed once the lock is held."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from render.errors import UserError


def lock_path(output: Path) -> Path:
    """`out/zoom.mp4` -> `out/.zoom.mp4.lock`."""
    return output.with_name(f".{output.name}.lock")


def _acquire(output: Path) -> int:
    """Lock `output`'s lock file; the descriptor that holds it. Retries when a finishing
    render removed the file between our open and our lock (we would hold a dead inode)."""
    path = lock_path(output)
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"output {output}: cannot write in {path.parent} "
                            f"({exc.strerror})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"output {output}: another render is writing it right now; wait "
                            "for it to finish or choose another output") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def remove_leftovers(output: Path) -> None:
    """Hidden partial files a killed render left beside `output` (encoder and sidecar temps)."""
    patterns = (f".{output.stem}.part-*{output.suffix}", f".{output.name}.json.*.part")
    for pattern in patterns:
        for stale in output.parent.glob(pattern):
            stale.unlink(missing_ok=True)


@contextmanager
def output_lock(outputs: Sequence[Path]) -> Iterator[None]:
    """Hold the lock of every output for the duration of the block, or refuse at once."""
    with ExitStack() as stack:
        for output in sorted(set(outputs)):
            fd = _acquire(output)
            stack.callback(os.close, fd)
            stack.callback(lock_path(output).unlink, missing_ok=True)
            remove_leftovers(output)
        yield
