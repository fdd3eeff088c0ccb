"""What a plain member may see of a community's energy balance: no figure that is another
member's own, and none that can be worked out from what is shown."""

from __future__ import annotations

from typing import Any

from storage.telemetry.balance import Contributors

NOBODY = (0, 0, 0)


def few_enough_hidden(counts: tuple[int, ...], threshold: int) -> bool:
    """Whether every figure with energy in it comes from at least `threshold` members."""
    return all(count == 0 or count >= threshold for count in counts)


def enough(counts: tuple[int, ...], threshold: int) -> bool:
    """Whether some figure has energy and each that has comes from `threshold` members."""
    return any(counts) and few_enough_hidden(counts, threshold)


def member_view(result: dict[str, Any], *, own_areas: set[str],
                min_contributors: int) -> dict[str, Any]:
    """The balance (as storage.telemetry.balance.energy_balance made it) a plain member sees.

    An area is shown, totals and periods, only when it is one of the member's own, at least
    `min_contributors` members are behind each of its totals' figures (withdrawn, fed in,
    produced) and behind each figure with energy of each of its periods. The community's
    totals and periods likewise, and only when the figures of the areas not shown, which a
    reader could work out by subtraction, are also none or from enough members. What is not
    shown is left out ("totals" too); member parts are the caller's to filter.
    """
    counts: Contributors = result["contributors"]
    threshold = min_contributors

    def of(area: str | None, start: int | None) -> tuple[int, int, int]:
        return counts.get((area, start), NOBODY)

    areas = [area for area in result["areas"]
             if area["area"] in own_areas and enough(of(area["area"], None), threshold)
             and all(few_enough_hidden(of(area["area"], period["start"]), threshold)
                     for period in area["periods"])]
    shown_keys = [area["area"] for area in areas]

    def rest(start: int | None) -> tuple[int, ...]:
        """The contributors of the community's figures outside the areas shown."""
        whole = of(None, start)
        return tuple(max(0, whole[index] - sum(of(key, start)[index] for key in shown_keys))
                     for index in range(3))

    starts = [period["start"] for period in result["periods"]]
    community_shown = (
        enough(of(None, None), threshold)
        and all(few_enough_hidden(of(None, start), threshold) for start in starts)
        and all(few_enough_hidden(rest(start), threshold) for start in [None, *starts]))
    view = {name: value for name, value in result.items()
            if name not in ("contributors", "totals", "periods", "areas")}
    if community_shown:
        view["totals"] = result["totals"]
    view["periods"] = result["periods"] if community_shown else []
    view["areas"] = areas
    return view
