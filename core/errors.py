"""The one base of every error colorize reports to a person in one line.

A ``ColorizeError`` is about the input, the files or the set-up, never a bug: the command line
prints its message as one line and exits with its ``exit_code``; the Python API lets it
propagate. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


def one_line(error: BaseException, limit: int = 200) -> str:
    """An exception's message as one line of at most ``limit`` characters (its type's name when
    it has none), for messages that quote what a library said."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ColorizeError(Exception):
    """Something the person can fix, said in one line."""

    exit_code = 1
