// IPv4 arithmetic for validation and planning. Pure; no dependencies.

export interface Cidr {
  /** network address as a 32-bit unsigned integer */
  network: number;
  prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function isIPv4(text: string): boolean {
  return parseIPv4(text) !== undefined;
}

export function formatIPv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff - (2 ** (32 - prefix) - 1)) >>> 0;
}

/** "10.118.12.20/24" -> the address and its prefix; undefined when malformed. */
export function parseAddressWithPrefix(text: string): { address: number; prefix: number } | undefined {
  const [ip, len, ...rest] = text.split("/");
  if (rest.length || len === undefined || !/^\d{1,2}$/.test(len)) return undefined;
  const address = parseIPv4(ip);
  const prefix = Number(len);
  if (address === undefined || prefix > 32) return undefined;
  return { address, prefix };
}

/** A network in canonical form: "10.244.0.0/16". Host bits set ("10.244.0.1/16") are rejected. */
export function parseCidr(text: string): Cidr | undefined {
  const parsed = parseAddressWithPrefix(text);
  if (!parsed) return undefined;
  const network = (parsed.address & mask(parsed.prefix)) >>> 0;
  return network === parsed.address ? { network, prefix: parsed.prefix } : undefined;
}

export function networkOf(address: number, prefix: number): Cidr {
  return { network: (address & mask(prefix)) >>> 0, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.network)}/${c.prefix}`;
}

export function cidrContains(c: Cidr, address: number): boolean {
  return (address & mask(c.prefix)) >>> 0 === c.network;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  return (a.network & mask(prefix)) >>> 0 === (b.network & mask(prefix)) >>> 0;
}

/** The address without its prefix: "10.118.12.20/24" -> "10.118.12.20". */
export function hostPart(addressWithPrefix: string): string {
  return addressWithPrefix.split("/")[0];
}
