"""The one exception type that means "the user's input is wrong"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """`text` with control characters (newlines in a file name, ...) escaped, so a message
    stays one line on the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def show(value: object, limit: int = 60) -> str:
    """repr(value) cut to `limit` characters, for error messages."""
    try:
        text = repr(value)
    except ValueError:  # an integer with thousands of digits
        return "(a huge number)"
    return text if len(text) <= limit else text[:limit - 3] + "..."


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line with exit code 2.

    The message names the file and/or key at fault and what is allowed.
    """

    def __str__(self) -> str:
        return one_line(super().__str__())


class ConfigError(UserError):
    """A bad preset value. `key` is the dotted key at fault (None: the preset as a whole), so
    the message can say where the value came from (the command line or the preset file)."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key


def os_reason(exc: BaseException) -> str:
    """One line for an OSError (file name and reason) or a MemoryError."""
    if isinstance(exc, MemoryError):
        return "out of memory; use a smaller size"
    assert isinstance(exc, OSError)
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


@contextmanager
def keyed(key: str, prefix: str = "") -> Iterator[None]:
    """A UserError raised in the block becomes a ConfigError on `key` (its message after
    `prefix`), so the CLI says where the value came from; a ConfigError passes as it is."""
    try:
        yield
    except ConfigError:
        raise
    except UserError as exc:
        raise ConfigError(key, f"{prefix}{exc}") from None
