// Fails when src/generated/schema.ts is not what `npm run generate` makes from openapi.json
// now: the committed client would drift from the API. Generates into a temporary file with the
// same pinned openapi-typescript and compares the bytes.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const committed = join(root, "src/generated/schema.ts");
const scratch = mkdtempSync(join(tmpdir(), "vinr-ts-generate-"));
try {
  const fresh = join(scratch, "schema.ts");
  execFileSync(
    join(root, "node_modules/.bin/openapi-typescript"),
    [join(root, "../../openapi.json"), "--output", fresh],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  if (readFileSync(fresh, "utf8") !== readFileSync(committed, "utf8")) {
    console.error(
      "src/generated/schema.ts is out of date with openapi.json: run `npm run generate` in clients/typescript and commit it",
    );
    process.exit(1);
  }
  console.log("src/generated/schema.ts matches openapi.json");
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
