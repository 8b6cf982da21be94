"""The `quorum-state` file: what a node promised in its current epoch, durable before it acts.

Theory of operation
-------------------
Raft's safety rests on two promises a node must never forget across a crash: the highest
epoch it has seen, and whom it voted for in that epoch. Kafka keeps them (with the leader it
knows) in `quorum-state` inside the metadata log directory, one line of JSON::

    {"clusterId":"","leaderId":1,"leaderEpoch":4,"votedId":-1,"appliedOffset":0,
     "currentVoters":[{"voterId":1},{"voterId":2},{"voterId":3}],"data_version":0}

This is `QuorumStateData` version 0 as Kafka 4.1 writes it for a static quorum
(kraft.version 0): `clusterId` is written empty and `appliedOffset` 0, as Kafka does.
`write` goes through `FileSystem.write_atomic` (temporary file, fsync, rename, fsync of the
directory), and the client calls it *before* it grants a vote, starts a candidacy or acts on
a new epoch, so a crash can never make it vote twice in one epoch.

`read` returns None when the file does not exist yet and raises `QuorumStateError` (one line)
when it exists but cannot be understood: guessing would risk a second vote in an epoch.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass

from moldau.log.fs import FileSystem

FILE_NAME = "quorum-state"
DATA_VERSION = 0


class QuorumStateError(Exception):
    """The quorum-state file exists but is not one this node can trust."""


@dataclass(frozen=True, slots=True)
class ElectionState:
    epoch: int
    leader_id: int = -1
    voted_id: int = -1
    voters: tuple[int, ...] = ()


def path(directory: str) -> str:
    return posixpath.join(directory, FILE_NAME)


def encode(state: ElectionState) -> bytes:
    data = {
        "clusterId": "",
        "leaderId": state.leader_id,
        "leaderEpoch": state.epoch,
        "votedId": state.voted_id,
        "appliedOffset": 0,
        "currentVoters": [{"voterId": voter} for voter in sorted(state.voters)],
        "data_version": DATA_VERSION,
    }
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def decode(raw: bytes, where: str = FILE_NAME) -> ElectionState:
    try:
        data = json.loads(raw.decode("utf-8").splitlines()[0])
        version = data["data_version"]
        if version not in (0, 1):
            raise QuorumStateError(f"{where}: data_version {version} is not supported (0 or 1)")
        voters = data.get("currentVoters") or []
        return ElectionState(
            epoch=int(data["leaderEpoch"]),
            leader_id=int(data.get("leaderId", -1)),
            voted_id=int(data.get("votedId", -1)),
            voters=tuple(sorted(int(v["voterId"]) for v in voters)),
        )
    except QuorumStateError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        raise QuorumStateError(f"{where} is unreadable ({type(error).__name__}: {error})") from None


def read(fs: FileSystem, directory: str) -> ElectionState | None:
    file = path(directory)
    if not fs.exists(file):
        return None
    return decode(fs.read_file(file), file)


def write(fs: FileSystem, directory: str, state: ElectionState) -> None:
    fs.write_atomic(path(directory), encode(state))
