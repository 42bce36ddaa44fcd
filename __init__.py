"""colorize: auto-routing, multi-model photo colorization.

Kept free of heavy imports so that `colorize --help` and `--version` start fast.
"""

__version__ = "0.1.0"
