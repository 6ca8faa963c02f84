# Shared by scripts/dev and scripts/test: install what is missing, build, find PostgreSQL.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TEMPORAL_CLI_PATH="${TEMPORAL_CLI_PATH:-$ROOT/.tools/python/bin/temporal}"
export TEMPORAL_TEST_SERVER_PATH="${TEMPORAL_TEST_SERVER_PATH:-$ROOT/.tools/python/bin/temporal-test-server}"

setup() {
  cd "$ROOT"
  # npm ci when node_modules is missing or older than the lockfile.
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  ./scripts/install-temporal
  npm run --silent build
  npx eslint --max-warnings 0 .
}

# Sets POSTGRES_ADMIN_URL and DATABASE_URL: DATABASE_URL's server, else 127.0.0.1:5432, else an
# embedded server that runs in the background (its pid in POSTGRES_PID) until this script exits.
find_postgres() {
  local log="$ROOT/.data/postgres.log"
  mkdir -p "$ROOT/.data"
  : >"$log"
  node "$ROOT/dist/scripts/postgres.js" >"$log" 2>&1 &
  POSTGRES_PID=$!
  for _ in $(seq 1 600); do
    if grep -q adminUrl "$log"; then
      POSTGRES_ADMIN_URL="$(json_field adminUrl "$log")"
      DATABASE_URL="$(json_field databaseUrl "$log")"
      export POSTGRES_ADMIN_URL DATABASE_URL
      # Only an embedded server keeps running; a found one needs nothing more from us.
      grep -q '"embedded":true' "$log" || POSTGRES_PID=""
      return 0
    fi
    if ! kill -0 "$POSTGRES_PID" 2>/dev/null; then
      cat "$log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "PostgreSQL did not come up; see $log" >&2
  return 1
}

# json_field NAME FILE: NAME from the first line of FILE, a JSON object.
json_field() {
  node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[2], "utf8").split("\n")[0])[process.argv[1]])' "$1" "$2"
}
