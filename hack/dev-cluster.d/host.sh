# Sourced by hack/dev-cluster: what a cluster changes outside its DIR, and how `down` puts it back.
#   - the network namespace /run/netns/$NETNS (every component and every Pod network lives in it)
#   - cgroups $CGROUP_ROOT in each hierarchy (the kubelet's cgroupRoot: pods go below it)
#   - host-wide sysctls the kubelet sets (kernel.panic, kernel.panic_on_oops, vm.overcommit_memory,
#     ...): saved by the first cluster up, restored when the last one goes down
#   - /var/lib/kubelet/device-plugins and /var/log/containers, which the kubelet makes whatever
#     its --root-dir: removed when the last cluster goes down if a cluster made them
#   - Pod network namespaces under /run/netns and shim sockets under /run/containerd/s (containerd
#     1.6 puts them there whatever its state dir); /run/netns itself (a mount `ip netns` makes);
#     libcni's cache of each Pod's network result, /var/lib/cni/results/NETWORK-SANDBOX-IFACE
# $HOST_STATE/clusters/NAME marks a cluster as up (the file holds its DIR).
HOST_STATE=/run/kubefit-dev-cluster
KUBELET_SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
                 kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
KUBELET_HOST_DIRS=(/var/lib/kubelet/device-plugins /var/lib/kubelet /var/log/containers /run/containerd/s /run/containerd
                   /run/netns /var/lib/cni/results /var/lib/cni)

# host_register: save the sysctls and note which host paths exist before the first cluster.
host_register() {
  local s
  mkdir -p "$HOST_STATE/clusters"
  if [ -z "$(ls -A "$HOST_STATE/clusters")" ]; then
    : >"$HOST_STATE/sysctl.saved"
    for s in "${KUBELET_SYSCTLS[@]}"; do
      echo "$s=$(sysctl -n "$s")" >>"$HOST_STATE/sysctl.saved"
    done
    : >"$HOST_STATE/made-dirs"
    for s in "${KUBELET_HOST_DIRS[@]}"; do
      [ -e "$s" ] || echo "$s" >>"$HOST_STATE/made-dirs"
    done
  fi
  echo "$DIR" >"$HOST_STATE/clusters/$NAME"
}

# host_unregister: the last cluster out restores the sysctls and removes the host dirs it made.
host_unregister() {
  local line d
  rm -f "$HOST_STATE/clusters/$NAME"
  [ -d "$HOST_STATE/clusters" ] && [ -n "$(ls -A "$HOST_STATE/clusters")" ] && return 0
  if [ -f "$HOST_STATE/sysctl.saved" ]; then
    while IFS= read -r line; do
      [ -n "$line" ] || continue
      [ "$(sysctl -n "${line%%=*}")" = "${line#*=}" ] || sysctl -q -w "$line" >/dev/null ||
        dc_say "warning: could not restore sysctl $line"
    done <"$HOST_STATE/sysctl.saved"
  fi
  if [ -f "$HOST_STATE/made-dirs" ]; then
    while IFS= read -r d; do
      [ -n "$d" ] && [ -d "$d" ] || continue
      # Sockets (the kubelet's device-plugin socket) and folders that are empty by now (our Pods'
      # log symlinks went in dc_host_cleanup); anything else someone put there stays.
      find "$d" -depth -type s -delete 2>/dev/null || true
      # `ip netns add` makes /run/netns a mount point of its own.
      if [ "$d" = /run/netns ] && [ -z "$(ls -A "$d")" ] && mountpoint -q "$d"; then umount "$d" || true; fi
      find "$d" -depth -type d -empty -delete 2>/dev/null || true
    done <"$HOST_STATE/made-dirs"
  fi
  rm -rf "$HOST_STATE"
}

# cgroup_dirs: the cluster's cgroupRoot in every cgroup hierarchy this host mounts.
cgroup_dirs() {
  local m
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    echo "/sys/fs/cgroup$CGROUP_ROOT"
    return
  fi
  for m in /sys/fs/cgroup/*/; do
    case "$(stat -f -c %T "$m")" in cgroupfs|cgroup2fs) echo "${m%/}$CGROUP_ROOT" ;; esac
  done
}

host_make_cgroups() {
  local d base
  for d in $(cgroup_dirs); do
    mkdir -p "$d" || dc_die "cannot make cgroup $d"
    base=$(dirname "$d")
    # A new cpuset has no CPUs or memory nodes until told.
    if [ -f "$d/cpuset.cpus" ] && [ -z "$(cat "$d/cpuset.cpus")" ]; then
      cat "$base/cpuset.cpus" >"$d/cpuset.cpus"
      cat "$base/cpuset.mems" >"$d/cpuset.mems"
    fi
  done
}

host_remove_cgroups() {
  local d left=0
  for d in $(cgroup_dirs); do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$d" ] && left=1
  done
  [ $left = 0 ] || dc_say "warning: cgroups under $CGROUP_ROOT still hold processes"
}

netns_up() {
  ip netns add "$NETNS" 2>/dev/null || [ -e "/run/netns/$NETNS" ] || dc_die "ip netns add $NETNS failed"
  ip -n "$NETNS" link set lo up
  # The node's address, on lo: no link leaves the namespace (kernels here have no dummy links).
  # Pods reach it, and Service IPs, through the bridge's gateway; kube-proxy's rules live here.
  ip -n "$NETNS" addr replace "$NODE_IP/32" dev lo
  ip netns exec "$NETNS" sysctl -q -w net.ipv4.ip_forward=1 >/dev/null
  # What the bridge CNI and kube-proxy need, tried here so that a host without it is told so.
  ip -n "$NETNS" link add kf-probe0 type bridge 2>/dev/null &&
    ip -n "$NETNS" link del kf-probe0 ||
    dc_die "this kernel cannot make a bridge in a network namespace (module bridge): Pods need one"
  ip -n "$NETNS" link add kf-probe1 type veth peer name kf-probe2 2>/dev/null &&
    ip -n "$NETNS" link del kf-probe1 ||
    dc_die "this kernel cannot make veth pairs (module veth): Pods need them"
  in_ns iptables -t nat -S >/dev/null 2>&1 ||
    dc_die "iptables (nat table) does not work in a network namespace here: kube-proxy needs it"
}

netns_down() {
  [ -e "/run/netns/$NETNS" ] || return 0
  ip netns del "$NETNS" 2>/dev/null || dc_say "warning: ip netns del $NETNS failed"
}

# sandbox_netns_paths: the network namespaces containerd made for this cluster's Pods.
sandbox_netns_paths() {
  local sock=$DIR/containerd/containerd.sock id
  [ -S "$sock" ] || return 0
  for id in $(ctr -a "$sock" -n k8s.io containers ls -q 2>/dev/null); do
    ctr -a "$sock" -n k8s.io containers info "$id" 2>/dev/null
  done | python3 -c '
import json, sys
dec, text, i = json.JSONDecoder(), sys.stdin.read(), 0
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    c, i = dec.raw_decode(text, i)
    for n in (((c.get("Spec") or {}).get("linux") or {}).get("namespaces") or []):
        p = n.get("path", "")
        if n.get("type") == "network" and p.startswith("/var/run/netns/"):
            print(p)' | sort -u
}

# dc_host_cleanup: with the kubelet stopped, kill what the Pods left (tasks, shims), unmount what
# is mounted under DIR and the Pods' network namespaces, remove our log symlinks.
dc_host_cleanup() {
  local sock=$DIR/containerd/containerd.sock id p netns=() i
  # containerd knows the Pods' namespaces: after a crash, start it again to ask.
  if ! alive containerd && [ -d "$DIR/containerd/root" ] && [ -e "/run/netns/$NETNS" ]; then
    dc_start containerd containerd --config "$DIR/containerd/config.toml"
    dc_wait containerd 30 "containerd's socket" ctr -a "$sock" version || true
  fi
  if [ -S "$sock" ] && ctr -a "$sock" version >/dev/null 2>&1; then
    mapfile -t netns < <(sandbox_netns_paths)
    for id in $(ctr -a "$sock" -n k8s.io containers ls -q 2>/dev/null); do
      rm -f /var/lib/cni/results/*-"$id"-* 2>/dev/null || true
    done
    for id in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr -a "$sock" -n k8s.io tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    for ((i = 0; i < 50; i++)); do
      ctr -a "$sock" -n k8s.io tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"' | grep -q . || break
      sleep 0.1
    done
    for id in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr -a "$sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  dc_stop containerd
  # Shims outlive containerd by design; ours name our socket on their command line.
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock" || true); do
    kill -KILL "$p" 2>/dev/null || true
  done
  for p in "${netns[@]}"; do
    umount "$p" 2>/dev/null || true
    rm -f "$p"
  done
  findmnt -rn -o TARGET | awk -v d="$DIR/" 'index($0, d) == 1' | sort -r | while IFS= read -r p; do
    umount "$p" 2>/dev/null || umount -l "$p" 2>/dev/null || dc_say "warning: cannot unmount $p"
  done
  if [ -d /var/log/containers ]; then
    find /var/log/containers -maxdepth 1 -type l -lname "$DIR/*" -delete 2>/dev/null || true
  fi
}
