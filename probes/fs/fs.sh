# dcmon fs probe: filesystem sizes from `df -P -k` (a statfs per mount; nothing in /proc
# has them), for probes/fs/mod.rs. Its own probe so the os probe's round forks nothing
# for them and a hung network mount (df blocks in statfs) delays only this probe.
# It runs inside the persistent shell itself (`in_shell`): no function, no variable, no
# option or directory change; one process, `df`.
printf '==dcmon== df\n'
# LC_ALL=C: GNU df translates its header even with -P (`Sys. de fichiers 1024-blocs`
# under fr_FR), which the parser reads to know the block size.
LC_ALL=C df -P -k 2>/dev/null
printf '\n==dcmon== end\n'
