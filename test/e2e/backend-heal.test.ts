// A run killed while the file backend rewrote a state file's metadata sidecar (<file>.attrs, Go
// CDK fileblob: truncated, then written) leaves it empty, and the CLI then fails every command with
// "failed to load checkpoint: EOF" (seen when the faults suite SIGKILLs an `up`). scripts/pulumi
// removes empty sidecars before each command; the raw CLI shows the failure it prevents.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ROOT } from "../../testbed/stack";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-heal-"));
const env = {
  ...process.env,
  PULUMI_BACKEND_URL: `file://${work}`,
  PULUMI_CONFIG_PASSPHRASE: "heal",
  PULUMI_CONFIG_PASSPHRASE_FILE: "",
  K8SBM_SKIP_PLUGINS: "1",
};
const wrapper = (args: string[]) => spawnSync(path.join(ROOT, "scripts/pulumi"), args, { cwd: ROOT, env, encoding: "utf8" });

const stack = `heal-${process.pid}`;

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(path.join(ROOT, `Pulumi.${stack}.yaml`), { force: true }); // what `stack init` wrote
});

test("an empty state sidecar: the raw CLI fails to load the checkpoint, scripts/pulumi repairs it", () => {
  expect(wrapper(["stack", "init", stack]).status).toBe(0);
  const dir = path.join(work, ".pulumi", "stacks", "k8s-baremetal");
  const attrs = fs.readdirSync(dir).filter((f) => f.startsWith(stack) && f.endsWith(".json.attrs"));
  expect(attrs).toHaveLength(1);
  fs.truncateSync(path.join(dir, attrs[0]), 0);
  // the CLI scripts/pulumi runs, called directly
  const bin = spawnSync("bash", [path.join(ROOT, "scripts/setup-pulumi.sh")], { encoding: "utf8" }).stdout.trim();
  const pulumiBin = path.join(bin, "pulumi");
  const raw = spawnSync(pulumiBin, ["stack", "export", "--stack", stack, "--non-interactive"], { cwd: ROOT, env, encoding: "utf8" });
  expect(raw.status).not.toBe(0);
  expect(raw.stderr).toContain("failed to load checkpoint: EOF");
  const healed = wrapper(["stack", "export", "--stack", stack, "--non-interactive"]);
  expect(healed.stderr).toContain("removing");
  expect(healed.status).toBe(0);
  expect(JSON.parse(healed.stdout).version).toBe(3);
});
