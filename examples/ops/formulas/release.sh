#!/usr/bin/env bash
# Uses the one secret it was granted. It never prints the value; if it did, the runner masks it.
set -euo pipefail
: "${DEMO_TOKEN:?DEMO_TOKEN was not provided}"
echo "release: DEMO_TOKEN is present (${#DEMO_TOKEN} characters)"
echo "release: a formula that echoes it by mistake shows: $DEMO_TOKEN"
