"""harness/run/child.py: the one way the harness runs work in a child process, with real tiny child programs."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from harness.base.errors import ExitCode, HarnessError
from harness.run import child

PROGRAM = """
import os, sys, time
from harness.run import child
from harness.base.errors import ExitCode, HarnessError

def handle(request):
    print("stray output on stdout")  # must not break the protocol
    what = request["do"]
    if what == "echo":
        return {"echo": request, "pythonpath": os.environ.get("PYTHONPATH")}
    if what == "harness-error":
        raise HarnessError("MNIST is not where it should be\\nsecond line", ExitCode.DATA)
    if what == "crash":
        raise ValueError("a bug in the child")
    if what == "die":
        print("the last words", file=sys.stderr, flush=True)
        os._exit(7)
    if what == "sleep":
        time.sleep(60)
    raise AssertionError(what)

sys.exit(child.serve(handle, ready=lambda: {"pid": os.getpid(), "argv": sys.argv[1:]}))
"""


@pytest.fixture
def program(tmp_path) -> Path:
    path = tmp_path / "program.py"
    path.write_text(PROGRAM)
    return path


def start(program: Path, *args: str) -> child.Child:
    return child.Child("the child", [str(program), *args], pythonpath=child.source_root())


def test_ready_line_then_request_and_reply(program):
    with start(program, "an-arg") as c:
        ready = c.ready(timeout=60)
        assert ready["ready"] is True and ready["pid"] == c.proc.pid and ready["argv"] == ["an-arg"]
        for i in range(2):
            reply = c.request({"do": "echo", "i": i}, timeout=60)
            assert reply == {"echo": {"do": "echo", "i": i}, "pythonpath": child.source_root()}
    assert c.proc.returncode == 0  # closed with a quit line


def test_a_harness_error_in_the_child_is_one_line_with_its_exit_code(program):
    with start(program) as c:
        c.ready(timeout=60)
        with pytest.raises(HarnessError) as caught:
            c.request({"do": "harness-error"}, timeout=60)
    assert caught.value.code == ExitCode.DATA and c.proc.returncode == int(ExitCode.DATA)
    assert caught.value.message == (
        "the child: its process exited with code 3, no result: MNIST is not where it should be"
    )


def test_an_unexpected_exception_is_an_environment_error_naming_it(program):
    with start(program) as c:
        c.ready(timeout=60)
        with pytest.raises(HarnessError, match="exited with code 1, no result: ValueError: a bug in the child") as e:
            c.request({"do": "crash"}, timeout=60)
    assert e.value.code == ExitCode.ENVIRONMENT and "\n" not in e.value.message


def test_a_child_that_dies_silently_is_explained_by_its_last_stderr_line(program):
    with start(program) as c:
        c.ready(timeout=60)
        with pytest.raises(HarnessError, match="exited with code 7, no result: the last words") as e:
            c.request({"do": "die"}, timeout=60)
    assert e.value.code == ExitCode.ENVIRONMENT


def test_a_program_that_never_gets_ready(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    with pytest.raises(HarnessError, match="ModuleNotFoundError: No module named 'no_such_module_here'") as e:
        start(broken).ready(timeout=60)
    assert e.value.code == ExitCode.ENVIRONMENT


def test_output_outside_the_protocol_stops_the_child(tmp_path):
    chatty = tmp_path / "chatty.py"
    chatty.write_text("import time\nprint('hello', flush=True)\ntime.sleep(60)\n")
    with pytest.raises(HarnessError, match="the child: its process wrote 'hello', not a JSON object, and was stopped"):
        start(chatty).ready(timeout=60)


def test_a_missing_python_is_an_environment_error(program):
    with pytest.raises(HarnessError, match="the child: cannot start /no/such/python") as e:
        child.Child("the child", [str(program)], python="/no/such/python")
    assert e.value.code == ExitCode.ENVIRONMENT


def test_a_request_over_its_timeout_stops_the_child(program):
    with start(program) as c:
        c.ready(timeout=60)
        with pytest.raises(HarnessError, match=r"the child: its process gave no reply within 0\.5 s and was stopped"):
            c.request({"do": "sleep"}, timeout=0.5)
        assert c.proc.returncode == int(ExitCode.INTERRUPTED)  # SIGTERM reached the child as Ctrl-C


def test_an_interrupt_in_the_parent_stops_the_child(program):
    """Ctrl-C (or SIGTERM taken as Ctrl-C) while waiting for a reply: the child is stopped, the interrupt goes on."""
    with start(program) as c:
        c.ready(timeout=60)
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                c.request({"do": "sleep"})
        finally:
            timer.cancel()
        assert c.proc.returncode == int(ExitCode.INTERRUPTED)


def test_the_child_side_needs_nothing_but_the_standard_library():
    """Children in older source trees load this file by path: importing it must not import the harness."""
    import subprocess

    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('c', {str(Path(child.__file__))!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "assert not [n for n in sys.modules if n.startswith('harness')], sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-P", "-c", code], check=True, env={**os.environ, "PYTHONPATH": ""})


def test_a_child_interrupted_on_its_own_interrupts_the_parent(program):
    """A terminal's Ctrl-C reaches the child too; if it ends first (code 130), the parent stops as on Ctrl-C."""
    with start(program) as c:
        c.ready(timeout=60)
        threading.Timer(0.5, os.kill, (c.proc.pid, signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt):
            c.request({"do": "sleep"}, timeout=60)
        assert c.proc.returncode == int(ExitCode.INTERRUPTED)
