# Nomad ACL policy of the dispatcher (attach to its token, or to its service job's workload
# identity: `nomad acl policy apply -namespace dispatcher -job dispatcher dispatcher acl/dispatcher.hcl`).
# Runner and sidecar parents and their dispatched children live in the `dispatch` namespace.
# Nothing here can register, re-register, stop or evaluate a job (all need submit-job): whoever
# could re-register `runner` would receive every token minted for it.
namespace "dispatch" {
  capabilities = [
    "dispatch-job", # start one child of runner/sidecar per action attempt
    "read-job",     # child meta (ledger verification), allocations, evaluations, the event stream, the parent's pinned spec
    "list-jobs",    # find children left by a predecessor (status, re-attach)
    "read-logs",    # the task's stdout/stderr for the result and `logs -f`
  ]

  variables {
    # the ledger (<prefix>/actions/<id>) and replica heartbeats (<prefix>/instances/<name>):
    # read and write each entry; list for `status` (every entry, every replica). The daemon
    # itself never lists the ledger: its claim's check-and-set finds an entry there is
    path "dispatcher/*" {
      capabilities = ["read", "write", "list"]
    }
  }
}

# host volumes offered by ready nodes (mount availability), and the nodes' Nomad version for doctor
node {
  policy = "read"
}
