"""Tests for segtutor.exercises.core: every verdict path, on toy questions like the notebooks'."""

import logging

import IPython
import IPython.display
import numpy as np
import pytest
import torch
from IPython.core.formatters import DisplayFormatter

from segtutor.exercises import (
    Case,
    CheckResult,
    Incorrect,
    Question,
    compare_tensors,
    compare_values,
    describe,
)

# ---- toy questions, written the way a notebook author would ---------------------------------


class CountPixels(Question):
    title = "Count the pixels of one class"
    hints = ("`mask == c` is a boolean tensor.", "`.sum()` counts the True values.")
    solution_code = "def count_pixels(mask, c):\n    return int((mask == c).sum())"

    def reference(self, mask, c):
        return int((mask == c).sum())

    def cases(self):
        yield Case(torch.randint(0, 3, (4, 5), generator=self.generator()), 1)
        yield Case(torch.tensor([[0, 2], [2, 2]]), c=2, label="a 2x2 mask, mostly class 2")
        yield (torch.zeros(3, 3, dtype=torch.int64), 1)  # a plain tuple is a Case too


class OneHot(Question):
    title = "One-hot encode a mask"
    hints = ("Compare the mask with each class index.",)

    def reference(self, mask, num_classes):
        # (H, W) int64 -> (num_classes, H, W) float32
        return torch.stack([(mask == k).float() for k in range(num_classes)])

    def cases(self):
        g = self.generator()
        yield Case(torch.randint(0, 4, (5, 6), generator=g), 4)
        yield Case(torch.tensor([[0, 1], [1, 0]]), 3)


class OneHotNumpyOk(OneHot):
    allow_numpy = True


class NumParams(Question):
    title = "Count the parameters of a 3x3 conv from 2 to 4 channels"
    expects_function = False

    def reference(self):
        return 2 * 4 * 3 * 3 + 4


class SameSet(Question):
    """A custom `compare`: the order of the answer does not matter."""

    title = "The classes present in a mask"

    def reference(self, mask):
        return sorted(set(mask.flatten().tolist()))

    def cases(self):
        yield Case(torch.tensor([[3, 1], [1, 0]]))

    def compare(self, expected, got, name):
        if sorted(got) != expected:
            raise Incorrect(f"`{name}` holds {sorted(got)}; expected the classes {expected}.")
        return None


class CountPerClass(Question):
    """A custom `explain_error`: a crash on a mask holding 255 gets an explanation."""

    title = "Count the pixels of each class, skipping ignored pixels (255)"

    def reference(self, mask, num_classes):
        return torch.bincount(mask[mask != 255], minlength=num_classes)

    def cases(self):
        yield Case(torch.tensor([[0, 1], [1, 2]]), 3)
        yield Case(torch.tensor([[0, 255], [1, 2]]), 3, label="a 2x2 mask with one 255")

    def explain_error(self, error, case):
        if (case.args[0] == 255).any():
            return "This mask holds 255 (ignore), which is not a class: leave it out first."
        return None


def count_pixels(mask, c):
    return int((mask == c).sum())


def one_hot(mask, num_classes):
    return torch.nn.functional.one_hot(mask, num_classes).permute(2, 0, 1).float()


@pytest.fixture
def q():
    return CountPixels()


# ---- correct answers ------------------------------------------------------------------------


def test_correct_function(q, capsys):
    result = q.check(count_pixels)
    assert result and result.correct and result.status == "correct"
    assert q.last_result is result
    assert "Correct" in capsys.readouterr().out


def test_zero_dim_tensor_is_accepted_for_an_int(q):
    assert q.check(lambda mask, c: (mask == c).sum())


def test_correct_tensor_answer():
    assert OneHot().check(one_hot)


def test_numpy_answer_is_accepted_only_when_allowed():
    def one_hot_numpy(mask, num_classes):
        return np.stack([(mask.numpy() == k).astype(np.float32) for k in range(num_classes)])

    assert OneHotNumpyOk().check(one_hot_numpy)
    refused = OneHot().check(one_hot_numpy)
    assert not refused
    assert "numpy array" in refused.message and "torch.from_numpy" in refused.message


def test_value_question():
    question = NumParams()
    assert question.check(76)
    wrong = question.check(72)
    assert wrong.status == "incorrect" and "72" in wrong.message and "76" in wrong.message
    assert question.check(...).status == "not_attempted"
    assert "None" in question.check(None).message


# ---- wrong answers: each explains, none raises ----------------------------------------------


def test_wrong_value_shows_case_expected_and_got(q):
    result = q.check(lambda mask, c: int((mask != c).sum()))
    assert result.status == "incorrect"
    assert "Case 1 of 3" in result.message
    assert "mask=tensor([[" in result.message and "c=1" in result.message  # the input, in full
    expected = count_pixels(next(iter(q.cases())).args[0], 1)
    assert f"expected {expected}" in result.message
    assert ".hint()" in result.message


def test_case_label_replaces_the_input_description(q):
    result = q.check(lambda mask, c: count_pixels(mask, c) if c == 1 else -1)  # wrong on case 2
    assert "Case 2 of 3" in result.message and "a 2x2 mask, mostly class 2" in result.message


def test_wrong_shape():
    result = OneHot().check(lambda mask, k: torch.nn.functional.one_hot(mask, k).float())
    assert "shape (5, 6, 4); expected (4, 5, 6)" in result.message
    assert "permute" in result.message


def test_wrong_dtype():
    result = OneHot().check(lambda mask, k: torch.nn.functional.one_hot(mask, k).permute(2, 0, 1))
    assert "dtype torch.int64; expected torch.float32" in result.message


def test_wrong_elements_are_located():
    def off_by_one(mask, num_classes):
        out = one_hot(mask, num_classes)
        out[1, 2, 3] += 0.5
        return out

    result = OneHot().check(off_by_one)
    assert "differs at 1 of 120 elements" in result.message
    assert "output[1, 2, 3]" in result.message


def test_none_returned(q):
    def forgot_return(mask, c):
        int((mask == c).sum())

    result = q.check(forgot_return)
    assert result.status == "incorrect" and "forget `return`" in result.message


def test_exception_in_learner_code_names_type_message_and_line(q):
    def buggy(mask, c):
        total = mask.float()
        return int(total[10, 10])

    result = q.check(buggy)
    assert result.status == "incorrect"
    assert "IndexError: index 10 is out of bounds" in result.message
    assert "in buggy, line" in result.message and "return int(total[10, 10])" in result.message
    assert "Traceback" not in result.message


def test_exception_raised_inside_torch_points_at_the_learners_line(q):
    def bad_matmul(mask, c):
        return int((mask @ torch.ones(7, 7, dtype=mask.dtype)).sum())  # shapes do not fit

    result = q.check(bad_matmul)
    assert "RuntimeError" in result.message and "in bad_matmul" in result.message


def test_explain_error_explains_a_crash_on_a_case_it_recognises():
    def count_per_class(mask, num_classes):
        counts = [0] * num_classes
        for value in mask.flatten().tolist():
            counts[value] += 1  # IndexError at 255
        return torch.tensor(counts)

    result = CountPerClass().check(count_per_class, show=False)
    assert result.status == "incorrect" and "Case 2 of 2" in result.message
    assert "Your code raised IndexError: list index out of range\n" in result.message
    assert "This mask holds 255 (ignore)" in result.message


def test_explain_error_returning_none_shows_the_plain_error():
    def broken(mask, num_classes):
        raise ValueError("broken")

    result = CountPerClass().check(broken, show=False)
    assert result.status == "incorrect" and "Case 1 of 2" in result.message
    assert "ValueError: broken" in result.message and "in broken, line" in result.message
    assert "not a class" not in result.message


class CountWithDiagnosis(CountPerClass):
    """A `diagnose` note is added to the comparison's explanation; one that crashes adds none."""

    def diagnose(self, expected, got):
        if got.sum() == expected.sum() + (self.case.args[0] == 255).sum():
            return "Leave the 255 pixels out."
        return got.no_such_attribute


def test_diagnose_adds_its_note_and_a_crashing_diagnosis_adds_none():
    def with_255(mask, num_classes):
        return torch.bincount(mask.where(mask != 255, 0).flatten(), minlength=num_classes)

    result = CountWithDiagnosis().check(with_255, show=False)
    assert result.status == "incorrect" and "Case 2 of 2" in result.message
    assert "differs at 1 of 3 elements" in result.message
    assert "Leave the 255 pixels out." in result.message
    result = CountWithDiagnosis().check(lambda mask, num_classes: [1, 2, 1], show=False)
    assert "should be a torch.Tensor, but it is a list" in result.message
    assert (
        "no_such_attribute" not in result.message and "could not be compared" not in result.message
    )


def test_wrong_number_of_parameters(q):
    result = q.check(lambda mask: 0)
    assert result.status == "incorrect" and "cannot be called with 2 argument(s)" in result.message


def test_not_callable(q):
    result = q.check(count_pixels(torch.zeros(2, 2), 0))
    assert result.status == "incorrect"
    assert "Expected a function, but got an int (4)" in result.message
    assert "not the result of calling it" in result.message


def test_modifying_the_input_in_place_is_reported(q):
    def destructive(mask, c):
        mask[mask != c] = -1
        return int((mask == c).sum())

    result = q.check(destructive)
    assert result.status == "incorrect" and "changed its input `mask` in place" in result.message


def destructive_but_right(mask, c):
    result = int((mask == c).sum())
    mask.zero_()
    return result


def test_in_place_check_can_be_switched_off():
    class Lenient(CountPixels):
        check_inplace = False

    assert "in place" in CountPixels().check(destructive_but_right).message
    assert Lenient().check(destructive_but_right)


def test_hidden_cases_are_fresh_on_every_check(q):
    q.check(destructive_but_right)
    assert q.check(count_pixels)


def test_custom_compare_and_incorrect_exception():
    question = SameSet()
    assert question.check(lambda mask: list(set(mask.flatten().tolist()))[::-1])
    wrong = question.check(lambda mask: [0, 1])
    assert "holds [0, 1]; expected the classes [0, 1, 3]" in wrong.message
    odd = question.check(lambda mask: 3)  # sorted(3) fails inside the author's compare
    assert odd.status == "incorrect" and "could not be compared" in odd.message


def test_wrong_container_type_and_length():
    assert compare_values((1, 2), [1, 2]) is None  # a list where a tuple is expected is fine
    assert "has 1 elements; expected 2" in compare_values((1, 2), (1,))
    assert "output[1]" in compare_values((1, 2), (1, 3))
    assert "missing keys" in compare_values({"iou": 1.0}, {})
    assert "output['iou']" in compare_values({"iou": 1.0}, {"iou": 0.5})
    assert "should be a dict" in compare_values({"iou": 1.0}, [1.0])


# ---- placeholders: "not attempted yet", never a failure -------------------------------------


def test_placeholders_are_not_attempted(q):
    def stub(mask, c): ...

    def stub_with_docstring(mask, c):
        """Return the number of pixels of class c."""

    def raises(mask, c):
        raise NotImplementedError("your code here")

    for answer in (stub, stub_with_docstring, raises, ...):
        result = q.check(answer)
        assert result.status == "not_attempted", answer
        assert "Not attempted yet" in result.message and "Traceback" not in result.message


def test_not_implemented_from_a_library_is_an_error_not_a_placeholder(q):
    def calls_abstract(mask, c):
        logging.Handler().emit(None)  # the standard library raises NotImplementedError here

    result = q.check(calls_abstract)
    assert result.status == "incorrect" and "NotImplementedError" in result.message


# ---- display: plain text outside Jupyter, coloured HTML inside, no stray repr ---------------


def test_check_result_shows_nothing_as_a_cell_value(q):
    result = q.check(count_pixels, show=False)
    assert DisplayFormatter().format(result) == ({}, {})
    assert isinstance(result, CheckResult) and repr(result) == "CheckResult(status='correct')"


def test_show_false_prints_nothing(q, capsys):
    q.check(count_pixels, show=False)
    assert capsys.readouterr().out == ""


def test_rich_display_in_ipython(q, monkeypatch):
    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw: shown.append(obj))
    q.check(lambda mask, c: "<b>")
    bundle = shown[-1]
    assert "#cf222e" in bundle["text/html"] and "&lt;b&gt;" in bundle["text/html"]
    assert bundle["text/plain"].startswith("Not quite")
    q.hint()
    assert shown[-1]["text/markdown"].startswith("Hint 1 of 2")
    q.solution()
    assert "```python\ndef count_pixels" in shown[-1]["text/markdown"]


def test_hints_and_solution_in_plain_text(q, capsys):
    q.hint()
    q.hint(2)
    q.hint(3)
    q.solution()
    NumParams().hint()
    out = capsys.readouterr().out
    assert "Hint 1 of 2: `mask == c` is a boolean tensor. `.hint(2)` gives another." in out
    assert "Hint 2 of 2: `.sum()` counts the True values." in out
    assert "There are 2 hints for this question" in out
    assert "def count_pixels(mask, c):" in out
    assert "There is no hint for this question" in out


def test_hidden_cases_are_deterministic(q):
    first = [c.args[0] for c in q.cases() if isinstance(c, Case)]
    second = [c.args[0] for c in CountPixels().cases() if isinstance(c, Case)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


# ---- comparison helpers ----------------------------------------------------------------------


def test_compare_tensors_shape_dtype_values_nan():
    a = torch.zeros(2, 3)
    assert compare_tensors(a, a.clone()) is None
    assert compare_tensors(a, a + 1e-7) is None  # within tolerance
    assert compare_tensors(a, torch.zeros(3, 2)).startswith(
        "`output` has shape (3, 2); expected (2, 3)"
    )
    assert "dtype torch.int64; expected torch.float32" in compare_tensors(a, a.long())
    b = a.clone()
    b[1, 2] = 0.5
    b[0, 0] = 0.1
    assert "2 of 6 elements" in compare_tensors(a, b, name="probs")
    assert "probs[1, 2]: expected 0, got 0.5" in compare_tensors(a, b, name="probs")
    b[0, 1] = float("nan")
    assert "NaN in the wrong place" in compare_tensors(a, b) and "0 / 0" in compare_tensors(a, b)
    nan = torch.tensor([float("nan"), 1.0])
    assert compare_tensors(nan, nan.clone()) is None  # NaN where NaN is expected is fine
    assert "0 / 0" not in compare_tensors(nan, torch.tensor([0.0, 1.0]))
    assert compare_tensors(a, a.numpy(), allow_numpy=True) is None
    assert "should be a torch.Tensor, but it is a list" in compare_tensors(a, [0.0])
    assert compare_tensors(torch.tensor(2.0), torch.tensor(3.0)) == "`output` is 3; expected 2."
    assert "expected True, got False" in compare_tensors(
        torch.tensor([True]), torch.tensor([False])
    )


def test_compare_numbers():
    assert compare_values(3, 3) is None
    assert compare_values(0.5, 0.5 + 1e-9) is None
    assert compare_values(0.5, np.float32(0.5)) is None
    assert "should be an int, but it is a float" in compare_values(3, 3.0)
    assert "should be a bool" in compare_values(True, 1)
    assert "should be an int" in compare_values(3, "3")


def test_describe():
    assert describe(torch.tensor([[0, 1], [1, 1]])) == "tensor([[0, 1], [1, 1]])"
    assert describe(torch.zeros(10, 10)) == "<tensor of shape (10, 10), dtype torch.float32>"
    assert describe("x" * 200).endswith("...")
