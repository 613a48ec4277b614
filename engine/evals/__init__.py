"""Evaluations: run a workflow over a dataset, score every row, compare two evaluations (docs/evaluate.md).

Submodules: :mod:`~engine.evals.dataset` (reading, column mapping), :mod:`~engine.evals.scorers`
(built-in and custom scorers), :mod:`~engine.evals.judge` (``llm_judge``), :mod:`~engine.evals.runner`
(the durable :class:`~engine.evals.runner.Evaluator`), :mod:`~engine.evals.results` (aggregates, export,
compare). Import from the submodules: this package stays light (the store's migration imports its tables).
"""
