"""Reading the spatial language of a prompt: who is in the shot, where, and how they move.

Hand rules over English as creators write it (no statistical model: spaCy's official English
models are not on the package index, and a shot prompt is a small, regular language):

- noun phrases with adjectives, counts in words or digits, plurals and collectives ("five
  adults", "3 balloons", "a row of houses", "a pair of swans", "clouds");
- subject, group, region (sky, ground, water, horizon) or backdrop ("in a snowy forest");
- places in the frame ("in the top right corner", "the left third", "along the bottom"), depth
  ("in the foreground"), and places relative to another subject ("on the left side of the sofa",
  "between A and B", "on top of", "under", "in front of", "behind", "next to", "around");
- motion: sources, targets and paths (from / to / toward / across / along / around / past / into /
  out of / onto), verbs with a direction (rise, descend, land, circle, dive), motion between
  subjects (chases, follows, passes, toward each other, meet), "then" sequences as waypoints;
- coordination ("while", "as", "and", "with"), pronouns ("its left", "toward it", "between them").

:func:`read_prompt` returns a :class:`Reading`; :mod:`shotsketch.core.staging` turns it into boxes.
Spans index the original prompt, so lint and the editor can point at the words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from shotsketch.core.layout import BandKind, name_key
from shotsketch.core.phrasing import (
    _FRAME_NOUN,
    _region_pattern,
    CENTER,
    DETERMINERS,
    HRegion,
    Region,
    VRegion,
    _lookup_region,
)

# -- vocabulary ---------------------------------------------------------------------------------

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "a pair of": 2, "both": 2, "several": 4,
    "many": 6, "a few": 3, "dozens of": 12, "some": 3,
}
MAX_COUNT = 12

COLLECTIVES = {
    # word: (count when none is given, formation)
    "row": (4, "row"), "line": (4, "row"), "column": (4, "column"), "queue": (4, "row"),
    "circle": (5, "circle"), "ring": (5, "circle"), "pair": (2, "row"), "couple": (2, "row"),
    "group": (4, "cluster"), "crowd": (7, "crowd"), "flock": (5, "scatter"), "herd": (5, "cluster"),
    "pack": (4, "cluster"), "swarm": (6, "scatter"), "school": (5, "scatter"), "bunch": (4, "cluster"),
    "cluster": (4, "cluster"), "set": (3, "row"), "team": (5, "row"), "family": (4, "row"),
    "fleet": (4, "row"), "stack": (3, "column"), "pile": (3, "cluster"),
}

BAND_WORDS: dict[str, BandKind] = {
    **{w: BandKind.SKY for w in "sky skies heavens".split()},
    **{w: BandKind.WATER for w in "sea ocean lake pond river water bay lagoon stream waves surf".split()},
    **{w: BandKind.GROUND for w in "ground grass field meadow floor road highway street beach sand desert "
       "snowfield lawn pavement sidewalk runway track".split()},
    "horizon": BandKind.HORIZON,
}

BACKDROP_WORDS = frozenset(
    """
    park room forest woods city town village kitchen garden jungle valley landscape world space night day
    morning evening afternoon universe countryside studio office classroom hallway corridor stage scene
    background foreground distance air area place gym lab laboratory workshop cafe café restaurant diner library
    warehouse factory bedroom bathroom attic basement lobby gallery museum mall arena stadium club nightclub pub
    """.split()
)
"""Settings: a backdrop unless the words place something relative to it ("above a forest")."""

WEATHER_WORDS = frozenset("rain snow snowflakes fog mist haze storm wind sunlight light darkness dusk dawn "
                          "sunset sunsets sunrise sunrises twilight nightfall daybreak moonlight drizzle hail sleet "
                          "snowfall rainfall downpour smoke steam dust".split())
"""Over the whole frame: never a box (a sunset is the sky's light, not a thing; "the sun" is one)."""

CLOTHING_WORDS = frozenset(
    """
    coat dress hat jacket shirt suit scarf uniform gown cloak boots shoes glasses sunglasses helmet costume sweater
    hoodie skirt robe apron jeans cap mask gloves raincoat tuxedo kimono
    """.split()
)
"""What a subject wears ("a woman in a red coat"): part of the subject, not a box."""

PART_WORDS = frozenset("roof top edge side corner middle center centre front back bottom surface foot base tip".split())

PRONOUNS_OBJECT = frozenset("it them him her each".split())

# Motion verbs: their direction when the words give no other (dx, dy), y down.
UP_VERBS = frozenset("rise rises rising rose ascend ascends ascending climb climbs climbing launch launches "
                     "launching soar soars soaring lift lifts".split())
DOWN_VERBS = frozenset("fall falls falling fell descend descends descending drop drops dropping sink sinks "
                       "sinking dive dives diving land lands landing sets setting plunge plunges".split())
LOOP_VERBS = frozenset("circle circles circling orbit orbits orbiting spin spins spinning twirl twirls".split())
FOLLOW_VERBS = frozenset("chase chases chasing follow follows following pursue pursues pursuing".split())
PASS_VERBS = frozenset("pass passes passing overtake overtakes overtaking".split())
CARRY_VERBS = frozenset("carry carries carrying hold holds holding push pushes pushing pull pulls pulling "
                        "walk walks walking lead leads leading drag drags dragging".split())
MOTION_VERBS = frozenset(
    """
    move moves moving roll rolls rolling fly flies flying walk walks walking run runs running drive drives driving
    jump jumps jumping swim swims swimming float floats floating glide glides gliding hover hovers slide slides
    cross crosses crossing enter enters exit exits leave leaves go goes going come comes travel travels turn turns
    bounce bounces bouncing dance dances race races racing speed speeds zoom zooms ride rides riding sail sails
    sailing drift drifts drifting hop hops hopping crawl crawls crawling march marches marching stroll strolls dash
    dashes sprint sprints sprinting wander wanders wandering head heads heading gallop gallops galloping waddle
    waddles waddling flutter flutters fluttering hurry hurries rush rushes creep creeps step steps skate skates
    pulls paddle paddles row rows stumble stumbles tumble tumbles trot trots jog jogs jogging cruise cruises
    buzz buzzes buzzing flit flits flitting dart darts darting zip zips zigzag zigzags scurry scurries roam roams
    scatter scatters scattering swirl swirls swirling lower lowers lowering raise raises swing swoop swoops dive
    flock flocks gather gathers splash splashes skip skips leap leaps leaping pace paces circles
    """.split()
) | UP_VERBS | DOWN_VERBS | LOOP_VERBS | FOLLOW_VERBS | PASS_VERBS
STILL_VERBS = frozenset(
    """
    stand stands standing sit sits sitting sleep sleeps sleeping lie lies lying rest rests resting wait waits waiting
    hang hangs hanging glow glows glowing shine shines shining perch perches perching stay stays remain remains
    parks parked span grazes graze grazing burn burns burning smoke smokes watch watches look looks sways stops stop
    lines fills covers spans towers looms sits play plays playing builds smiles talks reads eats eat
    """.split()
)
VERBS = MOTION_VERBS | STILL_VERBS | CARRY_VERBS | frozenset(
    "is are was were be has have throws throw throwing catches kicks meet meets meeting swims lands plays "
    "stretches stretching flies pulls".split()
)

IMMOBILE_HEADS = frozenset(
    """
    mountain mountains hill hills volcano cliff tree trees forest house houses building buildings tower lighthouse
    cabin barn school shop church castle bridge wall fence sofa couch table desk bench chair chairs lamp bed door
    window tunnel hole statue rock rocks island road street plant flower flowers bush wire branch pole shelf
    """.split()
)

STOP_WORDS = frozenset(
    """
    and or but nor while as with without from to toward towards into onto in on at of off over under above below
    beneath underneath behind before after between across along through around near beside by for against up
    down out then than so yet if when where which who whom whose that this these those is are was were be been
    being am has have had do does did will would can could should may might must it he she they them him her we
    you i me us its their there here not no very too also just only same other whilst slowly quickly far away
    back straight together each both either neither past toward gently softly high low again still all
    closer further farther nearer itself himself herself themselves nearby
    """.split()
)
_ADJ_SCALE = {
    "tiny": 0.55, "small": 0.75, "little": 0.75, "short": 0.85, "large": 1.35, "big": 1.35, "huge": 1.6,
    "giant": 1.7, "enormous": 1.7, "massive": 1.6, "tall": 1.2, "long": 1.1,
}

IRREGULAR_PLURALS = {
    "people": "person", "children": "child", "men": "man", "women": "woman", "geese": "goose", "mice": "mouse",
    "sheep": "sheep", "fish": "fish", "deer": "deer", "feet": "foot", "teeth": "tooth", "kids": "kid",
}
_NOT_PLURAL = frozenset(
    "glass grass bus boss dress moss cross class gas lens bonus cactus octopus walrus chess process "
    "series species news canvas iris tennis pancreas compass witness campus virus circus rhinoceros atlas chaos "
    "lotus".split()
)


def singular(word: str) -> str:
    w = word.lower()
    if w in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[w]
    if w in _NOT_PLURAL or len(w) < 4 or not w.endswith("s") or w.endswith(("ss", "us", "is", "'s")):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "xes", "sses", "zes")):
        return w[:-2]
    return w[:-1]


def is_plural(word: str) -> bool:
    w = word.lower()
    if w in ("sheep", "fish", "deer"):
        return False  # ambiguous: counted only with a number ("a flock of sheep" counts by the collective)
    return w in IRREGULAR_PLURALS or singular(w) != w


# -- what the reader produces -------------------------------------------------------------------


class Role(Enum):
    SUBJECT = "subject"  # one box
    GROUP = "group"  # several boxes under one name
    REGION = "region"  # a band of the frame
    BACKDROP = "backdrop"  # the setting; no box unless something is placed relative to it
    WEATHER = "weather"  # rain, fog: the whole frame, never a box
    WORN = "worn"  # "in a red coat": part of the one who wears it


class Rel(Enum):
    LEFT_OF = "left of"
    RIGHT_OF = "right of"
    ABOVE = "above"
    BELOW = "below"
    ON = "on"  # on top of, resting on (part: left / right / center)
    UNDER = "under"  # beneath something with room under it (a table, a tree)
    IN_FRONT_OF = "in front of"
    BEHIND = "behind"
    NEXT_TO = "next to"
    BETWEEN = "between"  # others: two keys, or one group
    INSIDE = "inside"  # in the middle of (a group's formation, a region)
    AROUND = "around"  # a group around another
    FLANK = "flank"  # a group on either side of another
    EDGE_OF = "at the edge of"
    PART_OF = "part of"  # the door of a barn


class StepKind(Enum):
    PLACE = "place"  # to a frame region
    DIRECTION = "direction"  # up / down / left / right
    TOWARD = "toward"  # toward another subject (ends beside it)
    INTO = "into"  # into another subject or a band (ends inside it)
    ONTO = "onto"  # lands on / jumps onto another subject
    BACK = "back"  # back to where it started
    ACROSS = "across"  # across the frame, a band or a backdrop
    LOOP = "loop"  # circles, around something
    GROW = "grow"  # toward the camera
    SHRINK = "shrink"  # away from the camera
    PASS = "pass"  # past another subject
    FOLLOW = "follow"  # chases / follows / after another subject
    CONVERGE = "converge"  # a group's members toward each other
    SWAP = "swap"  # a group's members pass each other
    MOVE = "move"  # moves, with no direction given


@dataclass
class Step:
    kind: StepKind
    span: tuple[int, int]
    region: Region | None = None
    direction: tuple[int, int] = (0, 0)
    other: str | None = None
    axes: str = "hv"  # for PLACE: which axes the words gave ("to the right": h)


@dataclass
class Link:
    rel: Rel
    others: tuple[str, ...]
    span: tuple[int, int]
    part: HRegion | None = None  # "on the left side of the sofa": LEFT


@dataclass
class Thing:
    """One thing the prompt names, with what the words say about it."""

    key: str
    name: str
    head: str
    role: Role
    mentions: list[tuple[int, int]] = field(default_factory=list)
    count: int = 1
    formation: str | None = None  # row, column, circle, crowd, cluster, scatter, v, pair
    band: BandKind | None = None
    scale: float = 1.0  # from adjectives
    depth: int = 0  # -1 background, 0, +1 foreground
    place: Region | None = None
    place_span: tuple[int, int] | None = None
    place_words: str = ""  # which axes the words gave: "h", "v" or "hv"
    links: list[Link] = field(default_factory=list)
    start: Step | None = None
    steps: list[Step] = field(default_factory=list)
    still: bool = False
    still_span: tuple[int, int] | None = None
    place_conflict: tuple[tuple[int, int], tuple[int, int]] | None = None  # two places that disagree
    companion_of: str | None = None  # walks his dog: the dog goes with the man
    related: bool = False  # another thing is placed relative to it

    @property
    def moves(self) -> bool:
        return bool(self.steps) or self.start is not None

    @property
    def boxed(self) -> bool:
        return self.role in (Role.SUBJECT, Role.GROUP)


@dataclass
class Reading:
    prompt: str
    things: dict[str, Thing]
    order: list[str]  # keys in order of first mention

    def boxed(self) -> list[Thing]:
        return [self.things[k] for k in self.order if self.things[k].boxed]

    def regions(self) -> list[Thing]:
        return [self.things[k] for k in self.order if self.things[k].role is Role.REGION]


# -- the tagged text ----------------------------------------------------------------------------
# The prompt is lower-cased and each noun phrase becomes "@N", each part of the frame "#N", so
# that the constructions below are short patterns over that text. `_Tagged.span` maps back.


@dataclass
class _Mention:
    span: tuple[int, int]
    name: str
    head: str
    count: int | None
    formation: str | None
    plural: bool
    scale: float
    key: str = ""
    known: bool = False  # one of the names the canvas already has


@dataclass
class _Tagged:
    text: str
    origin: list[int]  # origin[i]: index in the prompt of tagged character i (len(text) + 1 entries)

    def span(self, a: int, b: int) -> tuple[int, int]:
        return self.origin[a], self.origin[max(a, b - 1)] + 1 if b > a else self.origin[a]


_WORD_RE = re.compile(r"\d+|[a-z][a-z'\-]*")
_REGION_WORDS_RE = re.compile(
    r"(?<![\w-])(?:(?:the|its|their|his|her)\s+)?(?:(?P<third>(?:left|right|center|centre|middle|top|bottom|upper|lower)"
    r"\s+(?:third|quarter))|" + _region_pattern("r")[len(r"(?:the\s+)?"):] + r")",
    re.IGNORECASE,
)
_THIRDS = {
    "left": Region(HRegion.LEFT, VRegion.MIDDLE), "right": Region(HRegion.RIGHT, VRegion.MIDDLE),
    "center": CENTER, "centre": CENTER, "middle": CENTER,
    "top": Region(HRegion.CENTER, VRegion.TOP), "upper": Region(HRegion.CENTER, VRegion.TOP),
    "bottom": Region(HRegion.CENTER, VRegion.BOTTOM), "lower": Region(HRegion.CENTER, VRegion.BOTTOM),
}
_FRAME_ONLY_RE = re.compile(rf"(?<![\w-])(?:the\s+)?{_FRAME_NOUN}(?![\w-])", re.IGNORECASE)
_CAMERA_RE = re.compile(r"(?<![\w-])(?:the\s+)?(?:camera|viewer|lens|audience|foreground|background|distance)(?![\w-])",
                        re.IGNORECASE)
_FORMATION_RE = re.compile(
    r"\b(?:in\s+(?:a\s+)?(?P<f1>v|v-shaped|single|straight)?\s*(?:formation|file|line|row|circle|ring|column|queue)"
    r"|side\s+by\s+side|one\s+behind\s+the\s+other)\b",
    re.IGNORECASE,
)


def _names_a_thing(prompt: str, start: int, end: int) -> bool:
    """Whether a bare "top" / "bottom" / "upper" / "lower" (no "the" before it, no preposition) is a
    word of a thing's name: "a black top hat", "an upper deck"."""
    word = prompt[start:end].lower()
    if word not in ("top", "bottom", "upper", "lower"):
        return False
    before = re.findall(r"[a-z'-]+", prompt[:start].lower())[-1:]
    after = re.match(r"\s+([a-z'-]+)", prompt[end:].lower())
    if not before or before[0] in STOP_WORDS or before[0] in DETERMINERS or after is None:
        return False
    nxt = after.group(1)
    return nxt not in STOP_WORDS and nxt not in VERBS and nxt not in _REGION_TAIL


_REGION_TAIL = frozenset("edge edges corner corners side sides half third quarter part row left right center centre "
                         "middle frame screen".split())


def _frame_regions(prompt: str) -> list[tuple[tuple[int, int], Region, str]]:
    """Parts of the frame named in the prompt: (span, region, which axes the words give)."""
    out = []
    for m in _REGION_WORDS_RE.finditer(prompt):
        if _names_a_thing(prompt, m.start(), m.end()):
            continue  # "a black top hat", "the bottom drawer": a kind of thing, not a part of the frame
        if m.group("third"):
            first, kind = m.group("third").lower().split()
            region = _THIRDS[first]
            axes = "h" if first in ("left", "right", "center", "centre", "middle") else "v"
            if kind == "quarter":
                axes = "hv"
        else:
            text = m.group("r")
            region = _lookup_region(text)
            words = set(re.split(r"[\s-]+", text.lower()))
            h = bool(words & {"left", "right"})
            v = bool(words & {"top", "bottom", "upper", "lower"})
            axes = ("h" if h else "") + ("v" if v else "") or "hv"  # "the center" gives both
        end = m.end()
        tail = re.match(rf"\s+of\s+(?:the\s+)?{_FRAME_NOUN}(?![\w-])", prompt[end:], re.IGNORECASE)
        if tail:
            end += tail.end()
        out.append(((m.start(), end), region, axes))
    return out


def _number_at(words: list[tuple[str, int, int]], i: int) -> tuple[int, int] | None:
    """(count, words used) for a number at word i: "five", "3", "a pair of", "a couple of"."""
    w = words[i][0]
    if w.isdigit():
        return min(MAX_COUNT, max(1, int(w))), 1
    if i + 2 < len(words) and f"{w} {words[i + 1][0]} {words[i + 2][0]}" in NUMBER_WORDS:
        return None  # collectives are read as such
    if i + 1 < len(words) and f"{w} {words[i + 1][0]}" in NUMBER_WORDS:
        return NUMBER_WORDS[f"{w} {words[i + 1][0]}"], 2
    if w in NUMBER_WORDS and w not in ("one", "some", "both"):
        return NUMBER_WORDS[w], 1
    return None


def _looks_like_verb(word: str, collected: int, next_word: str | None, singular: bool = False) -> bool:
    if collected == 0:
        return False
    if word in VERBS:
        # "a flying bird", "the sleeping cat", "a rolling ball": -ing right after the determiner is an adjective
        return not (collected == 0 and word.endswith("ing"))
    if collected > 0 and (word.endswith("ing") and len(word) > 4 and word not in _ING_NOUNS):
        return next_word not in _ING_COMPOUNDS.get(word, ())  # "a wooden cutting board" is one thing
    if collected > 0 and word.endswith("ed") and len(word) > 4 and word not in ("bed", "shed", "sled"):
        return True
    if collected > 0 and word in _PARTICIPLES:
        return True
    # after a singular noun ("a fly"), an -s word followed by a preposition, an adverb or the end is the verb:
    # "a fly buzzes around" (but "two red cars in a row")
    if singular and word.endswith("s") and not word.endswith(("ss", "us", "is", "'s")) and len(word) > 3:
        return next_word is None or next_word in STOP_WORDS or next_word.endswith("ly")
    return False


_ING_COMPOUNDS = {
    "cutting": {"board", "boards"}, "swimming": {"pool", "pools"}, "parking": {"lot", "lots", "space"},
    "washing": {"machine", "line"}, "sleeping": {"bag", "bags"}, "fishing": {"rod", "boat", "boats", "net", "line"},
    "frying": {"pan"}, "rolling": {"pin"}, "walking": {"stick", "cane"}, "diving": {"board"},
    "shopping": {"cart", "bag", "bags", "mall", "trolley"}, "waiting": {"room"}, "racing": {"car", "cars", "bike"},
    "sailing": {"boat", "boats", "ship"}, "rocking": {"chair", "horse"}, "spinning": {"wheel", "top"},
    "baking": {"tray", "sheet"}, "ironing": {"board"}, "running": {"track", "shoes"}, "boxing": {"ring", "gloves"},
    "skating": {"rink"}, "bowling": {"alley", "ball"}, "filling": {"station"}, "drinking": {"fountain", "glass"},
    "writing": {"desk"}, "reading": {"lamp", "glasses"}, "dressing": {"table", "room"}, "climbing": {"wall", "frame"},
}
"""An -ing word and the nouns it names a kind of: "a cutting board", "a swimming pool"."""
_LY_NOUNS = frozenset("lily jelly belly holly bully family rally ally anomaly assembly monopoly jellyfish".split())
_ING_NOUNS = frozenset("building ceiling painting ring king wing swing string thing spring sling duckling seedling "
                       "pudding wedding morning evening clothing earring sibling darling ping railing living dining".split())


SHOT_WORDS = frozenset("close-up closeup close-ups closeups footage angle pov perspective timelapse time-lapse "
                       "slow-motion slow-mo montage".split())
"""How the shot is filmed ("Close-up of a woman", "POV footage"): never a thing in the frame."""
_SHOT_RE = re.compile(
    r"(?:^|(?<=[.;!?:])\s*)(?:[a-z-]+\s+){0,4}?(?:(?:"
    + "|".join(re.escape(w) for w in sorted(SHOT_WORDS - {"angle", "perspective"}))
    + r")(?![\w-])(?:\s+of\b|\s*:)?|(?:shot|shots|angle|perspective|view)(?:\s+of\b|\s*:))", re.IGNORECASE)
"""How a sentence opens when it says how it is filmed: "Wide establishing shot of", "Handheld footage
of", "Close-up:" ("shot" and "view" only with "of" or ":" after them: "A man shot a deer" is no shot)."""
_HOMOGRAPH_NOUNS = {
    "leaves": frozenset("autumn fall dry dead fallen withered maple oak red yellow orange golden brown green".split()),
    "steps": frozenset("stone wooden marble concrete front stair temple old narrow steep worn iron metal".split()),
}
"""Before these words, the words that make them the noun: "autumn leaves in a row" (not "the man
leaves"), "the stone steps of a temple" (not "the stone steps aside")."""
_PARTICIPLES = frozenset("held lit built made worn hung caught thrown drawn driven ridden woven sewn torn broken "
                         "frozen hidden shaken".split())
"""Irregular past participles: after a noun they start what is said of it ("a hoop held by a trainer")."""
_REGION_NOUNS = frozenset("background foreground distance".split())
"""Frame parts an adjective may come before ("the blurred background"): that adjective is no thing."""
_DOING = frozenset("do does did doing perform performs performed performing".split())
"""What follows is an action, not a thing: "does a kickflip", "performs a backflip"."""


def _find_mentions(prompt: str, blocked: list[bool]) -> list[_Mention]:
    """Noun phrases: [determiner | number | collective of] adjectives noun. Words inside parts of
    the frame (``blocked``) are never part of one."""
    low = _lower(prompt)
    words = [(m.group(0), m.start(), m.end()) for m in _WORD_RE.finditer(low)]
    out: list[_Mention] = []
    verbs_at: set[int] = set()  # words that ended a noun phrase as its verb
    i = 0
    while i < len(words):
        w, ws, _ = words[i]
        if blocked[ws]:
            i += 1
            continue
        count: int | None = None
        formation: str | None = None
        start = ws
        j = i
        explicit = False
        # collectives: "a row of houses", "a circle of five adults", "a pair of swans"
        if w in ("a", "an", "the") and j + 2 < len(words) and words[j + 1][0] in COLLECTIVES and words[j + 2][0] == "of":
            n, formation = COLLECTIVES[words[j + 1][0]]
            count, j, explicit = n, j + 3, True
            if j < len(words):
                number = _number_at(words, j)
                if number:
                    count, j = number[0], j + number[1]
        elif _number_at(words, j) and not (w == "a" or w == "an"):
            number = _number_at(words, j)
            assert number is not None
            count, j, explicit = number[0], j + number[1], True
        elif w in DETERMINERS and w not in ("one",):
            j, explicit = j + 1, True
            if j < len(words) and _number_at(words, j):  # "the two dogs", "its three cups"
                number = _number_at(words, j)
                assert number is not None
                count, j = number[0], j + number[1]
        elif not (_at_clause_start(prompt, ws) or (i > 0 and words[i - 1][0] in ("with", "and", "while", "as", "when", "of"))
                  or (i - 1 in verbs_at and is_plural(w)) or (i > 0 and words[i - 1][0] in _BARE_AFTER)):
            i += 1
            continue
        collected: list[tuple[str, int, int]] = []
        before_region = False  # the words run into a frame part: "the blurred background"
        k = j
        while k < len(words) and len(collected) < 4:
            cw, cs, ce = words[k]
            gap = prompt[words[k - 1][2]:cs] if k > 0 else ""
            if k > j and gap.strip() and gap.strip() != "-":
                break
            if k == j and k > i and gap.strip():
                break
            if blocked[cs] or cw in DETERMINERS or cw in STOP_WORDS or cw.isdigit():
                before_region = bool(blocked[cs] and collected and cw in _REGION_NOUNS)
                break
            nxt = words[k + 1][0] if k + 1 < len(words) else None
            one = w in ("a", "an", "one", "this", "that", "another", "each", "every") and count is None
            leading_noun = j == i and not collected and (is_plural(cw) or cw in WEATHER_WORDS) and nxt in VERBS
            # "Leaves fall", "Smoke rises": a noun although a verb has its form
            # "autumn leaves", "stone steps", "leaves falling": the noun, not the verb of the same spelling
            homograph = bool(collected) and (collected[-1][0] in _HOMOGRAPH_NOUNS.get(cw, ()) or (
                cw == "leaves" and nxt is not None and (nxt in VERBS or nxt.endswith("ing"))))
            if (j > i or collected) and not homograph and _looks_like_verb(cw, len(collected), nxt, one) or (
                    j == i and not collected and not leading_noun and (cw in VERBS or cw.endswith(("ing", "ed")))):
                verbs_at.add(k)
                break  # right after a determiner a verb's form is a noun: "a fly", "a walk"
            if collected and _verb_after_noun(collected[-1][0], cw, nxt, one):
                verbs_at.add(k)
                break  # "two knights face each other", "an old man feeds pigeons"
            if (collected or j == i) and cw.endswith("ly") and len(cw) > 4 and not cw.endswith("fly") and cw not in _LY_NOUNS:
                break
            if cw in ("'s",) or cw.endswith("'s"):
                break
            collected.append((cw, cs, ce))
            k += 1
        if not collected:
            i = max(i + 1, j)
            continue
        if before_region or (explicit and i > 0 and words[i - 1][0] in _DOING):
            i = k
            continue
        if not explicit and i > 0 and words[i - 1][0] in _BARE_AFTER and not (
                is_plural(collected[-1][0]) or collected[-1][0] in BAND_WORDS):
            i = k  # after a preposition only a plural or a band: "surrounded by children", "through tall grass"
            continue
        if not explicit:
            # a bare noun phrase ("Clouds drift", "sunset over the ocean", "with clouds moving") must be
            # followed by a verb, a preposition or the end of the clause, and end in a plural or be alone
            nxt = words[k][0] if k < len(words) else None
            follows_ok = nxt is None or nxt in VERBS or nxt in STOP_WORDS or nxt in ("moving",) or k in verbs_at
            if not follows_ok or (len(collected) == 1 and collected[0][0] in STOP_WORDS):
                i = k
                continue
        head = collected[-1][0]
        name = prompt[collected[0][1]:collected[-1][2]]
        name = " ".join(name.split())
        plural = is_plural(head) or count is not None and count > 1
        scale = 1.0
        for cw, _, _ in collected[:-1]:
            scale *= _ADJ_SCALE.get(cw, 1.0)
        if head in PART_WORDS | {"formation", "way", "time", "moment", "direction", "distance", "camera", "viewer",
                                 "screen", "frame", "image", "picture", "shot", "view", "video", "clip", "canvas",
                                 "other", "lens", "audience", "end", "start", "beginning", "place", "spot",
                                 "position", "sides", "one", "another"} | SHOT_WORDS:
            i = k
            continue
        out.append(_Mention((start, collected[-1][2]), name, head, count, formation, plural, scale))
        i = k
    return _with_attached(prompt, out)


_BARE_COLLECTIVES = frozenset("crowd flock herd swarm pack gang".split())
"""Collectives that are many even without "of": "a crowd gathers", "a herd grazes"."""
_BARE_AFTER = frozenset("by through to into across over under along in on at near toward towards".split())


def _verb_after_noun(previous: str, word: str, next_word: str | None, after_one: bool) -> bool:
    """Whether ``word`` ends a noun phrase as its verb although no list knows it: after a plural noun
    a word that is not plural itself ("knights face", "fireworks burst"); after "a"/"an" + noun an -s
    word followed by another word ("a man feeds pigeons", "a barista pours latte art")."""
    if previous in _PLURAL_MODIFIERS and not is_plural(word):
        return False  # "a sports car": the noun the modifier names a kind of
    if previous in IRREGULAR_PLURALS or (is_plural(previous) and previous not in MASS_PLURALS):
        return not is_plural(word) and word not in ("sheep", "fish", "deer")
    if after_one and word.endswith("s") and not word.endswith(("ss", "us", "is", "'s")) and len(word) > 3:
        # "a"/"an" never comes before a plural, so after "a" + noun an -s word is the verb:
        # "a man feeds pigeons", "a barista pours latte art"
        return next_word is not None and word not in _NOT_PLURAL | _PLURAL_MODIFIERS
    return False


_PLURAL_MODIFIERS = frozenset("sports arts goods savings sales glasses jeans clothes parts kids girls boys mens "
                              "womens customs systems operations".split())
"""Plural forms that name a kind of thing before its noun: "a red sports car", "a kids bike"."""


def _with_attached(prompt: str, mentions: list[_Mention]) -> list[_Mention]:
    """"people with umbrellas", "a woman with a suitcase": what a thing has or carries is part of it
    (one subject named by the whole phrase), when "with" follows the noun directly."""
    out: list[_Mention] = []
    for m in mentions:
        if out:
            last = out[-1]
            gap = _lower(prompt[last.span[1]:m.span[0]]).split()
            counted = (m.count or 1) > 1 or m.formation is not None  # "a table with four chairs": drawn apart
            if gap == ["with"] and not counted and not _lower(prompt[last.span[0]:last.span[1]]).startswith("with"):
                name = f"{last.name} with {' '.join(prompt[m.span[0]:m.span[1]].split())}"
                out[-1] = _Mention((last.span[0], m.span[1]), name,
                                   last.head, last.count, last.formation, last.plural, last.scale)
                continue
        out.append(m)
    return out


def _lower(text: str) -> str:
    """Lower case, one character for one, so positions in it are positions in ``text``."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _at_clause_start(prompt: str, pos: int) -> bool:
    before = prompt[:pos].rstrip()
    return not before or before[-1] in ".;:!?,"


def _same_thing(a: _Mention, b_name: str, b_head: str) -> bool:
    if singular(a.head) != singular(b_head):
        return False
    aw = set(name_key(a.name).split()[:-1])
    bw = set(name_key(b_name).split()[:-1])
    return aw <= bw or bw <= aw


def _tag(prompt: str, mentions: list[_Mention], regions: list[tuple[tuple[int, int], Region, str]]) -> _Tagged:
    low = _lower(prompt).replace("@", " ").replace("#", " ")  # the marks below are the only ones
    marks = sorted([(m.span, f"@{i}") for i, m in enumerate(mentions)]
                   + [(r[0], f"#{i}") for i, r in enumerate(regions)])
    text: list[str] = []
    origin: list[int] = []
    pos = 0
    for (a, b), label in marks:
        if a < pos:
            continue
        for c in range(pos, a):
            text.append(low[c])
            origin.append(c)
        for _ in label:
            origin.append(a)
        text.append(label)
        origin[-1] = b - 1
        if b < len(low) and low[b].isdigit():  # "b0b1": a digit right after the mark would read as its number
            text.append(" ")
            origin.append(b)
        pos = b
    for c in range(pos, len(low)):
        text.append(low[c])
        origin.append(c)
    origin.append(len(low))
    joined = "".join(text)
    # whitespace runs become one space, keeping the map
    out_text: list[str] = []
    out_origin: list[int] = []
    for ch, o in zip(joined, origin):
        if ch.isspace():
            if out_text and out_text[-1] == " ":
                continue
            ch = " "
        out_text.append(ch)
        out_origin.append(o)
    out_origin.append(len(low))
    return _Tagged("".join(out_text), out_origin)


# -- constructions ------------------------------------------------------------------------------

M = r"@(\d+)"  # a mention
R = r"#(\d+)"  # a part of the frame
_ANY = r"(?:@\d+|#\d+)"

_CLAUSE_BREAK_RE = re.compile(
    r"[.!?;]|,?\s\b(?:while|whilst|as|when|and then|but)\b\s|,\s(?=(?:and\s)?@)|\band\s(?=@\d+\s(?!and))"
    r"|,\s+and\s(?=(?:in|on|at|from|behind|above|below|beside)\s)"  # ", and in the foreground two hikers walk"
)


def _clause_bounds(text: str) -> list[int]:
    return [m.start() for m in _CLAUSE_BREAK_RE.finditer(text)]


REL_PATTERNS: list[tuple[str, Rel]] = [
    (r"(?:to the left of|left of|to its left|on its left) " + M, Rel.LEFT_OF),
    (r"(?:to the right of|right of) " + M, Rel.RIGHT_OF),
    (r"(?:(?:on|onto) the (?:roof|top|surface|deck) of|on top of|atop|up on|onto|on|upon) " + M, Rel.ON),
    (r"(?:above|over|high above|up above) " + M, Rel.ABOVE),
    (r"(?:below|beneath|underneath|under|down below) " + M, Rel.UNDER),
    (r"(?:in front of) " + M, Rel.IN_FRONT_OF),
    (r"(?:behind|in back of|at the back of) " + M, Rel.BEHIND),
    (r"(?:next to|beside|besides|near|close to|alongside|by|nearby|against) " + M, Rel.NEXT_TO),
    (r"(?:at|on|by) the (?:edge|side|foot|base) of " + M, Rel.EDGE_OF),
    (r"(?:inside|within|in|among|amid|amidst) " + M, Rel.INSIDE),
]
_REL_RES = [(re.compile(r"\b" + p), rel) for p, rel in REL_PATTERNS]


class _Reader:
    def __init__(self, prompt: str, known: Sequence[str] | None) -> None:
        self.prompt = prompt
        self.regions = _frame_regions(prompt)
        blocked = [False] * (len(prompt) + 1)
        for (a, b), _, _ in self.regions:
            for c in range(a, b):
                blocked[c] = True
        shots = [m.span() for m in _SHOT_RE.finditer(prompt)]  # "Close-up shot of": how it is filmed
        for a, b in shots:
            for c in range(a, b):
                blocked[c] = True
        for m in list(_FRAME_ONLY_RE.finditer(prompt)) + list(_CAMERA_RE.finditer(prompt)) + list(
            _FORMATION_RE.finditer(prompt)
        ):
            for c in range(m.start(), m.end()):
                blocked[c] = True
        self.mentions = _find_mentions(prompt, blocked)
        if known is not None:
            self.mentions = _known_mentions(prompt, known, self.mentions)
        self.tagged = _tag(prompt, self.mentions, self.regions)
        self.things: dict[str, Thing] = {}
        self.order: list[str] = []
        self.used = [False] * (len(self.tagged.text) + 1)
        for i, at in enumerate(self.tagged.origin[:len(self.tagged.text)]):
            if any(a <= at < b for a, b in shots):
                self.used[i] = True  # "Close-up shot of": how it is filmed says nothing of where things go
        self.known = known is not None
        self.flight_guessed: set[str] = set()  # thrown things flying off the thrower's side until words say where
        self._identify()

    # -- things ---------------------------------------------------------------------------------
    def _identify(self) -> None:
        for m in self.mentions:
            key = None
            for k in self.order:
                t = self.things[k]
                if _same_thing(m, t.name, t.head) and (m.count is None or t.count == (m.count or 1) or m.count == 1):
                    key = k
                    break
            if key is None and name_key(m.name) in self.things:
                key = name_key(m.name)  # the same words name the same thing
            if key is None:
                key = name_key(m.name)
                role = Role.SUBJECT
                band = BAND_WORDS.get(m.head) if not m.known else None
                if band is not None and m.count is None:
                    role = Role.REGION
                elif m.plural or (m.count or 1) > 1 or m.formation:
                    role = Role.GROUP
                elif m.head in _BARE_COLLECTIVES and m.count is None and not m.known:
                    role = Role.GROUP  # "a crowd gathers": as many as the word means
                elif m.head in BACKDROP_WORDS and not m.known:
                    role = Role.BACKDROP
                if not m.known and (m.head in WEATHER_WORDS or singular(m.head) in CLOTHING_WORDS):
                    role = Role.WORN if singular(m.head) in CLOTHING_WORDS else Role.WEATHER
                count = m.count or (3 if role is Role.GROUP else 1)
                formation = m.formation
                if role is Role.GROUP and m.head in _BARE_COLLECTIVES and m.count is None and m.formation is None:
                    count, formation = COLLECTIVES[m.head]
                if role is Role.GROUP and m.head in MASS_PLURALS and m.count is None and m.formation is None:
                    role, count = Role.SUBJECT, 1  # "mountains", "hills": one wide shape
                if self.known and not m.known and role in (Role.SUBJECT, Role.GROUP):
                    role = Role.BACKDROP  # not one of the canvas's names: read, never drawn
                self.things[key] = Thing(key, m.name, m.head, role, count=count, formation=formation, band=band,
                                         scale=m.scale)
                self.order.append(key)
            else:
                t = self.things[key]
                if len(m.name.split()) > len(t.name.split()):
                    t.name = m.name
            m.key = key
            self.things[key].mentions.append(m.span)

    def key_of(self, mention_index: str) -> str:
        return self.mentions[int(mention_index)].key

    # -- ownership --------------------------------------------------------------------------------
    def owner(self, pos: int, exclude: set[str] = frozenset(), boxed_only: bool = True) -> str | None:
        """Who a phrase at tagged position ``pos`` is about: the nearest thing named before it in
        its clause, unless a verb stands between (then that verb's subject), else the first thing
        named after it in the clause ("In the background a volcano smokes")."""
        text = self.tagged.text
        start = max([b for b in self.clause_bounds if b <= pos] or [0])
        end = min([b for b in self.clause_bounds if b > pos] or [len(text)])
        before = [(mm.start(), mm.group(1)) for mm in re.finditer(M, text[start:pos])]
        candidates = []
        for off, idx in before:
            key = self.key_of(idx)
            t = self.things[key]
            if key in exclude or (boxed_only and not t.boxed):
                continue
            candidates.append((start + off, key))
        if not candidates and boxed_only:
            # a clause about a setting: "the forest remains stationary at the bottom left" draws it
            candidates = [(start + off, self.key_of(idx)) for off, idx in before
                          if self.things[self.key_of(idx)].role in (Role.BACKDROP, Role.REGION)
                          and self.key_of(idx) not in exclude]
        if candidates:
            at, key = candidates[-1]
            lead = self.things[key].companion_of
            if lead is not None:  # "walks his dog along the river": the man walks, the dog goes along
                key = lead
            between = text[at:pos]
            verb = _first_verb(between)
            if verb is not None and re.search(r"(?:\band|,|\bthen)\s+(?:then\s+)?(?:\w+ly\s+)?$", between[:verb]):
                # "... out of a shop on the left and heads to the right": the clause's subject heads
                if not re.search(r"\b(?:who|which|that)\b", between[:verb]):
                    return candidates[0][1]
            return key
        after = [(mm.start(), mm.group(1)) for mm in re.finditer(M, text[pos:end])]
        for _, idx in after:
            key = self.key_of(idx)
            if key not in exclude and (not boxed_only or self.things[key].boxed):
                return key
        return None

    def pronoun(self, pos: int, exclude: set[str], plural: bool = False) -> list[str]:
        """What "it" / "its" / "them" at tagged ``pos`` refers to: the nearest boxed things before."""
        text = self.tagged.text
        sentence_start = max([m.end() for m in re.finditer(r"[.!?;]", text[:pos])] or [0])
        found = [self.key_of(m.group(1)) for m in re.finditer(M, text[sentence_start:pos])]
        found = [k for k in dict.fromkeys(reversed(found)) if k not in exclude and self.things[k].boxed]
        return found[:2] if plural else found[:1]

    # -- reading -------------------------------------------------------------------------------------
    def read(self) -> Reading:
        text = self.tagged.text
        self.clause_bounds = _clause_bounds(text)
        for rule in (self._formations, self._collective_relations, self._pairs_and_groups, self._relations,
                     self._motion, self._places, self._depth, self._still, self._at_their_work):
            rule(text)
        # "chases a mouse around a table, then jumps onto the table": the parts of a sequence in the words'
        # order (within one part the readers' order stands: "lands on a branch")
        parts = [m.start() for m in re.finditer(r",|;|\bthen\b", self.prompt.lower())]
        for t in self.things.values():
            t.steps.sort(key=lambda step: sum(1 for p in parts if p < step.span[0]))
        self._settle_roles()
        return Reading(self.prompt, self.things, self.order)

    def _at_their_work(self, text: str) -> None:
        """"A bartender shakes a cocktail on the right", "a painter paints a portrait on the left":
        whoever opens the clause, does something to the next thing named and has no place of their
        own works beside it (not a guess in the middle of the frame)."""
        for m in re.finditer(r"(?:^|[.;!?,]\s*|\b(?:while|and|as)\s+|^[^@#.;!?]*?\bof\s+)" + M
                             + r"(?:\s+(?:in|wearing)\s+(" + M + r"))?\s+([a-z'-]+)\s+(?:[a-z'-]+ly\s+)?" + M, text):
            worn, verb = m.group(2), m.group(4)
            if worn and self.things[self.key_of(m.group(3))].role is not Role.WORN:
                continue  # "a woman in a yellow raincoat opens an umbrella": what she wears, not where she is
            if verb in STOP_WORDS or verb in MOTION_VERBS or verb.endswith("ly"):
                continue  # "a dog and a cat", "a car drives a ...": no work on a thing
            agent, work = self.key_of(m.group(1)), self.key_of(m.group(5))
            a, b = self.things[agent], self.things[work]
            if agent == work or not (a.boxed and b.boxed) or b.companion_of == agent:
                continue
            others = [o for link in b.links for o in link.others] + [
                step.other for step in b.steps + ([b.start] if b.start else []) if step.other]
            if b.place is None and not any(self.things[o].place is not None or self.things[o].links
                                           or self.things[o].depth for o in others):
                continue  # the thing worked on has no place either: nothing to stand beside
            if a.place is not None or a.moves or a.links or a.companion_of is not None or a.depth:
                continue  # the words place the agent themselves
            a.links.append(Link(Rel.NEXT_TO, (work,), self._span(m.start(1) - 1, m.end(5))))
            b.related = True

    def _take(self, a: int, b: int) -> bool:
        if any(self.used[a:b]):
            return False
        for i in range(a, b):
            self.used[i] = True
        return True

    def _span(self, a: int, b: int) -> tuple[int, int]:
        return self.tagged.span(a, b)

    def _formations(self, text: str) -> None:
        for m in re.finditer(r"\bin (?:a )?(v|v-shaped|single|straight)? ?(formation|file|line|row|circle|ring|column|queue)\b"
                             r"|\bside by side\b|\bone behind the other\b", text):
            owner = self.owner(m.start())
            if owner is None:
                continue
            t = self.things[owner]
            word = m.group(0)
            if "side by side" in word:
                formation = "pair"
            elif "behind the other" in word or m.group(2) in ("column", "queue", "file"):
                formation = "column" if m.group(2) != "queue" and m.group(2) != "file" else "row"
            elif m.group(1) in ("v", "v-shaped"):
                formation = "v"
            elif m.group(2) in ("circle", "ring"):
                formation = "circle"
            else:
                formation = "row"
            self._take(m.start(), m.end())
            if t.role is Role.GROUP:
                t.formation = formation
            elif formation == "circle":
                t.steps.append(Step(StepKind.LOOP, self._span(m.start(), m.end())))

    def _collective_relations(self, text: str) -> None:
        # "in the middle of a circle of five adults": the child inside the group's formation
        for m in re.finditer(r"\b(?:in|at) #(\d+) of " + M, text):
            region = self.regions[int(m.group(1))][1]
            other = self.key_of(m.group(2))
            o = self.things[other]
            owner = self.owner(m.start(), exclude={other})
            if not self._take(m.start(), m.end()):
                continue
            if o.role is Role.BACKDROP:  # "in the middle of the room": the frame's middle
                if owner is not None:
                    self._set_place(owner, region, self.regions[int(m.group(1))][2], (m.start(), m.end()))
                continue
            if owner is None:
                continue
            if region == CENTER and o.role is Role.GROUP:
                o.formation = o.formation or "circle"
                self._link(other, Rel.AROUND, (owner,), (m.start(), m.end()))
            elif region == CENTER and o.role is Role.REGION:
                self._link(owner, Rel.INSIDE, (other,), (m.start(), m.end()))
                self._set_place(owner, CENTER, "h", (m.start(), m.end()))
            elif region.v is VRegion.TOP or region == CENTER:
                self._link(owner, Rel.ON, (other,), (m.start(), m.end()), part=region.h)
            elif region.v is VRegion.BOTTOM:
                self._link(owner, Rel.IN_FRONT_OF, (other,), (m.start(), m.end()))
            else:
                self._link(owner, Rel.ON, (other,), (m.start(), m.end()), part=region.h)
        # "on the left side of a sofa", "on top of the box", "at the top of the tree"
        for m in re.finditer(r"\b(?:on|at|to|in) #(\d+) of " + M, text):
            if not self._take(m.start(), m.end()):
                continue
            region = self.regions[int(m.group(1))][1]
            other = self.key_of(m.group(2))
            owner = self.owner(m.start(), exclude={other})
            if owner is None:
                continue
            if self.things[other].role is Role.BACKDROP:  # "on the right side of a sunny park": the frame's right
                self._set_place(owner, region, self.regions[int(m.group(1))][2], (m.start(), m.end()))
                continue
            word = text[m.start():m.end()].split()[0]
            if word == "to":
                rel = Rel.LEFT_OF if region.h in (HRegion.LEFT, HRegion.LEFT_EDGE) else Rel.RIGHT_OF
                self._link(owner, rel, (other,), (m.start(), m.end()))
            elif region.v is VRegion.BOTTOM:
                self._link(owner, Rel.IN_FRONT_OF, (other,), (m.start(), m.end()))
            else:
                self._link(owner, Rel.ON, (other,), (m.start(), m.end()), part=region.h)
        # "the roof of a building", "the door of a barn"
        for m in re.finditer(M + r" of " + M, text):
            a, b = self.key_of(m.group(1)), self.key_of(m.group(2))
            if self.things[a].head in PART_WORDS:
                continue
            if self.things[b].boxed and self.things[a].boxed and a != b:
                self._link(a, Rel.PART_OF, (b,), (m.start(), m.end()))

    def _pairs_and_groups(self, text: str) -> None:
        # between A and B, between two Xs, between them
        for m in re.finditer(r"\bbetween (?:" + M + r" and " + M + r"|" + M + r"|them|the two)", text):
            owner = self.owner(m.start(), exclude=set())
            if m.group(1):
                others = (self.key_of(m.group(1)), self.key_of(m.group(2)))
            elif m.group(3):
                others = (self.key_of(m.group(3)),)
            else:
                others = tuple(self.pronoun(m.start(), exclude={owner} if owner else set(), plural=True))
            if owner is None or owner in others or not others or not self._take(m.start(), m.end()):
                continue
            if len(others) == 1 and self.things[others[0]].role is Role.GROUP:
                self._link(others[0], Rel.FLANK, (owner,), (m.start(), m.end()))
            else:
                self._link(owner, Rel.BETWEEN, others, (m.start(), m.end()))
        for m in re.finditer(r"\bon (?:either|both|each|opposite) sides? of " + M, text):
            other = self.key_of(m.group(1))
            owner = self.owner(m.start(), exclude={other})
            if owner is None or not self._take(m.start(), m.end()):
                continue
            t = self.things[owner]
            if t.role is not Role.GROUP:
                t.role, t.count = Role.GROUP, 2
            self._link(owner, Rel.FLANK, (other,), (m.start(), m.end()))
        for m in re.finditer(r"\bsurrounded by " + M, text):  # "a seller stands in the center surrounded by children"
            group = self.key_of(m.group(1))
            owner = self.owner(m.start(), exclude={group})
            if owner is None or self.things[group].role is not Role.GROUP or not self._take(m.start(), m.end()):
                continue
            self.things[group].formation = "circle"
            self._link(group, Rel.AROUND, (owner,), (m.start(), m.end()))
        for m in re.finditer(r"\b(?:around|surrounding|surround|encircle|encircling|circling|round) " + M, text):
            other = self.key_of(m.group(1))
            owner = self.owner(m.start(), exclude={other})
            if owner is None or not self._take(m.start(), m.end()):
                continue
            t = self.things[owner]
            if t.role is Role.GROUP:
                t.formation = "circle"
                self._link(owner, Rel.AROUND, (other,), (m.start(), m.end()))
            else:
                t.steps.append(Step(StepKind.LOOP, self._span(m.start(), m.end()), other=other))
                self.things[other].related = True
        for m in re.finditer(r"\b(?:gathers?|gathering|stands?|standing|form|forms) (?:around|round) (?:him|her|it)\b",
                             text):  # "a crowd gathers around him"
            owner = self.owner(m.start())
            if owner is None or self.things[owner].role is not Role.GROUP:
                continue
            others = self.pronoun(m.start(), exclude={owner})
            if others and self._take(m.start(), m.end()):
                self.things[owner].formation = "circle"
                self._link(owner, Rel.AROUND, (others[0],), (m.start(), m.end()))
        for m in re.finditer(r"\b(?:toward|towards|to|at|past|pass|passes|passing|by) each other\b|\bmeet(?:s|ing)?\b"
                             r"|\bfrom opposite (?:sides|ends|directions)\b", text):
            owner = self.owner(m.start())
            if owner is None or not self._take(m.start(), m.end()):
                continue
            t = self.things[owner]
            word = m.group(0)
            if t.role is not Role.GROUP:
                continue
            if "pass" in word:
                t.steps.append(Step(StepKind.SWAP, self._span(m.start(), m.end())))
            elif "opposite" in word or "toward" in word or "to each" in word or "meet" in word:
                if not any(s.kind is StepKind.CONVERGE for s in t.steps):
                    t.steps.append(Step(StepKind.CONVERGE, self._span(m.start(), m.end())))
            # "next to each other", "look at each other": the formation's default pair

    def _relations(self, text: str) -> None:
        for rx, rel in _REL_RES:
            for m in rx.finditer(text):
                other = self.key_of(m.group(1))
                o = self.things[other]
                words = text[m.start():m.end()]
                if rel is Rel.INSIDE and o.role is not Role.REGION:
                    continue  # "in a snowy forest", "in the grass" is a band; "in a box": not read
                owner = self.owner(m.start(), exclude={other})
                if owner is None or not self._take(m.start(), m.end()):
                    continue
                if rel is Rel.ON and words.startswith("onto"):
                    self.things[owner].steps.append(Step(StepKind.ONTO, self._span(m.start(), m.end()), other=other))
                    o.related = True
                    continue
                if rel is Rel.ON and _lands_before(text, m.start()):
                    self.things[owner].steps.append(Step(StepKind.ONTO, self._span(m.start(), m.end()), other=other))
                    o.related = True
                    continue
                self._link(owner, rel, (other,), (m.start(), m.end()))
        # "to its left", "to the left of it"
        for m in re.finditer(r"\bto #(\d+)(?: of (?:it|them))?", text):
            region = self.regions[int(m.group(1))][1]
            before = self.prompt[self._span(m.start(), m.end())[0]:self._span(m.start(), m.end())[1]].lower()
            if not re.search(r"\b(?:its|his|her|their)\b|of (?:it|them)", before):
                continue
            owner = self.owner(m.start())
            refs = self.pronoun(m.start(), exclude={owner} if owner else set())
            if owner is None or not refs or not self._take(m.start(), m.end()):
                continue
            rel = Rel.LEFT_OF if region.h in (HRegion.LEFT, HRegion.LEFT_EDGE) else Rel.RIGHT_OF
            self._link(owner, rel, (refs[0],), (m.start(), m.end()))

    def _link(self, owner: str, rel: Rel, others: tuple[str, ...], tspan: tuple[int, int],
              part: HRegion | None = None) -> None:
        self.things[owner].links.append(Link(rel, others, self._span(*tspan), part))
        for o in others:
            self.things[o].related = True
            if self.things[o].role is Role.BACKDROP:  # "above a forest": the forest is drawn
                self.things[o].role = Role.SUBJECT

    def _set_place(self, key: str, region: Region, axes: str, tspan: tuple[int, int]) -> None:
        t = self.things[key]
        if t.place is None:
            t.place, t.place_words, t.place_span = region, axes, self._span(*tspan)
        elif axes == t.place_words and region != t.place and t.place_span is not None:
            t.place_conflict = (t.place_span, self._span(*tspan))
        elif axes != t.place_words and set(axes) & set(t.place_words) == set():
            # "along the bottom ... on the left": combine the axes
            h = region.h if "h" in axes else t.place.h
            v = region.v if "v" in axes else t.place.v
            t.place, t.place_words = Region(h, v), "hv"

    def _motion(self, text: str) -> None:
        target = r"(?:" + R + r"|" + M + r"|it|them|him|her)"
        pattern = re.compile(
            r"\b(?P<from>from|out of|off(?: of)?|away from|leaves?|leaving|exits?|exiting) (?:the )?(?P<src>" + _ANY + r"|it)"
            r"|\b(?P<back>back)\b(?: again)?(?: (?:to|toward|towards|into) (?P<btgt>" + _ANY + r"))?"
            r"|\b(?P<to>to|toward|towards|into|onto|up to|down to|until|reaching|reaches|reach|enters?|entering)"
            r" (?P<tgt>" + target + r")"
            r"|\b(?P<follow>chases|chase|chasing|follows|follow|following|pursues|pursue|after) (?P<ftgt>" + target + r")"
            r"|\b(?P<pass>passes|pass|passing|past|overtakes|overtaking) (?P<ptgt>" + target + r")"
            r"|\b(?P<across>across|along|through|down|up) (?P<atgt>" + _ANY + r")"
            r"|(?<![\w-])(?P<dir>upwards?|downwards?|up|down|leftwards?|rightwards?|left|right|skyward|straight up|away"
            r"|in circles|round and round|around|about)(?![\w-])"  # never the end of "close-up", "left-hand"
            r"|\b(?P<verb>[a-z]+)\b"
        )
        sources: set[str] = set()
        for m in pattern.finditer(text):
            if any(self.used[m.start():m.end()]):
                continue
            tspan = (m.start(), m.end())
            if m.group("from") and m.group("src").startswith("@"):
                sources.add(self.key_of(m.group("src")[1:]))
            if m.group("verb"):
                self._motion_verb(m.group("verb"), m.start(), m.end(), text)
                continue
            # "carries a tray from the kitchen door ... to a table": the door is where the path starts, not who moves
            owner = self.owner(m.start(), exclude=sources if m.group("to") or m.group("back") else set())
            if owner is None:
                continue
            t = self.things[owner]
            span = self._span(*tspan)
            if m.group("from"):
                src = m.group("src")
                step = self._target_step(src, m.start(), owner, span, StepKind.PLACE)
                if step is None:
                    continue
                if step.kind is StepKind.TOWARD or step.kind is StepKind.INTO:
                    # out of / from a subject: starts in it; off a table: starts on it
                    step.kind = StepKind.ONTO if m.group("from").startswith("off") else StepKind.INTO
                if m.group("from") == "away from" and step.region is None:
                    t.steps.append(Step(StepKind.SHRINK if step.other is None else StepKind.MOVE, span))
                    if step.other is not None and t.start is None:
                        t.start = step  # "pulls away from the dock": it starts beside the dock
                    continue
                thrower = self.things[t.start.other] if t.start is not None and t.start.other else None
                if t.start is None:
                    t.start = step
                elif (t.start.kind is StepKind.INTO and thrower is not None and step.region is not None
                      and thrower.place is None and not thrower.moves):
                    # "a girl throws a ball from the left": the thrower stands there, the ball starts with her
                    thrower.place, thrower.place_words, thrower.place_span = step.region, step.axes, span
                    if not t.steps:  # and it flies off across the frame (a later "to ..." says where instead)
                        away = -1 if step.region.h in (HRegion.RIGHT, HRegion.RIGHT_EDGE) else 1
                        t.steps.append(Step(StepKind.DIRECTION, span, direction=(away, 0)))
                        self.flight_guessed.add(owner)
                else:
                    t.steps.append(step)
                self._take(*tspan)
            elif m.group("back"):
                if m.group("btgt"):
                    step = self._target_step(m.group("btgt"), m.start(), owner, span, StepKind.PLACE)
                    if step is not None:
                        step.kind = StepKind.PLACE if step.region is not None else step.kind
                        t.steps.append(step)
                        if t.start is None and step.region is not None and len(t.steps) >= 2:
                            t.start = Step(StepKind.PLACE, span, region=step.region)
                else:
                    t.steps.append(Step(StepKind.BACK, span))
                self._take(*tspan)
            elif m.group("to"):
                word = m.group("to")
                kind = StepKind.INTO if word in ("into", "enter", "enters", "entering") else (
                    StepKind.ONTO if word == "onto" else StepKind.TOWARD)
                step = self._target_step(m.group("tgt"), m.start(), owner, span, kind)
                if step is None:
                    continue
                if step.region is None and step.other is None:
                    continue
                if step.other is not None and self.things[step.other].role is Role.REGION and kind is StepKind.TOWARD:
                    step.kind = StepKind.INTO
                if owner in self.flight_guessed:  # "throws a baseball from the left to a batter": the words say where
                    self.flight_guessed.discard(owner)
                    t.steps.clear()
                t.steps.append(step)
                self._take(*tspan)
            elif m.group("follow"):
                refs = self._refs(m.group("ftgt"), m.start(), owner)
                if refs:
                    t.steps.append(Step(StepKind.FOLLOW, span, other=refs[0]))
                    self.things[refs[0]].related = True
                    self._take(*tspan)
            elif m.group("pass"):
                refs = self._refs(m.group("ptgt"), m.start(), owner)
                if refs and self.things[refs[0]].boxed:
                    t.steps.append(Step(StepKind.PASS, span, other=refs[0]))
                    self.things[refs[0]].related = True
                    self._take(*tspan)
            elif m.group("across"):
                word, tgt = m.group("across"), m.group("atgt")
                if tgt.startswith("#"):
                    region_index = int(tgt[1:])
                    region, axes = self.regions[region_index][1], self.regions[region_index][2]
                    if word in ("across", "along", "through"):
                        self._set_place(owner, region, axes if axes != "hv" else "v", tspan)
                        if word != "through" and t.role is not Role.REGION and not _static_verb_before(text, m.start()):
                            t.steps.append(Step(StepKind.ACROSS, span, region=region))
                    else:
                        t.steps.append(Step(StepKind.DIRECTION, span, direction=(0, 1 if word == "down" else -1)))
                        t.steps.append(Step(StepKind.PLACE, span, region=region))
                    self._take(*tspan)
                    continue
                other = self.key_of(tgt[1:])
                o = self.things[other]
                if word in ("up", "down") and o.head in ("hill", "mountain", "stairs", "slope", "tree", "ladder",
                                                         "wall", "cliff", "steps", "rope", "pole"):
                    t.steps.append(Step(StepKind.DIRECTION, span, direction=(0, -1 if word == "up" else 1)))
                    t.links.append(Link(Rel.ON, (other,), span))
                    o.related = True
                elif o.role is Role.REGION:
                    t.links.append(Link(Rel.INSIDE, (other,), span))
                    o.related = True
                    if word != "through" or not t.steps:
                        t.steps.append(Step(StepKind.ACROSS, span))
                elif o.role is Role.BACKDROP:
                    t.steps.append(Step(StepKind.ACROSS, span))
                else:
                    t.steps.append(Step(StepKind.PASS, span, other=other))
                    o.related = True
                self._take(*tspan)
            elif m.group("dir"):
                word = m.group("dir")
                if word in ("in circles", "round and round", "around", "about"):
                    if word in ("around", "about") and not re.search(r"\b(?:" + "|".join(MOTION_VERBS) + r")\s+$",
                                                                    text[max(0, m.start() - 20):m.start()]):
                        continue  # "around 5 birds", "about noon": not a path
                    t.steps.append(Step(StepKind.LOOP, span))
                elif word == "away":
                    if re.match(r"\s*from (?:the )?(?:camera|viewer)", text[m.end():]) or re.search(
                        r"(?:camera|viewer)", self.prompt[span[1]:span[1] + 30].lower()
                    ):
                        t.steps.append(Step(StepKind.SHRINK, span))
                    elif re.match(r"\s*(?:[.,;!?]|$)", text[m.end():]):
                        t.steps.append(Step(StepKind.SHRINK, span))  # "..., moving away."
                    else:
                        continue  # "pulls away to the right": the direction comes next
                else:
                    d = (-1 if word.startswith("left") else 1 if word.startswith("right") else 0,
                         -1 if word.startswith(("up", "sky", "straight")) else 1 if word.startswith("down") else 0)
                    if self.things[owner].head in IMMOBILE_HEADS:
                        continue
                    t.steps.append(Step(StepKind.DIRECTION, span, direction=d))
                self._take(*tspan)

    def _refs(self, target: str, pos: int, owner: str) -> list[str]:
        if target.startswith("@"):
            return [self.key_of(target[1:])]
        if target.startswith("#"):
            return []
        return self.pronoun(pos, exclude={owner}, plural=target == "them")

    def _target_step(self, target: str, pos: int, owner: str, span: tuple[int, int], kind: StepKind) -> Step | None:
        if target.startswith("#"):
            _, region, axes = self.regions[int(target[1:])]
            return Step(StepKind.PLACE, span, region=region, axes=axes)
        refs = self._refs(target, pos, owner)
        if not refs or refs[0] == owner:
            return None
        other = refs[0]
        self.things[other].related = True
        if self.things[other].role is Role.BACKDROP:
            return Step(StepKind.ACROSS, span)
        return Step(kind if kind is not StepKind.PLACE else StepKind.TOWARD, span, other=other)

    def _motion_verb(self, verb: str, a: int, b: int, text: str) -> None:
        said_of = re.search(M + r"\s+(?:\w+ly\s+)?$", text[:a])
        if said_of and self.things[self.key_of(said_of.group(1))].role is Role.WEATHER:
            return  # "rain falls on a red car", "smoke rises from a chimney": the rain falls, not the car
        owner = self.owner(a)
        if re.search(r"(?:\band|\bthen|,)\s+$", text[:a]):
            # "pulls away from the dock and heads out to sea": a verb with no subject of its own is the clause's
            sentence = max([m.end() for m in re.finditer(r"[.!?;]", text[:a])] or [0])
            first = re.search(M, text[sentence:a])
            if first is not None and self.things[self.key_of(first.group(1))].boxed:
                owner = self.key_of(first.group(1))
        if owner is None:
            return
        t = self.things[owner]
        span = self._span(a, b)
        if t.head in IMMOBILE_HEADS or t.role is Role.REGION:
            return
        along = re.match(r" with " + M, text[b:])
        if along and verb in MOTION_VERBS | CARRY_VERBS:  # "walks with his dog to the left": the dog goes along
            other = self.key_of(along.group(1))
            if other != owner and self.things[other].boxed and self.things[other].companion_of is None:
                self.things[other].companion_of = owner
        if verb in UP_VERBS and not (verb.startswith("rise") and t.head in IMMOBILE_HEADS):
            t.steps.append(Step(StepKind.DIRECTION, span, direction=(0, -1)))
        elif verb in DOWN_VERBS:
            if verb.startswith("land") and re.match(r" (?:on|onto|in|at) ", text[b:]):
                t.steps.append(Step(StepKind.DIRECTION, span, direction=(0, 1)))
                return
            if verb in ("sets", "setting") and t.head not in ("sun", "moon"):
                return
            t.steps.append(Step(StepKind.DIRECTION, span, direction=(0, 1)))
        elif verb in LOOP_VERBS:
            t.steps.append(Step(StepKind.LOOP, span))
        elif verb in CARRY_VERBS:
            nxt = re.match(r" " + M, text[b:])
            if nxt:
                carried = self.key_of(nxt.group(1))
                if carried != owner and self.things[carried].boxed:
                    self.things[carried].companion_of = owner
        elif verb in ("throws", "throw", "throwing", "kicks", "kick", "tosses", "toss"):
            nxt = re.match(r" " + M, text[b:])
            if nxt:
                thrown = self.key_of(nxt.group(1))
                if thrown != owner:
                    self.things[thrown].start = Step(StepKind.INTO, span, other=owner)
        elif verb in MOTION_VERBS and verb not in FOLLOW_VERBS and verb not in PASS_VERBS:
            crossed = re.match(r" " + M, text[b:])
            if crossed and verb in ("cross", "crosses", "crossing", "traverse", "traverses"):
                # "a train crosses a bridge", "a swimmer crosses the pool": across it, on it if it stands still
                other = self.key_of(crossed.group(1))
                if other != owner and self.things[other].boxed:
                    self.things[other].related = True
                    if self.things[other].head in IMMOBILE_HEADS:
                        t.links.append(Link(Rel.ON, (other,), span))
                    t.steps.append(Step(StepKind.ACROSS, span))
                    return
            if crossed and verb in ("ride", "rides", "riding", "rode"):
                mount = self.key_of(crossed.group(1))
                if mount != owner and self.things[mount].boxed and self.things[mount].companion_of is None:
                    self.things[mount].companion_of = owner  # "rides a horse": the horse goes where the rider goes
                if not t.steps:
                    t.steps.append(Step(StepKind.MOVE, span))
                return
            if crossed:
                return  # "flies a kite": the kite is what moves, if anything
            if not t.steps:
                t.steps.append(Step(StepKind.MOVE, span))

    def _places(self, text: str) -> None:
        for m in re.finditer(r"(?:\b(?:on|at|in|near|by|from|lines|fills|covers|spans|across|along|over|toward|"
                             r"towards|to|into)\s)?#(\d+)", text):
            if any(self.used[m.start():m.end()]):
                continue
            index = int(m.group(1))
            (_, region, axes) = self.regions[index]
            owner = self.owner(m.start())
            if owner is None:
                continue
            word = text[m.start():m.end()].split()[0]
            t = self.things[owner]
            prev = re.search(r"([a-z]+) $", text[:m.start()])
            if word.startswith("#") and prev and prev.group(1) in MOTION_VERBS and region.v is VRegion.MIDDLE:
                # "walks left", "turns right": a direction, not a place
                dx = -1 if region.h in (HRegion.LEFT, HRegion.LEFT_EDGE) else 1 if region.h is not HRegion.CENTER else 0
                if dx:
                    t.steps.append(Step(StepKind.DIRECTION, self._span(prev.start(1), m.end()), direction=(dx, 0)))
                    self._take(m.start(), m.end())
                    continue
            if word in ("to", "toward", "towards", "into"):
                t.steps.append(Step(StepKind.PLACE, self._span(m.start(), m.end()), region=region, axes=axes))
            elif word == "from":
                step = Step(StepKind.PLACE, self._span(m.start(), m.end()), region=region)
                if t.start is None:
                    t.start = step
                else:
                    t.steps.append(step)
            elif _after_arrival_verb(text, m.start()) and t.moves:
                t.steps.append(Step(StepKind.PLACE, self._span(m.start(), m.end()), region=region))
            else:
                self._set_place(owner, region, axes, (m.start(), m.end()))
            self._take(m.start(), m.end())

    def _depth(self, text: str) -> None:
        for m in re.finditer(r"\b(?:coming|comes|come|moving|moves|getting|gets) closer\b", text):
            owner = self.owner(m.start())
            if owner is not None and self._take(m.start(), m.end()):
                self.things[owner].steps.append(Step(StepKind.GROW, self._span(m.start(), m.end())))
        for m in re.finditer(r"\b(?:in|into) the (?:[a-z'-]+ )?(foreground|background|distance)\b"
                             r"|\b(?:far )?in the distance\b"
                             r"|\b(?:close to|near|toward|towards|approaching|facing|at) the camera\b"
                             r"|\b(?:far|distant)\b", text):
            owner = self.owner(m.start())
            if owner is None:
                continue
            word = m.group(0)
            t = self.things[owner]
            if "foreground" in word:
                t.depth = 1
            elif "background" in word or "distance" in word or word in ("far", "distant"):
                t.depth = -1
            elif "camera" in word:
                if word.startswith(("toward", "approaching")):
                    t.steps.append(Step(StepKind.GROW, self._span(m.start(), m.end())))
                else:
                    t.depth = 1
            self._take(m.start(), m.end())

    def _still(self, text: str) -> None:
        for m in re.finditer(r"\b(?:remains?|stays?|stands?|sits?|is|are|waits?)\s+(?:completely\s+|perfectly\s+)?"
                             r"(?:stationary|still|motionless|static|in place|put|unmoving|fixed)\b"
                             r"|\b(?:does not|doesn't|never) move\b", text):
            owner = self.owner(m.start())
            if owner is not None:
                self.things[owner].still = True
                self.things[owner].still_span = self._span(m.start(), m.end())

    def _settle_roles(self) -> None:
        for t in self.things.values():  # "a vase between two candles on a table": the vase is on it too
            on = [link for link in t.links if link.rel is Rel.ON]
            for link in t.links:
                if link.rel is Rel.FLANK and on:
                    for o in link.others:
                        if not any(x.rel is Rel.ON for x in self.things[o].links):
                            self.things[o].links.append(Link(Rel.ON, on[0].others, on[0].span))
        for t in self.things.values():  # what sits on a thing, or goes with it, shares its depth
            support = next((link.others[0] for link in t.links if link.rel is Rel.ON), t.companion_of)
            if t.depth == 0 and support is not None and support in self.things:
                t.depth = self.things[support].depth
        for t in self.things.values():
            if t.role is Role.BACKDROP and (t.related or t.place is not None or t.links or t.steps or t.still):
                t.role = Role.SUBJECT


MASS_PLURALS = frozenset("mountains hills clouds woods waves dunes cliffs trees".split()) - {"trees", "clouds"}


def _first_verb(text: str) -> int | None:
    for m in re.finditer(r"[a-z]+", text):
        if m.group(0) in VERBS and m.group(0) not in ("is", "are"):
            return m.start()
    return None


def _lands_before(text: str, pos: int) -> bool:
    return bool(re.search(r"\b(?:lands?|landing|jumps?|jumping|hops?|climbs?|settles?|alights?|drops?)(?: \w+)? $",
                          text[max(0, pos - 30):pos]))


def _after_arrival_verb(text: str, pos: int) -> bool:
    """Whether the words before ``pos`` end in an arrival: "lands", "stops", "ends up"."""
    return bool(re.search(r"\b(?:lands?|landing|stops?|stopping|arrives?|arriving|ends?(?: up)?|ending(?: up)?|settles?"
                          r"|comes to (?:a )?(?:rest|stop)|halts?|parks?)(?: \w+ly)? $", text[max(0, pos - 40):pos]))


def _static_verb_before(text: str, pos: int) -> bool:
    return bool(re.search(r"\b(?:hangs?|hanging|lines|stretch(?:es|ing)?|spans?|lies|lying|stands?|sits?)(?: \w+)? $",
                          text[max(0, pos - 30):pos]))


def _known_mentions(prompt: str, names: Sequence[str], found: list[_Mention]) -> list[_Mention]:
    """The noun phrases the reader found, named as the canvas names them where they match ("the
    ball" is the canvas's "yellow ball"), plus the canvas's names found only as words."""
    from shotsketch.core.phrasing import find_subject_spans

    cleans = list(dict.fromkeys(" ".join(n.split()) for n in names if isinstance(n, str) and n.strip()))
    out: list[_Mention] = []
    for m in found:
        match = next((c for c in cleans if name_key(c) == name_key(m.name)), None) or next(
            (c for c in cleans if _same_thing(m, c, c.split()[-1].lower())), None)
        if match is not None:
            m.name, m.known = match, True
        out.append(m)
    taken = [m.span for m in out]
    for clean in sorted(cleans, key=len, reverse=True):
        for a, b in find_subject_spans(prompt, clean):
            if any(a < e and b > s for s, e in taken):
                continue
            out.append(_Mention((a, b), clean, clean.split()[-1].lower(), None, None, False, 1.0, known=True))
            taken.append((a, b))
    out.sort(key=lambda m: m.span)
    return out


def read_prompt(prompt: str, subjects: Sequence[str] | None = None) -> Reading:
    """What the prompt says about who is where and how they move. With ``subjects`` (names the
    canvas already has) only those are drawn: the prompt's words for them take their names, other
    noun phrases are read (a region, a setting) but not drawn."""
    reader = _Reader(prompt if isinstance(prompt, str) else "", subjects)
    reading = reader.read()
    if subjects is not None:
        for name in subjects:
            if isinstance(name, str) and name.strip():
                key = name_key(name)
                if key not in reading.things:
                    clean = " ".join(name.split())
                    reading.things[key] = Thing(key, clean, clean.split()[-1].lower(), Role.SUBJECT)
                    reading.order.append(key)
    return reading
