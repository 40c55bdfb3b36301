"""Process-wide tuning for the long-running server and worker processes."""

import gc

# Young-generation collections every 50,000 allocations instead of 700: an ingest request makes
# thousands of short-lived objects, and with the default the collector's pauses set the p99.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Freeze what start-up made (it lives as long as the process) and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
