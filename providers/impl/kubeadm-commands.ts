// The kubeadm/kubectl command lines the control-plane providers run. Pure, so they are
// tested without a cluster.
import type { InitSystem } from "../../model/schema";
import { serviceCommands } from "../os/configurer";
import { TOKEN_MARK } from "../../render/kubeadm";
import { shq, tempFileCommand } from "../ssh/shell";
import { DRAINED_ANNOTATION } from "../../plan/upgrade";

export const ADMIN_CONF = "/etc/kubernetes/admin.conf";
const APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml";

/**
 * Temp files go on every way out: a normal exit, and HUP/INT/TERM (`timeout` and a dropped SSH
 * session send those). sh runs an EXIT trap on `exit`, not when a signal kills it, so each
 * signal is turned into an exit.
 */
export const removeOnExit = (files: string) =>
  `trap 'rm -f ${files}' EXIT && trap 'exit 129' HUP && trap 'exit 130' INT && trap 'exit 143' TERM`;

// Commands on a control plane talk to its own apiserver, not to the VIP in admin.conf: the VIP
// may be moving (the node that holds it may be the one leaving), and "this control plane
// answers" should mean its own API does. $k: admin.conf pointed at the local advertise address
// (always among the apiserver's SANs), removed when the command exits (and, if a kill leaves it,
// by the next run's sweep: it carries the program's temp-file prefix).
export const LOCAL_KUBECONFIG =
  `k=$(${tempFileCommand}) && ${removeOnExit('"$k"')} && ` +
  `ip=$(sed -n 's/^ *- --advertise-address=//p' ${APISERVER_MANIFEST}) && ` +
  `port=$(sed -n 's/^ *- --secure-port=//p' ${APISERVER_MANIFEST}) && ` +
  `h=$ip && case $ip in *:*) h="[$ip]" ;; esac && ` +
  `sed "s#^\\( *server: \\).*#\\1https://$h:\${port:-6443}#" ${ADMIN_CONF} >"$k"`;
const local = (cmd: string) => `${LOCAL_KUBECONFIG} && ${cmd}`;
const kubectl = (args: string) => local(`kubectl --kubeconfig "$k" ${args}`);
const kubeadm = (args: string) => local(`kubeadm ${args} --kubeconfig "$k"`);

// restoring: etcd's data directory already holds the restored member (restoreEtcdCommand)
export const initCommand = (configPath: string, restored = false) =>
  `kubeadm init --config ${shq(configPath)} --upload-certs${restored ? " --ignore-preflight-errors=DirAvailable--var-lib-etcd" : ""}`;

/** Where a restore's snapshot and CA archive are uploaded on the first control plane. */
export const RESTORE_DIR = "/var/lib/k8s-baremetal/restore";
export const RESTORE_SNAPSHOT = `${RESTORE_DIR}/snapshot.db`;
export const RESTORE_PKI = `${RESTORE_DIR}/pki.tar`;

/**
 * Before `kubeadm init` from a snapshot: the CAs and service-account keys back in
 * /etc/kubernetes/pki (init keeps them), and etcd's data directory restored as a one-member
 * cluster of this node by etcdutl, run from kubeadm's own etcd image through containerd's ctr
 * (the node has no etcd package). Its peer URL is the one kubeadm's etcd manifest gives it.
 */
export const restoreEtcdCommand = (configPath: string, node: string, advertiseAddress: string) => {
  const peer = `${node}=https://${advertiseAddress}:2380`;
  const staged = "/var/lib/etcd-k8sbm-restore";
  return [
    "set -e",
    `tar -C /etc/kubernetes -xf ${RESTORE_PKI}`,
    `img=$(kubeadm config images list --config ${shq(configPath)} 2>/dev/null | grep '/etcd:')`,
    '[ -n "$img" ] || { echo "kubeadm names no etcd image" >&2; exit 1; }',
    'ctr -n k8s.io images ls -q | grep -qxF "$img" || crictl pull "$img" >/dev/null',
    `rm -rf ${staged}`,
    `ctr -n k8s.io run --rm --mount type=bind,src=/var/lib,dst=/var/lib,options=rbind:rw "$img" k8sbm-etcd-restore-$$ ` +
      `etcdutl snapshot restore ${RESTORE_SNAPSHOT} --name ${shq(node)} --initial-cluster ${shq(peer)} ` +
      `--initial-advertise-peer-urls ${shq(`https://${advertiseAddress}:2380`)} --data-dir ${staged}`,
    "install -d -m 0700 /var/lib/etcd",
    "rm -rf /var/lib/etcd/member",
    `mv ${staged}/member /var/lib/etcd/member`,
    `rm -rf ${staged} ${RESTORE_DIR}`,
  ].join("\n");
};

// A rehearsal reports failed preflight checks as warnings in its output instead of stopping.
export const initDryRunCommand = (configPath: string) =>
  `kubeadm init --config ${shq(configPath)} --upload-certs --dry-run --ignore-preflight-errors=all 2>&1`;

/** sha256 of the CA's public key, as --discovery-token-ca-cert-hash wants it */
export const caCertHashCommand =
  "openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex | sed 's/^.* /sha256:/'";

/** kubeadm's view of the certificates it manages here (CertificateExpirationInfo, JSON). */
export const certExpirationCommand = kubeadm("certs check-expiration -o json");
/** Every certificate kubeadm manages on this control plane, kubeconfigs included, renewed by its CA. */
export const renewCertsCommand = kubeadm("certs renew all");
export const renewAdminConfCommand = kubeadm("certs renew admin.conf");
/** The id of the running container of a control-plane static pod. */
export const staticPodContainerCommand = (name: string) => `crictl ps --name ${shq(`^${name}$`)} --state running -q | head -n 1`;
/** The control plane's static pods load renewed certificates only when they start: their containers stop, the kubelet starts them again. */
export const CONTROL_PLANE_PODS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"];
export const restartPodsCommand = (pods: readonly string[]) =>
  `for c in ${pods.join(" ")}; do crictl ps --name "^$c\$" -q | xargs -r crictl stop >/dev/null; done`;
export const restartControlPlaneCommand = restartPodsCommand(CONTROL_PLANE_PODS);
/** Exit 0 when this node holds `ip` on an interface. */
export const holdsAddressCommand = (ip: string) => `ip -4 -o addr show | grep -q ${shq(` ${ip}/`)}`;

export const isInitializedCommand = `[ -s ${ADMIN_CONF} ] && [ -s ${APISERVER_MANIFEST} ] && ${kubectl("get --raw=/readyz >/dev/null")}`;

/**
 * A bootstrap token the program mints is described "k8s-baremetal: <what> (run <run id>)": the
 * mark tells the program's tokens from an operator's (which a sweep never touches), the run id
 * tells this run's from those an interrupted earlier run left.
 */
export const tokenDescription = (what: string, run: string) => `${TOKEN_MARK} ${what} (run ${run})`;
export const tokenCreateCommand = (node: string, run: string, ttl = "15m") =>
  kubeadm(`token create --ttl ${ttl} --description ${shq(tokenDescription(`join ${node}`, run))}`);
const TOKEN_ID = /^[a-z0-9]{6}$/;
export const tokenDeleteCommand = (token: string) => kubeadm(`token delete ${shq(token.split(".")[0])}`);
export function tokensDeleteCommand(ids: string[]): string {
  for (const id of ids) if (!TOKEN_ID.test(id)) throw new Error(`not a bootstrap token id: ${JSON.stringify(id)}`);
  return kubeadm(`token delete ${ids.join(" ")}`);
}
/** Every bootstrap token, one per line: "<secret name> <base64 description>" (no token secret is read). */
export const listTokensCommand = kubectl(
  `-n kube-system get secrets --field-selector type=bootstrap.kubernetes.io/token -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.data.description}{"\\n"}{end}'`,
);

export interface ListedToken {
  id: string;
  description: string;
}

export function parseTokenList(out: string): ListedToken[] {
  return out
    .split("\n")
    .map((l) => l.trim().split(" "))
    .filter(([name]) => name?.startsWith("bootstrap-token-"))
    .map(([name, b64]) => ({ id: name.slice("bootstrap-token-".length), description: Buffer.from(b64 ?? "", "base64").toString("utf8") }))
    .filter((t) => TOKEN_ID.test(t.id));
}

/**
 * The program's tokens that no longer serve: every token carrying the program's mark except
 * this run's own (a join running beside the sweep holds one). init's token is marked too, with
 * no run id (render/kubeadm.ts), so it always goes.
 */
export function staleTokenIds(tokens: ListedToken[], run: string): string[] {
  return tokens
    .filter((t) => t.description.startsWith(`${TOKEN_MARK} `) && !t.description.endsWith(` (run ${run})`))
    .map((t) => t.id)
    .sort();
}

// The uploaded control-plane certificates live 2h in the kubeadm-certs secret, owned by a
// bootstrap token that only keeps that time; we upload them right before a control plane joins
// and delete both right after. Without --config the phase guesses this node's address from its
// default route, and fails where there is none (an air-gapped network): it gets the address
// the apiserver advertises. The key goes in the same file (no --certificate-key beside --config);
// it arrives on stdin (never in a command line, which `ps` and sudo's log show) and must be the
// 64 hex digits `kubeadm certs certificate-key` prints.
export const uploadCertsCommand = local(
  `f=$(${tempFileCommand}) && ${removeOnExit('"$k" "$f"')} && ` +
    `IFS= read -r key && case $key in *[!0-9a-f]*|'') echo 'certificate key: not hex' >&2; exit 2 ;; esac && ` +
    `printf 'apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: %s\ncertificateKey: %s\n' "$ip" "$key" >"$f" && ` +
    `kubeadm init phase upload-certs --upload-certs --config "$f" --kubeconfig "$k" >/dev/null`,
);
const CERTS_TOKEN = "Proxy for managing TTL for the kubeadm-certs secret";
export const deleteUploadedCertsCommand =
  local(
    `kubeadm token list --kubeconfig "$k" | awk '/${CERTS_TOKEN}/ {print $1}' | xargs -r -n1 kubeadm token delete --kubeconfig "$k" >/dev/null`,
  ) + ` && ${kubectl("-n kube-system delete secret kubeadm-certs --ignore-not-found")}`;
export const certificateKeyCommand = "kubeadm certs certificate-key";

export const nodeExistsCommand = (node: string) => kubectl(`get node ${shq(node)} -o name`);
export const untaintCommand = (node: string) =>
  kubectl(`taint nodes ${shq(node)} node-role.kubernetes.io/control-plane:NoSchedule- 2>&1 | grep -v 'not found' || true`);
export const drainCommand = (node: string) =>
  kubectl(`drain ${shq(node)} --ignore-daemonsets --delete-emptydir-data --force --timeout=300s`);
export const deleteNodeCommand = (node: string) => kubectl(`delete node ${shq(node)} --ignore-not-found`);

/** A node that has kubelet.conf but is not a member is half-joined: reset before joining again. */
export const localStateCommand =
  "[ -e /etc/kubernetes/kubelet.conf ] || [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ] && echo present || echo absent";

export const joinCommand = (configPath: string) => `kubeadm join --config ${shq(configPath)}`;

// The seed's removal: stop the kubelet (so it restarts no static pod while kubeadm cleans up),
// `kubeadm reset` (which also leaves etcd for a control plane), then the CNI config and
// cilium's binaries. /etc/cni/net.d is emptied, not removed: containerd 2 exits when the
// directory it watches disappears. The kubelet stays stopped; before a node is initialized or
// joins, it is started (startKubeletCommand), as its package leaves it running.
export const resetCommand = (init: InitSystem) =>
  [
    `{ ${serviceCommands(init).stop("kubelet")} >/dev/null 2>&1 || true; }`,
    "kubeadm reset -f",
    "rm -rf /opt/cni/bin/cilium-cni /var/lib/cni",
    "{ [ ! -d /etc/cni/net.d ] || find /etc/cni/net.d -mindepth 1 -delete; }",
    ciliumCleanupCommand,
    "rm -f /root/.kube/config",
  ].join(" && ");

// What a cilium agent leaves in the host once its pod is gone (it cleans up only when it starts
// again with clean-cilium-state): its links (the pods' lxc veths go with their containers), the
// BPF pins that keep its maps and its tcx/cgroup links (programs on wan1, the socket load
// balancer) alive, its state directory and its iptables chains — cilium's documented manual
// cleanup — and its routes to the other nodes' pod CIDRs (autoDirectNodeRoutes), which it marks
// `proto kernel` though they have a gateway, which the kernel's own routes never have.
export const ciliumCleanupCommand = [
  "for l in $(ip -o link show | sed -n 's/^[0-9]*: \\(cilium_[a-z_0-9]*\\|lxc[a-z_0-9]*\\)[@:].*/\\1/p'); do ip link delete \"$l\" 2>/dev/null || true; done",
  "rm -rf /sys/fs/bpf/cilium /sys/fs/bpf/tc/globals/cilium_* /run/cilium/state",
  "ip -4 route show proto kernel | grep ' via ' | while read -r r; do ip route del $r 2>/dev/null || true; done",
  "for t in iptables ip6tables; do for m in legacy nft; do s=$t-$m-save; command -v $s >/dev/null || continue; " +
    "$s 2>/dev/null | grep -q CILIUM || continue; $s | grep -v CILIUM | $t-$m-restore; done; done",
].join(" && ");
export const startKubeletCommand = (init: InitSystem) => serviceCommands(init).start("kubelet");

/**
 * A changed configuration: uploaded (kubeadm's ClusterConfiguration and the kubelet's), and this
 * control plane's static-pod manifests regenerated from it (kubeadm's documented way to
 * reconfigure a running cluster); every member then catches up (controlPlaneSettingsCommand,
 * kubeletSettingsCommand).
 */
export const reconfigureCommand = (configPath: string) =>
  `kubeadm init phase upload-config all --config ${shq(configPath)} && kubeadm init phase control-plane all --config ${shq(configPath)}`;

export const copyAdminConfCommand = `install -d -m 0700 /root/.kube && install -m 0600 ${ADMIN_CONF} /root/.kube/config`;

// etcd, read and changed on a control plane through etcd's own HTTP gateway with the
// apiserver's etcd client certificate (curl is on every node; no etcdctl needed).
const PKI = "/etc/kubernetes/pki";
export const ETCD_CURL = `curl -sS --max-time 5 --cacert ${PKI}/etcd/ca.crt --cert ${PKI}/apiserver-etcd-client.crt --key ${PKI}/apiserver-etcd-client.key`;
export const LOCAL_ETCD = "https://127.0.0.1:2379";

export const memberListCommand = `${ETCD_CURL} --fail-with-body -X POST -d '{}' ${LOCAL_ETCD}/v3/cluster/member/list`;
export const memberRemoveCommand = (id: string) =>
  `${ETCD_CURL} --fail-with-body -X POST -d ${shq(JSON.stringify({ ID: id }))} ${LOCAL_ETCD}/v3/cluster/member/remove`;
/** one line per URL: "<url> ok|fail" */
export const etcdHealthCommand = (urls: string[]) =>
  `for u in ${urls.map(shq).join(" ")}; do if ${ETCD_CURL} "$u/health" 2>/dev/null | grep -q '"health":"true"'; then echo "$u ok"; else echo "$u fail"; fi; done`;

/**
 * New SANs in this control plane's serving certificate, kubeadm's documented way: the cluster's
 * ClusterConfiguration (the cluster resource uploaded it) with this node's endpoint and name,
 * the old certificate and key moved aside (kubeadm keeps an existing pair), then `kubeadm init
 * phase certs apiserver`; the old pair is put back when that fails (or was left aside by a run
 * killed in between). The apiserver loads it when it restarts.
 */
export const reissueServingCertCommand = (node: string) => {
  const pki = "/etc/kubernetes/pki/apiserver";
  return [
    LOCAL_KUBECONFIG,
    `c=$(${tempFileCommand})`,
    removeOnExit('"$k" "$c"'),
    `for f in crt key; do [ -e ${pki}.$f ] || [ ! -e ${pki}.$f.k8sbm-old ] || mv ${pki}.$f.k8sbm-old ${pki}.$f; done`,
    `kubectl --kubeconfig "$k" -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' >"$c"`,
    `v=$(sed -n 's/^apiVersion: //p' "$c" | head -n 1)`,
    `[ -n "$v" ] || { echo "the cluster's kubeadm-config holds no ClusterConfiguration" >&2; exit 1; }`,
    `printf '\n---\napiVersion: %s\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: %s\n  bindPort: %s\nnodeRegistration:\n  name: %s\n' "$v" "$ip" "\${port:-6443}" ${shq(node)} >>"$c"`,
    `mv ${pki}.crt ${pki}.crt.k8sbm-old && mv ${pki}.key ${pki}.key.k8sbm-old`,
    `if kubeadm init phase certs apiserver --config "$c"; then rm -f ${pki}.crt.k8sbm-old ${pki}.key.k8sbm-old; ` +
      `else mv -f ${pki}.crt.k8sbm-old ${pki}.crt; mv -f ${pki}.key.k8sbm-old ${pki}.key; exit 1; fi`,
  ].join(" && ");
};

// A member catching up with the cluster's configuration, through kubeadm's own upgrade phases
// (they rewrite only what differs). Certificates are left alone: renewal is its own decision.
export const controlPlaneSettingsCommand = "kubeadm upgrade node phase control-plane --certificate-renewal=false";
export const kubeletSettingsCommand = (init: InitSystem) =>
  `kubeadm upgrade node phase kubelet-config && ${serviceCommands(init).restart("kubelet")}`;

// ---- rolling upgrade (plan/upgrade.ts) ------------------------------------------------------------

/** One line per node: "<name> <kubeletVersion> <Ready status> <unschedulable>" (plan/upgrade.ts parseNodeStatus). */
export const nodeStatusCommand = kubectl(
  `get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.nodeInfo.kubeletVersion}{" "}` +
    `{.status.conditions[?(@.type=="Ready")].status}{" "}{.spec.unschedulable}{"\\n"}{end}'`,
);
/** The version the cluster's stored ClusterConfiguration names (what `kubeadm upgrade apply` last set). */
export const storedVersionCommand = kubectl(
  "-n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' | sed -n 's/^kubernetesVersion: //p'",
);
const preflight = (ignore: string[]) => (ignore.length ? ` --ignore-preflight-errors=${shq(ignore.join(","))}` : "");
/** On the first control plane: its static pods, etcd and the cluster's add-ons (CoreDNS) move to `version`. */
export const upgradeApplyCommand = (version: string, ignore: string[] = []) =>
  `kubeadm upgrade apply ${shq(version)} --yes${preflight(ignore)}`;
/** On every node after: its static pods (a control plane) and its kubelet's configuration follow the cluster's. */
export const upgradeNodeCommand = (ignore: string[] = []) => `kubeadm upgrade node${preflight(ignore)}`;
export const annotateDrainedCommand = (node: string, version: string) =>
  kubectl(`annotate node ${shq(node)} --overwrite ${shq(`${DRAINED_ANNOTATION}=${version}`)} >/dev/null`);
export const drainedAnnotationCommand = (node: string) =>
  kubectl(`get node ${shq(node)} -o jsonpath='{.metadata.annotations.${DRAINED_ANNOTATION.replace(/\./g, "\\.")}}'`);
export const uncordonCommand = (node: string) =>
  kubectl(
    `uncordon ${shq(node)} >/dev/null && kubectl --kubeconfig "$k" annotate node ${shq(node)} ${shq(`${DRAINED_ANNOTATION}-`)} >/dev/null`,
  );
