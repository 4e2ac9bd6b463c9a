"""One module per command of `python -m segtutor` (see `segtutor.cli`).

Introduced in `01_data.ipynb` (`check-data`, `make-samples`); `train` in `04_training.ipynb`,
`evaluate` and `predict` in `05_evaluation.ipynb`. Each module has `add_arguments(parser)` and
`run(args) -> int`; nothing outside `segtutor.cli` imports them.
"""

__all__: list[str] = []
