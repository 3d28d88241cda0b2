#!/usr/bin/env bash
# A formula with no secrets: prints the action's context.
set -euo pipefail
echo "hello from action $ACTION_ID"
grep '^context' "$VAULT_ACTION_TOML"
