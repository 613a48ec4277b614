"""Reading and writing evaluations (tables ``evals`` and ``eval_rows``) over the runtime's database.

Rows' outcomes are written in small batches as rows finish (:meth:`EvalStore.update_rows`), so an
evaluation stopped by a crash resumes with only its unfinished rows (a row whose run completed but
whose outcome was not written yet is only scored again: its run is not redone).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from engine.evals.tables import EvalRowTable, EvalTable
from engine.store import owner_alive

ROW_DONE = ("completed", "failed", "invalid")  # a row in one of these is not run again


class EvalStore:
    """The evaluation tables of one database (the runtime's: the migration ``0009_evals`` made them)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, evaluation: EvalTable, rows: list[EvalRowTable]) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(evaluation)
            session.add_all(rows)
            session.commit()

    def get(self, eval_id: str) -> EvalTable | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(EvalTable, eval_id)

    def recent(self, *, limit: int = 50) -> list[EvalTable]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(EvalTable).order_by(col(EvalTable.created_at).desc()).limit(limit)
            return list(session.exec(query))

    def rows(self, eval_id: str) -> list[EvalRowTable]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(EvalRowTable).where(EvalRowTable.eval_id == eval_id).order_by(col(EvalRowTable.row_index))
            return list(session.exec(query))

    def rows_of_runs(self, run_ids: list[str]) -> dict[str, tuple[str, int]]:
        """``{run_id: (eval_id, row_index)}`` for those of ``run_ids`` that are an evaluation row's run."""
        found: dict[str, tuple[str, int]] = {}
        table = EvalRowTable.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            for start in range(0, len(run_ids), 500):  # under every database's limit of bound parameters
                chunk = run_ids[start : start + 500]
                query = select(table.c.run_id, table.c.eval_id, table.c.row_index).where(table.c.run_id.in_(chunk))
                found.update({r.run_id: (r.eval_id, r.row_index) for r in conn.execute(query)})
        return found

    def update_row(self, eval_id: str, index: int, **values: Any) -> None:
        self.update_rows(eval_id, [(index, values)])

    def update_rows(self, eval_id: str, changes: list[tuple[int, dict[str, Any]]]) -> None:
        """Several rows' outcomes in one transaction (one commit: a commit per row made evaluations slower)."""
        if not changes:
            return
        table = EvalRowTable.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:
            for index, values in changes:
                where = (table.c.eval_id == eval_id, table.c.row_index == index)
                conn.execute(update(table).where(*where).values(**values))

    def set_status(
        self, eval_id: str, status: str, *, owner: str | None = None, finished_at: float | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status, "finished_at": finished_at}
        if owner is not None:
            values["owner"] = owner
        with self.engine.begin() as conn:
            table = EvalTable.__table__  # type: ignore[attr-defined]
            conn.execute(update(table).where(table.c.id == eval_id).values(**values))

    def mark_interrupted(self) -> list[str]:
        """Evaluations left ``running`` by a process that is gone become ``interrupted``; their ids."""
        with Session(self.engine, expire_on_commit=False) as session:
            running = list(session.exec(select(EvalTable).where(EvalTable.status == "running")))
        dead = [e.id for e in running if not owner_alive(e.owner, heartbeat_at=None)]
        for eval_id in dead:
            self.set_status(eval_id, "interrupted")
        return dead
