// Marked blocks inside files the program shares with the system (/etc/hosts, /etc/fstab...).
// Pure text functions, tested on their own.

export const begin = (marker: string) => `# BEGIN k8s-baremetal ${marker}`;
export const end = (marker: string) => `# END k8s-baremetal ${marker}`;

/** The block's body (without markers), or undefined when the file has no such block. */
export function extractBlock(text: string, marker: string): string | undefined {
  const lines = text.split("\n");
  const b = lines.indexOf(begin(marker));
  const e = lines.indexOf(end(marker));
  if (b < 0 || e < b) return undefined;
  return lines
    .slice(b + 1, e)
    .map((l) => `${l}\n`)
    .join("");
}

export function removeBlock(text: string, marker: string): string {
  const lines = text.split("\n");
  const b = lines.indexOf(begin(marker));
  const e = lines.indexOf(end(marker));
  if (b < 0 || e < b) return text;
  lines.splice(b, e - b + 1);
  return lines.join("\n");
}

/** Put the block in place of the old one, or at the top/bottom of the file. body ends with "\n". */
export function upsertBlock(text: string, marker: string, body: string, position: "top" | "bottom"): string {
  const block = `${begin(marker)}\n${body}${end(marker)}\n`;
  const lines = text.split("\n");
  const b = lines.indexOf(begin(marker));
  const e = lines.indexOf(end(marker));
  if (b >= 0 && e >= b) {
    lines.splice(b, e - b + 1, ...block.slice(0, -1).split("\n"));
    return lines.join("\n");
  }
  if (position === "top") return block + text;
  const base = text === "" || text.endsWith("\n") ? text : `${text}\n`;
  return base + block;
}
