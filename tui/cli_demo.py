"""``academy-tui demo``: run the fibonacci workflow on real academy-py and show it."""

from __future__ import annotations

import argparse
import sys


def demo(args: argparse.Namespace) -> int:
    """Run the demo workflow; with ``--no-tui`` print the pool path and the report,
    otherwise open the app on the run while it is written."""
    from features import report
    from features.run import Run
    from steering.demo import DemoOptions, run_demo
    from tui.cli import CliError

    exchange = args.exchange or ("http" if args.executor == "process" else "local")
    if args.executor == "process" and exchange == "local":
        raise CliError("the local exchange cannot cross processes: use --exchange http "
                       "or redis with --executor process")
    host, _, port = args.redis.rpartition(":")
    opts = DemoOptions(
        iterations=args.iterations, sleep=args.sleep, executor=args.executor,
        exchange=exchange,  # type: ignore[arg-type]  # argparse restricts the choices
        pairs=args.pairs, slow_at=args.slow_at,
        slow_factor=args.slow_factor, slow_len=args.slow_len, fail_at=args.fail_at,
        redis_host=host or "127.0.0.1", redis_port=int(port or 6379),
        academy_home=args.home, label="academy-tui demo",
    )
    if not args.no_tui:
        try:
            from tui.app import run_demo_app
        except ImportError:
            sys.stderr.write("academy-tui: the terminal app is not in this build; "
                             "running with --no-tui\n")
        else:
            return int(run_demo_app(opts) or 0)
    naive = 2 * args.sleep * args.iterations
    sys.stderr.write(f"running the fibonacci demo: {args.iterations} iterations x "
                     f"(2 x {args.sleep} s) = {naive:.2f} s naive, {args.executor} executor, "
                     f"{exchange} exchange\n")
    result = run_demo(opts)
    print(f"pool: {result.pool_dir}")
    run = Run(result.pool_dir)
    run.load()
    sys.stdout.write(report.render_text(report.build(run, expected_s=naive)))
    if not result.ok:
        sys.stderr.write(f"academy-tui: the workflow failed: {result.error}\n")
    return 0
