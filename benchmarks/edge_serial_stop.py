"""How long the edge gateway's serial source takes to stop while its port is quiet.

Run: ``.venv/bin/python benchmarks/edge_serial_stop.py`` (about 10 s; ``--stops N``).

A pseudo-terminal stands in for the P1 cable (as in tests/integration/test_edge_serial.py): the
serial source (``meterhub.edge.sources.serial_chunks``, pyserial in a worker thread) opens the
slave end, gets one chunk, then the port goes quiet and its read blocks. The source is stopped the
way the gateway stops it (its task is cancelled) and the time until it has closed the port is
measured, ``--stops`` times. A read blocked on the port is woken (``cancel_read``) rather than
waited out; reads also return every 0.5 s, so that is the bound if waking fails. The last line is
one JSON object with the figures and the machine. (This replaces an assertion of a stop within
5 s in the integration test: the machine's load decided whether it passed.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
import tty
from collections.abc import Sequence

from _machine import machine_info
from meterhub.edge.sources import serial_chunks


async def one_stop(device: str, master: int) -> float:
    chunks = serial_chunks(device, {"baudrate": 115200})
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in chunks:
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)  # pyserial opens the port and sets raw mode
    os.write(master, b"/ISK5\\2M550T-1012\r\n")
    await asyncio.wait_for(first.wait(), 10)
    await asyncio.sleep(0.1)  # quiet: the next read blocks
    began = time.perf_counter()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return time.perf_counter() - began


async def run(stops: int) -> list[float]:
    seconds = []
    for _ in range(stops):
        master, slave = os.openpty()
        tty.setraw(master)
        try:
            seconds.append(await one_stop(os.ttyname(slave), master))
        finally:
            os.close(master)
            os.close(slave)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--stops", type=int, default=20)
    args = parser.parse_args(argv)
    seconds = asyncio.run(run(args.stops))
    median = statistics.median(seconds)
    print(f"serial source stopped on a quiet port, {args.stops} times")
    print(f"median {median * 1000:.1f} ms, fastest {min(seconds) * 1000:.1f} ms, ", end="")
    print(f"slowest {max(seconds) * 1000:.1f} ms")
    figures = {"stops": args.stops, "median_s": round(median, 4), "max_s": round(max(seconds), 4)}
    print(json.dumps({**figures, "machine": machine_info()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
