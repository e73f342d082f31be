"""Reading the JSON records the training package keeps (dataset.json, summaries, result rows).

One helper for every such file, so a damaged one is always reported the same way: the file (and
line) it is in, what is wrong, and what to do about it, instead of a bare "Expecting value".
"""

from __future__ import annotations

import json
from pathlib import Path

# the fix for a run's damaged summary.json: --resume rewrites it from the run's checkpoints
REWRITE_SUMMARY = "delete it and rerun with --resume to write it again"


def parse_json(text: str | bytes, source: str | Path, fix: str, expect: type = dict) -> dict | list:
    """`text` (read from `source`, "PATH" or "PATH:LINE") as JSON of type `expect`; ValueError
    naming the source, the problem and `fix` (what the user should do) otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source} is not valid JSON ({error}); {fix}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{source} is not UTF-8 text; {fix}") from None
    except RecursionError:
        raise ValueError(f"{source} nests too deeply to be one of ours; {fix}") from None
    if not isinstance(value, expect):
        raise ValueError(
            f"{source} holds a JSON {type(value).__name__}, not a {expect.__name__}; {fix}"
        )
    return value


def read_json(path: Path, fix: str, expect: type = dict) -> dict | list:
    """The JSON file at `path` (see parse_json); a missing or unreadable file raises OSError,
    whose message names it."""
    return parse_json(Path(path).read_bytes(), path, fix, expect)
