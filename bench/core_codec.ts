/**
 * The value codec and key encoding against what a user would otherwise pick,
 * in the same run: `@msgpack/msgpack` with its defaults, and JSON (as a
 * string, and as the UTF-8 bytes a store would hold).
 *
 *   node --import tsx bench/core_codec.ts
 *   deno run -A bench/core_codec.ts
 *   bun bench/core_codec.ts
 *
 * The payload is a typical agent record of about 200 bytes: a tool call with
 * strings, numbers, a boolean and a nested array. After mitata's report it
 * prints ns/op and ops/s from each benchmark's mean and median time.
 *
 * @module
 */
import { decode, encode } from "@msgpack/msgpack";
import { bench, group, run, summary } from "mitata";
import { decodeValue, encodeCanonical, encodeValue } from "../src/core/codec.ts";
import { KeyReader, KeyWriter } from "../src/core/keys.ts";

const payload = {
  type: "tool_call",
  tool: "web_search",
  args: { query: "embedded database for ai agents", limit: 5, fresh: true },
  result: {
    hits: ["https://example.com/a", "https://example.com/b"],
    scores: [0.8731, 0.5512],
  },
  step: 12,
  tokens: [512, 128],
  latencyMs: 341.5,
};

const ours = encodeValue(payload);
const theirs = encode(payload);
const json = JSON.stringify(payload);
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
const jsonBytes = textEncoder.encode(json);
if (ours.length !== theirs.length || ours.some((b, i) => b !== theirs[i])) {
  throw new Error("Cannot benchmark: encodeValue and @msgpack/msgpack disagree on the payload");
}

// Keep results alive so no engine can drop the work.
let sink: unknown;

group(`encode a ${ours.length}-byte agent record (JSON: ${jsonBytes.length} bytes)`, () => {
  summary(() => {
    bench("encodeValue", () => (sink = encodeValue(payload)));
    bench("encodeCanonical", () => (sink = encodeCanonical(payload)));
    bench("@msgpack/msgpack encode", () => (sink = encode(payload)));
    bench("JSON.stringify", () => (sink = JSON.stringify(payload)));
    bench(
      "JSON.stringify + TextEncoder",
      () => (sink = textEncoder.encode(JSON.stringify(payload))),
    );
  });
});

group("decode the agent record", () => {
  summary(() => {
    bench("decodeValue", () => (sink = decodeValue(ours)));
    bench("@msgpack/msgpack decode", () => (sink = decode(theirs)));
    bench("JSON.parse", () => (sink = JSON.parse(json)));
    bench("TextDecoder + JSON.parse", () => (sink = JSON.parse(textDecoder.decode(jsonBytes))));
  });
});

const writer = new KeyWriter();
const userKey = "notes/2024-06-01/plan"; // 21 characters
const runNo = 70001;
const key = writer.u32(runNo).u8(0x01).string(userKey).finish();

group("key of (u32 run, u8 tag, 21-char string)", () => {
  summary(() => {
    bench(
      "KeyWriter … finish()",
      () => (sink = writer.u32(runNo).u8(0x01).string(userKey).finish()),
    );
    bench("KeyWriter … view()", () => (sink = writer.u32(runNo).u8(0x01).string(userKey).view()));
    bench(
      "template string + TextEncoder",
      () => (sink = textEncoder.encode(`${runNo}/\u0001/${userKey}`)),
    );
    bench("KeyReader u32 u8 string", () => {
      const r = new KeyReader(key);
      sink = [r.u32(), r.u8(), r.string()];
    });
  });
});

const { benchmarks } = await run();
void sink;

const rows: string[] = [];
for (const trial of benchmarks) {
  for (const r of trial.runs) {
    if (r.stats === undefined) continue;
    // mitata reports nanoseconds per call.
    const rate = (ns: number): string =>
      `${ns.toFixed(0).padStart(6)} ns ${
        Math.round(1e9 / ns).toLocaleString("en-US").padStart(11)
      } ops/s`;
    rows.push(`${r.name.padEnd(32)} mean ${rate(r.stats.avg)} | median ${rate(r.stats.p50)}`);
  }
}
console.log(`\nper call\n${rows.join("\n")}`);
