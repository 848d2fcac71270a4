"""The apps ``benchmarks/load/compare.py`` serves: one module per framework, the session layer
chosen by the environment, read once at import in every worker.

* ``LOAD_LAYER``: ``bare`` (no session layer: the same routes answering constants),
  ``sessionkit``, ``peer`` (the framework's usual server-side session library) or ``floor`` (the
  round trips made by hand, ``_floor.py``).
* ``LOAD_BACKEND``: ``memory``, ``sqlite``, ``redis``, ``postgres``, ``mysql`` or ``file``.
* ``LOAD_URL``: sessionkit's storage URL; for a peer or a floor, the server's URL (or the file
  or folder of a local store).
* ``LOAD_NS``: a peer's or a floor's key prefix or table.
* ``LOAD_SPIN_US``: µs of CPU each of the bare app's routes burns (see :func:`burn`).

Every app has the load suite's routes (``tests/load/app_asgi.py``), each answering
``"<user> <n>"``: ``/read``, ``/write`` (increments ``n``), ``/login?user=NAME`` (a new session
id where the library offers it, then the user), ``/logout`` and ``/health`` (no session).
"""

from __future__ import annotations

import os
import time
from typing import Any

LAYER = os.environ.get("LOAD_LAYER", "bare")
BACKEND = os.environ.get("LOAD_BACKEND", "memory")
URL = os.environ.get("LOAD_URL", "memory://")
NS = os.environ.get("LOAD_NS", "bench-load:")

#: ``LOAD_SPIN_US``: the bare app's routes burn this many µs of the thread's CPU each (the
#: calibration rows of ``compare.py --calibrate``: a cost known exactly, read off the same
#: meter as a session layer's).
SPIN = float(os.environ.get("LOAD_SPIN_US") or 0) / 1e6


def burn() -> None:
    """Spend :data:`SPIN` seconds of this thread's CPU (nothing when it is 0)."""
    if SPIN:
        end = time.thread_time() + SPIN
        while time.thread_time() < end:
            pass


#: ``LOAD_PROFILE=PATH``: profile the worker (``cProfile``, timed by each thread's own CPU
#: clock) and write ``PATH.<pid>`` when it exits; ``profile.py`` reads them.
PROFILE = os.environ.get("LOAD_PROFILE", "")


def profiled(app: Any, kind: str) -> Any:
    """``app``, profiled when ``LOAD_PROFILE`` is set: for ASGI, the thread that imports the
    app (uvicorn's one worker runs its event loop there); for WSGI, every thread that serves a
    request, from its first request on."""
    if not PROFILE:
        return app
    import atexit
    import cProfile
    import pstats
    import threading
    import time

    profilers: list[cProfile.Profile] = []

    def dump() -> None:
        if not profilers:
            return
        for profiler in profilers:
            profiler.disable()  # (only stops the calling thread's; the others are idle now)
        stats = pstats.Stats(profilers[0])
        for profiler in profilers[1:]:
            stats.add(profiler)
        stats.dump_stats(f"{PROFILE}.{os.getpid()}")

    atexit.register(dump)
    if kind == "asgi":
        profiler = cProfile.Profile(time.thread_time)
        profilers.append(profiler)
        profiler.enable()
        return app
    local = threading.local()

    def wsgi(environ: Any, start_response: Any) -> Any:
        if not getattr(local, "on", False):
            local.on = True
            profiler = cProfile.Profile(time.thread_time)
            profilers.append(profiler)
            profiler.enable()
        return app(environ, start_response)

    return wsgi
