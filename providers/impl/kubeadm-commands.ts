// The kubeadm/kubectl command lines the control-plane providers run. Pure, so they are
// tested without a cluster.
import { q } from "../os/configurer";

export const ADMIN_CONF = "/etc/kubernetes/admin.conf";
const kubectl = (args: string) => `kubectl --kubeconfig ${ADMIN_CONF} ${args}`;

export const initCommand = (configPath: string) => `kubeadm init --config ${q(configPath)} --upload-certs`;
// A rehearsal reports failed preflight checks as warnings in its output instead of stopping.
export const initDryRunCommand = (configPath: string) =>
  `kubeadm init --config ${q(configPath)} --upload-certs --dry-run --ignore-preflight-errors=all 2>&1`;

/** sha256 of the CA's public key, as --discovery-token-ca-cert-hash wants it */
export const caCertHashCommand =
  "openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex | sed 's/^.* /sha256:/'";

export const isInitializedCommand = `[ -s ${ADMIN_CONF} ] && ${kubectl("get --raw=/readyz >/dev/null")}`;

export const tokenCreateCommand = (node: string, ttl = "15m") =>
  `kubeadm token create --ttl ${ttl} --description ${q(`k8s-baremetal: join ${node}`)}`;
export const tokenDeleteCommand = (token: string) => `kubeadm token delete ${q(token.split(".")[0])}`;

// The uploaded control-plane certificates live 2h in the kubeadm-certs secret; we upload them
// right before a control plane joins and delete them right after.
export const uploadCertsCommand = (certificateKey: string) =>
  `kubeadm init phase upload-certs --upload-certs --certificate-key ${q(certificateKey)} >/dev/null`;
export const deleteUploadedCertsCommand = kubectl("-n kube-system delete secret kubeadm-certs --ignore-not-found");
export const certificateKeyCommand = "kubeadm certs certificate-key";

export const nodeExistsCommand = (node: string) => kubectl(`get node ${q(node)} -o name`);
export const untaintCommand = (node: string) =>
  kubectl(`taint nodes ${q(node)} node-role.kubernetes.io/control-plane:NoSchedule- 2>&1 | grep -v 'not found' || true`);
export const drainCommand = (node: string) =>
  kubectl(`drain ${q(node)} --ignore-daemonsets --delete-emptydir-data --force --timeout=300s`);
export const deleteNodeCommand = (node: string) => kubectl(`delete node ${q(node)} --ignore-not-found`);

/** A node that has kubelet.conf but is not a member is half-joined: reset before joining again. */
export const localStateCommand = "[ -e /etc/kubernetes/kubelet.conf ] || [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ] && echo present || echo absent";

export const joinCommand = (configPath: string) => `kubeadm join --config ${q(configPath)}`;

// What the seed's removal notes list, after `kubeadm reset` (which also leaves etcd for a
// control plane): CNI config and cilium's binaries, the kubelet service.
export const resetCommand = [
  "kubeadm reset -f",
  "rm -rf /etc/cni/net.d /opt/cni/bin/cilium-cni /var/lib/cni",
  "rm -f /root/.kube/config",
].join(" && ");

export const copyAdminConfCommand = `install -d -m 0700 /root/.kube && install -m 0600 ${ADMIN_CONF} /root/.kube/config`;
