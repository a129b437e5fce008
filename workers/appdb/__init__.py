"""Database access for the review app: PostgREST-style requests as the signed-in caller."""

from workers.appdb.session import (
    ApiCallError,
    AppDB,
    DecisionConflict,
    Identity,
    NotAllowed,
    SessionEnded,
    authenticator_conninfo,
)

__all__ = [
    "ApiCallError",
    "AppDB",
    "DecisionConflict",
    "Identity",
    "NotAllowed",
    "SessionEnded",
    "authenticator_conninfo",
]
