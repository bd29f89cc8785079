#!/bin/bash
# fsx under memory pressure: 1 MiB chunks, files up to 40 MiB, and the
# smallest write budget cairn-mount accepts (16 MiB), so that writes wait
# for the budget, dirty chunks kept as pages are sealed early to make room,
# and writes land in chunks already uploaded but not yet committed; every
# byte is still checked against the model (see t_fsx.sh).
export FSX_CHUNK=${FSX_CHUNK:-1M}
export FSX_MAXLEN=${FSX_MAXLEN:-40M}
export FSX_MAXOP=${FSX_MAXOP:-256K}
export FSX_OPS=${FSX_OPS:-20000}
export FSX_REMOUNTS=${FSX_REMOUNTS:-3}
export FSX_SEED=${FSX_SEED:-20261206}
export FSX_MOUNT_OPTS=${FSX_MOUNT_OPTS:---mem-budget 16M --cache-mem 16M}
exec bash "$(dirname "$0")/t_fsx.sh"
