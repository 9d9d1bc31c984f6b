"""agentworker reference host: serves workers over the agentworker v1 wire protocol.

Start one from Python::

    host = Host(address="127.0.0.1:0", config=HostConfig())
    await host.start()
    ...
    await host.stop(grace=5.0)

or from a shell with ``python -m reference_host --address localhost:50051``.
"""

from __future__ import annotations

from ._config import HostConfig, TlsConfig, TokenPolicy, load_tokens
from ._metrics import Metrics
from ._server import Host
from ._sharding import choose_member, rendezvous_score
from ._version import __version__

__all__ = [
    "Host",
    "HostConfig",
    "Metrics",
    "TlsConfig",
    "TokenPolicy",
    "__version__",
    "choose_member",
    "load_tokens",
    "rendezvous_score",
]
