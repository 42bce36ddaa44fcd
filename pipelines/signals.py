"""Keeping a few lines whole against Ctrl-C and SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import NoReturn


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
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
        handler = previous[signal.Signals(arrived[0])]
        if callable(handler):
            handler(arrived[0], None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(arrived[0])


@contextlib.contextmanager
def interrupts_ignored() -> Iterator[None]:
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


@contextlib.contextmanager
def interrupted_once() -> Iterator[None]:
    """Inside, the first Ctrl-C or SIGTERM raises KeyboardInterrupt, and from then on both are
    dropped, inside and after: the command is on its way out.

    For a command that stops on an interrupt and must then finish its bookkeeping: a second
    signal often follows the first at once (torchrun passes a terminal's Ctrl-C on to workers
    that had it already; a scheduler may signal twice) and would cut that short, or kill the
    process outright once the handlers in place before were back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def interrupt(number: int, frame: object) -> NoReturn:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        fired.append(number)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        if not fired:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
