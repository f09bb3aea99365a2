"""Checkpoint files: one consistent cut of a run, saved atomically and read back whole.

A checkpoint is one file, ``chk-<epoch>.rlck``, in the checkpoint directory::

    b"RLCK" | format version (u32) | header length (u32) | header (JSON) | parts | CRC-32 (u32)

The header names the epoch, the rillet version, the query's fingerprint (what a resumed run
must match) and each part's name and length; the parts are opaque bytes (an operator's
snapshot, a source's position as JSON, a sink's progress). The CRC covers everything before
it, so a torn or corrupt file is never read as a checkpoint.

Saving follows the one order that survives a crash at any point on a local file system:
write a temporary name in the same directory, fsync it, rename it over the final name, fsync
the directory. A crash before the rename leaves the previous checkpoint (and a temporary
file, removed at the next open); after it, the new one. The newest few are kept, older ones
are removed only once a newer one is durable.
"""
from __future__ import annotations

import json
import os
import re
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rillet import __version__
from rillet._errors import ConfigError

MAGIC = b"RLCK"
#: Bumped whenever the layout or a part's encoding changes; older files are refused by name.
FORMAT_VERSION = 1
_NAME = re.compile(r"^chk-(\d{12})\.rlck$")
_HEAD = struct.Struct("<4sII")
_CRC = struct.Struct("<I")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back: its epoch, the query fingerprint it was taken for, and its
    parts by name."""

    epoch: int
    fingerprint: dict[str, str]
    parts: dict[str, bytes]
    version: str
    path: Path


class CheckpointStore:
    """The checkpoints of one run, in directory ``path`` (created if missing)."""

    def __init__(self, path: str | os.PathLike[str], keep: int = 2) -> None:
        if keep < 1:
            raise ConfigError(f"a checkpoint store keeps at least one checkpoint, got keep={keep}")
        self.path = Path(path)
        self.keep = keep
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"checkpoint={str(path)!r} is a file; give a directory for the run's checkpoints")
        self.path.mkdir(parents=True, exist_ok=True)
        # A temporary file is a save a crash interrupted: never a checkpoint.
        for leftover in self.path.glob("*.rlck.tmp"):
            leftover.unlink(missing_ok=True)

    def save(self, epoch: int, fingerprint: Mapping[str, str], parts: Mapping[str, bytes],
             before_rename: Callable[[], None] | None = None) -> Path:
        """Writes the checkpoint of ``epoch`` atomically and durably; then removes all but the
        newest ``keep``. Returns its path. ``before_rename`` is called once the temporary file
        is durable, before it takes its name (the crash tests stop the process there)."""
        if epoch < 0 or epoch >= 10**12:
            raise ConfigError(f"a checkpoint epoch is between 0 and 10**12, got {epoch}")
        final = self.path / f"chk-{epoch:012d}.rlck"
        write_file(final, epoch, fingerprint, parts, before_rename)
        for old in self.epochs()[:-self.keep]:
            (self.path / f"chk-{old:012d}.rlck").unlink(missing_ok=True)
        return final

    def epochs(self) -> list[int]:
        """The epochs of the checkpoint files present, oldest first (valid or not)."""
        found = (_NAME.match(p.name) for p in self.path.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint that reads back whole, or None when there is none. A file
        that does not (torn, corrupt) is passed over for the one before it."""
        for epoch in reversed(self.epochs()):
            try:
                return read(self.path / f"chk-{epoch:012d}.rlck")
            except CorruptCheckpoint:
                continue
        return None


def write_file(final: Path, epoch: int, fingerprint: Mapping[str, str], parts: Mapping[str, bytes],
               before_rename: Callable[[], None] | None = None, sync_dir: bool = True) -> None:
    """One file of the checkpoint layout, written temp -> fsync -> rename -> fsync directory
    (checkpoints, and the segments of rows a checkpointed run keeps). ``sync_dir=False``
    leaves the directory to a later fsync (a segment's, made durable by its checkpoint's)."""
    names = list(parts)
    header = json.dumps({
        "epoch": epoch, "rillet": __version__, "fingerprint": dict(fingerprint),
        "parts": [[n, len(parts[n])] for n in names],
    }, sort_keys=True).encode()
    body = b"".join([_HEAD.pack(MAGIC, FORMAT_VERSION, len(header)), header, *(parts[n] for n in names)])
    tmp = final.with_name(final.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(body)
        f.write(_CRC.pack(zlib.crc32(body)))
        f.flush()
        os.fsync(f.fileno())
    if before_rename is not None:
        before_rename()
    os.replace(tmp, final)
    if sync_dir:
        fsync_dir(final.parent)


class CorruptCheckpoint(ConfigError):
    """A checkpoint file that does not read back whole."""


def read(path: Path) -> Checkpoint:
    """One checkpoint file, checked: its magic, format version and checksum."""
    data = path.read_bytes()
    if len(data) < _HEAD.size + _CRC.size:
        raise CorruptCheckpoint(f"{path} is too short to be a checkpoint ({len(data)} bytes)")
    body, (crc,) = data[:-_CRC.size], _CRC.unpack(data[-_CRC.size:])
    magic, version, header_len = _HEAD.unpack_from(body)
    if magic != MAGIC:
        raise CorruptCheckpoint(f"{path} is not a rillet checkpoint")
    if zlib.crc32(body) != crc:
        raise CorruptCheckpoint(f"{path} is damaged: its checksum does not match (a torn or changed file)")
    if version != FORMAT_VERSION:
        raise ConfigError(
            f"{path} is a checkpoint of format {version}, and this rillet ({__version__}) reads format "
            f"{FORMAT_VERSION}; resume with the rillet that wrote it, or start over with a new checkpoint path")
    start = _HEAD.size + header_len
    header: dict[str, Any] = json.loads(body[_HEAD.size:start])
    parts: dict[str, bytes] = {}
    for name, length in header["parts"]:
        parts[name] = body[start:start + length]
        start += length
    return Checkpoint(header["epoch"], header["fingerprint"], parts, header["rillet"], path)


def check_same_query(saved: Mapping[str, str], current: Mapping[str, str], where: Path) -> None:
    """Refuses to resume a run whose query changed: names each part that differs (a query
    added, removed, or planned differently) and its first differing line."""
    problems = []
    for name in sorted(set(saved) | set(current)):
        if name not in current:
            problems.append(f"{name} was in the checkpointed run and is not in this one")
        elif name not in saved:
            problems.append(f"{name} is new: the checkpointed run did not have it")
        elif saved[name] != current[name]:
            old, new = saved[name].splitlines(), current[name].splitlines()
            at = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
            was = old[at] if at < len(old) else "(nothing)"
            now = new[at] if at < len(new) else "(nothing)"
            problems.append(f"{name} changed at line {at + 1}: was {was.strip()!r}, now {now.strip()!r}")
    if problems:
        raise ConfigError(
            f"the checkpoint in {str(where)!r} is of another query, so this run cannot resume from it: "
            + "; ".join(problems) + ". Run the query it was taken for, or give a new checkpoint path")


def fsync_dir(path: Path) -> None:
    """Makes a rename in ``path`` durable (where the platform allows opening a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
