-- 0015 · features.pair_rows_of takes the boxes of the active pair rules (p_boxes, a fifth
-- argument; sql/40_features_relations.sql): the candidates stage drops the pairs no pair
-- rule can use before it makes both orders of them. The four-argument function of 0014's
-- release is dropped; applying sql/ creates the new one and the callers that name it.
-- depends: 0014_pair_row_type
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS features.pair_rows_of(bigint, timestamptz, timestamptz, text[]);

RESET ROLE;
