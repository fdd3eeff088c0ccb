"""GraphQL limits checked before a query runs: depth, aliases, cost; and the per-caller rate
of expensive queries."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ariadne.validation.query_cost import CostValidator
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

# Each field costs 1 (default_cost); a connection's selection is counted `first` times; a
# field that reads the telemetry store counts more than one that reads a row.
COST_MAP: dict[str, dict[str, Any]] = {
    "Query": {
        "communities": {"complexity": 1, "multipliers": ["first"]},
        "sensors": {"complexity": 1, "multipliers": ["ids"]},
        "jobs": {"complexity": 1, "multipliers": ["first"]},
    },
    "Community": {
        "members": {"complexity": 1, "multipliers": ["first"]},
        "deliveryPoints": {"complexity": 1, "multipliers": ["first"]},
        "assets": {"complexity": 1, "multipliers": ["first"]},
        "sensors": {"complexity": 1, "multipliers": ["first"]},
        "energyBalance": {"complexity": 50},
    },
    "Sensor": {
        "readings": {"complexity": 5},
        "aggregates": {"complexity": 3},
        "dailySummaries": {"complexity": 5},
    },
}

DEPTH_CODE = "query_too_deep"
ALIAS_CODE = "too_many_aliases"
COST_CODE = "query_too_costly"


def depth_limit(max_depth: int) -> type[ValidationRule]:
    """A validation rule refusing operations that nest selections deeper than max_depth
    (fragments followed, each once per path; introspection fields, which clients send
    13 levels deep, are left to graphql-core's own limit)."""

    class DepthLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode,
                                       *_: Any) -> None:
            fragments = {name: fragment for name, fragment in _fragments(self.context).items()}
            depth = _depth(node.selection_set, fragments, frozenset())
            if depth > max_depth:
                self.report_error(GraphQLError(
                    f"the query nests {depth} levels deep; at most {max_depth} are allowed",
                    node, extensions={"code": DEPTH_CODE}))

    return DepthLimit


def alias_limit(max_aliases: int) -> type[ValidationRule]:
    """A validation rule refusing documents with more than max_aliases aliases (aliases turn
    one field into many, beyond what the cost of a field counts)."""

    class AliasLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.aliases = 0

        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.alias is not None:
                self.aliases += 1
                if self.aliases == max_aliases + 1:
                    self.report_error(GraphQLError(
                        f"the query uses more than {max_aliases} aliases", node,
                        extensions={"code": ALIAS_CODE}))

    return AliasLimit


class CostMeter:
    """The cost of the last document validated with its rule (one meter per request)."""

    def __init__(self) -> None:
        self.cost = 0

    def rule(self, max_cost: int, variables: dict[str, Any] | None) -> type[ValidationRule]:
        """Ariadne's cost rule over COST_MAP, reporting a cost over max_cost with its code
        and remembering the cost it reckoned."""
        meter = self

        class MeteredCost(CostValidator):
            def __init__(self, context: ValidationContext) -> None:
                super().__init__(context, max_cost, default_cost=1, default_complexity=1,
                                 variables=variables, cost_map=COST_MAP)

            def leave_operation_definition(self, *args: Any) -> None:
                meter.cost = self.cost
                super().leave_operation_definition(*args)

            def get_cost_exceeded_error(self) -> GraphQLError:
                return GraphQLError(
                    f"the query costs {self.cost}; at most {max_cost} is allowed",
                    extensions={"code": COST_CODE, "cost": self.cost, "maxCost": max_cost})

        return MeteredCost


def _fragments(context: ValidationContext) -> dict[str, FragmentDefinitionNode]:
    return {definition.name.value: definition for definition in context.document.definitions
            if isinstance(definition, FragmentDefinitionNode)}


def _depth(selection_set: SelectionSetNode | None,
           fragments: dict[str, FragmentDefinitionNode], followed: frozenset[str]) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue  # introspection: its depth is graphql-core's MaxIntrospectionDepthRule
            deepest = max(deepest, 1 + _depth(selection.selection_set, fragments, followed))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, followed))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in followed:
                deepest = max(deepest, _depth(fragments[name].selection_set, fragments,
                                              followed | {name}))
    return deepest


class ExpensiveQueryBudget:
    """How many expensive queries each caller ran in the last minute (a sliding window,
    in this process)."""

    WINDOW_S = 60.0

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._runs: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, user_id: int, *, per_minute: int) -> int:
        """0 when the caller may run one more expensive query now (counted), else the whole
        seconds to wait."""
        now = self._clock()
        with self._lock:
            runs = self._runs.setdefault(user_id, deque())
            while runs and runs[0] <= now - self.WINDOW_S:
                runs.popleft()
            if len(runs) >= per_minute:
                return max(1, math.ceil(runs[0] + self.WINDOW_S - now))
            runs.append(now)
            return 0
