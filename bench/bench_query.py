"""Time the filter language on the benchmark pool.

    python bench/bench_query.py [POOL_DIR]     # default: bench/.data/pool-1m

Each filter is timed on its first evaluation (columns read from the files, message tests
computed) and again (caches warm), on the same snapshot; then once more on a snapshot of
the same store, as the TUI does while a run is live.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from features.events import Events
from features.loader import load
from features.query import evaluate, parse, select
from features.reader import PoolReader

DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".data", "pool-1m")

FILTERS = [
    "levelno>=30",
    "level>=warning",
    "academy.action=next_item",
    "academy.action_tag=4F2CAE67-976E-408D-8905-CD181007C3E8",
    'message~"fib step 9"',
    r'message~"fib step \d+ -> 1"',
    "timeout",
    "fib.iteration>70000",
    "fib.iteration>8000",
    "has:exc_text",
    "exc_text!=None",
    "levelno>=20 fib",
    "not academy.action=next_item or @t<1",
]


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    if not os.path.isdir(path):
        print(f"no pool at {path}; build one with bench/make_pool.py")
        return
    t = time.perf_counter()
    r = PoolReader(path)
    load(r)
    ev = Events(r.store)
    print(f"load: {time.perf_counter() - t:.2f} s, {ev.n:,} events\n")
    print(f"{'filter':58s} {'rows':>9s} {'first':>9s} {'again':>9s} {'select':>9s}")
    for text in FILTERS:
        node = parse(text)
        t0 = time.perf_counter()
        m = evaluate(node, ev)
        t1 = time.perf_counter()
        evaluate(node, ev)
        t2 = time.perf_counter()
        rows = select(Events(r.store), node)
        t3 = time.perf_counter()
        assert len(rows) == int(m.sum())
        print(f"{text:58s} {int(m.sum()):9,d} {(t1 - t0) * 1e3:7.1f}ms {(t2 - t1) * 1e3:7.1f}ms"
              f" {(t3 - t2) * 1e3:7.1f}ms")


if __name__ == "__main__":
    main()
