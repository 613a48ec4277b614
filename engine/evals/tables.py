"""The evaluation tables: an evaluation and one row per dataset row (migration ``0009_evals``).

Kept apart from :mod:`engine.store.tables` so the store's own tables stay the runs' projection;
an evaluation only refers to runs by id (each row's run is a normal durable run).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

_REDEFINE = {"extend_existing": True}


class EvalTable(SQLModel, table=True):
    """One evaluation: a workflow version over a dataset, with its scorers."""

    __tablename__ = "evals"
    __table_args__ = (_REDEFINE,)
    id: str = Field(primary_key=True, max_length=64)
    workflow_id: str = Field(max_length=64)
    workflow_version: int
    workflow_name: str = Field(max_length=500)
    dataset_name: str = Field(default="", max_length=500)
    expected_column: str = Field(default="expected", max_length=200)
    scorers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    threshold: float = 0.5
    concurrency: int = 4
    status: str = Field(default="running", max_length=20, index=True)  # running|completed|cancelled|interrupted
    owner: str = Field(default="", max_length=200)
    created_at: float
    finished_at: float | None = None


class EvalRowTable(SQLModel, table=True):
    """One dataset row of an evaluation: its inputs, its run, its output and scores."""

    __tablename__ = "eval_rows"
    __table_args__ = (_REDEFINE,)
    eval_id: str = Field(primary_key=True, max_length=64)
    row_index: int = Field(primary_key=True)
    # pending | running | completed (ran and scored) | failed (the run failed) | invalid (a bad cell) | cancelled
    status: str = Field(default="pending", max_length=20)
    run_id: str | None = Field(default=None, max_length=64, index=True)  # History: which evaluation a run is
    inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    expected: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    output: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None
    scores: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float | None = None
