"""Engine latency benchmark (issue 2): `rltab bench latency` for the current model, as JSON.

    python bench/latency.py [--json bench/results/latency.json]

Stop the starter model's background training first: it shares the machine's two cores.
"""

import sys

from rltab.server.cli import main

if __name__ == "__main__":
    out = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else "bench/results/latency.json"
    raise SystemExit(main(["bench", "latency", "--json", out]))
