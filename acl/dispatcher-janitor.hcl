# Optional, added to acl/dispatcher.hcl on the dispatcher's token when an operator wants
# `nomad.purge_after_seconds` (purge each finished child once its result is pushed) and the
# watchdog (evaluate again a child Nomad wrote without an evaluation, nomad#26655). In Nomad 1.6
# both endpoints check submit-job, and nothing narrower exists.
# What it costs: submit-job also lets the token's holder register, change and stop any job in
# `dispatch`, the runner parent included; a leaked dispatcher token could then re-register
# `runner` and receive the tokens minted for later actions (the pin check refuses to mint for a
# parent that differs, so that shows up as `parent_changed`, not as a silent leak). Without this
# policy, finished children stay until Nomad's own GC (job_gc_threshold) and a child without an
# evaluation ends `lost` at the placement deadline.
namespace "dispatch" {
  capabilities = [
    "submit-job", # DELETE /v1/job/:id?purge=true (purge) and PUT /v1/job/:id/evaluate (watchdog)
  ]
}
