from __future__ import annotations

import pytest

from shotsketch.core.examples import ExampleError, ExampleShot, example_shot, example_shots
from shotsketch.core.phrasing import CENTER, HRegion, Region, VRegion, draft_layout, motion_of


def test_examples_load_and_include_the_yellow_ball():
    shots = example_shots()
    assert 4 <= len(shots) <= 6
    assert {s.id for s in shots} >= {"yellow_ball", "bird_rising", "red_car_house", "person_walking"}
    for s in shots:
        assert s.prompt and s.negative_prompt and s.layout.subjects
        assert s.layout.aspect in (pytest.approx(832 / 480), pytest.approx(1280 / 704))
    ball = example_shot("yellow_ball")
    assert ball.prompt == (
        "A yellow ball rolls from the left edge to the center of the screen, "
        "while a blue cube remains stationary on the right."
    )
    assert motion_of(ball.layout.subject("yellow ball")).waypoints == (Region(HRegion.LEFT_EDGE, VRegion.MIDDLE), CENTER)
    cube = ball.layout.subject("blue cube")
    assert cube.is_static and Region.of_box(cube.start) == Region(HRegion.RIGHT, VRegion.MIDDLE)


def test_each_example_layout_matches_its_prompt():
    """Drafting from the example's words puts each subject where its layout has it."""
    for shot in example_shots():
        draft = draft_layout(shot.prompt, shot.layout.aspect, subjects=shot.layout.names)
        assert draft.unplaced == (), shot.id
        for subject in shot.layout.subjects:
            want = motion_of(subject)
            got = motion_of(draft.layout.subject(subject.name))
            assert got.waypoints[0].h == want.waypoints[0].h, (shot.id, subject.name)
            assert got.waypoints[-1].h == want.waypoints[-1].h, (shot.id, subject.name)
            assert got.direction == want.direction, (shot.id, subject.name)


def test_example_round_trip_and_bad_files():
    shot = example_shots()[0]
    assert ExampleShot.from_dict(shot.to_dict(), shot.id) == shot
    with pytest.raises(ExampleError, match="newer"):
        ExampleShot.from_dict({**shot.to_dict(), "schema_version": 2})
    with pytest.raises(ExampleError, match="layout: "):
        ExampleShot.from_dict({**shot.to_dict(), "layout": {"schema_version": 1, "aspect": 1, "subjects": 3}})
