"""How the command-line programs end: with their work's exit status, whatever the interpreter's teardown does.

A process that used delta-rs can abort while the interpreter shuts down, after the command has done all of its
work: delta-rs' runtime threads meet the C++ runtime's exit handlers and the process dies with ``terminate called
without an active exception`` and status 134 (delta-io/delta-rs#2184), so a scheduled job that succeeded would
report a failure. The four programs (``pivot-spark``, ``pivot-train``, ``pivot-eval``, ``pivot-experiment``)
therefore end through :func:`finish` when they run as programs: the SparkSession is stopped if one is active,
the ``atexit`` handlers run (temporary model copies are removed there), logging and the standard streams are
flushed, and the process exits with ``os._exit(code)``, which skips the teardown that can abort. Called as
functions (``main([...])`` in tests), they return or raise as before.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import traceback
from collections.abc import Callable
from contextlib import suppress
from typing import Any, NoReturn


def status_of(code: Any) -> int:
    """The exit status of ``SystemExit(code)``: None is 0, an int is itself, anything else (a message) is 1 and
    is printed to stderr, as the interpreter would."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def run_command(call: Callable[[], Any]) -> int:
    """Run a program's work and return its exit status: the int it returns (0 for anything else), the code of
    the ``SystemExit`` it raises, 130 for an interrupt, 1 for any other error (whose traceback is printed)."""
    try:
        result = call()
    except SystemExit as e:
        return status_of(e.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        return 130
    except BaseException:
        traceback.print_exc()
        return 1
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _stop_spark() -> None:
    if sys.modules.get("pyspark") is None:  # never imported (or blocked): no session to stop
        return
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        try:
            session.stop()
        except Exception as e:  # the JVM may already be gone; the exit status is the work's all the same
            print(f"warning: stopping the Spark session: {e}", file=sys.stderr)


def finish(code: int) -> NoReturn:
    """End the process with ``code`` (see the module): stop Spark, run the ``atexit`` handlers, flush, exit."""
    try:
        _stop_spark()
        atexit._run_exitfuncs()
        logging.shutdown()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):  # a closed pipe: nothing more can be written there anyway
                stream.flush()
        os._exit(code)


def main_program(call: Callable[[], Any]) -> NoReturn:
    """Run a program's work (:func:`run_command`) and end the process with its status (:func:`finish`)."""
    finish(run_command(call))
