// The lab's prerequisite checks with the real virsh (Debian's libvirt-clients): missing tools and
// a libvirt that does not answer name the config key and the fix. The pool and KVM checks run
// against a real libvirtd in test/e2e/libvirt.test.ts.
import { spawnSync } from "child_process";
import { preflight } from "../../providers/impl/libvirt-hypervisor";

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const inputs = { uri: "qemu+unix:///system?socket=/nonexistent/k8sbm/libvirt-sock", pool: "default", domainType: "kvm" as const };

test("without virsh and genisoimage on this machine, both are named with the package to install", async () => {
  const path = process.env.PATH;
  process.env.PATH = "/nonexistent";
  try {
    const findings = await preflight(inputs);
    expect(findings.map((f) => f.property)).toEqual(["uri", "uri"]);
    expect(findings[0].reason).toMatch(/^lab.enabled: virsh is not installed on this machine: .*apt-get install libvirt-clients/);
    expect(findings[1].reason).toMatch(/^lab.enabled: genisoimage is not installed on this machine: .*apt-get install genisoimage/);
  } finally {
    process.env.PATH = path;
  }
});

const withTools = has("virsh") && has("genisoimage") ? test : process.env.CI ? test : test.skip;
withTools("a libvirt that does not answer is named by lab.uri with virsh's reason and what to start", async () => {
  const findings = await preflight(inputs);
  expect(findings).toHaveLength(1);
  expect(findings[0].property).toBe("uri");
  expect(findings[0].reason).toContain(`lab.uri ${inputs.uri}: libvirt does not answer (`);
  expect(findings[0].reason).toMatch(/\/nonexistent\/k8sbm\/libvirt-sock/);
  expect(findings[0].reason).toMatch(/systemctl enable --now libvirtd/);
});
