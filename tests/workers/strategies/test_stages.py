# mypy: disable-error-code="index, union-attr, misc, arg-type"
"""Each stage's logic, driven by fixed outputs from the `ScriptedEngine` test double
(named in tests/doubles.py) where model output decides the branch. Tool calls go over
real HTTP to real tool-server processes."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY

from contract.errors import InvalidStrategyError, ToolUnavailableError
from tests.workers.strategies.conftest import Solve
from workers.pipeline import PipelineOptions
from workers.prompts import (
    AWL_TOOL_DECISION,
    SCORE_INSTRUCTION,
    TOOL_LIMIT_REACHED,
    TOOL_REQUIRED,
    answer_format,
    direct_user_prompt,
    score_instruction,
)

NEVER = {"tools": "never"}
ASK = "You check a solution"
TRUST = "You judge solutions"
REFINE = "Answer these sub-questions"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def stages(result: object) -> list[str]:
    return [event.stage for event in result.trace]  # type: ignore[attr-defined]


def test_direct_is_one_call_and_usage_matches_the_trace(solve: Solve) -> None:
    result, engine, events = solve(
        [("2 + 2", "2 + 2 = 4, so \\boxed{4}")], strategy=NEVER, reference="4"
    )
    assert result.answer == "4" and result.correct is True
    assert result.answer_text == "2 + 2 = 4, so \\boxed{4}"
    assert stages(result) == ["generate"]
    assert len(engine.calls) == 1 and engine.calls[0].role == "policy"
    assert "\\boxed{}" in engine.calls[0].messages[-1]["content"]  # AWL no-tool prompt
    [event] = result.trace
    assert (event.prompt_tokens, event.completion_tokens) == (
        result.usage.prompt_tokens,
        result.usage.completion_tokens,
    )
    assert result.usage.engine_calls == 1 and tuple(events) == result.trace


@pytest.mark.parametrize("stop", ["none", "settled"])
def test_samples_are_k_requests_one_greedy_the_rest_seeded_base_plus_i(
    solve: Solve, stop: str
) -> None:
    outputs = ["\\boxed{5}", "\\boxed{4}", "\\boxed{4.0}", "no idea", "\\boxed{4}"]
    strategy = {**NEVER, "samples": 5, "stop": stop}
    result, engine, _ = solve([("2 + 2", outputs)], strategy=strategy, seed=1000)
    greedy, *sampled = engine.calls
    assert (greedy.n, greedy.sampling.temperature, greedy.sampling.seed) == (1, 0.0, None)
    assert len(sampled) == 4 and all(call.n == 1 for call in sampled)
    assert all(call.sampling.temperature > 0 for call in sampled)  # K samples must differ
    assert [call.sampling.seed for call in sampled] == [1001, 1002, 1003, 1004]
    assert all(call.sampling.top_p == 1.0 for call in sampled)  # temperature-only default
    assert len({call.request_id for call in engine.calls}) == 5  # each abortable alone
    assert result.usage.engine_calls == 5
    assert result.answer == "4"
    select = result.trace[-1]
    assert select.stage == "select" and select.detail["votes"] == {"5": 1, "4": 3}
    assert select.detail["method"] == "vote"
    assert select.detail["stop"]["used"] == 5 and not select.detail["stop"]["stopped_early"]
    assert stages(result) == ["generate", "select"]  # the samples' events merged
    assert result.trace[0].detail["samples"] == 5


def test_a_vote_tie_goes_to_the_earliest_answer_without_art(solve: Solve) -> None:
    result, engine, _ = solve(
        [("2 + 2", ["\\boxed{7}", "\\boxed{4}"])], strategy={**NEVER, "samples": 2}
    )
    assert result.answer == "7"
    assert result.trace[-1].detail["tied"] == ["7", "4"]
    assert all(call.role == "policy" for call in engine.calls)


def test_a_vote_tie_goes_to_the_truster_with_art(solve: Solve) -> None:
    rules = [
        (ASK, "Q: what is 2+2?\nRefine: no"),
        (TRUST, "Solution 2"),
        ("2 + 2", ["\\boxed{7}", "\\boxed{4}"]),
    ]
    result, engine, _ = solve(rules, strategy={**NEVER, "samples": 2, "art": True})
    assert result.answer == "4"
    select = result.trace[-1]
    assert select.detail["method"] == "truster" and select.role == "truster"
    [trust_call] = [call for call in engine.calls if call.role == "truster"]
    prompt = trust_call.messages[0]["content"]
    assert "Solution 1:\n\\boxed{7}" in prompt and "Solution 2:\n\\boxed{4}" in prompt


def test_selfcorrect_runs_attempts_minus_one_rounds_and_counts_flips(solve: Solve) -> None:
    before = metric("sciserve_selfcorrect_flips_total", direction="i_to_c")
    rules = [(SCORE_INSTRUCTION, ["\\boxed{4}", "\\boxed{4}"]), ("2 + 2", "I think \\boxed{5}")]
    result, engine, _ = solve(rules, strategy={**NEVER, "attempts": 3}, reference="4")
    assert stages(result) == ["generate", "selfcorrect", "selfcorrect"]
    assert result.initial_answer == "5" and result.answer == "4" and result.correct
    assert result.trace[1].detail["flips"] == {"i_to_c": 1, "c_to_i": 0}
    assert result.trace[2].detail["flips"] == {"i_to_c": 0, "c_to_i": 0}
    assert metric("sciserve_selfcorrect_flips_total", direction="i_to_c") == before + 1
    # The second attempt continues the conversation: problem, first answer, instruction.
    second = engine.calls[1].messages
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == "I think \\boxed{5}" and second[2][
        "content"
    ] == score_instruction(None)
    assert len(engine.calls[2].messages) == 5


@pytest.mark.parametrize("options", [None, ["3", "4", "5", "6"]])
def test_the_second_attempt_ends_with_the_first_attempts_answer_format(
    solve: Solve, options: list[str] | None
) -> None:
    """Without the format sentence a corrected solution had no extractable answer."""
    rules = [(SCORE_INSTRUCTION, "Corrected."), ("2 + 2", "\\boxed{4}")]
    _, engine, _ = solve(rules, strategy={**NEVER, "attempts": 2}, options=options)
    first, second = (call.messages[-1]["content"] for call in engine.calls)
    sentence = answer_format(options)
    assert sentence in direct_user_prompt("2 + 2", options) and sentence in first
    assert second.startswith(SCORE_INSTRUCTION) and second.endswith(sentence)


def test_selfcorrect_counts_a_correct_to_incorrect_flip(solve: Solve) -> None:
    before = metric("sciserve_selfcorrect_flips_total", direction="c_to_i")
    rules = [(SCORE_INSTRUCTION, "\\boxed{5}"), ("2 + 2", "\\boxed{4}")]
    result, _, _ = solve(rules, strategy={**NEVER, "attempts": 2}, reference="4")
    assert result.initial_answer == "4" and result.answer == "5" and result.correct is False
    assert metric("sciserve_selfcorrect_flips_total", direction="c_to_i") == before + 1


def test_selfcorrect_with_samples_corrects_each_then_votes(solve: Solve) -> None:
    rules = [
        (SCORE_INSTRUCTION, ["\\boxed{4}", "\\boxed{4}", "\\boxed{9}"]),
        ("2 + 2", ["\\boxed{5}", "\\boxed{6}", "\\boxed{5}"]),
    ]
    strategy = {**NEVER, "attempts": 2, "samples": 3, "stop": "none"}
    result, engine, _ = solve(rules, strategy=strategy)
    assert result.initial_answer == "5" and result.answer == "4"
    # Each sample runs its own pipeline: its generation, then its correction.
    assert all(call.n == 1 for call in engine.calls) and result.usage.engine_calls == 6
    corrections = [c for c in engine.calls if SCORE_INSTRUCTION in c.messages[-1]["content"]]
    assert [c.sampling.temperature == 0 for c in corrections] == [True, False, False]
    assert stages(result) == ["generate", "selfcorrect", "select"]
    assert result.trace[1].engine_calls == 3


def test_a_settled_vote_with_refine_stages_stops_when_decided(solve: Solve) -> None:
    """Samples 0 and 1 (the window, a majority of 3) both end on 4: sample 2 cannot
    change the winner, so it never runs."""
    rules = [
        (SCORE_INSTRUCTION, ["\\boxed{4}", "\\boxed{4}", "\\boxed{9}"]),
        ("2 + 2", ["\\boxed{5}", "\\boxed{6}", "\\boxed{5}"]),
    ]
    result, engine, _ = solve(rules, strategy={**NEVER, "attempts": 2, "samples": 3})
    assert result.answer == "4" and result.usage.engine_calls == len(engine.calls) == 4
    stop = result.trace[-1].detail["stop"]
    assert stop["rule"] == "settled" and stop["window"] == 2 and stop["stopped_early"]
    assert (stop["used"], stop["not_started"]) == (2, [2])
    assert stop["tokens_saved_estimate"] > 0


def test_art_skips_refining_when_the_asker_says_no(solve: Solve) -> None:
    before = metric("sciserve_art_refine_total", decision="skip")
    rules = [(ASK, "Q: Is 2+2 equal to 4?\nRefine: no"), ("2 + 2", "\\boxed{4}")]
    result, engine, _ = solve(rules, strategy={**NEVER, "art": True})
    assert stages(result) == ["generate", "art_ask"]
    assert [call.role for call in engine.calls] == ["policy", "asker"]
    assert result.trace[1].detail["decisions"] == ["skip"]
    assert result.trace[1].detail["questions"] == [["Is 2+2 equal to 4?"]]
    assert metric("sciserve_art_refine_total", decision="skip") == before + 1
    assert result.answer == "4"


@pytest.mark.parametrize(
    ("verdict", "choice", "answer"),
    [
        ("Solution 2", "refined", "4"),
        ("Solution 1", "initial", "5"),
        ("Solution N", "initial", "5"),  # unreadable: the initial solution stays
    ],
)
def test_art_refines_then_the_truster_chooses(
    solve: Solve, verdict: str, choice: str, answer: str
) -> None:
    before = metric("sciserve_truster_choice_total", choice=choice)
    unreadable_before = metric("sciserve_truster_unreadable_total")
    rules = [
        (ASK, "Q: What is 2 + 2?\nQ: Is 5 right?\nRefine: yes"),
        (REFINE, "2 + 2 = 4. \\boxed{4}"),
        (TRUST, verdict),
        ("2 + 2", "\\boxed{5}"),
    ]
    result, engine, _ = solve(rules, strategy={**NEVER, "art": True}, reference="4")
    assert stages(result) == ["generate", "art_ask", "art_refine", "art_trust"]
    assert [call.role for call in engine.calls] == ["policy", "asker", "policy", "truster"]
    refine_prompt = engine.calls[2].messages[-1]["content"]
    assert "Q: What is 2 + 2?\nQ: Is 5 right?" in refine_prompt
    trust = result.trace[-1].detail
    assert trust["choices"] == [choice]
    assert trust["correct_initial"] == [False] and trust["correct_refined"] == [True]
    assert result.answer == answer and result.initial_answer == "5"
    assert metric("sciserve_truster_choice_total", choice=choice) == before + 1
    unreadable = verdict == "Solution N"
    assert trust["readable"] == [not unreadable]
    assert metric("sciserve_truster_unreadable_total") == unreadable_before + unreadable


def test_an_unreadable_asker_means_no_refine(solve: Solve) -> None:
    result, engine, _ = solve(
        [(ASK, "hmm, maybe"), ("2 + 2", "\\boxed{4}")], strategy={**NEVER, "art": True}
    )
    assert result.trace[1].detail["decisions"] == ["skip"] and result.trace[1].detail[
        "readable"
    ] == [False]
    assert len(engine.calls) == 2


def test_roles_without_adapters_fall_back_to_the_base_model(solve: Solve) -> None:
    rules = [(ASK, "Refine: no"), ("2 + 2", "\\boxed{4}")]
    result, engine, _ = solve(rules, strategy={**NEVER, "art": True}, roles=("policy",))
    assert [call.role for call in engine.calls] == ["policy", None]
    assert result.trace[1].role == "base"


def test_art_without_roles_and_without_fallback_is_refused(solve: Solve) -> None:
    with pytest.raises(InvalidStrategyError, match="asker and truster"):
        solve(
            [],
            strategy={"art": True},
            roles=("policy",),
            pipeline_options=PipelineOptions(role_fallback=False),
        )


# --- adaptive (AWL) --------------------------------------------------------------------
AWL_DIRECT = json.dumps(
    {
        "name": "answer_question",
        "parameters": {"thought": "easy", "sloving_process": "2 + 2 = 4", "answer": "4"},
    }
)
RUN_CODE = json.dumps(
    {
        "name": "write_and_run_code",
        "parameters": {"thought": "compute it", "code": "print(1234 * 5678)"},
    }
)


def test_adaptive_answers_directly_through_answer_question(
    solve: Solve, tool_servers: dict[str, str]
) -> None:
    before = metric("sciserve_tool_decisions_total", decision="direct")
    result, engine, _ = solve([(AWL_TOOL_DECISION, AWL_DIRECT)], tool_urls=tool_servers)
    assert result.answer == "4" and result.used_tools == []
    assert result.answer_text == "2 + 2 = 4\n\nThe answer is 4"
    prompt = engine.calls[0].messages[-1]["content"]
    for name in ("answer_question", "write_and_run_code"):
        assert f'"name": "{name}"' in prompt
    # A problem with no domain carries no simulator schemas (tool_choice.PROMPT_TOOL_CAP).
    for name in ("setup_and_solve", "simulate_epidemic"):
        assert f'"name": "{name}"' not in prompt
    assert result.trace[0].detail["decisions"] == ["direct"]
    assert metric("sciserve_tool_decisions_total", decision="direct") == before + 1


def test_answer_question_answer_wins_over_a_boxed_working_value(
    solve: Solve, tool_servers: dict[str, str]
) -> None:
    call = json.dumps(
        {
            "name": "answer_question",
            "parameters": {
                "thought": "",
                "sloving_process": "First \\boxed{2} apples, then two more.",
                "answer": "4",
            },
        }
    )
    result, _, _ = solve([(AWL_TOOL_DECISION, call)], tool_urls=tool_servers, reference="4")
    assert result.answer == "4" and result.correct is True
    empty = call.replace('"answer": "4"', '"answer": ""')
    result, _, _ = solve([(AWL_TOOL_DECISION, empty)], tool_urls=tool_servers)
    assert result.answer == "2"  # no answer given: the rendered text is read


def test_adaptive_tool_loop_feeds_the_result_back(
    solve: Solve, tool_servers: dict[str, str]
) -> None:
    before = metric("sciserve_tool_decisions_total", decision="tool")
    final = json.dumps(
        {
            "name": "answer_question",
            "parameters": {
                "thought": "",
                "sloving_process": "The code printed it.",
                "answer": "7006652",
            },
        }
    )
    rules = [("7006652", final), (AWL_TOOL_DECISION, RUN_CODE)]
    result, engine, _ = solve(
        rules, problem="What is 1234 * 5678?", tool_urls=tool_servers, reference="7006652"
    )
    assert result.answer == "7006652" and result.correct is True
    assert result.used_tools == ["write_and_run_code"]
    [call] = result.trace[0].detail["tool_calls"][0]
    assert call["arguments"]["code"] == "print(1234 * 5678)"
    assert call["result"]["stdout"].strip() == "7006652" and call["status_code"] == 200
    tool_turn = engine.calls[1].messages[-1]
    assert tool_turn["role"] == "tool" and "7006652" in tool_turn["content"]
    assert result.usage.tool_tokens > 0 and result.trace[0].tool_tokens == result.usage.tool_tokens
    assert metric("sciserve_tool_decisions_total", decision="tool") == before + 1


def test_the_tool_loop_stops_at_its_limit(solve: Solve, tool_servers: dict[str, str]) -> None:
    rules = [(TOOL_LIMIT_REACHED, AWL_DIRECT), ("", RUN_CODE)]
    result, engine, _ = solve(
        rules, tool_urls=tool_servers, pipeline_options=PipelineOptions(max_tool_calls=2)
    )
    assert len(result.trace[0].detail["tool_calls"][0]) == 2
    assert len(engine.calls) == 4  # decide, 2 continues, one last "answer now"
    assert result.answer == "4"


def test_a_job_starts_no_more_tool_runs_than_its_cap(
    solve: Solve, tool_servers: dict[str, str]
) -> None:
    """The per-job cap (SCISERVE_MAX_JOB_TOOL_CALLS) holds over every sample: 3 samples
    x 2 calls would start 6 sandbox runs; with a cap of 3, the rest are refused with an
    error the model reads, and no run starts for them."""
    before = metric("sciserve_tool_runs_refused_total")
    rules = [(TOOL_LIMIT_REACHED, AWL_DIRECT), ("", RUN_CODE)]
    options = PipelineOptions(max_tool_calls=2, max_job_tool_calls=3)
    result, _, _ = solve(
        rules,
        tool_urls=tool_servers,
        pipeline_options=options,
        strategy={"samples": 3, "stop": "none"},  # every sample runs: the cap must hold
    )
    calls = [call for sample in result.trace[0].detail["tool_calls"] for call in sample]
    assert len(calls) == 6
    assert [c["status_code"] for c in calls].count(200) == 3
    refused = [c for c in calls if c["status_code"] == 429]
    assert len(refused) == 3 and "all 3 tool runs" in refused[0]["error"]
    assert metric("sciserve_tool_runs_refused_total") == before + 3


def test_an_unknown_or_disallowed_tool_is_an_error_the_model_reads(
    solve: Solve, tool_servers: dict[str, str]
) -> None:
    rules = [("There is no tool", AWL_DIRECT), ("", RUN_CODE)]
    result, engine, _ = solve(rules, tool_urls=tool_servers, tools=["pde"])
    [call] = result.trace[0].detail["tool_calls"][0]
    assert call["status_code"] == 404 and "setup_and_solve" in call["error"]
    assert "write_and_run_code" not in engine.calls[0].messages[-1]["content"]
    assert result.used_tools == []


def test_tools_always_requires_a_tool(solve: Solve, tool_servers: dict[str, str]) -> None:
    result, engine, _ = solve(
        [(TOOL_REQUIRED, AWL_DIRECT)], tool_urls=tool_servers, strategy={"tools": "always"}
    )
    prompt = engine.calls[0].messages[-1]["content"]
    assert '"name": "answer_question"' not in prompt and TOOL_REQUIRED in prompt
    assert result.answer == "4"


def test_unreachable_tools_fall_back_to_direct_on_auto_and_fail_on_always(solve: Solve) -> None:
    down = {"python": "http://127.0.0.1:9"}
    result, engine, _ = solve([("2 + 2", "\\boxed{4}")], tool_urls=down, tools=["python"])
    assert result.answer == "4" and "unreachable" in result.trace[0].detail["tools_unavailable"]
    assert "\\boxed{}" in engine.calls[0].messages[-1]["content"]
    with pytest.raises(ToolUnavailableError):
        solve([], tool_urls=down, tools=["python"], strategy={"tools": "always"})


# --- think (TPO) -----------------------------------------------------------------------
THOUGHT = "Here is my thought process: add two and two, carefully. Here is my response: \\boxed{4}"


def test_think_hides_the_thought_and_counts_its_tokens(solve: Solve, tokenizer: object) -> None:
    result, engine, _ = solve([("2 + 2", THOUGHT)], strategy={"think": True})
    assert result.answer == "4" and result.answer_text == "\\boxed{4}"
    assert "Here is my thought process:" in engine.calls[0].messages[-1]["content"]
    total = len(tokenizer.encode(THOUGHT, add_special_tokens=False))  # type: ignore[attr-defined]
    assert result.usage.thought_tokens > 0
    assert result.usage.thought_tokens + result.usage.completion_tokens == total
    assert result.thoughts is None


def test_a_thought_format_break_twice_serves_the_stated_answer_alone(
    solve: Solve, tokenizer: object
) -> None:
    breaks = "sciserve_thought_format_breaks_total"
    before = [metric(breaks, after_resample=flag) for flag in ("false", "true")]
    output = "It is 4. \\boxed{4}"
    result, engine, _ = solve([("2 + 2", output)], strategy={"think": True})
    assert result.answer_text == "4" and result.answer == "4"
    detail = result.trace[0].detail
    assert (detail["format_breaks"], detail["resampled"]) == (1, 1)
    assert detail["format_breaks_after_resample"] == 1 and len(engine.calls) == 2
    assert detail["format_breaks_unanswered"] == 0
    assert engine.calls[1].sampling.temperature > 0  # a greedy resample would repeat itself
    after = [metric(breaks, after_resample=flag) for flag in ("false", "true")]
    assert after == [before[0] + 1, before[1] + 1]
    # Both outputs are hidden but for the answer each states.
    count = tokenizer.encode  # type: ignore[attr-defined]
    hidden = len(count(output, add_special_tokens=False)) - len(count("4"))
    assert result.usage.thought_tokens == 2 * hidden
    assert result.usage.completion_tokens == 2 * len(count("4"))


def test_a_thought_format_break_is_resampled_once(solve: Solve) -> None:
    result, engine, _ = solve(
        [("2 + 2", ["It is 4. \\boxed{4}", THOUGHT])], strategy={"think": True}
    )
    assert result.answer_text == "\\boxed{4}" and result.usage.thought_tokens > 0
    assert result.trace[0].detail["format_breaks_after_resample"] == 0
    assert len(engine.calls) == 2


def test_the_specific_tpo_prompt_hides_the_draft(solve: Solve) -> None:
    output = "Draft: 2 + 2 = 4. Evaluation: correct. <R> The sum is \\boxed{4}"
    result, engine, _ = solve(
        [("2 + 2", output)], strategy={"think": True, "think_prompt": "specific"}
    )
    prompt = engine.calls[0].messages[-1]["content"]
    assert "draft response and its evaluation" in prompt and "“<R>”" in prompt
    assert result.answer_text == "The sum is \\boxed{4}" and result.answer == "4"
    assert "Draft" not in result.answer_text and result.usage.thought_tokens > 0


def test_think_works_with_tools(solve: Solve, tool_servers: dict[str, str]) -> None:
    """think + tools: auto wraps the tool prompt in TPO's; the call after the response
    marker runs, its result comes back, and the final answer is read."""
    final = json.dumps(
        {
            "name": "answer_question",
            "parameters": {"sloving_process": "ran it", "answer": "7006652"},
        }
    )
    call = f"Here is my thought process: use python. Here is my response: {RUN_CODE}"
    rules = [("7006652", final), (AWL_TOOL_DECISION, call)]
    result, engine, _ = solve(
        rules, problem="What is 1234 * 5678?", tool_urls=tool_servers, strategy={"think": True}
    )
    prompt = engine.calls[0].messages[-1]["content"]
    assert "Here is my thought process:" in prompt and '"name": "answer_question"' in prompt
    assert result.used_tools == ["write_and_run_code"] and result.answer == "7006652"
    assert result.trace[0].detail["mode"] == "adaptive+think"
    assert result.usage.thought_tokens > 0 and "use python" not in result.answer_text


def test_reveal_thoughts_returns_them(solve: Solve) -> None:
    result, _, _ = solve([("2 + 2", THOUGHT)], strategy={"think": True}, reveal_thoughts=True)
    assert result.thoughts == "add two and two, carefully."
    assert result.trace[0].detail["thoughts"] == ["add two and two, carefully."]


# --- few-shot --------------------------------------------------------------------------
def test_few_shot_prepends_the_most_similar_examples(solve: Solve, tmp_path: object) -> None:
    from pathlib import Path

    bank = Path(str(tmp_path)) / "bank.jsonl"
    rows = [
        {
            "problem": "A train travels 60 km in 1 hour. How far in 3 hours?",
            "solution": "\\boxed{180}",
        },
        {"problem": "Solve the heat equation on a rod.", "solution": "\\boxed{1}"},
        {
            "problem": "A train travels 50 km in 2 hours. What is its speed?",
            "solution": "\\boxed{25}",
        },
    ]
    bank.write_text("\n".join(json.dumps(row) for row in rows))
    for retrieval in ("bm25", "minilm"):
        options = PipelineOptions(few_shot_bank=bank, few_shot_retrieval=retrieval)  # type: ignore[arg-type]
        result, engine, _ = solve(
            [("", "\\boxed{1}")],
            problem="A train travels 80 km in 2 hours. How far in 5 hours?",
            strategy={**NEVER, "few_shot": 2},
            pipeline_options=options,
        )
        messages = engine.calls[0].messages
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
        shown = messages[0]["content"] + messages[2]["content"]
        assert "train" in messages[0]["content"] and "train" in messages[2]["content"], retrieval
        assert "heat equation" not in shown, retrieval
        assert stages(result) == ["few_shot", "generate"]
        assert result.trace[0].detail["examples"] == 2


def test_a_small_context_shows_the_most_relevant_tools_that_fit(
    solve: Solve, tool_servers: dict[str, str]
) -> None:
    problem = "An epidemic with r0 2.5 spreads in a town; on which day does the infection peak?"
    result, engine, _ = solve(
        [("", AWL_DIRECT)],
        problem=problem,
        tool_urls=tool_servers,
        pipeline_options=PipelineOptions(context_tokens=4096),
        max_tokens=64,
    )
    shown = result.trace[0].detail["tools_shown"]
    assert 1 <= len(shown) < 13 and "simulate_epidemic" in shown
    prompt = engine.calls[0].messages[-1]["content"]
    assert '"name": "answer_question"' in prompt
    assert len(engine.tokenizer().encode(prompt)) + 64 <= 4096


def test_a_refine_without_thought_markers_is_no_format_break(solve: Solve) -> None:
    breaks = "sciserve_thought_format_breaks_total"
    before = [metric(breaks, after_resample=flag) for flag in ("false", "true")]
    rules = [(SCORE_INSTRUCTION, "Corrected: \\boxed{4}"), ("2 + 2", THOUGHT)]
    result, _, _ = solve(rules, strategy={"think": True, "attempts": 2})
    assert result.answer_text == "Corrected: \\boxed{4}" and result.usage.thought_tokens > 0
    assert [metric(breaks, after_resample=flag) for flag in ("false", "true")] == before


# --- voting never a step down from greedy ----------------------------------------------
def test_a_vote_without_agreement_goes_to_the_greedy_answer(solve: Solve) -> None:
    rules = [("2 + 2", ["\\boxed{4}", "\\boxed{5}", "\\boxed{6}"])]
    result, engine, _ = solve(rules, strategy={**NEVER, "samples": 3})
    assert engine.calls[0].sampling.temperature == 0  # the greedy one gave "4"
    assert result.answer == "4" and result.trace[-1].detail["method"] == "greedy"
    assert result.trace[-1].detail["greedy_answer"] == "4" and result.initial_answer == "4"


def test_a_tie_goes_to_the_greedy_answer_and_a_majority_overrules_it(solve: Solve) -> None:
    tie = ["\\boxed{9}", "\\boxed{4}", "\\boxed{4}", "\\boxed{9}"]
    result, _, _ = solve([("2 + 2", tie)], strategy={**NEVER, "samples": 4})
    assert result.answer == "9" and result.trace[-1].detail["method"] == "greedy"
    majority_wins = ["\\boxed{9}", "\\boxed{4}", "\\boxed{4}"]
    result, _, _ = solve([("2 + 2", majority_wins)], strategy={**NEVER, "samples": 3})
    assert result.answer == "4" and result.trace[-1].detail["method"] == "vote"


def test_votes_group_equivalent_expressions(solve: Solve) -> None:
    outputs = ["\\boxed{\\frac{1}{3}}", "\\boxed{\\frac{1}{2}}", "\\boxed{0.5}"]
    result, _, _ = solve(
        [("half", outputs)],
        problem="What is half?",
        answer_type="expression",
        strategy={**NEVER, "samples": 3},
    )
    select = result.trace[-1].detail
    assert select["method"] == "vote" and select["votes"] == {"\\frac{1}{3}": 1, "\\frac{1}{2}": 2}
    assert result.answer == "\\frac{1}{2}"


def test_top_p_is_configurable(solve: Solve) -> None:
    _, engine, _ = solve(
        [("2 + 2", "\\boxed{4}")],
        strategy={**NEVER, "samples": 2},
        pipeline_options=PipelineOptions(sample_top_p=0.95, sample_temperature=0.5),
    )
    assert (engine.calls[1].sampling.top_p, engine.calls[1].sampling.temperature) == (0.95, 0.5)
    assert engine.calls[0].sampling.top_p == 1.0


# --- the Truster sees a random order -------------------------------------------------------
def test_the_truster_order_is_random_per_job_and_its_verdict_maps_back(solve: Solve) -> None:
    rules = [
        (ASK, "Q: What is 2 + 2?\nRefine: yes"),
        (REFINE, "2 + 2 = 4. \\boxed{4}"),
        (TRUST, "Solution 1 looks careful, but Solution 1 is wrong. Solution 2 is correct."),
        ("2 + 2", "\\boxed{5}"),
    ]
    result, engine, _ = solve(rules, strategy={**NEVER, "art": True}, reference="4")
    trust = result.trace[-1].detail
    prompt = engine.calls[-1].messages[0]["content"]
    second = prompt.split("Solution 2:\n", 1)[1]
    shown_second = "refined" if second.startswith("2 + 2 = 4.") else "initial"
    assert trust["shown_first"] == ["initial" if shown_second == "refined" else "refined"]
    assert trust["positions"] == [2] and trust["choices"] == [shown_second]
    again, _, _ = solve(rules, strategy={**NEVER, "art": True}, reference="4")
    assert again.trace[-1].detail["shown_first"] == trust["shown_first"]  # seeded by the job


def test_the_truster_order_differs_across_jobs(tokenizer: object) -> None:
    from contract.schemas import SolveRequest
    from tests.doubles import ScriptedEngine
    from workers.strategies.context import SolveContext

    def first(seed: str) -> int:
        ctx = SolveContext(
            SolveRequest(problem="p"), "number", ScriptedEngine(tokenizer, []), 8, seed=seed
        )
        return ctx.rng.sample(range(2), 2)[0]

    orders = [first(f"job-{i}") for i in range(40)]
    assert orders == [first(f"job-{i}") for i in range(40)]  # reproducible per job
    assert 10 <= sum(orders) <= 30  # both orders, about half each


def test_the_default_bank_never_serves_the_questions_own_template() -> None:
    """gsm_symbolic evaluations (seed 1234) share templates with the bank (seed 0)."""
    import reasoning_gym

    from workers.strategies.few_shot import ExampleBank, gsm_symbolic_examples

    bank = ExampleBank(gsm_symbolic_examples())
    questions = reasoning_gym.create_dataset("gsm_symbolic", seed=1234, size=60)
    shared = 0
    for index, item in enumerate(questions):
        template = questions.task_indices[index]
        shared += any(example.template == template for example in bank.examples)
        served = bank.nearest(item["question"], 4)
        assert len(served) == 4
        assert all(example.template != template for example, _ in served), index
    assert shared >= 50  # the check is not empty: most templates are in the bank


@pytest.mark.parametrize(
    ("threshold", "calls", "answer"),
    [(-0.5, 1, "5"), (-0.05, 4, "4")],  # every scripted token has log probability -0.1
)
def test_auto_returns_a_confident_greedy_answer_alone_else_votes(
    solve: Solve, threshold: float, calls: int, answer: str
) -> None:
    from workers.strategies.confidence import AutoPolicy

    policy = AutoPolicy(measure="mean", threshold=threshold)
    outputs = ["\\boxed{5}", "\\boxed{4}", "\\boxed{4}", "\\boxed{4}", "\\boxed{7}"]
    result, engine, _ = solve(
        [("2 + 2", outputs)],
        strategy="auto",
        pipeline_options=PipelineOptions(auto_policy=policy),
    )
    assert result.answer == answer and len(engine.calls) == calls
    assert engine.calls[0].sampling.logprobs and engine.calls[0].sampling.temperature == 0
    auto = result.trace[-1].detail["stop"]["auto"]
    assert auto["confidence"] == pytest.approx(-0.1)
    assert auto["escalated"] is (calls > 1)
    assert stages(result) == ["generate", "select"]


def test_auto_shorthand_and_escalation_cap() -> None:
    from contract.schemas import AUTO_SAMPLES, SolveRequest

    short = SolveRequest(problem="x", strategy="auto")  # type: ignore[arg-type]
    assert short.strategy.auto and short.strategy.vote_size == AUTO_SAMPLES
    capped = SolveRequest(problem="x", strategy={"auto": True, "samples": 9})  # type: ignore[arg-type]
    assert capped.strategy.vote_size == 9 and capped.strategy.name == "auto"
    assert not short.strategy.single_output
