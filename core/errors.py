"""The one base of every error colorize reports to a person in one line.

A ``ColorizeError`` is about the input, the files or the set-up, never a bug: the command line
prints its message as one line and exits with its ``exit_code``; the Python API lets it
propagate. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class ColorizeError(Exception):
    """Something the person can fix, said in one line."""

    exit_code = 1
