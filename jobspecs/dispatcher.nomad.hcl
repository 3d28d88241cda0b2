# The dispatcher itself: a long-running service. It talks to Nomad and Vault over their HTTP APIs
# and to the ops repo with git; it needs no Docker socket and no host volume.
#
# It runs in its own namespace (`dispatcher`); the runner/sidecar jobs it dispatches live in
# `dispatch`. Before the first run (once per cluster, with a management token):
#   nomad namespace apply dispatcher; nomad namespace apply dispatch
#   nomad acl policy apply -namespace dispatcher -job dispatcher dispatcher acl/dispatcher.hcl
#     (the job's workload identity gets exactly that policy: dispatch and read runner jobs, its
#      ledger variables, node:read; it cannot register, stop or re-register any job)
#   scripts/register-jobs.sh jobs.pin.json      (registers and pins the runner/sidecar parents)
#   nomad var put -namespace dispatcher nomad/jobs/dispatcher job_pins=@jobs.pin.json \
#     vault_role_id=@vault-role-id vault_secret_id=@vault-secret-id   (written by scripts/bootstrap-vault.sh)
variable "namespace" {
  type    = string
  default = "dispatcher"
}
variable "runner_namespace" {
  description = "where the runner/sidecar parents and their children live"
  type        = string
  default     = "dispatch"
}
variable "runner_remote" {
  description = "read-only URL runners fetch the ops repo from (default: ops_remote)"
  type        = string
  default     = ""
}
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
  description = "path of dist/dispatcher.mjs (the CLI in one file) as seen by the task"
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

variable "listen" {
  description = "where /metrics, /healthz, /readyz and POST /hooks/push listen: \"loopback\" (127.0.0.1 on the node: Nomad's check and a Prometheus or proxy on the node reach it) or \"node\" (the node's address: /readyz, which asks Vault and Nomad, and /metrics are open to whoever reaches the node)"
  type        = string
  default     = "loopback"
  validation {
    condition     = contains(["loopback", "node"], var.listen)
    error_message = "The listen variable is \"loopback\" or \"node\"."
  }
}

job "dispatcher" {
  namespace   = var.namespace
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

    # /metrics, /healthz, /readyz (and the push webhook) on a port of the node, bound to loopback
    # unless var.listen = "node"
    network {
      port "http" {}
    }

    # Prometheus finds it through Nomad's service discovery (nomad_sd_configs); Nomad restarts it
    # when /healthz stops answering
    service {
      name     = "dispatcher"
      provider = "nomad"
      port     = "http"
      address  = var.listen == "loopback" ? "127.0.0.1" : null
      tags     = ["metrics"]
      check {
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }
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

      # the dispatcher's own Vault login (AppRole: it renews its token itself), from a Nomad
      # variable only this job can read; never in the jobspec or the environment
      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/dispatcher" }}{{ .vault_role_id }}{{ end }}
        EOT
        destination = "secrets/vault-role-id"
        change_mode = "restart"
      }
      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/dispatcher" }}{{ .vault_secret_id }}{{ end }}
        EOT
        destination = "secrets/vault-secret-id"
        change_mode = "restart"
      }

      # the runner parents as pinned at registration: nothing is minted for one that differs
      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/dispatcher" }}{{ .job_pins }}{{ end }}
        EOT
        destination = "secrets/jobs.pin.json"
        change_mode = "restart"
      }

      env {
        NOMAD_ADDR                      = var.nomad_addr
        NOMAD_NAMESPACE                 = var.runner_namespace
        VAULT_ADDR                      = var.vault_addr
        DISPATCHER_JOB_PINS             = "${NOMAD_SECRETS_DIR}/jobs.pin.json"
        DISPATCHER_VAULT_ROLE_ID_FILE   = "${NOMAD_SECRETS_DIR}/vault-role-id"
        DISPATCHER_VAULT_SECRET_ID_FILE = "${NOMAD_SECRETS_DIR}/vault-secret-id"
        DISPATCHER_OPS_REMOTE           = var.ops_remote
        DISPATCHER_RUNNER_REMOTE        = var.runner_remote
        DISPATCHER_SECRETS              = join(",", var.secrets)
        DISPATCHER_WORKDIR              = "${NOMAD_ALLOC_DIR}/data/ops"
        DISPATCHER_INSTANCE             = "${NOMAD_ALLOC_ID}"
        DISPATCHER_LISTEN               = var.listen == "loopback" ? "127.0.0.1:${NOMAD_PORT_http}" : "${NOMAD_ADDR_http}"
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
