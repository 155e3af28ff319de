// Property: any cluster.kubeletExtraArgs the configuration accepts, rendered into the kubelet's
// OpenRC conf.d (sourced and then evaluated by sh) and its systemd drop-in, stays the exact
// arguments it was: no value can end a quote, start a command or expand anything.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { parseStackConfig } from "../../model/parse";
import { kubeletConfd, kubeletSystemdDropIn } from "../../render/host";
import { NAMESPACE, devConfigCopy, devSecretKeys } from "../fixtures/dev";

// Letters plus everything a shell, systemd or a quote could make something of.
const CHARS = [..."aZ09._:/=,@+-", ..." \t\n;|&<>()$`\\\"'*?[]{}~#!%^"];
const word = fc.stringOf(fc.constantFrom(...CHARS), { maxLength: 12 });
const extraArgs = fc.dictionary(word, word, { maxKeys: 4 });

/** The flags as components/host.ts builds them. */
const flags = (args: Record<string, string>) =>
  Object.entries(args)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `--${k}=${v}`);

function accepted(args: Record<string, string>): boolean {
  const c = devConfigCopy();
  (c.cluster ??= {}).kubeletExtraArgs = args;
  try {
    parseStackConfig(NAMESPACE, c, devSecretKeys);
    return true;
  } catch {
    return false;
  }
}

/** What OpenRC's start-stop-daemon gets: conf.d sourced by sh, then `eval` of command_args. */
// a value that did break out (before the check) may redirect into a file: keep that in a scratch dir
const scratch = mkdtempSync(join(tmpdir(), "k8sbm-kubelet-args-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function openrcArgv(confd: string): string[] {
  const script = `${confd}\neval "set -- \${KUBELET_EXTRA_ARGS}"\nfor a; do printf '%s\\0' "$a"; done`;
  const r = spawnSync("sh", ["-c", script], { encoding: "utf8", cwd: scratch, env: { PATH: "/usr/bin:/bin" }, timeout: 5000 });
  expect(r.status).toBe(0);
  return r.stdout.split("\0").slice(0, -1);
}

describe("kubeletExtraArgs the schema accepts cannot break out of their quoting", () => {
  test("in the OpenRC conf.d and the systemd drop-in", () => {
    let checked = 0;
    fc.assert(
      fc.property(extraArgs, (args) => {
        if (!accepted(args)) return;
        checked++;
        const want = flags(args);
        expect(openrcArgv(kubeletConfd(want))).toEqual(want);
        const dropIn = kubeletSystemdDropIn(want);
        const exec = dropIn.split("\n").filter((l) => l.startsWith("ExecStart=/"));
        expect(exec).toHaveLength(1);
        // systemd splits on whitespace, expands $VAR / ${VAR} and % specifiers, honours quotes and '\'
        const words = exec[0].slice("ExecStart=".length).split(" ");
        expect(words.slice(words.length - want.length)).toEqual(want);
        for (const w of want) expect(w).not.toMatch(/[\s$%;"'\\]/);
      }),
      { numRuns: 200 },
    );
    // the generator must reach the accepted space, not only the refused one
    expect(checked).toBeGreaterThan(10);
  });
});
