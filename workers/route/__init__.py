"""`secinf route`: one HTTP address in front of every shard's PostgREST and file service.

Under a shard map (SECINF_SHARDS) each shard runs its own PostgREST and file service
(`control.shards.api_url`, `files_url`); this proxy sends each request to the shard of its
project (docs/scale.md, "The HTTP API"):

* a request with a JWT goes by the token's `project_id` claim, read **without verifying
  the signature** (the proxy holds no JWT secret; the shard's PostgREST verifies it, and a
  forged claim only reaches a shard that refuses the forged token); its GETs and HEADs go
  to the read-only PostgREST on the shard's replica when the shard has one
  (`read_api_url`), unless the request says `Secinf-Read: primary`;
* `POST /rpc/exchange_key` and `POST /rpc/login` (they carry a key or a password, not a
  JWT) are tried on each shard in turn until one does not answer 401, as the app signs in
  (workers/appdb/shards.py); a login that names its project goes to that project's shard;
* `/files/org/{org}/project/{project}/…` (signed URLs) goes by the project in the key;
* other requests without a token (the OpenAPI root) go to the first shard: every shard
  serves the same schema.

Without a shard map the proxy is not needed: clients talk to PostgREST and the file
service directly.
"""
