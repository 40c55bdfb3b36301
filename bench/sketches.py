"""Rollup sketches on this machine: update and merge speed, sizes, errors, and the choices behind.

HyperLogLog (unique counts) and KLL (quantiles) as `pulseboard.pipeline.sketches` uses them, each
beside a reference from the same run (exact Python sets, numpy quantiles), then the alternatives:
HLL_4/6/8, and KLL against REQ and t-digest. Last, damaged blobs fed to the raw library in forked
processes (how many crash it) and through the module (all refused).

Run: backend/.venv/bin/python bench/sketches.py  (writes bench/results/sketches.json)
"""

import gc
import json
import os
import platform
import random
import statistics
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "backend"))

import datasketches  # noqa: E402
import numpy as np  # noqa: E402

from pulseboard.pipeline import sketches  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "sketches.json"
REPEATS = 5
MILLION = 1_000_000
HOURS = 720  # 30 days of hourly rollup rows
IDS_PER_HOUR = 2_000  # drawn from a population of 100k users
VALUES_PER_HOUR = 1_000
BATCH_ROWS = 200_000  # a worker batch stand-in: rows over 50 (bucket, dimension) keys
FUZZ_CASES = 600
QS = (0.5, 0.95, 0.99, 0.999)


def timed(run: Callable[[], object], repeats: int = REPEATS) -> list[float]:
    """Seconds per run, one sample per repeat."""
    samples = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return samples


def rate(run: Callable[[], object], items: int, repeats: int = REPEATS) -> dict[str, float]:
    """Items per second: best and median."""
    samples = timed(run, repeats)
    return {
        "best": round(items / min(samples)),
        "median": round(items / statistics.median(samples)),
    }


def ms(run: Callable[[], object], repeats: int = REPEATS) -> dict[str, float]:
    samples = timed(run, repeats)
    return {
        "best": round(min(samples) * 1e3, 3),
        "median": round(statistics.median(samples) * 1e3, 3),
    }


def us(run: Callable[[], object], calls: int, repeats: int = REPEATS) -> dict[str, float]:
    samples = [s / calls for s in timed(run, repeats)]
    return {
        "best": round(min(samples) * 1e6, 2),
        "median": round(statistics.median(samples) * 1e6, 2),
    }


def ids(start: int, stop: int, prefix: str = "user") -> list[str]:
    return [f"{prefix}-{i}" for i in range(start, stop)]


def rank_error(exact_sorted: np.ndarray, q: float, estimate: float) -> float:
    """How far q lies from the ranks the estimate holds in the exact data."""
    low = np.searchsorted(exact_sorted, estimate, side="left") / exact_sorted.size
    high = np.searchsorted(exact_sorted, estimate, side="right") / exact_sorted.size
    return float(max(low - q, q - high, 0.0))


def skewed(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.lognormal(mean=3.0, sigma=1.2, size=size)


# HyperLogLog --------------------------------------------------------------------------------------


def bench_hll(population: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"lg_k": sketches.HLL_LG_K, "type": str(sketches.HLL_TYPE).split(".")[-1]}
    million = population[:MILLION]

    def one_by_one() -> None:
        sketch = datasketches.hll_sketch(sketches.HLL_LG_K, sketches.HLL_TYPE)
        for value in million:
            sketch.update(value)

    def exact_set() -> None:
        seen: set[str] = set()
        for value in million:
            seen.add(value)

    rng = random.Random(1)
    batch = [(rng.randrange(50), f"user-{rng.randrange(20_000)}") for _ in range(BATCH_ROWS)]

    def builder() -> None:
        build: sketches.HllBuilder[int] = sketches.HllBuilder()
        for key, user in batch:
            build.add(key, user)
        build.build()

    def sets_then_hll_of() -> None:
        seen: dict[int, set[str]] = {}
        for key, user in batch:
            seen.setdefault(key, set()).add(user)
        for users in seen.values():
            sketches.hll_of(users)

    out["updates_per_s"] = {
        "one_by_one": rate(one_by_one, MILLION),
        "hll_of": rate(lambda: sketches.hll_of(million), MILLION),
        "builder_add_per_row": rate(builder, BATCH_ROWS),
        "sets_per_key_then_hll_of": rate(sets_then_hll_of, BATCH_ROWS),
        "reference_python_set_add": rate(exact_set, MILLION),
    }

    # 30 days of hourly rows, each 2,000 of 100k users.
    np_rng = np.random.default_rng(2)
    hours = [
        [population[i] for i in np_rng.integers(0, 100_000, IDS_PER_HOUR)] for _ in range(HOURS)
    ]
    blobs = [sketches.hll_of(hour) for hour in hours]
    exact = len(set().union(*hours))

    def exact_union() -> None:
        seen: set[str] = set()
        for hour in hours:
            seen.update(hour)

    estimate = sketches.hll_count_union(blobs)
    out["merge_720_hourly_ms"] = {
        "hll_count_union": ms(lambda: sketches.hll_count_union(blobs)),
        "hll_merge_then_estimate": ms(lambda: sketches.hll_estimate(sketches.hll_merge(blobs))),
        "reference_exact_set_union": ms(exact_union),
        "distinct": exact,
        "estimate": round(estimate),
        "relative_error": round(estimate / exact - 1, 5),
        "bytes_read": sum(len(blob) for blob in blobs),
    }

    # What the worker pays per rollup row it grows: a full stored sketch, 20 new ids.
    stored = sketches.hll_of(population[:100_000])
    new = ids(0, 20, "new")
    calls = 2_000

    def via_merge() -> None:
        for _ in range(calls):
            sketches.hll_merge((stored, sketches.hll_of(new)))

    def via_add() -> None:
        for _ in range(calls):
            sketches.hll_add(stored, new)

    out["grow_stored_row_us"] = {
        "hll_merge_with_new_sketch": us(via_merge, calls),
        "hll_add": us(via_add, calls),
        "hll_estimate": us(lambda: [sketches.hll_estimate(stored) for _ in range(calls)], calls),
    }

    out["bytes"] = {
        str(n): len(sketches.hll_of(population[:n])) for n in (0, 1, 10, 100, 300, 1_000, MILLION)
    }
    out["error"] = {
        str(n): round(sketches.hll_estimate(sketches.hll_of(population[:n])) / n - 1, 5)
        for n in (100_000, MILLION)
    }
    # One sketch is one draw; the spread over 20 disjoint id sets says more.
    trials = [
        sketches.hll_estimate(sketches.hll_of(population[start : start + 100_000])) / 100_000 - 1
        for start in range(0, 2 * MILLION, 100_000)
    ]
    out["error"]["100000_over_20_sets"] = {
        "mean_abs": round(statistics.fmean(abs(t) for t in trials), 5),
        "max_abs": round(max(abs(t) for t in trials), 5),
    }
    # The library signs the upper bound's error negative; only its size matters here.
    out["error"]["a_priori_rse_single"] = round(
        abs(datasketches.hll_sketch.get_rel_err(True, False, sketches.HLL_LG_K, 1)), 5
    )
    out["error"]["a_priori_rse_union"] = round(
        abs(datasketches.hll_sketch.get_rel_err(True, True, sketches.HLL_LG_K, 1)), 5
    )
    return out


def bench_hll_types(population: list[str]) -> dict[str, Any]:
    """The raw library at lg_k 12 for each register width."""
    out: dict[str, Any] = {}
    lg_k = sketches.HLL_LG_K
    million = population[:MILLION]
    np_rng = np.random.default_rng(3)
    hours = [
        [population[i] for i in np_rng.integers(0, 100_000, IDS_PER_HOUR)] for _ in range(HOURS)
    ]
    new = ids(0, 20, "new")
    calls = 1_000
    for hll_type in (datasketches.HLL_4, datasketches.HLL_6, datasketches.HLL_8):

        def build(values: Sequence[str], hll_type: Any = hll_type) -> Any:
            sketch = datasketches.hll_sketch(lg_k, hll_type)
            deque(map(sketch.update, values), maxlen=0)
            return sketch

        full = build(population[:100_000]).serialize_compact()
        small = build(new).serialize_compact()
        images = [build(hour).serialize_compact() for hour in hours]

        def union_720(images: list[bytes] = images) -> float:
            union = datasketches.hll_union(lg_k)
            for image in images:
                union.update(datasketches.hll_sketch.deserialize(image))
            return float(union.get_estimate())

        def union_row(full: bytes = full, small: bytes = small, hll_type: Any = hll_type) -> None:
            for _ in range(calls):
                union = datasketches.hll_union(lg_k)
                union.update(datasketches.hll_sketch.deserialize(full))
                union.update(datasketches.hll_sketch.deserialize(small))
                union.get_result(hll_type).serialize_compact()

        def update_row(full: bytes = full) -> None:
            for _ in range(calls):
                sketch = datasketches.hll_sketch.deserialize(full)
                deque(map(sketch.update, new), maxlen=0)
                sketch.serialize_compact()

        out[str(hll_type).split(".")[-1]] = {
            "updates_per_s": rate(lambda hll_type=hll_type: build(million, hll_type), MILLION, 3),
            "bytes_at_100k": len(full),
            "zlib_bytes_at_100k": len(zlib.compress(full, 6)),
            "union_720_and_estimate_ms": ms(union_720),
            "grow_row_by_union_us": us(union_row, calls, 3),
            "grow_row_by_update_us": us(update_row, calls, 3),
        }
    return out


# Quantiles ----------------------------------------------------------------------------------------


def bench_quantiles() -> dict[str, Any]:
    out: dict[str, Any] = {"k": sketches.KLL_K, "rank_error": sketches.QUANTILES_RANK_ERROR}
    rng = np.random.default_rng(4)
    values = skewed(rng, MILLION)
    as_list = values.tolist()

    def one_by_one() -> None:
        sketch = datasketches.kll_doubles_sketch(sketches.KLL_K)
        for value in as_list:
            sketch.update(value)

    def from_array() -> None:
        datasketches.kll_doubles_sketch(sketches.KLL_K).update(values)

    out["updates_per_s"] = {
        "one_by_one": rate(one_by_one, MILLION, 3),
        "numpy_array": rate(from_array, MILLION),
        "quantiles_of_array": rate(lambda: sketches.quantiles_of(values), MILLION),
        "quantiles_of_list": rate(lambda: sketches.quantiles_of(as_list), MILLION),
        "reference_numpy_sort": rate(lambda: np.sort(values), MILLION),
    }

    hours_values = [skewed(rng, VALUES_PER_HOUR) for _ in range(HOURS)]
    blobs = [sketches.quantiles_of(hour) for hour in hours_values]
    everything = np.sort(np.concatenate(hours_values))
    merged = sketches.quantiles_get(sketches.quantiles_merge(blobs), QS)
    out["merge_720_hourly_ms"] = {
        "quantiles_merge_then_get": ms(
            lambda: sketches.quantiles_get(sketches.quantiles_merge(blobs), QS)
        ),
        "reference_numpy_quantile_of_raw": ms(
            lambda: np.quantile(np.concatenate(hours_values), QS)
        ),
        "values": int(everything.size),
        "rank_error": {
            str(q): round(rank_error(everything, q, float(e or 0)), 5)
            for q, e in zip(QS, merged, strict=True)
        },
        "bytes_read": sum(len(blob) for blob in blobs),
    }

    stored = sketches.quantiles_of(values[:100_000])
    new = values[:20].tolist()
    calls = 1_000

    def via_merge() -> None:
        for _ in range(calls):
            sketches.quantiles_merge((stored, sketches.quantiles_of(new)))

    def via_add() -> None:
        for _ in range(calls):
            sketches.quantiles_add(stored, new)

    out["grow_stored_row_us"] = {
        "quantiles_merge_with_new_sketch": us(via_merge, calls),
        "quantiles_add": us(via_add, calls),
    }
    out["bytes"] = {
        str(n): len(sketches.quantiles_of(values[:n])) for n in (0, 1, 100, 1_000, 100_000, MILLION)
    }
    out["error"] = {}
    for n in (100_000, MILLION):
        exact = np.sort(values[:n])
        got = sketches.quantiles_get(sketches.quantiles_of(values[:n]), QS)
        out["error"][str(n)] = {
            str(q): round(rank_error(exact, q, float(e or 0)), 5)
            for q, e in zip(QS, got, strict=True)
        }
    return out


def bench_quantile_kinds() -> dict[str, Any]:
    """KLL against the other quantile sketches in DataSketches, on the same skewed values."""
    rng = np.random.default_rng(5)
    size = 200_000
    values = skewed(rng, size)
    as_list = values.tolist()
    exact = np.sort(values)
    hours_values = [skewed(rng, VALUES_PER_HOUR) for _ in range(HOURS)]
    kinds: dict[str, tuple[Callable[[], Any], Any, type[np.floating[Any]]]] = {
        "kll_doubles_k200": (
            lambda: datasketches.kll_doubles_sketch(200),
            datasketches.kll_doubles_sketch,
            np.float64,
        ),
        "req_floats_k12_hra": (
            lambda: datasketches.req_floats_sketch(12, True),
            datasketches.req_floats_sketch,
            np.float32,
        ),
        "tdigest_double_k200": (
            lambda: datasketches.tdigest_double(200),
            datasketches.tdigest_double,
            np.float64,
        ),
    }
    out: dict[str, Any] = {}
    for name, (new, kind, dtype) in kinds.items():
        typed = values.astype(dtype)

        def one_by_one(new: Callable[[], Any] = new) -> None:
            sketch = new()
            for value in as_list:
                sketch.update(value)

        def from_array(new: Callable[[], Any] = new, typed: np.ndarray = typed) -> None:
            new().update(typed)

        whole = new()
        whole.update(typed)
        images = []
        for hour in hours_values:
            sketch = new()
            sketch.update(hour.astype(dtype))
            images.append(sketch.serialize())

        def merge_720(new: Callable[[], Any] = new, kind: Any = kind, images: Any = images) -> None:
            merged = new()
            for image in images:
                merged.merge(kind.deserialize(image))
            for q in QS:
                merged.get_quantile(q)

        out[name] = {
            "updates_per_s_one_by_one": rate(one_by_one, size, 3),
            "updates_per_s_array": rate(from_array, size),
            "bytes_at_200k": len(whole.serialize()),
            "merge_720_and_get_ms": ms(merge_720),
            "rank_error_at_200k": {
                str(q): round(rank_error(exact, q, float(whole.get_quantile(q))), 5) for q in QS
            },
        }
    return out


# Damaged blobs ------------------------------------------------------------------------------------


def damage(rng: random.Random, blob: bytes) -> bytes:
    damaged = bytearray(blob)
    if rng.random() < 0.6:
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] ^= rng.randint(1, 255)
    else:
        del damaged[rng.randrange(1, len(damaged)) :]
    return bytes(damaged)


def in_child(run: Callable[[], object]) -> str:
    """'ok', 'error' (a Python exception) or 'crash' (killed by a signal), run in a fork."""
    pid = os.fork()
    if pid == 0:
        os.close(2)  # glibc's abort message
        try:
            run()
        except Exception:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "crash"
    return "ok" if os.WEXITSTATUS(status) == 0 else "error"


def read_hll_raw(image: bytes) -> None:
    """Read an image the way the module would: estimate it, then merge it."""
    sketch = datasketches.hll_sketch.deserialize(image)
    sketch.get_estimate()
    union = datasketches.hll_union(sketches.HLL_LG_K)
    union.update(sketch)
    union.get_result(sketches.HLL_TYPE).serialize_compact()


def read_kll_raw(image: bytes) -> None:
    sketch = datasketches.kll_doubles_sketch.deserialize(image)
    if not sketch.is_empty():
        sketch.get_quantiles(QS)
    merged = datasketches.kll_doubles_sketch(sketches.KLL_K)
    merged.merge(sketch)
    merged.serialize()


def read_hll(blob: bytes) -> None:
    sketches.hll_estimate(blob)
    sketches.hll_merge([blob])


def read_kll(blob: bytes) -> None:
    sketches.quantiles_get(blob, QS)
    sketches.quantiles_merge([blob])


def bench_damage(population: list[str]) -> dict[str, Any]:
    rng = random.Random(6)
    kll_blob = sketches.quantiles_of(skewed(np.random.default_rng(7), 100_000))
    # 1,000 ids: HLL mode with an HLL_4 exception table, where damage has crashed the library.
    hll_blob = sketches.hll_of(population[:1_000])
    raw_readers: dict[str, tuple[bytes, Callable[[bytes], object]]] = {
        "hll": (hll_blob, read_hll_raw),
        "kll": (kll_blob, read_kll_raw),
    }
    module_readers: dict[str, Callable[[bytes], object]] = {
        "hll": read_hll,
        "kll": read_kll,
    }
    out: dict[str, Any] = {"cases_per_kind": FUZZ_CASES}
    for kind, (blob, read_raw) in raw_readers.items():
        raw = {"ok": 0, "error": 0, "crash": 0}
        refused = 0
        for _ in range(FUZZ_CASES):
            # The image is damaged behind an intact envelope: the checksum must catch it.
            image = damage(rng, blob[sketches.ENVELOPE_BYTES :])
            raw[in_child(lambda read_raw=read_raw, image=image: read_raw(image))] += 1
            try:
                module_readers[kind](blob[: sketches.ENVELOPE_BYTES] + image)
            except sketches.InvalidSketch:
                refused += 1
        out[kind] = {
            "raw_library": {
                "crashed": raw["crash"],
                "raised": raw["error"],
                "accepted": raw["ok"],
            },
            "module_refused": refused,
        }
    return out


# Report -------------------------------------------------------------------------------------------


def main() -> None:
    started = time.perf_counter()
    population = ids(0, 2 * MILLION)
    results: dict[str, Any] = {
        "hll": bench_hll(population),
        "hll_types": bench_hll_types(population),
        "quantiles": bench_quantiles(),
        "quantile_kinds": bench_quantile_kinds(),
        "damaged_blobs": bench_damage(population),
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "datasketches": version("datasketches"),
            "numpy": version("numpy"),
        },
        "notes": (
            "best and median over repeats; rates in items/s; blobs include the module's 6-byte "
            "envelope except under hll_types and quantile_kinds (raw library images); rank errors "
            "are distances from q to the ranks the estimate holds in the exact data"
        ),
    }
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


def print_table(results: dict[str, Any]) -> None:
    hll, kll = results["hll"], results["quantiles"]

    def line(name: str, value: str, reference: str = "") -> None:
        print(f"{name:<50}{value:>18}   {reference}")

    def per_s(figure: dict[str, float]) -> str:
        return f"{figure['median'] / 1e6:.2f} M/s"

    print(f"HLL lg_k {hll['lg_k']} {hll['type']}")
    updates = hll["updates_per_s"]
    ref = f"ref: Python set.add {per_s(updates['reference_python_set_add'])}"
    line("  updates, one by one", per_s(updates["one_by_one"]), ref)
    line("  updates, hll_of", per_s(updates["hll_of"]))
    line("  rows, HllBuilder.add (50 keys)", per_s(updates["builder_add_per_row"]))
    line("  rows, a set per key then hll_of", per_s(updates["sets_per_key_then_hll_of"]))
    merge = hll["merge_720_hourly_ms"]
    ref = f"ref: exact set union {merge['reference_exact_set_union']['median']} ms"
    line("  720 hourly rows: hll_count_union", f"{merge['hll_count_union']['median']} ms", ref)
    line(
        "  720 hourly rows: hll_merge + estimate",
        f"{merge['hll_merge_then_estimate']['median']} ms",
    )
    line(
        "  720 hourly rows: error vs exact",
        f"{merge['relative_error']:+.2%}",
        f"{merge['distinct']} distinct, {merge['bytes_read']} bytes read",
    )
    grow = hll["grow_stored_row_us"]
    line("  grow a stored row: hll_add", f"{grow['hll_add']['median']} µs")
    line("  grow a stored row: hll_merge", f"{grow['hll_merge_with_new_sketch']['median']} µs")
    line("  bytes by distinct count", " ".join(f"{n}:{b}" for n, b in hll["bytes"].items()))
    error = hll["error"]
    line("  error at 100k / 1M", f"{error['100000']:+.2%} / {error['1000000']:+.2%}")
    spread = error["100000_over_20_sets"]
    line(
        "  |error| at 100k over 20 sets, mean / max",
        f"{spread['mean_abs']:.2%} / {spread['max_abs']:.2%}",
        f"a priori RSE {error['a_priori_rse_single']:.2%}, union {error['a_priori_rse_union']:.2%}",
    )
    print("HLL register width (raw library)")
    for name, row in results["hll_types"].items():
        line(
            f"  {name}: {per_s(row['updates_per_s'])}, {row['bytes_at_100k']} B",
            f"720: {row['union_720_and_estimate_ms']['median']} ms",
            f"grow row: union {row['grow_row_by_union_us']['median']} µs, "
            f"update {row['grow_row_by_update_us']['median']} µs; "
            f"zlib {row['zlib_bytes_at_100k']} B",
        )
    print(f"KLL k {kll['k']}, rank error {kll['rank_error']:.4f}")
    updates = kll["updates_per_s"]
    ref = f"ref: numpy sort {per_s(updates['reference_numpy_sort'])}"
    line("  updates, one by one", per_s(updates["one_by_one"]), ref)
    line("  updates, numpy array", per_s(updates["numpy_array"]))
    line(
        "  quantiles_of array / list",
        f"{per_s(updates['quantiles_of_array'])} / {per_s(updates['quantiles_of_list'])}",
    )
    merge = kll["merge_720_hourly_ms"]
    ref = f"ref: numpy.quantile of raw {merge['reference_numpy_quantile_of_raw']['median']} ms"
    line(
        "  720 hourly rows: merge + 4 quantiles",
        f"{merge['quantiles_merge_then_get']['median']} ms",
        ref,
    )
    line(
        "  720 hourly rows: rank error",
        " ".join(f"{v:.4f}" for v in merge["rank_error"].values()),
        f"p50 p95 p99 p99.9, {merge['bytes_read']} bytes read",
    )
    grow = kll["grow_stored_row_us"]
    line("  grow a stored row: quantiles_add", f"{grow['quantiles_add']['median']} µs")
    line(
        "  grow a stored row: quantiles_merge",
        f"{grow['quantiles_merge_with_new_sketch']['median']} µs",
    )
    line("  bytes by count", " ".join(f"{n}:{b}" for n, b in kll["bytes"].items()))
    for n, errors in kll["error"].items():
        line(f"  rank error at {n}", " ".join(f"{v:.4f}" for v in errors.values()))
    print("Quantile sketches (raw library, 200k values)")
    for name, row in results["quantile_kinds"].items():
        line(
            f"  {name}: {per_s(row['updates_per_s_one_by_one'])} one by one / "
            f"{per_s(row['updates_per_s_array'])} array",
            f"{row['bytes_at_200k']} B",
            f"720: {row['merge_720_and_get_ms']['median']} ms; rank error "
            + " ".join(f"{v:.4f}" for v in row["rank_error_at_200k"].values()),
        )
    damaged = results["damaged_blobs"]
    print(f"Damaged blobs ({damaged['cases_per_kind']} per kind)")
    for kind in ("hll", "kll"):
        raw = damaged[kind]["raw_library"]
        line(
            f"  {kind}: raw library crashed / raised / accepted",
            f"{raw['crashed']} / {raw['raised']} / {raw['accepted']}",
            f"module refused {damaged[kind]['module_refused']}",
        )
    print(f"\n{results['wall_seconds']} s")


if __name__ == "__main__":
    main()
