from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shotsketch.core import layout as layout_mod
from shotsketch.core.layout import (
    SCHEMA_VERSION,
    Box,
    Easing,
    Keyframe,
    Layout,
    Band,
    BandKind,
    Group,
    LayoutError,
    Subject,
    load_layout,
    save_layout,
)

from .strategies import layouts, subjects

BALL_START = Box(0.0, 0.4, 0.2, 0.6)
BALL_END = Box(0.4, 0.4, 0.6, 0.6)


def ball(easing: Easing = Easing.LINEAR) -> Subject:
    return Subject.moving("yellow ball", BALL_START, BALL_END, "#dd0", easing)


def test_box_helpers():
    b = Box(0.1, 0.2, 0.5, 0.8)
    assert b.width == pytest.approx(0.4)
    assert b.height == pytest.approx(0.6)
    assert b.center == pytest.approx((0.3, 0.5))
    assert Box.from_center(0.3, 0.5, 0.4, 0.6).to_list() == pytest.approx(b.to_list())
    assert Box(0.9, 0.9, 1.2, 1.1).fitted().problems() == []


def test_box_rejects_non_numbers():
    with pytest.raises(LayoutError, match="finite"):
        Box(float("nan"), 0, 1, 1)
    with pytest.raises(LayoutError, match="number"):
        Box("0", 0, 1, 1)  # type: ignore[arg-type]
    with pytest.raises(LayoutError, match="number"):
        Box(True, 0, 1, 1)  # type: ignore[arg-type]


def test_linear_interpolation_midpoint_and_clamping():
    s = ball()
    assert s.box_at(0.5).to_list() == pytest.approx([0.2, 0.4, 0.4, 0.6])
    assert s.box_at(-3.0) == BALL_START
    assert s.box_at(7.0) == BALL_END
    with pytest.raises(ValueError):
        s.box_at(float("nan"))


def test_ease_in_out_is_slower_at_the_ends_and_symmetric():
    s = ball(Easing.EASE_IN_OUT)
    lin = ball()
    assert s.box_at(0.1).left < lin.box_at(0.1).left
    assert s.box_at(0.9).left > lin.box_at(0.9).left
    assert s.box_at(0.5).left == pytest.approx(lin.box_at(0.5).left)


def test_interpolation_between_inner_keyframes():
    s = Subject("bird", "#33d", (
        Keyframe(0.2, Box(0.0, 0.0, 0.1, 0.1)),
        Keyframe(0.6, Box(0.4, 0.0, 0.5, 0.1)),
        Keyframe(1.0, Box(0.4, 0.8, 0.5, 0.9)),
    ))
    assert s.box_at(0.4).left == pytest.approx(0.2)
    assert s.box_at(0.8).top == pytest.approx(0.4)
    assert s.box_at(0.1).left == 0.0


@pytest.mark.parametrize(
    ("kfs", "message"),
    [
        ((Keyframe(0, Box(0.5, 0.1, 0.4, 0.2)),), r"subject 'car', keyframe 1 \(t=0\): box is inverted"),
        ((Keyframe(0, Box(0.5, 0.1, 0.5, 0.2)),), r"subject 'car', keyframe 1 \(t=0\): box is zero-size"),
        ((Keyframe(0, Box(0.5, 0.1, 1.2, 0.2)),), r"keyframe 1 \(t=0\): box is outside the frame \(right 1.2"),
        ((Keyframe(1.5, Box(0.1, 0.1, 0.2, 0.2)),), r"keyframe 1 \(t=1.5\): t is outside \[0, 1\]"),
        (
            (Keyframe(0.5, Box(0.1, 0.1, 0.2, 0.2)), Keyframe(0.5, Box(0.1, 0.1, 0.2, 0.2))),
            r"subject 'car', keyframe 2 \(t=0.5\): t must be greater than the previous keyframe's t=0.5",
        ),
        ((), r"subject 'car' has no keyframes"),
    ],
)
def test_subject_validation_messages_name_subject_and_keyframe(kfs, message):
    with pytest.raises(LayoutError, match=message):
        Subject("car", "#d33", kfs)


def test_empty_name_bad_colour_and_duplicates():
    box = Box(0.1, 0.1, 0.3, 0.3)
    with pytest.raises(LayoutError, match="empty name"):
        Subject.static("  ", box)
    with pytest.raises(LayoutError, match="colour 'red'"):
        Subject.static("car", box, "red")
    with pytest.raises(LayoutError, match="'Red  Car' appears twice"):
        Layout(16 / 9, (Subject.static("red car", box), Subject.static("Red  Car", box)))
    with pytest.raises(LayoutError, match="aspect"):
        Layout(0.0, ())


def test_edits_return_new_objects_and_keep_the_old_ones():
    s = Subject.static("house", Box(0.6, 0.3, 0.9, 0.8), "#888")
    layout = Layout(16 / 9, (s,))
    s2 = s.with_keyframe(1.0, Box(0.5, 0.3, 0.8, 0.8))
    assert len(s.keyframes) == 1 and len(s2.keyframes) == 2
    s3 = s2.with_keyframe(Keyframe(1.0, Box(0.1, 0.3, 0.4, 0.8)))
    assert len(s3.keyframes) == 2 and s3.end.left == 0.1
    s4 = s3.with_keyframe(0.5, Box(0.2, 0.2, 0.3, 0.3))
    assert [k.t for k in s4.keyframes] == [0.0, 0.5, 1.0]
    assert s4.without_keyframe(0.5) == s3
    l2 = layout.with_subject(s2)
    assert layout.subject("house") is s and l2.subject("HOUSE") is s2
    l3 = l2.with_subject(ball())
    assert l3.names == ("house", "yellow ball")
    assert l3.without_subject("house").names == ("yellow ball",)
    assert l3.with_subject(s.renamed("barn"), replacing="house").names == ("barn", "yellow ball")
    with pytest.raises(KeyError):
        l3.without_subject("dragon")
    with pytest.raises(LayoutError, match="inverted"):
        s.with_keyframe(0.5, Box(0.5, 0.5, 0.4, 0.6))
    with pytest.raises(LayoutError, match="appears twice"):
        l3.with_subject(ball().renamed("house"), replacing="yellow ball")


def test_json_shape_matches_the_documented_form():
    data = json.loads(Layout(832 / 480, (ball(),)).to_json())
    assert data["schema_version"] == SCHEMA_VERSION == 2
    assert data["groups"] == [] and data["regions"] == []
    assert data["subjects"][0] == {
        "name": "yellow ball", "color": "#dd0", "easing": "linear",
        "keyframes": [{"t": 0.0, "box": [0.0, 0.4, 0.2, 0.6]}, {"t": 1.0, "box": [0.4, 0.4, 0.6, 0.6]}],
    }


GOOD = {"schema_version": 1, "aspect": 1.7333, "subjects": [
    {"name": "red car", "color": "#d33", "easing": "linear", "keyframes": [{"t": 0.0, "box": [0.1, 0.5, 0.3, 0.8]}]}]}


def _with(path, value):
    data = json.loads(json.dumps(GOOD))
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("schema_version",), 3, "newer Shotsketch .*schema version 3"),
        (("schema_version",), "1", "whole number"),
        (("aspect",), "wide", "aspect must be a number"),
        (("aspect",), True, "aspect must be a number"),
        (("subjects",), {}, "must be a list"),
        (("subjects", 0, "name"), 3, "name must be text"),
        (("subjects", 0, "easing"), "bouncy", "subject 'red car': easing 'bouncy'"),
        (("subjects", 0, "keyframes", 0, "box"), [0.1, 0.5, 0.3], "subject 'red car', keyframe 1: box must be a list of 4"),
        (("subjects", 0, "keyframes", 0, "box"), [0.1, 0.5, "x", 0.8], "keyframe 1: box right must be a number"),
        (("subjects", 0, "keyframes", 0, "t"), None, "keyframe 1: t must be a number"),
        (("subjects", 0, "keyframes", 0, "extra"), 1, "unknown field"),
        (("subjects", 0, "keyframes"), KeyError, "missing keyframes"),
    ],
)
def test_from_dict_rejects_bad_fields_precisely(path, value, message):
    with pytest.raises(LayoutError, match=message):
        Layout.from_dict(_with(path, value))


def test_from_json_rejects_nan_and_garbage():
    text = json.dumps(GOOD).replace("0.1", "NaN", 1)
    with pytest.raises(LayoutError, match="NaN"):
        Layout.from_json(text)
    with pytest.raises(LayoutError, match="not valid JSON"):
        Layout.from_json("{not json")
    with pytest.raises(LayoutError, match="JSON object"):
        Layout.from_json("[1, 2]")


def test_older_versions_go_through_migrations(monkeypatch):
    monkeypatch.setattr(layout_mod, "SCHEMA_VERSION", 2)
    calls = []

    def v1_to_v2(d):
        calls.append(d["schema_version"])
        d = dict(d)
        d["aspect"] = d.pop("frame_aspect")
        return d

    monkeypatch.setattr(layout_mod, "MIGRATIONS", {1: v1_to_v2})
    old = {"schema_version": 1, "frame_aspect": 2.0, "subjects": []}
    assert Layout.from_dict(old).aspect == 2.0
    assert calls == [1]
    # versions compare as numbers: 10 is newer than 2, not older
    with pytest.raises(LayoutError, match="newer"):
        Layout.from_dict({"schema_version": 10, "aspect": 1.0, "subjects": []})


def test_a_layout_without_schema_version_is_read_as_version_1(caplog):
    old = {k: v for k, v in GOOD.items() if k != "schema_version"}
    with caplog.at_level("INFO", logger="shotsketch.core.layout"):
        layout = Layout.from_dict(old)
    assert layout.names == ("red car",) and layout.groups == () and layout.regions == ()
    assert "no schema_version; read as version 1" in caplog.text
    # version 1 is migrated to version 2; a version-1 file cannot smuggle in version-2 fields
    assert Layout.from_dict(GOOD).to_dict()["schema_version"] == 2
    with pytest.raises(LayoutError, match="version 1 layout has no groups"):
        Layout.from_dict({**GOOD, "groups": []})


def test_groups_and_regions_round_trip_and_validate():
    adults = Group.of_boxes("adults", [Box(0.1, 0.1, 0.2, 0.4), Box(0.8, 0.1, 0.9, 0.4)], "#33d")
    sky = Band(BandKind.SKY, "sky", Box(0.0, 0.0, 1.0, 0.4))
    layout = Layout(16 / 9, (ball(),), (adults,), (sky,))
    data = json.loads(layout.to_json())
    assert data["groups"][0]["name"] == "adults" and len(data["groups"][0]["members"]) == 2
    assert data["regions"] == [{"kind": "sky", "name": "sky", "box": [0.0, 0.0, 1.0, 0.4]}]
    assert Layout.from_json(layout.to_json()) == layout
    assert layout.guided_names == ("yellow ball", "adults")
    assert layout.guided_boxes_at(0.0)["adults"] == adults.boxes_at(0.0)
    assert adults.union_at(0.0) == Box(0.1, 0.1, 0.9, 0.4) and adults.count == 2
    with pytest.raises(LayoutError, match="names must be unique"):
        Layout(1.0, (Subject.static("adults", Box(0.1, 0.1, 0.2, 0.2)),), (adults,))
    with pytest.raises(LayoutError, match="no boxes"):
        Group("ducks", "#d33", ())
    bad = json.loads(layout.to_json())
    bad["regions"][0]["kind"] = "lava"
    with pytest.raises(LayoutError, match="region 1: kind 'lava'"):
        Layout.from_dict(bad)
    bad = json.loads(layout.to_json())
    bad["groups"][0]["members"][1]["keyframes"][0]["box"] = [0.5, 0.5, 0.4, 0.6]
    with pytest.raises(LayoutError, match="group 'adults', box 2"):
        Layout.from_dict(bad)


def test_rounded_drops_float_noise():
    s = Subject.static("car", Box(0.1 + 0.2, 0.7000000000000001, 0.55, 0.9))
    data = Layout(1.0, (s,)).rounded().to_dict()
    assert data["subjects"][0]["keyframes"][0]["box"] == [0.3, 0.7, 0.55, 0.9]


def test_save_and_load_file(tmp_path):
    layout = Layout(1280 / 704, (ball(),))
    path = tmp_path / "shot.json"
    save_layout(layout, path)
    assert load_layout(path) == layout
    path.write_text("{}")
    with pytest.raises(LayoutError, match=str(path.name)):
        load_layout(path)


@settings(max_examples=150, deadline=None)
@given(layouts())
def test_json_round_trips(layout):
    assert Layout.from_json(layout.to_json()) == layout
    assert Layout.from_dict(layout.to_dict()) == layout


@settings(max_examples=150, deadline=None)
@given(subjects(name="s"), st.floats(min_value=-2.0, max_value=3.0, allow_nan=False))
def test_interpolation_stays_inside_the_frame(subject, t):
    box = subject.box_at(t)
    assert box.problems() == []
    assert 0.0 <= box.left <= box.right <= 1.0
    assert 0.0 <= box.top <= box.bottom <= 1.0
    assert all(math.isfinite(v) for v in box.to_list())
