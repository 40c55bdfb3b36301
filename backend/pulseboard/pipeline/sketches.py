"""TEMPORARY stand-in until the sketches module lands (same API)."""

from collections.abc import Iterable, Sequence

from datasketches import hll_sketch, hll_union, kll_doubles_sketch, tgt_hll_type

LG_K = 12


def hll_of(values: Iterable[str]) -> bytes:
    sketch = hll_sketch(LG_K, tgt_hll_type.HLL_8)
    for value in values:
        sketch.update(value)
    return bytes(sketch.serialize_compact())


def hll_merge(blobs: Iterable[bytes]) -> bytes:
    union = hll_union(LG_K)
    for blob in blobs:
        union.update(hll_sketch.deserialize(blob))
    return bytes(union.get_result(tgt_hll_type.HLL_8).serialize_compact())


def hll_estimate(blob: bytes) -> float:
    return float(hll_sketch.deserialize(blob).get_estimate())


def quantiles_of(values: Sequence[float]) -> bytes:
    sketch = kll_doubles_sketch(200)
    for value in values:
        sketch.update(value)
    return bytes(sketch.serialize())


def quantiles_merge(blobs: Iterable[bytes]) -> bytes:
    sketch = kll_doubles_sketch(200)
    for blob in blobs:
        sketch.merge(kll_doubles_sketch.deserialize(blob))
    return bytes(sketch.serialize())


def quantiles_get(blob: bytes, qs: Sequence[float]) -> list[float | None]:
    sketch = kll_doubles_sketch.deserialize(blob)
    if sketch.is_empty():
        return [None for _ in qs]
    return [float(sketch.get_quantile(q)) for q in qs]
