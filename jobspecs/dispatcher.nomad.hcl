# The dispatcher itself: a long-running service. It talks to Nomad and Vault over their HTTP APIs
# and to the ops repo with git; it needs no Docker socket and no host volume.
#
# Before the first run (once per cluster):
#   nomad acl policy apply -namespace default -job dispatcher dispatcher-wi dispatcher-acl.hcl
#     (dispatch-job and read-job on the runner/sidecar jobs, node:read for host volumes)
#   nomad var put nomad/jobs/dispatcher vault_token=<token printed by scripts/bootstrap-vault.sh>
variable "datacenters" {
  type    = list(string)
  default = ["*"]
}
variable "driver" {
  description = "raw_exec on the dev stack; exec (or docker with an image holding node and git) in production"
  type        = string
  default     = "raw_exec"
}
variable "node_bin" {
  type    = string
  default = "node"
}
variable "cli" {
  description = "path of dist/cli/main.js as seen by the task"
  type        = string
}
variable "nomad_addr" {
  description = "the local Nomad agent's HTTP API"
  type        = string
  default     = "http://127.0.0.1:4646"
}
variable "vault_addr" {
  type = string
}
variable "ops_remote" {
  description = "the ops repo's git remote (the dispatcher pushes results to it)"
  type        = string
}
variable "secrets" {
  description = "secret names actions may ask for (each needs a runner-<name> policy)"
  type        = list(string)
  default     = []
}

job "dispatcher" {
  type        = "service"
  datacenters = var.datacenters

  group "dispatcher" {
    # one instance: two would both claim the same actions until the exactly-once ledger exists
    count = 1

    restart {
      attempts = 3
      interval = "5m"
      delay    = "15s"
      mode     = "delay"
    }

    # the private clone of the ops repo survives restarts and moves with the allocation
    ephemeral_disk {
      size    = 500
      sticky  = true
      migrate = true
    }

    task "dispatcher" {
      driver = var.driver
      config {
        command = var.node_bin
        args    = [var.cli, "run"]
      }

      # NOMAD_TOKEN: the task's workload identity (ACL policy attached to the job, see above)
      identity {
        env = true
      }

      # the dispatcher's own Vault token (policy service-dispatcher), from a Nomad variable only
      # this job can read; never in the jobspec
      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/dispatcher" }}VAULT_TOKEN={{ .vault_token }}{{ end }}
        EOT
        destination = "secrets/vault.env"
        env         = true
        change_mode = "restart"
      }

      env {
        NOMAD_ADDR            = var.nomad_addr
        VAULT_ADDR            = var.vault_addr
        DISPATCHER_OPS_REMOTE = var.ops_remote
        DISPATCHER_SECRETS    = join(",", var.secrets)
        DISPATCHER_WORKDIR    = "${NOMAD_ALLOC_DIR}/data/ops"
        DISPATCHER_INSTANCE   = "${NOMAD_ALLOC_ID}"
      }

      # `run` drains on SIGTERM: no new dispatches, finish and push the results in hand
      kill_signal  = "SIGTERM"
      kill_timeout = "90s"

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
