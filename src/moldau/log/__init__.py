"""Partition logs on disk, Kafka's layout: see partition_log.py for the theory of operation.

Modules: fs.py (the file-system interface; the OS one is moldau.runtime.disk.OsFileSystem),
memory_fs.py (in-memory file system that can crash), config.py (LogConfig), segment.py and
index.py (segments and sparse indexes), leader_epoch.py (leader-epoch cache), checkpoints.py
(small text files), partition_log.py (PartitionLog), recovery.py (opening a log from its
files), faults.py (storage faults: offline logs, counters), cleaner.py (compaction),
producer_state.py (idempotent producers).
"""

from . import faults
from .cleaner import CleanResult, clean_log
from .config import LogConfig
from .faults import StorageFault
from .fs import FileHandle, FileSystem
from .leader_epoch import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, LeaderEpochCache
from .memory_fs import MemoryFileSystem
from .partition_log import AppendInfo, FileRegion, LogError, PartitionLog, ReadResult, RegionGone
from .producer_state import ProducerStateError, ProducerStateExtension, ProducerStateManager

__all__ = [
    "UNDEFINED_EPOCH",
    "UNDEFINED_EPOCH_OFFSET",
    "AppendInfo",
    "CleanResult",
    "FileHandle",
    "FileRegion",
    "FileSystem",
    "LeaderEpochCache",
    "LogConfig",
    "LogError",
    "MemoryFileSystem",
    "PartitionLog",
    "ProducerStateError",
    "ProducerStateExtension",
    "ProducerStateManager",
    "ReadResult",
    "RegionGone",
    "StorageFault",
    "clean_log",
    "faults",
]
