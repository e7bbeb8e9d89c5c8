"""Generation throughput: `HFGenerator` (batched) against one `model.generate` call per prompt, on the
tiny profile's M0 (untrained), interleaved; tokens/s and their ratio (target >= 20x).

    python -m benchmarks.bench_generation --out bench-results/generation.json
    python -m benchmarks.bench_generation --quick --out /tmp/generation.json
"""

from dataclasses import replace

from benchmarks.harness import finish, script_arguments
from benchmarks.perf import generation


def main(argv=None):
    args = script_arguments(__doc__, "bench-results/generation.json", argv)
    spec = generation.QUICK if args.quick else generation.GenerationBench()
    spec = replace(spec, repeats=args.repeats or spec.repeats)
    return finish(args, "generation", "Generation: batched against one prompt at a time", generation.run(spec))


if __name__ == "__main__":
    main()
