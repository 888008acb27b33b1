# Sourced by hack/dev-cluster: the files a cluster is made of (certificates, tokens, kubeconfigs,
# component configurations), all under $DIR. Uses the constants hack/dev-cluster sets.

# dc_pki: CA, the API server's serving certificate (every name Pods and the host use), its client
# certificate for the kubelet API, the service-account signing key pair. Made once per DIR.
dc_pki() {
  local d=$DIR/pki ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  [ -f "$d/sa.pub" ] && return 0
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 3650 -subj "/CN=kubefit-$NAME-ca" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req "${ec[@]}" -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:$API_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
      >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt
    openssl req "${ec[@]}" -keyout kubelet-client.key -out kubelet-client.csr \
      -subj "/O=system:masters/CN=kube-apiserver-kubelet-client"
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=clientAuth" >client.ext
    openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out kubelet-client.crt
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
    rm -f ./*.csr ./*.ext
  ) >/dev/null 2>&1 || dc_die "openssl failed making certificates in $d"
}

# dc_kubeconfig FILE SERVER TOKEN_USER: a kubeconfig with that user's static token.
dc_kubeconfig() {
  local file=$1 server=$2 user=$3 token
  token=$(awk -F, -v u="$user" '$2 == u {print $1}' "$DIR/pki/tokens.csv")
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubefit-$NAME
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$DIR/pki/ca.crt")
users:
- name: $user
  user:
    token: $token
contexts:
- name: kubefit-$NAME
  context:
    cluster: kubefit-$NAME
    user: $user
    namespace: default
current-context: kubefit-$NAME
EOF
}

# dc_tokens: one static bearer token per component (the API server's --token-auth-file), and a
# kubeconfig each. The kubelet is system:node:NODE in system:nodes (the Node authorizer and
# NodeRestriction apply to it); scheduler, controller-manager and kube-proxy have the bootstrap
# RBAC roles of their well-known users.
dc_tokens() {
  local f=$DIR/pki/tokens.csv u
  if [ ! -f "$f" ]; then
    {
      echo "$(openssl rand -hex 24),admin,admin,system:masters"
      echo "$(openssl rand -hex 24),system:kube-scheduler,system:kube-scheduler"
      echo "$(openssl rand -hex 24),system:kube-controller-manager,system:kube-controller-manager"
      echo "$(openssl rand -hex 24),system:kube-proxy,system:kube-proxy"
      echo "$(openssl rand -hex 24),system:node:$NODE_NAME,system:node:$NODE_NAME,system:nodes"
      echo "$(openssl rand -hex 24),kubefit:cluster-dns,kubefit:cluster-dns,system:masters"
    } >"$f"
    chmod 600 "$f"
  fi
  mkdir -p "$DIR/kube"
  for u in admin system:kube-scheduler system:kube-controller-manager system:kube-proxy \
           "system:node:$NODE_NAME" kubefit:cluster-dns; do
    dc_kubeconfig "$DIR/kube/${u##*:}.kubeconfig" "https://127.0.0.1:$API_PORT" "$u"
  done
  awk -F, '$2 == "kubefit:cluster-dns" {print $1}' "$f" >"$DIR/kube/cluster-dns.token"
}

dc_write_configs() {
  mkdir -p "$DIR/containerd/certs.d/localhost:$REGISTRY_PORT" "$DIR/cni/net.d" "$DIR/kubelet" "$DIR/pod-logs"
  cat >"$DIR/containerd/config.toml" <<EOF
# containerd 1.6 for the dev cluster's kubelet: state, sockets and CNI under $DIR.
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$DIR/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost:$REGISTRY_PORT/kubefit/pause:3.10"
  # Without it runc fails here ("can't get final child's PID from pipe: EOF"): no CAP_SYS_RESOURCE.
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$DIR/containerd/certs.d"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
EOF
  cat >"$DIR/containerd/certs.d/localhost:$REGISTRY_PORT/hosts.toml" <<EOF
server = "http://localhost:$REGISTRY_PORT"
[host."http://localhost:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
EOF
  cat >"$DIR/cni/net.d/10-kubefit.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kubefit",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "kf-cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$DIR/cni/ipam"
      }
    }
  ]
}
EOF
  cat >"$DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This host runs cgroup v1 (hybrid); kubelet 1.35+ refuses that unless told.
failCgroupV1: false
containerRuntimeEndpoint: unix://$DIR/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
podLogsDir: $DIR/pod-logs
volumePluginDir: $DIR/kubelet/volume-plugins
address: 0.0.0.0
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# The API server's client certificate is the only way in (kubectl logs/exec/port-forward).
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $DIR/pki/ca.crt}
authorization:
  mode: AlwaysAllow
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: cluster.local
resolvConf: ""
# A shared build machine: evict or collect images only when the disk is really full.
evictionHard: {memory.available: 100Mi, nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%", imagefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
protectKernelDefaults: false
failSwapOn: false
rotateCertificates: false
serverTLSBootstrap: false
shutdownGracePeriod: 0s
EOF
  cat >"$DIR/kube/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $DIR/kube/kube-scheduler.kubeconfig
leaderElection:
  leaderElect: false
EOF
  cat >"$DIR/kube/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $DIR/kube/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
# Pod -> Service -> Pod on the same bridge: without br_netfilter the reply would bypass the NAT;
# masquerading all Service traffic sends it back through the namespace's routing instead.
iptables:
  masqueradeAll: true
# Leave the host-wide conntrack settings alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
  # Who created and deleted which Pod (the e2e tests read it: the garbage collector's deletes, one
  # create per trainer Pod), and the TrainingJobs' writes; nothing else.
  cat >"$DIR/kube/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, delete, deletecollection]
  resources:
  - {group: "", resources: [pods, pods/eviction]}
  - {group: kubefit.dev, resources: [trainingjobs]}
- level: None
EOF
  cat >"$DIR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: $DIR/registry}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
}

# dc_cluster_objects: what kube-dns and a storage Service would be on GKE: Services without
# selectors whose EndpointSlices point at the node, where the DNS server and fake-gcs-server run.
dc_cluster_objects() {
  dc_kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: $DNS_SERVICE_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns}
addressType: IPv4
endpoints:
- addresses: [$NODE_IP]
  conditions: {ready: true}
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata:
  name: fake-gcs
  namespace: kube-system
spec:
  ports:
  - {name: http, port: $GCS_PORT, protocol: TCP, targetPort: $GCS_PORT}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: fake-gcs-node
  namespace: kube-system
  labels: {kubernetes.io/service-name: fake-gcs}
addressType: IPv4
endpoints:
- addresses: [$NODE_IP]
  conditions: {ready: true}
ports:
- {name: http, port: $GCS_PORT, protocol: TCP}
EOF
}
