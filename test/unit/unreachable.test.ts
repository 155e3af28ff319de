// Nodes declared unreachable (stack config `unreachableNodes`): the provider process learns them
// from the stack configuration the engine hands every dynamic provider, never contacts them, and
// skips the deletes of their resources — except a membership's, which leaves through a live
// control plane (the live removal is in test/e2e/cluster.test.ts).
import { forgottenOnDelete, hostOf, isUnreachable, setUnreachableNodes } from "../../providers/impl/common";
import { lazyProvider } from "../../providers/dynamic";

afterEach(() => setUnreachableNodes(undefined));

const on = (name: string) => ({ connection: { name, host: "10.0.0.9", port: 22 } });

describe("unreachableNodes in the provider process", () => {
  test("read from the stack configuration's JSON list; absent is none", () => {
    setUnreachableNodes('["k8s-1","k8s-4"]');
    expect(isUnreachable("k8s-1")).toBe(true);
    expect(isUnreachable("k8s-2")).toBe(false);
    setUnreachableNodes(undefined);
    expect(isUnreachable("k8s-1")).toBe(false);
  });

  test("a listed node is never contacted: hostOf fails at once, as an unreachable host does", async () => {
    setUnreachableNodes('["k8s-1"]');
    const started = Date.now();
    await expect(hostOf({ name: "k8s-1", host: "192.0.2.1", port: 22 } as never)).rejects.toMatchObject({
      name: "SshConnectionError",
      message: expect.stringContaining(
        "k8s-1 (192.0.2.1:22): SSH connection failed: not contacted: the node is listed in unreachableNodes",
      ),
    });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test("its files, packages and services are forgotten on delete; its membership still leaves", () => {
    setUnreachableNodes('["k8s-1"]');
    for (const kind of ["remote-file", "file-block", "packages", "service", "ssh-host", "host-settings", "policy-routing", "system-user"])
      expect(forgottenOnDelete(kind, on("k8s-1"))).toBe(true);
    expect(forgottenOnDelete("kubeadm-join", on("k8s-1"))).toBe(false);
    expect(forgottenOnDelete("remote-file", on("k8s-2"))).toBe(false);
    // no connection (the libvirt resources, the snapshot): not a node's
    expect(forgottenOnDelete("libvirt-domain", {})).toBe(false);
  });

  test("the provider stub configures from the stack config and skips a forgotten delete without loading the kind", async () => {
    const p = lazyProvider("remote-file");
    await p.configure!({
      config: { get: (k: string) => (k === "k8s-baremetal:unreachableNodes" ? '["k8s-1"]' : undefined), require: () => "" },
    });
    expect(isUnreachable("k8s-1")).toBe(true);
    // a real delete would try SSH to 192.0.2.1 (TEST-NET): it returns at once
    await expect(p.delete!("id", { ...on("k8s-1"), path: "/etc/x" })).resolves.toBeUndefined();
  });
});
