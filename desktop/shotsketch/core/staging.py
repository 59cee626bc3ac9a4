"""Staging a reading: boxes where a storyboard artist would draw them.

Input: a :class:`~shotsketch.core.spatial.Reading` (who, where, how they move). Output: the
subjects, groups and region bands of a layout, and the names that no words placed.

- Sizes come from the kind of thing (a house larger than a ball, a person taller than wide),
  adjectives ("tiny", "huge"), depth (foreground larger and lower, background smaller and higher)
  and how crowded the shot is.
- Places come from the words in this order: a part of the frame; a place relative to another
  thing (placed first); a band ("in the sky"); else a guess, reported as not placed.
- Things the words do not put together do not overlap: a guessed or relative box moves aside to
  the nearest free spot; a box the words put in a part of the frame stays in that part.
- Motion becomes keyframes: a start, then one waypoint per step ("then" sequences keep their
  order), spread evenly over the clip.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from shotsketch.core.layout import Band, BandKind, Box, Group, Keyframe, Subject
from shotsketch.core.phrasing import CENTER, H_ANCHOR, V_ANCHOR, HRegion, Region, VRegion
from shotsketch.core.spatial import Link, Reading, Rel, Role, Step, StepKind, Thing, singular

# -- sizes --------------------------------------------------------------------------------------

# height as a fraction of the frame's height, and width / height in pixels
_KINDS: dict[str, tuple[float, float]] = {}


def _kind(words: str, height: float, ratio: float) -> None:
    for w in words.split():
        _KINDS[w] = (height, ratio)


_kind("person man woman child kid boy girl people adult adults friend hiker soldier runner farmer waiter fisherman "
      "cyclist skateboarder guitarist mother father dancer robot knight astronaut player singer nurse police "
      "snowman chef worker student teacher walker jogger", 0.4, 0.4)
_kind("cat dog fox rabbit puppy kitten goat sheep lamb pig raccoon squirrel penguin duck swan goose chicken "
      "mouse rat", 0.16, 1.3)
_kind("horse cow deer lion tiger bear wolf elephant giraffe camel zebra bull", 0.3, 1.4)
_kind("bird seagull eagle hawk owl butterfly bee crow pigeon parrot bat dragonfly fly", 0.08, 1.2)
_kind("car truck bus taxi van jeep tractor train tram", 0.18, 2.2)
_kind("boat ship yacht sailboat canoe kayak ferry submarine", 0.16, 1.8)
_kind("whale shark dolphin fish jellyfish turtle seal", 0.14, 2.0)
_kind("plane airplane jet helicopter drone spaceship rocket ufo kite balloon dragon", 0.14, 1.4)
_kind("house cabin barn shop school church castle hut cottage temple", 0.38, 1.3)
_kind("building skyscraper tower lighthouse", 0.55, 0.45)
_kind("tree palm pine oak", 0.45, 0.6)
_kind("mountain mountains volcano", 0.4, 2.4)
_kind("hill hills dune island cliff forest woods", 0.32, 2.4)
_kind("sofa couch bed bench table desk counter piano", 0.18, 2.2)
_kind("chair stool", 0.2, 0.7)
_kind("lamp candle bottle vase lantern statue", 0.2, 0.45)
_kind("cup mug apple ball bowl plate box laptop book phone clock flower ball orange egg", 0.1, 1.2)
_kind("sun moon planet star stars sunset sunrise", 0.12, 1.0)
_kind("cloud clouds", 0.12, 2.2)
_kind("door window gate", 0.25, 0.55)
_kind("fence wall bridge", 0.16, 4.0)
_kind("wire branch rope", 0.04, 5.0)
_kind("tunnel hole cave", 0.22, 1.5)
_kind("tray", 0.04, 2.5)
_DEFAULT_SIZE = (0.22, 1.0)

GROUNDED = frozenset(
    "person man woman child kid boy girl adult friend hiker soldier runner farmer waiter cyclist skateboarder mother "
    "father robot snowman cat dog fox rabbit goat sheep pig penguin horse cow deer lion tiger bear wolf elephant car "
    "truck bus taxi van tractor train house cabin barn shop school church castle building tower lighthouse tree sofa "
    "couch bed bench table desk chair lamp statue fence wall mouse chicken tunnel door gate hut cottage".split()
)
MOUNTS = frozenset("horse pony camel elephant donkey bike bicycle motorcycle motorbike scooter skateboard surfboard "
                   "snowboard unicycle".split())
"""What a rider rides: drawn under the rider."""
LANDFORMS = frozenset("mountain mountains volcano hill hills dune forest woods cliff island".split())
FLYERS = frozenset("bird seagull eagle hawk owl butterfly bee crow pigeon bat plane airplane jet helicopter drone "
                   "spaceship rocket ufo kite balloon sun moon planet star stars cloud clouds dragon sunset "
                   "sunrise".split())
GROUND_LINE = 0.62  # centre height of a grounded thing the words leave in the middle row
LANDFORM_BOTTOM = 0.97
SKY_Y = 0.22
GAP = 0.03


def _size(t: Thing, aspect: float, crowd: float) -> tuple[float, float]:
    """(width, height) in frame fractions."""
    head = singular(t.head)
    height, ratio = _KINDS.get(t.head, _KINDS.get(head, _DEFAULT_SIZE))
    height *= t.scale * crowd
    if t.depth > 0:
        height *= 1.35
    elif t.depth < 0:
        height *= 0.6
    width = height * ratio / aspect
    if width > 0.9:
        height *= 0.9 / width
        width = 0.9
    return max(width, 0.02), max(min(height, 0.9), 0.02)


# -- the stage ------------------------------------------------------------------------------------


@dataclass
class Staged:
    """Where each thing is: keyframes (times and centres) and sizes, and for groups the offsets
    of the members from the group's centre."""

    thing: Thing
    size: tuple[float, float]
    points: list[tuple[float, float]] = field(default_factory=list)  # path of the centre
    scales: list[float] = field(default_factory=list)  # size factor per point
    offsets: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 0.0)])
    member_paths: list[list[tuple[float, float]]] | None = None  # per member, overriding offsets
    placed_by_words: bool = True
    fixed_region: Region | None = None  # the words put it in this part of the frame: keep it there

    def box(self, i: int = 0, member: int | None = None) -> Box:
        cx, cy = self.points[i]
        s = self.scales[i] if self.scales else 1.0
        w, h = self.size[0] * s, self.size[1] * s
        if member is not None:
            if self.member_paths is not None:
                cx, cy = self.member_paths[member][i]
            else:
                fx, fy = self._squeeze(cx, cy, w, h, s)
                dx, dy = self.offsets[member]
                cx, cy = cx + dx * s * fx, cy + dy * s * fy
        return _box_around(cx, cy, w, h)

    def _squeeze(self, cx: float, cy: float, w: float, h: float, s: float) -> tuple[float, float]:
        """How much to close the formation up so that every member's centre stays in the frame
        (a row near the left edge stands closer together; the group's middle stays put)."""
        mx = max((abs(o[0]) for o in self.offsets), default=0.0) * s
        my = max((abs(o[1]) for o in self.offsets), default=0.0) * s
        room_x = max(0.0, min(cx, 1 - cx) - w / 4)
        room_y = max(0.0, min(cy, 1 - cy) - h / 4)
        return (min(1.0, room_x / mx) if mx > 0 else 1.0), (min(1.0, room_y / my) if my > 0 else 1.0)

    def union(self, i: int = 0) -> Box:
        if self.thing.role is not Role.GROUP:
            return self.box(i)
        bs = [self.box(i, m) for m in range(len(self.offsets))]
        return Box(min(b.left for b in bs), min(b.top for b in bs), max(b.right for b in bs), max(b.bottom for b in bs))

    @property
    def start(self) -> tuple[float, float]:
        return self.points[0]

    @property
    def end(self) -> tuple[float, float]:
        return self.points[-1]


def _box_around(cx: float, cy: float, w: float, h: float) -> Box:
    """A w x h box centred at (cx, cy), made smaller rather than moved where it would leave the
    frame, so that its centre stays where the words put it."""
    room = min(1.0, 2 * min(cx, 1 - cx) / w if w > 0 else 1.0, 2 * min(cy, 1 - cy) / h if h > 0 else 1.0)
    f = max(room, 0.02 / max(w, 1e-9), 0.02 / max(h, 1e-9))
    return Box.from_center(cx, cy, w * f, h * f).fitted()


def _clamp(v: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return min(hi, max(lo, v))


class Stage:
    def __init__(self, reading: Reading, aspect: float) -> None:
        self.reading = reading
        self.aspect = aspect
        self.boxed = reading.boxed()
        n_boxes = sum(t.count for t in self.boxed)
        self.crowd = 1.0 if n_boxes <= 2 else 0.85 if n_boxes <= 4 else 0.7 if n_boxes <= 7 else 0.55
        self.staged: dict[str, Staged] = {}
        self.bands: dict[str, Band] = {}
        self.guessed: list[str] = []

    # -- bands ----------------------------------------------------------------------------------
    def stage_bands(self) -> None:
        kinds = {t.band for t in self.reading.regions()}
        horizon = 0.45 if kinds & {BandKind.SKY, BandKind.HORIZON} or len(kinds) > 1 else 0.55
        for t in self.reading.regions():
            kind = t.band or BandKind.GROUND
            if kind is BandKind.SKY:
                box = Box(0.0, 0.0, 1.0, horizon)
            elif kind is BandKind.HORIZON:
                box = Box(0.0, horizon - 0.03, 1.0, horizon + 0.03)
            elif kind is BandKind.WATER:
                box = Box(0.0, horizon if BandKind.GROUND not in kinds else 0.5, 1.0,
                          1.0 if BandKind.GROUND not in kinds else 0.8)
            else:
                box = Box(0.0, max(horizon, 0.62) if BandKind.WATER not in kinds else 0.8, 1.0, 1.0)
            if t.place is not None:
                box = _band_at(kind, t.place, box)
            self.bands[t.key] = Band(kind, t.name, box)

    def band_of(self, kind: BandKind) -> Box | None:
        for b in self.bands.values():
            if b.kind is kind:
                return b.box
        return None

    # -- placing ----------------------------------------------------------------------------------
    def stage(self) -> None:
        self.stage_bands()
        for t in self.boxed:
            self.staged[t.key] = Staged(t, _size(t, self.aspect, self.crowd))
            if t.role is Role.GROUP:
                self.staged[t.key].offsets = self.formation(t)
        for t in self.boxed:  # a table is long enough for the cups in a row on it
            for link in t.links:
                if link.rel is Rel.ON and link.others[0] in self.staged:
                    support = self.staged[link.others[0]]
                    st = self.staged[t.key]
                    xs = [o[0] for o in st.offsets]
                    need = st.size[0] + max(xs) - min(xs) + 0.04
                    if need > support.size[0]:
                        support.size = (min(0.95, need), support.size[1])
        pending = [t for t in self.boxed if t.companion_of is None]
        # rounds: things with a frame place, then relations to placed things, then guesses
        for _ in range(len(pending) + 2):
            progressed = False
            for t in pending:
                if self.staged[t.key].points:
                    continue
                if self.place(t):
                    progressed = True
            if not progressed:
                # guess the first unplaced thing that others depend on, then try again
                left = [t for t in pending if not self.staged[t.key].points]
                if not left:
                    break
                self.guess(self._root(left))
        for t in self.boxed:
            if t.companion_of is not None:
                self.place_companion(t)
        self.separate()

    def place(self, t: Thing) -> bool:
        """Place ``t`` by its words; False when they wait on something not placed yet (or give no place)."""
        st = self.staged[t.key]
        # motion relative to others waits for them to be placed
        for step in t.steps + ([t.start] if t.start else []):
            if step.other and step.other in self.staged and not self.staged[step.other].points:
                if not self._depends_on(self.reading.things[step.other], t.key):
                    return False
        for link in t.links:
            for o in link.others:
                if o in self.staged and not self.staged[o].points and not self._depends_on(self.reading.things[o], t.key):
                    if link.rel is not Rel.PART_OF:
                        return False
        start = self.start_point(t)
        if start is None:
            if t.moves:
                start = self.default_start(t)
            else:
                return False  # a band alone ("grazes in the field") gives no side: guessed later
        st.points = [start]
        st.scales = [1.0]
        if t.place is not None:
            st.fixed_region = t.place
        elif t.start is not None and t.start.region is not None or any(
                x.kind is StepKind.PLACE for x in t.steps):
            st.fixed_region = t.start.region if t.start is not None and t.start.region else CENTER
        self.move(t)
        return True

    def _root(self, left: list[Thing]) -> Thing:
        """What to guess first among the unplaced: something others are placed by and that waits on
        nothing unplaced itself (the table the vase and the candles stand on), else the first."""
        waiting = {t.key for t in left}

        def waits(t: Thing) -> bool:
            others = {o for link in t.links for o in link.others} | {s.other for s in t.steps if s.other}
            return bool(others & (waiting - {t.key}))

        return next((t for t in left if t.related and not waits(t)), next((t for t in left if t.related), left[0]))

    def _depends_on(self, t: Thing, key: str) -> bool:
        """Whether ``t``'s place waits on ``key`` (so placing ``key`` first would loop)."""
        if any(key in link.others for link in t.links):
            return True
        return any(s.other == key for s in t.steps)

    def guess(self, t: Thing) -> None:
        st = self.staged[t.key]
        st.placed_by_words = False  # free to move aside
        # "in the foreground", "on the lake": the words put it in a band of the frame; only the side is a
        # storyboard artist's choice, not a guess to report
        if not (t.depth != 0 or any(link.rel in (Rel.INSIDE, Rel.ON) and link.others[0] in self.bands
                                    for link in t.links)):
            self.guessed.append(t.key)
        used = [self.staged[k].start[0] for k in self.staged if self.staged[k].points]
        # storyboard slots: the centre, then the thirds, then the edges, away from what is placed
        slots = [0.5, 0.28, 0.72, 0.12, 0.88]
        if self._is_target_of_approach_from(t) is not None:
            side = self._is_target_of_approach_from(t)
            slots = [0.3, 0.5] if side > 0 else [0.7, 0.5]
        # the other member of a "between": keep them apart
        for other in self.boxed:
            for link in other.links:
                if link.rel is Rel.BETWEEN and t.key in link.others:
                    slots = [0.22, 0.78] if link.others[0] == t.key else [0.78, 0.22]
        x = next((s for s in slots if all(abs(s - u) > 0.18 for u in used)), slots[0])
        st.points = [(x, self.default_y(t))]
        st.scales = [1.0]
        self.move(t)

    def _is_target_of_approach_from(self, t: Thing) -> int | None:
        for o in self.boxed:
            for s in o.steps:
                if s.kind in (StepKind.TOWARD, StepKind.FOLLOW) and s.other == t.key and o.start is not None and o.start.region:
                    return 1 if o.start.region.h in (HRegion.RIGHT, HRegion.RIGHT_EDGE) else -1
        return None

    def default_y(self, t: Thing) -> float:
        head = singular(t.head)
        h = self.staged[t.key].size[1]
        for link in t.links:
            if link.rel in (Rel.INSIDE, Rel.ON) and link.others[0] in self.bands:
                return self.in_band(self.bands[link.others[0]], h, on=link.rel is Rel.ON)
        if t.head in LANDFORMS or head in LANDFORMS:
            return LANDFORM_BOTTOM - h / 2 if t.depth >= 0 else self.horizon() - h / 2 + 0.05
        if t.head in FLYERS or head in FLYERS:
            sky = self.band_of(BandKind.SKY)
            return (sky.top + sky.bottom) / 2 if sky else SKY_Y
        if any(link.rel is Rel.IN_FRONT_OF and t.key in link.others for o in self.boxed for link in o.links):
            return _clamp(0.84 - h / 2, h / 2, 1 - h / 2)  # something stands in front of it: room below
        if t.depth > 0:
            return _clamp(0.95 - h / 2, h / 2, 1 - h / 2)
        if t.depth < 0:
            return _clamp(self.horizon() - h / 2 + 0.04, h / 2, 1 - h / 2)
        if t.head in GROUNDED or head in GROUNDED:
            ground = self.band_of(BandKind.GROUND)
            water = self.band_of(BandKind.WATER)
            if ground is not None:
                return _clamp(ground.top + 0.6 * ground.height - h / 2 + h * 0.3, h / 2, 1 - h / 2)
            if water is not None and head in ("boat", "ship"):
                return self.in_band(Band(BandKind.WATER, "water", water), h, on=True)
            return GROUND_LINE
        return 0.5

    def horizon(self) -> float:
        for kind in (BandKind.HORIZON, BandKind.SKY):
            b = self.band_of(kind)
            if b is not None:
                return b.bottom if kind is BandKind.SKY else b.center_y
        return 0.5

    @staticmethod
    def in_band(band: Band, h: float, on: bool = False) -> float:
        b = band.box
        if band.kind is BandKind.HORIZON:
            return b.center_y - h / 2 + 0.01
        if on and band.kind is BandKind.WATER:
            return _clamp(b.top + min(b.height * 0.35, 0.15), b.top, b.bottom)
        return _clamp((b.top + b.bottom) / 2, h / 2, 1 - h / 2)

    def region_point(self, t: Thing, region: Region, axes: str = "hv") -> tuple[float, float]:
        x, y = H_ANCHOR[region.h], V_ANCHOR[region.v]
        band = next((link for link in t.links if link.rel in (Rel.INSIDE, Rel.ON) and link.others[0] in self.bands), None)
        if region.v is VRegion.MIDDLE and band is not None:
            return x, self.in_band(self.bands[band.others[0]], self.staged[t.key].size[1], on=band.rel is Rel.ON)
        if region.v is VRegion.MIDDLE:
            # the middle row: grounded things stand on the ground line, others keep their usual
            # height as far as the row allows
            grounded = singular(t.head) in GROUNDED or t.head in GROUNDED
            y = GROUND_LINE if grounded else 0.5 if "v" in axes else _clamp(self.default_y(t), 0.36, 0.64)
        if t.head in LANDFORMS or singular(t.head) in LANDFORMS:
            y = max(y, self.default_y(t))
        return x, y

    def start_point(self, t: Thing) -> tuple[float, float] | None:
        st = self.staged[t.key]
        h = st.size[1]
        if t.start is not None and t.start.region is not None:
            p = self.region_point(t, t.start.region)
            if t.place is not None and t.start.region.v is VRegion.MIDDLE and t.place.v is not VRegion.MIDDLE:
                p = (p[0], V_ANCHOR[t.place.v])
            return p
        if t.start is not None and t.start.other in self.staged and self.staged[t.start.other].points:
            ob = self.staged[t.start.other].union(0)
            if t.start.kind is StepKind.ONTO:  # off it: starts on it
                return ob.center_x, _clamp(ob.top + 0.25 * ob.height - h / 2, h / 2, 1 - h / 2)
            if t.start.kind is StepKind.INTO:  # out of / from it: starts inside it
                return ob.center_x, _clamp(ob.bottom - h / 2, h / 2, 1 - h / 2)
            return ob.center
        if t.place is not None:
            return self.region_point(t, t.place, t.place_words)
        for link in t.links:
            if link.others[0] in self.bands and link.rel in (Rel.INSIDE, Rel.ON):
                continue  # a band gives the height only
            p = self.relative_point(t, link)
            if p is not None:
                return p
        return None

    def relative_point(self, t: Thing, link: Link) -> tuple[float, float] | None:
        st = self.staged[t.key]
        w, h = st.size
        if t.role is Role.GROUP:
            ux = [o[0] for o in st.offsets]
            uy = [o[1] for o in st.offsets]
            w = w + (max(ux) - min(ux))
            h = h + (max(uy) - min(uy))
        others = [self.staged[o] for o in link.others if o in self.staged and self.staged[o].points]
        if link.rel is Rel.INSIDE and link.others[0] in self.bands:
            band = self.bands[link.others[0]]
            return (0.5, self.in_band(band, h))
        if link.rel is Rel.ON and link.others[0] in self.bands:
            band = self.bands[link.others[0]]
            return (0.5, self.in_band(band, h, on=True))
        if link.rel is Rel.ABOVE and link.others[0] in self.bands:
            if any(x.rel in (Rel.INSIDE, Rel.ON) and x.others[0] in self.bands for x in t.links):
                return None  # "in the sky above the beach": the sky says where
            b = self.bands[link.others[0]].box
            return (0.5, _clamp(b.top - h / 2 - GAP, h / 2, 1 - h / 2))
        if link.rel in (Rel.UNDER, Rel.BELOW) and link.others[0] in self.bands:
            return None
        if not others:
            return None
        if link.rel is Rel.BETWEEN:
            centers = [o.union(0).center for o in others]
            if len(others) == 1:
                return centers[0]
            bottoms = [o.union(0).bottom for o in others]
            a, b = sorted((o.union(0) for o in others), key=lambda box: box.center_x)
            room = b.left - a.right - 2 * GAP
            if 0 < room < w and t.role is not Role.GROUP:
                factor = max(0.5, room / w)
                st.size = (st.size[0] * factor, st.size[1] * factor)
                h = st.size[1]
            return ((centers[0][0] + centers[1][0]) / 2, _clamp(sum(bottoms) / 2 - h / 2, h / 2, 1 - h / 2))
        o = others[0]
        ob = o.union(0)
        ox, oy = ob.center
        if link.rel is Rel.LEFT_OF:
            return _clamp(ob.left - GAP - w / 2, w / 2, 1 - w / 2), _clamp(ob.bottom - h / 2, h / 2, 1 - h / 2)
        if link.rel is Rel.RIGHT_OF:
            return _clamp(ob.right + GAP + w / 2, w / 2, 1 - w / 2), _clamp(ob.bottom - h / 2, h / 2, 1 - h / 2)
        if link.rel in (Rel.NEXT_TO, Rel.EDGE_OF):
            right = ob.right + GAP + w / 2
            left = ob.left - GAP - w / 2
            if link.rel is Rel.EDGE_OF:
                right, left = ob.right - w / 2, ob.left + w / 2
                x = right if ox < 0.5 else left
            else:
                x = right if right + w / 2 <= 1.0 and (ox <= 0.5 or left - w / 2 < 0) else left
            return _clamp(x, w / 2, 1 - w / 2), _clamp(ob.bottom - h / 2, h / 2, 1 - h / 2)
        if link.rel is Rel.ABOVE:
            y = ob.top - GAP - h / 2
            if t.head in FLYERS or singular(t.head) in FLYERS:
                sky = self.band_of(BandKind.SKY)
                y = min(y, (sky.top + sky.bottom) / 2 if sky else SKY_Y + 0.08)
            return ox, _clamp(y, h / 2, 1 - h / 2)
        if link.rel in (Rel.BELOW, Rel.UNDER):
            roomy = o.thing.head in ("table", "desk", "tree", "bridge", "bench", "umbrella", "arch", "counter")
            if roomy:
                return ox, _clamp(ob.bottom + h * 0.3 - h / 2, h / 2, 1 - h / 2)
            return ox, _clamp(ob.bottom + GAP + h / 2, h / 2, 1 - h / 2)
        if link.rel is Rel.ON:
            x = ox
            if link.part in (HRegion.LEFT, HRegion.LEFT_EDGE):
                x = ob.left + ob.width * 0.25
            elif link.part in (HRegion.RIGHT, HRegion.RIGHT_EDGE):
                x = ob.right - ob.width * 0.25
            bottom = ob.top + 0.25 * ob.height
            return x, _clamp(bottom - h / 2, h / 2, 1 - h / 2)
        if link.rel is Rel.IN_FRONT_OF:
            return _clamp(ox, w / 2, 1 - w / 2), _clamp(ob.bottom + 0.06 - h / 2, h / 2, 1 - h / 2)
        if link.rel is Rel.BEHIND:
            if t.head in FLYERS or singular(t.head) in FLYERS:  # the sun behind the hills: above their top
                sets = any(s.kind is StepKind.DIRECTION and s.direction[1] > 0 for s in t.steps)
                return ox, _clamp(ob.top - (0.3 if sets else h * 0.2), h / 2, 1 - h / 2)
            return ox, _clamp(ob.bottom - 0.06 - h / 2, h / 2, 1 - h / 2)
        if link.rel is Rel.AROUND or link.rel is Rel.FLANK:
            return ox, oy if link.rel is Rel.AROUND else _clamp(ob.bottom - h / 2, h / 2, 1 - h / 2)
        if link.rel is Rel.PART_OF:
            return ox, _clamp(ob.bottom - h / 2, h / 2, 1 - h / 2)
        if link.rel is Rel.INSIDE:
            return ox, oy
        return None

    def default_start(self, t: Thing) -> tuple[float, float]:
        """Where a moving thing starts when the words name only where it goes."""
        y = self.default_y(t)
        first = next((s for s in t.steps if s.kind not in (StepKind.MOVE, StepKind.ACROSS, StepKind.GROW,
                                                              StepKind.SHRINK)), t.steps[0] if t.steps else None)
        w, h = self.staged[t.key].size
        if first is None:
            return 0.5, y
        if first.kind is StepKind.DIRECTION:
            dx, dy = first.direction
            if dy < 0:
                return 0.5, 1 - h / 2 - 0.05 if t.head not in FLYERS or dx == 0 else y
            if dy > 0:
                return 0.5, h / 2 + 0.04
            return (0.85 if dx < 0 else 0.15), y
        if first.kind is StepKind.PLACE and first.region is not None:
            # toward a part of the frame: from the opposite side, or from the start of a "back to" path
            back = next((s for s in t.steps[1:] if s.kind is StepKind.PLACE and s.region is not None), None)
            if back is not None and len(t.steps) >= 2 and "back" in self.reading.prompt[
                    back.span[0]:back.span[1]].lower():
                return self.region_point(t, back.region)
            if any(s.kind is StepKind.DIRECTION and s.direction[1] < 0 for s in t.steps):
                return H_ANCHOR[first.region.h] if first.region.h is not HRegion.CENTER else 0.5, 1 - h / 2 - 0.05
            r = first.region
            mirrored = {HRegion.LEFT_EDGE: 0.85, HRegion.LEFT: 0.85, HRegion.CENTER: 0.15, HRegion.RIGHT: 0.15,
                        HRegion.RIGHT_EDGE: 0.15}[r.h]
            if r.h is HRegion.CENTER and r.v is not VRegion.MIDDLE:
                return 0.5, 1 - V_ANCHOR[r.v]
            return mirrored, self.region_point(t, r)[1]
        if first.kind in (StepKind.TOWARD, StepKind.INTO, StepKind.ONTO) and first.other in self.staged:
            o = self.staged[first.other]
            if o.points:
                ob = o.union(0)
                if first.kind is StepKind.ONTO:
                    if t.head in FLYERS or singular(t.head) in FLYERS:
                        return _clamp(ob.center_x + (0.25 if ob.center_x < 0.5 else -0.25), w / 2, 1 - w / 2), h / 2 + 0.02
                    return _clamp(ob.center_x + (-0.25 if ob.center_x >= 0.5 else 0.25), w / 2, 1 - w / 2), _clamp(
                        ob.bottom - h / 2, h / 2, 1 - h / 2)
                sx = 0.1 if ob.center_x >= 0.5 else 0.9
                sy = ob.bottom - h / 2
                if o.thing.role is Role.REGION:
                    sy = y
                if any(s.kind is StepKind.DIRECTION and s.direction[1] > 0 for s in t.steps):
                    sy = h / 2 + 0.05
                return sx, _clamp(sy, h / 2, 1 - h / 2)
        if first.kind is StepKind.INTO and first.other in self.bands:
            return 0.5, h / 2 + 0.05
        if first.kind is StepKind.FOLLOW:
            return 0.3, y
        if first.kind is StepKind.PASS and first.other in self.staged and self.staged[first.other].points:
            ox = self.staged[first.other].union(0).center_x
            return _clamp(ox - 0.35, w / 2, 1 - w / 2), y
        if first.kind is StepKind.ACROSS:
            return 0.15, y
        return 0.5, y

    # -- motion -----------------------------------------------------------------------------------
    def move(self, t: Thing) -> None:
        st = self.staged[t.key]
        w, h = st.size
        if t.still:
            return
        targets = {StepKind.PLACE, StepKind.TOWARD, StepKind.INTO, StepKind.ONTO, StepKind.BACK}
        has_target = any(s.kind in targets for s in t.steps)
        has_path = has_target or any(s.kind in (StepKind.DIRECTION, StepKind.ACROSS, StepKind.PASS) for s in t.steps)
        for step in t.steps:
            if step.kind is StepKind.DIRECTION and has_target and not self._said_outright(step):
                continue  # "descends from the top to the center": the places make the path
            if step.kind in (StepKind.GROW, StepKind.SHRINK) and has_path:
                continue  # applied to the last waypoint below
            cx, cy = st.points[-1]
            s = st.scales[-1]
            nxt: tuple[float, float] | None = None
            scale = s
            k = step.kind
            if k is StepKind.PLACE and step.region is not None and step.axes == "h" and t.start is None and (
                    step.region.v is VRegion.MIDDLE and len(st.points) == 1 and t.place is None):
                # "drifts to the right (above the mountains)": sideways at its height, from the other side
                tx = H_ANCHOR[step.region.h]
                if abs(tx - cx) < 0.3:
                    st.points[0] = (_clamp(tx - 0.4 if tx > 0.5 else tx + 0.4, w / 2, 1 - w / 2), cy)
                nxt = (tx, cy)
            elif k is StepKind.PLACE and step.region is not None:
                nxt = self.region_point(t, step.region)
                if step.region.v is VRegion.MIDDLE and t.place is not None and t.place.v is not VRegion.MIDDLE:
                    nxt = (nxt[0], V_ANCHOR[t.place.v])
                elif step.region.v is VRegion.MIDDLE and len(st.points) == 1 and t.start is not None and (
                        t.start.region is not None and t.start.region.v is VRegion.MIDDLE):
                    nxt = (nxt[0], cy)
            elif k is StepKind.DIRECTION:
                dx, dy = step.direction
                nx = cx + 0.6 * dx if dx else cx
                ny = cy + 0.55 * dy if dy else cy
                if dx:
                    nx = _clamp(nx, 0.15, 0.85) if abs(nx - cx) > 0.2 else (0.85 if dx > 0 else 0.15)
                if dy:
                    ny = _clamp(ny, h / 2 + 0.03, 1 - h / 2 - 0.03)
                    if abs(ny - cy) < 0.15:
                        ny = _clamp(cy + 0.3 * dy, h / 2, 1 - h / 2)
                nxt = (nx, ny)
                nxt = self._keep_relation_while_moving(t, nxt, (cx, cy))
            elif k is StepKind.ACROSS:
                if any(s2.kind in (StepKind.DIRECTION, StepKind.PLACE, StepKind.TOWARD, StepKind.INTO, StepKind.ONTO,
                                   StepKind.PASS, StepKind.FOLLOW) for s2 in t.steps if s2 is not step):
                    continue
                half = self._half_extent(st)
                if len(st.points) == 1 and t.start is None and (t.place is None or "h" not in t.place_words):
                    st.points[0] = (0.15 + half, cy)
                    nxt = (0.85 - half, cy)
                else:
                    nxt = (_clamp(cx + 0.5, 0, 0.85 - half) if cx < 0.5 else _clamp(cx - 0.5, 0.15 + half, 1), cy)
            elif k is StepKind.MOVE:
                if len(t.steps) > 1 or t.start is not None and len(st.points) > 1 or t.place is not None:
                    continue
                if len(st.points) == 1 and t.start is not None and t.start.other:
                    nxt = (_clamp(cx + (0.3 if cx < 0.5 else -0.3)), _clamp(cy - 0.1, h / 2, 1 - h / 2))
                elif t.head in FLYERS or singular(t.head) in FLYERS or t.role is Role.GROUP:
                    nxt = (_clamp(cx + 0.3 if cx < 0.6 else cx - 0.3), cy)
                else:
                    nxt = (_clamp(cx + 0.3 if cx < 0.6 else cx - 0.3), cy)
            elif k in (StepKind.TOWARD, StepKind.INTO, StepKind.ONTO) and step.other is not None:
                if step.other in self.bands:
                    band = self.bands[step.other]
                    nxt = (cx, self.in_band(band, h))
                    if band.kind is BandKind.GROUND:  # falls to the floor: lands low in it, beside where it was
                        nxt = (_clamp(cx + 0.15 if cx < 0.5 else cx - 0.15),
                               _clamp(band.box.top + 0.75 * band.box.height, h / 2, 1 - h / 2))
                elif step.other in self.staged and self.staged[step.other].points:
                    ob = self.staged[step.other].union(0)
                    if k is StepKind.ONTO:
                        nxt = (ob.center_x, _clamp(ob.top + 0.25 * ob.height - h / 2, h / 2, 1 - h / 2))
                    elif k is StepKind.INTO:
                        nxt = (ob.center_x, _clamp(ob.bottom - h / 2, h / 2, 1 - h / 2))
                    else:
                        side = -1 if cx < ob.center_x else 1
                        nxt = (_clamp(ob.center_x + side * (ob.width / 2 + w / 2 + GAP), w / 2, 1 - w / 2),
                               _clamp(ob.bottom - h / 2, h / 2, 1 - h / 2) if t.head not in FLYERS else ob.center_y)
                        if any(s2.kind is StepKind.DIRECTION and s2.direction[1] > 0 for s2 in t.steps):
                            nxt = (nxt[0], _clamp(ob.bottom - h / 2, h / 2, 1 - h / 2))
            elif k is StepKind.BACK:
                nxt = st.points[0]
            elif k is StepKind.GROW:
                scale = s * 2.0
                nxt = (cx, _clamp(cy + 0.12, 0, 1 - h * scale / 2))
            elif k is StepKind.SHRINK:
                scale = s * 0.45
                nxt = (cx, _clamp(cy - 0.15, h * scale / 2, 1))
            elif k is StepKind.LOOP:
                self._loop(t, step)
                continue
            elif k is StepKind.PASS and step.other in self.staged and self.staged[step.other].points:
                ob = self.staged[step.other].union(0)
                if len(st.points) == 1 and abs(cx - ob.center_x) < ob.width / 2 + w / 2 + 0.05:
                    st.points[0] = (_clamp(ob.center_x - 0.35, w / 2, 1 - w / 2), cy)
                    cx = st.points[0][0]
                side = 1 if cx < ob.center_x else -1
                nxt = (_clamp(ob.center_x + side * 0.35, w / 2, 1 - w / 2), cy)
                if any(s2.kind is StepKind.PLACE for s2 in t.steps):
                    continue
            elif k is StepKind.FOLLOW and step.other in self.staged:
                self._follow(t, step)
                continue  # "chases a mouse around a table, then jumps onto the table": the next steps go on
            elif k is StepKind.CONVERGE:
                self._converge(t)
                return
            elif k is StepKind.SWAP:
                self._swap(t)
                return
            if nxt is None:
                continue
            nxt = (_clamp(nxt[0]), _clamp(nxt[1]))
            if abs(nxt[0] - cx) < 1e-6 and abs(nxt[1] - cy) < 1e-6 and abs(scale - s) < 1e-6:
                continue
            st.points.append(nxt)
            st.scales.append(scale)
        self._spread_ends(st)
        growth = [s.kind for s in t.steps if s.kind in (StepKind.GROW, StepKind.SHRINK)]
        if growth and has_path and len(st.points) > 1:
            st.scales[-1] *= 2.0 if growth[0] is StepKind.GROW else 0.45

    @staticmethod
    def _spread_ends(st: Staged) -> None:
        """Start and end a little further apart, inside the same parts of the frame (a path drawn
        "from the left to the right" starts left of the left column's middle)."""
        if len(st.points) < 2:
            return
        (x0, y0), (x1, y1) = st.points[0], st.points[-1]
        dx = 0.03 * ((x1 > x0 + 0.05) - (x1 < x0 - 0.05))
        dy = 0.03 * ((y1 > y0 + 0.05) - (y1 < y0 - 0.05))
        for i, (x, y, sign) in ((0, (x0, y0, -1)), (len(st.points) - 1, (x1, y1, 1))):
            moved = (_clamp(x + sign * dx), _clamp(y + sign * dy))
            if Region.of_point(*moved) == Region.of_point(x, y):
                st.points[i] = moved

    def _said_outright(self, step: Step) -> bool:
        """A direction said as an adverb ("float up", "to the right") rather than by a verb ("rises")."""
        words = self.reading.prompt[step.span[0]:step.span[1]].lower()
        return bool(re.search(r"\b(?:up|down|upwards?|downwards?|left|right|leftwards?|rightwards?|skyward)\b", words))

    def _half_extent(self, st: Staged) -> float:
        xs = [o[0] for o in st.offsets]
        return (max(xs) - min(xs)) / 2 + st.size[0] / 2 - 0.05 if st.thing.role is Role.GROUP else 0.0

    def _keep_relation_while_moving(self, t: Thing, nxt: tuple[float, float], cur: tuple[float, float]) -> tuple[float, float]:
        """"rises over the mountains": the end is above them; "drifts right above the mountains": it stays above."""
        for link in t.links:
            if link.rel is Rel.ABOVE and link.others[0] in self.staged and self.staged[link.others[0]].points:
                ob = self.staged[link.others[0]].union(0)
                h = self.staged[t.key].size[1]
                if nxt[1] < cur[1]:  # rising over it: from its top to above it
                    top = ob.top - GAP - h / 2
                    return nxt[0], min(nxt[1], _clamp(top - 0.2, h / 2, 1))
                if nxt[1] == cur[1]:
                    return nxt
        for link in t.links:
            if link.rel is Rel.BEHIND and link.others[0] in self.staged and self.staged[link.others[0]].points:
                ob = self.staged[link.others[0]].union(0)
                h = self.staged[t.key].size[1]
                if nxt[1] > cur[1]:  # sets behind the hills
                    return nxt[0], _clamp(ob.top + h / 4, h / 2, 1 - h / 2)
        return nxt

    def _loop(self, t: Thing, step: Step) -> None:
        st = self.staged[t.key]
        cx, cy = st.points[-1]
        w, h = st.size
        rx, ry = 0.15, 0.12
        if step.other and step.other in self.staged and self.staged[step.other].points:
            ob = self.staged[step.other].union(0)
            cx, cy = ob.center
            rx, ry = max(rx, ob.width / 2 + w / 2 + 0.02), max(ry, ob.height / 2 + h / 2 + 0.02)
        cx = _clamp(cx, rx + w / 2, 1 - rx - w / 2) if rx + w / 2 < 0.5 else cx
        cy = _clamp(cy, ry + h / 2, 1 - ry - h / 2) if ry + h / 2 < 0.5 else cy
        pts = [(cx + rx * math.cos(a), cy - ry * math.sin(a)) for a in (math.pi / 2 + i * math.pi / 2 for i in range(5))]
        if not step.other:
            # circling in place: the loop goes round where it is, starting at its top
            pts = [(cx + rx * math.sin(a), cy - ry * math.cos(a)) for a in (i * math.pi / 2 for i in range(5))]
            pts = [(x, y + ry) for x, y in pts]
            cy += ry
        st.points = [(_clamp(x), _clamp(y)) for x, y in pts]
        st.scales = [st.scales[0]] * len(st.points)

    def _follow(self, t: Thing, step: Step) -> None:
        st = self.staged[t.key]
        lead = self.staged[step.other]
        if not lead.points:
            return
        if len(lead.points) > 2:
            # the lead goes round or along a path of several legs: one waypoint behind it, the same way
            (x0, y0), (x1, y1) = lead.points[0], lead.points[1]
            before = (_clamp(2 * x0 - x1), _clamp(2 * y0 - y1))
            if math.dist(lead.points[0], lead.points[-1]) < 0.05:
                before = lead.points[-2]  # round a loop: the chaser starts one waypoint behind on it
            st.points = [before, *lead.points[:-1]]
            st.scales = [1.0] * len(st.points)
            st.fixed_region = None
            return
        if len(lead.points) < 2:
            # the one chased moves: across the frame, away from the chaser
            lx, ly = lead.points[0]
            lead.points = [(_clamp(max(lx, 0.45), 0, 0.5), ly), (0.88, ly)]
            lead.scales = [1.0, 1.0]
            lead.fixed_region = None
        (x0, y0), (x1, y1) = lead.points[0], lead.points[-1]
        direction = 1 if x1 >= x0 else -1
        w, h = st.size
        lw = lead.size[0]
        back = direction * (lw / 2 + w / 2 + 0.05)
        ground = lambda ly: _clamp(ly + lead.size[1] / 2 - h / 2, h / 2, 1 - h / 2)  # noqa: E731
        st.points = [(_clamp(x0 - back, w / 2, 1 - w / 2), ground(y0)), (_clamp(x1 - back, w / 2, 1 - w / 2), ground(y1))]
        st.scales = [1.0, 1.0]
        st.fixed_region = None

    def _converge(self, t: Thing) -> None:
        st = self.staged[t.key]
        n = max(2, len(st.offsets))
        w = st.size[0]
        end = st.points[-1]
        meet = next((s.region for s in t.steps if s.kind is StepKind.PLACE and s.region is not None), None)
        if meet is None and t.place is not None:
            meet = t.place
        mx, my = self.region_point(t, meet) if meet is not None else (0.5, end[1])
        starts = [(0.1 + i * 0.8 / (n - 1), my) for i in range(n)]
        ends = [(mx + (i - (n - 1) / 2) * (w + GAP), my) for i in range(n)]
        st.member_paths = [[s, e] for s, e in zip(starts, ends)]
        st.points = [(0.5, my), (mx, my)]
        st.scales = [1.0, 1.0]
        st.fixed_region = None

    def _swap(self, t: Thing) -> None:
        st = self.staged[t.key]
        n = max(2, len(st.offsets))
        h = st.size[1]
        cy = st.points[0][1]
        paths = []
        for i in range(n):
            lane = cy + (i - (n - 1) / 2) * (h + 0.04)
            a, b = (0.15, 0.85) if i % 2 == 0 else (0.85, 0.15)
            paths.append([(a, _clamp(lane, h / 2, 1 - h / 2)), (b, _clamp(lane, h / 2, 1 - h / 2))])
        st.member_paths = paths
        st.points = [(0.5, cy), (0.5, cy)]
        st.scales = [1.0, 1.0]

    # -- groups -------------------------------------------------------------------------------------
    def formation(self, t: Thing) -> list[tuple[float, float]]:
        """Each member's offset from the group's place; the offsets average to zero, so the
        group's middle is where the words put it."""
        offsets = self._formation(t)
        mx = sum(o[0] for o in offsets) / len(offsets)
        my = sum(o[1] for o in offsets) / len(offsets)
        return [(x - mx, y - my) for x, y in offsets]

    def _formation(self, t: Thing) -> list[tuple[float, float]]:
        n = max(1, t.count)
        w, h = _size(t, self.aspect, self.crowd)
        kind = t.formation or ("row" if n <= 4 else "cluster")
        if any(link.rel is Rel.AROUND for link in t.links):
            kind = "circle"
        if any(link.rel is Rel.FLANK for link in t.links):
            kind = "flank"
        step = max(w * 1.5, w + 0.05, 0.3 / (n - 1) if n > 1 else 0.0)
        if kind == "circle":
            around = next((link.others[0] for link in t.links if link.rel is Rel.AROUND), None)
            inner = _size(self.reading.things[around], self.aspect, self.crowd) if around else (0.1, 0.1)
            rx = max(0.2, inner[0] / 2 + w / 2 + 0.08, n * (w + 0.03) / (2 * math.pi))
            ry = max(0.22, inner[1] / 2 + h / 2 + 0.04)
            ry = min(ry, 0.5 - h / 2 - 0.01)
            return [(rx * math.cos(-math.pi / 2 + 2 * math.pi * i / n), ry * math.sin(-math.pi / 2 + 2 * math.pi * i / n))
                    for i in range(n)]
        if kind == "flank":
            return [(0.0, 0.0)] * n  # placed around the other thing when staged
        if kind == "column":
            return [(0.0, (i - (n - 1) / 2) * (h + 0.02)) for i in range(n)]
        if kind == "pair":
            return [(i * w * 0.3, (i - (n - 1) / 2) * (h * 0.9 + 0.03)) for i in range(n)]
        if kind == "v":
            return [((i - (n - 1) / 2) * step, abs(i - (n - 1) / 2) * h * 0.9) for i in range(n)]
        if kind in ("crowd", "cluster", "scatter") and n > 4:
            per_row = math.ceil(n / 2)
            return [((i % per_row - (per_row - 1) / 2) * step + (w / 2 if i >= per_row else 0),
                     (0.0 if i < per_row else h * 0.7) - h * 0.35 + (0.03 * (i % 2) if kind == "scatter" else 0))
                    for i in range(n)]
        spread = min(step, 0.85 / max(n, 1))
        return [((i - (n - 1) / 2) * max(spread, w + 0.01), 0.0) for i in range(n)]

    def place_companion(self, t: Thing) -> None:
        st = self.staged[t.key]
        lead = self.staged[t.companion_of]
        if not lead.points:
            self.guess(t)
            return
        w, h = st.size
        lw, lh = lead.size
        moving = len(lead.points) > 1
        direction = 1 if not moving or lead.points[-1][0] >= lead.points[0][0] else -1
        if t.head in ("tray", "cup", "box", "ball", "bag", "book", "phone", "umbrella", "basket", "flower"):
            offset = (direction * lw * 0.3, -lh * 0.1)
        elif singular(t.head) in MOUNTS:  # "rides a horse": under the rider, feet level
            offset = (0.0, lh / 2 - h / 2)
        else:
            offset = (direction * (lw / 2 + w / 2 + GAP), lh / 2 - h / 2)
        st.points = [(_clamp(x + offset[0], w / 2, 1 - w / 2), _clamp(y + offset[1], h / 2, 1 - h / 2)) for x, y in lead.points]
        st.scales = list(lead.scales)

    # -- no overlap --------------------------------------------------------------------------------
    def _together(self, a: Thing, b: Thing) -> bool:
        """Whether the words put a and b together (so their boxes may overlap)."""
        for x, y in ((a, b), (b, a)):
            if x.companion_of == y.key:
                return True
            for link in x.links:
                if y.key in link.others and link.rel in (Rel.ON, Rel.UNDER, Rel.IN_FRONT_OF, Rel.BEHIND, Rel.INSIDE,
                                                          Rel.PART_OF, Rel.EDGE_OF, Rel.AROUND, Rel.FLANK):
                    return True
            for s in x.steps + ([x.start] if x.start else []):
                if s.other == y.key and s.kind in (StepKind.INTO, StepKind.ONTO, StepKind.LOOP):
                    return True
        return False

    def separate(self) -> None:
        """Move boxes the words did not put together apart, at the clip's start."""
        keys = [t.key for t in self.boxed if self.staged[t.key].points]
        for _ in range(3):
            moved = False
            for i, a in enumerate(keys):
                for b in keys[i + 1:]:
                    if self._together(self.reading.things[a], self.reading.things[b]):
                        continue
                    sa, sb = self.staged[a], self.staged[b]
                    ba, bb = sa.union(0), sb.union(0)
                    smaller = min(ba.area, bb.area)
                    if smaller <= 0 or ba.intersection(bb) / smaller <= 0.04:
                        continue
                    mover = self._mover(sa, sb)
                    if mover is None:
                        continue
                    still = sb if mover is sa else sa
                    if self._nudge(mover, still):
                        moved = True
            if not moved:
                break

    def _mover(self, a: Staged, b: Staged) -> Staged | None:
        def rank(s: Staged) -> int:
            if not s.placed_by_words:
                return 0
            if s.fixed_region is None:
                return 1
            return 2

        ra, rb = rank(a), rank(b)
        if ra == rb == 2:
            return b  # both placed in a part of the frame: nudge the later one within its part
        return a if ra < rb else b

    def _nudge(self, mover: Staged, still: Staged) -> bool:
        mb, sbx = mover.union(0), still.union(0)
        options = []
        right = sbx.right + GAP + mb.width / 2
        left = sbx.left - GAP - mb.width / 2
        below = sbx.bottom + GAP + mb.height / 2
        above = sbx.top - GAP - mb.height / 2
        cx, cy = mb.center
        w, h = mover.size
        for nx, ny in ((right, cy), (left, cy), (cx, above), (cx, below)):
            if not (mb.width / 2 <= nx <= 1 - mb.width / 2 and mb.height / 2 <= ny <= 1 - mb.height / 2):
                continue
            if any(not (w / 2 <= x + nx - cx <= 1 - w / 2 and h / 2 <= y + ny - cy <= 1 - h / 2)
                   for x, y in mover.points[1:]):
                continue  # the rest of its path would leave the frame
            if mover.fixed_region is not None and any(
                Region.of_point(x + nx - cx, y + ny - cy) != Region.of_point(x, y) for x, y in mover.points
            ):
                continue
            options.append((abs(nx - cx) + abs(ny - cy), nx, ny))
        if not options:
            return False
        _, nx, ny = min(options)
        dx, dy = nx - cx, ny - cy
        mover.points = [(x + dx, y + dy) for x, y in mover.points]
        if mover.member_paths is not None:
            mover.member_paths = [[(x + dx, y + dy) for x, y in p] for p in mover.member_paths]
        return True

    # -- output ---------------------------------------------------------------------------------------
    def keyframes(self, st: Staged, member: int | None = None) -> tuple[Keyframe, ...]:
        n = len(st.points)
        if st.member_paths is not None and member is not None:
            path = st.member_paths[member]
            n = len(path)
            w, h = st.size
            return tuple(Keyframe(i / (n - 1) if n > 1 else 0.0, _box_around(x, y, w, h)) for i, (x, y) in enumerate(path))
        if n == 1:
            return (Keyframe(0.0, st.box(0, member).fitted()),)
        return tuple(Keyframe(i / (n - 1), st.box(i, member).fitted()) for i in range(n))

    def flank(self, st: Staged) -> None:
        t = st.thing
        link = next((lk for lk in t.links if lk.rel is Rel.FLANK), None)
        if link is None or link.others[0] not in self.staged or not self.staged[link.others[0]].points:
            return
        ob = self.staged[link.others[0]].union(0)
        w, h = st.size
        n = max(2, len(st.offsets))
        cy = _clamp(ob.bottom - h / 2, h / 2, 1 - h / 2)
        xs = [ob.left - GAP - w / 2, ob.right + GAP + w / 2]
        while len(xs) < n:
            xs.insert(0, xs[0] - w - GAP)
            if len(xs) < n:
                xs.append(xs[-1] + w + GAP)
        st.points = [(ob.center_x, cy)] + st.points[1:]
        st.offsets = [(x - ob.center_x, 0.0) for x in xs[:n]]


_BAND_H = {HRegion.LEFT_EDGE: (0.0, 0.3), HRegion.LEFT: (0.1, 0.5), HRegion.CENTER: (0.0, 1.0),
           HRegion.RIGHT: (0.5, 0.9), HRegion.RIGHT_EDGE: (0.7, 1.0)}
_BAND_V = {VRegion.TOP: (0.0, 0.33), VRegion.MIDDLE: (0.35, 0.65), VRegion.BOTTOM: (0.67, 1.0)}


def _band_at(kind: BandKind, place: Region, box: Box) -> Box:
    """A band the words put in a part of the frame ("the sea across the bottom", "a pond on the
    left"): its usual height when that lies in the named row, else the row; the named columns."""
    left, right = _BAND_H[place.h]
    if Region.of_box(box).v is place.v:
        top, bottom = box.top, box.bottom
    else:
        top, bottom = _BAND_V[place.v]
    if kind is BandKind.HORIZON:
        middle = (top + bottom) / 2
        top, bottom = middle - 0.03, middle + 0.03
    return Box(left, top, right, bottom)


@dataclass(frozen=True)
class StagedLayout:
    subjects: tuple[Subject, ...]
    groups: tuple[Group, ...]
    regions: tuple[Band, ...]
    guessed: tuple[str, ...]  # names no words placed


def stage(reading: Reading, aspect: float, color_for: Callable[[str, int], str]) -> StagedLayout:
    stage_ = Stage(reading, aspect)
    stage_.stage()
    for st in stage_.staged.values():
        if any(link.rel is Rel.FLANK for link in st.thing.links):
            stage_.flank(st)
    subjects: list[Subject] = []
    groups: list[Group] = []
    for i, t in enumerate(stage_.boxed):
        st = stage_.staged[t.key]
        if not st.points:
            stage_.guess(t)
        color = color_for(t.name, i)
        if t.role is Role.GROUP:
            n = len(st.member_paths) if st.member_paths is not None else len(st.offsets)
            paths = [stage_.keyframes(st, m) for m in range(n)]
            groups.append(Group.of_paths(t.name, paths, color))
        else:
            subjects.append(Subject(t.name, color, stage_.keyframes(st)))
    guessed = tuple(reading.things[k].name for k in reading.order if k in stage_.guessed)
    return StagedLayout(tuple(subjects), tuple(groups), tuple(stage_.bands.values()), guessed)
