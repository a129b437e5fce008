-- 0015 rollback: the five-argument function and its box test go; sql/ of the release rolled
-- back to creates the four-argument function again.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DROP FUNCTION IF EXISTS features.pair_rows_of(bigint, timestamptz, timestamptz, text[],
                                              double precision[]);
DROP FUNCTION IF EXISTS features.pair_in_box(double precision[], double precision,
                                             double precision, double precision,
                                             double precision);
