# The dispatcher's own token. It mints runner tokens on one role and revokes them; it can see
# which policies exist, and nothing under the secrets mount.
path "auth/token/create/dispatcher-runner" {
  capabilities = ["create", "update"]
}
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "sys/policies/acl/runner-*" {
  capabilities = ["read"]
}
path "sys/policies/acl" {
  capabilities = ["list"]
}
