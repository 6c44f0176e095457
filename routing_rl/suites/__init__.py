"""Suites: many runs x seeds from one TOML file, run resumably (locally or on Ray) and tabulated."""

from routing_rl.suites.spec import SuiteSpec, SuiteError, Trial, load_suite_file

__all__ = ["SuiteSpec", "SuiteError", "Trial", "load_suite_file"]
