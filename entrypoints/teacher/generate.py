"""Generated problem sets: `count` problems of a domain for a seed and a split, each
with its reference from the real tool (`generate`).

Problem `i` of (domain, split, seed) comes from its own rng (`problem_rng`), so a set is
the same whenever it is made again, and a larger count only adds problems. A draw is
skipped and drawn again (and counted) when its parameter tuple lies on the other side
of the held-out partition, when it is one of AWL's test items (PDE, MuJoCo), or when
the run cannot make a question AWL's way.
"""

from __future__ import annotations

import random
from collections import Counter
from types import ModuleType
from typing import Any

from entrypoints.teacher import climate, epidemiology, gsm, mujoco, pde
from entrypoints.teacher.leak import ReservedKeys
from entrypoints.teacher.problems import Draft, Problem, Split, problem_rng, split_of
from entrypoints.teacher.reference import form_of, settle
from workers.tools.client import ToolClient

# `--domain` names: the served domain of each generator, and its module.
GENERATORS: dict[str, ModuleType] = {
    "pde": pde,
    "mechanics": mujoco,
    "climate": climate,
    "epidemiology": epidemiology,
}
ALIASES = {"mujoco": "mechanics", "gsm": "gsm_symbolic"}
DOMAINS = (*GENERATORS, "gsm_symbolic")
AWL_TEST_DOMAINS = frozenset({"pde", "mechanics"})  # AWL's shared test sets cover these
AWL_NUMERICS = {"pde", "mechanics"}  # servers whose references use AWL's numerics
MAX_DRAWS = 50  # per problem; a draw that cannot make one is drawn again


def domain_name(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in DOMAINS:
        raise ValueError(f"Unknown domain {name!r}; the domains are {', '.join(DOMAINS)}.")
    return name


async def generate(
    domain: str,
    count: int,
    seed: int,
    tools: ToolClient,
    *,
    split: Split = "train",
    form: str = "mixed",
    reserved: ReservedKeys | None = None,
) -> tuple[list[Problem], dict[str, int]]:
    """(problems, counts of what was skipped and why)."""
    domain = domain_name(domain)
    if domain == "gsm_symbolic":
        if split != "train":
            raise ValueError(
                "gsm_symbolic sets differ by reasoning-gym seed: make a held-out set with "
                "another --seed."
            )
        return gsm.problems(count, seed)
    if domain in AWL_TEST_DOMAINS and reserved is None:
        raise ValueError(f"{domain} problems need AWL's test sets to be checked for leaks.")
    module = GENERATORS[domain]
    skipped: Counter[str] = Counter()
    problems = []
    for index in range(count):
        rng = problem_rng(domain, split, seed, index)
        made = await _one(module, domain, rng, tools, split, form, reserved, skipped,
                          problem_id=f"{domain}-{split}-{seed}-{index}", seed=seed)  # fmt: skip
        if made is None:
            skipped["no problem after draws"] += 1
        else:
            problems.append(made)
    return problems, dict(skipped)


async def _one(
    module: ModuleType,
    domain: str,
    rng: random.Random,
    tools: ToolClient,
    split: Split,
    form: str,
    reserved: ReservedKeys | None,
    skipped: Counter[str],
    *,
    problem_id: str,
    seed: int,
) -> Problem | None:
    for _ in range(MAX_DRAWS):
        draft: Draft = module.draw(rng)
        if split_of(domain, draft.scenario) != split:
            skipped["other split"] += 1
            continue
        if reserved is not None and reserved.scenario_hit(domain, draft.scenario):
            skipped["a test item's parameters"] += 1
            continue
        result = await run_tool(tools, domain, draft.tool, draft.arguments)
        if result is None:
            skipped["tool error"] += 1
            continue
        drafts = [draft]
        if domain == "mechanics":  # another ask of the same run, as AWL asks several
            scene = mujoco.SCENE_BY_NAME[draft.template.split("/")[1]]
            others = mujoco.other_asks(draft)
            rng.shuffle(others)
            drafts += [mujoco.draft_for(scene, draft.arguments, ask) for ask in others]
        for candidate in drafts:
            chosen = form_of(candidate, rng, form)
            if form == "open" and chosen != "open":
                skipped["no open form of the ask"] += 1  # ranges and trends have options
                continue
            problem = settle(
                candidate, result, rng, chosen, problem_id=problem_id, split=split, seed=seed
            )
            if problem is None:
                skipped["no question AWL would pose"] += 1
                continue
            if reserved is not None and reserved.leaks(problem):
                skipped["a test item's question or options"] += 1
                continue
            return problem
    return None


async def run_tool(
    tools: ToolClient, domain: str, tool: str, arguments: dict[str, Any]
) -> dict[str, Any] | None:
    sent = {**arguments, "numerics": "awl"} if domain in AWL_NUMERICS else dict(arguments)
    call = await tools.invoke(tool, sent)
    return call.result if call.ok and isinstance(call.result, dict) else None
