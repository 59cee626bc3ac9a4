"""Group subjects in layout guidance: one name, several boxes, guided as one (the union of its boxes)."""

import numpy as np

from shotsketch.core.layout import Box, Group, Layout, Subject
from shotsketch.engine.events import JobFinished
from shotsketch.engine.guidance import subject_masks


def _five_adults_around_a_child() -> Layout:
    child = Subject.static("child", Box(0.45, 0.4, 0.55, 0.7))
    spots = [(0.5, 0.15), (0.8, 0.4), (0.7, 0.8), (0.3, 0.8), (0.2, 0.4)]
    adults = Group.of_boxes("adults", [Box.from_center(x, y, 0.08, 0.25).fitted() for x, y in spots])
    return Layout(448 / 256, (child,), (adults,))


def test_a_group_mask_is_the_union_of_its_boxes():
    layout = _five_adults_around_a_child()
    masks = subject_masks(layout, frames=9, height=256, width=448)
    assert set(masks) == {"child", "adults"}
    adults = masks["adults"][0]
    assert adults.max() <= 1.0
    grid_w, grid_h = adults.shape[1], adults.shape[0]
    for box in layout.group("adults").boxes_at(0.0):  # every member's centre cell is covered
        cx, cy = box.center
        assert adults[min(grid_h - 1, int(cy * grid_h)), min(grid_w - 1, int(cx * grid_w))] > 0
    assert adults[int(0.55 * grid_h), int(0.5 * grid_w)] == 0  # the child in the middle is not
    assert np.count_nonzero(adults) > np.count_nonzero(masks["child"][0])


def test_a_group_is_guided_as_one_subject(demo_generator, make_request):
    layout = _five_adults_around_a_child()
    request = make_request(prompt="A child stands in the middle of a circle of five adults.",
                           layout_json=layout.to_json(), guidance_strength=1.0, width=448, height=256)
    final = demo_generator.generate(request)
    assert isinstance(final, JobFinished)
    info = final.extras["guidance"]
    assert info["missing"] == [] and set(info["subjects"]) == {"child", "adults"}
    assert set(final.extras["adherence"]) == {"child", "adults"}
