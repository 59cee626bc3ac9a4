"""The open shot's model: opening replaces everything at once, autosave is debounced and separate."""

import pytest

from shotsketch.app.session import AppSession
from shotsketch.app.shot import OpenShot, ShotSettings
from shotsketch.core.layout import Box, Layout, Subject
from shotsketch.core.lint import DEFAULT_NEGATIVE


def _car() -> Layout:
    return Layout(subjects=(Subject.moving("red car", Box(0.02, 0.4, 0.25, 0.7), Box(0.75, 0.4, 0.98, 0.7)),))


def test_opening_a_shot_replaces_every_field_at_once_with_one_event(library, timers):
    project = library.create_project("P")
    a, b = library.create_shot(project.id, "A"), library.create_shot(project.id, "B")
    library.save_shot_state(a.id, {"prompt": "shot A", "layout": _car().to_json(), "settings": {"seed": 3}})
    library.save_shot_state(b.id, {"prompt": "shot B", "negative_prompt": "blurry", "settings": {"seed": 9}})
    session = AppSession(library, call_later=timers)
    session.open_shot(a.id)
    seen = []
    session.shot.events.opened.connect(lambda shot: seen.append((shot.shot_id, shot.prompt, shot.settings.seed,
                                                                 bool(shot.layout.subjects))))
    field_events = []
    session.shot.events.prompt.connect(field_events.append)
    session.open_shot(b.id)
    assert seen == [(b.id, "shot B", 9, False)]  # the whole shot B, in one event
    assert field_events == []
    request = session.shot.request()
    assert request.prompt == "shot B" and request.negative_prompt == "blurry" and request.seed == 9
    assert library.last_open_shot().id == b.id


def test_autosave_waits_for_a_pause_and_is_not_the_model(library, timers):
    shot = library.create_shot(library.create_project("P").id, "S")
    session = AppSession(library, call_later=timers)
    session.open_shot(shot.id)
    for text in ("a", "a r", "a red car"):
        session.shot.set_prompt(text)
    assert timers.live() == 1  # three edits, one save scheduled
    assert library.load_shot_state(shot.id) is None
    timers.run_due()
    assert library.load_shot_state(shot.id)["prompt"] == "a red car"
    session.shot.set_prompt("a red car")  # no change: nothing scheduled
    assert timers.live() == 0
    session.shot.set_layout(_car())
    session.close()  # a waiting save is written on close
    assert library.load_shot_state(shot.id)["layout"] == _car().to_json(indent=None)


def test_generation_options_are_not_the_shots_saved_state(timers, library):
    session = AppSession(library, call_later=timers)
    session.open_shot(library.create_shot(library.create_project("P").id, "S").id)
    session.shot.set_layout_strength(2.0)
    session.shot.set_fast(True)
    assert timers.live() == 0


def test_an_empty_negative_prompt_means_the_default_one():
    shot = OpenShot()
    shot.set_prompt("a red car")
    assert shot.request().negative_prompt == DEFAULT_NEGATIVE
    shot.set_negative_prompt("blurry")
    assert shot.request().negative_prompt == "blurry"


def test_a_stored_seed_keeps_its_64_bits(library, timers):
    """Defect 7: a seed from a recipe (or a saved shot) was silently cut to 2^31-1."""
    big = 2**63 + 12345
    shot = library.create_shot(library.create_project("P").id, "S")
    library.save_shot_state(shot.id, {"prompt": "a red car", "settings": {"seed": big}})
    session = AppSession(library, call_later=timers)
    session.open_shot(shot.id)
    assert session.shot.settings.seed == big
    assert session.shot.request().seed == big


def test_stored_numbers_outside_their_range_are_clamped_with_a_log_line(library, timers, caplog):
    shot = library.create_shot(library.create_project("P").id, "S")
    library.save_shot_state(shot.id, {"prompt": "x", "settings": {"steps": 900, "width": 450, "guidance": 0.2}})
    session = AppSession(library, call_later=timers)
    with caplog.at_level("WARNING"):
        session.open_shot(shot.id)
    assert (session.shot.settings.steps, session.shot.settings.width, session.shot.settings.guidance) == (200, 448, 1.0)
    assert "steps 900 is outside" in caplog.text and f"shot {shot.id}" in caplog.text


def test_loading_a_variant_keeps_the_seed_and_takes_its_content(library, timers):
    shot = library.create_shot(library.create_project("P").id, "S")
    variant = library.create_variant(shot.id, "old prompt", "blurry", _car(), {"steps": 7})
    session = AppSession(library, call_later=timers)
    session.open_shot(shot.id)
    session.shot.update_settings(seed=42)
    session.load_variant(variant.id)
    s = session.shot
    assert (s.prompt, s.negative_prompt, s.layout, s.settings.steps, s.settings.seed, s.variant_id) == (
        "old prompt", "blurry", _car(), 7, 42, variant.id)


def test_the_shot_settings_read_the_one_table_of_ranges():
    with pytest.raises(TypeError):
        ShotSettings(unknown=1)  # type: ignore[call-arg]
    shot = OpenShot()
    shot.update_settings(frames=16, steps=0, seed=2**64 + 5)
    assert (shot.settings.frames, shot.settings.steps, shot.settings.seed) == (17, 1, 2**64 - 1)


def test_a_late_background_save_never_overwrites_a_newer_one(library, timers):
    """A save that waited behind a long encode on the background writer runs after the newer,
    direct save made when another shot was opened: the newer state stays."""
    project = library.create_project("P")
    a, b = library.create_shot(project.id, "A"), library.create_shot(project.id, "B")
    waiting = []
    session = AppSession(library, call_later=timers, run_write=waiting.append)  # the writer is busy
    session.open_shot(a.id)
    session.shot.set_prompt("first words")
    timers.run_due()  # the debounced save is handed to the busy writer
    session.shot.set_prompt("first words, then more")
    session.open_shot(b.id)  # saves shot A at once
    session.open_shot(a.id)  # and back, while the writer is still busy
    assert session.shot.prompt == "first words, then more"
    for write in waiting:
        write()  # the writer gets to the old save only now
    assert library.load_shot_state(a.id)["prompt"] == "first words, then more"


def test_opening_the_open_shot_again_keeps_its_unsaved_edits(library, timers):
    shot = library.create_shot(library.create_project("P").id, "S")
    session = AppSession(library, call_later=timers)
    session.open_shot(shot.id)
    session.shot.set_prompt("typed a moment ago")
    session.open_shot(shot.id)  # e.g. a click on the shot in the library
    assert session.shot.prompt == "typed a moment ago"


def test_putting_an_example_back_shows_it_even_when_it_is_open(library, timers):
    session = AppSession(library, call_later=timers)
    session.open_example("yellow_ball")
    example_prompt = session.shot.prompt
    session.shot.set_prompt("my own words")
    session.open_example("yellow_ball", reset=True)
    assert session.shot.prompt == example_prompt
    assert library.load_shot_state(session.shot.shot_id)["prompt"] == example_prompt


def test_the_last_draft_is_kept_with_the_shot_so_a_redraft_after_a_restart_takes_off_stale_boxes(library, timers):
    shot = library.create_shot(library.create_project("P").id, "S")
    session = AppSession(library, call_later=timers)
    session.open_shot(shot.id)
    text = "A red fox runs from the right edge to the left edge. A cabin stands on the left."
    session.shot.set_prompt(text)
    draft, merged = session.shot.draft_from_prompt(text)
    session.shot.set_layout(merged.layout)
    assert session.shot.layout.names == ("red fox", "cabin")
    session.close()  # the app quits; the draft is saved with the shot
    assert Layout.from_json(library.load_shot_state(shot.id)["last_draft"]) == draft.layout

    again = AppSession(library, call_later=timers)
    again.open_shot(shot.id)
    text = "A black dog sits on the right."
    again.shot.set_prompt(text)
    _draft, merged = again.shot.draft_from_prompt(text)
    assert merged.removed == ("red fox", "cabin") and merged.layout.names == ("black dog",)
    # a damaged last draft is forgotten: every box then counts as the person's, none is taken off
    state = dict(library.load_shot_state(shot.id) or again.shot.state(), last_draft="{not json")
    library.save_shot_state(shot.id, state)
    third = AppSession(library, call_later=timers)
    third.open_shot(shot.id)
    assert third.shot.last_draft is None and third.shot.load_problem is None
    assert third.shot.draft_from_prompt("A black dog sits on the right.")[1].removed == ()
    # a prompt that places nothing and drafted nothing before: no merge, the sketch stays
    assert third.shot.draft_from_prompt("A quiet morning.")[1] is None
