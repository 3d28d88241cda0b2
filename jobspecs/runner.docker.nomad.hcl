# Production variant of jobspecs/runner.nomad.hcl for the docker driver, with the same hardening:
# an image holding node, git and the formulas' tools plus the runner bundle (/opt/dispatcher,
# read-only), user nobody, every capability dropped, no new privileges, a read-only root
# filesystem, a pids limit, memory/CPU limits, the mounts as read-only host volumes. Register it
# like the exec template (one parent per kind and mount set: scripts/register-jobs.sh shows how)
# and pin it with `dispatcher jobs pin`. No Docker socket is mounted anywhere.
variable "kind" {
  type    = string
  default = "runner"
}
variable "namespace" {
  type    = string
  default = "dispatch"
}
variable "datacenters" {
  type    = list(string)
  default = ["*"]
}
variable "image" {
  description = "pinned by digest, e.g. registry.example/dispatcher-runner@sha256:…"
  type        = string
  default     = "registry.example/dispatcher-runner:0.1.0"
}
variable "mounts" {
  type    = list(string)
  default = []
}
variable "mount_sources" {
  type    = map(string)
  default = { ssh = "ssh", gpg = "gpg", sops = "sops" }
}
variable "vault_addr" {
  type = string
}

job "runner" {
  namespace   = var.namespace
  type        = "batch"
  datacenters = var.datacenters

  parameterized {
    payload       = "optional"
    meta_required = concat(["action_id", "action_sha", "action_path", "commit", "formula", "ops_repo"], var.kind == "sidecar" ? ["issue_number"] : [])
    meta_optional = concat(["secrets_csv", "mounts_csv", "kv_mount", "model", "tools_csv", "blast_radius", "dispatch_mode", "timeout_minutes", "deadline", "attempt"], var.kind == "sidecar" ? ["project_toml"] : [])
  }

  group "runner" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    ephemeral_disk {
      size = 300
    }

    dynamic "volume" {
      for_each = var.mounts
      labels   = [volume.value]
      content {
        type      = "host"
        source    = var.mount_sources[volume.value]
        read_only = true
      }
    }

    task "runner" {
      driver = "docker"
      user   = "nobody"
      config {
        image           = var.image
        command         = "/usr/bin/node"
        args            = ["/opt/dispatcher/runner.mjs"]
        cap_drop        = ["all"]
        security_opt    = ["no-new-privileges"]
        readonly_rootfs = true
        pids_limit      = 256
        # the task's own scratch space stays writable: /local, /secrets and /alloc are mounted by Nomad
      }

      dynamic "volume_mount" {
        for_each = var.mounts
        content {
          volume      = volume_mount.value
          destination = "/mnt/${volume_mount.value}"
          read_only   = true
        }
      }

      dispatch_payload {
        file = "wrap.token"
      }
      env {
        VAULT_ADDR = var.vault_addr
        MOUNT_ROOT = "/mnt"
        TMPDIR     = "/local/tmp"
      }
      resources {
        cpu    = 200
        memory = 256
      }
      logs {
        max_files     = 2
        max_file_size = 10
      }
    }
  }
}
