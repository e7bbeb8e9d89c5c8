"""The ``repro`` command: list, run and render the study's notebooks; inspect the run store.

    repro list                                 notebooks and their parameters
    repro run 00_world -p corpus_docs=500      execute one notebook (validated before a kernel starts)
    repro run 00 --profile smoke               ... on another profile (name or YAML file)
    repro run-all --profile tiny               every notebook, in order
    repro run-all -j 2                         ... two at a time, each after the notebooks it needs
    repro sweep configs/sweeps/NAME.yaml -j 2  papermill batch runs over parameter sets and seeds
    repro sweep NAME --seeds 0,1 --dry-run     ... which runs are done, failed or pending
    repro book                                 build the book from the executed notebooks
    repro check-book --screenshot front.png    open every built page in headless Chromium
    repro publish                              push the built book to the gh-pages branch of origin
    repro status                               the stages in the run store
    repro compare runs/ other-runs/            did two stores get the same numbers? (exit 1 if not)

Bad input gets a one-line message and exit code 2; a notebook whose cell fails exits with 1 and
keeps the executed copy for inspection. A sweep exits with 1 if any of its runs failed (the others
finish; a rerun retries only the failed and missing runs).
`repro check-book` exits with 1 when a page of the book has a problem (each is listed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repro import paths
from repro.book.browser import check_book
from repro.book.build import build_book
from repro.book.publish import publish
from repro.errors import ReproError
from repro.runs import notebooks
from repro.runs.compare import differences
from repro.runs.parallel import check, run_parallel
from repro.runs.store import STORAGE_ERRNOS, RunStore, StoreError
from repro.runs.sweep import parse_seeds, run_sweep, sweep_status
from repro.runs.timings import RunAllTiming, cold_seconds


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, default=None,
                        help="run store folder (default: $REPRO_STORE or runs/ in the checkout)")


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=None,
                        help="tiny (default), smoke, paper-scale profiles by name, or a YAML file")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where executed notebooks go (default: book/generated)")
    parser.add_argument("--no-progress", action="store_true",
                        help="print no progress: neither the stage lines nor, on a terminal, the bar over the cells")
    parser.add_argument("--rerun", action="store_true",
                        help="execute the notebook even if its executed copy was made from the same inputs and "
                             "stages (by default that copy is kept)")
    _store_option(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="repro", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="the notebooks with their parameters (types, defaults, help)")

    run = sub.add_parser("run", help="execute one notebook with papermill")
    run.add_argument("notebook", help="name (00_world), number prefix (00) or path")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="override a parameter (repeatable); values are YAML: 3, 0.5, true, [0, 1]")
    _run_options(run)

    run_all = sub.add_parser("run-all", help="execute every notebook in order")
    run_all.add_argument("-j", "--jobs", type=int, default=1,
                         help="notebooks at once, each after those it needs, each with its share of the cores "
                              "(default 1: one after the other in this process)")
    _run_options(run_all)

    sweep = sub.add_parser("sweep", help="run a notebook over a sweep file's parameter sets and seeds")
    sweep.add_argument("file", help="sweep YAML file, or a name in configs/sweeps/")
    sweep.add_argument("-j", "--jobs", type=int, default=1,
                       help="worker processes; each gets its share of the cores for its threads (default 1)")
    sweep.add_argument("--profile", default=None,
                       help="tiny (default), smoke, paper-scale profiles by name, or a YAML file")
    sweep.add_argument("--seeds", default=None, metavar="0,1,...", help="override the file's seeds")
    sweep.add_argument("--out", type=Path, default=None,
                       help="sweep folder (default: STORE/sweeps/<file stem>-<profile>)")
    sweep.add_argument("--dry-run", action="store_true",
                       help="list the runs and whether each is done, failed or pending; run nothing")
    _store_option(sweep)

    book = sub.add_parser("book", help="build the Jupyter Book (warnings are errors)")
    book.add_argument("--root", type=Path, default=None, help="book root (default: the checkout)")

    check = sub.add_parser("check-book", help="open every page of the built book in headless Chromium "
                                              "(load errors, JavaScript errors, missing images, broken links)")
    check.add_argument("--html", type=Path, default=None,
                       help="the built HTML folder (default: _build/html in the checkout)")
    check.add_argument("--screenshot", type=Path, default=None, metavar="PATH",
                       help="save a full-page PNG of the front page here")

    publish = sub.add_parser("publish", help="push the built book (_build/html) to a gh-pages branch")
    publish.add_argument("--remote", default="origin", help="git remote to push to (default: origin)")
    publish.add_argument("--branch", default="gh-pages", help="branch to publish to (default: gh-pages)")
    publish.add_argument("--html", type=Path, default=None,
                         help="the built HTML folder (default: _build/html in the checkout)")

    status = sub.add_parser("status", help="the stages in the run store")
    _store_option(status)

    compare = sub.add_parser("compare", help="compare two run stores: stage results, artifacts, claims, sweeps")
    compare.add_argument("store_a", type=Path)
    compare.add_argument("store_b", type=Path)
    return parser


def cmd_list(args) -> int:
    for nb in notebooks.list_notebooks():
        print(nb.stem)
        for param in notebooks.notebook_parameters(nb).values():
            print("    " + param.describe())
    print("profiles: " + ", ".join(notebooks.available_profiles()))
    return 0


def _execute(names: list[str], args, overrides: dict, *, timed: bool = False) -> int:
    """Execute notebooks in order; with ``timed``, append the run's timing record to the store
    (`repro.runs.timings`), also when a notebook fails or the run is interrupted."""
    import time

    profile = notebooks.load_profile(args.profile)
    sources = [notebooks.resolve_notebook(n) for n in names]
    # Validate every notebook's parameters before the first kernel starts.
    plans = [(nb, notebooks.resolve_parameters(nb, profile, overrides)) for nb in sources]
    timing = RunAllTiming.begin(args.store or paths.store_root(), profile["name"]) if timed else None
    status = "failed"
    try:
        for nb, params in plans:
            shown = " ".join(f"{k}={v!r}" for k, v in params.items()) or "(defaults)"
            print(f"repro: running {nb.stem} [profile {profile['name']}] {shown}", file=sys.stderr)
            start = time.perf_counter()
            previous = None if args.rerun else notebooks.kept_run(nb, params, profile=profile,
                                                                  output_dir=args.output_dir, store=args.store)
            if previous is not None:
                out = Path(previous["output"])
                print(f"  kept: nothing it reads has changed since its run {previous['run_id']} "
                      f"(--rerun executes it again)", file=sys.stderr, flush=True)
            else:
                out = notebooks.execute(nb, params, profile=profile, output_dir=args.output_dir, store=args.store,
                                        progress=not args.no_progress)
            if timing is not None:
                timing.notebook_done(nb.stem, time.perf_counter() - start, kept=previous is not None)
            print(out)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if timing is not None:
            print(timing.summary(timing.finish(status)), file=sys.stderr)
    return 0


def cmd_run(args) -> int:
    return _execute([args.notebook], args, notebooks.parse_assignments(args.param))


def cmd_run_all(args) -> int:
    sources = notebooks.list_notebooks()
    if args.jobs == 1:
        return _execute([nb.stem for nb in sources], args, {}, timed=True)

    profile = notebooks.load_profile(args.profile)
    for nb in sources:  # every notebook's parameters are checked before the first one starts
        notebooks.resolve_parameters(nb, profile, {})
    store = args.store or paths.store_root()
    timing = RunAllTiming.begin(store, profile["name"])
    outcomes, status = [], "failed"
    try:
        outcomes = run_parallel(sources, args.jobs, logs=Path(store) / "logs", profile=args.profile,
                                output_dir=args.output_dir, store=args.store, rerun=args.rerun,
                                seconds=cold_seconds(store, profile["name"]),
                                echo=lambda line: print(line, file=sys.stderr, flush=True))
        status = "complete" if all(o.status == "complete" for o in outcomes) else "failed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        for outcome in outcomes:
            if outcome.status == "complete":
                timing.notebook_done(outcome.notebook, outcome.seconds)
        print(timing.summary(timing.finish(status, jobs=args.jobs)), file=sys.stderr)
    check(outcomes)
    return 0


def cmd_sweep(args) -> int:
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    if args.dry_run:
        sweep, directory, states = sweep_status(args.file, profile=args.profile, seeds=seeds, out=args.out,
                                                store=args.store)
        print(f"sweep {sweep.name}: {sweep.notebook.stem} [profile {sweep.profile['name']}]"
              + (f" - {sweep.description}" if sweep.description else ""))
        width = max(len(s.run.label) for s in states)
        for state in states:
            error = f"  {state.error}" if state.error else ""
            print(f"  {state.run.id}  {state.run.label:<{width}}  {state.status}{error}")
        counts = {s: sum(st.status == s for st in states) for s in ("done", "failed", "pending")}
        print(f"runs: {len(states)}  " + "  ".join(f"{k}: {v}" for k, v in counts.items()))
        print(f"folder: {directory}")
        return 0
    result = run_sweep(args.file, profile=args.profile, jobs=args.jobs, out=args.out, store=args.store,
                       seeds=seeds, progress=True)
    print(result.summary())
    return 0 if result.ok else 1


def cmd_book(args) -> int:
    print(build_book(args.root))
    return 0


def cmd_publish(args) -> int:
    sha = publish(args.html, remote=args.remote, branch=args.branch)
    print(f"published {sha} to {args.branch} of {args.remote}")
    return 0


def cmd_check_book(args) -> int:
    report = check_book(args.html or paths.project_root() / "_build" / "html", screenshot=args.screenshot)
    print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def cmd_status(args) -> int:
    store = RunStore(args.store or paths.store_root())
    stages = store.stages()
    if not stages and not store.incomplete() and not store.failures():
        print(f"no stages in {store.root}")
        return 0
    print(f"{'stage':<28} {'key':<17} {'status':<11} {'seed':>5} {'time':>9}  finished")
    for st in stages:
        m = st.manifest
        print(f"{st.name:<28} {st.key:<17} {m['status']:<11} {m.get('seed', '')!s:>5} "
              f"{m.get('duration_s', 0):>8.1f}s  {m.get('finished', '')}")
    for failed in store.failures():
        print(f"{failed['name']:<28} {failed['key']:<17} {'failed':<11} {failed.get('seed', '')!s:>5} "
              f"{failed.get('duration_s', 0):>8.1f}s  {failed.get('error', '')[:60]}")
    for tmp in store.incomplete():
        print(f"{tmp.name:<46} {'unfinished (running or interrupted; resumed on the next run)'}")
    print(f"store: {store.root}")
    return 0


def cmd_compare(args) -> int:
    for root in (args.store_a, args.store_b):
        if not (root / "stages").is_dir():
            raise StoreError(f"{root} is not a run store (it has no stages/ folder)")
    found = differences(args.store_a, args.store_b)
    for line in found:
        print(line)
    stages = len(RunStore(args.store_a).stages())
    print(f"{stages} stages compared: " + ("the same numbers" if not found else f"{len(found)} difference(s)"))
    return 1 if found else 0


COMMANDS = {"list": cmd_list, "run": cmd_run, "run-all": cmd_run_all, "sweep": cmd_sweep, "book": cmd_book,
            "check-book": cmd_check_book,
            "publish": cmd_publish, "status": cmd_status, "compare": cmd_compare}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ReproError as exc:
        first, _, rest = str(exc).partition("\n")
        print(f"repro: error: {first}", file=sys.stderr)
        if rest:
            print(rest, file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.errno not in STORAGE_ERRNOS:
            raise
        where = f" at {exc.filename}" if exc.filename else ""
        print(f"repro: error: {exc.strerror or exc}{where}; finished stages are kept: free space or fix the "
              "permissions and rerun to resume", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("repro: interrupted; finished stages are kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
