# Figures of one command run under `/usr/bin/time -v -o FILE`, sourced by the benchmarks.
# secs FILE: its wall-clock seconds; rss FILE: its peak resident set, MiB.
secs() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }
