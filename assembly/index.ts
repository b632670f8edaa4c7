// Entry point of the WebAssembly core: everything the TypeScript wrapper calls.
export * from "./memory";
export * from "./crc32c";
export * from "./sha256";
export * from "./store";
