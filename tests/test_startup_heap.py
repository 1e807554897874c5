"""Long-running processes move their startup heap out of the cyclic collector's reach."""

from __future__ import annotations

import gc

from interfaces.bootstrap import freeze_startup_heap


def test_startup_objects_are_left_out_of_later_collections() -> None:
    startup = [{"built": i} for i in range(10_000)]  # stands for config, app and caches
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() >= len(startup)
        tracked = {id(o) for o in gc.get_objects()}
        assert id(startup) not in tracked  # a full collection no longer walks them
    finally:
        gc.unfreeze()
