"""Mergeable sketches kept in rollup rows: HyperLogLog unique counts and KLL quantiles.

Both come from Apache DataSketches. A stored blob is a 6-byte envelope (kind tag, format version,
CRC-32 of the rest) followed by the DataSketches image. The library trusts its input: in
`bench/sketches.py`, about 1 in 6 damaged HLL_4 images and 1 in 100 damaged KLL images kill the
process when read and merged, and about half of the others are read without complaint. Nothing
reaches it unless the checksum matches. `blob[ENVELOPE_BYTES:]` is the plain DataSketches image,
readable by the Java and C++ libraries.

A sketch built from values estimates with HIP, a union of two or more with the composite
estimator; both are within the error bound (~1.6 % at lg_k 12) but differ by a fraction of it
(0.6 % at 100k ids), so one day read from its own row and through a union may differ that much.

Empty inputs are ordinary sketches: an empty HLL estimates 0.0 and an empty quantile sketch
answers `None` for every rank (a p95 of no samples is absent, not 0 or NaN).
"""

import struct
import zlib
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Final, Generic, Protocol, TypeVar

import datasketches
import numpy as np
import numpy.typing as npt

HLL_LG_K: Final = 12
# HLL_4: past ~400 distinct values a sketch is 2.1 KB against 4.1 KB for HLL_8 (3.1 KB HLL_6),
# and updates run at the same ~17M/s. It costs a conversion when a union is serialised (hll_merge
# of a full row: ~65 µs against ~1 µs for HLL_8) and 40 % more time to union 720 rows (1.7 ms
# against 1.2 ms). Reading half the bytes from the database outweighs the latter; the worker
# avoids the former by adding values to the stored sketch (hll_add, ~3 µs). bench/sketches.py.
HLL_TYPE: Final = datasketches.tgt_hll_type.HLL_4

# KLL rather than REQ or t-digest: a known rank-error bound for every rank, doubles, ~37M updates/s
# from a numpy array. REQ is sharper in the far tail but keeps float32 and updates one by one at
# ~1.6M/s; t-digest has no bound, erred 1.3 % in rank at p50 and merges 2.5x slower.
KLL_K: Final = 200
# Single-sided normalised rank error at KLL_K: with 99 % confidence, the value returned for rank q
# has a true rank within q ± this (0.0133 at k=200), whatever the distribution and merges.
QUANTILES_RANK_ERROR: Final[float] = float(
    datasketches.kll_doubles_sketch.get_normalized_rank_error(KLL_K, False)
)

# Tag, format version, CRC-32 of the DataSketches image.
_ENVELOPE: Final = struct.Struct("<BBI")
ENVELOPE_BYTES: Final = _ENVELOPE.size
_FORMAT_VERSION: Final = 1
_HLL_TAG: Final = ord("H")
_KLL_TAG: Final = ord("K")
_KINDS: Final = {_HLL_TAG: "HLL", _KLL_TAG: "quantile"}
# What DataSketches raises on images it can tell are malformed.
_LIBRARY_ERRORS: Final = (ValueError, IndexError, RuntimeError, MemoryError)


class InvalidSketch(ValueError):
    """A stored sketch blob that is truncated, corrupt or of another kind."""


class _HllSketch(Protocol):
    def update(self, datum: str) -> None: ...
    def get_estimate(self) -> float: ...
    def serialize_compact(self) -> bytes: ...


class _HllUnion(Protocol):
    def update(self, sketch: _HllSketch) -> None: ...
    def get_estimate(self) -> float: ...
    def get_result(self, tgt_type: Any) -> _HllSketch: ...


class _KllSketch(Protocol):
    def update(self, array: npt.NDArray[np.float64]) -> None: ...
    def merge(self, sketch: "_KllSketch") -> None: ...
    def is_empty(self) -> bool: ...
    def get_quantiles(self, ranks: list[float], inclusive: bool) -> list[float]: ...
    def serialize(self) -> bytes: ...


# Unique counts ------------------------------------------------------------------------------------


def hll_of(values: Iterable[str]) -> bytes:
    """A serialised HLL sketch of these values (strings only: 1 and "1" hash differently)."""
    sketch = _new_hll()
    _update_all(sketch, values)
    return _seal(_HLL_TAG, sketch.serialize_compact())


def hll_add(blob: bytes, values: Iterable[str]) -> bytes:
    """The stored sketch with these values added: the cheap way to grow a rollup row."""
    sketch = _load_hll(blob)
    _update_all(sketch, values)
    return _seal(_HLL_TAG, sketch.serialize_compact())


def hll_merge(blobs: Iterable[bytes]) -> bytes:
    """The union of these sketches, serialised; no sketches give an empty one."""
    result = _union(blobs).get_result(HLL_TYPE)
    return _seal(_HLL_TAG, result.serialize_compact())


def hll_estimate(blob: bytes) -> float:
    """Estimated distinct count of one sketch."""
    return float(_load_hll(blob).get_estimate())


def hll_count_union(blobs: Iterable[bytes]) -> float:
    """Estimated distinct count across these sketches, without serialising their union."""
    return float(_union(blobs).get_estimate())


K = TypeVar("K", bound=Hashable)


class HllBuilder(Generic[K]):
    """Builds one sketch per key over a batch of rows, serialising each once at the end."""

    def __init__(self) -> None:
        self._sketches: dict[K, _HllSketch] = {}

    def __len__(self) -> int:
        return len(self._sketches)

    def add(self, key: K, value: str) -> None:
        sketch = self._sketches.get(key)
        if sketch is None:
            sketch = self._sketches[key] = _new_hll()
        sketch.update(value)

    def update(self, key: K, values: Iterable[str]) -> None:
        sketch = self._sketches.get(key)
        if sketch is None:
            sketch = self._sketches[key] = _new_hll()
        _update_all(sketch, values)

    def build(self) -> dict[K, bytes]:
        """Every key's serialised sketch."""
        return {
            key: _seal(_HLL_TAG, sketch.serialize_compact())
            for key, sketch in self._sketches.items()
        }


def _new_hll() -> _HllSketch:
    sketch: _HllSketch = datasketches.hll_sketch(HLL_LG_K, HLL_TYPE)
    return sketch


def _update_all(sketch: _HllSketch, values: Iterable[str]) -> None:
    # map() drives the C++ update without a Python loop body: ~17M/s against ~13M/s.
    deque(map(sketch.update, values), maxlen=0)


def _union(blobs: Iterable[bytes]) -> _HllUnion:
    union: _HllUnion = datasketches.hll_union(HLL_LG_K)
    for blob in blobs:
        union.update(_load_hll(blob))
    return union


def _load_hll(blob: bytes) -> _HllSketch:
    image = _open(_HLL_TAG, blob)
    try:
        sketch: _HllSketch = datasketches.hll_sketch.deserialize(image)
    except _LIBRARY_ERRORS as error:
        raise InvalidSketch(f"HLL sketch blob is corrupt: {error}") from error
    return sketch


# Quantiles ----------------------------------------------------------------------------------------


def quantiles_of(values: npt.NDArray[np.floating[Any]] | Sequence[float]) -> bytes:
    """A serialised KLL sketch of these values; NaNs are skipped, infinities kept."""
    sketch = _new_kll()
    _update_kll(sketch, values)
    return _seal(_KLL_TAG, sketch.serialize())


def quantiles_add(blob: bytes, values: npt.NDArray[np.floating[Any]] | Sequence[float]) -> bytes:
    """The stored sketch with these values added."""
    sketch = _load_kll(blob)
    _update_kll(sketch, values)
    return _seal(_KLL_TAG, sketch.serialize())


def quantiles_merge(blobs: Iterable[bytes]) -> bytes:
    """The merge of these sketches, serialised; no sketches give an empty one."""
    merged = _new_kll()
    for blob in blobs:
        merged.merge(_load_kll(blob))
    return _seal(_KLL_TAG, merged.serialize())


def quantiles_get(blob: bytes, qs: Sequence[float]) -> list[float | None]:
    """The value at each rank in `qs` (0.95 for p95), or None for each when there are no values.

    A returned value is a sample that was seen, the smallest whose inclusive rank reaches q (so 0
    gives the minimum and 1 the maximum), accurate to QUANTILES_RANK_ERROR in rank.
    """
    ranks = [float(q) for q in qs]
    for rank in ranks:
        if not 0.0 <= rank <= 1.0:  # also refuses NaN, which DataSketches would accept
            raise ValueError(f"quantile rank must be within [0, 1], got {rank}")
    sketch = _load_kll(blob)
    if sketch.is_empty():
        return [None] * len(ranks)
    return [float(value) for value in sketch.get_quantiles(ranks, True)]


def _new_kll() -> _KllSketch:
    sketch: _KllSketch = datasketches.kll_doubles_sketch(KLL_K)
    return sketch


def _update_kll(
    sketch: _KllSketch, values: npt.NDArray[np.floating[Any]] | Sequence[float]
) -> None:
    # One call for the whole array: ~27M values/s even counting the list-to-array copy.
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"quantile values must be one-dimensional, got shape {array.shape}")
    if array.size:
        sketch.update(array)


def _load_kll(blob: bytes) -> _KllSketch:
    image = _open(_KLL_TAG, blob)
    try:
        sketch: _KllSketch = datasketches.kll_doubles_sketch.deserialize(image)
    except _LIBRARY_ERRORS as error:
        raise InvalidSketch(f"quantile sketch blob is corrupt: {error}") from error
    return sketch


# Envelope -----------------------------------------------------------------------------------------


def _seal(tag: int, image: bytes) -> bytes:
    return _ENVELOPE.pack(tag, _FORMAT_VERSION, zlib.crc32(image)) + image


def _open(tag: int, blob: bytes) -> bytes:
    """The DataSketches image in a blob, once its envelope shows it intact and of this kind."""
    kind = _KINDS[tag]
    if len(blob) < ENVELOPE_BYTES:
        raise InvalidSketch(f"{kind} sketch blob is {len(blob)} bytes, too short to be one")
    found, version, checksum = _ENVELOPE.unpack_from(blob)
    if found != tag:
        other = _KINDS.get(found, f"unknown tag {found:#04x}")
        raise InvalidSketch(f"wrong sketch kind: wanted {kind}, the blob holds {other}")
    if version != _FORMAT_VERSION:
        raise InvalidSketch(
            f"{kind} sketch blob has format version {version}, not {_FORMAT_VERSION}"
        )
    image = blob[ENVELOPE_BYTES:]
    if zlib.crc32(image) != checksum:
        raise InvalidSketch(f"{kind} sketch blob is corrupt: its checksum does not match")
    return image
