"""alpsim: a simulator of an ALP-pool perpetual exchange (one-click up to 1001x) on a real EVM."""

from . import compiler  # registers the project's build with alpsim.errors (errors.<Name>)

__all__ = ["compiler"]
