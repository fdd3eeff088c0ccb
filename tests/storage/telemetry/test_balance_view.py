"""What a plain member sees of a balance: thresholds per figure, per period, and against
subtraction."""

from __future__ import annotations

from typing import Any

from storage.telemetry.balance_view import member_view

H1, H2 = 1_000, 2_000


def _balance(counts: dict[tuple[str | None, int | None], tuple[int, int, int]],
             areas: tuple[str, ...]) -> dict[str, Any]:
    figures = {"withdrawn_wh": 1.0}
    return {"totals": figures, "periods": [{"start": H1, **figures}, {"start": H2, **figures}],
            "areas": [{"area": area, "totals": figures,
                       "periods": [{"start": H1, **figures}, {"start": H2, **figures}]}
                      for area in areas],
            "members": [], "contributors": counts}


def test_one_producer_among_three_consumers_withholds_the_area() -> None:
    counts = {("a", None): (3, 1, 0), ("a", H1): (3, 1, 0), ("a", H2): (3, 0, 0),
              (None, None): (3, 1, 0), (None, H1): (3, 1, 0), (None, H2): (3, 0, 0)}
    view = member_view(_balance(counts, ("a",)), own_areas={"a"}, min_contributors=3)
    assert view["areas"] == [] and "totals" not in view and view["periods"] == []
    assert "contributors" not in view


def test_an_hour_of_two_members_withholds_the_whole_area() -> None:
    # Shown totals less the shown hours would give the hidden hour: all or nothing.
    counts = {("a", None): (3, 3, 0), ("a", H1): (3, 3, 0), ("a", H2): (2, 0, 0),
              (None, None): (3, 3, 0), (None, H1): (3, 3, 0), (None, H2): (2, 0, 0)}
    view = member_view(_balance(counts, ("a",)), own_areas={"a"}, min_contributors=3)
    assert view["areas"] == [] and "totals" not in view
    lower = member_view(_balance(counts, ("a",)), own_areas={"a"}, min_contributors=2)
    assert [area["area"] for area in lower["areas"]] == ["a"] and "totals" in lower


def test_other_areas_are_never_shown_and_enough_of_them_leaves_the_community() -> None:
    counts = {(area, start): (3, 3, 0) for area in ("a", "b") for start in (None, H1, H2)}
    counts.update({(None, start): (6, 6, 0) for start in (None, H1, H2)})
    view = member_view(_balance(counts, ("a", "b")), own_areas={"a"}, min_contributors=3)
    assert [area["area"] for area in view["areas"]] == ["a"]
    assert "totals" in view and len(view["periods"]) == 2
