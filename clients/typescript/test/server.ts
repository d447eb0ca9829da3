/**
 * A real `vinr serve` for the tests: the debug binary of the Rust build (`VINR_BIN`, else
 * `$CARGO_TARGET_DIR/debug/vinr`, else `target/debug/vinr` at the repository root), on
 * `127.0.0.1:0` with a fresh SQLite database in a temporary directory (or, with
 * `VINR_TEST_DATABASE_URL=postgres://…/db`, a fresh PostgreSQL database next to that one, made
 * and dropped with `psql`, as the Rust suite does), rate limits off,
 * settlements on demand only, and a fixed sandbox key and platform key chosen here.
 *
 * Without the binary the tests skip with the reason, unless `VINR_REQUIRE_SERVER=1` (CI) says
 * they must run.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

export function vinrBinary(): string {
  if (process.env.VINR_BIN) return process.env.VINR_BIN;
  return resolve(repoRoot, process.env.CARGO_TARGET_DIR ?? "target", "debug", "vinr");
}

/** Why the server tests cannot run here, or undefined when they can. Fails under CI. */
export function skipReason(): string | undefined {
  const binary = vinrBinary();
  if (existsSync(binary)) return undefined;
  const reason = `no vinr binary at ${binary} (build it with \`cargo build -p vinr-server\`, or set VINR_BIN)`;
  if (process.env.VINR_REQUIRE_SERVER === "1") throw new Error(`VINR_REQUIRE_SERVER=1 but ${reason}`);
  console.log(`skipped: ${reason}`);
  return reason;
}

export interface Served {
  base: string;
  secretKey: string;
  platformKey: string;
  stop(): Promise<void>;
  log(): string;
}

export async function startServer(): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), "vinr-ts-"));
  const config = join(dir, "vinr.toml");
  writeFileSync(config, '[rate_limit]\nenabled = false\n\n[settlements]\ntest_schedule = "manual"\n');
  const secretKey = `sk_test_${randomBytes(24).toString("hex")}`;
  const platformKey = `plk_${randomBytes(24).toString("hex")}`;
  const postgres = process.env.VINR_TEST_DATABASE_URL;
  let databaseUrl = `sqlite://${join(dir, "vinr.db")}`;
  let dropDatabase = () => {};
  if (postgres) {
    // Named like the Rust suite's databases, so a leftover one is recognisable.
    const name = `vinr_t_ts_${randomBytes(6).toString("hex")}`;
    execFileSync("psql", [postgres, "-qc", `CREATE DATABASE ${name}`], { stdio: "inherit" });
    databaseUrl = postgres.replace(/\/[^/]*$/, `/${name}`);
    dropDatabase = () =>
      execFileSync("psql", [postgres, "-qc", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], { stdio: "inherit" });
  }
  const env: NodeJS.ProcessEnv = { ...process.env, VINR_SANDBOX_SECRET_KEY: secretKey, VINR_PLATFORM_KEY: platformKey };
  delete env.VINR_PUBLIC_URL;
  const child: ChildProcess = spawn(
    vinrBinary(),
    ["serve", "--listen", "127.0.0.1:0", "--database-url", databaseUrl, "--config", config],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const base = await new Promise<string>((resolveBase, reject) => {
    const timer = setTimeout(() => reject(new Error(`vinr serve did not start in 30 s:\n${stderr}`)), 30_000);
    child.once("exit", (code) => reject(new Error(`vinr serve exited (${code}):\n${stderr}`)));
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      const prefix = "vinr listening on ";
      if (line.startsWith(prefix)) {
        clearTimeout(timer);
        resolveBase(line.slice(prefix.length).trim());
      }
    });
  });
  return {
    base,
    secretKey,
    platformKey,
    log: () => stderr,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.once("exit", done));
        child.kill("SIGTERM");
        await exited;
      }
      dropDatabase();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One request a receiver got. */
export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on 127.0.0.1:0 that answers 200 and keeps every request. */
export async function startReceiver(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
      response.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no receiver address");
  return {
    url: `http://127.0.0.1:${address.port}/hooks/vinr`,
    received,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

/** Polls `check` every 20 ms until it answers a value, failing after `ms`. */
export async function eventually<T>(what: string, ms: number, check: () => T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((done) => setTimeout(done, 20));
  }
}
