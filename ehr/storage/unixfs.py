"""UnixFS file DAGs exactly as Kubo's `ipfs add` builds them, plus CID encoding and a verifying reader.

Layout (Kubo defaults): fixed 262144-byte chunks, balanced tree with at most 174 links per node,
dag-pb leaves of UnixFS type `file` for CIDv0, raw leaves for CIDv1 (`--cid-version=1` implies
`--raw-leaves`), and a single-chunk file reduced to its one leaf. Only sha2-256 is used.

The protobuf and multibase code is written here rather than taken from `multiformats`/`py-cid`:
we need two codecs, one hash and two bases (about 100 lines), `py-cid` is unmaintained, and
`multiformats` validates every call at run time and is not installed; the block framing here
never copies chunk bytes (blocks are tuples of memoryview parts, hashed and written as they are).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ehr.storage.base import BlockCorrupted, InvalidCid, StorageError

CHUNK_SIZE = 262_144
MAX_LINKS = 174
CODEC_DAG_PB = 0x70
CODEC_RAW = 0x55
SHA2_256 = 0x12
_MULTIHASH_PREFIX = bytes((SHA2_256, 32))
_UNIXFS_RAW, _UNIXFS_FILE = 0, 2
_B58 = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}

Buffer = bytes | memoryview


@dataclass(frozen=True, slots=True)
class Cid:
    """A parsed CID: version 0 or 1, codec (dag-pb or raw) and the sha2-256 digest."""

    version: int
    codec: int
    digest: bytes

    def to_bytes(self) -> bytes:
        if self.version == 0:
            return _MULTIHASH_PREFIX + self.digest
        return bytes((1, self.codec)) + _MULTIHASH_PREFIX + self.digest

    def __str__(self) -> str:
        if self.version == 0:
            return _b58encode(self.to_bytes())
        return "b" + base64.b32encode(self.to_bytes()).decode("ascii").rstrip("=").lower()


@dataclass(frozen=True, slots=True)
class Block:
    """One encoded block: its CID and its bytes as parts (chunk bytes stay views of the input)."""

    cid: Cid
    parts: tuple[Buffer, ...]

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.parts)


@dataclass(frozen=True, slots=True)
class EncodedFile:
    """A file's whole DAG: the root CID and every block, children before parents."""

    root: Cid
    size: int
    blocks: list[Block]


@dataclass(frozen=True, slots=True)
class _Child:
    cid: Cid
    tsize: int  # block size plus the Tsize of everything below it, as Kubo reports
    filesize: int  # content bytes under this child, goes into the parent's blocksizes


def _b58encode(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = bytearray()
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    out.extend(b"1" * (len(raw) - len(raw.lstrip(b"\0"))))
    return out[::-1].decode("ascii")


def _b58decode(text: str) -> bytes:
    n = 0
    for c in text.encode("ascii"):
        n = n * 58 + _B58_INDEX[c]
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + n.to_bytes((n.bit_length() + 7) // 8, "big")


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: Buffer, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: Buffer) -> Iterator[tuple[int, int | memoryview]]:
    """Yield (field number, value) of a protobuf message; length-delimited values are views."""
    view = memoryview(buf)
    pos = 0
    while pos < len(view):
        key, pos = _read_varint(view, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(view, pos)
            yield number, value
        elif wire == 2:
            length, pos = _read_varint(view, pos)
            if pos + length > len(view):
                raise ValueError("truncated field")
            yield number, view[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported wire type {wire}")


def parse_cid(text: str) -> Cid:
    """Parse a CIDv0 (`Qm...`) or base32 CIDv1 (`b...`) string; raises InvalidCid."""
    try:
        if text.startswith("Qm") and len(text) == 46:
            raw = _b58decode(text)
            version, codec, mh = 0, CODEC_DAG_PB, raw
        elif text.startswith("b"):
            body = text[1:].upper()
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
            version, pos = _read_varint(raw, 0)
            codec, pos = _read_varint(raw, pos)
            mh = raw[pos:]
        else:
            raise ValueError("unsupported multibase")
    except (ValueError, KeyError) as exc:
        raise InvalidCid(f"not a CID: {text!r} ({exc})") from None
    if version not in (0, 1) or codec not in (CODEC_DAG_PB, CODEC_RAW):
        raise InvalidCid(f"unsupported CID version/codec: {text!r}")
    if len(mh) != 34 or mh[:2] != _MULTIHASH_PREFIX:
        raise InvalidCid(f"CID is not sha2-256: {text!r}")
    return Cid(version, codec, bytes(mh[2:]))


def _cid_from_binary(raw: Buffer) -> Cid:
    raw = bytes(raw)
    if raw[:2] == _MULTIHASH_PREFIX and len(raw) == 34:
        return Cid(0, CODEC_DAG_PB, raw[2:])
    version, pos = _read_varint(raw, 0)
    codec, pos = _read_varint(raw, pos)
    if version != 1 or codec not in (CODEC_DAG_PB, CODEC_RAW) or raw[pos : pos + 2] != _MULTIHASH_PREFIX:
        raise ValueError("unsupported link CID")
    return Cid(1, codec, raw[pos + 2 :])


def _hash_parts(parts: tuple[Buffer, ...]) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()


def _leaf(chunk: memoryview, cid_version: int) -> tuple[Block, _Child]:
    n = len(chunk)
    if cid_version == 1:
        parts: tuple[Buffer, ...] = (chunk,)
        cid = Cid(1, CODEC_RAW, _hash_parts(parts))
        return Block(cid, parts), _Child(cid, n, n)
    # dag-pb PBNode{Data: UnixFS{Type: file, Data: chunk, filesize: n}}; the empty file has no Data field
    data_field = b"\x12" + _varint(n) if n else b""
    suffix = b"\x18" + _varint(n)
    unixfs_len = 2 + len(data_field) + n + len(suffix)
    parts = (b"\x0a" + _varint(unixfs_len) + b"\x08\x02" + data_field, chunk, suffix)
    cid = Cid(0, CODEC_DAG_PB, _hash_parts(parts))
    return Block(cid, parts), _Child(cid, sum(len(p) for p in parts), n)


def _parent(children: list[_Child], cid_version: int) -> tuple[Block, _Child]:
    out = bytearray()
    for child in children:
        hash_bytes = child.cid.to_bytes()
        link = b"\x0a" + _varint(len(hash_bytes)) + hash_bytes + b"\x12\x00\x18" + _varint(child.tsize)
        out += b"\x12" + _varint(len(link)) + link
    filesize = sum(c.filesize for c in children)
    unixfs = bytearray(b"\x08\x02\x18" + _varint(filesize))
    for child in children:
        unixfs += b"\x20" + _varint(child.filesize)
    out += b"\x0a" + _varint(len(unixfs)) + unixfs
    block_bytes = bytes(out)
    cid = Cid(cid_version, CODEC_DAG_PB, hashlib.sha256(block_bytes).digest())
    tsize = len(block_bytes) + sum(c.tsize for c in children)
    return Block(cid, (block_bytes,)), _Child(cid, tsize, filesize)


def iter_blocks(data: Buffer, *, cid_version: int = 0) -> Iterator[Block]:
    """Yield the blocks of the UnixFS DAG Kubo's `ipfs add [--cid-version=1]` builds for `data`.

    Leaves come first, in file order, then parents level by level; the last block is the root.
    Lazy, so a caller can write block i while block i+1 is being hashed.
    """
    if cid_version not in (0, 1):
        raise ValueError("cid_version must be 0 or 1")
    view = memoryview(data).cast("B")
    level: list[_Child] = []
    for offset in range(0, max(len(view), 1), CHUNK_SIZE):
        block, child = _leaf(view[offset : offset + CHUNK_SIZE], cid_version)
        level.append(child)
        yield block
    # Same shape as Kubo's balanced builder: group 174 at a time bottom-up until one root is left
    # (a lone trailing group still gets its own parent); a single chunk is the file itself.
    while len(level) > 1:
        parents = []
        for i in range(0, len(level), MAX_LINKS):
            block, child = _parent(level[i : i + MAX_LINKS], cid_version)
            parents.append(child)
            yield block
        level = parents


def encode_file(data: Buffer, *, cid_version: int = 0) -> EncodedFile:
    """The whole DAG of `data` at once (see `iter_blocks`)."""
    blocks = list(iter_blocks(data, cid_version=cid_version))
    return EncodedFile(blocks[-1].cid, memoryview(data).nbytes, blocks)


def compute_cid(data: Buffer, *, cid_version: int = 0) -> str:
    """The CID Kubo's `ipfs add` (`--cid-version=1` when 1) gives for `data`, without storing it."""
    return str(encode_file(data, cid_version=cid_version).root)


def verify_block(cid: Cid, block: Buffer) -> None:
    """Raise BlockCorrupted unless `block` hashes to `cid`."""
    if hashlib.sha256(block).digest() != cid.digest:
        raise BlockCorrupted(f"block {cid} does not hash to its CID")


def decode_node(block: Buffer) -> tuple[memoryview | None, list[Cid], int | None, list[int]]:
    """Decode a dag-pb UnixFS file node: (inline data, child CIDs, filesize, blocksizes)."""
    links: list[Cid] = []
    unixfs: memoryview | None = None
    for number, value in _fields(block):
        if number == 2 and isinstance(value, memoryview):
            hashes = (v for n, v in _fields(value) if n == 1 and isinstance(v, memoryview))
            links.append(_cid_from_binary(next(hashes)))
        elif number == 1 and isinstance(value, memoryview):
            unixfs = value
    if unixfs is None:
        raise ValueError("dag-pb node has no UnixFS data")
    kind: int | None = None
    data: memoryview | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    for number, value in _fields(unixfs):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, memoryview):
            data = value
        elif number == 3 and isinstance(value, int):
            filesize = value
        elif number == 4:
            if not isinstance(value, int):  # the packed form; Kubo writes one varint per block
                raise ValueError("packed UnixFS blocksizes are not supported")
            blocksizes.append(value)
    if kind not in (_UNIXFS_RAW, _UNIXFS_FILE):
        raise ValueError(f"UnixFS node type {kind} is not a file")
    return data, links, filesize, blocksizes


def read_file(root: Cid, load_block: Callable[[Cid], Buffer]) -> bytes:
    """Reassemble the file under `root`, verifying every block's hash and the sizes recorded in the DAG.

    `load_block(cid)` returns a block's bytes (raising NotFound for the root if absent).
    """
    parts: list[Buffer] = []
    _collect(root, load_block, parts)
    return b"".join(parts)


def _collect(cid: Cid, load_block: Callable[[Cid], Buffer], parts: list[Buffer]) -> int:
    block = load_block(cid)
    verify_block(cid, block)
    if cid.codec == CODEC_RAW:
        parts.append(block)
        return len(block)
    try:
        data, links, filesize, blocksizes = decode_node(block)
    except ValueError as exc:
        raise StorageError(f"{cid} is not a UnixFS file: {exc}") from None
    total = 0
    if data is not None:
        parts.append(data)
        total += len(data)
    sizes = [_collect(link, load_block, parts) for link in links]
    total += sum(sizes)
    if (links and blocksizes != sizes) or (filesize is not None and filesize != total):
        raise BlockCorrupted(f"node {cid} records sizes that do not match its children")
    return total


def root_size(cid: Cid, block: Buffer) -> int:
    """The file size recorded in a (verified) root block."""
    verify_block(cid, block)
    if cid.codec == CODEC_RAW:
        return len(block)
    data, _links, filesize, _sizes = decode_node(block)
    return filesize if filesize is not None else len(data or b"")
