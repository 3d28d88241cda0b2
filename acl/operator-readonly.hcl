# Nomad ACL policy for operators who watch the dispatcher (`dispatcher status`, `logs`). It can
# never read a job in the `dispatch` namespace: a job's Payload is a child's wrapping token, and
# read-job would let its holder unwrap someone else's secrets before the runner does.
namespace "dispatch" {
  capabilities = [
    "list-jobs", # which children exist, with their meta and summary (no payload in a listing)
    "read-logs", # a running action's output, by allocation id
  ]

  variables {
    # the ledger: state, job id and allocation of each action, and the replicas' heartbeats
    path "dispatcher/*" {
      capabilities = ["read", "list"]
    }
  }
}

# which node ran what (names in `status`)
node {
  policy = "read"
}
