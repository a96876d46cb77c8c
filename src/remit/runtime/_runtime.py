"""The Runtime: start a run, resume it after a crash, read its outcome.

>>> from remit import Remit, Budget, Runtime
>>> rt = Runtime(journal="runs.db", agent=MyAgent())            # doctest: +SKIP
>>> run = rt.run("Audit src/", remit=Remit(tools={}, budget=Budget(calls=10)))  # doctest: +SKIP
>>> run.status, run.result, run.spent                           # doctest: +SKIP
>>> rt.resume(run.id)       # after kill -9: nothing recorded is done again  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from remit.agents._agent import Agent
from remit.core.faults import FaultPlan
from remit.core.ledger import Ledger
from remit.core.receipts import Receipt
from remit.core.remit import Remit
from remit.core.routes import Routes
from remit.core.tasks import ROOT, Status, task_id
from remit.engine._engine import Engine, Observer
from remit.errors import AgentNotFound, JournalError, RemitError, RunNotFound
from remit.executors import RayExecutor
from remit.gate import DEFAULT_MAX_OUTPUT_BYTES, Gate
from remit.gate._node import Node
from remit.gate._resume import check_authority, halt_for, uncertain_effects
from remit.journal import Durability, JournalStore, RunRecord, open_journal
from remit.journal.lease import LEASE_TTL_S, RunLease
from remit.models import Model
from remit.runtime._answers import Answers
from remit.runtime._executors import check_ray_run, executor_of, ray_run, shared_ledger
from remit.runtime._gate import run_gate
from remit.runtime._refs import agent_ref, load_agent
from remit.runtime._run import Run, check_run_id, finished_run, new_run_id, recorded_receipts
from remit.runtime._signals import stop_on_signals
from remit.runtime._tools import check_tools, recorded_servers, registry
from remit.tools import Tool, ToolRegistry
from remit.tools.mcp import McpServer, open_servers
from remit.trust.provenance import KeyFiles, RunKeys, grant
from remit.trust.warrant import AgentKey


class Runtime(Answers):
    """Runs task trees under remits, journaled so any run can be resumed.

    ``journal``: a path (SQLite) or a ``JournalStore``. ``agent``: an ``Agent`` or an
    import reference ``"module:name"``. ``tools``: extra tools to register (the
    built-in file tools, confined to ``workspace``, and the calculator are always
    known; knowing grants nothing). ``concurrency``: tasks worked on at once.
    ``durability``: ``"full"`` (a step is finished only once on disk) or ``"normal"``.
    ``sign``: seal the run (the principal's grant of its remit; the journal a hash chain
    whose head the run's key signs at each group commit), so ``remit verify`` can check
    it offline (see :mod:`remit.trust.provenance`); ``principal_key``: the key that
    issues each run's grant (default: one derived per run); ``keys_dir``: where run
    secrets are kept (default: beside the journal).
    ``lease_ttl``: how long a run's lease outlives this process's last heartbeat (one
    process carries a run at a time; see :mod:`remit.journal.lease`).
    ``routes``: alternatives for capabilities, each with a cost (a
    :class:`~remit.core.routes.Routes` or its table): a failing tool is routed around
    (see :mod:`remit.gate._routing`); the capability ``model`` routes model calls among
    ``model`` and ``models`` (other models, by their names). ``faults``: a
    :class:`~remit.core.faults.FaultPlan` struck on purpose, journaled as injected.

    ``run`` and ``resume`` stop promptly on SIGINT and SIGTERM (when called from the
    main thread): finished steps are on disk, in-flight ones are marked interrupted,
    and :class:`~remit.errors.RunInterrupted` (a ``KeyboardInterrupt``) is raised.
    """

    def __init__(
        self,
        *,
        journal: str | os.PathLike[str] | JournalStore = "remit.db",
        agent: Agent | str | None = None,
        tools: Iterable[Tool] = (),
        model: Model | None = None,
        concurrency: int = 64,
        durability: Durability = "full",
        workspace: str | os.PathLike[str] = ".",
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        observer: Observer | None = None,
        sign: bool = True,
        principal_key: AgentKey | None = None,
        keys_dir: str | os.PathLike[str] | None = None,
        lease_ttl: float = LEASE_TTL_S,
        routes: Routes | Mapping[str, Any] | None = None,
        faults: FaultPlan | None = None,
        models: Iterable[Model] = (),
        mcp: Iterable[McpServer] = (),
        executor: RayExecutor | str | None = None,
    ) -> None:
        self._journal = journal
        self._durability: Durability = durability
        self._store: JournalStore | None = None
        self.agent = load_agent(agent) if isinstance(agent, str) else agent
        self.extra_tools = list(tools)
        self.model = model
        self.concurrency = concurrency
        self.workspace = Path(workspace).resolve()
        self.max_output_bytes = max_output_bytes
        self.observer = observer
        self.sign = sign
        self.principal_key = principal_key
        self.keys = KeyFiles(keys_dir) if keys_dir is not None else KeyFiles.beside(journal)
        #: called as (approval step id, task) when a call waits for a person's answer
        self.on_approval: Callable[[str, Any], None] | None = None
        #: the last engine's gate, for inspection in tests and benchmarks
        self.last_gate: Gate | None = None
        self.lease_ttl = lease_ttl
        self.routes = (
            routes if isinstance(routes, Routes) or routes is None else Routes.from_dict(routes)
        )
        self.faults = faults
        self.models = list(models)
        #: MCP servers whose tools the runs may call (``server.tool``), see remit.tools.mcp
        self.mcp = list(mcp)
        self._mcp_tools: Sequence[Tool] = ()
        if self.routes is not None:  # refused here, before a run is recorded
            self.routes.check_models({m.name for m in [*self.models, *([model] if model else [])]})
        self._signals = False
        #: where tasks work: None in this process, else a Ray cluster (see remit.executors)
        self.executor = executor_of(executor)
        self._own_executor = self.executor is not None and not isinstance(executor, RayExecutor)

    @property
    def store(self) -> JournalStore:
        """The journal, opened on first use (bad input fails before a file is made)."""
        if self._store is None:
            self._store = open_journal(self._journal, durability=self._durability)
        return self._store

    # --- public API ------------------------------------------------------------------

    def run(
        self,
        goal: str,
        *,
        remit: Remit,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        output_schema: Mapping[str, Any] | None = None,
    ) -> Run:
        """Start a run and carry it to its end (blocking)."""
        with self._on_signals():
            return asyncio.run(
                self.arun(
                    goal, remit=remit, inputs=inputs, run_id=run_id, output_schema=output_schema
                )
            )

    async def arun(
        self,
        goal: str,
        *,
        remit: Remit,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        output_schema: Mapping[str, Any] | None = None,
    ) -> Run:
        """``run`` for code that already has an event loop."""
        async with self._servers():
            return await self._arun(
                goal, remit=remit, inputs=inputs, run_id=run_id, output_schema=output_schema
            )

    async def _arun(
        self,
        goal: str,
        *,
        remit: Remit,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        output_schema: Mapping[str, Any] | None = None,
    ) -> Run:
        """``arun`` with the MCP servers' tools in hand."""
        agent = self._need_agent()
        tools = registry(agent, self.workspace, [*self._mcp_tools, *self.extra_tools])
        check_tools(remit, tools)
        rid = check_run_id(run_id) if run_id is not None else new_run_id()
        meta: dict[str, Any] = {"workspace": str(self.workspace), "concurrency": self.concurrency}
        if output_schema is not None:
            meta["output_schema"] = dict(output_schema)
        if self.routes is not None:
            meta["routes"] = self.routes.to_dict()  # a resume routes the same way
        if self.mcp:
            # a resume reconnects to the same servers (their env is not recorded: it may
            # hold secrets; pass the servers to the resuming Runtime to give it again)
            meta["mcp"] = {m.name: m.to_dict() for m in self.mcp}
        model_spec = getattr(self.model, "spec", None)
        if isinstance(model_spec, str):
            # what remit.models.load_model needs to build the same model on resume
            meta["model"] = model_spec
        store = self.store
        keys = None
        if self.sign:
            # the journal opens (or fails) before the run's secret is made
            try:
                store.get_run(rid)
            except RunNotFound:
                pass
            else:
                raise JournalError(f"run {rid} already exists in the journal; pick another id")
            secret, meta["key_salt"] = self.keys.new_run(rid)
            keys = RunKeys(secret, self.principal_key)
            meta["principal_key"] = keys.principal.public.hex()
        remit_json = remit.to_json()
        if keys is not None:
            meta["root_seal"] = keys.seal(remit_json, meta["principal_key"])
            meta["grant"] = grant(keys, rid, remit, goal)
        now = time.time()
        lease = RunLease(store, rid, self.lease_ttl)
        store.create_run(
            RunRecord(
                rid,
                goal,
                agent_ref(agent),
                remit_json,
                "running",
                json.dumps(dict(inputs or {})),
                None,
                None,
                json.dumps(meta),
                now,
                now,
            ),
            lease.lease(now),
            # sealed in the run's own transaction: one commit, not two
            (keys.run.public, keys.run.sign) if keys is not None else None,
        )
        try:
            return await self._drive(
                rid, goal, remit, dict(inputs or {}), output_schema, agent, tools, {},
                keys=keys, lease=lease, sealed=keys is not None,
            )  # fmt: skip
        finally:
            lease.release()

    def resume(self, run_id: str) -> Run:
        """Carry an interrupted run to its end; recorded steps are served, not redone.

        Refuses (:class:`~remit.errors.RunLeased`) while another live process carries
        the run, (``WARRANT_ROOT_MISMATCH``) if its recorded authority was altered, and
        (:class:`~remit.errors.EffectUncertain`) while a non-idempotent effect that was
        in flight at the crash awaits a person's ``remit resolve``.
        """
        with self._on_signals():
            return asyncio.run(self.aresume(run_id))

    async def aresume(self, run_id: str) -> Run:
        """``resume`` for code that already has an event loop."""
        servers = self.mcp or recorded_servers(self.store, run_id)
        async with self._servers(servers):
            return await self._aresume(run_id)

    async def _aresume(self, run_id: str) -> Run:
        rec = self.store.get_run(run_id)
        if rec.status != "running":
            return self._finished(rec)
        lease = RunLease(self.store, run_id, self.lease_ttl)
        lease.acquire()  # RunLeased while a live process carries it
        try:
            rec = self.store.get_run(run_id)  # as of holding the run
            if rec.status != "running":
                return self._finished(rec)
            return await self._resume_held(rec, lease)
        finally:
            lease.release()

    async def _resume_held(self, rec: RunRecord, lease: RunLease) -> Run:
        run_id = rec.run_id
        agent = self.agent or (load_agent(rec.agent) if rec.agent else self._need_agent())
        meta: dict[str, Any] = json.loads(rec.meta or "{}")
        workspace = Path(meta.get("workspace", self.workspace))
        tools = registry(agent, workspace, [*self._mcp_tools, *self.extra_tools])
        remit = Remit.from_json(rec.remit)
        recorded = {s.step_id: s for s in self.store.steps(run_id)}
        inputs = json.loads(rec.inputs or "{}")
        # the run keeps the concurrency it was started with (its tools may rely on it)
        concurrency = int(meta.get("concurrency", self.concurrency))
        keys = None
        principal = meta.get("principal_key")
        if isinstance(principal, str):
            keys = RunKeys(self.keys.load(run_id, meta), self.principal_key)
            if keys.principal.public.hex() != principal and self.principal_key is not None:
                raise RemitError(
                    f"run {run_id} was issued by principal key {principal[:16]}..., not by "
                    f"the key given ({keys.principal.public.hex()[:16]}...)"
                )
            check_authority(rec, meta, keys, recorded)
        uncertain = uncertain_effects(recorded, tools)
        if uncertain:
            raise halt_for(run_id, uncertain)
        routes = self.routes
        if routes is None and isinstance(meta.get("routes"), dict):
            routes = Routes.from_dict(meta["routes"])
        sealed = keys is not None and "grant" in meta
        if sealed:
            assert keys is not None
            self.store.seal(run_id, keys.run.public, keys.run.sign)
        return await self._drive(
            run_id,
            rec.goal,
            remit,
            inputs,
            meta.get("output_schema"),
            agent,
            tools,
            recorded,
            concurrency,
            keys=keys,
            principal=bytes.fromhex(principal) if isinstance(principal, str) else None,
            lease=lease,
            routes=routes,
            sealed=sealed,
        )

    def get(self, run_id: str) -> Run:
        """The recorded outcome of a run (status ``running`` if it never finished)."""
        return self._finished(self.store.get_run(run_id))

    def receipts(self, run_id: str) -> tuple[Receipt, ...]:
        """The receipts of a run's tool calls, made again from its journal under the
        run's key (see :func:`~remit.runtime._run.recorded_receipts`)."""
        return recorded_receipts(self.store, self.keys, run_id)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._own_executor and self.executor is not None:
            self.executor.shutdown()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------

    async def _drive(
        self,
        run_id: str,
        goal: str,
        remit: Remit,
        inputs: Mapping[str, Any],
        output_schema: Mapping[str, Any] | None,
        agent: Agent,
        tools: ToolRegistry,
        recorded: Mapping[str, Any],
        concurrency: int | None = None,
        *,
        keys: RunKeys | None = None,
        principal: bytes | None = None,
        lease: RunLease,
        routes: Routes | None = None,
        sealed: bool = False,
    ) -> Run:
        """Carry the run to its end; the caller holds ``lease`` and gives it up after."""
        started = time.perf_counter()
        store = self.store
        ray = self.executor
        url = ""
        if ray is not None:
            url = check_ray_run(store, faults=self.faults, mcp=self.mcp)
            ledger = shared_ledger(url, store, run_id, resumed=bool(recorded))
        else:
            ledger = Ledger()
        try:
            gate = run_gate(
                self, run_id, store, lease.owner, ledger, tools, recorded,
                goal=goal, inputs=inputs, routes=routes, keys=keys, principal=principal,
                sealed=sealed,
            )  # fmt: skip
            self.last_gate = gate
            executor = None
            concurrency = concurrency or self.concurrency
            if ray is not None:
                executor = ray_run(
                    ray,
                    gate,
                    store,
                    url,
                    agent=agent,
                    tools=tools,
                    model=self.model,
                    models=self.models,
                    owner=lease.owner,
                    keys=keys,
                    sealed=sealed,
                    max_output_bytes=self.max_output_bytes,
                )
                # enough phases in flight to fill every worker's batches
                concurrency = max(concurrency, ray.capacity())
            engine = Engine(
                gate, agent, ledger, concurrency=concurrency, observer=self.observer,
                executor=executor,
            )  # fmt: skip
            rid = task_id(ROOT, 0, goal)
            root = Node(
                rid,
                goal,
                remit,
                ledger.open(rid, remit.budget),
                inputs=inputs,
                output_schema=output_schema,
                deadline=remit.deadline,
            )
            if (
                not gate.stale_spent.is_zero()
                and gate.recorded_end(rid) is None
                and not ledger.shared  # (booked under each step as it settled)
            ):
                # what invalidated generations spent was spent: the run's budget holds it
                ledger.charge(root.account, gate.stale_spent)
            loop = asyncio.get_running_loop()

            def lost(error: BaseException) -> None:  # from the heartbeat's thread
                with contextlib.suppress(RuntimeError):  # the loop may be closing
                    loop.call_soon_threadsafe(engine.interrupt, error)

            lease.start_heartbeat(lost)
            try:
                with stop_on_signals(loop, engine, run_id, active=self._signals):
                    await engine.run(root)
            finally:
                lease.stop_heartbeat()
                if executor is not None:
                    await executor.close()
                # the run's outcome is reported only once every record is on disk
                gate.writer.close()
            ok = root.status is Status.DONE
            error = None
            if not ok:
                err = root.error
                error = (
                    err.to_dict()
                    if isinstance(err, RemitError)
                    else {"code": "FAILED", "message": str(err)}
                )
            result_json = gate._encode(root.result, "run result") if ok else None  # pyright: ignore[reportPrivateUsage]
            # (a shared ledger: what every process of the run booked, as the database holds it)
            spent = ledger.spent_of(root.account)
            self.store.finish_run(
                run_id,
                "done" if ok else "failed",
                result_json,
                json.dumps(error) if error else None,
                owner=lease.owner,
            )
            return Run(
                run_id, "done" if ok else "failed", root.result if ok else None, error,
                spent, gate.executed, gate.replayed, gate.denied, engine.tasks_total,
                time.perf_counter() - started, keys is not None, gate.receipts_of(root),
            )  # fmt: skip
        finally:
            ledger.close()

    @contextlib.contextmanager
    def _on_signals(self) -> Generator[None]:
        """While ``run``/``resume`` block: SIGINT and SIGTERM stop the run cleanly."""
        self._signals = threading.current_thread() is threading.main_thread()
        try:
            yield
        finally:
            self._signals = False

    def _finished(self, rec: RunRecord) -> Run:
        return finished_run(self.store, rec)

    def _need_agent(self) -> Agent:
        if self.agent is None:
            raise AgentNotFound("this runtime has no agent; pass agent=... to Runtime")
        return self.agent

    @contextlib.asynccontextmanager
    async def _servers(self, servers: Sequence[McpServer] | None = None) -> AsyncGenerator[None]:
        """The MCP servers' sessions, held while a run (or resume) works."""
        async with open_servers(self.mcp if servers is None else servers) as tools:
            self._mcp_tools = tools
            try:
                yield
            finally:
                self._mcp_tools = ()
