"""What "Draft layout from prompt" invents on creators' prompts it was not written for: for each
prompt, whether the final prompt the model reads (core/prompting.py final_prompt of the prompt and
its own draft) says more than the prompt, and which boxes name no thing in the frame.

    PYTHONPATH=desktop python bench/draft_invented.py               # this tree
    python bench/draft_invented.py --code OLD/desktop               # another tree (git archive REV desktop)

Three sets of 20 prompts (session 11), each written and first measured before the fixes it then
prompted: set A at 7b29d77 (before 055250b: a box where the draft guessed is said only once it is
moved), set B at 055250b, set C at 7d945da. Each line counts the prompts whose final prompt gained a
sentence; the boxes are listed for a person to judge (which of them name no thing).
"""

from __future__ import annotations

import argparse
import sys

SETS = {
    "A": [
        "A cinematic tracking shot follows a red fox trotting through a snowy forest from left to right.",
        "Close-up shot of an elderly man sipping tea at a wooden table by the window.",
        "A young couple walks hand in hand along the beach at sunset, their dog running ahead of them.",
        "A lone cowboy rides a horse across the desert toward the mountains in the distance.",
        "Wide shot of a busy Tokyo crossing, crowds of people walking in every direction under neon lights.",
        "A little boy flies a red kite on a grassy hill while his father watches from the right.",
        "An astronaut floats inside the space station, a blue Earth visible through the window behind her.",
        "A woman in a white dress twirls in a field of sunflowers in the center of the frame.",
        "Slow motion: a drop of water falls into a still pond, ripples spreading outward.",
        "A vintage car drives down a winding mountain road, the camera following from behind.",
        "A chef flips a pancake in a pan on the left while a waiter carries plates to the right.",
        "Two wolves howl on a rocky ridge under a full moon.",
        "A ballerina performs a pirouette on a dark stage lit by a single spotlight.",
        "Drone footage of a sailboat gliding across a turquoise bay toward a small island on the right.",
        "A teenage girl skateboards down an empty street at dusk, passing a row of parked cars on the left.",
        "A steaming cup of coffee sits on a desk next to an open laptop in a cozy home office.",
        "Medium close-up of a guitarist playing on a stage, colorful lights flashing behind him.",
        "A hot air balloon rises slowly over a green valley at sunrise.",
        "A soldier crouches behind a sandbag wall on the left as explosions light up the sky.",
        "A cat sleeps on a windowsill while rain streaks down the glass.",
    ],
    "B": [
        "A panda eats bamboo on the left side of a misty bamboo forest.",
        "Close-up of hands kneading dough on a floured wooden counter.",
        "A vintage train pulls into a snowy station from the right, steam billowing from its chimney.",
        "A young woman jogs along a riverside path at sunrise, headphones on, city skyline behind her.",
        "Aerial view of a tractor plowing a golden wheat field from left to right.",
        "A magician pulls a white rabbit out of a black top hat in the center of a stage.",
        "Two children chase each other around a large oak tree in a sunny meadow.",
        "A lighthouse beam sweeps across a stormy sea at night while a ship struggles on the right.",
        "A barber trims a man's beard in an old-fashioned barbershop, mirror on the left wall.",
        "A samurai stands in the rain on the right, facing three opponents on the left.",
        "Underwater shot of a sea turtle swimming past a colorful coral reef toward the camera.",
        "A girl blows out candles on a birthday cake while her friends clap around her.",
        "A red double-decker bus drives past Big Ben from right to left.",
        "Portrait shot of an old woman smiling in front of a blue door.",
        "A fox cub peeks out from behind a log in the lower left corner.",
        "A potter shapes a clay vase on a spinning wheel in a sunlit studio.",
        "Fireworks explode above a city bridge at night, reflected in the river below.",
        "A dog jumps through a hoop held by a trainer on the left.",
        "A surfer rides a huge wave from the right to the left as the sun sets behind him.",
        "A monk walks slowly up the stone steps of a mountain temple toward the top of the frame.",
    ],
    "C": [
        "A white horse gallops along a foggy shoreline at dawn, waves breaking on the left.",
        "Close-up of a chef's hands slicing a tomato on a wooden cutting board.",
        "A young man sits alone on a bench in a rainy park, holding a red umbrella.",
        "Aerial shot of a winding river cutting through a dense green jungle.",
        "A toddler chases a puppy across a sunny backyard from left to right.",
        "A woman paints a mural on a brick wall on the right while a friend holds a ladder.",
        "A paper lantern floats up into the night sky above a quiet lake.",
        "Tracking shot of a cyclist speeding past a row of colorful houses on the left.",
        "A scientist in a white coat examines a glowing crystal in the center of a dark lab.",
        "Two old men play chess at a table in the park, pigeons pecking at the ground nearby.",
        "A butterfly lands on a purple flower in the foreground, a meadow blurred behind it.",
        "A train crosses a tall stone bridge over a deep valley from right to left.",
        "A girl in a yellow coat walks her dog along a snowy sidewalk toward the camera.",
        "Medium shot of a boxer wrapping his hands in a dim locker room.",
        "A fishing boat returns to the harbor at sunset, seagulls circling above it.",
        "A street artist spray-paints a colorful mural on the left side of a concrete wall.",
        "A family has a picnic on a hill under a large oak tree on the right.",
        "A deer drinks from a stream in the middle of a misty forest.",
        "Handheld shot of a runner crossing the finish line as the crowd cheers behind her.",
        "A snowboarder carves down a steep slope from the top right to the bottom left.",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", help="the 'desktop' folder of the tree to measure (default: this one's)")
    parser.add_argument("--quiet", action="store_true", help="only the counts")
    args = parser.parse_args()
    if args.code:
        sys.path.insert(0, args.code)
    from shotsketch.core.phrasing import draft_layout
    from shotsketch.core.prompting import final_prompt

    for name, prompts in SETS.items():
        invented = 0
        for prompt in prompts:
            draft = draft_layout(prompt)
            added = final_prompt(prompt, draft.layout)[len(prompt):].strip()
            invented += bool(added)
            if not args.quiet:
                boxes = [s.name for s in draft.layout.subjects] + [g.name for g in draft.layout.groups]
                print(f"{prompt}\n    boxes: {', '.join(boxes) or '-'}" + (f"\n    + {added}" if added else ""))
        print(f"set {name}: {invented} of {len(prompts)} final prompts say more than the prompt")


if __name__ == "__main__":
    main()
