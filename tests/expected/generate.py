"""Write the stored expectations of tests/one_graph_cases.py from a checkout of curate.

    git worktree add /tmp/base 64d9a86 && (cd /tmp/base && python -m venv .venv && .venv/bin/pip install -e .)
    python tests/expected/generate.py --checkout /tmp/base

Each case runs in a fresh folder with the checkout's interpreter (`<checkout>/.venv/bin/python`),
its ledger part size set as the case says, and its outputs are stored as JSON (tests/snapshots.py).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.one_graph_cases import CASES  # noqa: E402
from tests.snapshots import snapshot, store  # noqa: E402

# the part size lives in curate.ledger_layout since the one graph, in curate.sample before it
_RUN = ("import sys, importlib, importlib.util; parts = int(sys.argv[1]);\n"
        "s = importlib.import_module('curate.ledger_layout' if importlib.util.find_spec('curate.ledger_layout') "
        "else 'curate.sample');\n"
        "if parts: s.ROWS_PER_LEDGER_PART = parts\n"
        "from curate.run import main; sys.exit(main(sys.argv[2:]))")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkout", required=True, help="a curate checkout with its own .venv")
    ap.add_argument("cases", nargs="*", default=sorted(CASES))
    args = ap.parse_args()
    python = os.path.join(args.checkout, ".venv", "bin", "python")
    for name in args.cases:
        case = CASES[name]
        with tempfile.TemporaryDirectory() as folder:
            flags = case.write(folder)
            subprocess.run([python, "-c", _RUN, str(case.part_rows or 0), *flags, "--output", "out",
                            "--runner", "FnApiRunner", "--progress=false"], cwd=folder, check=True,
                           stdout=subprocess.DEVNULL)
            store(name, snapshot(os.path.join(folder, "out")))
        print(f"{name}: stored", flush=True)


if __name__ == "__main__":
    main()
