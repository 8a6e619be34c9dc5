"""Known advisories for every pin, from PyPI's JSON API: the check to run where `make audit`
(pip-audit) cannot get its data, e.g. where PyPI's per-version JSON or OSV is unreachable.

    python scripts/pypi_advisories.py [constraints.txt] [--index https://pypi.org/pypi]

PyPI's project JSON (`<index>/<name>/json`) lists the advisories (OSV's) that affect the project's
latest release. So a pin that is the latest release is fully checked, and an older pin is only
reported as older, to be checked by other means. Prints the advisories affecting pinned versions,
then the older pins. Exits 1 if a pinned version has an advisory, 2 if a lookup failed, else 0.
"""
from __future__ import annotations

import argparse
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


@dataclass
class Pin:
    name: str
    version: str
    latest: str = ""
    advisories: list[dict] = field(default_factory=list)  # those PyPI lists for `latest`
    error: str = ""


def read_pins(path: str) -> list[Pin]:
    with open(path, encoding="utf-8") as lines:
        return [Pin(match[1], match[2]) for line in lines if (match := PIN.match(line))]


def look_up(pin: Pin, index: str) -> Pin:
    try:
        response = requests.get(f"{index}/{pin.name}/json", timeout=30)
        response.raise_for_status()
        project = response.json()
        pin.latest = project["info"]["version"]
        pin.advisories = project.get("vulnerabilities") or []
    except (requests.RequestException, ValueError, KeyError) as exc:
        pin.error = f"{type(exc).__name__}: {exc}"
    return pin


def describe(advisory: dict) -> str:
    aliases = ", ".join(advisory.get("aliases") or [])
    fixed = ", ".join(advisory.get("fixed_in") or []) or "no fixed release"
    return f"{advisory['id']}" + (f" ({aliases})" if aliases else "") + f"; fixed in: {fixed}"


def report(pins: list[Pin]) -> int:
    failed = [pin for pin in pins if pin.error]
    checked = [pin for pin in pins if not pin.error and pin.version == pin.latest]
    older = [pin for pin in pins if not pin.error and pin.version != pin.latest]
    affected = [pin for pin in checked if pin.advisories]
    print(f"pins {len(pins)}: {len(checked)} at their latest release (checked), {len(older)} older "
          f"(not checkable this way), {len(failed)} lookups failed")
    print(f"pinned versions with advisories: {len(affected)}")
    for pin in affected:
        print(f"  {pin.name}=={pin.version}")
        for advisory in pin.advisories:
            print(f"    {describe(advisory)}")
    if older:
        print("older pins: " + " ".join(f"{pin.name}=={pin.version} (latest {pin.latest})" for pin in older))
    for pin in failed:
        print(f"lookup failed: {pin.name}: {pin.error}")
    return 1 if affected else 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pins", nargs="?", default="constraints.txt", help="a requirements file of name==version")
    parser.add_argument("--index", default="https://pypi.org/pypi", help="base of PyPI's JSON API")
    args = parser.parse_args(argv)
    pins = read_pins(args.pins)
    if not pins:
        parser.error(f"no name==version pins in {args.pins}")
    with ThreadPoolExecutor(8) as pool:
        pins = list(pool.map(lambda pin: look_up(pin, args.index.rstrip("/")), pins))
    return report(pins)


if __name__ == "__main__":
    sys.exit(main())
