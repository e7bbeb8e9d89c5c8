"""Judging throughput on the tiny profile's models (untrained), interleaved: (a) K judge samples
sharing one prompt (n=K) against K generate calls with n=1; (b) the RLAIF read-out from next-token
log-probabilities against generating the answer token.

    python -m benchmarks.bench_judging --out bench-results/judging.json
    python -m benchmarks.bench_judging --quick --out /tmp/judging.json
"""

from dataclasses import replace

from benchmarks.harness import finish, script_arguments
from benchmarks.perf import judging


def main(argv=None):
    args = script_arguments(__doc__, "bench-results/judging.json", argv)
    spec = judging.QUICK if args.quick else judging.JudgingBench()
    spec = replace(spec, repeats=args.repeats or spec.repeats)
    return finish(args, "judging", "Judging: shared judge prompts and the RLAIF read-out", judging.run(spec))


if __name__ == "__main__":
    main()
