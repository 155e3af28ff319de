// Golden files: UPDATE_GOLDEN=1 writes them, otherwise the render must match byte for byte.
import * as fs from "fs";
import * as path from "path";

export const GOLDEN_DIR = path.join(__dirname, "..", "golden");

export function expectGolden(rel: string, actual: string): void {
  const file = path.join(GOLDEN_DIR, rel);
  if (process.env.UPDATE_GOLDEN === "1") {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  if (!fs.existsSync(file)) throw new Error(`golden file ${rel} is missing: run UPDATE_GOLDEN=1 npx jest test/unit and review the diff`);
  expect(actual).toBe(fs.readFileSync(file, "utf8"));
}
