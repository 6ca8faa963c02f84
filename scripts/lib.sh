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

# Headless Chromium for the Temporal UI test (test/temporalUi.test.ts): CHROMIUM_PATH when set, else
# Debian's chromium at /usr/bin/chromium, installed quietly with apt-get when missing.
ensure_chromium() {
  if [ -n "${CHROMIUM_PATH:-}" ]; then
    [ -x "$CHROMIUM_PATH" ] && return 0
    echo "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable: point it at a Chromium, or unset it to use Debian's chromium" >&2
    return 1
  fi
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "Chromium is missing: run 'sudo apt-get install chromium' (Debian) or set CHROMIUM_PATH" >&2
    return 1
  fi
  local log="$ROOT/.data/chromium-install.log"
  mkdir -p "$ROOT/.data"
  echo "installing Debian's chromium for the Temporal UI test" >&2
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$log" 2>&1 ||
    [ ! -x /usr/bin/chromium ]; then
    tail -n 20 "$log" >&2
    echo "could not install chromium with apt-get (log: $log): install it by hand or set CHROMIUM_PATH" >&2
    return 1
  fi
}

# The dev stack's service token in file $1: made once, and readable by this user only (mode 0600), also when an
# older dev stack left it world-readable.
ensure_api_token() {
  [ -s "$1" ] || (umask 077 && node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))' >"$1")
  chmod 600 "$1"
}
