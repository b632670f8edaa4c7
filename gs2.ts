import { Database } from "./mod.ts";
import fs from "node:fs";
const db = await Database.open(fs.mkdtempSync("/dev/shm/gs-"), { durability: "strict" });
const run = await db.runs.create({ name: "b" });
const KEYS = Array.from({ length: 1 << 16 }, (_, i) => `p/${i.toString(36).padStart(6, "0")}`);
const VALUE = "v".repeat(100);
let k = 0;
for (let i = 0; i < 20000; i++) {
  await Promise.all(Array.from({ length: 64 }, () => run.kv.put(KEYS[k++ & 0xffff]!, VALUE)));
}
await db.close();
