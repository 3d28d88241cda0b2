# Sidecar jobs: reproduce / triage / verify an issue of a project. Tracked like runners.
variable "datacenters" {
  type    = list(string)
  default = ["*"]
}
variable "driver" {
  type    = string
  default = "raw_exec"
}
variable "node_bin" {
  type    = string
  default = "node"
}
variable "entrypoint" {
  type = string
}
variable "vault_addr" {
  type = string
}

job "sidecar" {
  type        = "batch"
  datacenters = var.datacenters

  parameterized {
    payload       = "optional"
    meta_required = ["action_id", "action_sha", "action_path", "commit", "formula", "ops_repo", "issue_number"]
    meta_optional = ["project_toml", "secrets_csv", "mounts_csv", "kv_mount", "model", "tools_csv", "blast_radius", "dispatch_mode", "timeout_minutes", "attempt", "mount_path_ssh", "mount_path_gpg", "mount_path_sops"]
  }

  group "sidecar" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "sidecar" {
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
    }
  }
}
