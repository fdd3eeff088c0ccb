"""The channel catalog: what a reading measures, its unit, and its code in storage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Channel:
    """One channel: its stored code, unit, kind, and what it means."""

    name: str
    code: int
    unit: str
    kind: str  # "instantaneous" or "interval" (energy during the interval ending at ts)
    description: str


CATALOG: tuple[Channel, ...] = (
    Channel("power", 1, "W", "instantaneous", "Active power; positive when drawing."),
    Channel("energy_import", 2, "Wh", "interval",
            "Energy drawn from the grid during the interval that ends at ts."),
    Channel("energy_export", 3, "Wh", "interval",
            "Energy fed into the grid during the interval that ends at ts."),
    Channel("energy_produced", 4, "Wh", "interval",
            "Energy produced (by a PV plant, say) during the interval that ends at ts."),
    Channel("voltage", 5, "V", "instantaneous", "RMS voltage."),
    Channel("current", 6, "A", "instantaneous", "RMS current."),
    Channel("soc", 7, "%", "instantaneous", "State of charge of a battery."),
    Channel("temperature", 8, "°C", "instantaneous", "Temperature."),
)
BY_NAME = {channel.name: channel for channel in CATALOG}
BY_CODE = {channel.code: channel for channel in CATALOG}
ENERGY_CHANNELS = ("energy_import", "energy_export", "energy_produced")


def code_of(name: str) -> int:
    """The stored code of a channel name (KeyError for a name not in the catalog)."""
    return BY_NAME[name].code
