"""Semantic versions of datasets (MAJOR.MINOR.PATCH, no pre-release tags)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from workers.errors import UserError

Bump = Literal["major", "minor", "patch"]
_SEMVER = re.compile(r"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$")
FIRST = "1.0.0"


@dataclass(frozen=True, order=True)
class SemVer:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> SemVer:
        m = _SEMVER.match(text.strip())
        if not m:
            raise UserError(f"version {text!r} is not MAJOR.MINOR.PATCH (e.g. 1.2.0)")
        return cls(int(m[1]), int(m[2]), int(m[3]))

    def bump(self, kind: Bump) -> SemVer:
        if kind == "major":
            return SemVer(self.major + 1, 0, 0)
        if kind == "minor":
            return SemVer(self.major, self.minor + 1, 0)
        return SemVer(self.major, self.minor, self.patch + 1)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def next_version(previous: str | None, *, breaking: bool, bump: Bump = "minor",
                 requested: str | None = None, why: str = "") -> str:
    """The version to export: `requested` if it is valid, else the previous published one
    bumped (major when `breaking`: the schema or the ontology changed)."""
    prev = SemVer.parse(previous) if previous else None
    if requested is not None:
        want = SemVer.parse(requested)
        if prev is not None and want <= prev:
            raise UserError(f"version {want} is not newer than the latest published {prev}: "
                            f"give a higher --version or leave it out ({prev.bump(bump)} next)")
        if prev is not None and breaking and want.major == prev.major:
            raise UserError(f"{why}: version {want} must be a major version, e.g. "
                            f"{prev.bump('major')}")
        return str(want)
    if prev is None:
        return FIRST
    return str(prev.bump("major" if breaking else bump))
