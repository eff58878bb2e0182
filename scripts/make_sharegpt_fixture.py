#!/usr/bin/env python3
"""Writes the open loop's dataset fixtures. fixtures/datasets/sharegpt-synthetic.json: a small ShareGPT-shaped dataset made by the
project (no hub download). 250 conversations: 240 of two to four turns whose first-turn and
second-turn lengths follow ShareGPT's shape (log-normal, short prompts with a long tail, answers
about twice as long), and 10 of a single turn, which readers skip as vLLM's bench does. Words
are drawn from a fixed list so each is about one token; the seed makes the file reproducible.
fixtures/datasets/lengths.jsonl: 40 lines, 30 of `{"prompt_len", "output_len"}` and 10 of
`{"prompt"}`, for the JSONL reader.

    python3 scripts/make_sharegpt_fixture.py
"""

import json
import math
import os
import random

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an had they you were their one all we can her has there been if more when "
    "will would who so no time people water house world school money music river market "
    "system window"
).split()


def text(rng, tokens):
    # Four characters a token on average: words of 2-6 letters plus a space.
    out, chars = [], 0
    while chars < tokens * 4:
        w = rng.choice(WORDS)
        out.append(w)
        chars += len(w) + 1
    return " ".join(out)


def lognormal_tokens(rng, median, sigma, lo, hi):
    return int(min(hi, max(lo, round(math.exp(rng.gauss(math.log(median), sigma))))))


def main():
    rng = random.Random(20240917)
    convs = []
    for i in range(250):
        if i % 25 == 24:
            convs.append({"id": f"syn-{i}", "conversations": [
                {"from": "human", "value": text(rng, 12)}]})
            continue
        prompt = lognormal_tokens(rng, 40, 1.0, 4, 1024)
        answer = lognormal_tokens(rng, 120, 0.8, 4, 1024)
        turns = [{"from": "human", "value": text(rng, prompt)},
                 {"from": "gpt", "value": text(rng, answer)}]
        for _ in range(rng.randrange(0, 2)):
            turns.append({"from": "human", "value": text(rng, 10)})
        convs.append({"id": f"syn-{i}", "conversations": turns})
    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "datasets",
                        "sharegpt-synthetic.json")
    with open(path, "w") as f:
        json.dump(convs, f, indent=1)
        f.write("\n")


def jsonl():
    rng = random.Random(5)
    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "datasets", "lengths.jsonl")
    with open(path, "w") as f:
        for i in range(40):
            if i % 4 == 3:
                words = " ".join(rng.choice(["the", "river", "market", "of", "world"])
                                 for _ in range(rng.randrange(5, 60)))
                f.write('{"prompt": "%s"}\n' % words)
            else:
                f.write('{"prompt_len": %d, "output_len": %d}\n'
                        % (rng.randrange(8, 200), rng.randrange(8, 64)))


if __name__ == "__main__":
    main()
    jsonl()
