"""The review app's error boundary (workers/appdb/session.translate) on PostgREST's own error
form: SQLSTATE PGRST with a JSON body and status/headers, as the rate limit raises it."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg import sql

from workers.appdb.session import translate
from workers.errors import SecinfError

pytestmark = pytest.mark.db


def raised(db: psycopg.Connection[Any], message: dict[str, Any], detail: dict[str, Any]
           ) -> psycopg.Error:
    statement = sql.SQL("DO $$ BEGIN RAISE SQLSTATE 'PGRST' USING MESSAGE = {}, DETAIL = {};"
                        " END $$").format(sql.Literal(json.dumps(message)),
                                          sql.Literal(json.dumps(detail)))
    with pytest.raises(psycopg.Error) as caught:
        db.execute(statement)
    db.rollback()
    return caught.value


def test_a_rate_limit_says_when_to_try_again(db: psycopg.Connection[Any]) -> None:
    exc = raised(db, {"code": "PT429", "message": "rate limit reached for this API key",
                      "hint": "Slow down."},
                 {"status": 429, "headers": {"Retry-After": "3"}})
    err = translate(exc)
    assert isinstance(err, SecinfError)
    assert str(err) == ("too many requests: rate limit reached for this API key (Slow down.); "
                        "try again in 3 s")


def test_other_pgrst_codes_keep_their_message(db: psycopg.Connection[Any]) -> None:
    exc = raised(db, {"code": "PT402", "message": "quota exceeded: api_requests"},
                 {"status": 402})
    assert str(translate(exc)) == "quota exceeded: api_requests"
