"""Achieved model FLOP/s of tiny-model training and generation against a float32 matmul peak measured
in the same run with the same torch threads (interleaved); the ratio is the fraction of peak.

    python -m benchmarks.bench_flops --out bench-results/flops.json
    python -m benchmarks.bench_flops --quick --out /tmp/flops.json
"""

from dataclasses import replace

from benchmarks.harness import finish, script_arguments
from benchmarks.perf import flops


def main(argv=None):
    args = script_arguments(__doc__, "bench-results/flops.json", argv)
    spec = flops.QUICK if args.quick else flops.FlopsBench()
    spec = replace(spec, repeats=args.repeats or spec.repeats)
    rows, table = flops.run(spec)
    return finish(args, "flops", "Model FLOP/s against the machine's matmul peak", rows, tables={"FLOP/s": table})


if __name__ == "__main__":
    main()
