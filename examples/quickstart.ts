import assert from "node:assert/strict";
import { Database } from "../mod.ts";

// A path makes it durable: Database.open("./agent-db", { durability: "strict" }).
await using db = await Database.open(); // no path: in memory

const run = await db.runs.create({ name: "triage", tags: ["prod"] });
await run.kv.put("task/status", "running");
const { sequence } = await run.events.append("tool_called", { tool: "search" });
await run.state.init("workflow", "start");
const thought = await run.traces.record({ kind: "thought", content: "look at the logs" });

// Any mix commits atomically, or not at all.
await run.transaction(async (tx) => {
  await tx.kv.put("task/status", "done");
  await tx.events.append("task_finished", { ok: true });
  await tx.state.cas("workflow", 1, "finished");
  await tx.traces.recordChild(thought, {
    kind: "decision",
    question: "retry?",
    options: ["yes", "no"],
    chosen: "no",
  });
});
await db.runs.complete(run.id);

assert.equal(sequence, 0);
assert.equal(await run.kv.get("task/status"), "done");
assert.equal((await run.state.read("workflow"))?.version, 2);
assert.equal((await run.events.verifyChain()).valid, true);
assert.equal((await db.runs.get(run.id))?.status, "completed");
