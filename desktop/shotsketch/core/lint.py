"""Prompt lint: spatial-vocabulary advice with one-click rewrites.

Each :class:`Finding` has the span of text it is about, a severity, a stable code, an
explanation a person can act on, a suggestion, and (where a safe one exists) the exact
``replacement`` text for the span, which the prompt editor applies as a quick fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from shotsketch.core.phrasing import DETERMINERS, Draft, Region, draft_layout, parse_region, subject_phrase
from shotsketch.core.spatial import Reading, Step, StepKind, read_prompt

DEFAULT_MAX_TOKENS = 512
"""Wan2.2's umT5 text encoder reads this many tokens (the pipeline's max_sequence_length)."""

DEFAULT_NEGATIVE = (
    "distorted limbs, floating objects, deformed hands, extra fingers, fused fingers, disfigured faces, "
    "blurry details, low quality, worst quality, JPEG artifacts, subtitles, watermark, text, overexposed, "
    "still picture, messy background, many people in the background, walking backwards"
)

NEGATIVE_PRESETS: dict[str, str] = {
    "default": DEFAULT_NEGATIVE,
    "objects": (
        "floating objects, objects passing through each other, warped shapes, melting, flickering, "
        "blurry details, low quality, worst quality, JPEG artifacts, subtitles, watermark, text, still picture"
    ),
    "people": (
        "distorted limbs, extra limbs, deformed hands, extra fingers, fused fingers, disfigured faces, "
        "poorly drawn face, three legs, walking backwards, many people in the background, blurry details, "
        "low quality, worst quality, JPEG artifacts, subtitles, watermark, text"
    ),
    "minimal": "low quality, worst quality, blurry, distorted, watermark, text",
    # The negative prompt Wan2.2's authors use (in Chinese, which the umT5 encoder reads well).
    "wan_official": (
        "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
        "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
        "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
    ),
}

MAX_SUBJECTS_PER_SENTENCE = 3
MAX_ACTIONS_PER_SENTENCE = 2


class Severity(Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Target(Enum):
    """Which text a finding's span refers to."""

    PROMPT = "prompt"
    NEGATIVE = "negative"


@dataclass(frozen=True)
class Finding:
    span: tuple[int, int]
    severity: Severity
    code: str
    message: str
    suggestion: str | None = None
    replacement: str | None = None
    target: Target = Target.PROMPT

    def apply(self, text: str) -> str:
        """``text`` with this finding's replacement put at its span (unchanged if none)."""
        if self.replacement is None:
            return text
        start, end = self.span
        return text[:start] + self.replacement + text[end:]

    def to_dict(self) -> dict[str, Any]:
        return {
            "span": list(self.span),
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "suggestion": self.suggestion,
            "replacement": self.replacement,
            "target": self.target.value,
        }


# -- spatial words, for the editor's highlighter ---------------------------------------------------

SPATIAL_WORDS: tuple[str, ...] = (
    "to the left of", "to the right of", "in front of", "on top of", "in the middle of", "left edge",
    "right edge", "top left", "top right", "bottom left", "bottom right", "far left", "far right",
    "left", "right", "center", "centre", "middle", "top", "bottom", "edge", "corner", "upper", "lower",
    "above", "below", "under", "underneath", "beneath", "over", "behind", "foreground", "background",
    "leftward", "leftwards", "rightward", "rightwards", "upward", "upwards", "downward", "downwards",
    "across", "toward", "towards", "stationary", "motionless", "rises", "falls", "ascends", "descends",
    "near", "nearby", "next to", "beside", "around", "somewhere", "close to",
)
_SPATIAL_RE = re.compile(
    r"(?<![\w-])(?:" + "|".join(r"[\s-]+".join(map(re.escape, w.split())) for w in sorted(SPATIAL_WORDS, key=len, reverse=True)) + r")(?![\w-])",
    re.IGNORECASE,
)


def spatial_spans(prompt: str) -> list[tuple[int, int]]:
    """Non-overlapping spans of spatial words and phrases in ``prompt``, in order."""
    return [m.span() for m in _SPATIAL_RE.finditer(prompt or "")]


# -- token counting ---------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def estimate_tokens(text: str) -> int:
    """A quick estimate of umT5 tokens (words, longer words in pieces, punctuation, end token).
    The engine passes the real tokenizer's count instead when it has one loaded."""
    count = 1
    for m in _TOKEN_RE.finditer(text):
        piece = m.group(0)
        if piece.isascii():
            count += 1 + max(0, len(piece) - 6) // 4
        else:
            count += max(1, math.ceil(len(piece) / 2))
    return count


# -- the checks -------------------------------------------------------------------------------------

_VAGUE_RELATION = r"next\s+to|beside|near|close\s+to|close\s+by|by\s+the\s+side\s+of|in\s+the\s+vicinity\s+of|alongside"
_VAGUE_RE = re.compile(
    rf"\b(?P<rel>{_VAGUE_RELATION})\b(?P<after>\s+(?P<obj>[\w-]+(?:[\s-]+[\w-]+){{0,5}}))?"
    r"|\b(?P<somewhere>somewhere(?:\s+(?:in|on)\s+(?:the\s+)?(?:screen|frame|scene|picture|image|shot))?)\b"
    r"|\b(?P<nearby>nearby)\b",
    re.IGNORECASE,
)
_PLACED_BESIDE = frozenset(("next to", "beside", "alongside"))
"""Words the drafter places (beside the other subject), so they are not called vague."""
_SENTENCE_RE = re.compile(r"[^.!?;\n]+[.!?;]*")
_ACTION_VERBS = frozenset(
    """
    moves rolls flies walks runs rises falls remains stays sits stands drives jumps swims floats glides hovers
    spins slides crosses enters exits leaves appears disappears goes comes travels turns climbs drops descends
    ascends sinks bounces dances waves looks watches holds carries follows chases passes approaches circles
    lands rests lies hangs grows shrinks plays rides sails drifts races speeds zooms rotates shines glows waits
    sleeps eats emerges hops crawls marches strolls dashes sprints wanders heads sways swings flows pours
    blows burns opens closes stops starts begins continues throws catches kicks pushes pulls lifts picks
    dives grazes sings talks laughs smiles
    """.split()
)
_NEGATION_RE = re.compile(r"\b(?:without|no)\s+(?!one\b|longer\b|more\b|matter\b)[\w-]+(?:\s+[\w-]+){0,2}", re.IGNORECASE)


def _vague_findings(prompt: str) -> list[Finding]:
    out = []
    for m in _VAGUE_RE.finditer(prompt):
        if m.group("rel"):
            word = m.group("rel")
            span = m.span("rel")
            region = None
            obj = m.group("obj") or ""
            words = obj.split()
            for n in range(len(words), 0, -1):
                region = parse_region(" ".join(words[:n]))
                if region is not None:
                    break
            if region is None and " ".join(word.lower().split()) in _PLACED_BESIDE:
                continue  # "next to the sofa": drawn beside it, on the side with room
            if region is not None:
                replacement = region.preposition
                suggestion = f'Use "{region.preposition}" to place it in that part of the frame.'
            else:
                replacement = "to the left of"
                suggestion = 'Say which side: "to the left of", "to the right of", "in front of" or "behind".'
            out.append(Finding(span, Severity.WARNING, "vague-spatial",
                               f'"{word}" does not say where; video models place it anywhere.', suggestion, replacement))
        elif m.group("somewhere"):
            out.append(Finding(m.span("somewhere"), Severity.WARNING, "vague-spatial",
                               '"somewhere" leaves the position to chance.',
                               'Name a region: "on the left", "in the center", "at the top right".', "in the center"))
        elif m.group("nearby"):
            out.append(Finding(m.span("nearby"), Severity.WARNING, "vague-spatial",
                               '"nearby" does not say where.',
                               'Name a region ("on the right") or a relation ("to the right of the house").', None))
    return out


def _sentences(prompt: str) -> list[tuple[int, int]]:
    return [m.span() for m in _SENTENCE_RE.finditer(prompt) if m.group(0).strip()]


def _crowding_findings(prompt: str, reading: Reading) -> list[Finding]:
    out = []
    mentions = sorted((span, t.key) for t in reading.boxed() for span in t.mentions)
    for start, end in _sentences(prompt):
        text = prompt[start:end]
        stripped = len(text) - len(text.lstrip())
        span = (start + stripped, start + len(text.rstrip()))
        keys = list(dict.fromkeys(key for (s, e), key in mentions if start <= s < end))
        if len(keys) > MAX_SUBJECTS_PER_SENTENCE:
            names = ", ".join(reading.things[k].name for k in keys)
            out.append(Finding(span, Severity.WARNING, "too-many-subjects",
                               f"This sentence has {len(keys)} subjects ({names}); small video models keep track of "
                               f"about {MAX_SUBJECTS_PER_SENTENCE} per sentence.",
                               "Split it into shorter sentences, one or two subjects each, or drop the minor ones.",
                               None))
        verbs = _action_verbs(text)
        if len(verbs) > MAX_ACTIONS_PER_SENTENCE:
            out.append(Finding(span, Severity.WARNING, "too-many-actions",
                               f"This sentence has {len(verbs)} actions ({', '.join(verbs)}); a 5-second clip shows "
                               f"one or two clearly.",
                               "Keep the main action; move the others to another shot or a separate sentence.", None))
    return out


def _action_verbs(text: str) -> list[str]:
    """Action verbs in a sentence: "-s" forms ("rolls"), and base forms ("birds fly") unless a
    determiner makes them a noun ("a walk")."""
    words = re.findall(r"[A-Za-z]+", text)
    out = []
    for i, w in enumerate(words):
        lw = w.lower()
        if lw in _ACTION_VERBS:
            out.append(w)
        elif (lw + "s" in _ACTION_VERBS or lw + "es" in _ACTION_VERBS or lw[:-1] + "ies" in _ACTION_VERBS) and not (
            i > 0 and words[i - 1].lower() in DETERMINERS
        ):
            out.append(w)
    return out


def _sign(v: float) -> int:
    return 0 if abs(v) < 1e-9 else (1 if v > 0 else -1)


_AXIS_WORDS = {(0, 1): "right", (0, -1): "left", (1, 1): "down", (1, -1): "up"}


def _said_directions(prompt: str, steps: list[Step], start: Step | None) -> list[tuple[tuple[int, int], Step]]:
    """The directions the words give, in their order: a verb or adverb ("rises", "moves left"), or
    from one named place to the next ("from the left to the right"). A way back is no conflict."""
    out: list[tuple[tuple[int, int], Step]] = []
    last: Region | None = start.region if start is not None else None
    for step in sorted(steps, key=lambda s: s.span):
        if step.kind is StepKind.DIRECTION:
            out.append((step.direction, step))
        elif step.kind is StepKind.PLACE and step.region is not None:
            back = "back" in prompt[step.span[0]:step.span[1]].lower() or re.search(
                r"\bback\s+$", prompt[max(0, step.span[0] - 12):step.span[0]].lower())
            if last is not None and not back:
                (ax, ay), (bx, by) = last.anchor, step.region.anchor
                out.append(((_sign(bx - ax), _sign(by - ay)), step))
            last = step.region
    return out


def _conflict_findings(prompt: str, reading: Reading) -> list[Finding]:
    out = []
    for t in reading.boxed():
        who = subject_phrase(t.name)
        who = who[0].upper() + who[1:]
        moving = [s for s in t.steps if s.kind not in (StepKind.MOVE, StepKind.GROW, StepKind.SHRINK)]
        if t.still and (moving or t.start is not None):
            said = min(([t.start] if t.start else []) + moving, key=lambda s: s.span)
            still_words = prompt[slice(*t.still_span)] if t.still_span else "remains stationary"
            out.append(Finding(said.span, Severity.WARNING, "conflicting-directions",
                               f'{who} is said to stay still ("{still_words}") but also to move '
                               f'("{prompt[slice(*said.span)]}").',
                               "Keep one: either it moves along a path, or it remains stationary.", None))
            continue
        first_place = next((s for s in sorted(t.steps, key=lambda s: s.span)
                            if s.kind is StepKind.PLACE and s.region is not None), None)
        if t.start is not None and t.start.region is not None and first_place is not None and (
                first_place.region == t.start.region):
            out.append(Finding((t.start.span[0], first_place.span[1]), Severity.WARNING, "no-motion",
                               f"{who} goes from {t.start.region.words} to the same place, so it does not move.",
                               "Name two different places, or say it remains stationary there.", None))
        seen: dict[int, tuple[int, Step]] = {}
        for d, step in _said_directions(prompt, t.steps, t.start):
            for axis, sign in ((0, d[0]), (1, d[1])):
                if sign == 0:
                    continue
                if axis in seen and seen[axis][0] == -sign:
                    first = seen[axis][1]
                    out.append(Finding(step.span, Severity.WARNING, "conflicting-directions",
                                       f'{who} moves {_AXIS_WORDS[(axis, seen[axis][0])]} in '
                                       f'"{prompt[slice(*first.span)]}" but {_AXIS_WORDS[(axis, sign)]} in '
                                       f'"{prompt[slice(*step.span)]}".',
                                       'Describe one path, e.g. "from the left to the right, then back to the left".',
                                       None))
                else:
                    seen[axis] = (sign, step)
        if t.place_conflict is not None and not moving and t.start is None:
            first, second = t.place_conflict
            out.append(Finding(second, Severity.WARNING, "conflicting-places",
                               f'{who} is placed both "{prompt[slice(*first)]}" and "{prompt[slice(*second)]}".',
                               "Give it one place, or a path: \"from ... to ...\".", None))
    return out


def _unplaced_findings(prompt: str, reading: Reading, draft: Draft) -> list[Finding]:
    """Subjects nothing places: not in a part of the frame, not beside or moving to another
    subject, not moving. The sketch guesses a place; the rewrite writes that place into the prompt."""
    out = []
    anchors = {o for t in reading.boxed() for link in t.links for o in link.others}
    anchors |= {s.other for t in reading.boxed() for s in t.steps if s.other}
    guessed = {n.casefold() for n in draft.unplaced}
    for t in reading.boxed():
        if t.name.casefold() not in guessed or t.key in anchors or t.links or t.moves or not t.mentions:
            continue
        boxes = draft.layout.guided_boxes_at(0.0).get(t.name)
        if not boxes:
            continue
        cx = sum(b.center_x for b in boxes) / len(boxes)
        cy = sum(b.center_y for b in boxes) / len(boxes)
        where = Region.of_point(cx, cy).location
        span = t.mentions[0]
        words = prompt[slice(*span)]
        out.append(Finding(span, Severity.INFO, "unplaced-subject",
                           f'Nothing says where {subject_phrase(t.name)} is; the sketch puts it {where}.',
                           f'Say where it is, e.g. "{words} {where}".', f"{words} {where}"))
    return out


def _negation_findings(prompt: str) -> list[Finding]:
    return [
        Finding(m.span(), Severity.INFO, "negation",
                f'"{m.group(0)}": video models often ignore "no" and "without" and may show the thing anyway.',
                "Describe what is there instead, and put the unwanted thing in the negative prompt.", None)
        for m in _NEGATION_RE.finditer(prompt)
    ]


def _length_finding(text: str, max_tokens: int, count: Callable[[str], int], target: Target) -> Finding | None:
    total = count(text)
    if total <= max_tokens:
        return None
    # the first word at which the encoder has stopped reading
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    lo, hi = 0, len(starts) - 1
    cut = starts[-1] if starts else 0
    while lo <= hi:
        mid = (lo + hi) // 2
        if count(text[: starts[mid]]) >= max_tokens:
            cut = starts[mid]
            hi = mid - 1
        else:
            lo = mid + 1
    what = "prompt" if target is Target.PROMPT else "negative prompt"
    return Finding((cut, len(text)), Severity.ERROR, "too-long",
                   f"The {what} is about {total} tokens; the text encoder reads only the first {max_tokens}, "
                   "so the marked text is ignored.",
                   "Shorten it: keep the subjects, their places and their motion; drop style lists.", None, target)


def lint(
    prompt: str,
    negative_prompt: str | None = None,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    count_tokens: Callable[[str], int] | None = None,
) -> list[Finding]:
    """Findings for a prompt (and its negative prompt), ordered by position."""
    prompt = prompt if isinstance(prompt, str) else ""
    count = count_tokens or estimate_tokens
    findings: list[Finding] = []
    if not prompt.strip():
        findings.append(Finding((0, len(prompt)), Severity.ERROR, "empty-prompt", "The prompt is empty.",
                                "Describe the subjects, where they are and how they move.", None))
    else:
        reading = read_prompt(prompt)
        vague = _vague_findings(prompt)
        findings += vague
        findings += _crowding_findings(prompt, reading)
        findings += _conflict_findings(prompt, reading)
        tried = [sentence for sentence in _sentences(prompt)
                 if any(sentence[0] <= f.span[0] < sentence[1] for f in vague)]
        findings += [f for f in _unplaced_findings(prompt, reading, draft_layout(prompt))
                     if not any(a <= f.span[0] < b for a, b in tried)]  # a vague place has its own fix
        findings += _negation_findings(prompt)
        long = _length_finding(prompt, max_tokens, count, Target.PROMPT)
        if long:
            findings.append(long)
    if negative_prompt is None or not negative_prompt.strip():
        neg = negative_prompt or ""
        findings.append(Finding((0, len(neg)), Severity.WARNING, "missing-negative",
                                "There is no negative prompt; Wan shows more distorted limbs, floating objects and "
                                "flicker without one.",
                                f'Use a negative prompt such as "{DEFAULT_NEGATIVE[:60]}...".', DEFAULT_NEGATIVE,
                                Target.NEGATIVE))
    else:
        long = _length_finding(negative_prompt, max_tokens, count, Target.NEGATIVE)
        if long:
            findings.append(long)
    order = {Target.PROMPT: 0, Target.NEGATIVE: 1}
    findings.sort(key=lambda f: (order[f.target], f.span, f.code))
    return findings
