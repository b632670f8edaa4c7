/**
 * Generates docs/API.md from the JSDoc of mod.ts's exports (`deno doc
 * --json`), so the reference never drifts from the code.
 *
 *   npm run docs:api            # rewrite docs/API.md
 *   tsx tools/api_doc.ts --check  # exit 1 if docs/API.md is stale, or if an
 *                                 # export lacks its `@example`
 *
 * `--check` also enforces the project's documentation rule: every exported
 * class, function and constant, and every public method of an exported class
 * (not `@internal`, not a `[Symbol.dispose]`/`[Symbol.asyncDispose]`), has a
 * runnable `@example` (interfaces and type aliases are exempt). It lists the
 * offenders.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const ROOT = new URL("..", import.meta.url).pathname;
const OUT = join(ROOT, "docs/API.md");

// deno doc's JSON is loosely typed; only the fields used here are named.
interface TsType {
  repr?: string;
  kind?: string;
  value?: unknown;
}
interface Param {
  kind: string;
  name?: string;
  optional?: boolean;
  tsType?: TsType;
  arg?: Param;
  left?: Param;
}
interface FnDef {
  params: Param[];
  returnType?: TsType;
  typeParams?: { name: string }[];
}
interface JsDoc {
  doc?: string;
  tags?: { kind: string }[];
}
interface Member {
  name: string;
  kind?: string;
  jsDoc?: JsDoc;
  isStatic?: boolean;
  accessibility?: string;
  functionDef?: FnDef;
  tsType?: TsType;
  optional?: boolean;
  readonly?: boolean;
}
interface Decl {
  kind: string;
  jsDoc?: JsDoc;
  def: {
    methods?: Member[];
    properties?: Member[];
    params?: Param[];
    returnType?: TsType;
    typeParams?: { name: string }[];
    tsType?: TsType;
    constructors?: Member[];
  };
}
interface Symbol_ {
  name: string;
  declarations: Decl[];
}

function type(t: TsType | undefined): string {
  if (t === undefined) return "unknown";
  const v = t.value as Record<string, unknown> | TsType[] | undefined;
  switch (t.kind) {
    case "union":
      return (v as TsType[]).map(type).join(" | ");
    case "intersection":
      return (v as TsType[]).map(type).join(" & ");
    case "array":
      return `${wrap(v as TsType)}[]`;
    case "tuple":
      return `[${(v as TsType[]).map(type).join(", ")}]`;
    case "literal": {
      const lit = v as { kind: string; string?: string };
      return lit.kind === "string" ? JSON.stringify(lit.string) : (t.repr ?? "literal");
    }
    case "typeRef": {
      const ref = v as { typeName: string; typeParams?: TsType[] };
      const params = ref.typeParams?.length ? `<${ref.typeParams.map(type).join(", ")}>` : "";
      return `${ref.typeName}${params}`;
    }
    case "fnOrConstructor": {
      const fn = v as { params: Param[]; tsType: TsType };
      return `(${fn.params.map(param).join(", ")}) => ${type(fn.tsType)}`;
    }
    case "typeOperator": {
      const op = v as { operator: string; tsType: TsType };
      return `${op.operator} ${type(op.tsType)}`;
    }
    case "parenthesized":
      return `(${type(v as TsType)})`;
    case "typeLiteral": {
      const lit = v as { properties?: Member[] };
      const props = (lit.properties ?? []).map((p) =>
        `${p.name}${p.optional ? "?" : ""}: ${type(p.tsType)}`
      );
      return `{ ${props.join("; ")} }`;
    }
    default:
      return t.repr && t.repr.length > 0 ? t.repr : (t.kind ?? "unknown");
  }
}

function wrap(t: TsType): string {
  const s = type(t);
  return t.kind === "union" || t.kind === "fnOrConstructor" ? `(${s})` : s;
}

function param(p: Param): string {
  if (p.kind === "rest") return `...${param(p.arg!)}`;
  if (p.kind === "assign") return `${param(p.left!)}?`.replace(/\?\?$/, "?");
  const name = p.kind === "identifier" ? p.name : p.kind === "object" ? "options" : "args";
  return `${name}${p.optional ? "?" : ""}: ${type(p.tsType)}`;
}

function summary(doc: JsDoc | undefined): string {
  const text = (doc?.doc ?? "").trim();
  const para = text.split(/\n\s*\n/)[0] ?? "";
  return para.replace(/\s*\n\s*/g, " ");
}

const internal = (doc: JsDoc | undefined): boolean =>
  (doc?.tags ?? []).some((t) => t.kind === "internal");

function signature(name: string, fn: FnDef): string {
  const tp = fn.typeParams?.length ? `<${fn.typeParams.map((p) => p.name).join(", ")}>` : "";
  const ret = fn.returnType === undefined ? "" : `: ${type(fn.returnType)}`;
  return `${name}${tp}(${fn.params.map(param).join(", ")})${ret}`;
}

const hasExample = (doc: JsDoc | undefined): boolean =>
  (doc?.tags ?? []).some((t) => t.kind === "example");

const DISPOSERS = new Set(["[Symbol.dispose]", "[Symbol.asyncDispose]"]);

/**
 * The exports that break the documentation rule: each exported class,
 * function and variable, and each public non-internal method of an exported
 * class, needs an `@example` tag.
 */
function missingExamples(symbols: Symbol_[]): string[] {
  const out: string[] = [];
  for (const s of symbols) {
    const d = s.declarations.find((x) => x.kind !== "import") ?? s.declarations[0]!;
    if (!["class", "function", "variable"].includes(d.kind)) continue;
    if (internal(d.jsDoc)) continue;
    if (!hasExample(d.jsDoc)) out.push(`${d.kind} ${s.name}`);
    if (d.kind !== "class") continue;
    for (const m of d.def.methods ?? []) {
      if (m.kind !== undefined && m.kind !== "method") continue; // getters, setters
      if (internal(m.jsDoc) || m.accessibility === "private" || m.accessibility === "protected") {
        continue;
      }
      if (m.name.startsWith("#") || DISPOSERS.has(m.name)) continue;
      if (!hasExample(m.jsDoc)) {
        out.push(`method ${s.name}.${m.isStatic ? "" : "prototype."}${m.name}`);
      }
    }
  }
  return out;
}

function render(): { text: string; missing: string[] } {
  const r = spawnSync(join(ROOT, "node_modules/.bin/deno"), ["doc", "--json", "mod.ts"], {
    cwd: ROOT,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`deno doc failed: ${r.stderr}`);
  const json = JSON.parse(r.stdout) as {
    nodes: Record<string, { symbols: Symbol_[] }>;
  };
  const mod = Object.entries(json.nodes).find(([k]) => k.endsWith("/mod.ts"))![1];
  const symbols = [...mod.symbols].sort((a, b) => a.name.localeCompare(b.name));
  const byKind = new Map<string, string[]>();
  const order = ["class", "function", "variable", "interface", "typeAlias", "enum"];
  const title: Record<string, string> = {
    class: "Classes",
    function: "Functions",
    variable: "Constants",
    interface: "Interfaces",
    typeAlias: "Types",
    enum: "Enums",
  };
  for (const s of symbols) {
    const d = s.declarations.find((x) => x.kind !== "import") ?? s.declarations[0]!;
    const lines: string[] = [`### \`${s.name}\``, ""];
    const sum = summary(d.jsDoc);
    if (sum) lines.push(sum, "");
    if (d.kind === "function") {
      lines.push("```ts", signature(s.name, d.def as FnDef), "```", "");
    } else if (d.kind === "variable") {
      lines.push("```ts", `const ${s.name}: ${type(d.def.tsType)}`, "```", "");
    } else if (d.kind === "typeAlias") {
      lines.push("```ts", `type ${s.name} = ${type(d.def.tsType)}`, "```", "");
    } else if (d.kind === "interface") {
      const props = (d.def.properties ?? []).filter((p) => !internal(p.jsDoc));
      for (const p of props) {
        const doc = summary(p.jsDoc);
        lines.push(
          `- \`${p.readonly ? "readonly " : ""}${p.name}${p.optional ? "?" : ""}: ${
            type(p.tsType)
          }\`${doc ? ` — ${doc}` : ""}`,
        );
      }
      for (const m of d.def.methods ?? []) {
        if (internal(m.jsDoc) || m.functionDef === undefined) continue;
        const doc = summary(m.jsDoc);
        lines.push(`- \`${signature(m.name, m.functionDef)}\`${doc ? ` — ${doc}` : ""}`);
      }
      if (props.length > 0 || (d.def.methods ?? []).length > 0) lines.push("");
    } else if (d.kind === "class") {
      const members: string[] = [];
      for (const p of d.def.properties ?? []) {
        if (internal(p.jsDoc) || p.accessibility === "private" || p.name.startsWith("#")) {
          continue;
        }
        const doc = summary(p.jsDoc);
        members.push(
          `- \`${p.isStatic ? "static " : ""}${p.readonly ? "readonly " : ""}${p.name}: ${
            type(p.tsType)
          }\`${doc ? ` — ${doc}` : ""}`,
        );
      }
      for (const m of d.def.methods ?? []) {
        if (internal(m.jsDoc) || m.accessibility === "private" || m.name.startsWith("#")) {
          continue;
        }
        const doc = summary(m.jsDoc);
        const sig = m.kind === "getter"
          ? `get ${m.name}: ${type(m.functionDef?.returnType)}`
          : signature(m.name, m.functionDef!);
        members.push(`- \`${m.isStatic ? "static " : ""}${sig}\`${doc ? ` — ${doc}` : ""}`);
      }
      if (members.length > 0) lines.push(...members, "");
    }
    const list = byKind.get(d.kind) ?? [];
    list.push(lines.join("\n"));
    byKind.set(d.kind, list);
  }
  const out = [
    "# API reference",
    "",
    "<!-- Generated by tools/api_doc.ts from the JSDoc of mod.ts (`npm run docs:api`). " +
    "Do not edit. -->",
    "",
    "Every export of `@in-mem/core`, with its signature and the first paragraph of its",
    "documentation. Each carries a runnable example in its JSDoc (run by `npm test`).",
    "",
  ];
  for (const kind of order) {
    const list = byKind.get(kind);
    if (list === undefined) continue;
    out.push(`## ${title[kind]}`, "", ...list);
  }
  return { text: out.join("\n").trimEnd() + "\n", missing: missingExamples(symbols) };
}

const { text, missing } = render();
if (process.argv.includes("--check")) {
  let failed = false;
  if (missing.length > 0) {
    console.error(`${missing.length} export(s) of mod.ts lack an @example in their JSDoc:`);
    for (const m of missing) console.error(`  ${m}`);
    failed = true;
  }
  let old = "";
  try {
    old = readFileSync(OUT, "utf8");
  } catch {
    // missing counts as stale
  }
  if (old !== text) {
    console.error("docs/API.md is stale: run `npm run docs:api`");
    failed = true;
  }
  if (failed) process.exit(1);
} else {
  writeFileSync(OUT, text);
  console.log(`wrote docs/API.md (${text.length} bytes)`);
}
