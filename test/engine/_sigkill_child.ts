// Child process of sigkill_test.ts: commits two-key transactions in strict
// mode forever and prints "ack N" after each one is acknowledged, until it is
// killed. Not a test file itself.
import process from "node:process";
import { NodeFileAdapter } from "../../src/fs/node.ts";
import { openEngine } from "../../src/engine/open.ts";

const dir = process.env.IN_MEM_DB_DIR ?? "";
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const db = await openEngine({ dir, fs: new NodeFileAdapter(), durability: "strict" });
process.stdout.write("ready\n");
// Several writers at once, so group commit is in play when the kill lands.
let next = 0;
await Promise.all(Array.from({ length: 4 }, async () => {
  for (;;) {
    const i = next++;
    await db.engine.transaction((tx) => {
      tx.put(enc(`k${i}`), enc(`v${i}`));
      tx.put(enc(`pair${i}`), enc(`v${i}`));
    });
    process.stdout.write(`ack ${i}\n`);
  }
}));
