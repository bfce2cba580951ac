"""alpsim fuzz: the stateful machines' rules (friendly and hostile) as scenario steps run by one
executor beside the reference model, checked after every step; failures shrunk by hypothesis and
written as checked scenarios (`alpsim run`) and pytest files (docs/fuzz.md)."""

from .checks import CheckFailed
from .executor import Executor

__all__ = ["CheckFailed", "Executor"]
