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
    # the ledger (<prefix>/actions/<id>), replica heartbeats (<prefix>/instances/<name>) and the
    # places of the limits replicas share (<prefix>/places/lock/<key>, <prefix>/places/slot/<n>)
    # and the webhook's replay guard (<prefix>/deliveries/<sha256 of a delivery>: created with
    # check-and-set, an expired one taken over, swept with check-and-set):
    #   read    each entry, heartbeat and place (take-over decisions)
    #   write   claims and state changes, heartbeats, taking a place (all check-and-set)
    #   list    the slots when the first guess is taken, the ledger at most hourly for its
    #           retention sweep, and `status` (every entry, every replica); a pass never lists
    #           the ledger: its claim's check-and-set finds an entry there is
    #   destroy freeing a place when its child ends; removing a recorded entry, or a silent
    #           replica's heartbeat, past its retention (all check-and-set: one written meanwhile stays)
    path "dispatcher/*" {
      capabilities = ["read", "write", "list", "destroy"]
    }
  }
}

# host volumes offered by ready nodes (mount availability), and the nodes' Nomad version for doctor
node {
  policy = "read"
}
