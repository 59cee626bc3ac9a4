"""The evented-field helper: fires only on real change, drops dead views, disconnects."""

import gc

from shotsketch.app.observable import Event, Subscriptions
from shotsketch.app.shot import OpenShot


def test_a_field_event_fires_only_on_a_real_change():
    shot = OpenShot()
    seen, changed = [], []
    shot.events.prompt.connect(seen.append)
    shot.events.changed.connect(changed.append)
    assert shot.set_prompt("a red car")
    assert not shot.set_prompt("a red car")  # same value: no event
    shot.set_prompt("a blue car")
    assert seen == ["a red car", "a blue car"]
    assert changed == ["prompt", "prompt"]


def test_a_view_that_is_gone_is_dropped_and_disconnect_stops_events():
    class View:
        def __init__(self):
            self.seen = []

        def on(self, value):
            self.seen.append(value)

    event: Event[int] = Event("x")
    view = View()
    event.connect(view.on)
    event.emit(1)
    assert view.seen == [1]
    del view
    gc.collect()
    assert event.observer_count == 0  # held weakly: no leak, no call into a dead view
    got = []
    subs = Subscriptions()
    subs.add(event, got.append)
    event.emit(2)
    subs.clear()
    event.emit(3)
    assert got == [2] and event.observer_count == 0


def test_one_failing_observer_does_not_stop_the_others():
    event: Event[int] = Event("x")
    got = []

    def broken(_v):
        raise RuntimeError("boom")

    event.connect(broken)
    event.connect(got.append)
    event.emit(5)
    assert got == [5]
