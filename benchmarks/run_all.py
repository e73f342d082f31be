"""Run every benchmark under benchmarks/, record its figures with the machine they ran on, and
render BENCHMARKS.md from them (about 5 minutes; the node pipeline runs 65 s per variant).
walk_latency.py is run by hand (BY_HAND); its recorded result is rendered all the same.

Each run is its own process on its own DDS domain: two node-pipeline runs sharing a process and
domain measured each other's transport (Fast DDS reuses the shared-memory ports the first run
created, with that run's segment size).
"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
HELPERS = {"machine.py", "run_all.py", "flops.py", "summary.py"}
BY_HAND = {"walk_latency.py"}  # scores a checkpoint on a whole val split: about 35 minutes
VARIANTS = {  # argument lists
    "node_pipeline.py": [["--transport", "fastdds_default"], [], ["--output-resolution", "model"]]
}

if __name__ == "__main__":
    runs = [
        (script, arguments)
        for script in sorted(p for p in HERE.glob("*.py") if p.name not in HELPERS | BY_HAND)
        for arguments in VARIANTS.get(script.name, [[]])
    ]
    for domain, (script, arguments) in enumerate(runs, start=60):
        print(f"== {script.name} {' '.join(arguments)}", flush=True)
        env = {**os.environ, "ROS_DOMAIN_ID": str(domain)}
        subprocess.run([sys.executable, str(script), *arguments], env=env, check=True)
    sys.path.insert(0, str(HERE))
    from summary import write

    print(f"wrote {write(HERE.parent / 'BENCHMARKS.md')}")
