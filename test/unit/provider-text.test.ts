// providers/dynamic.ts keeps each provider stub's serialised text on disk instead of serialising
// it on every run (issue 17). The text must be exactly what pulumi.dynamic.Resource records in
// `__provider` — both when it is serialised (a cache miss) and when it is read back (a hit) — so
// state written by either path reads the same. Pulumi's mocks capture what each registers.
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";

// pulumi.dynamic.Resource is abstract; its subclasses are what programs declare
class Dynamic extends pulumi.dynamic.Resource {}
const registered = new Map<string, Record<string, unknown>>();

beforeAll(() => {
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        registered.set(args.name, args.inputs);
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => args.inputs,
    },
    "k8s-baremetal",
    "test",
    false,
  );
});

async function registeredProvider(name: string): Promise<string> {
  for (let i = 0; i < 100 && !registered.has(name); i++) await new Promise((r) => setTimeout(r, 20));
  const text = registered.get(name)?.__provider;
  if (typeof text !== "string") throw new Error(`${name} registered no __provider text`);
  return text;
}

test("a miss serialises what pulumi.dynamic.Resource records, a hit reads back the same text", async () => {
  const dynamic = await import("../../providers/dynamic");
  // a kind no run has cached (the stub loads its implementation only when called)
  const kind = `probe-${process.pid}-${Date.now()}`;
  new Dynamic(dynamic.lazyProvider(kind), "by-pulumi", { x: 1 }, {}, "k8sbm", "Probe");
  const expected = await registeredProvider("by-pulumi");
  expect(expected).toContain(kind);

  const files = () => (fs.existsSync(dynamic.PROVIDER_TEXT_CACHE) ? fs.readdirSync(dynamic.PROVIDER_TEXT_CACHE) : []);
  const before = new Set(files());
  expect(await dynamic.providerText(kind)).toBe(expected);
  const written = files().filter((f) => !before.has(f));
  expect(written).toHaveLength(1);

  // a new module instance (a later run) finds it on disk and does not serialise
  let hit: string | undefined;
  await jest.isolateModulesAsync(async () => {
    const fresh = await import("../../providers/dynamic");
    const spy = jest.spyOn(pulumi.runtime, "serializeFunction");
    hit = await fresh.providerText(kind);
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
  });
  expect(hit).toBe(expected);
  fs.rmSync(`${dynamic.PROVIDER_TEXT_CACHE}/${written[0]}`);
});

test("the resource classes register pulumi.dynamic.Resource's type token and provider text", async () => {
  const { Service } = await import("../../providers/resources");
  const dynamic = await import("../../providers/dynamic");
  const svc = new Service("svc", { connection: { host: "h", port: 22, user: "root" } as never, name: "keepalived" } as never);
  const urn = await new Promise<string>((r) => svc.urn.apply(r));
  expect(urn).toContain("pulumi-nodejs:dynamic/k8sbm:Service::svc");
  new Dynamic(dynamic.lazyProvider("service"), "svc-by-pulumi", { x: 1 }, {}, "k8sbm", "Service");
  expect(await registeredProvider("svc")).toBe(await registeredProvider("svc-by-pulumi"));
});
