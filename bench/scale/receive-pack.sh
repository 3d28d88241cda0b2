#!/usr/bin/env bash
# The ops remote's side of the poll check's pushes. Over a local path `git push` runs the remote's
# receive-pack as its own child, so its CPU would count as the dispatcher's; a deployed remote is
# another machine's (the git server's), as the Nomad agent's is. This records it per push, this
# shell's own startup included: `times`, two lines a push (not in a pipe: a subshell's children are not ours).
git receive-pack "$@"
code=$?
times >>"$BENCH_RECEIVE_CPU_FILE"
exit "$code"
