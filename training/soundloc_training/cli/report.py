"""`soundloc-report` (report.py renders the tables)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from soundloc_training import report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="soundloc-report", description=report.__doc__.splitlines()[0]
    )
    parser.add_argument("results", type=Path, help="directory of result JSON rows")
    args = parser.parse_args(argv)
    try:
        print(report.render(report.load_results(args.results)), end="")
    except ValueError as error:
        print(f"soundloc-report: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
