#!/bin/bash
# The test node's mount namespace holder. Started inside the node's network namespace in a mount
# namespace of its own (nsenter --net + unshare --mount), it gives containerd, the kubelet and
# kube-proxy (which enter this namespace with nsenter -t <pid> -m -n) a private view of the
# host paths they write to, so nothing they make there outlives the node, even after SIGKILL:
#
#   /run, /var/lib, /var/log   private tmpfs: containerd's shim sockets and FIFOs, runc's state,
#                              the CNI netns mounts and result cache, the kubelet's
#                              device-plugin directory and /var/log/containers
#   kernel and vm sysctls      the kubelet sets kernel.panic, kernel.panic_on_oops,
#                              vm.overcommit_memory, vm.panic_on_oom and kernel.keys limits,
#                              which are global: each is a private file bound over /proc/sys
#
# Usage: node-holder.sh <node state dir>. Writes <node state dir>/holder.ready once the mounts
# are in place, then waits until it is signalled.
set -euo pipefail
NODE_DIR="$1"
case "$NODE_DIR" in
  /run/* | /var/lib/* | /var/log/*)
    echo "node-holder: the node state directory $NODE_DIR lies under a path the node makes private" >&2
    exit 2
    ;;
esac

for dir in /run /var/lib /var/log; do
  mount -t tmpfs -o mode=0755,size=1g "node-${dir//\//-}" "$dir"
done
mkdir -p /run/netns /run/lock

mkdir -p "$NODE_DIR/sysctl"
for key in kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes \
  vm/overcommit_memory vm/panic_on_oom; do
  copy="$NODE_DIR/sysctl/${key//\//.}"
  cat "/proc/sys/$key" >"$copy"
  mount --bind "$copy" "/proc/sys/$key"
done

# Pods on the node's bridge reach a Service's endpoints on the same bridge: the replies must
# cross iptables so that conntrack can undo the Service's DNAT.
if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
  echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
fi

echo "$$" >"$NODE_DIR/holder.ready"
trap 'exit 0' TERM INT
while :; do
  sleep 3600 &
  wait $! || true
done
