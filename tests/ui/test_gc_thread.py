"""The app collects Python's cyclic garbage on the UI thread only (ui/app.py): a Qt object collected
on the GPU worker's thread is destroyed off its thread (a segfault seen in the window tests)."""
import gc
import threading


def test_garbage_made_on_a_worker_thread_is_collected_on_the_ui_thread(qapp, qtbot) -> None:  # noqa: ANN001
    from shotsketch.ui.app import collect_garbage_on_the_ui_thread

    was_enabled = gc.isenabled()
    timer = collect_garbage_on_the_ui_thread(qapp)
    try:
        assert not gc.isenabled()
        collected_on_main: list[bool] = []

        class Cycle:
            def __init__(self) -> None:
                self.me = self

            def __del__(self) -> None:
                collected_on_main.append(threading.current_thread() is threading.main_thread())

        alive: list[list[list[int]]] = []

        def worker() -> None:  # what the GPU thread does: drop a cycle, then allocate a lot
            Cycle()
            alive.append([[] for _ in range(3 * gc.get_threshold()[0])])

        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert collected_on_main == []  # the worker's allocations did not collect it there
        qtbot.waitUntil(lambda: bool(collected_on_main), timeout=10_000)
        assert collected_on_main == [True]
    finally:
        timer.stop()
        if was_enabled:
            gc.enable()
