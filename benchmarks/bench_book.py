"""`make book` cold against warm, from the timing records that `repro run-all` appends to
<run store>/timings/run-all.jsonl: the latest complete cold and warm runs, their ratio, peak memory and
the targets (cold <= 30 min, warm <= 30 s). `make bench` runs it last; it reads runs, it does not time
anything itself. Measure by running `make clean-runs && make book` (cold), then `make book` (warm).

    python -m benchmarks.bench_book --out bench-results/book.json [--store runs] [--profile tiny]
"""

import argparse
from pathlib import Path

from benchmarks.harness import finish
from benchmarks.perf import book
from repro import paths
from repro.runs.timings import read_records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-results/book.json", help="results JSON")
    parser.add_argument("--store", type=Path, default=None, help="run store (default: $REPRO_STORE or runs/)")
    parser.add_argument("--profile", default="tiny", help="the profile whose runs are compared (default tiny)")
    args = parser.parse_args(argv)
    args.quick = False
    rows, tables = book.report(read_records(args.store or paths.store_root()), args.profile)
    for row in tables["targets"]:
        print(row)
    return finish(args, "book", f"make book: cold and warm ({args.profile} profile)", rows, tables=tables)


if __name__ == "__main__":
    main()
