#!/bin/sh
# Runs once the Temporal server's port is open (docker-compose.yml, service temporal-namespace): waits
# until the cluster answers, then creates the app's namespace unless it exists. The server image has no
# namespace of its own and no CLI; the app's services start only after this exits 0.
set -eu

attempts=60
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  attempts=$((attempts - 1))
  if [ "$attempts" -le 0 ]; then
    echo "Temporal at $TEMPORAL_ADDRESS did not become healthy" >&2
    exit 1
  fi
  sleep 2
done

if temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
  echo "Namespace $TEMPORAL_NAMESPACE exists"
else
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" \
    --retention "$NAMESPACE_RETENTION"
  echo "Namespace $TEMPORAL_NAMESPACE created (closed runs kept $NAMESPACE_RETENTION)"
fi
