"""A deterministic generator of one large bundle-format v0.7 community, for the benchmarks.

    python -m tests.benchmarks.generate_community --members 10000 --assets-per-member 4 -o FILE

The same arguments (and `--seed`) always give the same bytes. Every member has exactly
`--assets-per-member` assets, one of them a meter with a sensor id unique in the community
and a `pod` naming one of that member's delivery points; the others follow the member's
role (pv and storage for prosumers and producers; heat pumps, EV chargers and loads for
consumers). Each area is one primary substation (`area.topology == [boundary.id]`).
A few properties the schema does not name are sprinkled in, as real bundles carry them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_CANDIDATES = (
    REPO_ROOT / "bundles" / "community.schema.json",
    Path("/work/shared/reference/rec-registry/schemas/community/v0.7/community.schema.json"),
)
DEFAULT_MEMBERS = 10_000
DEFAULT_ASSETS_PER_MEMBER = 4
DEFAULT_SEED = 20_260_301
DEFAULT_COMMUNITY = "bench"

FIRST_NAMES = (
    "Marco", "Giulia", "Luca", "Francesca", "Alessandro", "Chiara", "Matteo", "Sara",
    "Lorenzo", "Martina", "Andrea", "Elena", "Davide", "Valentina", "Simone", "Federica",
    "Paolo", "Anna", "Stefano", "Laura", "Giorgio", "Silvia", "Roberto", "Marta",
)
LAST_NAMES = (
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
    "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa",
    "Giordano", "Rizzo", "Lombardi", "Moretti", "Barbieri", "Fontana", "Santoro", "Mariani",
)
STREETS = ("Via Roma", "Via Garibaldi", "Via Mazzini", "Corso Italia", "Via dei Larici",
           "Via del Molino", "Piazza Duomo", "Via Verdi", "Via Dante", "Viale Trento")
BUSINESSES = ("Panificio", "Caseificio", "Officina", "Falegnameria", "Agriturismo",
              "Ferramenta", "Studio tecnico", "Cantina", "Hotel", "Supermercato")

# Role and status mix of the members that are not operators or the admin.
ROLE_WEIGHTS = {"consumer": 58, "prosumer": 37, "producer": 5}
STATUS_WEIGHTS = {"active": 88, "pending": 6, "suspended": 3, "inactive": 3}
# The non-meter asset types a member of each role holds, in order of likelihood.
ASSET_LABELS = {"pv": "FV", "storage": "Batteria", "heat_pump": "Pompa di calore",
                "ev_charger": "Wallbox", "load": "Carico"}
ASSET_POOLS = {
    "prosumer": ("pv", "storage", "ev_charger", "heat_pump", "load"),
    "producer": ("pv", "storage", "load", "pv"),
    "consumer": ("heat_pump", "ev_charger", "load"),
    "operator": ("pv", "load", "ev_charger"),
    "admin": ("load", "ev_charger", "heat_pump"),
}


class Generator:
    """Builds the bundle; every random choice comes from one seeded `random.Random`."""

    def __init__(self, *, members: int, assets_per_member: int, seed: int,
                 community: str) -> None:
        if members < 1 or assets_per_member < 1:
            raise ValueError("members and assets per member must be at least 1")
        self.members = members
        self.assets_per_member = assets_per_member
        self.seed = seed
        self.community = community
        self.rng = random.Random(seed)
        self.pod_counter = 0

    def pick(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def day(self, start: int = 2018, end: int = 2025) -> str:
        first = date(start, 1, 1)
        span = (date(end, 12, 31) - first).days
        return (first + timedelta(days=self.rng.randrange(span))).isoformat()

    def mac(self) -> str:
        return ":".join(f"{self.rng.randrange(256):02X}" for _ in range(6))

    def areas(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        count = self.rng.randint(4, 10)
        areas: dict[str, Any] = {}
        topology: list[dict[str, Any]] = []
        for index in range(count):
            key = f"area-{index + 1:02d}"
            substation = f"AC{101 + index:03d}E{self.rng.randrange(100_000):05d}"
            areas[key] = {
                "name": f"Zona {index + 1}",
                "boundary": {"source": "gse_cabine_primarie", "id": substation},
                "topology": [substation],
            }
            if self.rng.random() < 0.5:
                areas[key]["population"] = self.rng.randrange(2_000, 60_000)  # unknown property
            topology.append({"id": substation, "type": "primary_substation",
                             "name": f"CP {index + 1}", "operator_id": "edistribuzione"})
            for secondary in range(self.rng.randint(1, 3)):
                topology.append({"id": f"CS-{index + 1:02d}-{secondary + 1:02d}",
                                 "type": "secondary_substation",
                                 "name": f"Cabina {index + 1}.{secondary + 1}",
                                 "parent": substation})
        return areas, topology

    def special_roles(self) -> dict[int, str]:
        """A few operators and one admin, at seeded positions."""
        operators = max(1, self.members // 2000)
        chosen = self.rng.sample(range(self.members), min(self.members, operators + 1))
        roles = {index: "operator" for index in chosen[:-1]}
        roles[chosen[-1]] = "admin" if len(chosen) > 1 else "operator"
        return roles

    def delivery_points(self, address: str) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = []
        for number in range(2 if self.rng.random() < 0.15 else 1):
            self.pod_counter += 1
            point: dict[str, Any] = {"id": f"IT001E{self.pod_counter:08d}", "type": "pod"}
            if number == 0:
                point["address"] = address
            if self.rng.random() < 0.2:
                point["tariff"] = self.rng.choice(("BTA1", "BTA3", "BTA6", "D2", "D3"))
            if self.rng.random() < 0.03:
                point["active"] = False
            points.append(point)
        return points

    def meter(self, member_key: str, role: str, pods: list[str], sensor: str) -> dict[str, Any]:
        producing = role in ("prosumer", "producer")
        meter: dict[str, Any] = {
            "name": f"Contatore {member_key}",
            "sensor_id": sensor,
            "meter_type": self.rng.choice(("bidirectional", "production")) if producing
            else self.rng.choice(("consumption", "consumption", "import")),
            "pod": self.rng.choice(pods),
            "protocol": self.rng.choice(("mqtt", "mqtt", "modbus", "dlms", "rest_api")),
        }
        if self.rng.random() < 0.3:
            firmware = f"1.{self.rng.randrange(6)}.{self.rng.randrange(9)}"
            meter["device"] = {"type": "shelly", "model": "Pro 3EM",
                               "serial_number": f"SH-{sensor}", "mac_address": self.mac(),
                               "firmware_version": firmware}
        return meter

    def asset(self, kind: str, name: str) -> dict[str, Any]:
        rng = self.rng
        if kind == "pv":
            power = round(rng.uniform(2.5, 20.0), 1)
            return {"name": name, "rated_power": power,
                    "panel_type": rng.choice(("monocrystalline", "polycrystalline", "bifacial")),
                    "inverter_power": round(power * rng.uniform(0.85, 1.05), 1),
                    "orientation": rng.randrange(90, 271), "tilt_angle": rng.randrange(5, 41),
                    "installation_date": self.day()}
        if kind == "storage":
            capacity = rng.choice((5.0, 7.5, 10.0, 13.5, 15.0))
            return {"name": name, "capacity": capacity, "max_charge_power": capacity / 2,
                    "max_discharge_power": capacity / 2,
                    "battery_type": rng.choice(("lfp", "lfp", "lithium_ion", "sodium_ion")),
                    "round_trip_efficiency": rng.randrange(85, 96)}
        if kind == "heat_pump":
            thermal = round(rng.uniform(4.0, 16.0), 1)
            cop = round(rng.uniform(3.0, 4.8), 1)
            return {"name": name, "thermal_power": thermal,
                    "electrical_power": round(thermal / cop, 2), "cop": cop,
                    "heat_pump_type": rng.choice(("air_to_water", "air_to_air", "ground_source")),
                    "reversible": rng.random() < 0.6, "refrigerant": rng.choice(("R32", "R290"))}
        if kind == "ev_charger":
            return {"name": name, "max_power": rng.choice((3.7, 7.4, 11.0, 22.0)),
                    "charger_type": "ac_level2", "connector_types": ["type2"],
                    "smart_charging": rng.random() < 0.7, "bidirectional": rng.random() < 0.05,
                    "num_ports": 1}
        if kind == "load":
            power = round(rng.uniform(1.0, 30.0), 1)
            return {"name": name, "load_type": rng.choice(("hvac", "appliance", "refrigeration",
                                                           "pumping", "lighting")),
                    "rated_power": power, "min_power": round(power * 0.2, 1),
                    "controllable": rng.random() < 0.5,
                    "priority": rng.choice(("low", "medium", "high")),
                    "flexibility_kw": round(power * 0.3, 1)}
        raise ValueError(f"unknown asset type {kind}")

    def assets(self, index: int, member_key: str, role: str,
               pods: list[str]) -> dict[str, dict[str, Any]]:
        pool = list(ASSET_POOLS[role])
        if role == "consumer":
            self.rng.shuffle(pool)
        kinds = ["meter"] + [pool[n % len(pool)] for n in range(self.assets_per_member - 1)]
        grouped: dict[str, dict[str, Any]] = {}
        for number, kind in enumerate(kinds):
            key = f"{member_key}-{kind.replace('_', '-')}-{number}"
            if kind == "meter":
                body = self.meter(member_key, role, pods, f"sens-{index:06d}-{number}")
            else:
                body = self.asset(kind, f"{ASSET_LABELS[kind]} {member_key}")
            if self.rng.random() < 0.08:
                body["warranty_years"] = self.rng.choice((5, 10, 12, 20))  # unknown property
            grouped.setdefault(kind, {})[key] = body
        return grouped

    def member(self, index: int, role: str, area_keys: list[str],
               area_weights: list[int]) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        key = f"m{index:06d}"
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if role == "producer" or (role in ("consumer", "prosumer") and rng.random() < 0.06):
            kind, name = "schema:LocalBusiness", f"{rng.choice(BUSINESSES)} {last}"
        elif role in ("operator", "admin"):
            kind, name = "schema:Organization", f"Ufficio gestione {index}"
        elif rng.random() < 0.01:
            kind, name = "schema:GovernmentOrganization", f"Comune {last}"
        else:
            kind, name = "schema:Person", f"{first} {last}"
        local = f"{first}.{last}".lower().replace(" ", "")
        status = "active" if role in ("operator", "admin") else self.pick(STATUS_WEIGHTS)
        address = f"{rng.choice(STREETS)} {rng.randrange(1, 200)}"
        points = self.delivery_points(address)
        document: dict[str, Any] = {
            "user_id": f"{local}.{index}@example.org",
            "name": name,
            "type": kind,
            "role": role,
            "area": rng.choices(area_keys, weights=area_weights)[0],
            "status": status,
        }
        if rng.random() < 0.02:
            document["did"] = f"did:web:{self.community}.example.org:{key}"
        if rng.random() < 0.05:
            document["onboarding"] = {"batch": rng.randrange(1, 40),  # unknown property
                                      "channel": rng.choice(("web", "paper", "desk"))}
        document["delivery_points"] = points
        document["assets"] = self.assets(index, key, role, [point["id"] for point in points])
        return key, document

    def bundle(self) -> dict[str, Any]:
        areas, topology = self.areas()
        area_keys = list(areas)
        area_weights = [self.rng.randint(1, 10) for _ in area_keys]
        special = self.special_roles()
        members = dict(
            self.member(index, special.get(index) or self.pick(ROLE_WEIGHTS),
                        area_keys, area_weights)
            for index in range(self.members))
        return {
            "version": "1.0",
            "schema_version": "0.7",
            "metadata": {"created": "2026-03-01", "updated": "2026-03-01",
                         "updated_by": "tests.benchmarks.generate_community",
                         "description": f"Synthetic benchmark community: {self.members} "
                                        f"members, {self.members * self.assets_per_member} "
                                        f"assets, seed {self.seed}."},
            "x_generator": {"seed": self.seed, "members": self.members,  # unknown property
                            "assets_per_member": self.assets_per_member},
            "community": {
                "id": self.community,
                "name": f"CER Benchmark {self.community}",
                "description": "A synthetic renewable energy community for benchmarks",
                "legal": {"name": f"CER {self.community} APS", "vat": "IT09876543210",
                          "legal_form": "APS"},
                "contact": {"email": f"info@{self.community}.example.org"},
                "settings": {"timezone": "Europe/Rome", "currency": "EUR", "energy_unit": "kWh",
                             "power_unit": "kW",
                             "incentive_eur_per_mwh": 110},  # unknown property
                "operators": {"edistribuzione": {"name": "E-Distribuzione", "country": "IT"}},
                "areas": areas,
                "topology": topology,
            },
            "members": members,
        }


def generate(*, members: int = DEFAULT_MEMBERS,
             assets_per_member: int = DEFAULT_ASSETS_PER_MEMBER, seed: int = DEFAULT_SEED,
             community: str = DEFAULT_COMMUNITY) -> dict[str, Any]:
    """The community bundle as a dict; the same arguments always give the same bundle."""
    return Generator(members=members, assets_per_member=assets_per_member, seed=seed,
                     community=community).bundle()


def dump(document: dict[str, Any]) -> bytes:
    """The bundle as YAML (libyaml when available), keys in generation order."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text: str = yaml.dump(document, Dumper=dumper, sort_keys=False, allow_unicode=True,
                          width=1_000)
    return text.encode("utf-8")


def schema_path() -> Path:
    for candidate in SCHEMA_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("no community.schema.json found in " +
                            ", ".join(str(path) for path in SCHEMA_CANDIDATES))


def problems(document: dict[str, Any]) -> list[str]:
    """What is wrong with the bundle: JSON Schema errors, then the rules the schema cannot say."""
    import jsonschema

    path = schema_path()
    schema = json.loads(path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    found = [f"{'/'.join(map(str, error.absolute_path)) or '/'}: {error.message}"
             for error in validator.iter_errors(document)]
    community = document["community"]
    primaries = {node["id"] for node in community.get("topology", [])
                 if node["type"] == "primary_substation"}
    boundaries: set[str] = set()
    for key, area in community["areas"].items():
        if area["topology"] != [area["boundary"]["id"]] or area["boundary"]["id"] not in primaries:
            found.append(f"area {key}: topology must be [boundary.id], a primary substation")
        if area["boundary"]["id"] in boundaries:
            found.append(f"area {key}: boundary id used twice")
        boundaries.add(area["boundary"]["id"])
    seen: dict[str, set[str]] = {"user_id": set(), "pod": set(), "sensor": set(), "asset": set()}

    def unique(kind: str, value: str, where: str) -> None:
        if value in seen[kind]:
            found.append(f"{where}: {kind} {value} used twice")
        seen[kind].add(value)

    for key, member in document["members"].items():
        unique("user_id", member["user_id"], f"member {key}")
        if member["area"] not in community["areas"]:
            found.append(f"member {key}: unknown area {member['area']}")
        pods = {point["id"] for point in member.get("delivery_points", [])}
        for pod in pods:
            unique("pod", pod, f"member {key}")
        meters = 0
        for kind, assets in member.get("assets", {}).items():
            for asset_key, asset in assets.items():
                unique("asset", asset_key, f"member {key}")
                if kind == "meter":
                    meters += 1
                    unique("sensor", asset["sensor_id"], f"asset {asset_key}")
                    if asset.get("pod") not in pods:
                        found.append(f"asset {asset_key}: pod is not the member's")
        if meters != 1:
            found.append(f"member {key}: {meters} meters, expected 1")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.generate_community",
        description="Write a deterministic synthetic community bundle (format v0.7) as YAML.")
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS)
    parser.add_argument("--assets-per-member", type=int, default=DEFAULT_ASSETS_PER_MEMBER)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--community", default=DEFAULT_COMMUNITY, help="the community key")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    parser.add_argument("--validate", action="store_true",
                        help="check the bundle against the v0.7 JSON Schema and the import rules")
    args = parser.parse_args(argv)
    document = generate(members=args.members, assets_per_member=args.assets_per_member,
                        seed=args.seed, community=args.community)
    if args.validate:
        errors = problems(document)
        for error in errors[:50]:
            print(f"invalid: {error}", file=sys.stderr)
        if errors:
            print(f"{len(errors)} problem(s); nothing written", file=sys.stderr)
            return 1
        print(f"valid against {schema_path()}", file=sys.stderr)
    data = dump(document)
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"wrote {args.output}: {args.members} members, "
              f"{args.members * args.assets_per_member} assets, {len(data) / 1_048_576:.1f} MiB",
              file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
