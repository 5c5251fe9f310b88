# mypy: disable-error-code="index, union-attr"
"""Which tools the adaptive prompt shows (workers/strategies/tool_choice.py): the
sciserve layout caps them (the python tool, then a few relevant ones), AWL's per-domain
layout does not. Prompts are built through the real pipeline on the `ScriptedEngine`
double, with the tools' real manifests from real tool-server processes, and counted
with real tokenizers: the tiny model's and, where it is prepared, the demo model's."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from contract.schemas import SolveRequest, SolveResult
from contract.settings import Settings
from tests.doubles import ScriptedEngine
from tests.workers.strategies.conftest import Solve
from workers.engines.base import render_prompt_ids
from workers.pipeline import PipelineOptions, SolvePipeline
from workers.prompts import AWL_TOOL_DECISION
from workers.strategies.tool_choice import (
    PROMPT_TOOL_CAP,
    PYTHON_TOOL,
    ToolCap,
    fit_tools,
    relevance,
    show_tools,
)
from workers.tools.client import ToolClient

PERCENT = "What is 15% of 80?"
CLIPS = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?"
)
HEAT = (
    "In a 1D heat conduction process with constant initial temperature of 63 °C and Dirichlet "
    "boundary conditions with 67 °C at x=0 and 44 °C at x=L, what is the temperature (°C) at "
    "x=70 cm after 10 seconds? (D=0.81, L=86 cm)"
)
PENDULUM = "A pendulum of length 1 m is released from 0.3 rad. What is its angle after 2 s?"
SIR = (
    "In an SIR epidemic with R0 = 2.5 and 1 million people, on which day does the number of "
    "infected peak?"
)
SIMULATORS = ("setup_and_solve", "simulate_epidemic", "global_temperature", "ball_simulation")
PROMPT_LIMIT = 700  # tokens of a tool-less question's whole prompt, chat template included
# The tiny model's 512-token vocabulary takes 2.4-2.5 times Qwen2.5's tokens on these
# prompts (measured: 1,251 vs 498 for "15% of 80", 1,279 vs 526 for the clips); the
# lower ratio keeps the tiny-tokenizer check no looser than the demo model's limit.
TINY_PER_DEMO_TOKEN = 2.4
ANSWER = json.dumps({"name": "answer_question", "parameters": {"answer": "12"}})
# The embedded default's context and max_tokens, which size the tool budget.
DEFAULTS = PipelineOptions(
    context_tokens=Settings.model_fields["max_model_len"].default,
    default_max_tokens=Settings.model_fields["default_max_tokens"].default,
)
# No context limit: what is shown is the cap's choice alone (the tiny tokenizer's
# inflated counts leave no budget for a 3.6k-character simulator schema).
UNBOUNDED = PipelineOptions()


def first_prompt(
    tokenizer: Any,
    tool_urls: dict[str, str],
    problem: str,
    options: PipelineOptions = DEFAULTS,
    **fields: Any,
) -> tuple[int, str, SolveResult]:
    """The default strategy's first engine call for `problem`: its token count (chat
    template applied, as the engine counts it), its user turn, and the result."""
    engine = ScriptedEngine(tokenizer, [(AWL_TOOL_DECISION, ANSWER), ("", ANSWER)])

    async def go() -> SolveResult:
        pipeline = SolvePipeline(engine, options, ToolClient(tool_urls, attempts=1))
        try:
            request = SolveRequest(problem=problem, return_trace=True, **fields)
            return await pipeline.solve("job-1", request)
        finally:
            await pipeline.aclose()

    result = asyncio.run(go())
    first = engine.calls[0]
    return len(render_prompt_ids(tokenizer, first)), first.messages[-1]["content"], result


@pytest.fixture(scope="module")
def demo_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from workers.models.demo import demo_model_dir

    try:
        folder = demo_model_dir(Settings())
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return AutoTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def specs(tool_servers: dict[str, str]) -> list[dict[str, Any]]:
    """The five servers' manifests, as the worker sees them."""

    async def go() -> list[dict[str, Any]]:
        client = ToolClient(tool_servers, attempts=1)
        try:
            return await client.manifest()
        finally:
            await client.aclose()

    return asyncio.run(go())


def names(functions: list[dict[str, Any]]) -> list[str]:
    return [spec["function"]["name"] for spec in functions]


# --- the sciserve layout: a tool-less question sees the python tool and answer_question
@pytest.mark.parametrize("problem", [PERCENT, CLIPS])
def test_a_question_with_no_domain_gets_a_short_prompt(
    problem: str, tokenizer: Any, tool_servers: dict[str, str]
) -> None:
    tokens, turn, result = first_prompt(tokenizer, tool_servers, problem)
    assert f'"name": "{PYTHON_TOOL}"' in turn and '"name": "answer_question"' in turn
    assert not [name for name in SIMULATORS if name in turn]
    assert result.trace[0].detail["tools_shown"] == [PYTHON_TOOL]
    assert tokens < PROMPT_LIMIT * TINY_PER_DEMO_TOKEN, tokens
    assert result.answer == "12"


@pytest.mark.parametrize("problem", [PERCENT, CLIPS])
def test_the_demo_models_prompt_stays_under_the_limit(
    problem: str, demo_tokenizer: Any, tool_servers: dict[str, str]
) -> None:
    """The same, counted (and budgeted) with the demo model's tokenizer: before the
    cap, "What is 15% of 80?" was 1,992 tokens."""
    tokens, turn, _ = first_prompt(demo_tokenizer, tool_servers, problem)
    assert f'"name": "{PYTHON_TOOL}"' in turn and '"name": "answer_question"' in turn
    assert tokens < PROMPT_LIMIT, tokens


@pytest.mark.parametrize(
    ("problem", "wanted"),
    [
        (HEAT, {"setup_and_solve"}),
        (PENDULUM, {"single_pendulum_simulation", "double_pendulum_simulation"}),
        (SIR, {"simulate_epidemic"}),
    ],
)
def test_a_problem_that_names_a_domain_still_gets_its_tools(
    problem: str, wanted: set[str], tokenizer: Any, tool_servers: dict[str, str]
) -> None:
    _, turn, result = first_prompt(tokenizer, tool_servers, problem, UNBOUNDED)
    shown = result.trace[0].detail["tools_shown"]
    assert wanted <= set(shown) and PYTHON_TOOL in shown
    assert len(shown) <= 1 + PROMPT_TOOL_CAP.max_tools
    assert all(f'"name": "{name}"' in turn for name in wanted)


def test_named_servers_and_a_required_tool_are_never_left_without_one(
    tokenizer: Any, tool_servers: dict[str, str]
) -> None:
    """The pde server alone is shown even to a question it cannot help (the request
    allowed nothing else); `tools: always` keeps the python tool."""
    _, turn, result = first_prompt(tokenizer, tool_servers, PERCENT, UNBOUNDED, tools=["pde"])
    assert result.trace[0].detail["tools_shown"] == ["setup_and_solve"]
    _, turn, result = first_prompt(
        tokenizer, tool_servers, PERCENT, UNBOUNDED, strategy={"tools": "always"}
    )
    assert result.trace[0].detail["tools_shown"] == [PYTHON_TOOL]
    assert '"name": "answer_question"' not in turn


# --- the cap itself ------------------------------------------------------------------
def test_relevance_needs_two_distinctive_words(specs: list[dict[str, Any]]) -> None:
    def score(problem: str, tool: str) -> float:
        scores = relevance(problem, specs)
        assert scores is not None
        return float(scores[names(specs).index(tool)])

    assert score(PERCENT, "ball_simulation") == 0  # "is", "of": stop words
    assert score(CLIPS, "box_plane_simulation") < PROMPT_TOOL_CAP.min_relevance  # "half"
    assert score(HEAT, "setup_and_solve") >= PROMPT_TOOL_CAP.min_relevance
    assert relevance(HEAT, specs[:2]) is None  # two documents: BM25's IDF is 0


def test_the_count_cap_and_the_budget(specs: list[dict[str, Any]]) -> None:
    problem = f"{HEAT} {PENDULUM} {SIR}"
    one = ToolCap(max_tools=1)
    shown = show_tools(problem, specs, budget_tokens=None, count_tokens=len, cap=one)
    assert names(shown) == ["simulate_epidemic", PYTHON_TOOL]  # the most relevant first
    python = next(s for s in specs if s["function"]["name"] == PYTHON_TOOL)
    room = len(json.dumps(python, ensure_ascii=False)) + 2  # only the basics fit
    shown = show_tools(problem, specs, budget_tokens=room, count_tokens=len, cap=one)
    assert names(shown) == [PYTHON_TOOL]


def test_no_cap_is_the_uncapped_fit(specs: list[dict[str, Any]]) -> None:
    for budget in (None, 20_000):
        uncapped = show_tools(PERCENT, specs, budget_tokens=budget, count_tokens=len, cap=None)
        assert uncapped == fit_tools(PERCENT, specs, budget_tokens=budget, count_tokens=len)
    assert len(show_tools(PERCENT, specs, budget_tokens=None, count_tokens=len, cap=None)) == 13


# --- AWL's layout is not capped: a known domain shows its own server's tools ---------
def test_the_awl_layout_shows_its_domain_uncapped(
    solve: Solve, tool_servers: dict[str, str]
) -> None:
    """MuJoCo's domain shows every mechanics scene (9, past the count cap), and a known
    domain shows its tool with no relevance at all to the problem."""
    answer = json.dumps({"name": "answer_question", "parameters": {"answer": "B"}})
    result, _, _ = solve(
        [("", answer)],
        problem="Which option is right?",
        options=["1", "2"],
        tool_urls=tool_servers,
        strategy={"prompt_style": "awl", "domain": "mechanics"},
    )
    shown = result.trace[0].detail["tools_shown"]
    assert len(shown) == 9 and all(name.endswith("_simulation") for name in shown)
    result, engine, _ = solve(
        [("", answer)],
        problem=PERCENT,
        options=["10", "12"],
        tool_urls=tool_servers,
        strategy={"prompt_style": "awl", "domain": "pde"},
    )
    assert result.trace[0].detail["tools_shown"] == ["setup_and_solve"]
    assert PYTHON_TOOL not in engine.calls[0].messages[-1]["content"]
