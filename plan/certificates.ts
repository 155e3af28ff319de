// When kubeadm's certificates are due for renewal. Pure.

const DAY_MS = 24 * 60 * 60 * 1000;

/** The earliest expiry of the certificates kubeadm manages on a control plane (check-expiration's JSON). */
export function earliestExpiry(checkExpirationJson: string): string {
  const doc = JSON.parse(checkExpirationJson) as {
    certificates?: { name?: string; expirationDate?: string; externallyManaged?: boolean; missing?: boolean }[];
  };
  const dates = (doc.certificates ?? [])
    .filter((c) => !c.externallyManaged && !c.missing && c.expirationDate)
    .map((c) => Date.parse(c.expirationDate!))
    .filter((t) => !Number.isNaN(t));
  if (!dates.length) throw new Error("kubeadm certs check-expiration listed no certificate with an expiration date");
  return new Date(Math.min(...dates)).toISOString();
}

/** The control planes whose earliest certificate expires within `beforeDays` of `now`. */
export function renewalDue(expiry: Record<string, string> | undefined, beforeDays: number, now = Date.now()): string[] {
  return Object.entries(expiry ?? {})
    .filter(([, at]) => Date.parse(at) - now < beforeDays * DAY_MS)
    .map(([node]) => node)
    .sort();
}
