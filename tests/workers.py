"""Stopping what a test started: every worker ``kwscore.jobs.ensure_worker`` started in this process."""

from __future__ import annotations

import os
import signal


def kill_started_workers() -> None:
    """SIGKILL each worker started from this process, with its process group (its runs), and reap it."""
    from kwscore import jobs

    for worker in jobs._STARTED_WORKERS:
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.wait(timeout=10)
    jobs._STARTED_WORKERS.clear()
