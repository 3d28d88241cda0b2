# The runner and sidecar parents: one dispatched child per action attempt. The dispatcher fills
# the meta and passes the response-wrapped Vault token as the payload (never in meta, argv or env).
#
# One template for every parent: a parameterized job's volumes are fixed at registration, so
# scripts/register-jobs.sh registers `runner`, `runner-ssh`, `runner-gpg-ssh`, …, `sidecar`, …
# from this file (job ID = kind plus the sorted mounts), and the dispatcher picks the parent whose
# mounts equal the action's. Nomad then places a child only on nodes offering its volumes.
#
# Drivers: exec (tested: chroot, nobody, no capabilities, the runner bundle and mounts as read-only
# volumes); docker (production variant, same hardening plus no-new-privileges, a pids limit and a
# read-only root filesystem; the image holds node, git and the runner bundle at /opt/dispatcher);
# raw_exec (no isolation at all, for trusted formulas only).
variable "kind" {
  description = "runner, or sidecar (reproduce/triage/verify an issue: also needs issue_number)"
  type        = string
  default     = "runner"
}
variable "namespace" {
  description = "runner/sidecar parents and children live here; only the dispatcher may read jobs in it"
  type        = string
  default     = "dispatch"
}
variable "node_pool" {
  description = "runner class: the node pool its children run in (register-jobs.sh names the parent <kind>.<class>)"
  type        = string
  default     = "default"
}
variable "datacenters" {
  type    = list(string)
  default = ["*"]
}
variable "driver" {
  description = "exec (isolated: chroot, nobody, no capabilities); docker (the same, from var.image); raw_exec runs formulas as the agent's user with no isolation, for trusted formulas only"
  type        = string
  default     = "exec"
}
variable "image" {
  description = "docker only: an image with node, git and the runner bundle at /opt/dispatcher, pinned by digest"
  type        = string
  default     = "registry.example/dispatcher-runner:0.1.0"
}
variable "network_mode" {
  description = "docker only: the container's network (bridge: docker's default; host: the node's, as exec tasks have; none)"
  type        = string
  default     = "bridge"
}
variable "user" {
  type    = string
  default = "nobody"
}
variable "node_bin" {
  description = "node as the task sees it (inside the chroot for exec)"
  type        = string
  default     = "/usr/bin/node"
}
variable "sealed_node" {
  description = "exec: node_bin is the runner's own node, root-owned mode 0711 (executable, not readable by the task user), started through /usr/bin/env. Linux makes a process that execs a binary it cannot read non-dumpable, so the formula (same user) cannot read the runner's memory, environment or descriptors through /proc/1. (Through env: Nomad makes the task's command readable by everyone.)"
  type        = bool
  default     = false
}
variable "runner_dir" {
  description = "where the runner bundle is mounted read-only (exec); its host directory for raw_exec"
  type        = string
  default     = "/opt/dispatcher"
}
variable "runner_volume" {
  description = "host volume holding the runner bundle (runner.mjs), mounted read-only"
  type        = string
  default     = "dispatcher-runner"
}
variable "mounts" {
  description = "mount aliases of this parent (ssh, gpg, sops, or [mounts] of the dispatcher's config), each a read-only host volume at its landing path"
  type        = list(string)
  default     = []
}
variable "mount_sources" {
  description = "host volume providing each mount alias"
  type        = map(string)
  default     = { ssh = "ssh", gpg = "gpg", sops = "sops" }
}
variable "mount_paths" {
  description = "where each mount alias lands inside the task (exec, docker), e.g. { ssh = \"/home/agent/.ssh\" }; an alias not listed lands at <mount_root>/<alias>"
  type        = map(string)
  default     = {}
}
variable "mount_root" {
  description = "where the runner finds the mounts (MOUNT_<ALIAS> = <mount_root>/<alias>); the host volumes' directory for raw_exec"
  type        = string
  default     = "/mnt"
}
variable "vault_addr" {
  type = string
}

locals {
  isolated = var.driver != "raw_exec"
  docker   = var.driver == "docker"
  # exec gets the runner bundle from the host (read-only volume); a docker image carries its own
  volumes = local.isolated ? concat(local.docker ? [] : ["runner"], var.mounts) : []
  # alias → where it lands in the task; raw_exec has no volumes: the mounts stay on the host under mount_root
  landing = { for m in var.mounts : m => local.isolated ? lookup(var.mount_paths, m, "${var.mount_root}/${m}") : "${var.mount_root}/${m}" }
}

job "runner" {
  namespace   = var.namespace
  type        = "batch"
  datacenters = var.datacenters
  node_pool   = var.node_pool

  parameterized {
    payload       = "optional"
    meta_required = concat(["action_id", "action_sha", "action_path", "commit", "formula", "ops_repo"], var.kind == "sidecar" ? ["issue_number"] : [])
    meta_optional = concat(["secrets_csv", "mounts_csv", "kv_mount", "model", "tools_csv", "blast_radius", "dispatch_mode", "timeout_minutes", "deadline", "attempt", "secret_path", "formula_args", "factory_repo", "factory_commit", "formula_home"], var.kind == "sidecar" ? ["project_toml"] : [])
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
    ephemeral_disk {
      size = 300 # MB: the ops repo checkout, the formula's scratch files, the logs below
    }

    dynamic "volume" {
      for_each = local.volumes
      labels   = [volume.value]
      content {
        type      = "host"
        source    = volume.value == "runner" ? var.runner_volume : var.mount_sources[volume.value]
        read_only = true
      }
    }

    task "runner" {
      driver = var.driver
      user   = local.isolated ? var.user : ""
      config {
        command  = var.sealed_node ? "/usr/bin/env" : var.node_bin
        args     = var.sealed_node ? [var.node_bin, "${var.runner_dir}/runner.mjs"] : ["${var.runner_dir}/runner.mjs"]
        cap_drop = local.isolated ? ["all"] : null
        # docker only (a null setting is left out of the task's config)
        image           = local.docker ? var.image : null
        security_opt    = local.docker ? ["no-new-privileges"] : null
        readonly_rootfs = local.docker ? true : null
        pids_limit      = local.docker ? 256 : null
        network_mode    = local.docker ? var.network_mode : null
        # a read-only root still gives formulas a scratch /tmp in memory, as exec's chroot has one
        mount = local.docker ? [{ type = "tmpfs", target = "/tmp", readonly = false, tmpfs_options = { size = 67108864 } }] : null
      }

      dynamic "volume_mount" {
        for_each = local.volumes
        content {
          volume      = volume_mount.value
          destination = volume_mount.value == "runner" ? var.runner_dir : local.landing[volume_mount.value]
          read_only   = true
        }
      }

      dispatch_payload {
        file = "wrap.token"
      }
      env {
        VAULT_ADDR = var.vault_addr
        MOUNT_ROOT = var.mount_root
        # the runner exports MOUNT_<ALIAS> from it and checks each is there
        MOUNT_PATHS = jsonencode(local.landing)
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
