"""Drive the engine in real time: history as fast as the publisher takes it, then live pacing.

Thread-friendly: ``run_simulation`` blocks until the end instant, the duration or ``stop`` is
reached; the demo runs it in a thread with its own ``publish`` function.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from meterhub.sim.engine import Engine, Publication, SimOptions, resolve_start

Publish = Callable[[Publication], None]


def run_simulation(
    options: SimOptions,
    publish: Publish,
    stop: threading.Event | None = None,
    now: datetime | None = None,
) -> Engine:
    """Publish the fleet's statuses, its history, then live intervals; returns the engine.

    Live pacing: the reading stamped T is published when the simulated clock reaches T, the
    simulated clock running ``options.speed`` times faster than the real one from the start of
    the live phase. On the way out every meter's retained status is set offline.
    """
    stop = stop or threading.Event()
    engine = Engine(options, resolve_start(options, now))
    real_start = time.monotonic()
    deadline = None if options.duration_s is None else real_start + options.duration_s

    def expired() -> bool:
        return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)

    for publication in engine.status_publications():
        publish(publication)
    for n, publication in enumerate(engine.history()):
        publish(publication)
        if n % 1000 == 0 and expired():
            break
    live_real_start = time.monotonic()
    live_sim_start = engine.live_start.timestamp()
    while not expired():
        if engine.next_step < engine.history_steps:
            break  # stopped during the history
        due, publications = engine.live_step()
        if options.end is not None and due > options.end:
            break
        wait = live_real_start + (due.timestamp() - live_sim_start) / options.speed
        wait -= time.monotonic()
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
        if wait > 0 and stop.wait(wait):
            break
        if expired():
            break
        for publication in publications:
            publish(publication)
    for publication in engine.status_publications(online=False):
        publish(publication)
    return engine
