"""Shot layouts: subjects with boxes over clip time, their JSON form and its validation.

Coordinates are normalized to the frame: ``x`` and ``y`` in [0, 1], ``y`` pointing down.
``t`` is clip time in [0, 1]. Every value here is immutable; editing returns a new object,
which is what the canvas's undo stack relies on.

A ``Subject`` and a ``Layout`` validate themselves when they are built, so an invalid
layout cannot exist; :class:`LayoutError` says which subject and which keyframe is wrong.

Besides subjects (one box each), a layout holds (schema version 2):

- groups: several boxes under one name, the words the prompt uses for them ("five adults",
  "three ducks"); layout guidance steers the group's words into the union of its boxes;
- regions: the sky, the ground, water and the horizon, as bands of the frame. The canvas shows
  them and the drafter puts subjects in them ("a bird in the sky"); they are not guided (see
  :class:`Band`).
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

SCHEMA_VERSION = 2
"""The layout JSON schema version this code writes (and the newest it reads). Version 1 had
subjects only; version 2 adds ``groups`` and ``regions``. A file without ``schema_version``
is read as version 1, the format documented before versions existed."""

MIN_BOX_SIZE = 0.005
"""The smallest box width or height, as a fraction of the frame (about 4 px at 832 wide)."""

MIN_ASPECT = 0.1
MAX_ASPECT = 10.0
MAX_NAME_LENGTH = 200
MAX_SUBJECTS = 64
MAX_KEYFRAMES = 1000
MAX_GROUP_MEMBERS = 24
MAX_REGIONS = 8
T_EPSILON = 1e-9

ASPECT_832x480 = 832 / 480
ASPECT_1280x704 = 1280 / 704

_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")

log = logging.getLogger(__name__)


class LayoutError(ValueError):
    """A layout that cannot be used, with a message naming the subject and keyframe."""


class Easing(Enum):
    LINEAR = "linear"
    EASE_IN_OUT = "ease_in_out"

    def apply(self, u: float) -> float:
        """Map linear progress ``u`` in [0, 1] to eased progress in [0, 1] (monotone)."""
        u = min(1.0, max(0.0, u))
        if self is Easing.EASE_IN_OUT:
            return u * u * (3.0 - 2.0 * u)
        return u


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LayoutError(f"{what} must be a number, not {type(value).__name__} {value!r:.40}")
    try:
        result = float(value)
    except OverflowError:  # a whole number of hundreds of digits
        raise LayoutError(f"{what} is far too large a number ({len(str(value)):,} digits)") from None
    if not math.isfinite(result):
        raise LayoutError(f"{what} must be a finite number, not {result}")
    return result


def _lerp(a: float, b: float, u: float) -> float:
    # (1-u)*a + u*b, clamped to [min(a,b), max(a,b)] so rounding never leaves the segment.
    value = (1.0 - u) * a + u * b
    lo, hi = (a, b) if a <= b else (b, a)
    return min(hi, max(lo, value))


@dataclass(frozen=True)
class Box:
    """A rectangle in normalized frame coordinates (y down). Any finite numbers are allowed;
    :meth:`problems` says whether it is a usable subject box (inside the frame, not inverted)."""

    left: float
    top: float
    right: float
    bottom: float

    def __post_init__(self) -> None:
        for name in ("left", "top", "right", "bottom"):
            object.__setattr__(self, name, _number(getattr(self, name), f"box {name}"))

    @classmethod
    def from_center(cls, cx: float, cy: float, width: float, height: float) -> Box:
        return cls(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)

    @classmethod
    def from_list(cls, values: Any, what: str = "box") -> Box:
        if not isinstance(values, (list, tuple)) or len(values) != 4:
            raise LayoutError(f"{what} must be a list of 4 numbers [left, top, right, bottom], not {values!r:.60}")
        left, top, right, bottom = (_number(v, f"{what} {n}") for v, n in zip(values, ("left", "top", "right", "bottom")))
        return cls(left, top, right, bottom)

    def to_list(self) -> list[float]:
        return [self.left, self.top, self.right, self.bottom]

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2, (self.top + self.bottom) / 2)

    @property
    def center_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def center_y(self) -> float:
        return (self.top + self.bottom) / 2

    def problems(self) -> list[str]:
        """Plain-language reasons this box cannot be a subject box; empty when it can."""
        out: list[str] = []
        if self.left > self.right:
            out.append(f"box is inverted: left {self.left:g} is right of right {self.right:g}")
        if self.top > self.bottom:
            out.append(f"box is inverted: top {self.top:g} is below bottom {self.bottom:g}")
        if not out and (self.width < MIN_BOX_SIZE - 1e-9 or self.height < MIN_BOX_SIZE - 1e-9):
            out.append(
                f"box is zero-size ({self.width:g} x {self.height:g}; each side must be at least {MIN_BOX_SIZE:g} of the frame)"
            )
        outside = [
            f"{n} {v:g}" for n, v in zip(("left", "top", "right", "bottom"), self.to_list()) if not 0.0 <= v <= 1.0
        ]
        if outside:
            out.append(f"box is outside the frame ({', '.join(outside)}; coordinates must be between 0 and 1)")
        return out

    def is_valid(self) -> bool:
        return not self.problems()

    def translated(self, dx: float, dy: float) -> Box:
        return Box(self.left + dx, self.top + dy, self.right + dx, self.bottom + dy)

    def scaled(self, factor: float) -> Box:
        """The box scaled about its center."""
        cx, cy = self.center
        return Box.from_center(cx, cy, self.width * factor, self.height * factor)

    def fitted(self) -> Box:
        """The box moved (and if need be shrunk) so that it lies inside the frame."""
        width = min(max(self.width, MIN_BOX_SIZE), 1.0)
        height = min(max(self.height, MIN_BOX_SIZE), 1.0)
        left = min(max(self.left, 0.0), 1.0 - width)
        top = min(max(self.top, 0.0), 1.0 - height)
        return Box(left, top, min(1.0, left + width), min(1.0, top + height))

    def intersection(self, other: Box) -> float:
        w = min(self.right, other.right) - max(self.left, other.left)
        h = min(self.bottom, other.bottom) - max(self.top, other.top)
        return max(0.0, w) * max(0.0, h)

    def lerp(self, other: Box, u: float) -> Box:
        return Box(
            _lerp(self.left, other.left, u),
            _lerp(self.top, other.top, u),
            _lerp(self.right, other.right, u),
            _lerp(self.bottom, other.bottom, u),
        )


@dataclass(frozen=True)
class Keyframe:
    t: float
    box: Box

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", _number(self.t, "keyframe t"))
        if not isinstance(self.box, Box):
            raise LayoutError(f"keyframe box must be a Box, not {type(self.box).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "box": self.box.to_list()}


DEFAULT_COLOR = "#dd3333"


@dataclass(frozen=True)
class Subject:
    """One thing in the shot: ``name`` is the words used for it in the prompt."""

    name: str
    color: str = DEFAULT_COLOR
    keyframes: tuple[Keyframe, ...] = ()
    easing: Easing = Easing.LINEAR

    def __post_init__(self) -> None:
        if not isinstance(self.keyframes, tuple):
            object.__setattr__(self, "keyframes", tuple(self.keyframes))
        problems = self.problems()
        if problems:
            raise LayoutError(problems[0])

    # -- construction helpers
    @classmethod
    def static(cls, name: str, box: Box, color: str = DEFAULT_COLOR) -> Subject:
        return cls(name, color, (Keyframe(0.0, box),))

    @classmethod
    def moving(
        cls, name: str, start: Box, end: Box, color: str = DEFAULT_COLOR, easing: Easing = Easing.LINEAR
    ) -> Subject:
        return cls(name, color, (Keyframe(0.0, start), Keyframe(1.0, end)), easing)

    # -- validation
    def _label(self) -> str:
        return f"subject {self.name!r}" if isinstance(self.name, str) and self.name.strip() else "a subject"

    def problems(self) -> list[str]:
        label = self._label()
        out: list[str] = []
        if not isinstance(self.name, str):
            out.append(f"subject name must be text, not {type(self.name).__name__}")
        elif not self.name.strip():
            out.append("a subject has an empty name; give it the words the prompt uses for it")
        elif len(self.name) > MAX_NAME_LENGTH:
            out.append(f"{label}: name is longer than {MAX_NAME_LENGTH} characters")
        if not isinstance(self.color, str) or not _COLOR_RE.match(self.color):
            out.append(f"{label}: colour {self.color!r} is not a hex colour like '#d33' or '#dd3333'")
        if not isinstance(self.easing, Easing):
            out.append(f"{label}: easing must be one of {[e.value for e in Easing]}, not {self.easing!r}")
        if not self.keyframes:
            out.append(f"{label} has no keyframes; it needs at least one box")
        if len(self.keyframes) > MAX_KEYFRAMES:
            out.append(f"{label} has more than {MAX_KEYFRAMES} keyframes")
        previous: float | None = None
        for i, kf in enumerate(self.keyframes, start=1):
            if not isinstance(kf, Keyframe):
                out.append(f"{label}, keyframe {i}: must be a Keyframe, not {type(kf).__name__}")
                continue
            where = f"{label}, keyframe {i} (t={kf.t:g})"
            if not 0.0 <= kf.t <= 1.0:
                out.append(f"{where}: t is outside [0, 1]")
            if previous is not None and kf.t <= previous:
                out.append(f"{where}: t must be greater than the previous keyframe's t={previous:g}")
            previous = kf.t
            out.extend(f"{where}: {p}" for p in kf.box.problems())
        return out

    # -- queries
    @property
    def start(self) -> Box:
        return self.keyframes[0].box

    @property
    def end(self) -> Box:
        return self.keyframes[-1].box

    @property
    def is_static(self) -> bool:
        first = self.keyframes[0].box
        return all(kf.box == first for kf in self.keyframes)

    def box_at(self, t: float) -> Box:
        """The box at clip time ``t``, interpolated between keyframes with this subject's
        easing; before the first keyframe it is the first box, after the last the last box."""
        t = float(t)
        if math.isnan(t):
            raise ValueError("t must be a number, not NaN")
        kfs = self.keyframes
        if t <= kfs[0].t:
            return kfs[0].box
        if t >= kfs[-1].t:
            return kfs[-1].box
        i = bisect.bisect_right([kf.t for kf in kfs], t)
        a, b = kfs[i - 1], kfs[i]
        u = self.easing.apply((t - a.t) / (b.t - a.t))
        return a.box.lerp(b.box, u)

    def path_length(self) -> float:
        """Distance travelled by the box center across the keyframes, in frame fractions."""
        total = 0.0
        for a, b in zip(self.keyframes, self.keyframes[1:]):
            (ax, ay), (bx, by) = a.box.center, b.box.center
            total += math.hypot(bx - ax, by - ay)
        return total

    # -- edits (each returns a new, validated subject)
    def with_keyframe(self, t: float | Keyframe, box: Box | None = None) -> Subject:
        """This subject with a keyframe added, replacing one at the same ``t``."""
        kf = t if isinstance(t, Keyframe) else Keyframe(t, box) if box is not None else None
        if kf is None:
            raise LayoutError(f"{self._label()}: with_keyframe needs a Keyframe or both t and box")
        kept = [k for k in self.keyframes if abs(k.t - kf.t) > T_EPSILON]
        kept.append(kf)
        kept.sort(key=lambda k: k.t)
        return replace(self, keyframes=tuple(kept))

    def without_keyframe(self, t: float) -> Subject:
        kept = tuple(k for k in self.keyframes if abs(k.t - t) > T_EPSILON)
        if len(kept) == len(self.keyframes):
            raise LayoutError(f"{self._label()} has no keyframe at t={t:g}")
        return replace(self, keyframes=kept)

    def with_keyframes(self, keyframes: Iterable[Keyframe]) -> Subject:
        return replace(self, keyframes=tuple(keyframes))

    def renamed(self, name: str) -> Subject:
        return replace(self, name=name)

    def with_color(self, color: str) -> Subject:
        return replace(self, color=color)

    def with_easing(self, easing: Easing) -> Subject:
        return replace(self, easing=easing)

    def translated(self, dx: float, dy: float) -> Subject:
        return replace(self, keyframes=tuple(Keyframe(k.t, k.box.translated(dx, dy)) for k in self.keyframes))

    # -- JSON form
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "color": self.color,
            "easing": self.easing.value,
            "keyframes": [kf.to_dict() for kf in self.keyframes],
        }

    @classmethod
    def from_dict(cls, data: Any, index: int = 1) -> Subject:
        name, color, label = _named(data, "subject", index, {"name", "color", "easing", "keyframes"}, {"keyframes"})
        easing = _easing_from(data, label)
        return cls(name, color, _keyframes_from(data["keyframes"], label), easing)


def _named(data: Any, what: str, index: int, allowed: set[str], required: set[str]) -> tuple[str, str, str]:
    """(name, colour, label for messages) of a subject's or a group's JSON object, checked."""
    where = f"{what} {index}"
    if not isinstance(data, Mapping):
        raise LayoutError(f"{where} must be an object, not {type(data).__name__}")
    _check_keys(data, allowed, required | {"name"}, where)
    name = data["name"]
    if not isinstance(name, str):
        raise LayoutError(f"{where}: name must be text, not {type(name).__name__}")
    label = f"{what} {name!r}" if name.strip() else where
    color = data.get("color", DEFAULT_COLOR)
    if not isinstance(color, str):
        raise LayoutError(f"{label}: colour must be text like '#d33', not {type(color).__name__}")
    return name, color, label


def _easing_from(data: Mapping[str, Any], label: str) -> Easing:
    easing_value = data.get("easing", Easing.LINEAR.value)
    try:
        return Easing(easing_value)
    except ValueError:
        raise LayoutError(
            f"{label}: easing {easing_value!r:.40} is not one of {', '.join(e.value for e in Easing)}"
        ) from None


def _keyframes_from(raw_kfs: Any, label: str) -> tuple[Keyframe, ...]:
    if not isinstance(raw_kfs, list):
        raise LayoutError(f"{label}: keyframes must be a list")
    if len(raw_kfs) > MAX_KEYFRAMES:
        raise LayoutError(f"{label} has more than {MAX_KEYFRAMES} keyframes")
    keyframes = []
    for i, raw in enumerate(raw_kfs, start=1):
        kwhere = f"{label}, keyframe {i}"
        if not isinstance(raw, Mapping):
            raise LayoutError(f"{kwhere} must be an object with t and box")
        _check_keys(raw, {"t", "box"}, {"t", "box"}, kwhere)
        try:
            keyframes.append(Keyframe(_number(raw["t"], "t"), Box.from_list(raw["box"])))
        except LayoutError as exc:
            raise LayoutError(f"{kwhere}: {exc}") from None
    return tuple(keyframes)


def _check_keys(data: Mapping[str, Any], allowed: set[str], required: set[str], where: str) -> None:
    missing = sorted(required - set(data))
    if missing:
        raise LayoutError(f"{where} is missing {', '.join(missing)}")
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise LayoutError(f"{where} has unknown field(s) {', '.join(unknown)}")


@dataclass(frozen=True)
class Group:
    """Several boxes under one name: the words the prompt uses for them ("adults", "three ducks").
    Each member is a :class:`Subject` carrying the group's name and colour, with its own
    keyframes, so members can move apart ("two people walk toward each other"). Layout
    guidance steers the name's words into the union of the members' boxes."""

    name: str
    color: str = DEFAULT_COLOR
    members: tuple[Subject, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.members, tuple):
            object.__setattr__(self, "members", tuple(self.members))
        problems = self.problems()
        if problems:
            raise LayoutError(problems[0])

    @classmethod
    def of_boxes(cls, name: str, boxes: Iterable[Box], color: str = DEFAULT_COLOR) -> Group:
        return cls(name, color, tuple(Subject.static(name, b, color) for b in boxes))

    @classmethod
    def of_paths(cls, name: str, paths: Iterable[Iterable[Keyframe]], color: str = DEFAULT_COLOR,
                 easing: Easing = Easing.LINEAR) -> Group:
        return cls(name, color, tuple(Subject(name, color, tuple(kfs), easing) for kfs in paths))

    def problems(self) -> list[str]:
        label = f"group {self.name!r}" if isinstance(self.name, str) and self.name.strip() else "a group"
        if not isinstance(self.name, str) or not self.name.strip():
            return ["a group has an empty name; give it the words the prompt uses for it"]
        if not self.members:
            return [f"{label} has no boxes"]
        if len(self.members) > MAX_GROUP_MEMBERS:
            return [f"{label} has more than {MAX_GROUP_MEMBERS} boxes"]
        out: list[str] = []
        for i, m in enumerate(self.members, start=1):
            if not isinstance(m, Subject):
                out.append(f"{label}, box {i}: must be a Subject, not {type(m).__name__}")
            elif name_key(m.name) != name_key(self.name):
                out.append(f"{label}, box {i}: is named {m.name!r}, not the group's name")
        return out

    @property
    def count(self) -> int:
        return len(self.members)

    def boxes_at(self, t: float) -> list[Box]:
        return [m.box_at(t) for m in self.members]

    def union_at(self, t: float) -> Box:
        """The smallest box holding every member's box at clip time ``t``."""
        return union_box(self.boxes_at(t))

    @property
    def is_static(self) -> bool:
        return all(m.is_static for m in self.members)

    def translated(self, dx: float, dy: float) -> Group:
        return replace(self, members=tuple(m.translated(dx, dy) for m in self.members))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "color": self.color,
            "members": [{"easing": m.easing.value, "keyframes": [kf.to_dict() for kf in m.keyframes]}
                        for m in self.members],
        }

    @classmethod
    def from_dict(cls, data: Any, index: int = 1) -> Group:
        name, color, label = _named(data, "group", index, {"name", "color", "members"}, {"members"})
        raw = data["members"]
        if not isinstance(raw, list):
            raise LayoutError(f"{label}: members must be a list")
        if len(raw) > MAX_GROUP_MEMBERS:
            raise LayoutError(f"{label} has more than {MAX_GROUP_MEMBERS} boxes")
        members = []
        for i, m in enumerate(raw, start=1):
            mwhere = f"{label}, box {i}"
            if not isinstance(m, Mapping):
                raise LayoutError(f"{mwhere} must be an object with keyframes")
            _check_keys(m, {"easing", "keyframes"}, {"keyframes"}, mwhere)
            keyframes = _keyframes_from(m["keyframes"], mwhere)
            try:
                members.append(Subject(name, color, keyframes, _easing_from(m, mwhere)))
            except LayoutError as exc:
                raise LayoutError(f"{mwhere}: {str(exc).replace(f'subject {name!r}, ', '')}") from None
        return cls(name, color, tuple(members))


def union_box(boxes: Iterable[Box]) -> Box:
    bs = list(boxes)
    return Box(min(b.left for b in bs), min(b.top for b in bs), max(b.right for b in bs), max(b.bottom for b in bs))


class BandKind(Enum):
    SKY = "sky"
    GROUND = "ground"
    WATER = "water"
    HORIZON = "horizon"


@dataclass(frozen=True)
class Band:
    """A region of the frame: the sky, the ground, water or the horizon, with the prompt's word
    for it ("ocean", "starry sky") and the part of the frame it covers (a full-width band, or
    narrower: "a pond on the left").

    Bands are not guided. They cover a third of the frame or more, where the model already puts
    sky above and ground below on its own; a bias over such an area would pull attention away
    from the subjects inside it (the bird in the sky, the boat on the lake), whose boxes overlap
    the band. They shape the words (the drafter places subjects in them, the clause names them)
    and the sketch."""

    kind: BandKind
    name: str
    box: Box

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise LayoutError(problems[0])

    def problems(self) -> list[str]:
        if not isinstance(self.kind, BandKind):
            return [f"a region's kind must be one of {', '.join(k.value for k in BandKind)}, not {self.kind!r:.40}"]
        if not isinstance(self.name, str) or not self.name.strip():
            return [f"the {self.kind.value} region has an empty name; give it the prompt's word for it"]
        if len(self.name) > MAX_NAME_LENGTH:
            return [f"region {self.name!r:.40}: name is longer than {MAX_NAME_LENGTH} characters"]
        if not isinstance(self.box, Box):
            return [f"region {self.name!r}: box must be a Box"]
        return [f"region {self.name!r}: {p}" for p in self.box.problems()]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "name": self.name, "box": self.box.to_list()}

    @classmethod
    def from_dict(cls, data: Any, index: int = 1) -> Band:
        where = f"region {index}"
        if not isinstance(data, Mapping):
            raise LayoutError(f"{where} must be an object, not {type(data).__name__}")
        _check_keys(data, {"kind", "name", "box"}, {"kind", "name", "box"}, where)
        try:
            kind = BandKind(data["kind"])
        except ValueError:
            raise LayoutError(
                f"{where}: kind {data['kind']!r:.40} is not one of {', '.join(k.value for k in BandKind)}"
            ) from None
        name = data["name"]
        if not isinstance(name, str):
            raise LayoutError(f"{where}: name must be text, not {type(name).__name__}")
        return cls(kind, name, Box.from_list(data["box"], f"{where} box"))


def name_key(name: str) -> str:
    """How subject names are compared: case-insensitive, spaces collapsed."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class Layout:
    """The frame's aspect ratio (width / height), its subjects, groups and regions."""

    aspect: float = 16 / 9
    subjects: tuple[Subject, ...] = field(default=())
    groups: tuple[Group, ...] = field(default=())
    regions: tuple[Band, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("subjects", "groups", "regions"):
            if not isinstance(getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = self.problems()
        if problems:
            raise LayoutError(problems[0])
        object.__setattr__(self, "aspect", float(self.aspect))

    def problems(self) -> list[str]:
        out: list[str] = []
        try:
            aspect = _number(self.aspect, "aspect")
            if not MIN_ASPECT <= aspect <= MAX_ASPECT:
                out.append(f"aspect {aspect:g} is outside [{MIN_ASPECT:g}, {MAX_ASPECT:g}] (width / height)")
        except LayoutError as exc:
            out.append(str(exc))
        if len(self.subjects) > MAX_SUBJECTS:
            out.append(f"a layout holds at most {MAX_SUBJECTS} subjects")
        seen: dict[str, str] = {}
        for s in self.subjects:
            if not isinstance(s, Subject):
                out.append(f"subjects must be Subject values, not {type(s).__name__}")
                continue
            key = name_key(s.name)
            if key in seen:
                out.append(f"subject {s.name!r} appears twice (also as {seen[key]!r}); names must be unique")
            seen[key] = s.name
        if len(self.groups) > MAX_SUBJECTS:
            out.append(f"a layout holds at most {MAX_SUBJECTS} groups")
        for g in self.groups:
            if not isinstance(g, Group):
                out.append(f"groups must be Group values, not {type(g).__name__}")
                continue
            key = name_key(g.name)
            if key in seen:
                out.append(f"group {g.name!r} has the name of another subject or group ({seen[key]!r}); "
                           "names must be unique")
            seen[key] = g.name
        if len(self.regions) > MAX_REGIONS:
            out.append(f"a layout holds at most {MAX_REGIONS} regions")
        out.extend(f"regions must be Band values, not {type(r).__name__}" for r in self.regions
                   if not isinstance(r, Band))
        return out

    def validate(self) -> Layout:
        """Raise :class:`LayoutError` on the first problem; return the layout otherwise.
        (Layouts validate when built, so this only fails on objects forced past that.)"""
        problems = self.problems()
        for s in self.subjects:
            if isinstance(s, Subject):
                problems.extend(s.problems())
        if problems:
            raise LayoutError(problems[0])
        return self

    # -- queries
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.subjects)

    @property
    def guided_names(self) -> tuple[str, ...]:
        """The names layout guidance looks for in the prompt: subjects, then groups."""
        return self.names + tuple(g.name for g in self.groups)

    def guided_boxes_at(self, t: float) -> dict[str, list[Box]]:
        """For each guided name, its boxes at clip time ``t`` (one for a subject, a group's all)."""
        out: dict[str, list[Box]] = {s.name: [s.box_at(t)] for s in self.subjects}
        out.update({g.name: g.boxes_at(t) for g in self.groups})
        return out

    @property
    def is_empty(self) -> bool:
        return not (self.subjects or self.groups or self.regions)

    def group(self, name: str) -> Group:
        key = name_key(name)
        for g in self.groups:
            if name_key(g.name) == key:
                return g
        raise KeyError(f"no group named {name!r} in this layout")

    def subject(self, name: str) -> Subject:
        key = name_key(name)
        for s in self.subjects:
            if name_key(s.name) == key:
                return s
        raise KeyError(f"no subject named {name!r} in this layout")

    def has_subject(self, name: str) -> bool:
        key = name_key(name)
        return any(name_key(s.name) == key for s in self.subjects)

    def has_name(self, name: str) -> bool:
        """Whether a subject or a group is called ``name`` (names are unique across both)."""
        key = name_key(name)
        return any(name_key(n) == key for n in self.guided_names)

    def boxes_at(self, t: float) -> dict[str, Box]:
        return {s.name: s.box_at(t) for s in self.subjects}

    # -- edits
    def with_subject(self, subject: Subject, *, replacing: str | None = None) -> Layout:
        """This layout with ``subject`` added, or replacing the subject of the same name
        (or the one named ``replacing``, for a rename), keeping its place in the order."""
        key = name_key(replacing if replacing is not None else subject.name)
        subjects = list(self.subjects)
        for i, s in enumerate(subjects):
            if name_key(s.name) == key:
                subjects[i] = subject
                break
        else:
            if replacing is not None:
                raise KeyError(f"no subject named {replacing!r} in this layout")
            subjects.append(subject)
        return replace(self, subjects=tuple(subjects))

    def without_subject(self, name: str) -> Layout:
        key = name_key(name)
        kept = tuple(s for s in self.subjects if name_key(s.name) != key)
        if len(kept) == len(self.subjects):
            raise KeyError(f"no subject named {name!r} in this layout")
        return replace(self, subjects=kept)

    def with_aspect(self, aspect: float) -> Layout:
        return replace(self, aspect=aspect)

    def map_subjects(self, fn: Callable[[Subject], Subject]) -> Layout:
        return replace(self, subjects=tuple(fn(s) for s in self.subjects))

    # -- JSON form
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "aspect": self.aspect,
            "subjects": [s.to_dict() for s in self.subjects],
            "groups": [g.to_dict() for g in self.groups],
            "regions": [r.to_dict() for r in self.regions],
        }

    def rounded(self, places: int = 4) -> Layout:
        """This layout with every box and keyframe time rounded to ``places`` decimals (drafts
        are written so, without float noise such as 0.7000000000000001)."""

        def rbox(b: Box) -> Box:
            return Box(*(round(v, places) for v in b.to_list()))

        def rsubject(s: Subject) -> Subject:
            return replace(s, keyframes=tuple(Keyframe(round(k.t, places), rbox(k.box)) for k in s.keyframes))

        return replace(
            self,
            subjects=tuple(rsubject(s) for s in self.subjects),
            groups=tuple(replace(g, members=tuple(rsubject(m) for m in g.members)) for g in self.groups),
            regions=tuple(replace(r, box=rbox(r.box)) for r in self.regions),
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> Layout:
        """Build and validate a layout from its JSON form, migrating older schema versions."""
        if not isinstance(data, Mapping):
            raise LayoutError(f"a layout must be a JSON object, not {type(data).__name__}")
        data = migrate(data)
        _check_keys(data, {"schema_version", "aspect", "subjects", "groups", "regions"}, {"aspect", "subjects"},
                    "the layout")
        aspect = _number(data["aspect"], "aspect")
        raw_subjects = data["subjects"]
        if not isinstance(raw_subjects, list):
            raise LayoutError("the layout's subjects must be a list")
        if len(raw_subjects) > MAX_SUBJECTS:
            raise LayoutError(f"a layout holds at most {MAX_SUBJECTS} subjects")
        subjects = tuple(Subject.from_dict(s, i) for i, s in enumerate(raw_subjects, start=1))
        raw_groups = data.get("groups", [])
        raw_regions = data.get("regions", [])
        if not isinstance(raw_groups, list) or not isinstance(raw_regions, list):
            raise LayoutError("the layout's groups and regions must be lists")
        if len(raw_groups) > MAX_SUBJECTS:
            raise LayoutError(f"a layout holds at most {MAX_SUBJECTS} groups")
        if len(raw_regions) > MAX_REGIONS:
            raise LayoutError(f"a layout holds at most {MAX_REGIONS} regions")
        groups = tuple(Group.from_dict(g, i) for i, g in enumerate(raw_groups, start=1))
        regions = tuple(Band.from_dict(r, i) for i, r in enumerate(raw_regions, start=1))
        return cls(aspect, subjects, groups, regions)

    @classmethod
    def from_json(cls, text: str | bytes) -> Layout:
        from shotsketch.core.inputs import InputError, parse_json

        if not isinstance(text, (str, bytes)):
            raise LayoutError(f"a layout is JSON text, not {type(text).__name__}")
        try:  # shallow, short numbers, valid text (core/inputs.py)
            data = parse_json(text, "layout")
        except InputError as exc:
            raise LayoutError(str(exc).removeprefix("the layout is ")) from None
        return cls.from_dict(data)


# -- schema versions and migrations ---------------------------------------------------------

Migration = Callable[[dict[str, Any]], dict[str, Any]]

def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds groups and regions; a version-1 layout has neither."""
    for key in ("groups", "regions"):
        if key in data:
            raise LayoutError(f"a schema version 1 layout has no {key}; set \"schema_version\": 2")
    return {**data, "groups": [], "regions": []}


MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2}
"""``MIGRATIONS[n]`` turns a version-``n`` layout dict into a version ``n + 1`` one."""


def migrate(data: Mapping[str, Any]) -> dict[str, Any]:
    """Bring a layout dict to :data:`SCHEMA_VERSION`, or raise a clear :class:`LayoutError`.
    A layout without ``schema_version`` is read as version 1 (the format documented before
    versions existed), which the log says."""
    if "schema_version" not in data:
        log.info("the layout has no schema_version; read as version 1 (the first layout format)")
        data = {**data, "schema_version": 1}
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise LayoutError(f"the layout's schema_version must be a whole number, not {version!r:.40}")
    if version > SCHEMA_VERSION:
        raise LayoutError(
            f"this layout was written by a newer Shotsketch (schema version {version}); "
            f"this version reads layouts up to schema version {SCHEMA_VERSION}. Update Shotsketch to open it."
        )
    if version < 1:
        raise LayoutError(f"schema_version {version} is not a layout version (the first is 1)")
    out = dict(data)
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise LayoutError(f"no migration from layout schema version {version}")
        out = step(out)
        version += 1
        out["schema_version"] = version
    return out


def load_layout(path: Any) -> Layout:
    """Read a layout JSON file; errors say which file."""
    from pathlib import Path

    from shotsketch.core.inputs import InputError, read_file

    p = Path(path)
    try:  # a regular file of a sane size: never a FIFO, /dev/zero or 600 MB
        text = read_file(p, "file")
    except InputError as exc:
        raise LayoutError(f"cannot read layout file: {exc}") from None
    try:
        return Layout.from_json(text)
    except LayoutError as exc:
        raise LayoutError(f"{p}: {exc}") from None


def save_layout(layout: Layout, path: Any) -> None:
    from shotsketch.core.atomic import write_text_atomic

    write_text_atomic(path, layout.to_json() + "\n")
