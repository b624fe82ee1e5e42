"""The one way to run work in a child process: a Python program spoken to in JSON lines.

The parent (`Child`) starts `python -P <script or -m module> ...` with the environment and PYTHONPATH it
chooses. The child (`serve`) writes one `{"ready": true, ...}` line, then one reply line per request line
read from stdin, until `{"quit": true}` or the end of its input. A failure in the child is one line,
`{"error": "...", "exit_code": N}` (the code only for a HarnessError), after which it exits. The parent turns
that, a child that dies without a word, or one that does not answer in time into a HarnessError of one line
with the exit code to leave with. Ctrl-C or SIGTERM in the parent stops the child (SIGTERM, which the child
takes as Ctrl-C and answers with exit code 130, then SIGKILL) before the interrupt goes on.

Both sides live in this file. The child side uses only the standard library, and the parent side imports the
harness only when it raises: some children run against other source trees (`continuous` times older
revisions, whose harness may lack this module), so they load this file by path from beside their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

STOP_GRACE_S = 10.0  # how long a child may take to exit after an error line, a quit or SIGTERM
MAX_LINE = 500  # an error line's message is cut to this many characters


# --- the child's side ----------------------------------------------------------------------------------


def serve(handle: Callable[[dict[str, Any]], dict[str, Any]], ready: Callable[[], dict[str, Any]] = dict) -> int:
    """Answer requests from stdin until a quit or the end of input; returns the exit code.

    `ready()` runs first (imports, warm-up) and its result goes into the ready line. Anything else printed
    to stdout (tinygrad's DEBUG lines, a print in the code) goes to stderr, so no stray line breaks a reply.
    An exception becomes one error line (its traceback goes to stderr); SIGTERM is taken as Ctrl-C."""
    protocol = _own_stdout()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        _send(protocol, {"ready": True, **ready()})
        for line in sys.stdin:
            request = json.loads(line)
            if request.get("quit"):
                break
            _send(protocol, handle(request))
    except KeyboardInterrupt:
        return 130  # harness.base.errors.ExitCode.INTERRUPTED
    except Exception as e:
        code = getattr(e, "code", None)
        if hasattr(e, "message") and isinstance(code, int):  # a HarnessError: its message is meant for users
            _send(protocol, {"error": _one_line(str(e)), "exit_code": int(code)})
            return int(code) or 1
        traceback.print_exc()
        _send(protocol, {"error": _one_line(f"{type(e).__name__}: {e}")})
        return 1
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _one_line(text: str) -> str:
    return (text.strip().splitlines() or ["(no message)"])[0][:MAX_LINE]


def _own_stdout() -> IO[str]:
    """A private copy of the original stdout for the protocol; file descriptor 1 becomes stderr's."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return protocol


def _send(out: IO[str], doc: dict[str, Any]) -> None:
    out.write(json.dumps(doc) + "\n")
    out.flush()


# --- the parent's side ---------------------------------------------------------------------------------


def source_root() -> str:
    """The folder holding this `harness` package: a child given it as PYTHONPATH runs the caller's code."""
    return str(Path(__file__).resolve().parents[2])


class Child:
    """A child process spoken to in JSON lines: `ready()` once, then `request(doc)` as often as needed, then
    `close()` (or use it as a context manager, which also stops the child on an error or interrupt).

    `program` follows `python -P`: a script path or `-m module`, and their arguments. `pythonpath` replaces
    PYTHONPATH (None keeps the caller's); `env` replaces the environment (None: this process's). Its stderr
    is kept in a temporary file, whose last line explains a child that died without an error line, unless
    `capture_stderr` is False (then it goes where this process's stderr goes)."""

    def __init__(
        self,
        label: str,
        program: Sequence[str],
        *,
        python: str = sys.executable,
        pythonpath: str | None = None,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
        capture_stderr: bool = True,
    ):
        self.label = label
        command = [*prefix, python, "-P", *program]
        environ = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        if pythonpath is not None:
            environ["PYTHONPATH"] = pythonpath
        self._stderr: IO[bytes] | None = tempfile.TemporaryFile() if capture_stderr else None  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=environ
            )
        except OSError as e:
            if self._stderr is not None:
                self._stderr.close()
            raise _error(f"{label}: cannot start {shlex.join(command)}: {e}", None) from e
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None:
            self.stop()
        self.close()

    def ready(self, timeout: float | None = None) -> dict[str, Any]:
        """The child's ready line (what it said about itself)."""
        return self._receive(timeout)

    def request(self, doc: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request and return the child's reply."""
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):  # a child that died: its exit is read and explained below
            self.proc.stdin.write(json.dumps(doc) + "\n")
            self.proc.stdin.flush()
        return self._receive(timeout)

    def _receive(self, timeout: float | None) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            message = f"{self.label}: its process gave no reply within {timeout:g} s and was stopped"
            raise _error(message, None) from None
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM taken as one (console.terminate_as_interrupt)
            self.stop()
            raise
        try:
            reply = json.loads(line) if line and line.strip() else None
        except json.JSONDecodeError:
            reply = line
        if isinstance(reply, dict) and "error" not in reply:
            return reply
        if reply is not None and not isinstance(reply, dict):  # not this protocol: nothing it says can be trusted
            self.stop()
            message = f"{self.label}: its process wrote {str(line).strip()[:200]!r}, not a JSON object, and was stopped"
            raise _error(message, None)
        raise self._failure(reply)

    def _failure(self, reply: dict[str, Any] | None) -> Exception:
        """The error for a child that said it failed, or said nothing and ended (KeyboardInterrupt when it
        was interrupted: a terminal's Ctrl-C reaches every process in its group); the child is ended too."""
        try:
            self.proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:  # an error line from a child that does not end
            self.stop()
        status = self.proc.returncode
        if reply is None and status in (130, -signal.SIGINT):  # Ctrl-C reached the child first: stop as on Ctrl-C
            raise KeyboardInterrupt
        how = f"exited with code {status}" if status >= 0 else f"was stopped by {signal.Signals(-status).name}"
        why = reply["error"] if reply else self._last_stderr()
        code = reply.get("exit_code") if reply else None
        return _error(f"{self.label}: its process {how}, no result: {why}", code if code else status)

    def _last_stderr(self) -> str:
        if self._stderr is None:
            return "its output is above"
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1][:MAX_LINE] if lines else "no output"

    def close(self) -> None:
        """Ask the child to quit and wait for it (killed after STOP_GRACE_S)."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=STOP_GRACE_S)
            except (OSError, subprocess.TimeoutExpired):
                self.stop()
        if self._stderr is not None:
            self._stderr.close()

    def stop(self) -> None:
        """SIGTERM (the child stops as on Ctrl-C), then SIGKILL if it is still there after STOP_GRACE_S."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _error(message: str, code: int | None) -> Exception:
    """A HarnessError whose exit code is the child's where that is a documented failure code (a usage, data,
    environment, divergence or interrupt code), else ENVIRONMENT: the child could not do its work here."""
    from harness.base.errors import ExitCode, HarnessError  # here: a child in an older tree loads this file too

    known = code in {c.value for c in ExitCode} and code not in (ExitCode.OK, ExitCode.TARGET_MISSED)
    return HarnessError(message, ExitCode(code) if known else ExitCode.ENVIRONMENT)
