// Restart/reload tokens for Service: a digest of the files a service reads, so a change to any of
// them (and only that) bounces it. One string hashes to the same value as it always has.
import { createHash } from "crypto";

export function contentToken(...contents: string[]): string {
  return createHash("sha256").update(contents.join("\0")).digest("hex");
}
