"""`sciserve data build wkd-teacher`: generated problems of one domain, solved by the
teacher on the real tool servers, written as

- `OUT` — the SFT examples (`training.awl.build_teacher`, read back from the records);
- `OUT.records.jsonl` — the kept trajectories as trace records, which `data build tua`
  mixes with the base model's direct samples of the same problems (easy/hard by its
  own accuracy), and `data build wkd` turns into direct solutions;
- `OUT.problems.jsonl` — every generated problem as an evaluation item (a held-out set
  is one made with `--split heldout`);
- `OUT.card.json` and `OUT.card.md` — counts, seed, split, templates, tools shown,
  token lengths, the leak check.

A trajectory is kept when its answer is the reference and its first turn (the tool
call) fits `max_tokens` with the chat template applied; a later turn that does not fit
(the answer after a long MuJoCo log or 2D field) is left out of the SFT examples and
counted. The policy is trained on short examples so a CPU step takes seconds (DESIGN's
training budget).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from contract.settings import Settings
from entrypoints.teacher.generate import (
    AWL_TEST_DOMAINS,
    domain_name,
    generate,
)
from entrypoints.teacher.leak import ReservedKeys, check_no_leaks, load_test_sets
from entrypoints.teacher.problems import SPLITS, Problem, Split
from entrypoints.teacher.trajectory import Teacher, Trajectory, record
from training.awl import build_teacher
from training.examples import Dataset
from training.records import read_records
from workers.strategies.awl import DOMAIN_SERVER
from workers.tools.client import ToolClient

MAX_EXAMPLE_TOKENS = 1536
# AWL's test sets, beside the repository in the shared data folder, unless given.
AWL_DATA = Path(os.environ.get("SCISERVE_AWL_DATA", Path(__file__).parents[3] / "shared/data/awl"))
TOOL_TIMEOUT_S = 300.0  # a 5 s MuJoCo run at dt 1e-4 takes seconds on a busy CPU
TokenCount = Callable[[list[dict[str, str]]], int]


@dataclass(frozen=True)
class TeacherConfig:
    domain: str
    count: int
    seed: int
    out: Path
    split: Split = "train"
    form: str = "mixed"  # choice | open | mixed
    max_tokens: int | None = MAX_EXAMPLE_TOKENS
    awl_data: Path = AWL_DATA


@dataclass
class TeacherRun:
    """What one build made, for the card."""

    problems: list[Problem] = field(default_factory=list)
    trajectories: list[Trajectory] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, list[int]] = field(default_factory=dict)  # problem id -> per turn
    test_items: int = 0

    def kept(self) -> list[Trajectory]:
        return [t for t in self.trajectories if t.kept]


def server_for(domain: str) -> str:
    return DOMAIN_SERVER["math" if domain == "gsm_symbolic" else domain]


async def teach(
    config: TeacherConfig, tools: ToolClient, count_tokens: TokenCount | None
) -> TeacherRun:
    """Generate, solve, and keep what is right and fits."""
    domain = domain_name(config.domain)
    reserved: ReservedKeys | None = None
    run = TeacherRun()
    if domain in AWL_TEST_DOMAINS:
        reserved = load_test_sets(config.awl_data)
        run.test_items = reserved.items
    run.problems, run.skipped = await generate(
        domain, config.count, config.seed, tools,
        split=config.split, form=config.form, reserved=reserved,
    )  # fmt: skip
    if reserved is not None:
        check_no_leaks(run.problems, reserved)
    teacher = Teacher(tools)
    for problem in run.problems:
        trajectory = await teacher.solve(problem)
        if trajectory.kept and count_tokens is not None:
            lengths = [
                count_tokens([*turn.messages, {"role": "assistant", "content": turn.output}])
                for turn in trajectory.turns
            ]
            budget = config.max_tokens
            if budget is not None and lengths[0] > budget:
                trajectory.dropped = f"longer than {budget} tokens"
            elif budget is not None:
                # The call fits, a later turn (a long MuJoCo log or 2D field) does not:
                # keep the call, which is what the policy must learn, and leave that out.
                trajectory.long_turns = [i for i, n in enumerate(lengths) if n > budget]
            run.tokens[problem.id] = [n for i, n in enumerate(lengths)
                                      if i not in trajectory.long_turns]  # fmt: skip
        run.trajectories.append(trajectory)
    return run


def write(config: TeacherConfig, run: TeacherRun, tokenizer_name: str | None) -> Dataset:
    """The records, the problems, the SFT data read back from the records, the cards."""
    out = config.out
    out.parent.mkdir(parents=True, exist_ok=True)
    records = out.with_suffix(".records.jsonl")
    long_turns: set[tuple[str, int]] = set()
    with records.open("w", encoding="utf-8") as handle:
        for trajectory in run.kept():
            row = record(trajectory)
            long_turns |= {(row["id"], turn) for turn in trajectory.long_turns}
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    kept_ids = {t.problem.id for t in run.kept()}
    problems = out.with_suffix(".problems.jsonl")
    with problems.open("w", encoding="utf-8") as handle:
        for problem in run.problems:
            row = {**problem.item(), "teacher_kept": problem.id in kept_ids}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    dataset = build_teacher(list(read_records([records])), seed=config.seed)
    dataset.examples = [
        e for e in dataset.examples if (e["meta"]["record"], e["meta"]["turn"]) not in long_turns
    ]
    dataset.counts["examples"] = len(dataset.examples)
    dataset.kind = "wkd-teacher"
    dataset.params = card_params(config, run, tokenizer_name)
    card = dataset.write(out, [records], config.seed)
    card.with_suffix(".md").write_text(card_markdown(json.loads(card.read_text())))
    return dataset


def card_params(config: TeacherConfig, run: TeacherRun, tokenizer_name: str | None) -> dict:
    kept = run.kept()
    dropped = Counter(t.dropped for t in run.trajectories if not t.kept)
    lengths = [n for t in kept for n in run.tokens.get(t.problem.id, [])]
    domain = domain_name(config.domain)
    return {
        "domain": domain,
        "served_domain": "math" if domain == "gsm_symbolic" else domain,
        "count": config.count,
        "seed": config.seed,
        "split": config.split,
        "form": config.form,
        "generated": len(run.problems),
        "kept": len(kept),
        "skipped_draws": run.skipped,
        "dropped": dict(dropped),
        "turns_over_budget": sum(len(t.long_turns) for t in kept),
        "forms": dict(Counter(t.problem.form for t in kept)),
        "templates": dict(sorted(Counter(t.problem.template for t in kept).items())),
        "templates_generated": dict(sorted(Counter(p.template for p in run.problems).items())),
        "tools_shown": sorted({name for t in kept for name in t.tools_shown}),
        "layout": "AWL's (prompt_style awl): the domain's system turn, the tools shown as "
        "contract.tool_specs.policy_spec renders them (MuJoCo: the scene's tool only), "
        "answer_question, 'Feedback from' turns; MATH-style: AWL's text ReAct",
        "numerics": "awl" if server_for(domain) in ("pde", "mechanics") else None,
        "token_budget": config.max_tokens,
        "tokenizer": tokenizer_name,
        "tokens_per_example": _stats(lengths),
        "leak_check": (
            {"test_items": run.test_items, "leaks": 0, "data": str(config.awl_data)}
            if domain in AWL_TEST_DOMAINS
            else None
        ),
    }


def _stats(lengths: Sequence[int]) -> dict[str, float] | None:
    if not lengths:
        return None
    ordered = sorted(lengths)
    return {
        "examples": len(ordered),
        "min": ordered[0],
        "median": statistics.median(ordered),
        "mean": round(statistics.fmean(ordered), 1),
        "max": ordered[-1],
    }


def card_markdown(card: dict[str, Any]) -> str:
    params = card["params"]
    lines = [
        f"# {card['kind']}: {params['domain']} ({params['split']}, seed {params['seed']})",
        "",
        f"{card['paper']}.",
        "",
        f"- generated problems: {params['generated']} of {params['count']} asked; trajectories "
        f"kept: {params['kept']}; SFT examples: {card['examples']}",
        f"- dropped: {params['dropped'] or 'none'}; later turns left out for length (the "
        f"call kept): {params['turns_over_budget']}",
        f"- draws skipped while generating: {params['skipped_draws'] or 'none'}",
        f"- forms kept: {params['forms']}",
        f"- tools shown: {', '.join(params['tools_shown']) or '-'}; numerics: {params['numerics']}",
        f"- tokens per example ({params['tokenizer'] or 'not measured'}, budget "
        f"{params['token_budget']}): {params['tokens_per_example']}",
        f"- leak check against AWL's test sets: {params['leak_check'] or 'not applicable'}",
        f"- layout: {params['layout']}",
        "",
        "## Templates kept",
        "",
        *(f"- `{name}`: {n}" for name, n in params["templates"].items()),
        "",
    ]
    return "\n".join(lines)


def chat_token_counter(tokenizer: Any) -> TokenCount:
    """Tokens of a conversation with the chat template applied, as the trainer sees it."""

    def count(messages: list[dict[str, str]]) -> int:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count


def demo_tokenizer(settings: Settings) -> tuple[Any, str] | None:
    """The demo model's tokenizer: the configured demo model's folder when prepared,
    else any prepared demo model's (the Qwen2.5-Coder sizes share one tokenizer)."""
    from workers.models.demo import DEMO_MODELS, demo_model_dir

    names = [settings.demo_model, *(n for n in DEMO_MODELS if n != settings.demo_model)]
    for name in names:
        try:
            folder = demo_model_dir(settings.model_copy(update={"demo_model": name}))
        except FileNotFoundError:
            continue
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder)), name
    return None


def build_wkd_teacher(
    config: TeacherConfig,
    *,
    tool_urls: dict[str, str] | None = None,
    settings: Settings | None = None,
    tokenizer: Any = None,
    tokenizer_name: str | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[Dataset, TeacherRun]:
    """The whole build. Tool servers: `tool_urls` (with SCISERVE_TOOL_TOKEN), else the
    configured SCISERVE_TOOL_URLS, else the one this domain needs, started here and
    stopped after."""
    settings = settings or Settings()
    if config.split not in SPLITS:
        raise ValueError(f"--split is one of {', '.join(SPLITS)}.")
    server = server_for(domain_name(config.domain))
    urls = tool_urls or settings.tool_urls
    if tokenizer is None and config.max_tokens is not None:
        found = demo_tokenizer(settings)
        if found is not None:
            tokenizer, tokenizer_name = found
        else:
            log("no prepared demo model: token lengths are not measured (run "
                "`sciserve model prepare`)")  # fmt: skip
    count = chat_token_counter(tokenizer) if tokenizer is not None else None
    if urls:
        run = asyncio.run(_teach_with(config, {server: urls[server]}, settings, count))
    else:
        from entrypoints.embedded import ServiceProcesses

        processes = ServiceProcesses(Path(tempfile.mkdtemp(prefix="sciserve-teacher-")), {})
        secret = secrets.token_urlsafe(32)  # the started server answers only this build
        try:
            log(f"starting the {server} tool server")
            url = processes.start_tool_server(server, token=secret)[1]
            local = settings.model_copy(update={"tool_token": SecretStr(secret)})
            run = asyncio.run(_teach_with(config, {server: url}, local, count))
        finally:
            processes.stop_all()
    dataset = write(config, run, tokenizer_name)
    return dataset, run


async def _teach_with(
    config: TeacherConfig, servers: dict[str, str], settings: Settings, count: TokenCount | None
) -> TeacherRun:
    tools = ToolClient(servers, timeout_s=TOOL_TIMEOUT_S, token=settings.tool_token)
    try:
        return await teach(config, tools, count)
    finally:
        await tools.aclose()
