"""A finished run-store stage reused against recomputed (world-corpus and pretrain-m0, in a temporary
store), interleaved; stages/s and their ratio.

    python -m benchmarks.bench_stages --out bench-results/stages.json
    python -m benchmarks.bench_stages --quick --out /tmp/stages.json
"""

from dataclasses import replace

from benchmarks.harness import finish, script_arguments
from benchmarks.perf import stages


def main(argv=None):
    args = script_arguments(__doc__, "bench-results/stages.json", argv)
    spec = stages.QUICK if args.quick else stages.StagesBench()
    spec = replace(spec, repeats=args.repeats or spec.repeats)
    return finish(args, "stages", "Run store: a finished stage reused against recomputed", stages.run(spec))


if __name__ == "__main__":
    main()
