# dcmon infiniband probe: InfiniBand and RoCE ports from sysfs (no root, one process).
# A port that goes down stays in sysfs with state 1: DOWN, so it reads as down, never
# as gone. DCMON_SYSFS stands for /sys (the tests' fake tree).
section() { printf '\n==dcmon== %s\n' "$1"; }
ib=${DCMON_SYSFS:-/sys}/class/infiniband
set -- "$ib"/*/ports/*
if [ ! -e "$1" ]; then
  section absent; echo "no InfiniBand or RoCE port (nothing in $ib)"; section end; exit 0
fi
section ports
# Every file holds one line: `grep -H ''` prints each as PATH:VALUE, in one process.
grep -H '' "$ib"/*/ports/*/state "$ib"/*/ports/*/phys_state "$ib"/*/ports/*/rate \
  "$ib"/*/ports/*/link_layer "$ib"/*/ports/*/counters/* "$ib"/*/ports/*/hw_counters/* 2>/dev/null
section end
