#!/usr/bin/env bash
# Upload benchmark: bakery-ssh vs `tar -cf - | ssh 'tar -xf -'` (OpenSSH, same crypto), same sshd.
#
# Tree: 5,000 x 4 KiB files in 50 directories + one 100 MiB file (120 MiB), uploaded to tmpfs
# (/dev/shm) on a lab sshd started for this run (lab/up, stopped on exit). Both sides use Packer
# 1.6.6's algorithms: curve25519-sha256 + aes128-gcm@openssh.com. Each run is a whole process:
# connect + upload + close. After one warm-up pair, N pairs run alternately (A B, B A, ...); the
# ratio is taken pair by pair and the median reported (machines are noisy: single runs vary by
# tens of percent; docs/benchmarks.md).
#
# Usage: crates/ssh/benches/upload.sh [PAIRS]      (default 7)
# Needs: the lab installed (make lab), /usr/bin/ssh, cargo. Builds the release example into
# $CARGO_TARGET_DIR (default /work/target-ssh).
set -euo pipefail

pairs=${1:-7}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-ssh}

work=$(mktemp -d /tmp/bakery-ssh-bench.XXXXXX)
# sshd reads the lab's authorized_keys as the login user.
chmod 755 "$work"
lab="$work/lab"
remote_base="/dev/shm/bakery-ssh-bench-$$"
cleanup() {
    if [ -n "${ssh_cmd:-}" ]; then "${ssh_cmd[@]}" "rm -rf '$remote_base'" >/dev/null 2>&1 || true; fi
    "$root/lab/down" --dir "$lab" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "building the release example..." >&2
cargo build --quiet --release -p bakery-ssh --example upload_bench --manifest-path "$root/Cargo.toml"
bench_bin="$CARGO_TARGET_DIR/release/examples/upload_bench"

echo "creating the tree..." >&2
tree="$work/fixtures/bigtree"
mkdir -p "$tree"
for d in $(seq -w 0 49); do
    mkdir "$tree/d$d"
    # 100 files of 4 KiB from one read of random data.
    head -c $((100 * 4096)) /dev/urandom | split -b 4096 -a 2 -d - "$tree/d$d/f"
done
head -c $((100 * 1024 * 1024)) /dev/urandom >"$tree/big.bin"
files=$(find "$tree" -type f | wc -l)
bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')

echo "starting a lab sshd..." >&2
"$root/lab/up" --dir "$lab" --parent-pid $$ --quiet >/dev/null
port=$(sed -n 's/^ssh_port=//p' "$lab/lab.info")
user=$(sed -n 's/^ssh_user=//p' "$lab/lab.info")
host=127.0.0.1
ssh-keygen -q -t ed25519 -N '' -C bakery-bench -f "$work/key"
cat "$work/key.pub" >>"$lab/authorized_keys"
cat "$lab"/ssh_host_*_key.pub >"$work/host_keys.pub"
sed "s/^/[$host]:$port /" "$work/host_keys.pub" >"$work/known_hosts"

ssh_cmd=(ssh -i "$work/key" -p "$port" -o IdentitiesOnly=yes -o BatchMode=yes
    -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes
    -c aes128-gcm@openssh.com -o KexAlgorithms=curve25519-sha256 "$user@$host")

now() { date +%s.%N; }
# Runs "$@" and prints "wall cpu maxrss_kib" (cpu = user+sys of the whole command).
measure() {
    local t0 t1 stats
    t0=$(now)
    stats=$(/usr/bin/time -f '%U %S %M' "$@" 2>&1 >/dev/null | tail -1)
    t1=$(now)
    awk -v a="$t0" -v b="$t1" -v s="$stats" 'BEGIN {split(s, x, " "); printf "%.3f %.3f %d\n", b - a, x[1] + x[2], x[3]}'
}

run_bakery() {
    "${ssh_cmd[@]}" "rm -rf '$remote_base/a' && mkdir -p '$remote_base'"
    measure "$bench_bin" "$host" "$port" "$user" "$work/key" "$work/host_keys.pub" "$tree" "$remote_base/a"
}
run_tar_ssh() {
    "${ssh_cmd[@]}" "rm -rf '$remote_base/b' && mkdir -p '$remote_base/b'"
    measure sh -c 'dir=$1; shift; tar -C "$dir" -cf - bigtree | "$@"' sh "$work/fixtures" \
        "${ssh_cmd[@]}" "tar -C '$remote_base/b' -xf -"
}

verify() {
    local got
    got=$("${ssh_cmd[@]}" "cd '$1' && echo \$(find . -type f | wc -l) \$(find . -type f -printf '%s\n' | awk '{s+=\$1} END {print s}')")
    [ "$got" = "$files $bytes" ] || { echo "upload to $1 incomplete: $got, expected $files $bytes" >&2; exit 1; }
}

echo "warm-up..." >&2
run_bakery >/dev/null
verify "$remote_base/a"
run_tar_ssh >/dev/null
verify "$remote_base/b/bigtree"

printf '%-5s %-28s %-28s %s\n' pair "bakery-ssh wall/cpu/rss" "tar|ssh wall/cpu" ratio
ratios=()
bwalls=()
twalls=()
for i in $(seq 1 "$pairs"); do
    if [ $((i % 2)) -eq 1 ]; then
        b=$(run_bakery); t=$(run_tar_ssh)
    else
        t=$(run_tar_ssh); b=$(run_bakery)
    fi
    read -r bw bc br <<<"$b"
    read -r tw tc _ <<<"$t"
    r=$(awk -v a="$bw" -v b="$tw" 'BEGIN {printf "%.3f", a / b}')
    ratios+=("$r"); bwalls+=("$bw"); twalls+=("$tw")
    printf '%-5s %-28s %-28s %s\n' "$i" "${bw}s ${bc}s $((br / 1024))MiB" "${tw}s ${tc}s" "$r"
done
verify "$remote_base/a"

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "tree: $files files, $bytes bytes; $pairs pairs"
echo "median wall: bakery-ssh $(median "${bwalls[@]}") s, tar|ssh $(median "${twalls[@]}") s"
echo "median ratio bakery-ssh / tar|ssh: $(median "${ratios[@]}")"
