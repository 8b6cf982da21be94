"""A read's file region knows the offsets it spans (first batch's base offset, the offset after
its last batch) on every path through PartitionLog.read, so a fetch can count the records it
sends and bound read_committed's aborted transactions without reading the bytes (sendfile)."""

from __future__ import annotations

from moldau.log import LogConfig, MemoryFileSystem, PartitionLog
from moldau.records import Record, build_batch, iterate_batches

DIR = "/data/topic-0"


def _log(batches: int = 10, records: int = 5, **config) -> PartitionLog:
    log = PartitionLog.open(MemoryFileSystem(), DIR, LogConfig(**config), 0)
    for i in range(batches):
        log.append_as_leader(build_batch([Record(j, 1000 + j, None, b"v" * 100) for j in range(records)]), 0, 0)
    return log


def _spanned(region) -> tuple[int, int]:
    """(first base offset, offset after the last batch) read from the region's own bytes."""
    batches = list(iterate_batches(region.read_bytes()))
    return batches[0][0].base_offset, batches[-1][0].base_offset + batches[-1][0].last_offset_delta + 1


def test_whole_segment_max_offset_max_bytes_and_min_one_batch_paths():
    log = _log()
    cases = [
        log.read(0, 1 << 20),  # to the segment's end
        log.read(7, 1 << 20),  # from inside a batch: the region starts at its base offset
        log.read(10, 1 << 20, max_offset=30),  # stopped by the high watermark
        log.read(0, 500),  # cut by max_bytes, whole batches
        log.read(20, 10, min_one_batch=True),  # one batch larger than max_bytes
        log.read(20, 500),  # a second cut from a position hint left by the first
    ]
    for result in cases:
        region = result.region
        assert region is not None and len(region) == region.size
        assert (region.first_offset, region.next_offset) == _spanned(region), result


def test_offsets_across_rolled_segments():
    log = _log(batches=30, segment_bytes=2000)
    assert len(log._segments) > 3
    for start in (0, 13, 42, 99, 140):
        region = log.read(start, 1500).region
        assert (region.first_offset, region.next_offset) == _spanned(region), start
