// The kubeadm/kubectl command lines the providers run, checked against the real binaries of the
// pinned version: every subcommand exists and accepts every flag we pass. (No live cluster can
// run here; this catches renamed or removed flags, the usual break between versions.)
import { execFileSync, spawnSync } from "child_process";
import * as path from "path";
import * as k from "../../providers/impl/kubeadm-commands";
import { kubeadmPauseImage } from "../../model/pause";

const ROOT = path.resolve(__dirname, "../..");
let bin: string;

beforeAll(() => {
  bin = execFileSync(path.join(ROOT, "scripts/setup-kube.sh"), { encoding: "utf8", timeout: 60 * 60_000 }).trim();
}, 60 * 60_000);

/** Split `kubeadm token create --ttl 15m ...` into the binary, its subcommand words and flags. */
function parse(line: string): { tool: string; sub: string[]; flags: string[] } {
  const words = line
    .replace(/'[^']*'/g, "X")
    .split(/\s+/)
    .filter(Boolean);
  const tool = words[0];
  // kubectl: global options (--kubeconfig, -n NS) come first; `kubectl options` lists them
  let rest = tool === "kubectl" ? words.slice(words.indexOf(k.ADMIN_CONF) + 1) : words.slice(1);
  if (rest[0] === "-n") rest = rest.slice(2);
  const sub: string[] = [];
  for (const w of rest) {
    if (w.startsWith("-") || w === "X" || /[/.]/.test(w) || /^\|/.test(w)) break;
    sub.push(w);
  }
  const flags = rest.filter((w) => w.startsWith("--")).map((w) => w.split("=")[0]);
  return { tool, sub, flags };
}

function help(tool: string, sub: string[]): string {
  const r = spawnSync(path.join(bin, tool), [...sub, "--help"], { encoding: "utf8" });
  expect(r.status).toBe(0);
  return r.stdout;
}

const lines: [string, string][] = [
  ["init", k.initCommand("/etc/kubernetes/kubeadm-init.yaml")],
  ["init dry run", k.initDryRunCommand("/etc/kubernetes/kubeadm-init.yaml")],
  ["token create", k.tokenCreateCommand("k8s-2", "0123456789ab")],
  ["token delete", k.tokenDeleteCommand("abcdef.0123456789abcdef")],
  ["upload certs", k.uploadCertsCommand],
  ["certificate key", k.certificateKeyCommand],
  ["join", k.joinCommand("/etc/kubernetes/kubeadm-join.yaml")],
  ["reset", k.resetCommand("systemd").split(" && ")[1]],
  ["node exists", k.nodeExistsCommand("k8s-2")],
  ["untaint", k.untaintCommand("k8s-2").split(" 2>&1")[0]],
  ["drain", k.drainCommand("k8s-2")],
  ["delete node", k.deleteNodeCommand("k8s-2")],
  ["delete uploaded certs", k.deleteUploadedCertsCommand],
  ["delete tokens", k.tokensDeleteCommand(["abcdef", "ghijkl"])],
  ["list tokens", k.listTokensCommand],
  ["reconfigure: upload config", k.reconfigureCommand("/etc/kubernetes/kubeadm-init.yaml").split(" && ")[0]],
  ["reconfigure: control-plane manifests", k.reconfigureCommand("/etc/kubernetes/kubeadm-init.yaml")],
  ["a member's control-plane settings", k.controlPlaneSettingsCommand],
  ["a member's kubelet settings", k.kubeletSettingsCommand("systemd").split(" && ")[0]],
];

test.each(lines)("%s: subcommand and flags exist", (_name, line) => {
  // the last step of a command line (after LOCAL_KUBECONFIG), with its kubeconfig named
  const last = line.split(" && ").pop()!.replace(/"\$k"/g, k.ADMIN_CONF);
  const { tool, sub, flags } = parse(last.split(" 2>&1")[0].split(" >")[0]);
  const text = help(tool, sub);
  for (const f of flags) expect({ flag: f, known: text.includes(`${f}`) }).toEqual({ flag: f, known: true });
  if (tool === "kubectl") {
    const globals = execFileSync(path.join(bin, "kubectl"), ["options"], { encoding: "utf8" });
    expect(globals).toContain("--kubeconfig");
    expect(globals).toMatch(/-n, --namespace/);
  }
});

test("kubeadm certs certificate-key prints the 64-hex key the join config expects", () => {
  const key = execFileSync(path.join(bin, "kubeadm"), ["certs", "certificate-key"], { encoding: "utf8" }).trim();
  expect(key).toMatch(/^[0-9a-f]{64}$/);
});

test("the pause image the program pins is the one this kubeadm expects", () => {
  const version = require("../../package.json").config.kubernetesVersion as string;
  const list = execFileSync(path.join(bin, "kubeadm"), ["config", "images", "list", "--kubernetes-version", `v${version}`], {
    encoding: "utf8",
  });
  expect(kubeadmPauseImage(`v${version}`)).toBe(list.split("\n").find((l) => l.includes("/pause:")));
});
