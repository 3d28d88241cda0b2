#!/usr/bin/env bash
# The ops remote's side of a fetch, ls-remote or push: `remote-side.sh upload-pack|receive-pack <repo>`.
# Over a local path git runs the remote's upload-pack or receive-pack as its own child, so its CPU
# would count as the dispatcher's; a deployed remote is another machine's (the git server's), as
# the Nomad agent's is. This records it per call, this shell's own startup included: `times`, two
# lines a call, in $BENCH_REMOTE_CPU_FILE (not in a pipe: a subshell's children are not ours).
# the remote's git is not one the dispatcher started: the bench's counting wrapper (gitcount.ts) skips it
BENCH_GIT_COUNT= git "$@"
code=$?
times >>"$BENCH_REMOTE_CPU_FILE"
exit "$code"
