"""Keeping a few lines whole against Ctrl-C and SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def interrupts_deferred():
    """Ctrl-C or SIGTERM arriving inside takes effect at its end, as the handler in place
    would have made it (a KeyboardInterrupt, or the CLI's SIGTERM-as-interrupt).

    For bookkeeping that must be done whole or not at all: an optimiser step taken but not
    counted would be taken twice by --resume; a photo counted as finished but not yet
    written to the report would be missing from it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    arrived: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda number, frame: arrived.append(number)) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if arrived:
        handler = previous[arrived[0]]
        if callable(handler):
            handler(arrived[0], None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(arrived[0])


@contextlib.contextmanager
def interrupts_ignored():
    """Ctrl-C and SIGTERM arriving inside are dropped.

    For the moments after a run has finished its work (its summary printed, its exit code
    known): a signal then can only turn a finished run into one that reports itself
    interrupted; and for the bookkeeping after a first interrupt, which a second one (a kill
    after a Ctrl-C, as torchrun sends) must not cut short.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
