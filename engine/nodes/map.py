"""The ``map`` node: run one inline node per item, at most ``concurrency`` at a time.

Items keep their order in the output whatever order they finish in. One
item's failure cancels the items still running and fails the node (so the
node's ``retry`` reruns the whole map). One-item and empty lists are
ordinary lists: one output, or none.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from engine import template_budget
from engine.errors import MapItemFailed, is_retryable
from engine.model import MAP_INNER_TYPES, MapConfig
from engine.nodes.base import MAP_SCOPE, Compiler, NodeContext, NodeKind, reads
from engine.templates import Compiled, as_list


@dataclass(frozen=True, slots=True)
class MapSpec:
    items: Compiled | None
    kind: NodeKind | None
    inner: Any
    concurrency: int


def _compile(config: MapConfig, compiler: Compiler) -> MapSpec:
    from engine.nodes import KINDS, compile_config  # the registry imports this module

    items = compiler.expression("config.items", config.items)
    inner_type = config.node.type
    if inner_type not in MAP_INNER_TYPES:
        compiler.error(
            f"config.node.type '{inner_type}' cannot run inside a map; use one of {', '.join(MAP_INNER_TYPES)}"
        )
        return MapSpec(items, None, None, config.concurrency)
    inner_compiler = Compiler(
        where=compiler.where,
        problems=compiler.problems,
        scope=MAP_SCOPE,
        node_ids=compiler.node_ids,
        input_names=compiler.input_names,
        compiled=compiler.compiled,
        tools=compiler.tools,
    )
    inner = compile_config(inner_type, config.node.config, inner_compiler, prefix="config.node.config")
    return MapSpec(items, KINDS[inner_type], inner, config.concurrency)


async def _run(spec: MapSpec, ctx: NodeContext) -> list[Any]:
    assert spec.items is not None and spec.kind is not None
    variables = ctx.vars()
    record: dict[str, Any] = {"expression": spec.items.source, "reads": reads([spec.items], variables)}
    ctx.set_input(record)  # recorded before rendering: a failed render still shows what it read
    rendered = spec.items.render(variables)
    items = as_list(rendered)  # tuples, ranges, generators (xs | map(...)) and dict views count as lists
    if items is None:
        message = f"config.items must give a list, got {type(rendered).__name__}: {rendered!r:.80}"
        raise MapItemFailed(message, retryable=False)
    ctx.set_input({**record, "items": len(items)})
    kind, inner = spec.kind, spec.inner
    gate = asyncio.Semaphore(spec.concurrency)

    async def one(index: int, item: Any) -> Any:
        async with gate:
            try:
                if template_budget.must_yield():  # the run's templates used much of their slice: let others run
                    await template_budget.next_turn()
                return await kind.run(inner, ctx.for_item(item, index))
            except Exception as exc:  # noqa: BLE001 - re-raised with the item named
                raise MapItemFailed(f"item {index}: {exc}", retryable=is_retryable(exc)) from exc

    if len(items) <= 1:
        return [await one(i, item) for i, item in enumerate(items)]
    tasks = [asyncio.create_task(one(i, item)) for i, item in enumerate(items)]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


MAP = NodeKind("map", _compile, _run)
