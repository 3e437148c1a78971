"""The package's bindings: errors, the standard-error capture around the embedded command,
id maps, and the C objects' lifetimes. Everything here calls libfedrec (fedrec._fedrec);
nothing is reimplemented."""
from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
from typing import Any, Optional

import numpy as np

from ._fedrec import ffi, lib

log = logging.getLogger("fedrec")

#: Serialises the embedded command (one run or load at a time in a process: it keeps the
#: data it splits in a static, and standard error is captured per call).
_cli_lock = threading.Lock()


class FedrecError(Exception):
    """A libfedrec failure. ``str(err)`` is the library's message (fr_errmsg: file, line,
    value and what was expected for input errors), or the command's message for an
    option the embedded ``fedrec train`` refused. ``code`` is the fr_err name
    (``"FR_ERR_PARSE"``) or ``"usage"``/``"failure"`` for the command's exit statuses 2/1."""

    def __init__(self, message: str, code: str = "failure") -> None:
        super().__init__(message)
        self.code = code
        #: For an input error the library reports as "FILE:LINE: ...": the file and line.
        self.filename: Optional[str] = None
        self.line: Optional[int] = None
        m = re.search(r"(?:^|: )([^\s:][^:]*):(\d+): ", message)
        if m:
            self.filename, self.line = m.group(1), int(m.group(2))


class UsageError(FedrecError, ValueError):
    """An option the embedded ``fedrec train`` refused (the CLI's exit status 2)."""


_ERR_NAMES = {getattr(lib, n): n for n in dir(lib) if n.startswith("FR_ERR_")}


def check(e: int, what: str = "") -> None:
    """Raises FedrecError with fr_errmsg() when e is not FR_OK."""
    if e != lib.FR_OK:
        msg = ffi.string(lib.fr_errmsg()).decode("utf-8", "replace") or ffi.string(lib.fr_strerror(e)).decode()
        raise FedrecError(f"{what}: {msg}" if what else msg, _ERR_NAMES.get(e, str(e)))


def cstr(p: Any) -> Optional[str]:
    return None if p == ffi.NULL else ffi.string(p).decode("utf-8", "replace")


class StderrCapture:
    """Sends file descriptor 2 to a temporary file for the duration (the embedded command
    reports on standard error), and back to the terminal while Python code runs inside
    (``paused``), so a callback's prints are not lost. ``text`` holds what was captured."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.text = ""
        self._saved: Optional[int] = None
        self._tmp: Any = None

    def __enter__(self) -> "StderrCapture":
        if self.enabled:
            sys.stderr.flush()
            self._tmp = tempfile.TemporaryFile()
            self._saved = os.dup(2)
            os.dup2(self._tmp.fileno(), 2)
        return self

    def pause(self) -> None:
        if self._saved is not None:
            os.dup2(self._saved, 2)

    def resume(self) -> None:
        if self._saved is not None:
            sys.stderr.flush()
            os.dup2(self._tmp.fileno(), 2)

    def __exit__(self, *exc: Any) -> None:
        if self._saved is None:
            return
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._saved = None
        self._tmp.seek(0)
        self.text = self._tmp.read().decode("utf-8", "replace")
        self._tmp.close()


def command_error(rc: int, captured: str, verbose: bool) -> FedrecError:
    """The exception for the embedded command's exit status rc (1 failure, 2 usage)."""
    msg = captured.strip() or ("see the messages above" if verbose else "fedrec failed")
    return UsageError(msg, "usage") if rc == 2 else FedrecError(msg, "failure")


def log_lines(text: str) -> None:
    for line in text.splitlines():
        if line.strip():
            log.info("%s", line)


def idmap_values(m: Any, numbers: bool = False) -> np.ndarray:
    """The raw ids of an fr_idmap by dense id: int64, or an object array of str (numbers:
    a string map's interning numbers instead, int64)."""
    n = lib.fr_idmap_size(m)
    if lib.fr_idmap_is_str(m) and not numbers:
        return np.array([ffi.string(lib.fr_idmap_raw_str(m, i)).decode("utf-8", "surrogateescape")
                         for i in range(n)], dtype=object)
    return np.fromiter((lib.fr_idmap_raw(m, i) for i in range(n)), dtype=np.int64, count=n)


def eval_dict(r: Any) -> dict:
    """An fr_eval_result as a dict (fr_eval_result_json: "rmse", "hr@10", ...)."""
    import json
    buf = ffi.new("char[]", 1 << 16)
    check(lib.fr_eval_result_json(r, buf, 1 << 16, ffi.NULL), "metrics")
    return json.loads("{" + ffi.string(buf).decode() + "}")
