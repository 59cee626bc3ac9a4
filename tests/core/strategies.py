"""Hypothesis strategies for layouts, shared by the core tests."""

from __future__ import annotations

from hypothesis import strategies as st

from shotsketch.core.layout import MIN_BOX_SIZE, Band, BandKind, Box, Easing, Group, Keyframe, Layout, Subject

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
NAME_TEXT = st.characters(blacklist_categories=("Cc", "Cs"))
"""Characters a name can hold (a NUL or a lone surrogate is refused when a file is read: core/inputs.py)."""


@st.composite
def boxes(draw) -> Box:
    w = draw(st.floats(min_value=MIN_BOX_SIZE, max_value=1.0))
    h = draw(st.floats(min_value=MIN_BOX_SIZE, max_value=1.0))
    left = draw(st.floats(min_value=0.0, max_value=1.0 - w))
    top = draw(st.floats(min_value=0.0, max_value=1.0 - h))
    return Box(left, top, min(1.0, left + w), min(1.0, top + h))


@st.composite
def subjects(draw, name: str | None = None) -> Subject:
    ts = sorted(set(draw(st.lists(unit, min_size=1, max_size=5))))
    kfs = tuple(Keyframe(t, draw(boxes())) for t in ts)
    color = draw(st.sampled_from(["#d33", "#33d", "#ffcc00", "#0A0B0C"]))
    if name is None:
        name = draw(st.text(NAME_TEXT, min_size=1, max_size=30).filter(lambda s: s.strip()))
    return Subject(name, color, kfs, draw(st.sampled_from(list(Easing))))


NOUN_PHRASES = [
    "yellow ball", "blue cube", "red car", "house", "bird", "old man", "green tree",
    "white boat", "black cat", "small dog", "tall tower", "orange kite",
]


@st.composite
def groups(draw, name: str) -> Group:
    members = draw(st.lists(subjects(name=name), min_size=1, max_size=4))
    color = members[0].color
    return Group(name, color, tuple(Subject(name, color, m.keyframes, m.easing) for m in members))


BAND_NAMES = {"sky": BandKind.SKY, "sea": BandKind.WATER, "lake": BandKind.WATER, "grass": BandKind.GROUND,
              "road": BandKind.GROUND, "horizon": BandKind.HORIZON}


@st.composite
def bands(draw, name: str | None = None) -> Band:
    name = name or draw(st.sampled_from(sorted(BAND_NAMES)))
    return Band(BAND_NAMES[name], name, draw(boxes()))


@st.composite
def layouts(draw, names=None, with_groups: bool = True) -> Layout:
    if names is None:
        names = draw(st.lists(st.text(NAME_TEXT, min_size=1, max_size=20).filter(lambda s: s.strip()), max_size=5,
                              unique_by=lambda s: " ".join(s.split()).casefold()))
    n_groups = draw(st.integers(0, min(2, len(names)))) if with_groups else 0
    subs = tuple(draw(subjects(name=n)) for n in names[n_groups:])
    grps = tuple(draw(groups(name=n)) for n in names[:n_groups])
    regions = tuple(draw(st.lists(bands(), max_size=2))) if with_groups else ()
    aspect = draw(st.sampled_from([832 / 480, 1280 / 704, 16 / 9, 1.0, 480 / 832]))
    return Layout(aspect, subs, grps, regions)


@st.composite
def noun_phrase_layouts(draw) -> Layout:
    names = draw(st.lists(st.sampled_from(NOUN_PHRASES), min_size=1, max_size=4, unique=True))
    return draw(layouts(names=names, with_groups=False))


GROUP_NOUNS = ["ducks", "adults", "red cars", "trees", "birds", "lanterns"]


@st.composite
def scene_layouts(draw) -> Layout:
    """Layouts a person could sketch for a shot: named subjects, groups of 2 to 6 boxes, and at
    most one band of each kind of region."""
    base = draw(noun_phrase_layouts())
    group_names = draw(st.lists(st.sampled_from(GROUP_NOUNS), max_size=2, unique=True))
    grps = []
    for name in group_names:
        count = draw(st.integers(2, 6))
        members = [draw(subjects(name=name)) for _ in range(count)]
        grps.append(Group(name, "#33d", tuple(Subject(name, "#33d", m.keyframes, m.easing) for m in members)))
    band_names = draw(st.lists(st.sampled_from(sorted(BAND_NAMES)), max_size=2,
                               unique_by=lambda n: BAND_NAMES[n]))
    regions = tuple(draw(bands(name=n)) for n in band_names)
    return Layout(base.aspect, base.subjects, tuple(grps), regions)
