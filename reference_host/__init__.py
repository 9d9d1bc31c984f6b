"""agentworker reference host: serves workers over the agentworker v1 wire protocol.

Start one from Python::

    host = Host(address="127.0.0.1:0", config=HostConfig())
    await host.start()
    ...
    await host.stop(grace=5.0)

or from a shell with ``python -m reference_host --address localhost:50051``.

The names below load on first use, so that ``python -m reference_host`` can apply its gRPC
settings (``_io_defaults``) before gRPC loads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from ._version import __version__

if TYPE_CHECKING:
    from ._config import HostConfig, TlsConfig, TokenPolicy, load_tokens
    from ._metrics import Metrics
    from ._server import Host
    from ._sharding import choose_member, rendezvous_score

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

# Public name -> the submodule defining it.
_LAZY: Final = {
    "Host": "._server",
    "HostConfig": "._config",
    "Metrics": "._metrics",
    "TlsConfig": "._config",
    "TokenPolicy": "._config",
    "choose_member": "._sharding",
    "load_tokens": "._config",
    "rendezvous_score": "._sharding",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
