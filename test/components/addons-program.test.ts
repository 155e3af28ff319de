// index.ts with the add-ons on, under Pulumi's mocks: the Addons step runs after cilium and the
// stack exports the UI's token command (a plain string: no token in state).
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { utils } from "ssh2";
import * as YAML from "yaml";
import { successorAddons } from "../fixtures/addons";

const ROOT = path.resolve(__dirname, "../..");
const created: { type: string; name: string }[] = [];

beforeAll(() => {
  const file = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config as Record<string, unknown>;
  const config: Record<string, string> = Object.fromEntries(Object.entries(file).map(([k, v]) => [k, JSON.stringify(v)]));
  const addons = successorAddons();
  (addons.gateway as Record<string, unknown>).gatewayApiCrds = { source: path.join(__dirname, "../fixtures/gateway-api-crds.yaml") };
  config["k8s-baremetal:addons"] = JSON.stringify(addons);
  config["k8s-baremetal:cilium"] = JSON.stringify({ apiAccess: "direct" }); // no SSH tunnel under mocks
  config["k8s-baremetal:sshPrivateKey"] = utils.generateKeyPairSync("ed25519").private;
  config["k8s-baremetal:vrrpPassword"] = "somepass";
  config["k8s-baremetal:certManagerTsigSecret"] = "c2VjcmV0LXRzaWc=";
  const secret = ["sshPrivateKey", "vrrpPassword", "certManagerTsigSecret"].map((k) => `k8s-baremetal:${k}`);
  pulumi.runtime.setAllConfig(config, secret);
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        created.push({ type: args.type, name: args.name });
        const extra = args.type.endsWith("SshHost")
          ? { hostKey: "ssh-ed25519 AAAA", fingerprint: "SHA256:x" }
          : args.type.endsWith("SshKeyPair")
            ? (({ public: publicKey, private: privateKey }) => ({ publicKey, privateKey }))(utils.generateKeyPairSync("ed25519"))
            : args.type.endsWith("LibvirtVolume")
              ? { path: `/var/lib/libvirt/images/${args.inputs.name}` }
              : args.type.endsWith("KubeadmInit")
                ? { adminKubeconfig: "apiVersion: v1\nclusters: []\n", caCertHash: `sha256:${"0".repeat(64)}` }
                : {};
        return { id: `${args.name}-id`, state: { ...args.inputs, ...extra } };
      },
      call: (args) =>
        args.token === "kubernetes:yaml:decode" ? { result: YAML.parseAllDocuments(args.inputs.text).map((d) => d.toJSON()) } : args.inputs,
    },
    "k8s-baremetal",
    "dev",
    false,
  );
});

test("the dev stack with the add-ons: their releases after cilium's, and the token command output", async () => {
  const program = await import("../../index");
  for (let i = 0; i < 100 && created.filter((c) => c.type === "kubernetes:helm.sh/v3:Release").length < 4; i++)
    await new Promise((r) => setTimeout(r, 50));
  expect(
    created
      .filter((c) => c.type === "kubernetes:helm.sh/v3:Release")
      .map((c) => c.name)
      .sort(),
  ).toEqual(["addons-cert-manager", "addons-headlamp", "addons-traefik", "cilium"]);
  // registered once cilium's release is (after: [network.release])
  const order = created.filter((c) => c.type === "kubernetes:helm.sh/v3:Release").map((c) => c.name);
  expect(order[0]).toBe("cilium");
  expect(program.uiTokenCommand).toBe("kubectl -n headlamp create token headlamp-admin --duration=1h");
});
