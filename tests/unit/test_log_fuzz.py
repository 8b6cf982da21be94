"""Seeded fuzz of segment files (issue 14): random byte flips, truncations and zero runs in
`.log`, `.index` and `.timeindex` files, then `PartitionLog.open`.

For every seed: the log opens without raising; no segment file below the recovery point is
removed (and an offline log changes no file at all); every batch a read returns passes its CRC
and holds exactly the records written at its offsets; reads of damaged offsets raise a Kafka
error instead of returning nothing; a log that opened online still appends. A failure prints
the seed; `fuzz_one(seed)` replays it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from kio.schema.errors import ErrorCode

from moldau.log import LogConfig, LogError, MemoryFileSystem, PartitionLog
from moldau.log.memory_fs import _File
from moldau.records import Record, build_batch, iterate_batches, iterate_records
from moldau.records.batch import validate_payload

DIR = "/data/fuzz-0"
SEEDS = 1000
CONFIG = LogConfig(segment_bytes=900, index_interval_bytes=100)


@dataclass
class Template:
    files: dict[str, _File]
    values: dict[int, bytes]  # offset -> value written
    recovery_point: int


def _build(closed: bool) -> Template:
    """~10 segments of 1-3 record batches; closed cleanly, or killed after a checkpoint in
    the middle (so there is an unflushed tail past the recovery point)."""
    rng = random.Random(7 if closed else 8)
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, CONFIG, 0)
    values: dict[int, bytes] = {}
    for step in range(70):
        count = rng.randint(1, 3)
        first = log.log_end_offset
        records = [Record(i, 1000 + step, b"k%d" % (first + i), b"v%d." % (first + i) + b"y" * rng.randint(0, 50))
                   for i in range(count)]
        log.append_as_leader(build_batch(records), 0, step)
        values.update({first + i: r.value for i, r in enumerate(records)})
        if not closed and step == 50:
            log.checkpoint()
    recovery_point = log.recovery_point
    if closed:
        log.close()
        recovery_point = log.log_end_offset
    else:
        fs.crash("keep")
    return Template(fs.files, values, recovery_point)


TEMPLATES = [_build(True), _build(False)]


def _copy(files: dict[str, _File]) -> MemoryFileSystem:
    fs = MemoryFileSystem()
    fs.makedirs(DIR)
    for path, file in files.items():
        fs.files[path] = _File(bytearray(file.data), file.durable, file.append_only)
    return fs


def _damage(fs: MemoryFileSystem, rng: random.Random) -> list[str]:
    segment_files = sorted(p for p in fs.files if p.endswith((".log", ".index", ".timeindex")))
    done = []
    for _ in range(rng.randint(1, 3)):
        path = rng.choice([p for p in segment_files if p.endswith(".log")] * 3 + segment_files)
        data = fs.files[path].data
        kind = rng.choice(["flip", "flip", "truncate", "zeros"])
        if not data:
            continue
        position = rng.randrange(len(data))
        if kind == "flip":
            data[position] ^= rng.randint(1, 255)
        elif kind == "truncate":
            del data[position:]
        else:
            length = rng.randint(1, 200)
            data[position : position + length] = bytes(length)
        done.append(f"{kind} {path.rsplit('/', 1)[1]}@{position}")
    return done


def _log_files_below(fs: MemoryFileSystem, recovery_point: int) -> set[str]:
    return {p for p in fs.files if p.endswith(".log") and int(p.rsplit("/", 1)[1][:20]) < recovery_point}


def _check_reads(log: PartitionLog, template: Template, what: str) -> None:
    """Read the whole log; every served batch passes its CRC and holds records that were
    written, in ascending offsets. (A batch's base offset is not covered by its CRC, in Kafka's
    format too: a flipped bit there can move a valid batch's offsets within bounds the log
    checks — the segment's offset range, ascending order — so offsets are not compared.)"""
    written = {value: offset for offset, value in template.values.items()}
    offset = log.log_start_offset
    bases = [s.base_offset for s in log.segments]
    while offset < log.log_end_offset:
        try:
            data = log.read(offset, 4096).read_bytes()
        except LogError as error:
            assert error.error_code in (ErrorCode.corrupt_message, ErrorCode.kafka_storage_error), what
            later = [b for b in bases if b > offset]
            if not later:
                return
            offset = later[0]
            continue
        assert data, f"{what}: empty read at {offset} below the log end {log.log_end_offset}"
        validate_payload(data, 1 << 30, require_dense_offsets=False)  # lengths, magic, CRC
        for header, body in iterate_batches(data):
            assert header.last_offset >= offset, what
            for record in iterate_records(body):
                assert record.value in written, f"{what}: offset {record.offset}: a record never written"
                assert record.key == b"k%d" % written[record.value], what
            offset = header.next_offset


def fuzz_one(seed: int, fs_factory=None) -> None:
    rng = random.Random(seed)
    template = TEMPLATES[seed % len(TEMPLATES)]
    fs = _copy(template.files)
    done = _damage(fs, rng)
    what = f"seed {seed}: {', '.join(done)}"
    below = _log_files_below(fs, template.recovery_point)
    before = {path: bytes(file.data) for path, file in fs.files.items()}
    log = PartitionLog.open(fs, DIR, CONFIG, 100)  # never raises
    assert below <= set(fs.files), f"{what}: a segment below the recovery point was removed"
    if log.offline is not None:
        assert {p: bytes(f.data) for p, f in fs.files.items()} == before, f"{what}: offline log changed a file"
    else:
        assert log.log_end_offset >= template.recovery_point, f"{what}: flushed offsets cut"
    _check_reads(log, template, what)
    if log.offline is None:
        end = log.log_end_offset
        appended = log.append_as_leader(build_batch([Record(0, 5000, None, b"after")]), 0, 200)
        assert appended.first_offset == end, what
    log.close()


def test_fuzz_segment_files_in_memory() -> None:
    for seed in range(SEEDS):
        fuzz_one(seed)


@pytest.mark.parametrize("seed", [3, 17, 42, 101, 555])
def test_fuzz_segment_files_on_disk(tmp_path, seed: int) -> None:
    """The same damage to real files through the OS file system."""
    from moldau.runtime.disk import OsFileSystem

    rng = random.Random(seed)
    template = TEMPLATES[seed % len(TEMPLATES)]
    memory = _copy(template.files)
    done = _damage(memory, rng)
    directory = tmp_path / "fuzz-0"
    directory.mkdir()
    for path, file in memory.files.items():
        (directory / path.rsplit("/", 1)[1]).write_bytes(bytes(file.data))
    below = {p.rsplit("/", 1)[1] for p in _log_files_below(memory, template.recovery_point)}
    log = PartitionLog.open(OsFileSystem(), str(directory), CONFIG, 100)
    assert below <= {p.name for p in directory.iterdir()}, f"seed {seed}: {done}"
    _check_reads(log, template, f"seed {seed}: {done}")
    log.close()
