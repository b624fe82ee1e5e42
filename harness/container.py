"""The Docker image's entrypoint: `mnist-bench`, run as the owner of the results folder.

`docker run -v "$PWD/results:/results" mnist-bench cnn` should just work and leave records that the host
user owns. The image therefore starts as root and this entrypoint, before anything else, switches to the
uid and gid that own the results folder (`$MNIST_BENCH_OUT`, /results in the image), dropping every
supplementary group. That is the host user for a bind mount (any uid: no fixed one to match),
user `bench` (10001) for the image's own volume, and root only when root owns the folder, which is also
what rootless Docker and Podman show for a folder of the user who runs them. Started as any other user
(`docker run --user "$(id -u):$(id -g)"`), it stays that user. The home folder and its caches are
writable by every uid, so the warm compile cache serves whoever the run is.

The switch happens in this process, then the CLI runs in it too (no exec): as PID 1, a process ignores
SIGTERM unless it handles it, so the handler is installed first of all; `docker stop` then ends a run
as Ctrl-C does (exit 130, finished results kept, nothing half-written).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

INTERRUPTED = 130  # harness.base.errors.ExitCode.INTERRUPTED, without importing the harness first
DEFAULT_OUT = "/results"


def _terminate(signum, frame):
    raise KeyboardInterrupt


def run_as(folder: Path, euid: int) -> tuple[int, int] | None:
    """The (uid, gid) to switch to for `folder`'s owner, or None to stay as we are (not root, or no folder)."""
    if euid != 0:
        return None
    try:
        st = folder.stat()
    except OSError:
        return None
    return st.st_uid, st.st_gid


def switch_user(uid: int, gid: int) -> None:
    if uid == 0:  # root's folder: stay root (rootless engines map the host user to root)
        return
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        ids = run_as(Path(os.environ.get("MNIST_BENCH_OUT") or DEFAULT_OUT), os.geteuid())
        if ids is not None:
            switch_user(*ids)
        from harness import cli

        cli.main()
    except KeyboardInterrupt:  # before the CLI's own handling is in place
        print("mnist-bench: interrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)


if __name__ == "__main__":
    main()
