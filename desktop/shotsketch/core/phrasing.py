"""Spatial phrasing both ways.

Layout -> words: :func:`describe` writes a spatial clause in the small vocabulary video
models follow best: frame regions ("the left edge", "the top right corner"), motion from
the keyframes ("moves from the left edge to the center", "remains stationary on the
right", "rises from the bottom to the top"), speed words from path length, and explicit
relations ("to the left of the house", never "near the house").

Words -> layout: :func:`draft_layout` reads the prompt's spatial language
(:mod:`shotsketch.core.spatial`) and stages boxes as a storyboard artist would
(:mod:`shotsketch.core.staging`), so a person can start from text and refine on the canvas.
Both directions share one region vocabulary, so describing a layout and drafting the
description gives the same places, counts and paths.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from shotsketch.core.layout import Band, Box, Group, Keyframe, Layout, Subject, name_key

# -- regions ---------------------------------------------------------------------------------


class HRegion(Enum):
    LEFT_EDGE = "left edge"
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"
    RIGHT_EDGE = "right edge"


class VRegion(Enum):
    TOP = "top"
    MIDDLE = "middle"
    BOTTOM = "bottom"


H_BOUNDS = (0.2, 0.4, 0.6, 0.8)
V_BOUNDS = (1 / 3, 2 / 3)
H_ANCHOR = {HRegion.LEFT_EDGE: 0.1, HRegion.LEFT: 0.3, HRegion.CENTER: 0.5, HRegion.RIGHT: 0.7, HRegion.RIGHT_EDGE: 0.9}
V_ANCHOR = {VRegion.TOP: 1 / 6, VRegion.MIDDLE: 0.5, VRegion.BOTTOM: 5 / 6}
_H_ORDER = list(HRegion)
_H_MIRROR = dict(zip(_H_ORDER, reversed(_H_ORDER)))
_V_MIRROR = {VRegion.TOP: VRegion.BOTTOM, VRegion.MIDDLE: VRegion.MIDDLE, VRegion.BOTTOM: VRegion.TOP}


@dataclass(frozen=True)
class Region:
    """One of 15 named parts of the frame: five columns by three rows."""

    h: HRegion
    v: VRegion

    @classmethod
    def of_point(cls, x: float, y: float) -> Region:
        hi = sum(x >= b for b in H_BOUNDS)
        vi = sum(y >= b for b in V_BOUNDS)
        return cls(_H_ORDER[hi], list(VRegion)[vi])

    @classmethod
    def of_box(cls, box: Box) -> Region:
        return cls.of_point(*box.center)

    @property
    def anchor(self) -> tuple[float, float]:
        return H_ANCHOR[self.h], V_ANCHOR[self.v]

    @property
    def is_corner(self) -> bool:
        return self.h in (HRegion.LEFT_EDGE, HRegion.RIGHT_EDGE) and self.v is not VRegion.MIDDLE

    def mirrored(self) -> Region:
        return Region(_H_MIRROR[self.h], _V_MIRROR[self.v])

    @property
    def words(self) -> str:
        """The noun phrase: "the left edge", "the top right corner", "the center"."""
        if self.v is VRegion.MIDDLE:
            return f"the {self.h.value}"
        if self.h is HRegion.CENTER:
            return f"the {self.v.value}"
        side = "left" if self.h in (HRegion.LEFT, HRegion.LEFT_EDGE) else "right"
        return f"the {self.v.value} {side} corner" if self.is_corner else f"the {self.v.value} {side}"

    @property
    def preposition(self) -> str:
        if self.is_corner or self == CENTER:
            return "in"
        if self.v is VRegion.MIDDLE and self.h in (HRegion.LEFT, HRegion.RIGHT):
            return "on"
        return "at"

    @property
    def location(self) -> str:
        """A place phrase: "on the right", "at the left edge", "in the top left corner"."""
        return f"{self.preposition} {self.words}"


CENTER = Region(HRegion.CENTER, VRegion.MIDDLE)


def _region_vocabulary() -> dict[str, Region]:
    vocab: dict[str, Region] = {}
    h_words = {"left": (HRegion.LEFT, HRegion.LEFT_EDGE), "right": (HRegion.RIGHT, HRegion.RIGHT_EDGE)}
    v_words = {"top": VRegion.TOP, "upper": VRegion.TOP, "bottom": VRegion.BOTTOM, "lower": VRegion.BOTTOM}
    for hw, (near, edge) in h_words.items():
        for form in (hw, f"{hw} side", f"{hw} hand side", f"{hw} half", f"{hw} part"):
            vocab[form] = Region(near, VRegion.MIDDLE)
        for form in (f"{hw} edge", f"far {hw}", f"{hw}most edge", f"{hw} border"):
            vocab[form] = Region(edge, VRegion.MIDDLE)
        for vw, v in v_words.items():
            vocab[f"{vw} {hw}"] = Region(near, v)
            vocab[f"{vw} {hw} side"] = Region(near, v)
            vocab[f"{vw} {hw} corner"] = Region(edge, v)
            vocab[f"{hw} {vw} corner"] = Region(edge, v)
            vocab[f"far {vw} {hw}"] = Region(edge, v)
    for vw, v in v_words.items():
        forms = [f"{vw} half", f"{vw} part"]
        if vw in ("top", "bottom"):
            forms += [vw, f"{vw} edge", f"{vw} center", f"{vw} centre", f"{vw} middle", f"very {vw}"]
        for form in forms:
            vocab[form] = Region(HRegion.CENTER, v)
    for form in ("center", "centre", "middle", "very center", "very middle", "dead center"):
        vocab[form] = CENTER
    return vocab


REGION_VOCABULARY: dict[str, Region] = _region_vocabulary()

_FRAME_NOUN = r"(?:screen|frame|image|picture|scene|shot|view|video|clip|canvas)"


def _phrase_pattern(words: str) -> str:
    return r"[\s-]+".join(re.escape(w) for w in words.split())


_REGION_ALT = "|".join(_phrase_pattern(w) for w in sorted(REGION_VOCABULARY, key=len, reverse=True))
REGION_RE = rf"(?:the\s+)?(?P<REG>{_REGION_ALT})(?:\s+of\s+(?:the\s+)?{_FRAME_NOUN})?(?![\w-])"


def _region_pattern(group: str) -> str:
    return REGION_RE.replace("?P<REG>", f"?P<{group}>")


def parse_region(words: str) -> Region | None:
    """The region a phrase such as "the top-left corner" or "left side" names, if any."""
    m = re.fullmatch(_region_pattern("r"), words.strip(), re.IGNORECASE)
    return _lookup_region(m.group("r")) if m else None


def _lookup_region(text: str) -> Region:
    return REGION_VOCABULARY[" ".join(re.split(r"[\s-]+", text.lower()))]


# -- subjects named in a prompt -----------------------------------------------------------------

DETERMINERS = frozenset(
    "a an the one another this that some his her their its my your our every each".split()
)


@dataclass(frozen=True)
class Mention:
    """Where a prompt names a subject: the whole phrase (with determiner) and the name."""

    span: tuple[int, int]
    name: str


def find_noun_phrases(prompt: str) -> list[Mention]:
    """The subjects a prompt names, as the drafter reads them ("a yellow ball", "five adults",
    "clouds"), leaving out parts of the frame ("the left edge") and settings ("a snowy forest")."""
    from shotsketch.core.spatial import read_prompt

    reading = read_prompt(prompt if isinstance(prompt, str) else "")
    mentions = [Mention(span, t.name) for t in reading.boxed() for span in t.mentions]
    return sorted(mentions, key=lambda m: m.span)


def find_subject_spans(prompt: str, name: str) -> list[tuple[int, int]]:
    """Character spans of a subject's words in ``prompt``: case-insensitive, whole words.
    When the full name does not occur, the spans of its last word (the noun) are returned,
    so "the ball" still finds the subject "yellow ball"."""
    words = [w for w in re.split(r"\s+", name.strip()) if w]
    if not words or not prompt:
        return []

    def spans(ws: Sequence[str]) -> list[tuple[int, int]]:
        pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in ws) + r"(?!\w)"
        return [m.span() for m in re.finditer(pattern, prompt, re.IGNORECASE)]

    found = spans(words)
    if not found and len(words) > 1:
        found = spans(words[-1:])
    return found


# -- relations between subjects ----------------------------------------------------------------


class Relation(Enum):
    LEFT_OF = "to the left of"
    RIGHT_OF = "to the right of"
    ABOVE = "above"
    BELOW = "below"
    IN_FRONT_OF = "in front of"
    BEHIND = "behind"
    INSIDE = "in the middle of"


# -- words -> draft layout ----------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """A layout drafted from a prompt. ``unplaced`` subjects were named but no phrase placed
    them; they got a default position the user should check."""

    layout: Layout
    subjects_found: tuple[str, ...]
    unplaced: tuple[str, ...]


PALETTE = ("#d33", "#33d", "#2a2", "#e90", "#a3c", "#0aa", "#c63", "#888")
COLOR_WORDS = {
    "red": "#d33", "yellow": "#ec0", "blue": "#33d", "green": "#2a2", "orange": "#e80", "purple": "#93c",
    "pink": "#e6a", "white": "#eee", "black": "#222", "gray": "#888", "grey": "#888", "brown": "#853",
    "gold": "#db3", "golden": "#db3", "silver": "#bbb", "teal": "#0aa", "cyan": "#0cc",
}


def _color_for(name: str, index: int) -> str:
    for word in name.lower().split():
        if word in COLOR_WORDS:
            return COLOR_WORDS[word]
    return PALETTE[index % len(PALETTE)]


def draft_layout(prompt: str, aspect: float = 16 / 9, *, subjects: Sequence[str] | None = None) -> Draft:
    """Draft a layout from a prompt's spatial language (:mod:`shotsketch.core.spatial` reads it,
    :mod:`shotsketch.core.staging` places it). Never raises on any text; an aspect outside the
    allowed range is clamped. Boxes are rounded to 4 decimals."""
    from shotsketch.core.spatial import read_prompt
    from shotsketch.core.staging import stage

    try:
        aspect = float(aspect)
    except (TypeError, ValueError):
        aspect = 16 / 9
    if not math.isfinite(aspect):
        aspect = 16 / 9
    aspect = min(10.0, max(0.1, aspect))
    reading = read_prompt(prompt if isinstance(prompt, str) else "", subjects)
    staged = stage(reading, aspect, _color_for)
    layout = Layout(aspect, staged.subjects, staged.groups, staged.regions).rounded()
    found = tuple(t.name for t in reading.boxed())
    return Draft(layout, found, staged.guessed)


# -- layout -> words ----------------------------------------------------------------------------

STATIONARY_PATH = 0.03
"""Below this path length (frame fractions) a subject counts as stationary."""
SLOW_SPEED = 0.35
FAST_SPEED = 1.2


class Speed(Enum):
    NONE = ""
    SLOW = "slowly"
    NORMAL = "normal"
    FAST = "quickly"


@dataclass(frozen=True)
class Motion:
    """A subject's motion in region terms: the regions its keyframes pass through (consecutive
    repeats removed), whether it moves at all, and how fast."""

    name: str
    waypoints: tuple[Region, ...]
    moving: bool
    speed: Speed

    @property
    def direction(self) -> tuple[int, int]:
        """Signs (dx, dy) from the first to the last waypoint, y down; (0, 0) when still."""
        if len(self.waypoints) < 2:
            return (0, 0)
        (ax, ay), (bx, by) = self.waypoints[0].anchor, self.waypoints[-1].anchor
        return (_sign(bx - ax), _sign(by - ay))


def _sign(v: float) -> int:
    return 0 if abs(v) < 1e-9 else (1 if v > 0 else -1)


def motion_of(subject: Subject) -> Motion:
    regions: list[Region] = []
    for kf in subject.keyframes:
        r = Region.of_box(kf.box)
        if not regions or regions[-1] != r:
            regions.append(r)
    length = subject.path_length()
    moving = length >= STATIONARY_PATH
    speed = Speed.NONE
    if moving:
        duration = max(subject.keyframes[-1].t - subject.keyframes[0].t, 0.05)
        v = length / duration
        speed = Speed.SLOW if v < SLOW_SPEED else Speed.FAST if v > FAST_SPEED else Speed.NORMAL
    if not moving:
        regions = regions[:1]
    return Motion(subject.name, tuple(regions), moving, speed)


def subject_phrase(name: str) -> str:
    """"red car" -> "the red car"; a name that starts with a determiner is kept."""
    words = " ".join(name.split())
    first = words.split(" ", 1)[0].lower() if words else ""
    return words if first in DETERMINERS else f"the {words}"


def _verb(motion: Motion) -> str:
    dx, dy = motion.direction
    (ax, ay), (bx, by) = motion.waypoints[0].anchor, motion.waypoints[-1].anchor
    if dy and abs(by - ay) > 1.5 * abs(bx - ax):
        return "rises" if dy < 0 else "descends"
    return "moves"


def _plural_name(name: str) -> bool:
    from shotsketch.core.spatial import is_plural  # (spatial reads with this module's regions)

    words = name.split()
    return bool(words) and is_plural(words[-1])


def _subject_clause(subject: Subject, motion: Motion) -> str:
    who = subject_phrase(subject.name)
    many = _plural_name(subject.name)  # "the mountains remain", one box for a wide shape
    if not motion.moving:
        return f"{who} {'remain' if many else 'remains'} stationary {motion.waypoints[0].location}"
    if len(motion.waypoints) == 1:
        return f"{who} {'stay' if many else 'stays'} {motion.waypoints[0].location}"
    speed = f"{motion.speed.value} " if motion.speed in (Speed.SLOW, Speed.FAST) else ""
    route = f"from {motion.waypoints[0].words} to {motion.waypoints[1].words}"
    route += "".join(f", then to {r.words}" for r in motion.waypoints[2:])
    verb = _verb(motion)
    if many:
        verb = {"rises": "rise", "descends": "descend", "moves": "move"}[verb]
    clause = f"{who} {speed}{verb} {route}"
    growth = subject.end.area / subject.start.area if subject.start.area > 0 else 1.0
    if growth >= 1.8:
        clause += ", coming closer"
    elif growth <= 0.55:
        clause += ", moving away"
    return clause


def _relation_between(a: Box, b: Box) -> Relation | None:
    """How box ``a`` stands to box ``b``, in explicit words."""
    overlap = a.intersection(b)
    smaller = min(a.area, b.area)
    if smaller > 0 and overlap / smaller > 0.25:
        if a.bottom > b.bottom + 1e-6:
            return Relation.IN_FRONT_OF
        if a.bottom < b.bottom - 1e-6:
            return Relation.BEHIND
        return None
    (ax, ay), (bx, by) = a.center, b.center
    if abs(ax - bx) >= abs(ay - by):
        return Relation.LEFT_OF if ax < bx else Relation.RIGHT_OF
    return Relation.ABOVE if ay < by else Relation.BELOW


def describe(layout: Layout) -> str:
    """The spatial clause for a layout, e.g. "The yellow ball moves from the left edge to the
    center, while the blue cube remains stationary on the right." Groups are counted ("three
    ducks in a row move from the left to the center") and regions named where they lie ("The
    sky spans the top"). Empty for an empty layout."""
    if layout.is_empty:
        return ""
    sentences = []
    things = _thing_clauses(layout)
    if things:
        sentences.append(_join_clauses(things))
    bands = [_band_clause(b) for b in layout.regions]
    if bands:
        sentences.append(_join_clauses(bands, final="and"))
    return " ".join(sentences)


def _thing_clauses(layout: Layout) -> list[str]:
    motions = [motion_of(s) for s in layout.subjects]
    clauses = [_subject_clause(s, m) for s, m in zip(layout.subjects, motions)]
    # relations make still subjects that share a region (or overlap) explicit
    related: set[int] = set()
    for i, (s, m) in enumerate(zip(layout.subjects, motions)):
        if m.moving or i in related:
            continue
        for j, (o, om) in enumerate(zip(layout.subjects, motions)):
            if j == i or om.moving:
                continue
            same_region = m.waypoints[0] == om.waypoints[0]
            rel = _relation_between(s.start, o.start)
            if rel is None:
                continue
            if same_region or rel in (Relation.IN_FRONT_OF,):
                clauses[i] += f", {rel.value} {subject_phrase(o.name)}"
                related.add(i)
                related.add(j)
                break
    clauses += [_group_clause(g) for g in layout.groups]
    return clauses


def _join_clauses(clauses: list[str], final: str = "while") -> str:
    if len(clauses) == 1:
        text = clauses[0]
    elif len(clauses) == 2:
        text = f"{clauses[0]}, {final} {clauses[1]}" if final == "while" else f"{clauses[0]} and {clauses[1]}"
    else:
        text = ", ".join(clauses[:-1]) + f", and {clauses[-1]}"
    return text[0].upper() + text[1:] + "."


COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten",
               11: "eleven", 12: "twelve"}


def group_center_subject(group: Group) -> Subject:
    """One box standing for the group: at each keyframe time, a small box at the mean of the
    members' centres (how the group's place and motion are described)."""
    times = sorted({k.t for m in group.members for k in m.keyframes})
    kfs = []
    for t in times:
        centers = [m.box_at(t).center for m in group.members]
        x = sum(c[0] for c in centers) / len(centers)
        y = sum(c[1] for c in centers) / len(centers)
        kfs.append(Keyframe(t, Box.from_center(x, y, 0.01, 0.01).fitted()))
    return Subject(group.name, group.color, tuple(kfs))


def _formation_words(group: Group) -> str:
    if group.count < 2:
        return ""
    centers = [m.start.center for m in group.members]
    xs, ys = [c[0] for c in centers], [c[1] for c in centers]
    if max(ys) - min(ys) <= 0.1 and max(xs) - min(xs) > max(ys) - min(ys):
        return " in a row"
    if group.count >= 4:
        cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
        quadrants = {(x > cx, y > cy) for x, y in centers}
        if len(quadrants) >= 3 and min(abs(x - cx) + abs(y - cy) for x, y in centers) > 0.08:
            return " in a circle"
    return ""


def _group_clause(group: Group) -> str:
    words = " ".join(group.name.split())
    first = words.split(" ", 1)[0].lower()
    counted = first in COUNT_WORDS.values() or first.isdigit() or group.count < 2
    who = words if counted else f"{COUNT_WORDS.get(group.count, str(group.count))} {words}"
    who += _formation_words(group)
    motion = motion_of(group_center_subject(group))
    if group.count >= 2 and not motion.moving:
        spread = [_spread(group, t) for t in (0.0, 1.0)]
        if spread[1] < spread[0] - 0.2:
            return f"{who} move toward each other and meet {Region.of_point(*_mean_center(group, 1.0)).location}"
        if any(m.path_length() >= STATIONARY_PATH * 5 for m in group.members):
            return f"{who} pass each other {motion.waypoints[0].location}"
    if not motion.moving:
        return f"{who} remain stationary {motion.waypoints[0].location}"
    if len(motion.waypoints) == 1:
        return f"{who} stay {motion.waypoints[0].location}"
    speed = f"{motion.speed.value} " if motion.speed in (Speed.SLOW, Speed.FAST) else ""
    verb = {"rises": "rise", "descends": "descend"}.get(_verb(motion), "move")
    route = f"from {motion.waypoints[0].words} to {motion.waypoints[1].words}"
    route += "".join(f", then to {r.words}" for r in motion.waypoints[2:])
    return f"{who} {speed}{verb} {route}"


def _mean_center(group: Group, t: float) -> tuple[float, float]:
    centers = [m.box_at(t).center for m in group.members]
    return sum(c[0] for c in centers) / len(centers), sum(c[1] for c in centers) / len(centers)


def _spread(group: Group, t: float) -> float:
    centers = [m.box_at(t).center for m in group.members]
    return max(math.hypot(a[0] - b[0], a[1] - b[1]) for a in centers for b in centers)


def _band_clause(band: Band) -> str:
    last = band.name.split()[-1].lower() if band.name.split() else ""
    verb = "span" if last.endswith("s") and not last.endswith(("ss", "us", "is")) else "spans"  # "the waves span"
    return f"{subject_phrase(band.name)} {verb} {Region.of_box(band.box).words}"


# -- a draft onto a sketch ------------------------------------------------------------------------


@dataclass(frozen=True)
class Merged:
    """A draft put onto a sketch: the layout, the names whose boxes the person's edits kept, and the
    names of the last draft's boxes taken off because the prompt no longer names them."""

    layout: Layout
    kept: tuple[str, ...]
    removed: tuple[str, ...] = ()


def merge_draft(sketch: Layout, draft: Layout, last_draft: Layout | None = None, *,
                prompt: str | None = None) -> Merged:
    """Put a new draft onto the person's sketch without overwriting their edits: a subject, group
    or region the draft names replaces the sketch's one of the same name only when that one is
    still exactly as the last draft left it; the ones the person drew or changed stay. New names
    from the draft are added. Of the sketch's things the draft does not name, one still exactly as
    the last draft left it goes when `prompt` (the text drafted) no longer names it at all: the
    person took it out of the prompt, and its box would put it back through the sketch's clause.
    Every other one stays."""
    kept: list[str] = []
    removed: list[str] = []

    def pick(current: list, drafted: list, before: list) -> list:  # noqa: ANN001
        previous = {name_key(x.name): x for x in before}
        named = {name_key(x.name) for x in drafted}
        out = []
        for item in current:
            key = name_key(item.name)
            if (prompt is not None and key not in named and previous.get(key) == item
                    and not find_subject_spans(prompt, item.name)):
                removed.append(item.name)  # the last draft's, untouched, and gone from the prompt
            else:
                out.append(item)
        index = {name_key(x.name): i for i, x in enumerate(out)}
        for item in drafted:
            key = name_key(item.name)
            if key not in index:
                out.append(item)
            elif previous.get(key) == out[index[key]]:
                out[index[key]] = item  # untouched since the last draft: the new draft replaces it
            elif out[index[key]] != item:
                kept.append(out[index[key]].name)
        return out

    before = last_draft or Layout(sketch.aspect)
    subjects = pick(list(sketch.subjects), list(draft.subjects), list(before.subjects))
    groups = pick(list(sketch.groups), list(draft.groups), list(before.groups))
    subjects, groups = _distinct_colors(sketch, subjects, groups)
    taken = {name_key(s.name) for s in subjects}
    groups = [g for g in groups if name_key(g.name) not in taken]  # a name is a subject or a group, not both
    regions = pick(list(sketch.regions), list(draft.regions), list(before.regions))
    layout = Layout(sketch.aspect, tuple(subjects[:64]), tuple(groups[:64]), tuple(regions[:8]))
    return Merged(layout, tuple(kept), tuple(removed))


def _hex6(color: str) -> str:
    c = color.lower()
    return "#" + "".join(ch * 2 for ch in c[1:]) if len(c) == 4 else c


def _distinct_colors(sketch: Layout, subjects: list, groups: list) -> tuple[list, list]:  # noqa: ANN001
    """A box the draft adds takes a palette colour no box of the sketch has, unless its name says
    its colour ("the blue cabin" stays blue beside a blue cube)."""
    old = {name_key(x.name) for x in (*sketch.subjects, *sketch.groups)}
    used = {_hex6(x.color) for x in (*subjects, *groups)}
    out = []
    for items in (subjects, groups):
        fixed = []
        for x in items:
            named = any(w in COLOR_WORDS for w in x.name.lower().split())
            taken = [_hex6(y.color) for y in (*subjects, *groups) if y is not x]
            if name_key(x.name) not in old and not named and _hex6(x.color) in taken:
                free = next((c for c in PALETTE if _hex6(c) not in used), None)
                if free is not None:
                    used.add(_hex6(free))
                    x = x.with_color(free) if isinstance(x, Subject) else replace(
                        x, color=free, members=tuple(m.with_color(free) for m in x.members))
            fixed.append(x)
        out.append(fixed)
    return out[0], out[1]


# -- what a prompt already says ----------------------------------------------------------------


def _same_placement(sketch: Subject, drafted: Subject) -> bool:
    a, b = motion_of(sketch), motion_of(drafted)
    if a.moving != b.moving:
        return False
    return a.waypoints == b.waypoints if a.moving else a.waypoints[0] == b.waypoints[0]


def unsaid_layout(prompt: str, layout: Layout) -> Layout:
    """The part of ``layout`` that ``prompt`` does not already say, subject by subject: a subject
    or group the prompt places in the same parts of the frame (moving the same way) is left out,
    and so is a region the prompt names."""
    said = draft_layout(prompt, layout.aspect, subjects=list(layout.guided_names))

    def says(name: str, sketch: Subject) -> bool:
        # A subject the prompt names without a place is drafted where a storyboard artist would guess
        # it; while its box is still there, the sketch adds nothing the person chose, and saying the
        # guess ("the window remains stationary on the left") would tell the model something nobody
        # wrote. Moved elsewhere, it is said.
        if not said.layout.has_name(name):
            return False
        if said.layout.has_subject(name):
            return _same_placement(sketch, said.layout.subject(name))
        return _same_placement(sketch, group_center_subject(said.layout.group(name)))

    return replace(
        layout,
        subjects=tuple(s for s in layout.subjects if not says(s.name, s)),
        groups=tuple(g for g in layout.groups if not says(g.name, group_center_subject(g))),
        regions=tuple(b for b in layout.regions if not find_subject_spans(prompt, b.name)),
    )


def _plain(text: str) -> str:
    return " ".join(text.split()).strip(".!?;, ").casefold()


def clause_beyond_prompt(prompt: str, clause: str) -> str:
    """What a spatial clause (from :func:`describe`) adds to ``prompt``: the whole clause when the
    prompt says none of it, nothing when it says all of it, else the clause for the subjects it
    does not place ("...passing a house in the center." plus a new box for the sun adds only
    "The sun remains stationary in the top right corner.")."""
    clause = clause.strip()
    if not _plain(clause) or _plain(clause) in _plain(prompt):
        return ""
    sketch = draft_layout(clause).layout
    rest = unsaid_layout(prompt, sketch)
    if rest == sketch:
        return clause  # the prompt says none of it: the clause as it was written
    return describe(rest)


def describe_subject(subject: Subject) -> str:
    """The clause for one subject alone, without the sentence's capital and full stop."""
    return _subject_clause(subject, motion_of(subject))
