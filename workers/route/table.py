"""The proxy's copy of the shard map: project id → shard → upstream URLs, re-read from the
control database every few seconds, and at once (at most every `miss_s`) when a project is
not in it yet (it was created a moment ago)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from workers import shards
from workers.db.queries import query
from workers.errors import UserError
from workers.route.claims import Refused
from workers.settings import Settings

REFRESH_S = 5.0
MISS_S = 0.5


@dataclass(frozen=True)
class Upstream:
    """One shard's HTTP services."""

    shard: str
    api_url: str | None
    files_url: str | None
    read_api_url: str | None = None

    def url(self, files: bool, read: bool = False) -> str:
        """The base URL of the service a request goes to (`read`: an API read, which the
        replica's read-only PostgREST takes when the shard has one); Refused when not set."""
        if read and not files and self.read_api_url is not None:
            return self.read_api_url
        url = self.files_url if files else self.api_url
        if url is None:
            option = "--files-url" if files else "--api-url"
            what = "file service" if files else "PostgREST"
            raise Refused(f"shard {self.shard} has no {what} URL in the shard map",
                          f"Set it: `secinf shards add {self.shard} CONNINFO {option} URL`.",
                          status=502)
        return url


class UnknownProject(Refused):
    """No shard holds the project."""

    code = "unknown_project"


class RouteTable:
    """Thread-safe lookups of the shard map, refreshed from the control database."""

    def __init__(self, settings: Settings, refresh_s: float = REFRESH_S,
                 miss_s: float = MISS_S) -> None:
        self.settings = settings
        self.refresh_s = refresh_s
        self.miss_s = miss_s
        self._lock = threading.Lock()
        self._projects: dict[str, Upstream] = {}
        self._shards: list[Upstream] = []
        self._loaded_at = float("-inf")

    def _load(self) -> None:
        with shards.control(self.settings) as conn:
            ups = {r["name"]: Upstream(r["name"], r["api_url"], r["files_url"],
                                       r["read_api_url"])
                   for r in conn.execute(query("shards", "list_shards")).fetchall()}
            placed = conn.execute(query("shards", "route_table")).fetchall()
        self._shards = list(ups.values())
        self._projects = {str(r["project_id"]): ups[r["shard"]] for r in placed}
        self._loaded_at = time.monotonic()

    def _fresh(self, max_age: float) -> None:
        with self._lock:
            if time.monotonic() - self._loaded_at >= max_age:
                self._load()

    def project(self, project_id: str) -> Upstream:
        """The upstreams of the project's shard; UnknownProject naming it and the fix."""
        self._fresh(self.refresh_s)
        found = self._projects.get(project_id)
        if found is None:
            self._fresh(self.miss_s)  # created since the last read?
            found = self._projects.get(project_id)
        if found is None:
            raise UnknownProject(
                f"project {project_id} is on no shard of the shard map",
                "Create the project with `secinf project create` (which places it on a "
                "shard), or check that this proxy's SECINF_SHARDS names the right control "
                "database (`secinf shards projects` lists the placed projects).", status=404)
        return found

    def by_reference(self, ref: str) -> Upstream | None:
        """The shard of a project named as `secinf` names it (id, org/slug, slug); None
        when no placement matches it."""
        try:
            shard = shards.shard_of(ref, self.settings)
        except UserError:  # unplaced or ambiguous: every shard is asked
            return None
        self._fresh(self.refresh_s)
        return next((u for u in self._shards if u.shard == shard.name), None)

    def all(self) -> list[Upstream]:
        """Every shard, in the order added."""
        self._fresh(self.refresh_s)
        if not self._shards:
            raise Refused("the shard map has no shards",
                          "Add them with `secinf shards add NAME CONNINFO --api-url URL "
                          "--files-url URL`.", status=503)
        return list(self._shards)
