"""A shared test for `ChoiceQuestion`s (segtutor.exercises.quiz): the worked answers pass, a
wrong item is named with its reason, a missing item is reported."""


def assert_solutions_pass_and_wrong_items_are_named(*questions):
    for question in questions:
        answers = dict(question.answers)
        assert question.check(lambda answers=answers: answers, show=False)
        item = next(iter(answers))
        wrong = answers | {item: "something else"}
        result = question.check(lambda wrong=wrong: wrong, show=False)
        assert result.status == "incorrect" and repr(item) in result.message
        assert question.reasons[item] in result.message
        missing = {k: v for k, v in answers.items() if k != item}
        result = question.check(lambda missing=missing: missing, show=False)
        assert result.status == "incorrect" and "No answer" in result.message
