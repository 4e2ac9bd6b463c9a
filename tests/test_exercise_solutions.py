"""Every question's `solution_code`, the answer `.solution()` shows a learner, passes its own check.

Run as written, in a namespace holding what the notebooks' Setup cells import.
"""

import ast
import importlib
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segtutor.exercises import questions

MODULES = [f"ex{n:02d}" for n in range(1, 9)] + ["ex09"]
QUESTIONS = [
    (module, name, question)
    for module in MODULES
    for name, question in questions(importlib.import_module(f"segtutor.exercises.{module}")).items()
]
NOTEBOOK_NAMES = {"F": F, "Path": Path, "math": math, "nn": nn, "np": np, "os": os,
                  "tempfile": tempfile, "torch": torch}  # fmt: skip


def test_every_module_has_questions():
    assert {module for module, _, _ in QUESTIONS} == set(MODULES)
    assert len(QUESTIONS) >= 3 * len(MODULES)


@pytest.mark.parametrize(
    ("module", "name", "question"), QUESTIONS, ids=[f"{m}.{n}" for m, n, _ in QUESTIONS]
)
def test_solution_code_passes_its_check(module, name, question):
    assert question.hints and question.solution_code.strip(), f"{module}.{name}"
    defined = [
        node.name
        for node in ast.parse(question.solution_code).body
        if isinstance(node, ast.FunctionDef)
    ]
    assert defined, f"{module}.{name}: the solution defines no function"
    namespace = dict(NOTEBOOK_NAMES)
    exec(question.solution_code, namespace)
    result = question.check(namespace[defined[-1]], show=False)
    assert result.status == "correct", f"{module}.{name}:\n{result.message}"


def test_a_wrong_solution_fails():
    # The test above can fail: a solution that drifted from its check is caught.
    _, _, question = QUESTIONS[0]
    result = question.check(lambda *args, **kwargs: 0, show=False)
    assert result.status == "incorrect"
