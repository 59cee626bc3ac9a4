"""Variant identity and seeds through the window (issue 13, defects 4 and 6).

Written against the window's long-standing API (``generate``, ``shutdown``, ``library``), so the
same test ran on the code before the application layer and failed there."""


def _takes(library, shot_id):
    return [t for v in library.list_variants(shot_id) for t in library.list_takes(v.id)]


def test_queue_n_seeds_takes_the_seeds_the_variant_has_not_used(qtbot, make_window, fake_engine):
    """Defect 4: "Queue 4 seeds" rendered seed 0 again when take 1 already was seed 0."""
    window = make_window(fake_engine)
    shot = window.current_shot().id
    window.generate(1)
    qtbot.waitUntil(lambda: len(_takes(window.library, shot)) == 1, timeout=30_000)
    window.generate(4)
    qtbot.waitUntil(lambda: len(_takes(window.library, shot)) == 5, timeout=30_000)
    seeds = [r.seed for r in fake_engine.requests]
    assert seeds[0] == 0 and sorted(seeds[1:]) == [1, 2, 3, 4]


def test_unchanged_editors_after_a_restart_make_no_duplicate_variant(qtbot, make_window, fake_engine_cls, library):
    """Defect 6: "same content, same variant" was kept in memory only."""
    first = make_window(fake_engine_cls())
    shot = first.current_shot().id
    first.generate(1)
    qtbot.waitUntil(lambda: len(_takes(library, shot)) == 1, timeout=30_000)
    first.shutdown()
    second = make_window(fake_engine_cls())  # a new start on the same library
    assert second.current_shot().id == shot
    second.generate(1)
    qtbot.waitUntil(lambda: len(_takes(library, shot)) == 2, timeout=30_000)
    assert len(library.list_variants(shot)) == 1
