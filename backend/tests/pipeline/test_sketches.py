"""Sketches: unique counts and quantiles close to exact, merges that behave, bad blobs refused."""

import random
import struct
import zlib
from collections.abc import Callable

import datasketches
import numpy as np
import pytest

from pulseboard.pipeline import sketches
from pulseboard.pipeline.sketches import InvalidSketch


def ids(start: int, stop: int) -> list[str]:
    return [f"user-{i}" for i in range(start, stop)]


def skewed(size: int, seed: int) -> np.ndarray:
    """Latency-like values: log-normal, a long right tail."""
    return np.random.default_rng(seed).lognormal(mean=3.0, sigma=1.2, size=size)


def assert_within_rank_error(blob: bytes, values: np.ndarray) -> None:
    exact = np.sort(values)
    qs = [0.5, 0.95, 0.99]
    for q, estimate in zip(qs, sketches.quantiles_get(blob, qs), strict=True):
        assert estimate is not None
        # The ranks the estimate holds in the exact data; q should fall among them.
        low = np.searchsorted(exact, estimate, side="left") / exact.size
        high = np.searchsorted(exact, estimate, side="right") / exact.size
        assert low - sketches.QUANTILES_RANK_ERROR <= q <= high + sketches.QUANTILES_RANK_ERROR, (
            q,
            estimate,
            float(np.quantile(exact, q)),
        )


# Unique counts ------------------------------------------------------------------------------------


def test_hll_estimate_of_100k_distinct_ids_is_within_2_percent() -> None:
    blob = sketches.hll_of(ids(0, 100_000))

    assert sketches.hll_estimate(blob) == pytest.approx(100_000, rel=0.02)


def test_union_of_30_overlapping_days_is_within_2_percent() -> None:
    # Each day sees 20,000 users from a window that moves by 3,000 a day: most return.
    days = [ids(day * 3_000, day * 3_000 + 20_000) for day in range(30)]
    exact = len(set().union(*days))
    blobs = [sketches.hll_of(day) for day in days]

    assert sketches.hll_count_union(blobs) == pytest.approx(exact, rel=0.02)
    assert sketches.hll_estimate(sketches.hll_merge(blobs)) == pytest.approx(
        sketches.hll_count_union(blobs), rel=1e-9
    )


def test_hll_merge_is_commutative() -> None:
    a, b, c = (sketches.hll_of(ids(i * 500, i * 500 + 2_000)) for i in range(3))

    estimates = {sketches.hll_count_union(order) for order in ([a, b, c], [c, a, b], [b, c, a])}

    assert len(estimates) == 1
    assert sketches.hll_estimate(sketches.hll_merge([a, b])) == sketches.hll_estimate(
        sketches.hll_merge([b, a])
    )


@pytest.mark.parametrize("size", [50, 100_000])
def test_merging_a_sketch_with_itself_changes_nothing(size: int) -> None:
    a = sketches.hll_of(ids(0, size))
    pair = sketches.hll_merge([a, sketches.hll_of(ids(size // 2, size))])

    assert sketches.hll_estimate(sketches.hll_merge([pair, pair])) == sketches.hll_estimate(pair)
    assert sketches.hll_estimate(sketches.hll_merge([pair, a])) == sketches.hll_estimate(pair)
    assert sketches.hll_count_union([a, a, a]) == sketches.hll_count_union([a, a])


def test_a_union_moves_a_fresh_estimate_by_far_less_than_its_error() -> None:
    # A sketch built by updates answers with the HIP estimator, a union of two with the
    # composite one: the same ids may read a little differently through a merge.
    a = sketches.hll_of(ids(0, 100_000))

    assert sketches.hll_count_union([a]) == sketches.hll_estimate(a)
    assert sketches.hll_count_union([a, a]) == pytest.approx(sketches.hll_estimate(a), rel=0.01)


def test_hll_add_grows_a_stored_sketch() -> None:
    stored = sketches.hll_of(ids(0, 60_000))

    grown = sketches.hll_add(stored, ids(40_000, 100_000))

    assert sketches.hll_estimate(grown) == pytest.approx(100_000, rel=0.02)
    assert sketches.hll_add(stored, []) == stored


def test_builder_makes_the_same_sketch_per_key_as_hll_of() -> None:
    rows = [(f"/page/{i % 7}", f"user-{i % 1_000}") for i in range(20_000)]
    builder: sketches.HllBuilder[str] = sketches.HllBuilder()
    for path, user in rows[:10_000]:
        builder.add(path, user)
    builder.update("/page/0", (user for path, user in rows[10_000:] if path == "/page/0"))

    built = builder.build()

    assert len(builder) == len(built) == 7
    for path, blob in built.items():
        users = [user for key, user in rows[:10_000] if key == path]
        if path == "/page/0":
            users += [user for key, user in rows[10_000:] if key == path]
        assert blob == sketches.hll_of(users)


def test_a_sketch_past_a_few_hundred_ids_stays_near_2_kb() -> None:
    assert len(sketches.hll_of(ids(0, 1_000_000))) < 2_200


# Quantiles ----------------------------------------------------------------------------------------


def test_quantiles_of_100k_skewed_values_are_within_the_rank_error() -> None:
    values = skewed(100_000, seed=1)

    assert_within_rank_error(sketches.quantiles_of(values), values)
    assert_within_rank_error(sketches.quantiles_of(values.tolist()), values)


def test_quantiles_after_merging_24_hourly_sketches_are_within_the_rank_error() -> None:
    values = skewed(100_000, seed=2)
    # Uneven hours, as traffic is.
    cuts = np.sort(np.random.default_rng(3).choice(values.size, size=23, replace=False))
    hours = [sketches.quantiles_of(part) for part in np.split(values, cuts)]

    assert_within_rank_error(sketches.quantiles_merge(hours), values)


def test_quantiles_add_grows_a_stored_sketch() -> None:
    values = skewed(50_000, seed=4)
    stored = sketches.quantiles_of(values[:20_000])

    assert_within_rank_error(sketches.quantiles_add(stored, values[20_000:]), values)


def test_quantile_of_rank_0_and_1_are_the_extremes() -> None:
    blob = sketches.quantiles_of([3.0, 1.0, 2.0, 10.0])

    assert sketches.quantiles_get(blob, [0.0, 1.0]) == [1.0, 10.0]


def test_nan_values_are_skipped() -> None:
    blob = sketches.quantiles_of([float("nan"), 5.0, float("nan")])

    assert sketches.quantiles_get(blob, [0.5]) == [5.0]


@pytest.mark.parametrize("rank", [-0.01, 1.01, float("nan")])
def test_a_rank_outside_0_1_is_refused(rank: float) -> None:
    with pytest.raises(ValueError, match="within \\[0, 1\\]"):
        sketches.quantiles_get(sketches.quantiles_of([1.0]), [0.5, rank])


def test_values_must_be_one_dimensional() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        sketches.quantiles_of(np.ones((2, 2)))


# Empty inputs -------------------------------------------------------------------------------------


def test_empty_hll_sketches_count_zero_and_merge_as_nothing() -> None:
    empty = sketches.hll_of([])
    some = sketches.hll_of(ids(0, 10))

    assert sketches.hll_estimate(empty) == 0.0
    assert sketches.hll_estimate(sketches.hll_merge([])) == 0.0
    assert sketches.hll_count_union([]) == 0.0
    assert sketches.hll_estimate(sketches.hll_merge([empty, some, empty])) == pytest.approx(10)


@pytest.mark.parametrize(
    "values", [[], np.array([]), [float("nan")]], ids=["list", "array", "only-nan"]
)
def test_an_empty_quantile_sketch_answers_none_for_every_rank(values: list[float]) -> None:
    empty = sketches.quantiles_of(values)

    assert sketches.quantiles_get(empty, [0.5, 0.95, 0.99]) == [None, None, None]
    assert sketches.quantiles_get(empty, []) == []
    assert sketches.quantiles_get(sketches.quantiles_merge([]), [0.5]) == [None]
    merged = sketches.quantiles_merge([empty, sketches.quantiles_of([7.0]), empty])
    assert sketches.quantiles_get(merged, [0.5]) == [7.0]


# Bad blobs ----------------------------------------------------------------------------------------

HLL_BLOB = sketches.hll_of(ids(0, 5_000))
KLL_BLOB = sketches.quantiles_of(skewed(5_000, seed=5))

HLL_READERS: dict[str, Callable[[bytes], object]] = {
    "hll_estimate": sketches.hll_estimate,
    "hll_merge": lambda blob: sketches.hll_merge([HLL_BLOB, blob]),
    "hll_count_union": lambda blob: sketches.hll_count_union([blob]),
    "hll_add": lambda blob: sketches.hll_add(blob, ["x"]),
}
KLL_READERS: dict[str, Callable[[bytes], object]] = {
    "quantiles_get": lambda blob: sketches.quantiles_get(blob, [0.5]),
    "quantiles_merge": lambda blob: sketches.quantiles_merge([KLL_BLOB, blob]),
    "quantiles_add": lambda blob: sketches.quantiles_add(blob, [1.0]),
}


def flip(blob: bytes, position: int) -> bytes:
    return blob[:position] + bytes([blob[position] ^ 0xFF]) + blob[position + 1 :]


def envelope(tag: str, image: bytes, version: int = 1) -> bytes:
    return struct.pack("<BBI", ord(tag), version, zlib.crc32(image)) + image


def bad_blobs(good: bytes, tag: str, other: bytes) -> dict[str, tuple[bytes, str]]:
    image = good[sketches.ENVELOPE_BYTES :]
    return {
        "empty": (b"", "too short"),
        "garbage": (b"not a sketch at all", "wrong sketch kind"),
        "other-kind": (other, "wrong sketch kind"),
        "bare-image": (image, "wrong sketch kind|corrupt"),
        "truncated": (good[: len(good) // 2], "checksum"),
        "byte-flipped": (flip(good, len(good) // 2), "checksum"),
        "extended": (good + b"\x00", "checksum"),
        "future-version": (envelope(tag, image, version=2), "format version 2"),
        # A sound envelope around an image the library itself rejects.
        "sealed-garbage": (envelope(tag, image[:8]), "corrupt"),
    }


@pytest.mark.parametrize("reader", HLL_READERS)
@pytest.mark.parametrize("case", bad_blobs(HLL_BLOB, "H", KLL_BLOB))
def test_a_bad_hll_blob_raises_invalid_sketch(reader: str, case: str) -> None:
    blob, message = bad_blobs(HLL_BLOB, "H", KLL_BLOB)[case]

    with pytest.raises(InvalidSketch, match=message):
        HLL_READERS[reader](blob)


@pytest.mark.parametrize("reader", KLL_READERS)
@pytest.mark.parametrize("case", bad_blobs(KLL_BLOB, "K", HLL_BLOB))
def test_a_bad_quantile_blob_raises_invalid_sketch(reader: str, case: str) -> None:
    blob, message = bad_blobs(KLL_BLOB, "K", HLL_BLOB)[case]

    with pytest.raises(InvalidSketch, match=message):
        KLL_READERS[reader](blob)


def test_invalid_sketch_is_a_value_error() -> None:
    assert issubclass(InvalidSketch, ValueError)


def test_random_damage_never_reaches_the_library() -> None:
    # Raw DataSketches segfaults on some of these (see bench/sketches.py); here each is refused.
    rng = random.Random(0)
    big_hll = sketches.hll_of(ids(0, 1_000))
    big_kll = sketches.quantiles_of(skewed(100_000, seed=6))
    cases = [(big_hll, HLL_READERS["hll_estimate"]), (big_kll, KLL_READERS["quantiles_get"])]
    for _ in range(500):
        blob, read = rng.choice(cases)
        damaged = bytearray(blob)
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(len(damaged))] ^= rng.randint(1, 255)
        else:
            del damaged[rng.randrange(len(damaged)) :]
        if bytes(damaged) == blob:
            continue
        with pytest.raises(InvalidSketch):
            read(bytes(damaged))


def test_the_image_after_the_envelope_is_plain_datasketches() -> None:
    image = HLL_BLOB[sketches.ENVELOPE_BYTES :]

    reread = datasketches.hll_sketch.deserialize(image).get_estimate()

    assert reread == sketches.hll_estimate(HLL_BLOB)
    kll = datasketches.kll_doubles_sketch.deserialize(KLL_BLOB[sketches.ENVELOPE_BYTES :])
    assert kll.n == 5_000
