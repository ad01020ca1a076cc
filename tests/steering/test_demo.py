"""Real runs of the demo workflow with real academy-py, checked through the pools they write."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from academy.exchange import LocalExchangeFactory
from academy.logging.helpers import JSONHandler
from academy.manager import Manager
from steerkit import redis_server

from steering.demo import DemoOptions, DemoResult, run_demo, run_demo_async
from steering.demo.fibagents import GeneratorAgent, validate_sleep

FIBS = [1, 1, 2, 3, 5, 8, 13, 21]
SLEEP = 0.02

Record = dict[str, Any]


def read_pool(pool_dir: Path) -> dict[str, list[Record]]:
    """File name -> records; fails the test on any line that is not one JSON object."""
    files: dict[str, list[Record]] = {}
    for path in sorted(pool_dir.glob('*.jsonlog')):
        records = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            rec = json.loads(line)
            assert isinstance(rec, dict), f'{path.name}:{n} is not a JSON object'
            records.append(rec)
        files[path.name] = records
    return files


def states(records: list[Record], action: str) -> list[str]:
    return [r['academy.action_state'] for r in records
            if r.get('academy.action') == action and 'academy.action_state' in r]


def tags(records: list[Record], action: str, state: str) -> set[str]:
    return {r['academy.action_tag'] for r in records
            if r.get('academy.action') == action and r.get('academy.action_state') == state}


def messages(records: list[Record], prefix: str) -> list[Record]:
    return [r for r in records if r['msg'].startswith(prefix)]


def generator_steps(records: list[Record]) -> dict[int, float]:
    """Iteration -> delay_s of the generator's own records."""
    return {int(r['fib.iteration']): float(r['fib.delay_s'])
            for r in records if r['name'] == 'steering.demo.fibagents' and 'fib.delay_s' in r}


def run(tmp_path: Path, **kw: Any) -> DemoResult:
    kw.setdefault('iterations', 6)
    kw.setdefault('sleep', SLEEP)
    return run_demo(DemoOptions(academy_home=tmp_path, step_timeout=60, **kw))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def assert_split_by_process(pool: dict[str, list[Record]], iterations: int) -> None:
    """Caller-side records in the driver's file, execute_* in the agent's; joined by tag."""
    assert len(pool) >= 2
    (driver,) = [recs for recs in pool.values() if messages(recs, 'workflow start')]
    (agent,) = [recs for recs in pool.values() if generator_steps(recs)]
    assert driver is not agent
    assert states(driver, 'next_item').count('success') == iterations
    assert not any(s.startswith('execute_') for s in states(driver, 'next_item'))
    assert states(agent, 'next_item').count('execute_success') == iterations
    assert set(states(agent, 'next_item')) == {'execute_start', 'execute_success'}
    caller = tags(driver, 'next_item', 'success')
    assert len(caller) == iterations
    assert caller == tags(agent, 'next_item', 'execute_success')


def test_thread_local_pool(tmp_path: Path) -> None:
    seen: list[tuple[Path, bool]] = []
    result = run_demo(
        DemoOptions(iterations=8, sleep=SLEEP, academy_home=tmp_path, step_timeout=60),
        on_pool=lambda p: seen.append((p, any(p.glob('*.jsonlog')))),
    )
    assert result.ok, result.error
    assert result.pool_dir == tmp_path.resolve() / 'logs' / result.pool_uuid
    assert seen == [(result.pool_dir, True)]  # called once, with the driver's file already open
    assert result.results[0].values == FIBS
    assert result.wall_s >= result.naive_s == pytest.approx(2 * SLEEP * 8)

    pool = read_pool(result.pool_dir)
    assert len(pool) == 1
    (records,) = pool.values()
    st = states(records, 'next_item')
    for state in ('start', 'success', 'execute_start', 'execute_success'):
        assert st.count(state) == 8, state
    assert tags(records, 'next_item', 'start') == tags(records, 'next_item', 'execute_success')
    assert sorted(generator_steps(records)) == list(range(8))
    driver_iters = [int(r['fib.iteration']) for r in messages(records, 'pair %d: iteration')]
    assert driver_iters == list(range(8))
    assert len(messages(records, 'workflow start')) == 1
    (end,) = messages(records, 'workflow end')
    summary = json.loads(end['message'].removeprefix('workflow end: '))
    assert summary['rc'] == 0
    assert summary['results'][0]['count'] == 8
    assert end['fib.label'] == 'demo'


def test_process_http_pool(tmp_path: Path) -> None:
    result = run(tmp_path, executor='process', exchange='http')
    assert result.ok, result.error
    assert result.results[0].values == FIBS[:6]
    assert_split_by_process(read_pool(result.pool_dir), 6)


def test_slowdown_at_iteration(tmp_path: Path) -> None:
    result = run(tmp_path, slow_at=3, slow_factor=5.0)
    assert result.ok, result.error
    (records,) = read_pool(result.pool_dir).values()
    delays = generator_steps(records)
    assert sorted(delays) == list(range(6))
    for i, delay in delays.items():
        assert delay == pytest.approx(5 * SLEEP if i == 3 else SLEEP), i


def test_delay_for_slow_len() -> None:
    gen = GeneratorAgent(0.1, slow_at=2, slow_factor=4.0, slow_len=3)
    assert [gen.delay_for(i) for i in range(6)] == pytest.approx([0.1, 0.1, 0.4, 0.4, 0.4, 0.1])


def test_injected_failure(tmp_path: Path) -> None:
    result = run(tmp_path, fail_at=2)
    assert not result.ok
    assert result.error is not None
    assert "RuntimeError('injected failure at iteration 2')" in result.error
    assert result.results[0].values == [1, 1]
    assert result.results[0].error == "RuntimeError('injected failure at iteration 2')"

    (records,) = read_pool(result.pool_dir).values()
    failed = tags(records, 'next_item', 'execute_exception')
    assert len(failed) == 1
    assert failed == tags(records, 'next_item', 'exception')
    (pair_failed,) = messages(records, 'pair failed')
    assert pair_failed['levelname'] == 'ERROR'
    assert 'injected failure at iteration 2' in pair_failed['exc_text']
    assert len(messages(records, 'workflow end')) == 1


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    """A throwaway redis-server on a free loopback port (steerkit's, the one the tests
    share), killed afterwards."""
    with redis_server(tmp_path) as port:
        yield port


# academy's Redis transport closes its client with redis-py 7's deprecated close().
@pytest.mark.filterwarnings('ignore:Call to deprecated close:DeprecationWarning')
def test_process_redis_pool(tmp_path: Path, redis_port: int) -> None:
    home = tmp_path / 'home'
    result = run(home, executor='process', exchange='redis', redis_port=redis_port)
    assert result.ok, result.error
    assert result.results[0].values == FIBS[:6]
    assert_split_by_process(read_pool(result.pool_dir), 6)


@pytest.mark.parametrize('outer', ['set', 'unset'])
def test_restores_environment_and_root_logger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outer: str,
) -> None:
    outer_home = tmp_path / 'outer'
    if outer == 'set':
        monkeypatch.setenv('ACADEMY_HOME', str(outer_home))
    else:
        monkeypatch.delenv('ACADEMY_HOME', raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    result = run(tmp_path / 'inner', iterations=2, sleep=0.01)

    assert result.ok, result.error
    assert os.environ.get('ACADEMY_HOME') == (str(outer_home) if outer == 'set' else None)
    assert result.pool_dir.is_relative_to((tmp_path / 'inner').resolve())
    assert not outer_home.exists()
    assert root.handlers == handlers
    assert not any(isinstance(h, JSONHandler) for h in root.handlers)
    assert root.level == level


def test_process_with_local_exchange_is_refused() -> None:
    with pytest.raises(ValueError, match='local exchange'):
        DemoOptions(executor='process', exchange='local')


async def test_run_demo_async_and_steering_actions(tmp_path: Path) -> None:
    """The steerable sleep: get/set through a real handle, out-of-range values refused."""
    result = await run_demo_async(DemoOptions(iterations=1, sleep=0.01, academy_home=tmp_path))
    assert result.ok, result.error

    async with await Manager.from_exchange_factory(LocalExchangeFactory()) as manager:
        gen = await manager.launch(GeneratorAgent, kwargs={'sleep': 0.01})
        assert await gen.get_sleep() == pytest.approx(0.01)
        assert await gen.set_sleep(0.0) == pytest.approx(0.01)
        assert await gen.next_item() == 1
        for bad in (-1, 61, float('nan'), True, '1'):
            with pytest.raises(ValueError):
                await gen.set_sleep(bad)
        assert await gen.get_sleep() == 0.0
    with pytest.raises(ValueError):
        validate_sleep(60.5)


def test_cli_prints_pool(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != 'ACADEMY_HOME'}
    proc = subprocess.run(
        [sys.executable, '-m', 'steering.demo.workflow', '--iterations', '3', '--sleep', '0.01',
         '--academy-home', str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    pool_dir = Path(proc.stdout.splitlines()[-1])
    assert pool_dir.parent == tmp_path.resolve() / 'logs'
    assert len(list(pool_dir.glob('*.jsonlog'))) == 1
    assert 'RuntimeWarning' not in proc.stderr
