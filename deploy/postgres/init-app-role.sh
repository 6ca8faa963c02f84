#!/bin/sh
# Runs once, when the postgres service's data volume is first created (docker-entrypoint-initdb.d): the role the
# app connects as. Not a superuser, not the database's owner: it owns the service's schema and the builtin
# registry's tables it creates in public, and can read nothing of Temporal's databases.
# An older volume made before this file: run the same SQL once with `docker compose exec postgres psql -U registry registry`.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v password="$TOKEN_EXPIRY_DB_PASSWORD" <<'SQL'
CREATE ROLE token_expiry LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
GRANT CONNECT ON DATABASE registry TO token_expiry;
GRANT USAGE, CREATE ON SCHEMA public TO token_expiry;
CREATE SCHEMA token_expiry AUTHORIZATION token_expiry;
SQL
