-- zlayer-tunnel-postgres.sql: the token store of the postgres validator
-- (libzlt-postgres.so, [validator:postgres] in zlayer-tunnel.conf(5)).
--
-- Apply it once to the database the servers share (it can be applied again: it only
-- creates what is missing and replaces the functions and the trigger):
--
--   psql -v ON_ERROR_STOP=1 -d tunnels -f zlayer-tunnel-postgres.sql
--
-- One row per token, never the token itself: its SHA-256 as 64 lowercase hex digits,
-- as `zlayer-tunnel token new` prints it and the token-file validator stores it. The
-- columns mean what the fields of a token file mean (zlayer-tunnel-tokens(5)):
--
--   token_hash  sha256 of the token; for v2 proofs the hash is what proves a token, so
--               only the servers (and the admins) may read this table
--   key_id      the first 16 hex digits of the hash, the key id v2 agents send
--   name        the principal: tokens of one name own what they register together
--   register    service patterns the token may register (a name, `*`, or a prefix
--               ending in `*`); NULL = any name nobody else owns, except on a row with
--               reach set, which then registers nothing (as a token-file line)
--   reach       service patterns reachable through access sessions; NULL = none
--   owns        service patterns reserved to this name, even while it is away
--   expires     when the token stops working; NULL = never
--   revoked     true ends the token at once on every server
--   hostnames   hostname patterns its services may claim on the server's shared HTTP
--               and TLS ports (app.example.org, or *.apps.example.org for every name
--               under it); NULL = none
--   rate_limit_in, rate_limit_out
--               bytes per second of all the name's public connections on a server,
--               toward its services (in) and back to their clients (out); NULL or 0 =
--               no limit
--
-- Applying this file to a table made by an older version adds the columns that are
-- missing (ALTER TABLE ... ADD COLUMN IF NOT EXISTS); servers that connected before
-- see them at the next change of a row. A server reading a table without them gives
-- every token no hostnames and no rate limits, and logs that once.
--
-- Every change of a row NOTIFYs the channel named like the table (the row's key id as
-- payload): each server LISTENs on it and re-checks its live tunnels, so a revocation
-- reaches all of them at once:
--
--   UPDATE zlt_tokens SET revoked = true WHERE name = 'alice';
--
-- The servers only read: give their role SELECT and nothing else, e.g.
--
--   CREATE ROLE zlt_server LOGIN;
--   GRANT SELECT ON zlt_tokens TO zlt_server;

SET client_min_messages = warning;

CREATE OR REPLACE FUNCTION zlt_service_patterns_valid (patterns text[])
  RETURNS boolean
  LANGUAGE sql IMMUTABLE
  AS $$
    SELECT patterns IS NULL OR NOT EXISTS (
      SELECT 1 FROM unnest(patterns) AS p
       WHERE p IS NULL OR p !~ '^(\*|[A-Za-z0-9_-]{1,64}\*?)$')
  $$;

-- a hostname (labels of letters, digits, '-' and '_', at most 63 bytes each, 253 in
-- all) or "*." and one; case does not matter, the servers compare in lowercase
CREATE OR REPLACE FUNCTION zlt_hostname_patterns_valid (patterns text[])
  RETURNS boolean
  LANGUAGE sql IMMUTABLE
  AS $$
    SELECT patterns IS NULL OR NOT EXISTS (
      SELECT 1 FROM unnest(patterns) AS p
       WHERE p IS NULL
          OR octet_length(regexp_replace(p, '^\*\.', '')) > 253
          OR p !~ '^(\*\.)?[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*$')
  $$;

CREATE TABLE IF NOT EXISTS zlt_tokens (
  token_hash text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  key_id text GENERATED ALWAYS AS (substr(token_hash, 1, 16)) STORED,
  name text NOT NULL
    CHECK (octet_length(name) BETWEEN 1 AND 128 AND name !~ '[[:space:][:cntrl:]]'),
  register text[] CHECK (zlt_service_patterns_valid (register)),
  reach text[] CHECK (zlt_service_patterns_valid (reach)),
  owns text[] CHECK (zlt_service_patterns_valid (owns)),
  expires timestamptz CHECK (expires IS NULL OR isfinite(expires)),
  revoked boolean NOT NULL DEFAULT false,
  created timestamptz NOT NULL DEFAULT now(),
  comment text
);

-- rights added after the first version: ADD COLUMN IF NOT EXISTS, so applying this file
-- upgrades an older table in place (the largest rate is ZLT_GRANT_RATE_MAX, ~9 TB/s)
ALTER TABLE zlt_tokens
  ADD COLUMN IF NOT EXISTS hostnames text[]
    CONSTRAINT zlt_tokens_hostnames_check CHECK (zlt_hostname_patterns_valid (hostnames)),
  ADD COLUMN IF NOT EXISTS rate_limit_in bigint
    CONSTRAINT zlt_tokens_rate_limit_in_check
    CHECK (rate_limit_in BETWEEN 0 AND 9223372036854),
  ADD COLUMN IF NOT EXISTS rate_limit_out bigint
    CONSTRAINT zlt_tokens_rate_limit_out_check
    CHECK (rate_limit_out BETWEEN 0 AND 9223372036854);

CREATE INDEX IF NOT EXISTS zlt_tokens_key_id ON zlt_tokens (key_id);

CREATE OR REPLACE FUNCTION zlt_tokens_notify ()
  RETURNS trigger
  LANGUAGE plpgsql
  AS $$
  BEGIN
    IF TG_OP = 'TRUNCATE' THEN
      PERFORM pg_notify(TG_TABLE_NAME, '*');
      RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
      PERFORM pg_notify(TG_TABLE_NAME, OLD.key_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
      PERFORM pg_notify(TG_TABLE_NAME, NEW.key_id);
    END IF;
    RETURN NULL;
  END
  $$;

DROP TRIGGER IF EXISTS zlt_tokens_notify ON zlt_tokens;
CREATE TRIGGER zlt_tokens_notify
  AFTER INSERT OR UPDATE OR DELETE ON zlt_tokens
  FOR EACH ROW EXECUTE FUNCTION zlt_tokens_notify ();

DROP TRIGGER IF EXISTS zlt_tokens_notify_truncate ON zlt_tokens;
CREATE TRIGGER zlt_tokens_notify_truncate
  AFTER TRUNCATE ON zlt_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION zlt_tokens_notify ();
