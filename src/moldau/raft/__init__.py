"""The metadata quorum: Kafka's KRaft protocol (KIP-595, with KIP-996 pre-vote) for the
metadata log `__cluster_metadata-0`, sans I/O. (Theory of operation: see below.)
"""

from .client import NotLeaderError, RaftClient
from .config import QuorumConfig, parse_voters

__all__ = ["NotLeaderError", "QuorumConfig", "RaftClient", "parse_voters"]
