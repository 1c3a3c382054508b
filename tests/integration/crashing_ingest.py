"""``meterhub`` with a planted bug, for the crash-quarantine tests.

A message whose payload holds ``CRASH-ME`` ends the process from inside the handler (as a crash in
a C extension would: no exception to catch); one holding ``STALL-ME`` makes the handler never
return. Everything else is the real code.
"""

from __future__ import annotations

import os
import time
from typing import Any

from meterhub.cli import app
from meterhub.ingest import messages, worker

real_process_routed = messages.process_routed


def planted_bug(msg: messages.Inbound, *args: Any) -> messages.Outcome:
    if b"CRASH-ME" in msg.payload:
        os._exit(134)
    if b"STALL-ME" in msg.payload:
        while True:
            time.sleep(1)
    return real_process_routed(msg, *args)


messages.process_routed = planted_bug  # type: ignore[assignment]
worker.DECODE_STALL_SECONDS = float(os.environ.get("TEST_DECODE_STALL_SECONDS", "2"))

if __name__ == "__main__":
    app()
