"""Spatial phrasing both ways.

Layout -> words: :func:`describe` writes a spatial clause in the small vocabulary video
models follow best: frame regions ("the left edge", "the top right corner"), motion from
the keyframes ("moves from the left edge to the center", "remains stationary on the
right", "rises from the bottom to the top"), speed words from path length, and explicit
relations ("to the left of the house", never "near the house").

Words -> layout: :func:`draft_layout` finds the subjects a prompt names (determiner +
adjectives + noun, a small heuristic) and places each by its spatial phrases, so a user can
start from text and refine on the canvas. Both directions share one region vocabulary, so
``describe -> draft -> describe`` keeps each subject's regions and direction.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
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
_STOP_WORDS = frozenset(
    """
    and or but nor while as with without from to toward towards into onto in on at of off over under
    above below beneath underneath behind before after between across along through around near beside
    by for against up down out then than so yet if when where which who whom whose that this these those
    is are was were be been being am has have had do does did will would can could should may might must
    it he she they them him her we you i me us its their there here not no very too also just only same
    other while whilst left right center centre middle top bottom slowly quickly
    """.split()
)
_VERBS = frozenset(
    """
    move moves moving rolls roll rolling fly flies flying walk walks walking run runs running rise rises
    rising fall falls falling remain remains remaining stay stays staying sit sits sitting stand stands
    standing drive drives driving jump jumps swim swims float floats glide glides hover hovers spin spins
    slide slides cross crosses enter enters exit exits leave leaves appear appears disappear disappears go
    goes come comes travel travels turn turns climb climbs drop drops descend descends ascend ascends sink
    sinks bounce bounces dance dances wave waves look looks watch watches hold holds carry carries follow
    follows chase chases pass passes approach approaches circle circles land lands rest rests lie lies
    hang hangs grow grows shrink shrinks play plays ride rides sail sails drift drifts race races speed
    speeds zoom zooms rotate rotates shine shines glow glows wait waits sleep sleeps eat eats emerge emerges
    hop hops crawl crawls march marches stroll strolls dash dashes sprint sprints wander wanders head heads
    sways bobs swings flows pours blows burns opens closes stops starts begins continues keeps lands
    """.split()
)
_ING_NOUNS = frozenset(
    "building ceiling painting ring king wing swing string thing spring sling duckling seedling pudding "
    "wedding morning evening clothing earring sibling darling ping".split()
)
REGION_NOUNS = frozenset(
    """
    left right center centre middle top bottom edge corner side half part screen frame image picture scene
    shot view video clip canvas camera background foreground distance way time moment end start beginning
    direction lens viewer audience place spot area position
    """.split()
)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_ADVERB_OK = frozenset("only".split())


@dataclass(frozen=True)
class Mention:
    """Where a prompt names a subject: the whole phrase (with determiner) and the name."""

    span: tuple[int, int]
    name: str


def _is_ing_or_ed(word: str) -> bool:
    w = word.lower()
    if w in _ING_NOUNS or "-" in w:
        return False
    return (w.endswith("ing") and len(w) > 4) or (w.endswith("ed") and len(w) > 4)


def _looks_like_verb(word: str, collected: int) -> bool:
    w = word.lower()
    if collected == 0:
        # first word after the determiner: "a flying bird", "the rolling ball" are adjectives
        return w in _VERBS and not w.endswith(("ing", "ed"))
    if w in _VERBS:
        return True
    if _is_ing_or_ed(w):
        return True
    # after a noun, a word ending in -s is most often the verb ("a ball rolls")
    return w.endswith("s") and not w.endswith(("ss", "us", "is", "'s")) and len(w) > 3


def find_noun_phrases(prompt: str) -> list[Mention]:
    """Noun phrases of the form determiner + optional adjectives + noun ("a yellow ball",
    "the blue cube"), leaving out phrases for parts of the frame ("the left edge")."""
    words = [(m.group(0), m.start(), m.end()) for m in _WORD_RE.finditer(prompt)]
    out: list[Mention] = []
    i = 0
    while i < len(words):
        word, start, _ = words[i]
        if word.lower() not in DETERMINERS:
            i += 1
            continue
        collected: list[tuple[str, int, int]] = []
        j = i + 1
        while j < len(words) and len(collected) < 4:
            w, ws, we = words[j]
            gap = prompt[words[j - 1][2] : ws]
            if gap.strip():  # punctuation between the words ends the phrase
                break
            lw = w.lower().strip("'-")
            if not lw or lw in DETERMINERS or lw in _STOP_WORDS or _looks_like_verb(lw, len(collected)):
                break
            if lw.endswith("ly") and lw not in _ADVERB_OK and len(collected) > 0:
                break
            collected.append((w, ws, we))
            j += 1
        if collected:
            head = collected[-1][0].lower().strip("'-")
            if head not in REGION_NOUNS and not any(c[0].lower() in REGION_NOUNS for c in collected):
                name = " ".join(c[0] for c in collected)
                out.append(Mention((start, collected[-1][2]), name))
        i = max(j, i + 1)
    return out


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


# -- parsing spatial phrases --------------------------------------------------------------------


class PhraseKind(Enum):
    PATH = "path"  # from A to B (then to C)
    FROM = "from"  # from A (no destination)
    TO = "to"  # to / towards A
    PLACE = "place"  # on / at / in A
    RELATION = "relation"  # left of / above / in front of another subject
    TOWARD = "toward"  # towards another subject
    VERTICAL = "vertical"  # rises / falls
    HORIZONTAL = "horizontal"  # moves left / rightward
    STILL = "still"  # remains stationary


class Relation(Enum):
    LEFT_OF = "to the left of"
    RIGHT_OF = "to the right of"
    ABOVE = "above"
    BELOW = "below"
    IN_FRONT_OF = "in front of"
    BEHIND = "behind"
    INSIDE = "in the middle of"
    NEAR = "near"  # vague: placed to the right, and lint flags it


_RELATION_WORDS: list[tuple[str, Relation]] = [
    (r"to\s+the\s+left\s+of|left\s+of", Relation.LEFT_OF),
    (r"to\s+the\s+right\s+of|right\s+of", Relation.RIGHT_OF),
    (r"above|over|on\s+top\s+of|atop", Relation.ABOVE),
    (r"below|under|underneath|beneath", Relation.BELOW),
    (r"in\s+front\s+of", Relation.IN_FRONT_OF),
    (r"behind|in\s+back\s+of", Relation.BEHIND),
    (r"in\s+the\s+(?:middle|center|centre)\s+of|inside|within", Relation.INSIDE),
    (r"next\s+to|beside|near|close\s+to|nearby|alongside|by", Relation.NEAR),
]
_RELATION_RE = re.compile(
    r"\b(?:" + "|".join(f"(?P<rel{i}>{p})" for i, (p, _) in enumerate(_RELATION_WORDS)) + r")\s+", re.IGNORECASE
)
_PATH_RE = re.compile(
    r"\bfrom\s+" + _region_pattern("a") + r"(?:\s+(?:all\s+the\s+way\s+)?(?:to|toward|towards|into|onto|until)\s+"
    + _region_pattern("b") + r")?",
    re.IGNORECASE,
)
_THEN_RE = re.compile(
    r"\s*,?\s*(?:and\s+)?(?:then\s+)?(?:back\s+)?(?:to|toward|towards|into)\s+" + _region_pattern("c"), re.IGNORECASE
)
_BACK_RE = re.compile(r"\s*,?\s*(?:and|then)\s+back(?:\s+again)?\b(?!\s+to)", re.IGNORECASE)
_TO_RE = re.compile(r"\b(?:to|toward|towards|into|onto)\s+" + _region_pattern("a"), re.IGNORECASE)
_PLACE_RE = re.compile(
    r"\b(?:on|at|in|along|across|near|by|from)\s+" + _region_pattern("a"), re.IGNORECASE
)
_TOWARD_SUBJECT_RE = re.compile(r"\b(?:toward|towards|to|into|up\s+to)\s+", re.IGNORECASE)
_VERTICAL_RE = re.compile(
    r"\b(?P<up>rises|rising|rise|ascends|ascending|ascend|climbs|climbing|(?:flies|floats|moves|goes|jumps)\s+up(?:wards?)?|upwards?)\b"
    r"|\b(?P<down>falls|falling|fall|drops|dropping|descends|descending|descend|sinks|sinking|"
    r"(?:flies|floats|moves|goes|comes)\s+down(?:wards?)?|downwards?)\b",
    re.IGNORECASE,
)
_HORIZONTAL_RE = re.compile(
    r"\b(?:(?:moves|moving|walks|walking|runs|running|drives|driving|rolls|rolling|flies|flying|slides|sliding|"
    r"turns|heads|swims|swimming|goes|going)\s+(?P<l1>left)|(?P<l2>leftwards?)|(?:moves|moving|walks|walking|runs|"
    r"running|drives|driving|rolls|rolling|flies|flying|slides|sliding|turns|heads|swims|swimming|goes|going)\s+"
    r"(?P<r1>right)|(?P<r2>rightwards?))\b",
    re.IGNORECASE,
)
_STILL_RE = re.compile(
    r"\b(?:remains?|stays?|sits?|stands?|rests?|waits?|is|are)\s+(?:completely\s+|perfectly\s+)?"
    r"(?:stationary|still|motionless|static|in\s+place|put|unmoving|fixed)\b"
    r"|\b(?:does\s+not|doesn't|never)\s+move\b",
    re.IGNORECASE,
)
_SENTENCE_END_RE = re.compile(r"[.!?;\n]+")


@dataclass(frozen=True)
class SpatialPhrase:
    """One spatial phrase found in a prompt, with the subject it was attributed to."""

    kind: PhraseKind
    span: tuple[int, int]
    regions: tuple[Region, ...] = ()
    relation: Relation | None = None
    other: str | None = None  # the other subject's key, for RELATION and TOWARD
    direction: tuple[int, int] = (0, 0)  # for VERTICAL / HORIZONTAL: (dx, dy) signs, y down
    subject: str | None = None  # key of the subject it belongs to


@dataclass(frozen=True)
class PromptParse:
    """What :func:`parse_prompt` found: the subjects (keys -> display names), where each is
    mentioned, and the spatial phrases attributed to them."""

    subjects: dict[str, str]
    mentions: tuple[tuple[tuple[int, int], str], ...]  # (span, subject key)
    phrases: tuple[SpatialPhrase, ...]

    def phrases_for(self, key: str) -> list[SpatialPhrase]:
        return [p for p in self.phrases if p.subject == key]


def _same_subject(name: str, other: str) -> bool:
    """"the ball" names the same subject as "a yellow ball"; "a red ball" does not."""
    a, b = name_key(name).split(), name_key(other).split()
    if not a or not b or a[-1] != b[-1]:
        return False
    return set(a) <= set(b) or set(b) <= set(a)


def parse_prompt(prompt: str, subjects: Sequence[str] | None = None) -> PromptParse:
    """Find the subjects and spatial phrases of ``prompt``. With ``subjects`` (names already
    known, e.g. from the canvas) those are looked for instead of guessing noun phrases."""
    prompt = prompt if isinstance(prompt, str) else ""
    names: dict[str, str] = {}
    mentions: list[tuple[tuple[int, int], str]] = []
    if subjects is not None:
        for name in subjects:
            if not isinstance(name, str) or not name.strip():
                continue
            key = name_key(name)
            names.setdefault(key, " ".join(name.split()))
            for span in find_subject_spans(prompt, name):
                start = span[0]
                # include a determiner just before the name in the mention
                m = re.search(r"\b(\w+)\s+$", prompt[: span[0]])
                if m and m.group(1).lower() in DETERMINERS:
                    start = m.start(1)
                mentions.append(((start, span[1]), key))
        # a span claimed by a longer name is not also a mention of a shorter one
        mentions.sort(key=lambda m: (m[0][0], -(m[0][1] - m[0][0])))
        kept: list[tuple[tuple[int, int], str]] = []
        for m in mentions:
            if kept and m[0][0] < kept[-1][0][1]:
                continue
            kept.append(m)
        mentions = kept
    else:
        for mention in find_noun_phrases(prompt):
            key = next((k for k, n in names.items() if _same_subject(mention.name, n)), None)
            if key is None:
                key = name_key(mention.name)
                names[key] = mention.name
            elif len(mention.name.split()) > len(names[key].split()):
                names[key] = mention.name  # keep the fullest name ("the ball" then "the yellow ball")
            mentions.append((mention.span, key))
    mentions.sort()

    sentence_of = _sentence_index(prompt)
    taken = [False] * (len(prompt) + 1)
    phrases: list[SpatialPhrase] = []

    def free(a: int, b: int) -> bool:
        return not any(taken[a:b])

    def take(a: int, b: int) -> None:
        for i in range(a, b):
            taken[i] = True

    def owner_before(pos: int, exclude: str | None = None) -> str | None:
        best = None
        for (s, e), key in mentions:
            if e <= pos and sentence_of(s) == sentence_of(pos) and key != exclude:
                best = key
        return best

    def owner_after(pos: int, exclude: str | None = None) -> str | None:
        for (s, e), key in mentions:
            if s >= pos and sentence_of(s) == sentence_of(pos) and key != exclude:
                return key
        return None

    def owner(pos: int) -> str | None:
        return owner_before(pos) or owner_after(pos)

    for (s, e), _ in mentions:
        take(s, e)

    # relations and movement towards another subject: the words must run into a mention
    mention_at = {s: key for (s, e), key in mentions}
    mention_end = {s: e for (s, e), key in mentions}
    for regex, is_toward in ((_RELATION_RE, False), (_TOWARD_SUBJECT_RE, True)):
        for m in regex.finditer(prompt):
            if m.end() not in mention_at or not free(m.start(), m.end()):
                continue
            other = mention_at[m.end()]
            subject = owner_before(m.start(), exclude=other) or owner_after(mention_end[m.end()], exclude=other)
            if subject is None:
                continue
            if is_toward:
                phrase = SpatialPhrase(PhraseKind.TOWARD, (m.start(), mention_end[m.end()]), other=other, subject=subject)
            else:
                i = next(i for i in range(len(_RELATION_WORDS)) if m.group(f"rel{i}"))
                phrase = SpatialPhrase(
                    PhraseKind.RELATION, (m.start(), mention_end[m.end()]), relation=_RELATION_WORDS[i][1],
                    other=other, subject=subject,
                )
            phrases.append(phrase)
            take(m.start(), m.end())

    for m in _PATH_RE.finditer(prompt):
        if not free(m.start(), m.end()):
            continue
        regions = [_lookup_region(m.group("a"))]
        end = m.end()
        if m.group("b"):
            regions.append(_lookup_region(m.group("b")))
            while True:
                t = _THEN_RE.match(prompt, end)
                if not t or not free(t.start(), t.end()):
                    break
                regions.append(_lookup_region(t.group("c")))
                end = t.end()
            back = _BACK_RE.match(prompt, end)
            if back:
                regions.append(regions[0])
                end = back.end()
        kind = PhraseKind.PATH if len(regions) > 1 else PhraseKind.FROM
        phrases.append(SpatialPhrase(kind, (m.start(), end), tuple(regions), subject=owner(m.start())))
        take(m.start(), end)

    for regex, kind in ((_TO_RE, PhraseKind.TO), (_PLACE_RE, PhraseKind.PLACE)):
        for m in regex.finditer(prompt):
            if m.group("a") is None or not free(m.start(), m.end()):
                continue
            after = prompt[m.end() : m.end() + 4].lower()
            if re.match(r"\s+of\b", after):
                continue  # "to the left of <something not a subject>": not a place phrase
            phrases.append(
                SpatialPhrase(kind, m.span(), (_lookup_region(m.group("a")),), subject=owner(m.start()))
            )
            take(*m.span())

    for m in _VERTICAL_RE.finditer(prompt):
        if free(*m.span()):
            d = (0, -1) if m.group("up") else (0, 1)
            phrases.append(SpatialPhrase(PhraseKind.VERTICAL, m.span(), direction=d, subject=owner(m.start())))
    for m in _HORIZONTAL_RE.finditer(prompt):
        if free(*m.span()):
            d = (-1, 0) if (m.group("l1") or m.group("l2")) else (1, 0)
            phrases.append(SpatialPhrase(PhraseKind.HORIZONTAL, m.span(), direction=d, subject=owner(m.start())))
    for m in _STILL_RE.finditer(prompt):
        phrases.append(SpatialPhrase(PhraseKind.STILL, m.span(), subject=owner(m.start())))

    phrases.sort(key=lambda p: p.span)
    return PromptParse(names, tuple(mentions), tuple(phrases))


def _sentence_index(prompt: str):
    ends = [m.end() for m in _SENTENCE_END_RE.finditer(prompt)]

    def index(pos: int) -> int:
        return bisect.bisect_right(ends, pos)

    return index


# -- words -> draft layout ----------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """A layout drafted from a prompt. ``unplaced`` subjects were named but no phrase placed
    them; they got a default position the user should check."""

    layout: Layout
    subjects_found: tuple[str, ...]
    unplaced: tuple[str, ...]
    phrases: tuple[SpatialPhrase, ...] = field(default=(), repr=False)


PALETTE = ("#d33", "#33d", "#2a2", "#e90", "#a3c", "#0aa", "#c63", "#888")
COLOR_WORDS = {
    "red": "#d33", "yellow": "#ec0", "blue": "#33d", "green": "#2a2", "orange": "#e80", "purple": "#93c",
    "pink": "#e6a", "white": "#eee", "black": "#222", "gray": "#888", "grey": "#888", "brown": "#853",
    "gold": "#db3", "golden": "#db3", "silver": "#bbb", "teal": "#0aa", "cyan": "#0cc",
}
_DEFAULT_SLOTS = (HRegion.CENTER, HRegion.LEFT, HRegion.RIGHT, HRegion.LEFT_EDGE, HRegion.RIGHT_EDGE)
_REL_OFFSET = 0.3


def _box_size(aspect: float, scale: float = 1.0) -> tuple[float, float]:
    width = 0.2
    height = min(0.4, max(0.15, width * aspect * 0.9))
    return width * scale, height * scale


def _box_at(region_or_point: Region | tuple[float, float], aspect: float, scale: float = 1.0) -> Box:
    x, y = region_or_point.anchor if isinstance(region_or_point, Region) else region_or_point
    w, h = _box_size(aspect, scale)
    return Box.from_center(x, y, w, h).fitted()


def _color_for(name: str, index: int) -> str:
    for word in name.lower().split():
        if word in COLOR_WORDS:
            return COLOR_WORDS[word]
    return PALETTE[index % len(PALETTE)]


def _path_keyframes(points: Sequence[Region | tuple[float, float]], aspect: float, scale: float) -> tuple[Keyframe, ...]:
    deduped: list[Region | tuple[float, float]] = []
    for p in points:
        if not deduped or deduped[-1] != p:
            deduped.append(p)
    if len(deduped) == 1:
        return (Keyframe(0.0, _box_at(deduped[0], aspect, scale)),)
    n = len(deduped) - 1
    return tuple(Keyframe(i / n, _box_at(p, aspect, scale)) for i, p in enumerate(deduped))


def _shift(region: Region, dh: int, dv: int) -> Region:
    hi = min(len(_H_ORDER) - 1, max(0, _H_ORDER.index(region.h) + dh))
    vs = list(VRegion)
    vi = min(2, max(0, vs.index(region.v) + dv))
    return Region(_H_ORDER[hi], vs[vi])


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


def _relative_point(relation: Relation | None, ox: float, oy: float) -> tuple[float, float]:
    d = _REL_OFFSET
    if relation is Relation.LEFT_OF:
        x, y = (ox - d, oy) if ox - d >= 0.05 else (0.05, oy)
    elif relation in (Relation.RIGHT_OF, Relation.NEAR, None):
        x, y = (ox + d, oy) if ox + d <= 0.95 else (ox - d, oy)
    elif relation is Relation.ABOVE:
        x, y = ox, max(0.08, oy - d)
    elif relation is Relation.BELOW:
        x, y = ox, min(0.92, oy + d)
    elif relation is Relation.IN_FRONT_OF:
        x, y = ox, min(0.92, oy + 0.1)
    elif relation is Relation.BEHIND:
        x, y = ox, max(0.08, oy - 0.1)
    else:  # INSIDE
        x, y = ox, oy
    return min(0.95, max(0.05, x)), min(0.95, max(0.05, y))


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


def _subject_clause(subject: Subject, motion: Motion) -> str:
    who = subject_phrase(subject.name)
    if not motion.moving:
        return f"{who} remains stationary {motion.waypoints[0].location}"
    if len(motion.waypoints) == 1:
        return f"{who} stays {motion.waypoints[0].location}"
    speed = f"{motion.speed.value} " if motion.speed in (Speed.SLOW, Speed.FAST) else ""
    route = f"from {motion.waypoints[0].words} to {motion.waypoints[1].words}"
    route += "".join(f", then to {r.words}" for r in motion.waypoints[2:])
    clause = f"{who} {speed}{_verb(motion)} {route}"
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
    return f"{subject_phrase(band.name)} spans {Region.of_box(band.box).words}"


def describe_subject(subject: Subject) -> str:
    """The clause for one subject alone, without the sentence's capital and full stop."""
    return _subject_clause(subject, motion_of(subject))
