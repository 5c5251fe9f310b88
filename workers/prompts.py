"""Prompt texts. They are part of the contract: adapters are trained on them, so a
change here is a change of model behaviour and needs a version note.

Sources: AWL (arXiv 2411.00412) for the direct and tool-decision prompts, SCoRe (arXiv
2409.12917) for the correction instruction, TPO (arXiv 2410.10630) for the generic
thought prompt. ART (arXiv 2311.07961) published no prompts; ours are defined below
and versioned (`ART_PROMPT_VERSION`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from contract.role_prompts import format_options, question_text

# --- direct answering (AWL's no-tool prompt) ---------------------------------------
# AWL, no-tool prompt for multiple choice, verbatim.
AWL_DIRECT_CHOICE = (
    "Please answer the following question. Your answer should end with 'the answer is A/B/C/D'."
)
# DESIGN §4: numeric and expression answers go in \boxed{} instead of a letter.
DIRECT_BOXED = (
    "Please answer the following question. Reason step by step, then give your final "
    "answer in \\boxed{}."
)
# The final-answer format sentence of each direct prompt: what the extractor reads.
# Later turns (SCoRe) end with the same sentence so their answers stay extractable.
CHOICE_FORMAT = "Your answer should end with 'the answer is A/B/C/D'."
BOXED_FORMAT = "Reason step by step, then give your final answer in \\boxed{}."


def answer_format(options: list[str] | None) -> str:
    """The final-answer format sentence the first attempt was given."""
    return CHOICE_FORMAT if options else BOXED_FORMAT


def policy_messages(
    prompt: str,
    few_shot: Sequence[dict[str, str]] = (),
    system: str | None = None,
    history: Sequence[dict[str, str]] = (),
) -> list[dict[str, str]]:
    """The policy's first conversation: the caller's system instructions (chat
    templates take a system turn only first), the few-shot turns, the caller's earlier
    turns, then this strategy's user prompt around the problem. Refine stages continue
    it, so the system turn and the history stay in every later prompt too."""
    head = [{"role": "system", "content": system}] if system else []
    return [*head, *few_shot, *history, {"role": "user", "content": prompt}]


def direct_user_prompt(problem: str, options: list[str] | None) -> str:
    """The user message for direct (no-tool) answering."""
    if options:
        return f"{AWL_DIRECT_CHOICE}\n\n{problem}\n\n{format_options(options)}"
    return f"{DIRECT_BOXED}\n\n{problem}"


# --- AWL tool-vs-direct decision ----------------------------------------------------
# AWL's direct-answer pseudo-tool. The misspelt `sloving_process` is AWL's own key:
# adapters trained on AWL's data emit it, so it stays.
ANSWER_FUNCTION = "answer_question"
ANSWER_QUESTION_SPEC: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": ANSWER_FUNCTION,
        "description": "Answer the question directly, without a tool.",
        "parameters": {
            "type": "object",
            "properties": {
                "thought": {"type": "string", "description": "Your reasoning about the question."},
                "sloving_process": {"type": "string", "description": "The solving process."},
                "answer": {"type": "string", "description": "The final answer."},
            },
            "required": ["thought", "sloving_process", "answer"],
        },
    },
}
# AWL's decision sentence, verbatim (DESIGN §4).
AWL_TOOL_DECISION = (
    "If you don't know the answer, you can use the tool to help you. If you can answer the "
    "problem without the tool, use answer_question to answer the problem directly."
)
# `tools: always` leaves answer_question out of the first turn and says so.
TOOL_REQUIRED = "Use one of the tools to solve the problem before you answer."
# How the functions are shown: the JSON-call format Llama-3.1-style templates use,
# which AWL's released adapters emit ({"name": ..., "parameters": {...}}).
FUNCTIONS_HEADER = (
    "Given the following functions, please respond with a JSON for a function call with its "
    'proper arguments that best answers the given prompt.\n\nRespond in the format {"name": '
    'function name, "parameters": dictionary of argument name and its value}. Do not use '
    "variables."
)
TOOL_LIMIT_REACHED = (
    "You have used all the tool calls you are allowed. Use answer_question now to give your "
    "final answer."
)


def tool_user_prompt(
    problem: str, options: list[str] | None, functions: Sequence[dict[str, Any]], *, required: bool
) -> str:
    """The adaptive (AWL) user message: the functions as JSON, then the problem, then
    the decision sentence. `required` (tools: always) swaps the decision sentence."""
    listed = "\n\n".join(json.dumps(spec, ensure_ascii=False) for spec in functions)
    question = question_text(problem, options)
    return (
        f"{FUNCTIONS_HEADER}\n\n{listed}\n\n{question}\n\n"
        f"{TOOL_REQUIRED if required else AWL_TOOL_DECISION}"
    )


def tool_result_message(tool: str, payload: dict[str, Any]) -> dict[str, str]:
    """A tool's answer as a `tool` turn (Qwen2.5 and Llama 3.1 templates render it)."""
    return {"role": "tool", "content": json.dumps({"name": tool, **payload}, ensure_ascii=False)}


# --- SCoRe self-correction ----------------------------------------------------------
# SCoRe's second-attempt instruction, verbatim (DESIGN §4).
SCORE_INSTRUCTION = (
    "There might be an error in the solution above because of lack of understanding of the "
    "question. Please correct the error, if any, and rewrite the solution. Only output the "
    "final solution!"
)


def score_instruction(options: list[str] | None) -> str:
    """SCoRe's instruction, then the first attempt's final-answer format sentence.

    Version 2 (version 1 was the bare instruction): SCoRe's own prompts end with the
    task's answer format, and without it the corrected solution often ends with no
    `\\boxed{}` or "the answer is", so Acc@t2 read no answer at all.
    """
    return f"{SCORE_INSTRUCTION} {answer_format(options)}"


# --- TPO hidden thoughts --------------------------------------------------------------
THOUGHT_MARKER = "Here is my thought process:"
RESPONSE_MARKER = "Here is my response:"
# TPO's generic thought prompt (paper, Fig. 2 / Table 8), with the user query inside.
TPO_GENERIC = (
    "Respond to the following user query in a comprehensive and detailed way. You can write "
    "down your thought process before responding. Write your thoughts after "
    f"“{THOUGHT_MARKER}” and write your response after “{RESPONSE_MARKER}”.\n\n"
    "User query: {query}"
)


# TPO's specific thought prompt (paper, Fig. 2): a draft and its evaluation, then the
# final response after "<R>". Everything before the marker is the hidden thought.
SPECIFIC_RESPONSE_MARKER = "<R>"
TPO_SPECIFIC = (
    "Respond to the following user query in a comprehensive and detailed way. But first "
    "write down your internal thoughts. This must include your draft response and its "
    f"evaluation. After this, write your final response after “{SPECIFIC_RESPONSE_MARKER}”."
    "\n\nUser query: {query}"
)
ThinkPrompt = str  # "generic" | "specific" (contract.schemas.Strategy.think_prompt)


def think_markers(variant: ThinkPrompt) -> tuple[str | None, str]:
    """(thought marker, response marker) of a TPO prompt variant."""
    if variant == "specific":
        return None, SPECIFIC_RESPONSE_MARKER
    return THOUGHT_MARKER, RESPONSE_MARKER


def think_wrap(query: str, variant: ThinkPrompt = "generic") -> str:
    """A TPO thought prompt around a user message (direct or tool prompt), so the
    response still ends in the format the extractor or the tool loop reads."""
    template = TPO_SPECIFIC if variant == "specific" else TPO_GENERIC
    return template.replace("{query}", query)


def think_user_prompt(
    problem: str, options: list[str] | None, variant: ThinkPrompt = "generic"
) -> str:
    """TPO's prompt around the direct prompt."""
    return think_wrap(direct_user_prompt(problem, options), variant)


# --- ART: Ask, Refine, Trust (our prompts) --------------------------------------------
# ART gives no prompts. Ours, version 2. Adapters for the `asker` and `truster` roles
# are trained on exactly these texts, so change them only with a new version.
# Version 2: the Truster's reply is named by its labels ("Solution 1 or Solution 2");
# version 1 asked for "'Solution N'", and the 0.5B demo model answered that placeholder
# literally on every gsm_symbolic question, so no verdict was readable.
ART_PROMPT_VERSION = 2
ASKER_PROMPT = (
    "You check a solution by asking the questions it must get right.\n\n"
    "Problem:\n{problem}\n\nSolution:\n{solution}\n\n"
    "Write up to 3 short sub-questions whose answers decide the problem, one per line, each "
    "starting with 'Q:'. Then write a last line 'Refine: yes' if the solution gets any of "
    "them wrong or skips one, or 'Refine: no' if it answers all of them correctly."
)
REFINE_PROMPT = (
    "Answer these sub-questions one by one, then use the answers to rewrite the solution, "
    "correcting it where needed. End with the final answer in the same format as before.\n\n"
    "{questions}"
)


def asker_prompt(problem: str, solution: str) -> str:
    return ASKER_PROMPT.format(problem=problem, solution=solution)


def refine_prompt(questions: Sequence[str]) -> str:
    return REFINE_PROMPT.format(questions="\n".join(f"Q: {q}" for q in questions))


# --- AWL's own layout (prompt style "awl") ---------------------------------------------
# Adapters trained with AWL's code (Rose-STL-Lab/Adapting-While-Learning, src/) saw
# exactly this layout: a system turn per domain, the question as "Question: …\n\n
# Options: A. …", the tools as JSON schemas in the first user turn (Llama 3.1's chat
# template puts them there under its instruction), one JSON call per turn, and each
# tool's text fed back as a user turn "Feedback from '{name}': {text}". MATH and
# SciBench use a text ReAct format instead. The other style, "sciserve", is the
# layout above (tool_user_prompt).
PROMPT_STYLES = ("sciserve", "awl")
# src/Mujoco/answer_agent.py
AWL_SYSTEM_MECHANICS = (
    "You are a physicist. You are going to answer a multi-choice question. You should use "
    "given tools to help you answer the question. You can call tools for many turns, but you "
    "should call only one tool each time. When you have used the tool to get enough "
    "information, you should use answer_question to choose one answer from A/B/C/D.\n\n"
    "Now Begin!"
)
# src/PDE/answer_agent.py, without its five worked examples (about 3k tokens, more than a
# 4k context leaves for the problem and the tool loop).
AWL_SYSTEM_PDE = (
    "You are a physics scientist. You are going to answer a multi-choice question. You should "
    "use given tools to help you answer the question. You should first set the dimension, "
    "DLT, initial condition and boundry condition with necessary parameters, then solve and "
    "get the number you want. You can call tools for many turns, but you should call only one "
    "tool each time. You should also give the solution_type based on what kind of answer the "
    "problem requires.\n\nBegin!"
)
# src/Climate/answer_agent.py opens the same way and adds its few_shot.txt examples,
# which are not included here.
AWL_SYSTEM_CLIMATE = (
    "You are a climate scientist. You are going to answer a multi-choice question. You should "
    "use given tools to help you answer the question. You can call tools for many turns, but "
    "you should call only one tool each time. When you have used the tools to get enough "
    "information, you should use answer_question to choose one answer from A/B/C/D."
)
# src/Epidemiology/answer_agent.py ("a epidemiologist" is AWL's).
AWL_SYSTEM_EPIDEMIOLOGY = (
    "You are a epidemiologist. You are going to answer a multi-choice question. You should use "
    "given tools to help you answer the question. You can call tools for many turns, but you "
    "should call only one tool each time. When you have used `emulate` function to get enough "
    "information, you should use answer_question to choose one answer from A/B/C/D."
)
# A question with options in no known domain: the common part of the above.
AWL_SYSTEM_GENERIC = (
    "You are a scientist. You are going to answer a multi-choice question. You should use "
    "given tools to help you answer the question. You can call tools for many turns, but you "
    "should call only one tool each time. When you have used the tools to get enough "
    "information, you should use answer_question to choose one answer from A/B/C/D."
)
AWL_SYSTEMS = {
    "mechanics": AWL_SYSTEM_MECHANICS,
    "pde": AWL_SYSTEM_PDE,
    "climate": AWL_SYSTEM_CLIMATE,
    "epidemiology": AWL_SYSTEM_EPIDEMIOLOGY,
}
# src/MATH/answer_agent.py (SciBench's is the same), without its per-type examples.
AWL_SYSTEM_REACT = (
    "Write a python code to answer the following question. Your code MUST include detailed "
    "print statements to show the step-by-step process and intermediate results. Print "
    "statements should clearly explain what is being calculated at each step. Don't include "
    "visualization in the code. The final answer shoud be presented in latex like "
    "'\\boxed{\\frac{1}{2}}'.\n\n"
    "Each time, you should whether write a code or answer the question.\n\n"
    "If you want to write a code, you answer should be in the following format:\n\n"
    "Thought: <Your thought>\nAction: write_and_run_code\nCode:\n```python\n<Your code>\n```\n\n"
    "If you want to answer the question, you should answer in the following format:\n\n"
    "Thought: <Your thought>\nAction: answer_question\nSolution: <Your solution>\n"
    "Answer: <Your answer, a number>\n\nNow begin!"
)
REACT_FEEDBACK_STOP = "Feedback"  # AWL stops generation there; the harness writes it
# Llama 3.1's chat template, verbatim (no space before "Do not use variables."): the
# functions go into the first user turn after this instruction, each as indented JSON.
AWL_FUNCTIONS_HEADER = (
    "Given the following functions, please respond with a JSON for a function call with its "
    "proper arguments that best answers the given prompt.\n\n"
    'Respond in the format {"name": function name, "parameters": dictionary of argument name '
    "and its value}.Do not use variables.\n\n"
)
# AWL's MuJoCo and PDE training data add this; its test prompts for climate and
# epidemiology do not.
AWL_ANSWER_HINT = (
    "If you can answer the problem without the tool, use answer_question to answer the "
    "problem directly."
)
AWL_TOOL_LIMIT_REACHED = "You should use answer_question to answer the question now."


def awl_question(problem: str, options: list[str] | None, domain: str | None) -> str:
    """AWL's question turn: "Question: …\\n\\nOptions: A. …\\nB. …" (climate: a newline
    after "Options:")."""
    if not options:
        return f"Question: {problem}"
    listed = format_options(options)
    if domain == "climate":
        return f"Question: {problem}\nOptions:\n{listed}"
    return f"Question: {problem}\n\nOptions: {listed}"


def awl_tool_turn(
    problem: str,
    options: list[str] | None,
    domain: str | None,
    functions: Sequence[dict[str, Any]],
    *,
    hint: bool,
) -> str:
    """The first user turn as Llama 3.1's template renders AWL's request: instruction,
    each function as indented JSON, then the question (and AWL's answer hint)."""
    listed = "".join(json.dumps(spec, indent=4, ensure_ascii=False) + "\n\n" for spec in functions)
    question = awl_question(problem, options, domain)
    return f"{AWL_FUNCTIONS_HEADER}{listed}{question}" + (f"\n\n{AWL_ANSWER_HINT}" if hint else "")


def awl_feedback(tool: str, text: str) -> dict[str, str]:
    """A tool's result as AWL feeds it back: a user turn (its training data turns the
    `function` and `tool` role variants into this too)."""
    return {"role": "user", "content": f"Feedback from '{tool}': {text}"}


def react_feedback(text: str) -> dict[str, str]:
    """MATH/SciBench: the code's output as "Feedback: Output:\\n…"."""
    return {"role": "user", "content": f"Feedback: {text}"}


# --- PEARL plan-then-execute (our prompts) ----------------------------------------------
# PEARL (arXiv 2305.14564) plans over a fixed set of actions, then executes the plan one
# step at a time with each result fed forward. Its actions were for long documents; ours
# are for problem solving, and the prompts are ours, version 1.
PLAN_PROMPT_VERSION = 1
PLAN_ACTIONS = {
    "FIND": "read a given quantity or fact from the problem",
    "COMPUTE": "calculate a number from earlier results (a python code block may do it)",
    "DERIVE": "reason out a new fact or formula from earlier results",
    "COMPARE": "compare results with each other or with the options",
    "ANSWER": "state the final answer",
}
PLAN_PROMPT = (
    "Make a plan to solve the problem below. Do not solve it yet.\n\n"
    "Write one step per line as 'N. ACTION: what to do', using only these actions:\n"
    "{actions}\n\n"
    "Use at most {max_steps} steps and end with an ANSWER step.\n\n"
    "Problem:\n{problem}"
)
PLAN_STEP_PROMPT = (
    "Problem:\n{problem}\n\nPlan:\n{plan}\n\nResults so far:\n{results}\n\n"
    "Carry out only step {number}. {action}: {task}\n"
    "Reply with this step's result in one or two sentences.{code_hint}"
)
PLAN_CODE_HINT = (
    " To calculate, you may write a python code block that prints the result; it will be run "
    "and its output becomes the result."
)
PLAN_ANSWER_PROMPT = (
    "Problem:\n{problem}\n\nPlan:\n{plan}\n\nResults of the steps:\n{results}\n\n"
    "Use the results to answer the problem. {format}"
)


def plan_prompt(problem: str, max_steps: int) -> str:
    actions = "\n".join(f"- {name}: {meaning}" for name, meaning in PLAN_ACTIONS.items())
    return PLAN_PROMPT.format(actions=actions, max_steps=max_steps, problem=problem)


def _numbered(lines: Sequence[str]) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1)) or "(none yet)"


def plan_step_prompt(
    problem: str,
    plan: Sequence[str],
    results: Sequence[str],
    number: int,
    action: str,
    task: str,
    *,
    code: bool,
) -> str:
    return PLAN_STEP_PROMPT.format(
        problem=problem,
        plan=_numbered(plan),
        results=_numbered(results),
        number=number,
        action=action,
        task=task,
        code_hint=PLAN_CODE_HINT if code else "",
    )


def plan_answer_prompt(
    problem: str, options: list[str] | None, plan: Sequence[str], results: Sequence[str]
) -> str:
    question = question_text(problem, options)
    return PLAN_ANSWER_PROMPT.format(
        problem=question,
        plan=_numbered(plan),
        results=_numbered(results),
        format=answer_format(options),
    )
