import assert from "node:assert/strict";
import { crc32c, OrderedStore, sha256Hex } from "../mod.ts";

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

const store = new OrderedStore(); // keys and values live in WebAssembly memory
store.put("run/1/status", "active");
store.put("run/1/step", "plan");
store.put("run/2/status", "active");

const snap = store.snapshot(); // O(1): a frozen version
store.put("run/1/status", "completed");
assert.equal(text(snap.get("run/1/status")), "active");
assert.equal(text(store.get("run/1/status")), "completed");

const keys = [...store.prefix("run/1/")].map(([key]) => text(key));
assert.deepEqual(keys, ["run/1/status", "run/1/step"]); // in key order

snap.release();
store.close();

assert.equal(sha256Hex(new TextEncoder().encode("abc")).slice(0, 16), "ba7816bf8f01cfea");
assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
