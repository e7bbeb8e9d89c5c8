"""Scaling of one self-rewarding iteration: time and peak memory at 1x, 2x, 4x, 8x the prompts.

Each scale runs one iteration (self-instruct prompts -> N candidates -> K self-judgments -> pairs ->
DPO from M1 to M2) in its own process on a fresh temporary run store, on the self-rewarding notebook's
parameters (the tiny profile: its own defaults, 500 new prompts at 1x). M1 and what it is built from
come from a shared run store (built there once if missing). The logic is `benchmarks.scaling`.

Run (from the project root):
    python -m benchmarks.bench_scaling                        # 1 2 4 8 x 500 prompts -> bench-results/scaling.json
    python -m benchmarks.bench_scaling --base-prompts 250 --scales 1 2 4 8 --repeats 2
    python -m benchmarks.bench_scaling --quick --scales 1 2 --out /tmp/scaling.json   # a smoke test

``--quick`` runs the smoke profile's study (an XS model on a small corpus, a few prompts), with M1
built into a temporary store unless ``--shared-store`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from benchmarks import scaling
from repro.paths import store_root

#: The quick mode: the smoke profile; its M0 (trained on 300 documents) writes no valid world task, so its
#: new prompts are chat-style (any text the keyword and near-duplicate filters keep), scored NaN by the oracle.
QUICK_OVERRIDES = {"new_prompts": 8, "prompt_style": "chat"}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4, 8], help="prompt multipliers (default 1 2 4 8)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per scale (default 1; the median is reported)")
    parser.add_argument("--quick", action="store_true", help="the smoke profile at a small base, for a smoke test")
    parser.add_argument("--profile", help="profile of the study's parameters (default tiny; --quick: smoke)")
    parser.add_argument("--base-prompts", type=int, help="new prompts at 1x (default: the profile's new_prompts)")
    parser.add_argument("--shared-store", type=Path,
                        help="run store holding (or to hold) M0 and M1 (default: the project's runs/; "
                             "--quick: a temporary one)")
    parser.add_argument("--threads", type=int, help="torch threads in each measured process (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-results/scaling.json"))
    args = parser.parse_args(argv)

    profile = args.profile or ("smoke" if args.quick else None)
    overrides = QUICK_OVERRIDES if args.quick else None
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        if args.shared_store:
            shared = args.shared_store
        elif args.quick:
            shared = Path(tmp) / "shared"
        else:
            shared = store_root()
        report = scaling.run_benchmark(args.scales, shared_store=shared.resolve(), profile=profile,
                                       base_prompts=args.base_prompts, overrides=overrides,
                                       repeats=args.repeats, seed=args.seed, threads=args.threads,
                                       work_dir=Path(tmp), log=lambda line: print(line, flush=True))
    report["settings"]["quick"] = args.quick

    print(f"\n{'scale':>5} {'prompts':>7} {'time s':>8} {'s/prompt':>9} {'t ratio':>8} {'peak MiB':>9} "
          f"{'m ratio':>8} {'instr s':>8} {'gen s':>7} {'judge s':>8} {'train s':>8}")
    for r in report["tables"]["scaling"]:
        per = f"{r['time_per_prompt_s']:.4f}" if r["time_per_prompt_s"] is not None else "-"
        print(f"{r['scale']:>5} {r['prompts']:>7} {r['time_s']:>8.1f} {per:>9} {r['time_ratio']:>8.2f} "
              f"{r['peak_rss_mib']:>9.0f} {r['memory_ratio']:>8.3f} {r['self_instruct_s']:>8.1f} "
              f"{r['generation_s']:>7.1f} {r['judging_s']:>8.1f} {r['training_s']:>8.1f}")
    print("\n" + report["notes"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
