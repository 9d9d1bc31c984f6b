"""What a host case works with: the subject's address, the run's mode and a factory of raw
workers, plus small assertion helpers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import grpc

from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import CaseFailure, CaseSkip, SkipReason
from conformance._node_fault import NODE_FAULT_OPTION, NodeFault
from conformance._secure_host import OPTION_NAMES, SecureHost, TokenEntry
from conformance._steps import StepRecorder, StepsMixin
from conformance._subject import PlaintextInsteadOfTls, SubjectError
from conformance._trace import Trace
from conformance._version import HARNESS_VERSION
from conformance._worker import RawWorker, StatusResult

__all__ = ["DEFAULT", "HostContext"]


class _Default:
    """The type of DEFAULT."""


# Stands for "the context's default" (a fresh client-id; a v1 hello unless the run is legacy).
DEFAULT = _Default()


@dataclass(slots=True)
class HostContext(StepsMixin):
    """Per-case state. ``legacy`` runs talk the legacy path with no handshake.
    ``secure_commands`` holds the host commands given per security capability (spec 16.3)."""

    address: str
    legacy: bool
    scale: float
    host_capabilities: frozenset[int]
    stop_subject: Callable[[], bool] = field(default=lambda: False)
    secure_commands: dict[int, list[str]] = field(default_factory=dict)
    # What the subject wrote since the case began ("" for an attached subject).
    subject_output: Callable[[], str] = field(default=lambda: "")
    trace: Trace = field(default_factory=Trace)
    steps: StepRecorder = field(default_factory=StepRecorder)
    workers: list[RawWorker] = field(default_factory=list)
    secure_hosts: list[SecureHost] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    # Every node of a host cluster (spec 18): workers are spread over them in turn, so workers
    # that interact sit on different nodes. Empty: ``address`` alone.
    addresses: tuple[str, ...] = ()
    # Kills a node of the cluster or starts it again (--node-fault-command), with its lease.
    node_fault: NodeFault | None = None
    _counter: int = 0
    _spread: int = 0

    def unique(self, prefix: str) -> str:
        """Return a name no other case or run uses (agent types, topics, ids)."""
        self._counter += 1
        return f"{prefix}.{self.run_id}.{self._counter}"

    def hello(self, capabilities: tuple[int, ...] = (), version: int = 1) -> pb.ChannelHello:
        """Return a ChannelHello announcing ``capabilities``."""
        return pb.ChannelHello(
            protocol_version=version,
            capabilities=cast("list[pb.Capability]", list(capabilities)),
            implementation=f"agentworker-conformance/{HARNESS_VERSION}",
        )

    def worker(
        self,
        label: str,
        *,
        client_id: str | _Default | None = DEFAULT,
        hello: pb.ChannelHello | bytes | _Default | None = DEFAULT,
        legacy_path: bool | None = None,
        address: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> RawWorker:
        """Create (not open) a raw worker. By default it has a fresh client-id, sends a v1
        hello unless the run is legacy, and uses the run's service path and host; ``address``,
        ``credentials`` and ``token`` point it at another host (a secure one)."""
        cid = self.unique(f"client-{label}") if isinstance(client_id, _Default) else client_id
        if isinstance(hello, _Default):
            hello = None if self.legacy else self.hello()
        if address is None:
            address = self.address
            if self.addresses:
                address = self.addresses[self._spread % len(self.addresses)]
                self._spread += 1
        worker = RawWorker(
            address,
            label=label,
            client_id=cid,
            hello=hello,
            legacy_path=self.legacy if legacy_path is None else legacy_path,
            trace=self.trace,
            scale=self.scale,
            credentials=credentials,
            token=token,
        )
        self.workers.append(worker)
        return worker

    async def connect(
        self,
        label: str,
        *,
        hello: pb.ChannelHello | bytes | _Default | None = DEFAULT,
        legacy_path: bool | None = None,
    ) -> RawWorker:
        """Create a raw worker and open its data channel."""
        worker = self.worker(label, hello=hello, legacy_path=legacy_path)
        await worker.open()
        if worker.data.ended:
            raise CaseFailure(
                f"{label}: OpenChannel failed: {worker.data.end_code} {worker.data.end_details!r}"
            )
        return worker

    async def serving(self, label: str, agent_type: str) -> RawWorker:
        """Connect a worker and register ``agent_type`` for it."""
        worker = await self.connect(label)
        await worker.register(agent_type)
        return worker

    def verify(self) -> None:
        """Record a failed AWP-CONN-010 step if the host sent any frame with no oneof case."""
        for worker in self.workers:
            streams = [s for s in (worker.data_or_none, worker.control) if s is not None]
            caseless = sum(s.caseless_frames for s in streams)
            self.decide(
                "AWP-CONN-010",
                f"every frame {worker.label} received has a oneof case",
                caseless == 0,
                f"{worker.label} received {caseless} frames with no oneof case",
            )

    async def secure_host(self, capability: int, tokens: tuple[TokenEntry, ...] = ()) -> SecureHost:
        """Start the host command given for ``capability`` (TLS, mutual TLS, bearer token)
        with fresh TLS material and a token file holding ``tokens``; it is stopped when the
        case closes. Skip the case as "not claimed" when no command was given."""
        command = self.secure_commands.get(capability)
        name = pb.Capability.Name(capability)
        if command is None:
            raise CaseSkip(SkipReason.NOT_CLAIMED, f"no {OPTION_NAMES[capability]} given")
        host = SecureHost(command, capability, scale=self.scale, tokens=tokens)
        self.secure_hosts.append(host)
        try:
            await host.start()
        except PlaintextInsteadOfTls as exc:
            # A step of its own: serving plaintext breaks AWP-SEC-001, whatever else it breaks.
            self.decide(
                "AWP-SEC-001",
                f"the host started for {name} serves TLS, not plaintext",
                False,
                f"the host started for {name} serves plaintext gRPC: {exc}",
            )
            message = f"the host started for {name} does not serve TLS (AWP-CNF-020): {exc}"
            raise CaseFailure(message) from exc
        except SubjectError as exc:
            message = f"the host started for {name} does not serve (AWP-CNF-020): {exc}"
            raise CaseFailure(message) from exc
        self.trace.note("harness", f"{name} host at {host.address}: {' '.join(command)}")
        return host

    async def close(self) -> None:
        """Close every worker the case created, then stop the hosts it started. What the
        hosts logged during the case goes into the trace, shown when the case failed."""
        for worker in self.workers:
            await worker.close()
        for line in self.subject_output().splitlines()[-30:]:
            self.trace.collected("host-log", line)
        for host in self.secure_hosts:
            # Shown with the trace when the case failed: what the host logged about it.
            output = host.output()
            if output:
                self.trace.note("harness", f"{pb.Capability.Name(host.capability)} host output:")
                for line in output.splitlines():
                    self.trace.collected("host", line)
            await host.stop()

    def require_node_fault(self) -> NodeFault:
        """Return the node-fault command; skip the case as "not claimed" without one."""
        if self.node_fault is None:
            raise CaseSkip(SkipReason.NOT_CLAIMED, f"no {NODE_FAULT_OPTION} given")
        return self.node_fault

    async def act_on_node(self, action: str, address: str) -> None:
        """Run the node-fault command for ``action`` on the node at ``address`` (a failure
        of the command is an error of the case, raised as NodeFaultError)."""
        fault = self.require_node_fault()
        command = " ".join(fault.command(action, address))
        self.trace.note("harness", f"node {action} {address}: {command}")
        output = await fault.run(action, address, scale=self.scale)
        self.trace.note("harness", f"node {action} {address} done: {output[-200:]}")

    # -- helpers --------------------------------------------------------------------------

    def require_v1(self, what: str) -> None:
        """Skip the case as "not applicable" on a legacy run."""
        if self.legacy:
            raise CaseSkip(SkipReason.NOT_APPLICABLE, f"{what} needs v1 extensions")

    def seconds(self, nominal: float) -> float:
        """Return ``nominal`` seconds scaled by --timeout-scale."""
        return nominal * self.scale

    def check_status(
        self,
        result: StatusResult,
        expected: grpc.StatusCode,
        what: str,
        *,
        step: tuple[str | tuple[str, ...], str] | None = None,
    ) -> None:
        """Fail the case unless a call ended with ``expected``; with ``step`` (requirements,
        name) record the outcome as that step instead (a failure does not end the case)."""
        code, details = result
        message = f"{what}: expected {expected.name}, got {code.name} {details!r}"
        if step is not None:
            self.decide(step[0], step[1], code is expected, message)
        elif code is not expected:
            raise CaseFailure(message)

    def check_error(
        self,
        response: pb.RpcResponse,
        code: pb.ErrorCode,
        what: str,
        requirements: str | tuple[str, ...] = (),
    ) -> None:
        """Decide that ``response`` is an error with a non-empty ``error`` (AWP-ERR-002) and,
        on v1 runs, ``error_code`` equal to ``code`` (AWP-ERR-002 and ``requirements``, the
        requirements that name the code). Each is a step of its own: a failure does not end
        the case."""
        self.decide(
            "AWP-ERR-002",
            f"{what}: an error response with `error` set",
            response.error != "",
            f"{what}: expected an error response, got an empty `error`",
        )
        if not self.legacy:
            ids = (requirements,) if isinstance(requirements, str) else requirements
            self.decide(
                ("AWP-ERR-002", *ids),
                f"{what}: error_code {pb.ErrorCode.Name(code)}",
                response.error_code == code,
                f"{what}: expected {pb.ErrorCode.Name(code)}, got error_code "
                f"{_code_name(response.error_code)} (error {response.error!r})",
            )


def _code_name(code: int) -> str:
    """Return the name of an error code, or its number when it is outside the closed set."""
    return pb.ErrorCode.Name(code) if code in pb.ErrorCode.values() else str(code)
