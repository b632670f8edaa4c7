/**
 * A simulated agent run (no network, no model): two workers split a task
 * list through a state cell, record nested traces of their tool calls and
 * decisions, append events, and the run completes. Run it twice: the runs of
 * earlier invocations are still on disk.
 *
 *   npm run demo                   # node (tsx)
 *   deno run -A examples/agent_run.ts
 *   bun examples/agent_run.ts
 *
 * The database lives in ./agent-db (or the directory given as argument).
 *
 * @module
 */
import process from "node:process";
import { Database, type Run } from "../mod.ts";

const dir = process.argv[2] ?? "./agent-db";
const TASKS = ["fetch issue", "read logs", "find cause", "write patch", "run tests", "summarize"];

/** A pretend tool: takes a little while, returns something derived from its input. */
async function tool(name: string, input: string): Promise<string> {
  await new Promise((r) => setTimeout(r, 2 + (input.length % 5)));
  return `${name}(${input}) ok`;
}

/** One worker: claims the next task through the `queue` cell until none are left. */
async function worker(run: Run, name: string, rootTrace: string): Promise<number> {
  let done = 0;
  for (;;) {
    // The function may run more than once (on conflict): it must be pure.
    const task = await run.state.transition("queue", (state) => {
      const q = state.value as { next: number };
      if (q.next >= TASKS.length) return [q, undefined];
      return [{ next: q.next + 1 }, TASKS[q.next]];
    });
    if (task === undefined) return done;
    const decision = await run.traces.recordChild(rootTrace, {
      kind: "decision",
      question: `how should ${name} handle "${task}"?`,
      options: ["tool", "skip"],
      chosen: "tool",
      reasoning: "every task needs its tool",
    });
    const started = Date.now();
    const result = await tool("shell", task);
    // The trace, the event and the scratchpad entry commit together or not at all.
    await run.transaction(async (tx) => {
      await tx.traces.record({
        kind: "tool_call",
        toolName: "shell",
        arguments: { task },
        result,
        durationMs: Date.now() - started,
      }, { parentId: decision, tags: [name] });
      await tx.events.append("task_done", { task, by: name });
      await tx.kv.put(`result/${task}`, result);
    });
    done++;
  }
}

await using db = await Database.open(dir, { durability: "strict" });
const run = await db.runs.create({
  name: "triage",
  tags: ["demo"],
  metadata: { tasks: TASKS.length },
});
await run.events.append("run_started", { tasks: TASKS });
await run.state.init("queue", { next: 0 });
const root = await run.traces.record({
  kind: "thought",
  content: "split the tasks between two workers",
});

const [a, b] = await Promise.all([worker(run, "worker-a", root), worker(run, "worker-b", root)]);
await run.events.append("run_finished", { a, b });
await db.runs.complete(run.id);

// The trace tree, depth first.
const tree = await run.traces.tree(root);
const lines: string[] = [];
const stack = tree === undefined ? [] : [{ node: tree, depth: 0 }];
while (stack.length > 0) {
  const { node, depth } = stack.pop()!;
  const t = node.trace.type;
  const label = t.kind === "tool_call"
    ? `tool_call ${t.toolName} → ${t.result}`
    : t.kind === "decision"
    ? `decision: ${t.question} → ${t.chosen}`
    : t.kind === "thought"
    ? `thought: ${t.content}`
    : t.kind;
  lines.push(`${"  ".repeat(depth)}- ${label}`);
  for (const child of [...node.children].reverse()) stack.push({ node: child, depth: depth + 1 });
}
console.log(`run ${run.id} (${(await db.runs.get(run.id))?.status})`);
console.log(`tasks: worker-a ${a}, worker-b ${b}`);
console.log(`trace tree:\n${lines.join("\n")}`);
const chain = await run.events.verifyChain();
console.log(`events: ${await run.events.length()}, chain ${chain.valid ? "valid" : "BROKEN"}`);
const runs = await db.runs.query({ tags: ["demo"] });
console.log(`runs on disk in ${dir}: ${runs.length} (${runs.map((r) => r.status).join(", ")})`);
