#!/bin/sh
# Runs once before the Temporal server starts (docker-compose.yml, service temporal-schema): creates
# Temporal's two PostgreSQL databases and brings both schemas to the version this admin-tools image
# ships. Safe on every `docker compose up`: an existing database is kept, setup-schema -v 0.0 only adds
# the version tables when missing, and update-schema applies only the versions not yet applied.
# temporal-sql-tool reads the connection from SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD.
# scripts/cluster runs it too, outside the image: TEMPORAL_SCHEMA_DIR then names its copy of the schemas.
set -eu

schemas="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"

prepare() { # database, directory of its versioned schema
  temporal-sql-tool --plugin postgres12 --db "$1" create-database
  temporal-sql-tool --plugin postgres12 --db "$1" setup-schema -v 0.0
  temporal-sql-tool --plugin postgres12 --db "$1" update-schema -d "$2"
}

prepare "$DBNAME" "$schemas/temporal/versioned"
prepare "$VISIBILITY_DBNAME" "$schemas/visibility/versioned"
echo "Temporal schemas ready in $DBNAME and $VISIBILITY_DBNAME"
