"""Run every benchmark under benchmarks/, record its figures with the machine they ran on, and
render BENCHMARKS.md from them (about 3 minutes; the node pipeline runs 65 s per transport)."""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent
HELPERS = {"machine.py", "run_all.py", "flops.py", "summary.py"}
# the default-transport run goes first: run after a large_shm one, it measured 30 Hz once
# (15-16 Hz in four runs on its own), as if the larger shared-memory ports had been reused
VARIANTS = {"node_pipeline.py": [["--transport", "fastdds_default"], []]}

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    for script in sorted(p for p in HERE.glob("*.py") if p.name not in HELPERS):
        for arguments in VARIANTS.get(script.name, [[]]):
            print(f"== {script.name} {' '.join(arguments)}", flush=True)
            sys.argv = [str(script), *arguments]
            runpy.run_path(str(script), run_name="__main__")
    from summary import write

    print(f"wrote {write(HERE.parent / 'BENCHMARKS.md')}")
