-- Who reviews, and what a blind second reviewer may not see (issue 16). Here, before the
-- api files, because the events view and the review functions all ask these.
--
-- One person is one reviewer: a sign-in's user name, or the owner account of the API key
-- behind the token (core.api_keys.owner), so a person's key and account are the same
-- reviewer. A key without an owner is a machine: it reads, but does not decide.

-- ---------------------------------------------------------------- the person
-- The reviewer identity of the caller: the key's owner for key tokens (NULL when the key has
-- none), else auth.subject() (a sign-in's user name; an operator's token's sub).
CREATE OR REPLACE FUNCTION review.person() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c jsonb := auth.claims();
BEGIN
  IF c ? 'key_id' THEN
    RETURN (SELECT k.owner FROM core.api_keys k WHERE k.key_id = (c ->> 'key_id')::uuid);
  END IF;
  RETURN auth.subject();
END
$$;

-- The same, for code that records a decision: raises for a key without an owner.
CREATE OR REPLACE FUNCTION review.require_person() RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v text := review.person();
BEGIN
  IF v IS NULL THEN
    RAISE EXCEPTION 'API key % has no owner: review decisions are made by people',
      auth.claims() ->> 'sub' USING ERRCODE = '42501',
      HINT = 'Sign in with your account, or ask a project admin for a key with an owner '
             '(secinf keys create --owner USER).';
  END IF;
  RETURN v;
END
$$;

-- ---------------------------------------------------------------- blindness
-- The candidates the caller must judge blind: an open second opinion whose first reviewer
-- is someone else, for callers who may give second opinions (reviewers, project admins).
-- Their first decision, status and event are withheld from such a caller everywhere
-- (queue, counts, events, candidate page) until the second opinion is answered.
CREATE OR REPLACE FUNCTION review.blind_candidates() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_me text;
BEGIN
  IF auth.is_admin() OR auth.role() NOT IN ('reviewer', 'project_admin') THEN
    RETURN '{}';
  END IF;
  v_me := review.person();
  RETURN ARRAY(SELECT so.candidate_id FROM review.second_opinions so
               WHERE so.project_id = ANY (auth.project_ids()) AND so.decision_id IS NULL
                 AND so.first_reviewer IS DISTINCT FROM v_me
               ORDER BY so.candidate_id);
END
$$;
