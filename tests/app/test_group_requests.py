"""A sketch of groups alone (five adults, three ducks) is a sketch: it is guided and phrased."""

from shotsketch.app.requests import build_request
from shotsketch.app.shot import ShotSettings
from shotsketch.core.phrasing import draft_layout


def test_a_sketch_of_a_group_alone_is_guided_and_phrased():
    prompt = "Three ducks swim in a line across the pond."
    layout = draft_layout(prompt).layout
    assert not layout.subjects and layout.group("ducks").count == 3
    request = build_request(prompt, "", layout, ShotSettings(), layout_strength=1.0)
    assert request.layout_json is not None and request.guidance_strength == 1.0
    assert request.prompt == prompt  # the prompt already says where the ducks go: nothing added
