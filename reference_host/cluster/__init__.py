"""Host clusters: several reference-host nodes forming one logical host over NATS.

Importing this package loads the NATS client (``nats-py``, the ``[cluster]`` extra); a
single-process host never imports it.
"""

from ._node import ClusterNode

__all__ = ["ClusterNode"]
