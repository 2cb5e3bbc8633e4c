"""Sweep every parameter family of the resource contracts (docs/contracts.md) and report.

    PYTHONPATH=src python fuzz/sweep_contracts.py            # the CI series (seconds)
    PYTHONPATH=src python fuzz/sweep_contracts.py --long     # the long series (minutes)
    PYTHONPATH=src python fuzz/sweep_contracts.py --long --family "graph chain"

For each family (``tests/contract_sweep.py`` FAMILIES) and each entry point run on it, the
inputs are built with ``tests/hostile_builders.py``, measured (CPU time, tracemalloc peak) and
the growth exponents printed; then the single hostile CASES are run. A line per violation says
what broke: a non-tfckpt exception, a CPU budget exceeded, or superlinear growth. The exit
status is 1 if anything broke. Calls are stopped after ``--budget`` CPU seconds and the process
may use ``--memory-limit`` GiB, so a broken contract shows as a violation, not a stuck machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from contract_sweep import CASES, ENTRY_POINTS, FAMILIES, ContractViolation, classify, sweep_and_check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long", action="store_true", help="the long series (larger inputs)")
    parser.add_argument("--family", action="append", help="only this family (repeatable)")
    parser.add_argument("--budget", type=float, default=None, help="CPU seconds per call (default 5, 60 with --long)")
    parser.add_argument("--max-exponent", type=float, default=None, help="override every family's growth limit")
    parser.add_argument("--memory-limit", type=float, default=4.0,
                        help="GiB of address space for this process (RLIMIT_AS): an allocation beyond it raises "
                             "MemoryError, reported as a violation, instead of exhausting the machine")
    args = parser.parse_args()
    limit = int(args.memory_limit * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    budget = args.budget or (60.0 if args.long else 5.0)
    broken = 0
    with tempfile.TemporaryDirectory(prefix="tfckpt-contracts-") as scratch:
        for family in FAMILIES.values():
            if args.family and family.name not in args.family:
                continue
            series = family.long_series if args.long else family.series
            for name in family.entry_points:
                directory = Path(scratch) / f"{family.name}-{name}".replace(" ", "_").replace("[]", "item")
                try:
                    result = sweep_and_check(family.name, family.build, name, ENTRY_POINTS[name], series,
                                             directory, repeats=3, budget=budget,
                                             max_exponent=args.max_exponent or family.max_exponent,
                                             peak=family.peak)
                    time_k, memory_k = result.exponents()
                    last = result.points[-1]
                    print(f"{family.name:26} {name:16} time^{time_k:5.2f} memory^{memory_k:5.2f}  at n={last.n}: "
                          f"{last.seconds * 1e6 / max(last.input_bytes, 1):7.3f} us/B, peak {last.peak / max(last.input_bytes, 1):6.1f} x input, "
                          f"{last.outcome}", flush=True)
                except ContractViolation as exc:
                    broken += 1
                    print(f"BROKEN {family.name} / {name}: {exc}", flush=True)
        if not args.family:
            for case, (build, n, names) in CASES.items():
                path = build(Path(scratch) / case.replace(" ", "_").replace("*", "^"), n)
                for name in names:
                    try:
                        print(f"{case:36} {name:16} {classify(ENTRY_POINTS[name], path, f'{name} on {case}')}",
                              flush=True)
                    except ContractViolation as exc:
                        broken += 1
                        print(f"BROKEN {case} / {name}: {exc}", flush=True)
    print(f"{broken} broken", flush=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
