// tsload.js, the program's TypeScript loader (Pulumi.yaml main: main.js): each file is transpiled
// once and cached by content, so an edited file always runs as edited, and stack traces point
// into the .ts sources.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "../..");
const TSLOAD = path.join(ROOT, "tsload.js");

describe("tsload", () => {
  let dir: string;
  let cache: string;
  beforeEach(() => {
    // inside the project, so tsconfig.json and node_modules resolve as for the program
    dir = fs.mkdtempSync(path.join(ROOT, "tmp-tsload-"));
    cache = fs.mkdtempSync(path.join(os.tmpdir(), "k8sbm-tscache-"));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  });

  /** runs `code` in a fresh node with the loader registered; returns its stdout */
  const node = (code: string) =>
    execFileSync(process.execPath, ["-e", `require(${JSON.stringify(TSLOAD)}).register();\n${code}`], {
      cwd: dir,
      env: { ...process.env, K8SBM_TS_CACHE: cache },
      encoding: "utf8",
    });
  const cached = () => fs.readdirSync(cache, { recursive: true }).filter((f) => String(f).endsWith(".js")).length;

  it("transpiles once, reuses the cache, and runs an edited file as edited", () => {
    const file = path.join(dir, "a.ts");
    fs.writeFileSync(file, `interface T { v: string }\nexport const t: T = { v: "one" };\n`);
    expect(node(`console.log(require(${JSON.stringify(file)}).t.v)`).trim()).toBe("one");
    expect(cached()).toBe(1);
    // second run: no new entry, and the compiler is not loaded
    expect(
      node(
        `require(${JSON.stringify(file)}); console.log(Object.keys(require.cache).some((k) => /node_modules[\\/]typescript[\\/]/.test(k)))`,
      ).trim(),
    ).toBe("false");
    expect(cached()).toBe(1);
    fs.writeFileSync(file, `export const t = { v: "two" };\n`);
    expect(node(`console.log(require(${JSON.stringify(file)}).t.v)`).trim()).toBe("two");
    expect(cached()).toBe(2);
  });

  it("maps stack traces to the TypeScript source", () => {
    const file = path.join(dir, "b.ts");
    fs.writeFileSync(
      file,
      `interface X {\n  a: number;\n}\nconst x: X = { a: 1 };\nexport function boom(): never {\n  throw new Error("boom " + x.a);\n}\n`,
    );
    const out = node(`try { require(${JSON.stringify(file)}).boom(); } catch (e) { console.log(e.stack.split("\\n")[1]); }`);
    expect(out).toContain(`${file}:6:`);
  });

  it("is the program's entry, with ts-node off", () => {
    const project = fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");
    expect(project).toMatch(/^main: main\.js$/m);
    expect(project).toMatch(/^\s+typescript: false$/m);
  });
});
