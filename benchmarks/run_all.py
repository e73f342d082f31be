"""Run every benchmark under benchmarks/, record its figures with the machine they ran on, and
render BENCHMARKS.md from them."""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent
HELPERS = {"machine.py", "run_all.py", "flops.py", "summary.py"}

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    for script in sorted(p for p in HERE.glob("*.py") if p.name not in HELPERS):
        print(f"== {script.name}", flush=True)
        sys.argv = [str(script)]
        runpy.run_path(str(script), run_name="__main__")
    from summary import write

    print(f"wrote {write(HERE.parent / 'BENCHMARKS.md')}")
