"""The leak check: AWL's shared PDE and MuJoCo test sets stay for evaluation, so no
question, parameter tuple or option list of a test item may appear in generated
training data.

- question: the same text, whitespace collapsed;
- parameter tuple: the same tool run; for PDE the setup without what is read from it
  (solution type and point), so a test item's run is never trained on under another
  question either;
- option list: the same options, in any order.

The generators skip a draw that hits any of these, and `find_leaks` checks a finished
set again; `check_no_leaks` raises where it finds one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.awl_questions import parse_mujoco, parse_pde
from entrypoints.teacher import pde
from entrypoints.teacher.problems import Problem, canonical

TEST_SETS = {"pde": "pde.json", "mechanics": "mujoco.json"}


class LeakError(ValueError):
    """Generated data holds a test item's question, parameters or options."""


@dataclass(frozen=True)
class Leak:
    problem: str  # the generated problem's id
    test_item: str  # "<file>:<index>"
    what: str  # question | parameters | options


@dataclass
class ReservedKeys:
    """What each test item may not share with training data, by domain."""

    questions: dict[str, str] = field(default_factory=dict)  # key -> test item
    scenarios: dict[str, str] = field(default_factory=dict)
    option_lists: dict[str, str] = field(default_factory=dict)
    items: int = 0

    def add(self, domain: str, name: str, question: str, options: list[Any]) -> None:
        self.items += 1
        self.questions[question_key(question)] = name
        scenario = item_scenario(domain, question)
        if scenario is not None:
            self.scenarios[scenario_key(domain, scenario)] = name
        self.option_lists[options_key(options)] = name

    def scenario_hit(self, domain: str, scenario: dict[str, Any]) -> str | None:
        return self.scenarios.get(scenario_key(domain, scenario))

    def leaks(self, problem: Problem) -> list[Leak]:
        found = []
        hit = self.questions.get(question_key(problem.question))
        if hit:
            found.append(Leak(problem.id, hit, "question"))
        hit = self.scenario_hit(problem.domain, problem.scenario) if problem.scenario else None
        if hit:
            found.append(Leak(problem.id, hit, "parameters"))
        options = problem.raw_options if problem.raw_options is not None else problem.options
        hit = self.option_lists.get(options_key(options)) if options else None
        if hit:
            found.append(Leak(problem.id, hit, "options"))
        return found


def question_key(question: str) -> str:
    return " ".join(question.split())


def options_key(options: list[Any]) -> str:
    return json.dumps(sorted(canonical(o) for o in options))


def scenario_key(domain: str, scenario: dict[str, Any]) -> str:
    return f"{domain}|{canonical(scenario)}"


def item_scenario(domain: str, question: str) -> dict[str, Any] | None:
    """A test question's parameter tuple in the generators' form (`Draft.scenario`)."""
    if domain == "pde":
        args = parse_pde(question)
        return pde.scenario_of(args) if args else None
    parsed = parse_mujoco(question)
    return {"tool": parsed[0], **parsed[1]} if parsed else None


def load_test_sets(folder: Path) -> ReservedKeys:
    """The keys of AWL's PDE and MuJoCo test sets in `folder` (shared/data/awl)."""
    keys = ReservedKeys()
    for domain, name in TEST_SETS.items():
        path = Path(folder) / name
        if not path.exists():
            raise FileNotFoundError(
                f"AWL's test set {path} is missing: generated {domain} data can only be "
                "checked against it for leaks. Give the folder with pde.json and mujoco.json "
                "(--awl-data or SCISERVE_AWL_DATA)."
            )
        for index, row in enumerate(json.loads(path.read_text())):
            question = row.get("question", row.get("Question"))
            options = row.get("options", row.get("Options"))
            keys.add(domain, f"{name}:{index}", question, options)
    return keys


def find_leaks(problems: list[Problem], keys: ReservedKeys) -> list[Leak]:
    return [leak for problem in problems for leak in keys.leaks(problem)]


def check_no_leaks(problems: list[Problem], keys: ReservedKeys) -> None:
    found = find_leaks(problems, keys)
    if found:
        shown = "; ".join(f"{x.problem} shares its {x.what} with {x.test_item}" for x in found[:5])
        raise LeakError(
            f"{len(found)} generated problem(s) share a test item's question, parameters or "
            f"options: {shown}."
        )


def find_overlap(train: list[Problem], heldout: list[Problem]) -> list[Leak]:
    """Held-out generated sets: problems of `heldout` sharing a question, parameter
    tuple or option list with `train`."""
    keys = ReservedKeys()
    for problem in heldout:
        keys.items += 1
        keys.questions[question_key(problem.question)] = problem.id
        keys.scenarios[scenario_key(problem.domain, problem.scenario)] = problem.id
    return find_leaks(train, keys)
