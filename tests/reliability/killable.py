"""Run a ``hashembed`` command that stops at a chosen point and waits to be killed.

    python killable.py POINT MARKER -- hashembed-args...

At POINT the process creates the file MARKER and blocks; the test watches for MARKER (a file
event, no fixed sleep) and then sends SIGKILL, so the kill lands at exactly that point:

* ``run-files``: a run's files are staged, its run.json is about to be written;
* ``bundle-check``: a bundle is staged and about to be checked against PyTorch;
* ``exchange``: the new artifact is about to be swapped with the previous one (one
  ``renameat2(RENAME_EXCHANGE)`` call on Linux);
* ``rename``: where that call is unavailable, the previous artifact was moved aside and the new
  one is not yet renamed into place.
"""

import os
import sys
import time
from pathlib import Path


def block(marker: Path):
    marker.write_text(str(os.getpid()))
    while True:
        time.sleep(60)


def main():
    point, marker = sys.argv[1], Path(sys.argv[2])
    args = sys.argv[sys.argv.index("--") + 1:]
    if point == "run-files":
        from hashembed.core import artifact

        artifact.seal = lambda content: block(marker)  # train writes one header: run.json
    elif point == "bundle-check":
        from hashembed.export import exporter

        exporter.check_bundle = lambda *a, **k: block(marker)
    elif point == "exchange":
        from hashembed.core import atomic

        real_renameat2 = atomic._renameat2

        def renameat2(src, dst, flags):
            if flags == atomic._RENAME_EXCHANGE:
                block(marker)
            return real_renameat2(src, dst, flags)

        atomic._renameat2 = renameat2
    elif point == "rename":
        from hashembed.core import atomic

        atomic._renameat2 = lambda *args: False  # the portable two-step path
        real = os.rename

        def rename(src, dst):
            if ".old-" in str(dst):  # the previous version has just been moved aside
                real(src, dst)
                block(marker)
            return real(src, dst)

        atomic.os.rename = rename
    else:
        raise SystemExit(f"unknown point {point}")
    from hashembed.app.cli import main as cli

    sys.exit(cli(args))


if __name__ == "__main__":
    main()
