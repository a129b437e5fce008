-- name: seal :one
-- Seal what can be sealed into the hash chain (audit.seal, sql/050_audit.sql).
SELECT audit.seal(%(limit)s) AS sealed;

-- name: verify :one
-- Walk the audit hash chain: rows checked, the first broken link and why.
SELECT rows_checked, first_broken, reason, unsealed FROM audit.verify_chain();

-- name: broken_row :one
-- The row at a broken link, to show what it is (never its details).
SELECT audit_id, at, project_id, actor, action, target FROM audit.log WHERE chain_seq = %(seq)s;
