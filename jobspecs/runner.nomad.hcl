# The runner: one dispatched child per action attempt. The dispatcher fills the meta and passes
# the response-wrapped Vault token as the payload (never in meta, argv or env).
variable "datacenters" {
  type    = list(string)
  default = ["*"]
}
variable "driver" {
  description = "raw_exec on the dev stack; exec or docker (with an image holding node and git) in production"
  type        = string
  default     = "raw_exec"
}
variable "node_bin" {
  type    = string
  default = "node"
}
variable "entrypoint" {
  description = "path of dist/runner/main.js as seen by the task"
  type        = string
}
variable "vault_addr" {
  type = string
}

job "runner" {
  type        = "batch"
  datacenters = var.datacenters

  parameterized {
    payload       = "optional"
    meta_required = ["action_id", "action_sha", "action_path", "commit", "formula", "ops_repo"]
    meta_optional = ["secrets_csv", "mounts_csv", "kv_mount", "model", "tools_csv", "blast_radius", "dispatch_mode", "timeout_minutes", "attempt", "mount_path_ssh", "mount_path_gpg", "mount_path_sops"]
  }

  group "runner" {
    # retries are the dispatcher's decision (its failure table), never Nomad's
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "runner" {
      driver = var.driver
      config {
        command = var.node_bin
        args    = [var.entrypoint]
      }
      dispatch_payload {
        file = "wrap.token"
      }
      env {
        VAULT_ADDR = var.vault_addr
      }
      resources {
        cpu    = 100
        memory = 256
      }
      logs {
        max_files     = 2
        max_file_size = 10
      }
    }
  }
}
