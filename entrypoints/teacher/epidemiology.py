"""Epidemic questions from sciserve's own `simulate_epidemic` schema (tool_servers/
epidemiology.py: SIR and SEIR with contact-reducing interventions). AWL's epidemiology
items read the authors' California DCRNN arrays, which a compartment model cannot
reproduce, so these ask what the tool does answer.

Parameters: a population of 5,000-5,000,000 (rounded to a thousand), R0 1.2-4.0, an
infectious period of 3-14 days, for SEIR an incubation period of 2-10 days, 1-100
initially infectious people, 120-720 simulated days, and in one question of two a
distancing window (start day 5-90, 14-90 days long, contacts cut by 10-70%).

Asked (the tool's `output`): the day infections peak (1 decimal), the peak number
infectious at once, the number ever infected, or the number infectious on a given day
(people as integers).
"""

from __future__ import annotations

import random
from typing import Any

from entrypoints.teacher.problems import Ask, Draft

DOMAIN = "epidemiology"
TOOL = "simulate_epidemic"
OUTPUTS = {
    "peak_day": ("On which day does the number of infectious people peak?",
                 "the day of the peak", "days", 1),
    "peak_infected": ("What is the largest number of people infectious at the same time?",
                      "the peak number of infectious people", "people", 0),
    "final_size": ("How many people are infected over the whole simulated period?",
                   "the number of people ever infected", "people", 0),
    "infected_at_day": ("How many people are infectious on day {day}?",
                        "the number of infectious people on day {day}", "people", 0),
}  # fmt: skip


def draw(rng: random.Random) -> Draft:
    model = rng.choice(("SIR", "SEIR"))
    population = rng.randint(5, 5000) * 1000
    r0 = round(rng.uniform(1.2, 4.0), 1)
    infectious = rng.randint(3, 14)
    initial = rng.randint(1, 100)
    days = rng.randrange(120, 721, 30)
    output = rng.choice(list(OUTPUTS))
    args: dict[str, Any] = {
        "model": model,
        "population": float(population),
        "r0": r0,
        "infectious_period_days": float(infectious),
    }
    incubation = ""
    if model == "SEIR":
        period = rng.randint(2, 10)
        args["incubation_period_days"] = float(period)
        incubation = f"an incubation period of {period} days, "
    args |= {"initial_infected": float(initial), "days": float(days)}
    distancing = ""
    if rng.random() < 0.5:
        start = rng.randint(5, 90)
        length = rng.randint(14, 90)
        cut = rng.randrange(10, 71, 10)
        args["interventions"] = [
            {"start_day": float(start), "end_day": float(start + length),
             "contact_reduction": cut / 100}
        ]  # fmt: skip
        distancing = (
            f" A distancing order cuts contacts by {cut}% from day {start} to day {start + length}."
        )
    args["output"] = output
    sentence, quantity, unit, digits = OUTPUTS[output]
    if output == "infected_at_day":
        day = rng.randint(10, days)
        args["day"] = float(day)
        sentence, quantity = sentence.format(day=day), quantity.format(day=day)
    question = (
        f"An outbreak in a population of {population:,} people is modelled as an {model} "
        f"epidemic with basic reproduction number R0 = {r0}, {incubation}an infectious period "
        f"of {infectious} days, and {initial} infectious people on day 0.{distancing} The "
        f"model is run for {days} days. {sentence}"
    )
    ask = Ask(rule="value", path=("value",), options="number", quantity=quantity, unit=unit,
              digits=digits)  # fmt: skip
    variant = f"{model}/{'distancing' if distancing else 'free'}"
    return Draft(
        domain=DOMAIN,
        template=f"epidemiology/{variant}/{output}",
        question=question,
        tool=TOOL,
        arguments=args,
        ask=ask,
        scenario=dict(args),
    )
