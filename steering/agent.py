"""The steering agent: a real Academy agent that watches a run's pool and steers it.

>>> steer = await launch_steering(manager, log_config=cfg, mode="apply")   # in the workflow
>>> await steer.suggestions()                      # what it proposed, and what became of it
>>> await steer.approve("s1")                      # mode "confirm": apply a pending one

Its ``@loop`` tails the pool (:class:`steering.watch.Watch`, in a worker thread), keeps a live
slowdown detector, and on each new incident: writes a summary (the LLM when configured, a
template otherwise or on any failure), picks a remedy among the declared steerable actions
of the workflow's agents (:mod:`steering.policy`: in-bounds values only, rate limited), and
acts by mode: ``suggest`` records it, ``confirm`` waits for :meth:`SteeringAgent.approve`,
``apply`` calls it. After a call it checks the effect on later calls and reverts or
escalates when the slowdown did not end (:mod:`steering.steerer`). Every step is an audit
event (:mod:`steering.audit`) in the run's pool, signed with the session's secret. A failing
step is logged and the loop goes on; the agent never raises into the workflow.

Trust (SECURITY.md R2, R3, R6): at start-up it writes its session file for its user (0600,
outside the pool: :mod:`features.trust`) with a fresh secret; ``approve``/``reject`` are
obeyed only with a proof made with that secret over the exact call approved. It speaks JSON
only on the exchange (:mod:`steering.wire`): it accepts no pickled request and unpickles no
reply.

Beside it: the model's decision within its time limit (:mod:`steering.model_decision`) and
what the agent writes about itself (:mod:`steering.agent_notes`; ``observation`` stays
importable from here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

from academy.agent import Agent, action, loop
from academy.context import ActionContext
from academy.handle import Handle
from academy.home import get_academy_home
from academy.manager import Manager
from academy.runtime import RuntimeConfig

from features.trust import ApprovalCheck, Session, TrustError, create_session
from steering.agent_notes import observation, unsteerable_by_class
from steering.audit import Audit
from steering.knobs import as_data, knobs_of, parse_knobs
from steering.llm_config import LLMConfig
from steering.model_decision import decide_in_time
from steering.offloop import OffLoop
from steering.policy import Remedy
from steering.recovery import Orphan, orphans
from steering.steerer import MODES, Mode, Steerer, SteeringOptions, Suggestion
from steering.summary import Decision, template
from steering.targets import Claim, Targets, class_paths, import_class, normalise_targets
from steering.watch import SteerIncident, Watch
from steering.wire import JSON_RUNTIME, exchange_url, json_handle

OWN_CLASSES = {"SteeringAgent"}


class SteeringAgent(Agent):
    """Watch the run whose pool is ``pool_dir`` and steer its agents (see the module doc).

    Args:
        pool_dir: The run's pool directory.
        mode: ``suggest`` (default), ``confirm`` or ``apply``.
        targets: Agents it may steer (uuids, class names or ``module:Class`` paths, see
            :func:`steering.targets.normalise_targets`); default every agent of a known
            class.
        llm: An :class:`LLMConfig`, ``None`` (template only) or ``"auto"`` (load the user's).
        options: :class:`SteeringOptions`.
        classes: ``module:Class`` paths of agent classes to import here for their
            declarations (what the launching process had loaded; see ``launch_steering``).
        knobs: Declarations from outside the workflow's code (:mod:`steering.knobs`): a
            knobs file's path, or its parsed form.
    """

    def __init__(self, pool_dir: str, *, mode: Mode = "suggest",
                 targets: list[str] | None = None, llm: LLMConfig | str | None = "auto",
                 options: SteeringOptions | None = None,
                 classes: list[str] | None = None, knobs: Any = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.pool_dir = str(pool_dir)
        self.mode: Mode = mode
        self.targets_wanted = normalise_targets(targets)
        self.llm = llm
        self.options = options or SteeringOptions()
        self.classes = sorted({*(classes or ()),
                               *(t for t in self.targets_wanted or () if ":" in t)})
        # Checked here, in the launching process (a bad file fails the launch, with the line
        # that is wrong); travels as plain data.
        self.knobs = as_data(knobs_of(knobs))

    # -- lifecycle ---------------------------------------------------------------------

    async def agent_on_startup(self) -> None:
        o = self.options
        me = str(self.agent_id.uid).lower()
        self.session: Session | None = None
        self.session_note = ""
        try:
            self.session = create_session(me, self.pool_dir, self._exchange(), self.mode)
        except (TrustError, ValueError) as exc:  # steering goes on; approvals cannot
            self.session_note = str(exc)
        secret = self.session.secret if self.session is not None else None
        self.audit = Audit(me, str(self.agent_id), self.mode, secret=secret)
        # One budget: the pause after a poll keeps cheap polls to it, the watch keeps its
        # full judgements (whose cost grows with the run) to it.
        self.watch_ = Watch(self.pool_dir, o.hung_every_s, o.stale_s, budget=o.cpu_budget)
        loaded, self.class_notes = [], []
        for path in self.classes:
            try:
                loaded.append(import_class(path))
            except Exception as exc:  # a user's typo must not stop steering
                self.class_notes.append(f"{path}: {type(exc).__name__}: {exc}"[:200])
        self.targets_ = Targets(me, self.targets_wanted, o.call_timeout_s, OWN_CLASSES,
                                loaded, parse_knobs(self.knobs))
        self.steerer = Steerer(self.audit, self.targets_, o, self.mode, self._decide,
                               ApprovalCheck(me, secret))
        self.steerer.ratio_threshold = float(self.watch_.live.detector.ratio_threshold)
        self.called: set[str] = set()
        """Actions this agent calls on others (their incidents are not the workflow's)."""
        self.claims: list[Claim] = []
        self.claims_seen_ = 0
        self.unsteerable_: dict[str, int] = {}
        """Agent classes already said to have nothing to steer, with how many agents."""
        self.orphans_: list[Orphan] | None = None
        """Unchecked changes of earlier steering agents still to adopt (None: not read)."""
        self.stats_ = {"polls": 0, "records": 0, "judged": 0, "errors": 0,
                       "step_cpu_s": 0.0, "decide_cpu_s": 0.0, "last_step_cpu_s": 0.0,
                       "judge_every_s": 0.0}
        self.client: Any = None
        self.started = time.monotonic()
        self.stopped = False
        self.loop_cpu0 = time.thread_time()
        self.llm_note = self._make_client()

    def _make_client(self) -> str:
        self.offloop = OffLoop()
        """Runs the model calls: bounded, given up on stop (see :mod:`steering.offloop`)."""
        cfg = self.llm
        try:
            if cfg == "auto":
                cfg = LLMConfig.load()
            if not isinstance(cfg, LLMConfig) or not cfg.configured:
                return "template"
            from steering.llm import LLMClient

            self.client = LLMClient(cfg.replace(
                timeout_s=min(cfg.timeout_s, self.options.llm_timeout_s), max_retries=0))
            return f"llm {cfg.model}"
        except Exception as exc:  # a broken config must not stop steering
            return f"template ({type(exc).__name__}: {str(exc)[:200]})"

    def _exchange(self) -> str:
        """The exchange approvals reach this agent over (``steering.exchange``), so the
        TUI and ``steer --approve`` need not be told."""
        try:
            return exchange_url(self.agent_exchange_client.factory())
        except Exception:  # knowing it is a convenience only
            return ""

    async def agent_on_shutdown(self) -> None:
        # Before Academy cancels the loop, which may be in the middle of a poll or waiting
        # for the model: that wait ends now (its decision takes the template, recorded
        # within 0.5 s), and the model's thread is left to end alone: joining it made a
        # stop wait out the model's whole time-out (30 s of 30 s, steering.offloop).
        offloop = getattr(self, "offloop", None)
        if offloop is not None:
            await offloop.stop(grace_s=0.5)
        if not self.stopped:
            self.stopped = True
            self._observe()
            self.audit.emit("stop", "steering stopped", reason="shutdown")
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()

    @loop
    async def watch(self, shutdown: asyncio.Event) -> None:
        """Poll the pool until shut down; never raises."""
        o = self.options
        sess = self.session
        self.audit.emit("start", "steering %s in mode %s (%s)", self.pool_dir, self.mode,
                        self.llm_note, pool=self.pool_dir, summaries=self.llm_note,
                        targets=self.targets_wanted, exchange=self._exchange(),
                        classes=self.classes or None, knobs=self.knobs or None,
                        session_file=str(sess.path) if sess is not None else None,
                        approvals="on" if sess is not None else
                        f"off: {self.session_note}")
        for note in self.class_notes:
            self.audit.emit("error", "cannot load agent class %s", note, level=logging.WARNING,
                            reason=note)
        errors = 0
        last_observe = time.monotonic()
        while not shutdown.is_set():
            t0 = time.monotonic()
            try:
                await self._tick()
                errors = 0
            except Exception as exc:
                errors += 1
                self.stats_["errors"] += 1
                self.audit.emit("error", "steering poll failed: %s", f"{type(exc).__name__}: "
                                f"{exc}", level=logging.ERROR, reason=repr(exc)[:300])
                if errors >= o.max_errors:
                    self.stopped = True
                    self.audit.emit("stop", "steering gives up after %d failed polls", errors,
                                    level=logging.ERROR, reason="too many errors")
                    self.agent_shutdown()
                    return
            if time.monotonic() - last_observe >= o.observe_every_s:
                last_observe = time.monotonic()
                self._observe()
            # Keep to the CPU budget by pausing longer after a costly poll (the first one
            # loads the pool and imports the models: not counted), within the latency cap.
            spent = time.monotonic() - t0
            cost = self.stats_["last_step_cpu_s"] if self.stats_["polls"] > 1 else 0.0
            pause = min(max(o.poll_s, cost / o.cpu_budget - spent), o.max_pause_s)
            pause *= min(2 ** errors, 20)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(shutdown.wait(), pause)

    async def _tick(self) -> None:
        steerer = self.steerer
        res = await asyncio.to_thread(self.watch_.step, OWN_CLASSES, set(self.called),
                                      steerer.queries())
        st = self.stats_
        st["polls"] += 1
        st["records"], st["judged"] = res.records, res.judged
        st["step_cpu_s"] += res.cpu_s
        st["last_step_cpu_s"] = res.cpu_s
        st["judge_every_s"] = res.judge_wait_s
        if res.claims is not None:
            self.claims = [Claim(str(c["agent_id"]), str(c["uuid"]), str(c["class"]),
                                 int(c["row"])) for c in res.claims if c.get("uuid")]
        new, conflicts = await self.targets_.update(self.agent_exchange_client, self.claims)
        for c in conflicts:
            self.audit.emit("conflict", "not steering %s: %s", c.agent_id, c.reason,
                            level=logging.WARNING, target=c.agent_id, reason=c.reason,
                            uuids=list(c.uuids))
        for t in new:
            self.called.update(t.specs)
            self.called.update(s.current for s in t.specs.values() if s.current)
            self.audit.emit("targets", "steerable: %s %s (%s)", t.cls, t.agent_id,
                            ", ".join(t.specs), target=t.agent_id, target_uuid=t.uuid,
                            target_class=t.cls, source=t.source,
                            declarations={k: s.as_dict() for k, s in t.specs.items()})
        self._say_unsteerable()
        if self.orphans_ is None and self.watch_.run is not None:
            # Once: changes an earlier steering agent of this run applied and never checked.
            self.orphans_ = await asyncio.to_thread(orphans, self.watch_.run,
                                                    self.audit.session)
        if self.orphans_:
            self.orphans_ = [o for o in self.orphans_ if not steerer.adopt(o)]
        for inc in res.new_incidents:
            await steerer.on_incident(inc)
        for sid, data in res.checks.items():
            await steerer.on_check(sid, data)
        await steerer.tick()

    def _say_unsteerable(self) -> None:
        """Say per agent class which launched agents have nothing to steer (no
        declaration here: neither a loaded @steerable class nor a knob given), so a person
        reading the trail knows what attaching found, agent by agent: once, and again when
        more agents of the class were launched (an agent launched after the first look
        was left out of the count before)."""
        if len(self.claims) == self.claims_seen_:
            return
        self.claims_seen_ = len(self.claims)
        declared = {name for _, name, _, _ in self.targets_.classes()}
        found = {t.uuid for t in self.targets_.found.values()}
        by_cls = unsteerable_by_class(self.claims, OWN_CLASSES, declared, found)
        for cls, ids in sorted(by_cls.items()):
            said = self.unsteerable_.get(cls)
            if (said is not None and len(ids) <= said) or \
                    (said is None and len(self.unsteerable_) >= 50):
                continue
            self.unsteerable_[cls] = len(ids)
            self.audit.emit("targets", "not steerable: %s (%d agent(s): %s): no knob is "
                            "declared for it (decorate an action with @steerable, or give "
                            "a knobs file)", cls, len(ids), ", ".join(ids[:4]),
                            target_class=cls, target=ids[0], source="none",
                            agents=ids[:20])

    def _observe(self) -> None:
        st = self._stats()
        template, args = observation(st, self.options.cpu_budget)
        self.audit.emit("observation", template, *args,
                        records=st["records"], judged=st["judged"], incidents=st["incidents"],
                        targets=len(self.targets_.found), cpu_s=round(st["cpu_s"], 4),
                        wall_s=round(st["wall_s"], 3),
                        judge_every_s=round(st["judge_every_s"], 1) or None)

    # -- incidents and remedies --------------------------------------------------------

    async def _decide(self, inc: SteerIncident, remedies: list[Remedy]) -> Decision:
        """The model's decision within ``llm_timeout_s``, or the template's, saying why
        (:func:`steering.model_decision.decide_in_time`); never waits past a stop."""
        if self.client is None:
            return template(inc, remedies)
        decision, cpu = await decide_in_time(self.client, self.offloop, self.watch_, inc,
                                             remedies, self.options.llm_timeout_s, self.mode)
        if cpu is not None:
            self.stats_["decide_cpu_s"] += cpu
        return decision

    # -- actions -----------------------------------------------------------------------

    @action(context=True)
    async def approve(self, suggestion_id: str, proof: dict[str, Any] | None = None, *,
                      context: ActionContext) -> dict[str, Any]:
        """Apply a pending suggestion (mode ``confirm``) when ``proof`` (made with the
        session's secret: :func:`features.trust.make_approval`) approves exactly its call;
        returns its new state (``status`` ``unknown`` for an id it never made, the current
        one if it is not pending, ``denied`` with the reason when the proof fails)."""
        return await self.steerer.approve(suggestion_id, str(context.source_id), proof)

    @action(context=True)
    async def reject(self, suggestion_id: str, reason: str = "",
                     proof: dict[str, Any] | None = None, *,
                     context: ActionContext) -> dict[str, Any]:
        """Drop a pending suggestion (same proof as ``approve``); returns its new state."""
        return self.steerer.reject(suggestion_id, str(context.source_id), reason, proof)

    @action
    async def suggestions(self) -> list[dict[str, Any]]:
        """Every suggestion so far, with its status."""
        return [s.as_dict() for s in self.steerer.suggestions_.values()]

    @action
    async def history(self, kind: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The last audit events (of one ``steering.kind``)."""
        return self.audit.history(kind, limit)

    @action
    async def stats(self) -> dict[str, Any]:
        """Polls, records read, calls judged, incidents, and CPU seconds spent (the agent's
        own event-loop thread plus its polling and LLM worker threads)."""
        return self._stats()

    def _stats(self) -> dict[str, Any]:
        st: dict[str, Any] = dict(self.stats_)
        st["wall_s"] = time.monotonic() - self.started
        st["loop_cpu_s"] = time.thread_time() - self.loop_cpu0
        st["cpu_s"] = st["loop_cpu_s"] + st["step_cpu_s"] + st["decide_cpu_s"]
        st["targets"] = len(self.targets_.found)
        st["incidents"] = self.steerer.incidents
        st["mode"] = self.mode
        return st


async def launch_steering(manager: Manager[Any], *, log_config: Any = None,
                          mode: Mode = "suggest", targets: Any = None,
                          pool_dir: str | os.PathLike[str] | None = None,
                          llm: LLMConfig | str | None = "auto",
                          options: SteeringOptions | None = None, executor: str | None = None,
                          name: str | None = None, knobs: Any = None
                          ) -> Handle[SteeringAgent]:
    """Launch a :class:`SteeringAgent` on ``manager`` for the run that ``log_config`` (the
    run's ``JSONPoolLogging``) writes, or for ``pool_dir``; its own records go to the same
    pool. Loop errors are kept inside the agent, so its failure never fails the workflow.

    The agent learns what it may steer from the agent classes this process has loaded
    (passed as import paths, so a worker process can import them too), from ``targets`` and
    from ``knobs`` (a knobs file or its parsed form, :mod:`steering.knobs`: the setters a
    workflow already has, undecorated).
    The handle returned speaks JSON, the only thing the agent accepts."""
    if pool_dir is None:
        pool_uuid = getattr(log_config, "uuid", None)
        if not pool_uuid:
            raise ValueError("launch_steering needs log_config (the run's JSONPoolLogging) "
                             "or pool_dir")
        pool_dir = get_academy_home() / "logs" / str(pool_uuid)
    agent = SteeringAgent(os.fspath(pool_dir), mode=mode, targets=normalise_targets(targets),
                          llm=llm, options=options, classes=class_paths(skip=OWN_CLASSES),
                          knobs=knobs)
    config = RuntimeConfig(raise_loop_errors_on_shutdown=False, shutdown_on_loop_error=False,
                           terminate_on_error=True, **JSON_RUNTIME)
    handle = await manager.launch(agent, log_config=log_config, executor=executor, name=name,
                                  config=config)
    return json_handle(handle.agent_id, manager.exchange_client)


__all__ = ["MODES", "SteeringAgent", "SteeringOptions", "Suggestion", "launch_steering"]
