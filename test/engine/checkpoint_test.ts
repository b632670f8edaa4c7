// Checkpoints: recovery loads the newest checkpoint and replays only the WAL
// after it; old segments and checkpoints go; commits go on while one is
// written; damage to a checkpoint is reported with file and offset.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CorruptionError } from "../../src/errors.ts";
import { SimFS } from "../../src/fs/sim.ts";
import { openEngine } from "../../src/engine/open.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);

async function fill(
  db: Awaited<ReturnType<typeof openEngine>>,
  from: number,
  to: number,
): Promise<void> {
  for (let i = from; i < to; i++) {
    await db.engine.transaction((tx) =>
      tx.put(enc(`k${String(i).padStart(5, "0")}`), enc(`v${i}`.repeat(20)))
    );
  }
}

test("recovery loads the checkpoint and replays only the commits after it", async () => {
  const fs = new SimFS({ seed: 1 });
  const db = await openEngine({ dir: "db", fs, maxSegmentBytes: 4096, checkpointAfterBytes: 0 });
  await fill(db, 0, 300);
  const info = await db.checkpoint();
  assert.ok(info !== undefined && info.entries === 300);
  await fill(db, 300, 320);
  await db.close();
  const walFiles = [...fs.files().keys()].filter((p) => p.endsWith(".wal"));
  assert.ok(
    walFiles.length <= 3,
    `segments covered by the checkpoint were kept: ${walFiles.length}`,
  );
  const again = await openEngine({ dir: "db", fs: fs.crash("dropUnsynced", 1) });
  assert.equal(again.engine.store.count(), 320);
  assert.equal(dec(again.engine.store.get("k00007")), "v7".repeat(20));
  assert.ok(again.recovery!.replayed <= 25, `replayed ${again.recovery!.replayed} records`);
  await again.close();
});

test("commits go on while a checkpoint is written, and all of them survive", async () => {
  const fs = new SimFS({ seed: 2 });
  const db = await openEngine({ dir: "db", fs, checkpointAfterBytes: 0 });
  await fill(db, 0, 500);
  const ckpt = db.checkpoint();
  await fill(db, 500, 600); // interleaves with the checkpoint's writes
  const info = await ckpt;
  assert.ok(info !== undefined && info.entries >= 500 && info.entries <= 600);
  await db.close();
  const again = await openEngine({ dir: "db", fs });
  assert.equal(again.engine.store.count(), 600);
  await again.close();
});

test("a checkpoint starts by itself once the WAL has grown past checkpointAfterBytes", async () => {
  const fs = new SimFS({ seed: 3 });
  const db = await openEngine({ dir: "db", fs, checkpointAfterBytes: 20_000 });
  await fill(db, 0, 400);
  await db.close();
  assert.ok([...fs.files().keys()].some((p) => p.endsWith(".ckpt")), "no checkpoint was written");
  const again = await openEngine({ dir: "db", fs });
  assert.equal(again.engine.store.count(), 400);
  await again.close();
});

test("damage to the checkpoint is reported with its file and offset", async () => {
  const fs = new SimFS({ seed: 4 });
  const db = await openEngine({ dir: "db", fs, checkpointAfterBytes: 0 });
  await fill(db, 0, 100);
  const info = (await db.checkpoint())!;
  await db.close();
  fs.inject({ kind: "bitFlip", path: info.path, offset: Math.floor(info.bytes / 2), bit: 3 });
  await assert.rejects(openEngine({ dir: "db", fs }), (err: unknown) => {
    assert.ok(err instanceof CorruptionError);
    assert.ok(err.where.startsWith(info.path), err.where);
    return true;
  });
});
