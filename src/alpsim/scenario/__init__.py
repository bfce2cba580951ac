"""Scripted scenarios: YAML files of trades, price paths and expectations, run reproducibly
on a devnet and reported as JSON, Markdown and plots."""

from .report import write_report
from .runner import ScenarioRun, ScenarioRunner, build_report
from .schema import Scenario, ScenarioError, load_scenario, parse_scenario

__all__ = ["Scenario", "ScenarioError", "ScenarioRun", "ScenarioRunner", "build_report", "load_scenario",
           "parse_scenario", "write_report"]
