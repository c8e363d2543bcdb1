# dcmon os probe: prints one "==dcmon== NAME" section per source, for probes/os/parse.rs.
# POSIX sh, runs as a normal user, reads only /proc, /etc/os-release and df.
# The leading newline of each marker keeps a section whose file lacks a final
# newline from running into the next marker.
section() { printf '\n==dcmon== %s\n' "$1"; }
section clk_tck; getconf CLK_TCK 2>/dev/null
section loadavg; cat /proc/loadavg
section stat; cat /proc/stat
section meminfo; cat /proc/meminfo
section diskstats; cat /proc/diskstats
section netdev; cat /proc/net/dev
section df; df -P -k 2>/dev/null
section uptime; cat /proc/uptime
section os_release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
section uname; uname -srm
section nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN
section cpu_model; grep -m1 -E '^(model name|Hardware|cpu model)' /proc/cpuinfo 2>/dev/null
section hostname; uname -n
section end
