"""A suite directory's ``suite.json``, read back and checked field by field.

``suite table SUITE_DIR`` and ``report SUITE_DIR`` trust nothing but this file, and a suite
directory may have been copied, edited or truncated since ``suite run`` wrote it: every field they
use is checked here once, so a damaged file is one line naming it and the field, never a
``KeyError`` or ``AttributeError`` from deep in the table or a figure. Trial names become paths
under the suite directory, so a name that would leave it is refused as in a suite file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from routing_rl.core.files import MANIFEST_LIMIT, FileCheckError, read_regular
from routing_rl.suites.checks import path_name_problem
from routing_rl.suites.spec import TESTS, SuiteError

MANIFEST = "suite.json"


def _field(table: dict[str, Any], key: str, kinds: type | tuple[type, ...], where: str, file: Path) -> Any:
    value = table.get(key)
    if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is int):
        raise SuiteError(f"{file}: field {where}{key} is missing or has the wrong type; "
                         "the file is damaged: run `routing-rl suite run SUITE_FILE --out DIR` again to rewrite it")  # fmt: skip
    return value


def read_manifest(directory: Path) -> dict[str, Any]:
    """The checked ``suite.json`` of ``directory``: ``suite`` (name, baseline, metric, reference,
    kept) and ``trials`` (run, seed, name, config each)."""
    file = directory / MANIFEST
    try:
        data = json.loads(read_regular(file, MANIFEST_LIMIT, MANIFEST, follow=False))
    except FileNotFoundError:
        raise SuiteError(f"{directory} is not a suite directory (no {MANIFEST}); give a suite file or the --out of `routing-rl suite run`") from None
    except FileCheckError as exc:
        raise SuiteError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{file}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    except (ValueError, RecursionError) as exc:
        raise SuiteError(f"{file}: not valid JSON ({type(exc).__name__}); the file is damaged: "
                         "run `routing-rl suite run SUITE_FILE --out DIR` again to rewrite it") from None  # fmt: skip
    if not isinstance(data, dict):
        raise SuiteError(f"{file}: expected a JSON object, got {type(data).__name__}; the file is damaged: "
                         "run `routing-rl suite run SUITE_FILE --out DIR` again to rewrite it")  # fmt: skip
    head = _field(data, "suite", dict, "", file)
    _field(head, "name", str, "suite.", file)
    _field(head, "baseline", (str, type(None)), "suite.", file)
    if head.get("metric", "last") not in ("last", "best-val"):
        raise SuiteError(f"{file}: field suite.metric must be last or best-val, got {head.get('metric')!r}")
    if head.get("test", "paired") not in TESTS:  # a suite.json written before the key was added has none: paired
        raise SuiteError(f"{file}: field suite.test must be one of {', '.join(TESTS)}, got {head.get('test')!r}")
    reference = head.get("reference", {})
    if not isinstance(reference, dict) or not all(
        isinstance(v, dict) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values()) for v in reference.values()
    ):
        raise SuiteError(f"{file}: field suite.reference must map runs to {{mean, std}} numbers")
    if not isinstance(head.get("reference_source", ""), str) or not isinstance(head.get("kept"), (str, type(None))):
        raise SuiteError(f"{file}: fields suite.reference_source and suite.kept must be strings")
    trials = _field(data, "trials", list, "", file)
    for i, trial in enumerate(trials):
        if not isinstance(trial, dict):
            raise SuiteError(f"{file}: field trials[{i}] must be an object")
        _field(trial, "run", str, f"trials[{i}].", file)
        _field(trial, "seed", int, f"trials[{i}].", file)
        name = _field(trial, "name", str, f"trials[{i}].", file)
        _field(trial, "config", dict, f"trials[{i}].", file)
        if reason := path_name_problem(name):
            raise SuiteError(f"{file}: field trials[{i}].name {name!r} {reason}")
    return data
