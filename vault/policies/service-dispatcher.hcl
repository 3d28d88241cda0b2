# The dispatcher's own token. It mints runner tokens on one role and revokes them; it can see
# which policies exist, and nothing under the secrets mount. One line of reason per capability.

# mint one response-wrapped token per dispatch, only on the runner role
path "auth/token/create/dispatcher-runner" {
  capabilities = ["create", "update"]
}
# check that an accessor from the ledger was made on that role for that action before revoking it
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}
# revoke a runner token once its allocation has ended
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}
# doctor: what this token may do on the runner role and the secret paths (it must be deny there)
path "sys/capabilities-self" {
  capabilities = ["update"]
}
# its own remaining TTL (renewal schedule, doctor)
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
# keep its own periodic token alive
path "auth/token/renew-self" {
  capabilities = ["update"]
}
# refuse an action whose secret has no runner-<name> policy (before minting)
path "sys/policies/acl/runner-*" {
  capabilities = ["read"]
}
# doctor: list which runner policies exist
path "sys/policies/acl" {
  capabilities = ["list"]
}
